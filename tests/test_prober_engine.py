"""The prober's state machines and scheduler on a simulated network, with a Clock."""

from __future__ import annotations

import ipaddress
import random
import socket
import struct

import pytest
import pyroute2  # noqa: F401 - imported before socket.socket is patched below

from ixpscamper.commands import parse_command
from ixpscamper.prober import PermissionProblem, Prober, ProberError, packets
from ixpscamper.prober.net import Network
from ixpscamper.prober.simnet import MAC_RB, icmp_error, make_prober, run_until
from ixpscamper.warts import render_text
from ixpscamper.warts.records import (HopFlag, PingMethod, PingStop, TraceFlag, TraceMethod,
                                      TraceStop)

DST = "198.51.100.66"
DST6 = "2001:db8:d::66"
PATHS = {
    DST: ["192.0.2.1", "198.18.1.2", DST],
    DST6: ["2001:db8:1::1", "2001:db8:a::2", DST6],
    "198.51.100.99": ["192.0.2.1", "198.18.1.2", None, None, None, None, None, None, None, None],
    "198.51.100.77": ["192.0.2.1", "198.18.1.2", "198.51.100.1", "198.18.1.2", "198.51.100.1",
                      "198.18.1.2", "198.51.100.1", "198.18.1.2", "198.51.100.1", "198.18.1.2"],
}


def run(*commands: str, pps: int = 20, window: int = 0, paths=PATHS, setup=None):
    clock, net, prober = make_prober(paths, pps=pps, window=window)
    if setup:
        setup(net)
    tasks = [prober.submit(parse_command(c)) for c in commands]
    results = run_until(clock, [t.deferred for t in tasks])
    return results, net, prober, clock, tasks


def addrs(trace) -> list[tuple[int, str]]:
    return [(h.probe_ttl, str(h.addr)) for h in trace.hops]


# -- traceroute ----------------------------------------------------------------

def test_trace_default_fills_record_like_scamper():
    (t,), net, prober, clock, _ = run(f"trace {DST}")
    assert t.stop_reason == TraceStop.COMPLETED and t.stop_data == 0
    assert addrs(t) == [(1, "192.0.2.1"), (2, "198.18.1.2"), (3, DST)]
    assert (t.hop_count, t.probec, t.method, t.probe_size) == (3, 3, TraceMethod.UDP_PARIS, 44)
    assert t.sport == (0x1234 & 0x7FFF) + 0x8000 and t.dport == 33435
    assert str(t.src) == "192.0.2.10" and t.rtr is None and t.flags == 0
    for h in t.hops:
        assert h.rtt == 1000 and h.flags == HopFlag.TS_SOCK_RX | HopFlag.REPLY_TTL
        assert (h.probe_id, h.probe_size, h.reply_size, h.icmp_q_ttl, h.icmp_q_ipl) == (1, 44, 72, 1, 44)
        assert h.reply_tos == 0xC0 and h.reply_ipid == 0x1234
    assert [(h.icmp_type, h.icmp_code) for h in t.hops] == [(11, 0), (11, 0), (3, 3)]
    # the default 20 packets per second: probes 50 ms apart
    times = [s[0] for s in net.sent]
    assert [round(b - a, 6) for a, b in zip(times, times[1:])] == [0.05, 0.05]
    assert t.hops[0].tx.sec == int(times[0]) and t.hops[1].tx.usec == round((times[1] % 1) * 1e6)
    assert render_text(t).splitlines()[1] == " 1  192.0.2.1  1.000 ms"


def test_udp_paris_probes_keep_flow_and_carry_id_in_checksum():
    (t,), net, *_ = run(f"trace {DST}")
    probes = [packets.dissect(p) for _, _, p in net.sent]
    segs = [p[20:] for _, _, p in net.sent]
    assert {(s[0:2], s[2:4]) for s in segs} == {(struct.pack("!H", t.sport), struct.pack("!H", 33435))}
    assert [struct.unpack("!H", s[6:8])[0] for s in segs] == [1, 2, 3]
    assert [p.ipid for p in probes] == [1, 2, 3] and [p.ttl for p in probes] == [1, 2, 3]


@pytest.mark.parametrize("method,size,last", [
    ("udp", 44, (3, 3)), ("icmp", 44, (0, 0)), ("icmp-paris", 44, (0, 0)),
    ("tcp", 40, None), ("tcp-ack", 40, None), ("udp-paris", 44, (3, 3)),
])
@pytest.mark.parametrize("dst", [DST, DST6])
def test_trace_every_method_both_families(method, size, last, dst):
    (t,), net, *_ = run(f"trace -P {method} {dst}")
    assert t.stop_reason == TraceStop.COMPLETED, render_text(t)
    assert [a for _, a in addrs(t)] == PATHS[dst]
    v6 = dst == DST6
    assert t.probe_size == (60 if v6 else size)
    final = t.hops[-1]
    if last is None:
        assert final.is_tcp and final.tcp_flags == 0x14 and final.flags & HopFlag.TS_DL_RX
        # TCP traces are timed on the datalink, ICMP hops too (as scamper's 0x14)
        assert all(h.flags & HopFlag.TS_DL_RX for h in t.hops)
        assert "[closed]" in render_text(t)
    else:
        exp = last
        if v6:
            exp = {(3, 3): (1, 4), (0, 0): (129, 0)}[last]
        assert (final.icmp_type, final.icmp_code) == exp
        assert all(h.flags == 0x11 for h in t.hops)
    if v6:
        assert all(h.reply_ipid == 0 and h.icmp_q_tos == 0 for h in t.hops)
    if method == "icmp-paris":
        assert t.flags & TraceFlag.ICMPCSUMDP and t.dport == t.sport
        sums = {struct.unpack("!H", p[(20 if not v6 else 40) + 2:][:2])[0] for _, _, p in net.sent}
        assert sums == {t.dport}


def test_two_traces_same_destination_keep_their_replies():
    (a, b, c), net, prober, *_ = run(f"trace {DST}", f"trace {DST}", f"trace -P icmp-paris {DST}")
    assert a.sport != b.sport
    for t in (a, b, c):
        assert t.stop_reason == TraceStop.COMPLETED
        assert addrs(t) == [(1, "192.0.2.1"), (2, "198.18.1.2"), (3, DST)]
        assert t.probec == 3
    # the global rate: nine probes, 50 ms apart, whoever they belong to
    times = [s[0] for s in net.sent]
    assert len(times) == 9 and all(round(y - x, 6) >= 0.05 for x, y in zip(times, times[1:]))
    assert not prober._by_key and not net.reserved  # all ports given back


def test_explicit_same_sport_waits_for_the_running_task():
    (a, b), net, *_ = run(f"trace -s 40000 {DST}", f"trace -s 40000 {DST}")
    assert a.sport == b.sport == 40000
    assert addrs(a) == addrs(b)
    assert b.hops[0].tx.sec * 1e6 + b.hops[0].tx.usec > a.hops[-1].tx.sec * 1e6 + a.hops[-1].tx.usec


def test_gaplimit_stop():
    (t,), net, prober, clock, _ = run("trace -w 1 -q 1 -g 3 198.51.100.99", paths={
        "198.51.100.99": [None] * 10})
    assert t.stop_reason == TraceStop.GAPLIMIT
    assert (t.hop_count, t.probec, t.hops) == (3, 3, [])
    assert render_text(t).splitlines()[1:] == [" 1  *", " 2  *", " 3  *"]


def test_gaplimit_default_counts_attempts_and_wait():
    clock_start = None
    (t,), net, prober, clock, _ = run("trace 198.51.100.99")
    assert t.stop_reason == TraceStop.GAPLIMIT
    assert addrs(t) == [(1, "192.0.2.1"), (2, "198.18.1.2")]
    assert (t.hop_count, t.probec) == (7, 2 + 5 * 2)
    times = [s[0] for s in net.sent]
    assert round(times[-1] - times[2], 3) == 45.0  # nine 5 s waits after the first unanswered probe
    del clock_start


def test_unreachable_stop_and_hoplimit_and_firsthop():
    def setup(net):
        net.unreach["198.18.1.2"] = (3, 1)
    (u,), *_ = run(f"trace {DST}", setup=setup)
    assert (u.stop_reason, u.stop_data, u.hop_count) == (TraceStop.UNREACH, 1, 2)
    assert render_text(u).splitlines()[-1].endswith(" !H")
    (h,), *_ = run(f"trace -m 2 {DST}")
    assert (h.stop_reason, h.hop_count) == (TraceStop.HOPLIMIT, 2)
    (f,), *_ = run(f"trace -f 2 -m 5 {DST}")
    assert f.stop_reason == TraceStop.COMPLETED and addrs(f) == [(2, "198.18.1.2"), (3, DST)]
    assert (f.hop_count, f.probec, f.firsthop) == (3, 2, 2)
    assert render_text(f).splitlines()[1] == " 1  *"


def test_loop_stop():
    (t,), *_ = run("trace 198.51.100.77")
    assert t.stop_reason == TraceStop.LOOP
    assert addrs(t)[-1] == (4, "198.18.1.2") and t.hop_count == 4
    (t0,), *_ = run("trace -l 0 -m 6 198.51.100.77")
    assert t0.stop_reason == TraceStop.HOPLIMIT


def test_icmp_stop_for_ipv6_packet_too_big():
    def setup(net):
        net.unreach["2001:db8:a::2"] = (2, 0)
    (t,), *_ = run(f"trace {DST6}", setup=setup)
    assert (t.stop_reason, t.stop_data) == (TraceStop.ICMP, 2)


def test_all_attempts_q3():
    (t,), net, *_ = run(f"trace -q 3 -Q {DST}")
    assert t.flags & TraceFlag.ALLATTEMPTS and t.probec == 9
    assert [(h.probe_ttl, h.probe_id) for h in t.hops] == [(x, y) for x in (1, 2, 3) for y in (1, 2, 3)]
    assert render_text(t).splitlines()[1] == " 1  192.0.2.1  1.000 ms  1.000 ms  1.000 ms"


def test_late_reply_recorded_and_can_stop_the_trace():
    # the destination answers only after 12 s: TTL 3 times out twice, the
    # trace moves on, then the late port unreachable for TTL 3's first probe
    # arrives while TTL 4 is probed and ends the trace
    clock, net, prober = make_prober(PATHS)
    real = net._dst_answer

    def slow(p, pkt, me):
        out = real(p, pkt, me)
        for rep in out:
            net.deliver(rep, delay=12.0)
        return []
    net._dst_answer = slow
    task = prober.submit(parse_command(f"trace {DST}"))
    (t,) = run_until(clock, [task.deferred])
    assert t.stop_reason == TraceStop.COMPLETED
    assert (t.hop_count, t.probec) == (3, 5)
    assert [(h.probe_ttl, h.probe_id, str(h.addr)) for h in t.hops][-1] == (3, 1, DST)
    assert t.hops[-1].rtt == 12_000_000


def test_duplicate_replies_are_kept_until_the_trace_ends():
    def setup(net):
        real = net.deliver
        net.deliver = lambda pkt, delay=None: (real(pkt, delay), real(pkt, 0.002))
    (t,), *_ = run(f"trace -P icmp {DST}", setup=setup)
    # a duplicate at TTL 1 and 2 is kept; at the destination the trace is over
    assert [h.probe_ttl for h in t.hops] == [1, 1, 2, 2, 3]
    assert render_text(t).splitlines()[1] == " 1  192.0.2.1  1.000 ms  2.000 ms"


def test_trace_via_router_uses_its_mac_and_datalink_times():
    (t,), net, *_ = run(f"trace -r 192.0.2.2 {DST}")
    assert str(t.rtr) == "192.0.2.2" and t.stop_reason == TraceStop.COMPLETED
    assert {kind for _, kind, _ in net.sent} == {"dl"} and set(net.dl_macs) == {MAC_RB}
    assert all(h.flags == HopFlag.TS_DL_RX | HopFlag.REPLY_TTL for h in t.hops)
    # each reply came on both sockets; it is recorded once
    assert len(t.hops) == 3
    assert render_text(t).splitlines()[0].endswith(" via 192.0.2.2")


def test_router_that_never_answers_arp_ends_quickly_with_error():
    (t, p), net, prober, clock, tasks = run(f"trace -r 192.0.2.99 {DST}", f"ping -r 2001:db8:1::99 {DST6}")
    assert t.stop_reason == TraceStop.ERROR and t.probec == 0 and t.hops == []
    assert p.stop_reason == PingStop.ERROR and p.ping_sent == 0
    assert "no ARP reply from 192.0.2.99" in tasks[0].error
    assert clock.seconds() - 1_000_000 < 2.0
    assert net.sent == []


def test_setup_errors_are_one_line_failures():
    clock, net, prober = make_prober(PATHS)
    bad = [prober.submit(parse_command(c)) for c in (
        f"trace -r 198.18.1.2 {DST}", "trace 203.0.113.1", f"trace -M {DST}", "ping -T tsonly " + DST)]
    msgs = []
    for t in bad:
        t.deferred.addErrback(lambda f: msgs.append(f.value))
    assert all(isinstance(m, ProberError) for m in msgs) and len(msgs) == 4
    assert str(msgs[0]) == "router 198.18.1.2 is not on a directly connected network"
    assert str(msgs[1]).startswith("no route to 203.0.113.1")
    assert all("\n" not in str(m) for m in msgs)


def test_halt_a_running_trace_and_a_waiting_one():
    clock, net, prober = make_prober({"198.51.100.99": [None] * 10}, window=1)
    a = prober.submit(parse_command("trace 198.51.100.99"))
    b = prober.submit(parse_command("trace 198.51.100.99"))
    for _ in range(60):
        clock.advance(0.1)
    got, err = [], []
    a.deferred.addCallback(got.append)
    b.deferred.addErrback(err.append)
    b.halt()
    a.halt()
    assert got[0].stop_reason == TraceStop.HALTED and got[0].probec == 2
    assert err and "halted" in err[0].getErrorMessage()


def test_window_limits_running_tasks():
    (a, b), net, *_ = run(f"trace {DST}", f"trace {DST}", window=1)
    first_b = b.hops[0].tx
    last_a = a.hops[-1].tx
    assert (first_b.sec, first_b.usec) > (last_a.sec, last_a.usec)


def test_pps_limit_holds_with_many_tasks():
    cmds = [f"ping -c 5 -i 0.1 {DST}" for _ in range(10)]
    results, net, *_ = run(*cmds, pps=100)
    assert all(len(r.replies) == 5 for r in results)
    times = sorted(s[0] for s in net.sent)
    assert len(times) == 50
    assert min(round(y - x, 6) for x, y in zip(times, times[1:])) >= 0.01


def test_storm_of_unrelated_icmp_does_not_disturb_matching():
    clock, net, prober = make_prober(PATHS)
    me = ipaddress.ip_address("192.0.2.10").packed
    rng = random.Random(7)
    src = ipaddress.ip_address("203.0.113.9").packed
    task = prober.submit(parse_command(f"trace {DST}"))
    task2 = prober.submit(parse_command(f"ping -c 3 {DST}"))
    storm = 0
    for i in range(3000):
        kind = i % 3
        if kind == 0:
            ident = rng.randrange(65536)
            if ident == 0x1234:  # the ping's id: that would be a reply to it
                continue
            body = bytearray(packets.icmp_echo(src, me, ident, rng.randrange(65536), bytes(8)))
            body[0] = 0
            pkt = packets.ip_packet(src, me, packets.PROTO_ICMP, bytes(body), ttl=50)
        else:
            sport = rng.randrange(65536)
            if sport in (task.run.spec.sport if task.run else -1,):
                continue
            probe = packets.ip_packet(me, src, packets.PROTO_UDP,
                                      packets.udp_segment(me, src, sport, 33435, bytes(16)), ttl=1,
                                      ipid=rng.randrange(1, 4))
            pkt = icmp_error(src, me, 11 if kind == 1 else 3, 0 if kind == 1 else 3, probe)
        net.deliver(pkt, delay=rng.random() * 0.3)
        storm += 1
    t, p = run_until(clock, [task.deferred, task2.deferred])
    assert addrs(t) == [(1, "192.0.2.1"), (2, "198.18.1.2"), (3, DST)]
    assert [r.probe_id for r in p.replies] == [0, 1, 2] and {str(r.addr) for r in p.replies} == {DST}
    assert storm > 2900


# -- ping --------------------------------------------------------------------------

def test_ping_default_icmp():
    (p,), net, *_ = run(f"ping {DST}")
    assert p.stop_reason == PingStop.DONE and p.ping_sent == 4 and p.probe_size == 84
    assert [r.probe_id for r in p.replies] == [0, 1, 2, 3]
    assert p.sport == 0x1234 and p.dport == 0
    r = p.replies[0]
    assert (r.icmp_type, r.reply_size, r.reply_ttl, r.rtt, r.reply_proto) == (0, 84, 62, 1000, 1)
    assert r.flags == 0x07 and r.reply_ipid == 77 and r.probe_ipid != 0
    times = [s[0] for s in net.sent]
    assert [round(y - x, 6) for x, y in zip(times, times[1:])] == [1.0, 1.0, 1.0]
    probes = [packets.dissect(x) for _, _, x in net.sent]
    assert [x.icmp_seq for x in probes] == [0, 1, 2, 3]
    assert "4 packets transmitted, 4 packets received, 0% packet loss" in render_text(p)


@pytest.mark.parametrize("method,proto,check", [
    ("udp", 1, lambda r: (r.icmp_type, r.icmp_code) == (3, 3)),
    ("udp-dport", 1, lambda r: (r.icmp_type, r.icmp_code) == (3, 3)),
    ("tcp-syn", 6, lambda r: r.tcp_flags == 0x14),
    ("tcp-ack", 6, lambda r: r.tcp_flags == 0x14),
    ("tcp-ack-sport", 6, lambda r: r.tcp_flags == 0x14),
    ("icmp-time", 1, lambda r: r.icmp_type == 14 and r.tsreply == (r.tsreply[0], 1000, 1001)),
])
def test_ping_methods(method, proto, check):
    (p,), net, *_ = run(f"ping -P {method} -c 3 {DST}")
    assert p.method == PingMethod[method.upper().replace("-", "_")]
    assert [r.probe_id for r in p.replies] == [0, 1, 2], render_text(p)
    assert all(r.reply_proto == proto and check(r) for r in p.replies)
    if method in ("udp-dport", "tcp-ack-sport"):
        probes = [packets.dissect(x) for _, _, x in net.sent]
        field = "dport" if method == "udp-dport" else "sport"
        assert [getattr(x, field) - getattr(probes[0], field) for x in probes] == [0, 1, 2]
    if method == "tcp-syn":
        assert p.tcp_seq != 0 and p.tcp_ack == 0


def test_ping_ipv6_and_reply_count_and_ttl_errors():
    (p6,), *_ = run(f"ping -c 3 {DST6}")
    assert p6.probe_size == 104 and [r.icmp_type for r in p6.replies] == [129] * 3
    assert all(r.flags == 0x01 and r.reply_ipid == 0 for r in p6.replies)
    (po,), net, *_ = run(f"ping -c 5 -o 2 {DST}")
    assert (po.ping_sent, len(po.replies)) == (2, 2)
    (pt,), *_ = run(f"ping -m 1 -c 2 {DST}")
    assert [(str(r.addr), r.icmp_type, r.reply_size) for r in pt.replies] == [("192.0.2.1", 11, 112)] * 2


def test_ping_no_reply_and_timing():
    (p,), net, prober, clock, _ = run("ping -c 2 198.51.100.99")
    assert p.stop_reason == PingStop.DONE and p.ping_sent == 2 and p.replies == []
    assert round(clock.seconds() - 1_000_000, 1) == 2.0


def test_ping_record_route_option_sent():
    (p,), net, *_ = run(f"ping -R -c 1 {DST}")
    assert p.probe_size == 124 and p.flags & 0x01
    pkt = net.sent[0][2]
    assert pkt[0] & 0x0F == 15 and pkt[20:23] == bytes([7, 39, 4]) and len(pkt) == 124


def test_ping_via_router():
    (p,), net, *_ = run(f"ping -r 192.0.2.2 -c 3 {DST}")
    assert str(p.rtr) == "192.0.2.2" and len(p.replies) == 3
    assert set(net.dl_macs) == {MAC_RB}


# -- privileges --------------------------------------------------------------------

def test_no_raw_socket_permission_names_cap_net_raw(monkeypatch):
    real = socket.socket

    def denied(family=-1, type=-1, proto=-1, fileno=None):
        if type == socket.SOCK_RAW or family == socket.AF_PACKET:
            raise PermissionError(1, "Operation not permitted")
        return real(family, type, proto, fileno)
    monkeypatch.setattr(socket, "socket", denied)
    from twisted.internet.task import Clock
    clock = Clock()
    net = Network(clock, lambda *a: None)
    with pytest.raises(PermissionProblem) as exc:
        net.check_privileges()
    assert "CAP_NET_RAW" in str(exc.value) and "\n" not in str(exc.value)
    # through the public API: the task fails with that one line, nothing is sent
    prober = Prober(clock)
    task = prober.submit(parse_command("ping -c 1 127.0.0.1"))
    failures = []
    task.deferred.addErrback(failures.append)
    assert failures and failures[0].check(PermissionProblem)
    assert "CAP_NET_RAW" in failures[0].getErrorMessage()
    prober.close()


def test_wait_probe_spaces_a_traces_probes():
    (t,), net, *_ = run(f"trace -W 30 {DST}")
    assert t.wait_probe == 30 and t.stop_reason == TraceStop.COMPLETED
    times = [s[0] for s in net.sent]
    assert [round(b - a, 6) for a, b in zip(times, times[1:])] == [0.3, 0.3]
