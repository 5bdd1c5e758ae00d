"""A tiny Internet exchange in Linux network namespaces (``ixp-lab``).

This is the lab the golden fixtures in ``tests/fixtures/scamper-20211212/``
were made in, with the same addresses and routes, so a command run in it
gives the fixtures' paths::

    coll   192.0.2.10/24  2001:db8:1::10/64  default via rA       (the VP)
    sw     bridge "br0": the exchange LAN 192.0.2.0/24, 2001:db8:1::/64
    rA     192.0.2.1  2001:db8:1::1 ; up 198.18.1.1/30 2001:db8:a::1/64 -> t1
    rB     192.0.2.2  2001:db8:1::2 ; up 198.18.2.1/30 2001:db8:b::1/64 -> t2
    t1     198.18.1.2 2001:db8:a::2 ; 198.51.100.1/24 2001:db8:d::1/64 (dst LAN)
    t2     198.18.2.2 2001:db8:b::2 ; 198.18.3.1/30 2001:db8:e::1/64 -> dst,
           reaching dst only by a host route; no default route
    dst    198.51.100.66 2001:db8:d::66 (to t1) and 198.18.3.2 2001:db8:e::2
           (to t2); its default route is via t1, so it always answers over t1

``trace 198.51.100.66`` from coll goes 192.0.2.1, 198.18.1.2, dst;
``trace -r 192.0.2.2 198.51.100.66`` goes 192.0.2.2, 198.18.2.2, dst and the
replies still return through rA.  192.0.2.99 and 198.51.100.99 do not exist
(ARP fails), 198.18.9.9 has no route at t1.  ICMP rate limits are off,
routers forward, IPv6 DAD is off (addresses usable at once), rp_filter is off
(dst accepts packets arriving over t2).

Interfaces, as the prober sees them: in ``coll`` the LAN interface is
``eth0`` (``LAN_IFACE``).  Elsewhere: ``lan0`` (rA/rB on the LAN), ``up0``
(rA/rB towards their transit), ``down0`` (t1/t2 towards the member),
``dst0`` (t1/t2 towards dst), ``eth0``/``eth1`` in dst (t1 side / t2 side).

Python API (used by the tests, the benchmarks and the demo)::

    from ixpscamper.lab import Lab, lab

    with lab() as L:                      # or: L = Lab.create(); ...; L.teardown()
        L.ns("coll")                      # -> "ixp1234-coll" (real netns name)
        L.names                           # {"coll": "ixp1234-coll", "sw": ..., ...}
        L.run("coll", ["scamper", "-O", "text", "-I", "trace 198.51.100.66"])
                                          # -> subprocess.CompletedProcess (text)
        p = L.popen("coll", ["twistd", "-n", "ixp-vp", ...])   # -> Popen
        L.exec_argv("coll", argv)         # the argv that runs argv inside coll

``run``/``popen`` never use a shell; ``run`` raises ``LabError`` on a
non-zero exit unless ``check=False``.  Processes started with ``popen`` are
terminated at teardown.  ``teardown()`` is idempotent, never raises, and is
also registered with ``atexit``; ``with lab()`` tears down even when the body
raises.  Namespace names are ``ixp<pid>-<role>`` (``ixp<pid>x<n>-<role>``
for a second lab in the same process), so labs of different processes and
tests coexist.

CLI (as root)::

    ixp-lab up [--prefix P]      build a lab that stays up (default prefix ixplab)
    ixp-lab down [--prefix P]    remove it
    ixp-lab clean [--all]        remove stale ixp<pid>-* labs whose process is
                                 gone (--all: every ixp* lab namespace)
    ixp-lab demo [ARGS...]       run ixpscamper.demo.main(ARGS)
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import itertools
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import attrs

__all__ = [
    "ROLES",
    "ADDRS",
    "LAN_IFACE",
    "Lab",
    "LabError",
    "lab",
    "list_lab_namespaces",
    "clean",
    "main",
]

#: The namespaces of a lab, in creation order.
ROLES: tuple[str, ...] = ("coll", "sw", "rA", "rB", "t1", "t2", "dst")

#: Well-known addresses of the lab (the fixtures' addresses).
ADDRS: dict[str, str] = {
    "coll": "192.0.2.10",
    "coll6": "2001:db8:1::10",
    "rA": "192.0.2.1",
    "rA6": "2001:db8:1::1",
    "rB": "192.0.2.2",
    "rB6": "2001:db8:1::2",
    "rA_up": "198.18.1.1",
    "rA_up6": "2001:db8:a::1",
    "t1_down": "198.18.1.2",
    "t1_down6": "2001:db8:a::2",
    "rB_up": "198.18.2.1",
    "rB_up6": "2001:db8:b::1",
    "t2_down": "198.18.2.2",
    "t2_down6": "2001:db8:b::2",
    "t1_dst": "198.51.100.1",
    "t1_dst6": "2001:db8:d::1",
    "t2_dst": "198.18.3.1",
    "t2_dst6": "2001:db8:e::1",
    "dst": "198.51.100.66",
    "dst6": "2001:db8:d::66",
    "dst_t2": "198.18.3.2",
    "dst_t26": "2001:db8:e::2",
    # Addresses that exist nowhere: ARP/ND for them fails.
    "lan_missing": "192.0.2.99",
    "dst_missing": "198.51.100.99",
    # No route for this one at t1.
    "no_route": "198.18.9.9",
}

#: The collector's interface on the exchange LAN.
LAN_IFACE = "eth0"

# (ns_a, if_a, ns_b, if_b) veth pairs; the sw ends are enslaved to br0.
_LINKS: tuple[tuple[str, str, str, str], ...] = (
    ("coll", "eth0", "sw", "coll"),
    ("rA", "lan0", "sw", "rA"),
    ("rB", "lan0", "sw", "rB"),
    ("rA", "up0", "t1", "down0"),
    ("rB", "up0", "t2", "down0"),
    ("t1", "dst0", "dst", "eth0"),
    ("t2", "dst0", "dst", "eth1"),
)

_ADDRESSES: dict[str, tuple[tuple[str, str], ...]] = {
    "coll": (("eth0", "192.0.2.10/24"), ("eth0", "2001:db8:1::10/64")),
    "rA": (
        ("lan0", "192.0.2.1/24"), ("lan0", "2001:db8:1::1/64"),
        ("up0", "198.18.1.1/30"), ("up0", "2001:db8:a::1/64"),
    ),
    "rB": (
        ("lan0", "192.0.2.2/24"), ("lan0", "2001:db8:1::2/64"),
        ("up0", "198.18.2.1/30"), ("up0", "2001:db8:b::1/64"),
    ),
    "t1": (
        ("down0", "198.18.1.2/30"), ("down0", "2001:db8:a::2/64"),
        ("dst0", "198.51.100.1/24"), ("dst0", "2001:db8:d::1/64"),
    ),
    "t2": (
        ("down0", "198.18.2.2/30"), ("down0", "2001:db8:b::2/64"),
        ("dst0", "198.18.3.1/30"), ("dst0", "2001:db8:e::1/64"),
    ),
    "dst": (
        ("eth0", "198.51.100.66/24"), ("eth0", "2001:db8:d::66/64"),
        ("eth1", "198.18.3.2/30"), ("eth1", "2001:db8:e::2/64"),
    ),
}

_ROUTES: dict[str, tuple[tuple[str, str], ...]] = {
    "coll": (("default", "192.0.2.1"), ("default", "2001:db8:1::1")),
    # Members send everything else to their transit, so 198.18.9.9 reaches
    # t1 and is refused there.
    "rA": (("default", "198.18.1.2"), ("default", "2001:db8:a::2")),
    "rB": (("default", "198.18.2.2"), ("default", "2001:db8:b::2")),
    "t1": (("192.0.2.0/24", "198.18.1.1"), ("2001:db8:1::/64", "2001:db8:a::1")),
    "t2": (
        ("192.0.2.0/24", "198.18.2.1"), ("2001:db8:1::/64", "2001:db8:b::1"),
        ("198.51.100.66/32", "198.18.3.2"), ("2001:db8:d::66/128", "2001:db8:e::2"),
    ),
    # The asymmetry: dst answers everything over t1.
    "dst": (("default", "198.51.100.1"), ("default", "2001:db8:d::1")),
}

_ROUTERS = ("rA", "rB", "t1", "t2")

_COMMON_SYSCTLS = (
    # Set before any interface exists, so new interfaces inherit "default".
    "net.ipv6.conf.all.accept_dad=0",
    "net.ipv6.conf.default.accept_dad=0",
    "net.ipv6.conf.all.dad_transmits=0",
    "net.ipv6.conf.default.dad_transmits=0",
    "net.ipv6.conf.all.accept_ra=0",
    "net.ipv6.conf.default.accept_ra=0",
    "net.ipv4.conf.all.rp_filter=0",
    "net.ipv4.conf.default.rp_filter=0",
    "net.ipv4.icmp_ratelimit=0",
    "net.ipv6.icmp.ratelimit=0",
    # The global ICMP token bucket (shared by v4 and v6) would otherwise cap
    # errors at 1000/s with bursts of 50, which a fast trace/ping can hit.
    "net.ipv4.icmp_msgs_per_sec=1000000",
    "net.ipv4.icmp_msgs_burst=1000000",
)

_FORWARDING_SYSCTLS = (
    "net.ipv4.ip_forward=1",
    "net.ipv4.conf.all.forwarding=1",
    "net.ipv6.conf.all.forwarding=1",
    "net.ipv6.conf.default.forwarding=1",
)

_NS_NAME = re.compile(r"^ixp(?P<pid>\d+)(?:x\d+)?-(?P<role>[A-Za-z0-9]+)$")
_PREFIX_OK = re.compile(r"^ixp[A-Za-z0-9]{0,20}$")

_counter = itertools.count()
# Strong references: a lab nobody holds any more is still torn down at exit.
_live: "set[Lab]" = set()
_live_lock = threading.Lock()


class LabError(Exception):
    """A lab could not be built, or a command in it failed."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise LabError(f"ip {' '.join(args)}: {proc.stderr.strip() or 'exit %d' % proc.returncode}")
    return proc


def list_lab_namespaces() -> list[str]:
    """Names of all network namespaces that look like lab namespaces (``ixp*-role``)."""
    proc = _ip("netns", "list", check=False)
    names = []
    for line in proc.stdout.splitlines():
        name = line.split(" ", 1)[0].strip()
        if name.startswith("ixp") and name.rsplit("-", 1)[-1] in ROLES:
            names.append(name)
    return names


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _delete_ns(name: str) -> None:
    # Kill whatever still runs in the namespace first; otherwise `ip netns
    # del` succeeds but the namespace lingers until those processes exit.
    pids = _ip("netns", "pids", name, check=False).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError, PermissionError):
            os.kill(int(pid), 9)
    _ip("netns", "del", name, check=False)


def clean(all_labs: bool = False) -> list[str]:
    """Remove stale lab namespaces; return their names.

    Stale means named ``ixp<pid>-role`` for a process that no longer exists.
    With ``all_labs`` every ``ixp*-role`` namespace goes, including labs
    built by ``ixp-lab up`` and labs of running processes.
    """
    removed = []
    for name in list_lab_namespaces():
        m = _NS_NAME.match(name)
        if all_labs or (m is not None and not _pid_alive(int(m.group("pid")))):
            _delete_ns(name)
            removed.append(name)
    return removed


@attrs.define(eq=False)
class Lab:
    """A built (or being built) lab; see the module docstring."""

    prefix: str
    names: dict[str, str]
    _procs: list[subprocess.Popen[Any]] = attrs.field(factory=list, repr=False)
    _down: bool = attrs.field(default=False, repr=False)
    persistent: bool = False

    @classmethod
    def default_prefix(cls) -> str:
        n = next(_counter)
        return f"ixp{os.getpid()}" + (f"x{n}" if n else "")

    @classmethod
    def create(cls, prefix: str | None = None, *, persistent: bool = False) -> "Lab":
        """Build a lab and return it; on any failure, remove what was built and raise LabError.

        ``persistent`` labs are not torn down at interpreter exit (``ixp-lab up``).
        """
        if prefix is None:
            prefix = cls.default_prefix()
        if not _PREFIX_OK.match(prefix):
            raise LabError(f"bad lab prefix {prefix!r}: must be 'ixp' followed by up to 20 letters/digits")
        names = {role: f"{prefix}-{role}" for role in ROLES}
        existing = set(list_lab_namespaces())
        clash = sorted(existing & set(names.values()))
        if clash:
            raise LabError(f"namespace {clash[0]} already exists (run 'ixp-lab down --prefix {prefix}' or 'ixp-lab clean')")
        self = cls(prefix=prefix, names=names, persistent=persistent)
        if not persistent:
            with _live_lock:
                _live.add(self)
        try:
            self._build()
        except BaseException:
            self.teardown()
            raise
        return self

    # -- queries ---------------------------------------------------------

    def ns(self, role: str) -> str:
        """The real namespace name of ``role`` (``coll``, ``sw``, ``rA``, ``rB``, ``t1``, ``t2``, ``dst``)."""
        try:
            return self.names[role]
        except KeyError:
            if role in self.names.values():
                return role
            raise LabError(f"no such lab namespace {role!r} (roles: {', '.join(ROLES)})") from None

    def exec_argv(self, role: str, argv: Sequence[str]) -> list[str]:
        """The argv that runs ``argv`` inside namespace ``role``."""
        return ["ip", "netns", "exec", self.ns(role), *map(str, argv)]

    # -- running things --------------------------------------------------

    def run(
        self,
        role: str,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float | None = 120,
        text: bool = True,
        **kwargs: Any,
    ) -> subprocess.CompletedProcess[Any]:
        """Run ``argv`` inside ``role`` (no shell) and wait; output is captured.

        Raises LabError on a non-zero exit when ``check`` is true.
        """
        kwargs.setdefault("capture_output", True)
        proc = subprocess.run(self.exec_argv(role, argv), check=False, timeout=timeout, text=text, **kwargs)
        if check and proc.returncode != 0:
            err = proc.stderr if isinstance(proc.stderr, str) else (proc.stderr or b"").decode(errors="replace")
            raise LabError(f"{' '.join(map(str, argv))} in {role}: exit {proc.returncode}: {(err or '').strip()}")
        return proc

    def popen(self, role: str, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start ``argv`` inside ``role`` (no shell); it is killed at teardown if still running."""
        proc = subprocess.Popen(self.exec_argv(role, argv), **kwargs)
        self._procs.append(proc)
        return proc

    # -- life cycle -------------------------------------------------------

    def teardown(self) -> None:
        """Stop processes started with popen and delete every namespace. Never raises."""
        if self._down:
            return
        self._down = True
        for proc in self._procs:
            with contextlib.suppress(Exception):
                if proc.poll() is None:
                    proc.terminate()
                    try:
                        proc.wait(timeout=3)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait(timeout=3)
        for role in reversed(ROLES):
            with contextlib.suppress(Exception):
                _delete_ns(self.names[role])
        with _live_lock:
            _live.discard(self)

    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, *exc: object) -> None:
        self.teardown()

    # -- building ---------------------------------------------------------

    def _build(self) -> None:
        for role in ROLES:
            _ip("netns", "add", self.names[role])
            sysctls = list(_COMMON_SYSCTLS)
            if role in _ROUTERS:
                sysctls += _FORWARDING_SYSCTLS
            self._sysctl(role, sysctls)
            _ip("-n", self.names[role], "link", "set", "lo", "up")

        sw = self.names["sw"]
        _ip("-n", sw, "link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0")
        for ns_a, if_a, ns_b, if_b in _LINKS:
            # Created directly inside the namespaces: names need only be
            # unique per namespace, so concurrent labs never clash.
            _ip("-n", self.names[ns_a], "link", "add", if_a, "type", "veth",
                "peer", "name", if_b, "netns", self.names[ns_b])
        for _ns_a, _if_a, ns_b, if_b in _LINKS:
            if ns_b == "sw":
                _ip("-n", sw, "link", "set", if_b, "master", "br0")
        _ip("-n", sw, "link", "set", "br0", "up")
        # Up before addressing: IPv6 joins the solicited-node groups of
        # addresses added to a running interface at once.
        for ns_a, if_a, ns_b, if_b in _LINKS:
            _ip("-n", self.names[ns_a], "link", "set", if_a, "up")
            _ip("-n", self.names[ns_b], "link", "set", if_b, "up")
        for role, addrs in _ADDRESSES.items():
            for ifname, cidr in addrs:
                extra = ["nodad"] if ":" in cidr else []
                _ip("-n", self.names[role], "addr", "add", cidr, "dev", ifname, *extra)
        for role, routes in _ROUTES.items():
            for prefix, via in routes:
                fam = "-6" if ":" in via else "-4"
                _ip("-n", self.names[role], fam, "route", "add", prefix, "via", via)

    def _sysctl(self, role: str, settings: Sequence[str]) -> None:
        proc = subprocess.run(
            ["ip", "netns", "exec", self.names[role], "sysctl", "-q", "-w", *settings],
            capture_output=True, text=True,
        )
        if proc.returncode != 0:
            raise LabError(f"sysctl in {role}: {proc.stderr.strip()}")


@contextlib.contextmanager
def lab(prefix: str | None = None) -> Iterator[Lab]:
    """Build a lab for the duration of a ``with`` block; always torn down."""
    built = Lab.create(prefix)
    try:
        yield built
    finally:
        built.teardown()


@atexit.register
def _teardown_all() -> None:
    with _live_lock:
        labs = list(_live)
    for each in labs:
        each.teardown()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``ixp-lab``."""
    args_in = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="ixp-lab",
        description="Build the ixpscamper IXP lab in network namespaces (needs root).",
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_up = sub.add_parser("up", help="build a lab that stays up until 'ixp-lab down'")
    p_up.add_argument("--prefix", default="ixplab", help="namespace name prefix (default: ixplab)")
    p_down = sub.add_parser("down", help="remove a lab built by 'ixp-lab up'")
    p_down.add_argument("--prefix", default="ixplab", help="namespace name prefix (default: ixplab)")
    p_clean = sub.add_parser("clean", help="remove lab namespaces left behind by dead processes")
    p_clean.add_argument("--all", action="store_true", help="remove every ixp* lab namespace")
    sub.add_parser("demo", help="run the ixpscamper demo (ixpscamper.demo)", add_help=False)

    # Everything after "demo" belongs to the demo, including --help.
    if args_in[:1] == ["demo"]:
        return _demo(args_in[1:])
    args = parser.parse_args(args_in)

    if os.geteuid() != 0:
        print("ixp-lab: needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) to create network namespaces", file=sys.stderr)
        return 1
    try:
        if args.cmd == "up":
            built = Lab.create(args.prefix, persistent=True)
            print(f"ixp-lab: lab '{args.prefix}' is up; namespaces:")
            for role in ROLES:
                print(f"  {role:5} {built.ns(role)}")
            print(f"try: ip netns exec {built.ns('coll')} ixp-scamper -I 'trace -r 192.0.2.2 198.51.100.66'")
            return 0
        if args.cmd == "down":
            if not _PREFIX_OK.match(args.prefix):
                print(f"ixp-lab: bad prefix {args.prefix!r}", file=sys.stderr)
                return 1
            wanted = {f"{args.prefix}-{role}" for role in ROLES}
            present = [n for n in list_lab_namespaces() if n in wanted]
            if not present:
                print(f"ixp-lab: no lab with prefix '{args.prefix}'", file=sys.stderr)
                return 1
            for name in present:
                _delete_ns(name)
            print(f"ixp-lab: removed {len(present)} namespaces")
            return 0
        if args.cmd == "clean":
            removed = clean(all_labs=args.all)
            print(f"ixp-lab: removed {len(removed)} namespaces" + (": " + " ".join(removed) if removed else ""))
            return 0
    except LabError as exc:
        print(f"ixp-lab: {exc}", file=sys.stderr)
        return 1
    except FileNotFoundError as exc:
        print(f"ixp-lab: {exc.filename or exc}: not found (is iproute2 installed?)", file=sys.stderr)
        return 1
    return 2


def _demo(argv: list[str]) -> int:
    try:
        from ixpscamper import demo  # noqa: PLC0415 - optional, written separately
    except ModuleNotFoundError as exc:
        if exc.name in ("ixpscamper.demo",):
            print("ixp-lab: the demo is not available (module ixpscamper.demo is missing)", file=sys.stderr)
            return 1
        raise
    result = demo.main(argv)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
