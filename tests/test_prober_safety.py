"""Destinations that must not be probed: which ones, with what message, and
that nothing is sent to them (the reliability issue's "probing what must not
be probed").

The table says, for each address, what ixpscamper does and what the real
scamper does.  scamper parses every address and leaves the refusal to the
kernel (its getsrc ``connect`` and the bind of its probe socket), so
``test_scamper_oracle`` runs the Debian scamper on every row inside a fresh
network namespace whose only link is a veth pair with both ends in that
namespace: the kernel has a default route (so the refusals are the ones a
real machine gives) but nothing can leave the machine.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess

import pytest

import pyroute2  # noqa: F401 - imported before any socket patching elsewhere
from ixpscamper import scamper_cli
from ixpscamper.commands import PingOptions, TraceOptions, destination_problem, parse_command
from ixpscamper.prober import ProberError
from ixpscamper.prober.simnet import make_prober, run_until
from ixpscamper.prober.specs import unsupported
from tests.conftest import requires_root, requires_tool

# ours: "refuse" = refused before anything is sent, whatever the network;
# "route" = left to the route lookup (not a unicast route there: refused);
# "probe" = probed.  scamper: True if the Debian scamper sends nothing.
TABLE: list[tuple[str, str, bool, str]] = [
    # addr, ours, scamper refuses, why
    ("127.0.0.1", "probe", False, "loopback"),
    ("127.1.2.3", "probe", False, "loopback"),
    ("::1", "probe", False, "loopback"),
    ("::ffff:127.0.0.1", "refuse", True, "v4-mapped: scamper's icmp6 bind fails"),
    ("::ffff:8.8.8.8", "refuse", True, "v4-mapped: scamper's icmp6 bind fails"),
    ("::ffff:192.0.2.1", "refuse", True, "v4-mapped"),
    ("255.255.255.255", "refuse", True, "limited broadcast: connect EACCES"),
    ("10.99.0.255", "route", True, "directed broadcast of the oracle's subnet: EACCES"),
    ("127.255.255.255", "route", True, "directed broadcast of lo: EACCES"),
    ("fe80::1", "refuse", True, "link-local: connect EINVAL (no scope)"),
    ("fe80::1234:5678", "refuse", True, "link-local"),
    ("ff02::1", "refuse", True, "link-scope multicast: EINVAL"),
    # departures: scamper sends these, ixpscamper does not
    ("224.0.0.1", "refuse", False, "multicast"),
    ("239.255.255.250", "refuse", False, "multicast"),
    ("ff0e::1", "refuse", False, "global multicast"),
    ("ff05::2", "refuse", False, "site multicast"),
    ("0.0.0.0", "refuse", False, "unspecified (scamper probes the local host)"),
    ("::", "refuse", False, "unspecified (scamper probes the local host)"),
    ("::127.0.0.1", "refuse", False, "v4-compatible (deprecated)"),
    ("::8.8.8.8", "refuse", False, "v4-compatible (deprecated)"),
    ("::2", "refuse", False, "v4-compatible range ::/96"),
    # probed by both: the lab's ranges and other special-purpose unicast
    ("192.0.2.1", "probe", False, "TEST-NET-1, the lab's exchange LAN"),
    ("198.51.100.66", "probe", False, "TEST-NET-2, the lab's destination"),
    ("198.18.1.2", "probe", False, "benchmarking, the lab's transits"),
    ("203.0.113.9", "probe", False, "TEST-NET-3"),
    ("10.0.0.1", "probe", False, "private"),
    ("100.64.0.1", "probe", False, "shared address space"),
    ("169.254.1.1", "probe", False, "IPv4 link-local: scamper sends"),
    ("0.1.2.3", "probe", False, "this-network: scamper sends"),
    ("240.0.0.1", "probe", False, "reserved: scamper sends"),
    ("2001:db8::1", "probe", False, "documentation, the lab's IPv6"),
    ("2001:db8:d::66", "probe", False, "the lab's IPv6 destination"),
    ("64:ff9b::102:304", "probe", False, "NAT64"),
    ("2002::1", "probe", False, "6to4"),
    ("fc00::1", "probe", False, "unique local"),
    ("100::1", "probe", False, "discard-only"),
    ("3fff::1", "probe", False, "documentation (RFC 9637)"),
    ("fec0::1", "probe", False, "deprecated site-local: routed like any other"),
]


@pytest.mark.parametrize("addr,ours,_scamper,why", TABLE, ids=[r[0] for r in TABLE])
def test_destination_table(addr: str, ours: str, _scamper: bool, why: str) -> None:
    problem = destination_problem(ipaddress.ip_address(addr))
    assert (problem is not None) == (ours == "refuse"), why
    for cmd in (f"ping {addr}", f"trace {addr}", f"trace -P icmp-paris {addr}", f"ping -P udp {addr}"):
        reason = unsupported(parse_command(cmd))  # the command language accepts every address
        if ours == "refuse":
            assert reason is not None and reason.startswith(f"cannot {cmd.split()[0]} ")
            assert "\n" not in reason and problem in reason
        else:
            assert reason is None


def test_messages() -> None:
    def why(a: str) -> str | None:
        return unsupported(parse_command(f"ping {a}"))

    assert why("::ffff:127.0.0.1") == (
        "cannot ping ::ffff:127.0.0.1: it is an IPv4-mapped IPv6 address (probe 127.0.0.1 instead)")
    assert why("255.255.255.255") == "cannot ping 255.255.255.255: it is the IPv4 limited broadcast address"
    assert why("ff02::1") == "cannot ping ff02::1: it is a multicast address"
    assert why("224.0.0.1") == "cannot ping 224.0.0.1: it is a multicast address"
    assert why("::") == "cannot ping ::: it is the unspecified address"
    assert unsupported(parse_command("trace fe80::1")) == (
        "cannot trace fe80::1: it is an IPv6 link-local address (no interface can be given)")


@pytest.mark.parametrize("options", [
    PingOptions(dst=ipaddress.ip_address("::ffff:127.0.0.1")),
    TraceOptions(dst=ipaddress.ip_address("::ffff:127.0.0.1")),
    TraceOptions(dst=ipaddress.ip_address("224.0.0.1"), method="icmp-paris"),
    PingOptions(dst=ipaddress.ip_address("ff02::1")),
    PingOptions(dst=ipaddress.ip_address("0.0.0.0")),
])
def test_prober_sends_nothing_to_a_refused_destination(options) -> None:
    # The Python API bypasses the command parser: the prober refuses too.
    # The simulated network routes everything, as a default route would.
    clock, net, prober = make_prober({str(options.dst): [str(options.dst)]})
    task = prober.submit(options)
    (result,) = run_until(clock, [task.deferred])
    failure = getattr(result, "value", result)
    assert isinstance(failure, ProberError), result
    assert str(failure).startswith(f"cannot {options.kind} ")
    assert net.sent == []


@pytest.mark.parametrize("argv", [
    ["-c", "ping -c 1", "-i", "::ffff:127.0.0.1"],
    ["-I", "trace 127.0.0.1", "-I", "ping -c 1 ::ffff:127.0.0.1"],
    ["-c", "trace", "-i", "::1", "ff02::1"],
    ["-I", "ping 255.255.255.255"],
])
def test_cli_refuses_before_sending(argv, capsys, monkeypatch) -> None:
    # every command is checked before the prober exists: none is built
    import ixpscamper.prober as prober_mod

    def no_prober(*a, **k):
        raise AssertionError("a prober was created for a refused command")

    monkeypatch.setattr(prober_mod, "Prober", no_prober)
    assert scamper_cli.main(argv) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("ixp-scamper: bad command ") and ": it is " in err


# -- the oracle: the real scamper in a namespace nothing can leave -------------------


def _ns(name: str, *cmd: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", name, *cmd], capture_output=True, text=True,
                          check=check, timeout=timeout)


@pytest.fixture
def sealed_ns():
    """A fresh namespace: lo, and a veth pair with both ends inside it carrying
    the default routes, so the kernel answers as on a connected machine and
    every packet stays in the namespace."""
    name = f"ixpchk{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        # no duplicate address detection: every address is usable at once, so
        # the kernel's answers do not depend on how fast the test runs
        for cmd in (["sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0"],
                    ["sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0"],
                    ["ip", "link", "set", "lo", "up"],
                    ["ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1"],
                    # d1 is only the far end of the wire: no IPv6 there, so the
                    # multicast routes are d0's alone
                    ["sysctl", "-qw", "net.ipv6.conf.d1.disable_ipv6=1"],
                    ["ip", "link", "set", "d0", "up"], ["ip", "link", "set", "d1", "up"],
                    ["ip", "addr", "add", "10.99.0.1/24", "dev", "d0"],
                    ["ip", "-6", "addr", "add", "2001:db8:99::1/64", "dev", "d0"],
                    ["ip", "route", "add", "default", "dev", "d0"],
                    ["ip", "-6", "route", "add", "default", "dev", "d0"]):
            _ns(name, *cmd)
        # no route out of the namespace exists: its only links are lo and d0<->d1
        links = _ns(name, "ip", "-o", "link").stdout
        assert sorted(line.split(":")[1].strip().split("@")[0] for line in links.splitlines()) \
            == ["d0", "d1", "lo"]
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


@requires_root
@requires_tool("scamper")
def test_scamper_oracle(sealed_ns) -> None:
    addrs = [a for a, *_ in TABLE]
    proc = _ns(sealed_ns, "scamper", "-O", "json", "-p", "1000", "-c", "ping -c 1 -W 1", "-i", *addrs,
               check=False)
    sent: dict[ipaddress._BaseAddress, int] = {}
    for line in proc.stdout.splitlines():
        rec = json.loads(line)
        if rec.get("type") == "ping":
            sent[ipaddress.ip_address(rec["dst"])] = rec["ping_sent"]
    refused_by_scamper = {a for a in addrs if sent.get(ipaddress.ip_address(a), 0) == 0}
    assert refused_by_scamper == {a for a, _, theirs, _ in TABLE if theirs}, proc.stderr
    # ours refuses everything scamper refuses, up front or at the route lookup
    assert all(ours in ("refuse", "route") for a, ours, theirs, _ in TABLE if theirs)


@requires_root
@requires_tool("scamper")
def test_route_rows_refused_by_our_prober(sealed_ns) -> None:
    # the directed broadcasts: our route lookup finds no unicast route
    for addr in [a for a, ours, *_ in TABLE if ours == "route"]:
        proc = _ns(sealed_ns, "ixp-scamper", "-I", f"ping -c 1 -W 1 {addr}", check=False)
        assert proc.returncode == 1 and proc.stdout == ""
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
        assert addr in proc.stderr
