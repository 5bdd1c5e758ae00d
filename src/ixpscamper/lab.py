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

BGP (optional: ``Lab.create(bgp=True)``, ``lab(bgp=True)``, ``ixp-lab up
--bgp``; needs BIRD 2, ``apt-get install bird2``): one ``bird -f`` per
namespace coll, rA, rB.  The collector (AS 65000) has eBGP sessions over
the LAN with rA (AS 65001) and rB (AS 65002), IPv4 and IPv6, imports
everything, exports nothing, installs nothing in its kernel, and dumps its
RIB as MRT TABLE_DUMP_V2 every ``period`` seconds.  Each member announces
the lab's prefixes (``BGP_ANNOUNCE``) with its own AS path; the members'
forwarding is untouched (static routes in BIRD only, no kernel protocol)::

    rA: 198.51.100.0/24, 2001:db8:d::/64   65001 65011 65020   (true: via t1)
        198.18.1.0/30,   2001:db8:a::/64   65001 65011
    rB: 198.51.100.0/24, 2001:db8:d::/64   65002 65002 65020   (a lie: the
        data plane goes via t2, AS 65012; the mismatch of the lab)
        198.18.2.0/30,   2001:db8:b::/64   65002 65012
        198.18.3.0/30,   2001:db8:e::/64   65002 65012 65020

``L.bgp_wait()`` waits until the collector holds every announced route and
``L.bgp_rib_files()`` returns freshly dumped, complete MRT files (IPv4 and
IPv6 table); ``L.bgp.dir`` holds configs, control sockets, pid files and
dumps (removed at teardown).

ECMP (optional: ``Lab.create(ecmp=True)``, ``lab(ecmp=True)``): a
load-balanced segment for ``tracelb`` and a multi-interface router for
``dealias``.  Two more namespaces m1 and m2 sit between t1 and dst, and
dst gets a second destination on its loopback, 203.0.113.66 and
2001:db8:f::66, which t1 reaches by a multipath route over both
(``nexthop via m1 nexthop via m2``, hashed on the 5-tuple of each packet:
``fib_multipath_hash_policy=3`` with fields 0x37 for IPv4 and IPv6, policy 1
on kernels without it; hash seed fixed at 1 where the kernel allows it)::

    t1  198.18.11.1 2001:db8:11::1 -> m1 198.18.11.2 2001:db8:11::2
        198.18.12.1 2001:db8:12::1 -> m2 198.18.12.2 2001:db8:12::2
    m1  198.18.21.1 2001:db8:21::1 -> dst 198.18.21.2 2001:db8:21::2
    m2  198.18.22.1 2001:db8:22::1 -> dst 198.18.22.2 2001:db8:22::2

so ``tracelb 203.0.113.66`` from coll finds 192.0.2.1, 198.18.1.2, then
198.18.11.2 and 198.18.12.2, then the destination.  m1 and m2 send
everything else back to t1; nothing of the base lab changes.  t1 then has
six IPv4 interfaces (aliases of one router), and m1 / m2 are two routers
that are not aliases of each other (``ECMP_ADDRS``).

CLI (as root)::

    ixp-lab up [--prefix P] [--bgp]  build a lab that stays up (default prefix ixplab)
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
    "BGP_ASNS",
    "BGP_ANNOUNCE",
    "LabBGP",
    "ECMP_ROLES",
    "ECMP_ADDRS",
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

#: AS numbers of the lab's networks (BGP mode).
BGP_ASNS: dict[str, int] = {"coll": 65000, "rA": 65001, "rB": 65002, "t1": 65011, "t2": 65012, "dst": 65020}

#: What each member announces to the collector: (prefix, static next hop,
#: AS path *behind* the member; BIRD puts the member's own AS in front).
BGP_ANNOUNCE: dict[str, tuple[tuple[str, str, tuple[int, ...]], ...]] = {
    "rA": (
        ("198.51.100.0/24", "198.18.1.2", (65011, 65020)),
        ("2001:db8:d::/64", "2001:db8:a::2", (65011, 65020)),
        ("198.18.1.0/30", "198.18.1.2", (65011,)),
        ("2001:db8:a::/64", "2001:db8:a::2", (65011,)),
    ),
    "rB": (
        # The lie: rB claims to reach AS 65020 directly (prepended once),
        # but its data plane goes through t2 (AS 65012).
        ("198.51.100.0/24", "198.18.2.2", (65002, 65020)),
        ("2001:db8:d::/64", "2001:db8:b::2", (65002, 65020)),
        ("198.18.2.0/30", "198.18.2.2", (65012,)),
        ("2001:db8:b::/64", "2001:db8:b::2", (65012,)),
        ("198.18.3.0/30", "198.18.2.2", (65012, 65020)),
        ("2001:db8:e::/64", "2001:db8:b::2", (65012, 65020)),
    ),
}

_BGP_ROLES = ("coll", "rA", "rB")

#: The namespaces the ECMP option adds (``Lab.create(ecmp=True)``).
ECMP_ROLES: tuple[str, ...] = ("m1", "m2")
_ALL_ROLES = frozenset(ROLES + ECMP_ROLES)

#: Addresses of the ECMP option.
ECMP_ADDRS: dict[str, str] = {
    "dst": "203.0.113.66",
    "dst6": "2001:db8:f::66",
    "t1_m1": "198.18.11.1",
    "t1_m16": "2001:db8:11::1",
    "t1_m2": "198.18.12.1",
    "t1_m26": "2001:db8:12::1",
    "m1": "198.18.11.2",
    "m16": "2001:db8:11::2",
    "m2": "198.18.12.2",
    "m26": "2001:db8:12::2",
    "m1_dst": "198.18.21.1",
    "m1_dst6": "2001:db8:21::1",
    "m2_dst": "198.18.22.1",
    "m2_dst6": "2001:db8:22::1",
    "dst_m1": "198.18.21.2",
    "dst_m16": "2001:db8:21::2",
    "dst_m2": "198.18.22.2",
    "dst_m26": "2001:db8:22::2",
}

_ECMP_LINKS: tuple[tuple[str, str, str, str], ...] = (
    ("t1", "m1", "m1", "up0"),
    ("t1", "m2", "m2", "up0"),
    ("m1", "down0", "dst", "m1"),
    ("m2", "down0", "dst", "m2"),
)

_ECMP_ADDRESSES: tuple[tuple[str, str, str], ...] = (
    ("t1", "m1", "198.18.11.1/30"), ("t1", "m1", "2001:db8:11::1/64"),
    ("t1", "m2", "198.18.12.1/30"), ("t1", "m2", "2001:db8:12::1/64"),
    ("m1", "up0", "198.18.11.2/30"), ("m1", "up0", "2001:db8:11::2/64"),
    ("m2", "up0", "198.18.12.2/30"), ("m2", "up0", "2001:db8:12::2/64"),
    ("m1", "down0", "198.18.21.1/30"), ("m1", "down0", "2001:db8:21::1/64"),
    ("m2", "down0", "198.18.22.1/30"), ("m2", "down0", "2001:db8:22::1/64"),
    ("dst", "m1", "198.18.21.2/30"), ("dst", "m1", "2001:db8:21::2/64"),
    ("dst", "m2", "198.18.22.2/30"), ("dst", "m2", "2001:db8:22::2/64"),
    ("dst", "lo", "203.0.113.66/32"), ("dst", "lo", "2001:db8:f::66/128"),
)

_ECMP_ROUTES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("t1", ("-4", "route", "add", "203.0.113.66/32",
            "nexthop", "via", "198.18.11.2", "nexthop", "via", "198.18.12.2")),
    ("t1", ("-6", "route", "add", "2001:db8:f::66/128",
            "nexthop", "via", "2001:db8:11::2", "nexthop", "via", "2001:db8:12::2")),
    ("m1", ("-4", "route", "add", "203.0.113.66/32", "via", "198.18.21.2")),
    ("m1", ("-6", "route", "add", "2001:db8:f::66/128", "via", "2001:db8:21::2")),
    ("m1", ("-4", "route", "add", "default", "via", "198.18.11.1")),
    ("m1", ("-6", "route", "add", "default", "via", "2001:db8:11::1")),
    ("m2", ("-4", "route", "add", "203.0.113.66/32", "via", "198.18.22.2")),
    ("m2", ("-6", "route", "add", "2001:db8:f::66/128", "via", "2001:db8:22::2")),
    ("m2", ("-4", "route", "add", "default", "via", "198.18.12.1")),
    ("m2", ("-6", "route", "add", "default", "via", "2001:db8:12::1")),
)

# Hash on the 5-tuple, so flows (ports) pick the next hop, not just
# addresses.  Policy 3 (custom fields, Linux >= 5.12) rather than policy 1:
# policy 1 takes a hash already stored on the packet (skb->l4_hash, which a
# sender's socket, RPS or transmit-queue selection on the way may have set)
# in place of its own, so the same flow could take different next hops from
# one run to the next - seen in CI as scamper missing a branch that ours,
# sending the same flows a moment earlier, found.  Policy 3 always dissects
# the packet.  Fields 0x37: source and destination address, protocol,
# source and destination port (not the IPv6 flow label: as policy 1).
_ECMP_SYSCTLS = (
    "net.ipv4.fib_multipath_hash_policy=3",
    "net.ipv4.fib_multipath_hash_fields=0x0037",
    "net.ipv6.fib_multipath_hash_policy=3",
    "net.ipv6.fib_multipath_hash_fields=0x0037",
)
# Kernels before 5.12 have no custom policy: the 5-tuple policy, as before.
_ECMP_SYSCTLS_OLD = (
    "net.ipv4.fib_multipath_hash_policy=1",
    "net.ipv6.fib_multipath_hash_policy=1",
)

# A fixed hash seed (Linux >= 6.11, IPv4 and IPv6): the same flows take the
# same next hops in every lab, so results do not depend on a random seed.
# Older kernels lack the setting; it is then left random.
_ECMP_SEED = "net.ipv4.fib_multipath_hash_seed=1"

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
        if name.startswith("ixp") and name.rsplit("-", 1)[-1] in _ALL_ROLES:
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
    #: BGP state when built with ``bgp=True`` (else None).
    bgp: "LabBGP | None" = None

    @classmethod
    def default_prefix(cls) -> str:
        n = next(_counter)
        return f"ixp{os.getpid()}" + (f"x{n}" if n else "")

    @classmethod
    def create(cls, prefix: str | None = None, *, persistent: bool = False,
               bgp: bool = False, bgp_dir: str | None = None, mrt_period: int = 1,
               ecmp: bool = False) -> "Lab":
        """Build a lab and return it; on any failure, remove what was built and raise LabError.

        ``persistent`` labs are not torn down at interpreter exit (``ixp-lab up``).
        ``bgp`` also starts BIRD in coll, rA and rB (see the module docstring);
        its files go to ``bgp_dir`` (default: a new temporary directory) and
        the collector dumps its RIB every ``mrt_period`` seconds.
        ``ecmp`` adds the load-balanced segment (m1, m2; see the module docstring).
        """
        if prefix is None:
            prefix = cls.default_prefix()
        if not _PREFIX_OK.match(prefix):
            raise LabError(f"bad lab prefix {prefix!r}: must be 'ixp' followed by up to 20 letters/digits")
        names = {role: f"{prefix}-{role}" for role in ROLES}
        if ecmp:
            names.update({role: f"{prefix}-{role}" for role in ECMP_ROLES})
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
            if ecmp:
                self._build_ecmp()
            if bgp:
                self.bgp = LabBGP.start(self, bgp_dir, mrt_period)
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
        if self.bgp is not None:
            with contextlib.suppress(Exception):
                self.bgp.stop()
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
        for role in ECMP_ROLES:
            if role in self.names:
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

    def _build_ecmp(self) -> None:
        for role in ECMP_ROLES:
            _ip("netns", "add", self.names[role])
            self._sysctl(role, list(_COMMON_SYSCTLS) + list(_FORWARDING_SYSCTLS))
            _ip("-n", self.names[role], "link", "set", "lo", "up")
        try:
            self._sysctl("t1", _ECMP_SYSCTLS)
        except LabError:
            self._sysctl("t1", _ECMP_SYSCTLS_OLD)
        with contextlib.suppress(LabError):
            self._sysctl("t1", [_ECMP_SEED])
        for ns_a, if_a, ns_b, if_b in _ECMP_LINKS:
            _ip("-n", self.names[ns_a], "link", "add", if_a, "type", "veth",
                "peer", "name", if_b, "netns", self.names[ns_b])
            _ip("-n", self.names[ns_a], "link", "set", if_a, "up")
            _ip("-n", self.names[ns_b], "link", "set", if_b, "up")
        for role, ifname, cidr in _ECMP_ADDRESSES:
            extra = ["nodad"] if ":" in cidr else []
            _ip("-n", self.names[role], "addr", "add", cidr, "dev", ifname, *extra)
        for role, args in _ECMP_ROUTES:
            _ip("-n", self.names[role], *args)

    def _sysctl(self, role: str, settings: Sequence[str]) -> None:
        proc = subprocess.run(
            ["ip", "netns", "exec", self.names[role], "sysctl", "-q", "-w", *settings],
            capture_output=True, text=True,
        )
        if proc.returncode != 0:
            raise LabError(f"sysctl in {role}: {proc.stderr.strip()}")


@attrs.define(eq=False)
class LabBGP:
    """BIRD daemons of a lab built with ``bgp=True`` (see the module docstring).

    ``dir`` holds ``ROLE.conf``, ``ROLE.ctl`` (BIRD's control socket),
    ``ROLE.pid`` and the collector's dumps ``master4.*.mrt`` /
    ``master6.*.mrt``.
    """

    lab: "Lab"
    dir: str
    period: int
    own_dir: bool
    procs: dict[str, subprocess.Popen[Any]] = attrs.field(factory=dict)

    @classmethod
    def start(cls, lab: "Lab", directory: str | None, period: int) -> "LabBGP":
        """Write the configs and start one ``bird -f`` per BGP namespace."""
        import shutil  # noqa: PLC0415
        import tempfile  # noqa: PLC0415

        if shutil.which("bird") is None:
            raise LabError("bird not found: BGP in the lab needs BIRD 2 (apt-get install bird2)")
        own = directory is None
        if directory is None:
            directory = tempfile.mkdtemp(prefix=f"{lab.prefix}-bgp-")
        else:
            os.makedirs(directory, exist_ok=True)
        self = cls(lab=lab, dir=directory, period=max(1, int(period)), own_dir=own)
        for role in _BGP_ROLES:
            conf = os.path.join(directory, f"{role}.conf")
            with open(conf, "w") as f:
                f.write(self.config(role))
            check = subprocess.run(["bird", "-p", "-c", conf], capture_output=True, text=True)
            if check.returncode != 0:
                raise LabError(f"BIRD config for {role}: {(check.stderr or check.stdout).strip()}")
        for role in _BGP_ROLES:
            argv = ["bird", "-f", "-c", self.path(role, "conf"), "-s", self.path(role, "ctl"),
                    "-P", self.path(role, "pid")]
            log = open(self.path(role, "log"), "wb")
            self.procs[role] = lab.popen(role, argv, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
            log.close()
        return self

    def path(self, role: str, ext: str) -> str:
        """``DIR/ROLE.EXT``."""
        return os.path.join(self.dir, f"{role}.{ext}")

    def config(self, role: str) -> str:
        """The BIRD configuration of ``role`` (coll, rA or rB)."""
        # Short timers: the sessions come up (and come back) within seconds,
        # whichever daemon starts first.
        timers = "connect retry time 1; connect delay time 1; error wait time 1, 2;"
        lines = [f"# ixp-lab {self.lab.prefix}: {role}", f"router id {ADDRS[role]};",
                 "protocol device { scan time 1; }"]
        asn = BGP_ASNS[role]
        if role == "coll":
            for m in ("rA", "rB"):
                for v, sfx in ((4, ""), (6, "6")):
                    lines.append(
                        f"protocol bgp {m}_{v} {{ local {ADDRS['coll' + sfx]} as {asn}; "
                        f"neighbor {ADDRS[m + sfx]} as {BGP_ASNS[m]}; {timers} "
                        f"ipv{v} {{ import all; export none; }}; }}")
            lines.append(f'protocol mrt ribdump {{ table "master*"; '
                         f'filename "{self.dir}/%N.%s.mrt"; period {self.period}; }}')
        else:
            for v, sfx in ((4, ""), (6, "6")):
                routes = []
                for prefix, via, path in BGP_ANNOUNCE[role]:
                    if (":" in prefix) != (v == 6):
                        continue
                    pre = " ".join(f"bgp_path.prepend({a});" for a in reversed(path))
                    routes.append(f"route {prefix} via {via} {{ {pre} }};")
                lines.append(f"protocol static ann{v} {{ ipv{v}; {' '.join(routes)} }}")
                lines.append(
                    f"protocol bgp coll_{v} {{ local {ADDRS[role + sfx]} as {asn}; "
                    f"neighbor {ADDRS['coll' + sfx]} as {BGP_ASNS['coll']}; {timers} "
                    f'ipv{v} {{ import none; export where proto = "ann{v}"; }}; }}')
        return "\n".join(lines) + "\n"

    def birdc(self, role: str, *command: str, timeout: float = 10) -> str:
        """Run a ``birdc`` command against ``role``'s daemon; its output."""
        proc = subprocess.run(["birdc", "-s", self.path(role, "ctl"), *command],
                              capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise LabError(f"birdc {' '.join(command)} ({role}): {(proc.stderr or proc.stdout).strip()}")
        return proc.stdout

    def expected_routes(self) -> int:
        """How many routes the collector holds once every session is up."""
        return sum(len(a) for a in BGP_ANNOUNCE.values())

    def route_count(self) -> int:
        """Routes the collector holds now (0 while its daemon is not up)."""
        try:
            out = self.birdc("coll", "show", "route", "count", timeout=5)
        except (LabError, subprocess.TimeoutExpired):
            return 0
        total = 0
        for m in re.finditer(r"(\d+) of \d+ routes", out):
            total += int(m.group(1))
        if total == 0:
            m = re.search(r"(\d+) routes", out)
            total = int(m.group(1)) if m else 0
        return total

    def bgp_wait(self, timeout: float = 30.0) -> None:
        """Wait until the collector holds every announced route (LabError on timeout)."""
        import time  # noqa: PLC0415

        end = time.monotonic() + timeout
        want = self.expected_routes()
        while True:
            for role, proc in self.procs.items():
                if proc.poll() is not None:
                    raise LabError(f"bird in {role} exited with status {proc.returncode}: "
                                   f"{self._log_tail(role)}")
            have = self.route_count()
            if have >= want:
                return
            if time.monotonic() > end:
                raise LabError(f"BGP: the collector has {have} of {want} routes after {timeout:g} s")
            time.sleep(0.2)

    def _log_tail(self, role: str) -> str:
        try:
            with open(self.path(role, "log"), errors="replace") as f:
                return " | ".join(f.read().strip().splitlines()[-3:])
        except OSError:
            return "(no log)"

    def _dumps(self) -> dict[str, list[tuple[int, str]]]:
        out: dict[str, list[tuple[int, str]]] = {"master4": [], "master6": []}
        for name in os.listdir(self.dir):
            m = re.match(r"^(master[46])\.(\d+)\.mrt$", name)
            if m:
                out[m.group(1)].append((int(m.group(2)), os.path.join(self.dir, name)))
        for v in out.values():
            v.sort()
        return out

    def bgp_rib_files(self, timeout: float = 30.0) -> list[str]:
        """Complete MRT dumps (IPv4 table, IPv6 table) holding every announced route.

        Waits for the routes (:meth:`bgp_wait`), then for dumps started after
        that moment; a dump counts as complete once BIRD has started the
        next one (it writes a file in steps)."""
        import time  # noqa: PLC0415

        self.bgp_wait(timeout)
        since = int(time.time()) + 1
        end = time.monotonic() + timeout + 3 * self.period
        while True:
            dumps = self._dumps()
            picked = []
            for table in ("master4", "master6"):
                done = [p for ts, p in dumps[table][:-1] if ts >= since]
                if done:
                    picked.append(done[0])
            if len(picked) == 2:
                return picked
            if time.monotonic() > end:
                raise LabError(f"BGP: no complete MRT dump in {self.dir} after {timeout:g} s")
            time.sleep(0.2)

    def stop(self) -> None:
        """Kill every daemon by its pid and remove our directory. Never raises."""
        import shutil  # noqa: PLC0415

        for role, proc in self.procs.items():
            pids = {proc.pid}
            with contextlib.suppress(OSError, ValueError):
                with open(self.path(role, "pid")) as f:
                    pids.add(int(f.read().strip()))
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, 15)
            with contextlib.suppress(Exception):
                proc.wait(timeout=3)
            if proc.poll() is None:
                with contextlib.suppress(Exception):
                    proc.kill()
                    proc.wait(timeout=3)
        if self.own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def lab(prefix: str | None = None, *, bgp: bool = False, ecmp: bool = False) -> Iterator[Lab]:
    """Build a lab for the duration of a ``with`` block; always torn down."""
    built = Lab.create(prefix, bgp=bgp, ecmp=ecmp)
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
    from ixpscamper.cli_support import ArgumentParser
    parser = ArgumentParser(
        prog="ixp-lab",
        description="Build the ixpscamper IXP lab in network namespaces (needs root).",
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_up = sub.add_parser("up", help="build a lab that stays up until 'ixp-lab down'")
    p_up.add_argument("--prefix", default="ixplab", help="namespace name prefix (default: ixplab)")
    p_up.add_argument("--bgp", action="store_true",
                      help="also run BIRD (collector + members rA, rB) and dump the collector's RIB as MRT")
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
            built = Lab.create(args.prefix, persistent=True, bgp=args.bgp,
                               bgp_dir=_bgp_dir(args.prefix) if args.bgp else None, mrt_period=5)
            print(f"ixp-lab: lab '{args.prefix}' is up; namespaces:")
            for role in ROLES:
                print(f"  {role:5} {built.ns(role)}")
            if built.bgp is not None:
                files = built.bgp.bgp_rib_files()
                print(f"BGP: collector RIB dumped every 5 s in {built.bgp.dir} (latest complete: "
                      f"{' '.join(os.path.basename(f) for f in files)})")
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
            import shutil  # noqa: PLC0415
            shutil.rmtree(_bgp_dir(args.prefix), ignore_errors=True)
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


def _bgp_dir(prefix: str) -> str:
    """Where ``ixp-lab up --bgp`` keeps BIRD's files (removed by ``down``)."""
    return os.path.join("/run" if os.path.isdir("/run") else "/tmp", f"{prefix}-bgp")


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
