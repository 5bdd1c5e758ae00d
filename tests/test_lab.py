"""The namespace IXP lab: built as the fixtures README describes, asymmetric, torn down."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

from ixpscamper import lab as labmod
from ixpscamper.lab import ADDRS, ROLES, Lab, LabError, lab, list_lab_namespaces
from tests.conftest import requires_root, requires_tool

# One ICMP echo with a raw socket; prints "<reply source> <reply ttl>" or "timeout".
# (No ping binary is needed, and the lab addresses are ours to probe.)
ECHO = r"""
import os, socket, struct, sys, time
dst, src = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else None)
v6 = ":" in dst
ident = os.getpid() & 0xFFFF
if v6:
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
    pkt = struct.pack("!BBHHH", 128, 0, 0, ident, 1) + b"lab-test"
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    body = struct.pack("!BBHHH", 8, 0, 0, ident, 1) + b"lab-test"
    c = sum(struct.unpack("!%dH" % (len(body) // 2), body))
    c = (c >> 16) + (c & 0xFFFF); c += c >> 16
    pkt = body[:2] + struct.pack("!H", ~c & 0xFFFF) + body[4:]
if src:
    s.bind((src, 0))
s.sendto(pkt, (dst, 0))
end = time.monotonic() + 2
while time.monotonic() < end:
    s.settimeout(max(0.01, end - time.monotonic()))
    try:
        data, anc, _f, addr = s.recvmsg(2048, 64)
    except socket.timeout:
        break
    if v6:
        if data[0] == 129 and struct.unpack("!H", data[4:6])[0] == ident:
            hl = [struct.unpack("i", d)[0] for lvl, t, d in anc if t == socket.IPV6_HOPLIMIT]
            print(addr[0], hl[0]); sys.exit(0)
    else:
        ihl = (data[0] & 15) * 4
        if data[ihl] == 0 and struct.unpack("!H", data[ihl + 4:ihl + 6])[0] == ident:
            print(addr[0], data[8]); sys.exit(0)
print("timeout")
"""


def echo(L: Lab, role: str, dst: str, src: str | None = None) -> str:
    argv = [sys.executable, "-c", ECHO, dst] + ([src] if src else [])
    return L.run(role, argv, timeout=10).stdout.strip()


def link_stats(L: Lab, role: str, ifname: str) -> tuple[int, int]:
    """(rx_packets, tx_packets) of an interface."""
    out = L.run(role, ["cat", f"/sys/class/net/{ifname}/statistics/rx_packets",
                       f"/sys/class/net/{ifname}/statistics/tx_packets"]).stdout.split()
    return int(out[0]), int(out[1])


@pytest.fixture(scope="module")
def shared_lab():
    if not labmod.os.geteuid() == 0:
        pytest.skip("needs root (network namespaces)")
    built = Lab.create()
    try:
        yield built
    finally:
        built.teardown()


@requires_root
def test_namespaces_are_unique_and_present(shared_lab: Lab) -> None:
    names = set(list_lab_namespaces())
    for role in ROLES:
        ns = shared_lab.ns(role)
        assert ns.startswith(f"ixp{labmod.os.getpid()}")
        assert ns.endswith("-" + role)
        assert ns in names
    with pytest.raises(LabError, match="no such lab namespace"):
        shared_lab.ns("nope")


@requires_root
def test_addresses_and_routes(shared_lab: Lab) -> None:
    addrs = shared_lab.run("coll", ["ip", "-br", "addr", "show", "dev", "eth0"]).stdout
    assert "192.0.2.10/24" in addrs and "2001:db8:1::10/64" in addrs
    assert "tentative" not in shared_lab.run("coll", ["ip", "-6", "addr"]).stdout
    route = shared_lab.run("coll", ["ip", "route", "get", ADDRS["dst"]]).stdout
    assert "via 192.0.2.1" in route
    route6 = shared_lab.run("coll", ["ip", "-6", "route", "get", ADDRS["dst6"]]).stdout
    assert "via 2001:db8:1::1" in route6
    # dst answers over t1; t2 reaches dst only by its host route; t1 has no default.
    assert "via 198.51.100.1" in shared_lab.run("dst", ["ip", "route", "get", "192.0.2.10"]).stdout
    assert "via 198.18.3.2" in shared_lab.run("t2", ["ip", "route", "get", ADDRS["dst"]]).stdout
    no_route = shared_lab.run("t1", ["ip", "route", "get", ADDRS["no_route"]], check=False)
    assert no_route.returncode != 0
    for ns in ("rA", "rB", "t1", "t2", "dst", "coll"):
        out = shared_lab.run(ns, ["sysctl", "-n", "net.ipv4.icmp_ratelimit", "net.ipv6.icmp.ratelimit"]).stdout
        assert out.split() == ["0", "0"], ns
    for ns in ("rA", "rB", "t1", "t2"):
        out = shared_lab.run(ns, ["sysctl", "-n", "net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"]).stdout
        assert out.split() == ["1", "1"], ns


@requires_root
@pytest.mark.parametrize("dst", [ADDRS["dst"], ADDRS["dst6"]])
def test_echo_from_coll_reaches_dst(shared_lab: Lab, dst: str) -> None:
    # dst (64) -> t1 (63) -> rA (62) -> coll
    assert echo(shared_lab, "coll", dst) == f"{dst} 62"


@requires_root
def test_missing_hosts_do_not_answer(shared_lab: Lab) -> None:
    assert echo(shared_lab, "coll", ADDRS["lan_missing"]) == "timeout"


@requires_root
@pytest.mark.parametrize("dst,src", [(ADDRS["dst"], ADDRS["rB"]), (ADDRS["dst6"], ADDRS["rB6"])])
def test_replies_return_asymmetrically(shared_lab: Lab, dst: str, src: str) -> None:
    """From rB the request goes rB -> t2 -> dst, the reply dst -> t1 -> rA -> rB.

    Over t2 the reply would arrive with TTL 63; the long way round gives 62,
    and dst's t2-side interface receives the requests but sends no replies.
    """
    rx_before, tx_before = link_stats(shared_lab, "dst", "eth1")
    _, tx0_before = link_stats(shared_lab, "dst", "eth0")
    n = 5
    for _ in range(n):
        assert echo(shared_lab, "rB", dst, src) == f"{dst} 62"
    rx_after, tx_after = link_stats(shared_lab, "dst", "eth1")
    _, tx0_after = link_stats(shared_lab, "dst", "eth0")
    assert rx_after - rx_before >= n
    assert tx0_after - tx0_before >= n
    # At most neighbour-discovery/ARP answers leave over t2, never the replies.
    assert tx_after - tx_before < n


@requires_root
@requires_tool("scamper")
def test_real_scamper_reproduces_fixture_paths(shared_lab: Lab) -> None:
    out = shared_lab.run("coll", [
        "scamper", "-O", "text",
        "-I", "trace -r 192.0.2.2 198.51.100.66",
        "-I", "trace 198.51.100.66",
        "-I", "trace -P icmp-paris -r 2001:db8:1::2 2001:db8:d::66",
    ], timeout=60).stdout
    hops = [line.split()[1] for line in out.splitlines() if line[:3].strip().isdigit()]
    assert "traceroute from 192.0.2.10 to 198.51.100.66 via 192.0.2.2" in out
    assert hops == [
        "192.0.2.2", "198.18.2.2", "198.51.100.66",
        "192.0.2.1", "198.18.1.2", "198.51.100.66",
        "2001:db8:1::2", "2001:db8:b::2", "2001:db8:d::66",
    ], out


@requires_root
def test_two_labs_coexist_and_teardown_leaves_nothing(shared_lab: Lab) -> None:
    with lab() as second:
        assert set(second.names.values()).isdisjoint(shared_lab.names.values())
        assert echo(second, "coll", ADDRS["dst"]) == f"{ADDRS['dst']} 62"
        sleeper = second.popen("coll", ["sleep", "60"])
        names = list(second.names.values())
    assert sleeper.poll() is not None, "popen'd process survived teardown"
    present = set(list_lab_namespaces())
    assert not present & set(names)
    second.teardown()  # idempotent
    # the shared lab was not disturbed
    assert echo(shared_lab, "coll", ADDRS["dst"]) == f"{ADDRS['dst']} 62"


@requires_root
def test_teardown_after_failure_in_with_block() -> None:
    with pytest.raises(RuntimeError):
        with lab() as L:
            names = list(L.names.values())
            raise RuntimeError("boom")
    assert not set(list_lab_namespaces()) & set(names)


@requires_root
def test_clean_removes_only_stale_labs(shared_lab: Lab) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    # the ECMP option's namespaces too (a killed ecmp=True lab left m1, m2)
    stale = [f"ixp{dead.pid}-coll", f"ixp{dead.pid}-m1", f"ixp{dead.pid}-m2"]
    for name in stale:
        subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        removed = labmod.clean()
        assert set(stale) <= set(removed)
        assert not set(removed) & set(shared_lab.names.values())
        assert set(shared_lab.names.values()) <= set(list_lab_namespaces())
    finally:
        for name in stale:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


@requires_root
def test_cli_up_down(capsys: pytest.CaptureFixture[str]) -> None:
    prefix = f"ixpt{labmod.os.getpid()}"
    try:
        assert labmod.main(["up", "--prefix", prefix]) == 0
        assert f"{prefix}-coll" in list_lab_namespaces()
        # a second 'up' with the same prefix is refused with one line
        assert labmod.main(["up", "--prefix", prefix]) == 1
        assert "already exists" in capsys.readouterr().err
        assert labmod.main(["down", "--prefix", prefix]) == 0
        assert not [n for n in list_lab_namespaces() if n.startswith(prefix + "-")]
        assert labmod.main(["down", "--prefix", prefix]) == 1
    finally:
        for role in ROLES:
            subprocess.run(["ip", "netns", "del", f"{prefix}-{role}"], capture_output=True)


def test_cli_bad_prefix(capsys: pytest.CaptureFixture[str]) -> None:
    if labmod.os.geteuid() != 0:
        pytest.skip("needs root")
    assert labmod.main(["up", "--prefix", "../x"]) == 1
    assert "bad lab prefix" in capsys.readouterr().err


def test_demo_missing_gives_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "ixpscamper.demo", None)
    import ixpscamper
    # another test may have imported the real module: hide the attribute too
    monkeypatch.delattr(ixpscamper, "demo", raising=False)
    assert labmod.main(["demo"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ixpscamper.demo" in err


def test_demo_is_called_with_argv(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []
    fake = types.ModuleType("ixpscamper.demo")
    fake.main = lambda argv: seen.append(argv) or 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ixpscamper.demo", fake)
    import ixpscamper
    monkeypatch.setattr(ixpscamper, "demo", fake, raising=False)
    assert labmod.main(["demo", "--help", "x"]) == 0
    assert seen == [["--help", "x"]]
