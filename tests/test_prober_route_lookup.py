"""The prober's own rtnetlink route lookup: the same answers as pyroute2, much sooner."""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import textwrap

import pytest
from hypothesis import given, settings, strategies as st
from twisted.internet.task import Clock

from ixpscamper.prober import net
from ixpscamper.prober.net import (Network, ProberError, RouteLookupError, decode_route_reply,
                                   encode_route_get)

from tests.conftest import requires_root


def _nlmsg(kind: int, seq: int, body: bytes) -> bytes:
    msg = struct.pack("=IHHII", 16 + len(body), kind, 0, seq, 4242) + body
    return msg + b"\0" * (-len(msg) % 4)


def _attr(kind: int, value: bytes) -> bytes:
    a = struct.pack("=HH", 4 + len(value), kind) + value
    return a + b"\0" * (-len(a) % 4)


def _route_msg(seq: int, fam: int, rtype: int, attrs: bytes) -> bytes:
    return _nlmsg(net.RTM_NEWROUTE, seq, struct.pack("=BBBBBBBBI", fam, 32, 0, 0, 254, 0, 0, rtype, 0) + attrs)


def test_request_is_what_ip_route_get_sends():
    req = encode_route_get(7, "127.1.0.1")
    # nlmsghdr, rtmsg (family, dst_len 32, table main), RTA_DST
    assert req == (struct.pack("=IHHII", 36, 26, 1, 7, 0) + bytes([2, 32, 0, 0, 254, 0, 0, 0]) + b"\0" * 4
                   + struct.pack("=HH", 8, 1) + bytes([127, 1, 0, 1]))
    req6 = encode_route_get(8, "2001:db8::1")
    assert len(req6) == 48 and req6[16:18] == bytes([socket.AF_INET6, 128])
    assert req6[-16:] == socket.inet_pton(socket.AF_INET6, "2001:db8::1")
    with pytest.raises((OSError, ValueError)):
        encode_route_get(1, "not an address")


def test_reply_decoding():
    attrs = (_attr(15, struct.pack("=I", 254)) + _attr(net.RTA_OIF, struct.pack("=I", 3))
             + _attr(net.RTA_PREFSRC, bytes([192, 0, 2, 10])) + _attr(net.RTA_GATEWAY, bytes([192, 0, 2, 1])))
    assert decode_route_reply(_route_msg(5, socket.AF_INET, 1, attrs), 5) == (1, 3, "192.0.2.10", "192.0.2.1")
    # a stale answer is skipped, an ack is not the answer, both may share a datagram
    stale = _route_msg(4, socket.AF_INET, 1, attrs)
    ack = _nlmsg(net.NLMSG_ERROR, 5, struct.pack("=i", 0) + b"\0" * 16)
    assert decode_route_reply(stale, 5) is None
    assert decode_route_reply(stale + ack + _route_msg(5, socket.AF_INET, 2, b""), 5) == (2, 0, None, None)
    with pytest.raises(RouteLookupError) as exc:
        decode_route_reply(_nlmsg(net.NLMSG_ERROR, 5, struct.pack("=i", -101) + b"\0" * 16), 5)
    assert exc.value.code == 101
    six = _attr(net.RTA_PREFSRC, socket.inet_pton(socket.AF_INET6, "2001:db8::a"))
    assert decode_route_reply(_route_msg(9, socket.AF_INET6, 1, six), 9) == (1, 0, "2001:db8::a", None)
    for bad in (_route_msg(5, socket.AF_INET, 1, attrs)[:-3],  # attribute cut short
                _route_msg(5, socket.AF_INET, 1, _attr(net.RTA_PREFSRC, b"\1\2\3")),  # wrong address size
                _nlmsg(net.RTM_NEWROUTE, 5, b"\2\0\0"),  # rtmsg cut short
                struct.pack("=IHHII", 8, 24, 0, 5, 0)):  # length below the header
        with pytest.raises(ValueError):
            decode_route_reply(bad, 5)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.integers(0, 3))
def test_reply_decoding_survives_garbage(data, seq):
    try:
        got = decode_route_reply(data, seq)
    except (ValueError, RouteLookupError):
        return
    assert got is None or (isinstance(got, tuple) and len(got) == 4)


def test_loopback_routes_match_pyroute2():
    n = Network(Clock(), lambda *a: None)
    try:
        for dst in ("127.0.0.1", "127.1.2.3", "::1"):
            fast = n.route(dst)
            assert fast == n._route_pyroute2(dst)
            assert fast.ifname == socket.if_indextoname(fast.ifindex)
        assert n._rq is not None  # the fast path answered
    finally:
        n.close()


def test_without_an_rtnetlink_socket_pyroute2_answers(monkeypatch):
    def refuse(*a, **kw):
        raise PermissionError(1, "Operation not permitted")
    monkeypatch.setattr(net, "RouteQuery", refuse)
    n = Network(Clock(), lambda *a: None)
    try:
        r = n.route("127.0.0.1")
        assert (r.ifname, r.src, r.type) == ("lo", "127.0.0.1", net.RTN_LOCAL)
        assert n._rq is None and n._rq_broken
    finally:
        n.close()


def test_a_broken_reply_falls_back_for_that_lookup(monkeypatch):
    n = Network(Clock(), lambda *a: None)
    try:
        n.route("127.0.0.1")
        monkeypatch.setattr(net, "decode_route_reply", lambda data, seq: (_ for _ in ()).throw(ValueError("x")))
        assert n.route("127.0.0.2").src == "127.0.0.1"
        assert n._rq is None  # reopened on the next lookup
        monkeypatch.undo()
        n.route("127.0.0.3")
        assert n._rq is not None
    finally:
        n.close()


def test_a_missing_reply_does_not_stall_and_falls_back():
    class Mute:
        """A netlink socket whose replies never arrive."""

        def __init__(self, real):
            self.real = real

        def sendto(self, data, addr):
            return len(data)

        def recv(self, n):
            raise BlockingIOError(11, "Resource temporarily unavailable")

        def close(self):
            self.real.close()

    n = Network(Clock(), lambda *a: None)
    try:
        n.route("127.0.0.1")
        n._rq.sock = Mute(n._rq.sock)
        assert n.route("127.0.0.5").src == "127.0.0.1"
        assert n._rq is None
    finally:
        n.close()


_COMPARE = textwrap.dedent("""
    import json, sys
    from twisted.internet.task import Clock
    from ixpscamper.prober.net import Network, ProberError
    n = Network(Clock(), lambda *a: None)
    out = []
    for dst in sys.argv[1:]:
        row = []
        for how in (n.route, n._route_pyroute2):
            try:
                r = how(dst)
                row.append([r.ifindex, r.ifname, r.src, r.gateway, r.type])
            except ProberError as exc:
                row.append(str(exc))
        out.append(row)
    print(json.dumps([out, n._rq is not None]))
    n.close()
""")


@requires_root
def test_routes_in_a_namespace_match_pyroute2():
    """Every kind of route and refusal, both families, answered exactly as pyroute2 answers."""
    ns = f"ixp-rl-{os.getpid()}"
    setup = [
        ["ip", "netns", "add", ns],
        ["ip", "-n", ns, "link", "set", "lo", "up"],
        ["ip", "-n", ns, "link", "add", "d0", "type", "veth", "peer", "name", "d1"],
        ["ip", "-n", ns, "link", "set", "d1", "up"],
        ["ip", "-n", ns, "link", "set", "d0", "up"],
        ["ip", "-n", ns, "addr", "add", "192.0.2.10/24", "dev", "d0"],
        ["ip", "-n", ns, "addr", "add", "2001:db8:1::10/64", "dev", "d0", "nodad"],
        ["ip", "-n", ns, "route", "add", "198.51.100.0/24", "via", "192.0.2.1"],
        ["ip", "-n", ns, "route", "add", "198.18.0.0/24", "dev", "d0", "src", "192.0.2.10"],
        ["ip", "-n", ns, "route", "add", "unreachable", "203.0.113.0/25"],
        ["ip", "-n", ns, "route", "add", "prohibit", "203.0.113.128/26"],
        ["ip", "-n", ns, "route", "add", "blackhole", "203.0.113.192/26"],
        ["ip", "-n", ns, "-6", "route", "add", "2001:db8:2::/64", "via", "2001:db8:1::1"],
        ["ip", "-n", ns, "-6", "route", "add", "unreachable", "2001:db8:3::/64"],
    ]
    dsts = ["192.0.2.10", "192.0.2.77", "198.51.100.5", "198.18.0.9", "203.0.113.5", "203.0.113.130",
            "203.0.113.200", "10.9.9.9", "127.0.0.1", "2001:db8:1::10", "2001:db8:1::99", "2001:db8:2::5",
            "2001:db8:3::5", "2001:db8:9::9", "::1", "192.0.2.255"]
    try:
        for cmd in setup:
            subprocess.run(cmd, check=True, capture_output=True)
        res = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", _COMPARE, *dsts],
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        rows, fast_used = json.loads(res.stdout)
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    assert fast_used
    got = dict(zip(dsts, rows))
    for dst, (fast, slow) in got.items():
        assert fast == slow, dst
    assert got["198.51.100.5"][0][2:4] == ["192.0.2.10", "192.0.2.1"]
    assert got["2001:db8:2::5"][0][1:4] == ["d0", "2001:db8:1::10", "2001:db8:1::1"]
    assert got["203.0.113.5"][0] == "no route to 203.0.113.5: no route"
    assert got["10.9.9.9"][0] == "no route to 10.9.9.9: no route"
    assert got["203.0.113.200"][0].startswith("no route to 203.0.113.200: ")  # blackhole: EINVAL
    assert all(isinstance(r[0], str) and "\n" not in r[0] for d, r in got.items()
               if d.startswith("203.") or d in ("10.9.9.9", "2001:db8:3::5", "2001:db8:9::9"))


def test_route_errors_are_one_line_prober_errors():
    n = Network(Clock(), lambda *a: None)
    try:
        with pytest.raises(ProberError) as exc:
            n.route("not-an-address")
        assert "\n" not in str(exc.value) and "not-an-address" in str(exc.value)
    finally:
        n.close()
