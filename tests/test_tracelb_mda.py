"""The tracelb (MDA) state machine and command parser, sans-IO, on a simulated load-balanced network."""

from __future__ import annotations

import hashlib
import ipaddress
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.task import Clock

from ixpscamper.commands import CommandError
from ixpscamper.prober import packets
from ixpscamper.prober.simnet import icmp_error
from ixpscamper.prober.tracelb import TracelbRun, TracelbSpec, _Waiting, mda_k
from ixpscamper.tracelb_cmd import parse_tracelb
from ixpscamper.warts import render_text
from ixpscamper.warts.records import TracelbType

SRC = ipaddress.ip_address("192.0.2.10")
DST = ipaddress.ip_address("203.0.113.66")
SRC6 = ipaddress.ip_address("2001:db8:1::10")
DST6 = ipaddress.ip_address("2001:db8:f::66")


def _flow(pkt: bytes) -> bytes:
    """What an L4-hashing router hashes: addresses, protocol, ports (ICMP: the checksum)."""
    v = pkt[0] >> 4
    off, proto = ((pkt[0] & 0x0F) * 4, pkt[9]) if v == 4 else (40, pkt[6])
    src, dst = (pkt[12:16], pkt[16:20]) if v == 4 else (pkt[8:24], pkt[24:40])
    return src + dst + bytes([proto]) + pkt[off:off + 4]


class DiamondIO:
    """A network of hops per TTL; a list at a TTL is a load balancer choosing by flow hash.

    ``hops[ttl-1]`` is an address, or a list of addresses (ECMP); the last
    hop is the destination, which answers with a port unreachable / echo reply.
    """

    def __init__(self, hops, rtt=0.002, silent=()):
        self.clock = Clock()
        self.hops = [[ipaddress.ip_address(a) for a in (h if isinstance(h, list) else [h])]
                     for h in hops]
        self.rtt = rtt
        self.silent = {ipaddress.ip_address(a) for a in silent}
        self.run: TracelbRun | None = None
        self.sent: list[bytes] = []
        self.tx_times: list[float] = []
        self.is_done = False
        self.pending_send = False

    def now_ns(self) -> int:
        return int(round(self.clock.seconds() * 1e9))

    def request_send(self) -> None:
        if not self.pending_send:
            self.pending_send = True
            self.clock.callLater(0, self._slot)

    def _slot(self) -> None:
        self.pending_send = False
        self.run.send_now()

    def transmit(self, pkt: bytes) -> int:
        self.sent.append(pkt)
        self.tx_times.append(self.clock.seconds())
        self.clock.callLater(self.rtt, self._answer, pkt)
        return self.now_ns()

    def finished(self) -> None:
        self.is_done = True

    def hop_for(self, pkt: bytes, ttl: int):
        choices = self.hops[min(ttl, len(self.hops)) - 1]
        h = int.from_bytes(hashlib.sha256(_flow(pkt) + bytes([ttl])).digest()[:4], "big")
        return choices[h % len(choices)]

    def _answer(self, pkt: bytes) -> None:
        v = pkt[0] >> 4
        ttl = pkt[8] if v == 4 else pkt[7]
        last = ttl >= len(self.hops)
        me = self.hop_for(pkt, ttl)
        if me in self.silent:
            return
        src = pkt[12:16] if v == 4 else pkt[8:24]
        quote = bytearray(pkt)
        if v == 4:
            quote[8] = 1
        else:
            quote[7] = 1
        if not last:
            typ = 11 if v == 4 else 3
            rep = icmp_error(me.packed, src, typ, 0, bytes(quote), ttl=64 - ttl)
        else:
            proto = pkt[9] if v == 4 else pkt[6]
            off = (pkt[0] & 0x0F) * 4 if v == 4 else 40
            if proto in (1, 58):
                ident, seq = struct.unpack_from("!HH", pkt, off + 4)
                rep = packets.ip_packet(me.packed, src, proto,
                                        packets.icmp_echo(me.packed, src, ident, seq, pkt[off + 8:]),
                                        ttl=64) if v == 4 else None
                if v == 4:
                    rep = bytearray(rep)
                    rep[20] = 0  # echo reply
                    body = bytes(rep[20:22]) + b"\0\0" + bytes(rep[24:])
                    rep[22:24] = struct.pack("!H", packets.checksum(body))
                    rep = bytes(rep)
            else:
                typ, code = (3, 3) if v == 4 else (1, 4)
                rep = icmp_error(me.packed, src, typ, code, bytes(quote), ttl=64)
        r = packets.dissect(rep)
        assert r is not None
        self.run.on_reply(r, self.now_ns(), False)


def run_tracelb(hops, dst=DST, src=SRC, silent=(), **kw):
    io = DiamondIO(hops, silent=silent)
    kw.setdefault("sport", 40000)
    spec = TracelbSpec(dst=dst, src=src, **kw)
    run = TracelbRun(spec, io)
    io.run = run
    run.start()
    for _ in range(200000):
        if io.is_done:
            break
        calls = io.clock.getDelayedCalls()
        assert calls, "nothing scheduled but the run is not done"
        io.clock.advance(max(0.0, min(c.getTime() for c in calls) - io.clock.seconds()))
    assert io.is_done
    return run.record, io


def nodes(rec):
    return [str(n.addr) if n.addr else "*" for n in rec.nodes]


def links(rec):
    return sorted((str(rec.nodes[lk.from_].addr), str(rec.nodes[lk.to].addr) if lk.to is not None else "*")
                  for lk in rec.links)


DIAMOND = ["192.0.2.1", "198.18.1.2", ["198.18.11.2", "198.18.12.2"], str(DST)]


def test_confidence_table():
    assert [mda_k(n, 95) for n in (2, 3, 4, 5)] == [6, 11, 16, 21]
    assert [mda_k(n, 99) for n in (2, 3, 4, 5)] == [8, 15, 21, 28]
    with pytest.raises(ValueError):
        mda_k(1, 95)


def test_single_path_probes_k2_per_hop():
    rec, io = run_tracelb(["192.0.2.1", "198.18.1.2", str(DST)])
    assert nodes(rec) == ["192.0.2.1", "198.18.1.2", str(DST)]
    assert links(rec) == [("192.0.2.1", "198.18.1.2"), ("198.18.1.2", str(DST))]
    # firstaddr 1, then k(2) = 6 probes at hop 2; the destination answers the first at hop 3
    assert rec.probec == 1 + 6 + 1 == len(io.sent)
    assert rec.nodes[0].links == [0] and rec.nodes[2].links == []


@pytest.mark.parametrize("method", [TracelbType.UDP_DPORT, TracelbType.UDP_SPORT,
                                    TracelbType.ICMP_ECHO])
def test_diamond_finds_both_branches(method):
    rec, io = run_tracelb(DIAMOND, method=method)
    assert set(nodes(rec)) == {"192.0.2.1", "198.18.1.2", "198.18.11.2", "198.18.12.2", str(DST)}
    assert links(rec) == sorted([
        ("192.0.2.1", "198.18.1.2"), ("198.18.1.2", "198.18.11.2"), ("198.18.1.2", "198.18.12.2"),
        ("198.18.11.2", str(DST)), ("198.18.12.2", str(DST))])
    # flows differ by what the method varies
    flows = {_flow(p) for p in io.sent}
    assert len(flows) > 6


def test_diamond_ipv6():
    hops = ["2001:db8:1::1", "2001:db8:a::2", ["2001:db8:11::2", "2001:db8:12::2"], str(DST6)]
    rec, _ = run_tracelb(hops, dst=DST6, src=SRC6)
    assert links(rec) == sorted([
        ("2001:db8:1::1", "2001:db8:a::2"), ("2001:db8:a::2", "2001:db8:11::2"),
        ("2001:db8:a::2", "2001:db8:12::2"), ("2001:db8:11::2", str(DST6)),
        ("2001:db8:12::2", str(DST6))])


def test_confidence_99_sends_more():
    r95, _ = run_tracelb(DIAMOND, confidence=95)
    r99, _ = run_tracelb(DIAMOND, confidence=99)
    assert links(r95) == links(r99)
    assert r99.probec > r95.probec
    # at the load balancer with 2 next hops found, n = 3: k(3) replies
    assert r95.probec >= 1 + 6 + 11


def test_probec_max_caps_probes():
    rec, io = run_tracelb(DIAMOND, probec_max=10)
    assert rec.probec == 10 == len(io.sent)


def test_pacing_wait_probe_between_probes():
    rec, io = run_tracelb(["192.0.2.1", "198.18.1.2", str(DST)], wait_probe_us=250_000)
    gaps = [b - a for a, b in zip(io.tx_times, io.tx_times[1:])]
    assert len(gaps) == rec.probec - 1 >= 6
    assert all(g >= 0.25 - 1e-6 for g in gaps)
    assert min(gaps) < 0.26  # replies come in 2 ms: the wait is the only pause


def test_silent_hop_is_a_star_on_a_multi_hop_link():
    """scamper's clump: the silent hop's probes are the link's first hop, the next node ends it.

    (It ended the branch here before: no link, 13 probes.)  The lab test
    test_tracelb_silent_lab.py compares this with Debian scamper.
    """
    rec, io = run_tracelb(["192.0.2.1", "198.18.1.2", str(DST)], silent=["198.18.1.2"],
                          attempts=2, wait_us=1_000_000)
    # 1 probe to find hop 1; k(2) = 6 flows, 2 attempts each, at hop 2; hop 3 answers the first
    assert rec.probec == 1 + 6 * 2 + 1
    assert nodes(rec) == ["192.0.2.1", str(DST)]
    (lk,) = rec.links
    assert (lk.from_, lk.to, lk.hopc) == (0, 1, 2)
    assert [(p.ttl, p.flowid, p.attempt, len(p.rxs)) for p in lk.sets[0].probes] == \
        [(2, 33435 + i // 2, i % 2, 0) for i in range(12)]
    assert [(p.ttl, p.flowid) for p in lk.sets[1].probes] == [(3, 33435)]
    assert render_text(rec).splitlines()[1:] == ["192.0.2.1 -> * -> 203.0.113.66"]


def test_silent_hops_up_to_gaplimit_end_the_link_in_silence():
    hops = ["192.0.2.1", "198.18.1.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", str(DST)]
    quiet = ["198.18.1.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"]
    rec, _ = run_tracelb(hops, silent=quiet, attempts=1, wait_us=1_000_000, gaplimit=3)
    (lk,) = rec.links
    assert lk.to is None and lk.hopc == 3
    assert render_text(rec).splitlines()[1:] == ["192.0.2.1 -> * -> * -> *"]
    # two silent hops between answering ones: one link across them
    rec, _ = run_tracelb(hops, silent=["10.0.0.3", "10.0.0.4"], attempts=1, wait_us=1_000_000)
    assert render_text(rec).splitlines()[1:] == [
        "192.0.2.1 -> 198.18.1.2", "198.18.1.2 -> * -> * -> 10.0.0.5", "10.0.0.5 -> 203.0.113.66"]


def test_silent_branch_of_a_load_balancer_is_a_clump():
    rec, _ = run_tracelb(DIAMOND, silent=["198.18.11.2"], attempts=1, wait_us=1_000_000)
    assert render_text(rec).splitlines()[1:] == [
        "192.0.2.1 -> 198.18.1.2", "198.18.1.2 -> (198.18.12.2, *) -> 203.0.113.66"]
    assert nodes(rec) == ["192.0.2.1", "198.18.1.2", str(DST)]


class PerPacketIO(DiamondIO):
    """The balancer at ``ttl`` picks a next hop per packet, whatever the flow."""

    def __init__(self, hops, ttl, **kw):
        super().__init__(hops, **kw)
        self.pp_ttl = ttl
        self.count = 0

    def hop_for(self, pkt, ttl):
        if ttl != self.pp_ttl:
            return super().hop_for(pkt, ttl)
        self.count += 1
        choices = self.hops[ttl - 1]
        return choices[self.count % len(choices)]


def test_per_packet_balancer_is_a_clump():
    """scamper: the per-packet check sees another next hop for one flow -> a clump, not links."""
    io = PerPacketIO(DIAMOND, 3)
    spec = TracelbSpec(dst=DST, src=SRC, sport=40000)
    run = TracelbRun(spec, io)
    io.run = run
    run.start()
    while not io.is_done:
        io.clock.advance(max(0.0, min(c.getTime() for c in io.clock.getDelayedCalls()) - io.clock.seconds()))
    rec = run.record
    assert render_text(rec).splitlines()[1:] == [
        "192.0.2.1 -> 198.18.1.2", "198.18.1.2 -> (198.18.11.2, 198.18.12.2) -> 203.0.113.66"]
    assert nodes(rec) == ["192.0.2.1", "198.18.1.2", str(DST)]


def test_per_flow_check_probes_are_recorded_with_their_link():
    """The per-packet check's probes (the first new node's flow, k(2) more
    times) are recorded on that node's link after its hop probes, as scamper
    records them: every probe but the one that found the first node is on a link."""
    rec, io = run_tracelb(DIAMOND)
    by_link = {(str(rec.nodes[lk.from_].addr), str(rec.nodes[lk.to].addr)):
               [p for ps in lk.sets for p in ps.probes] for lk in rec.links}
    assert sum(len(v) for v in by_link.values()) == rec.probec - 1
    first = by_link[("198.18.1.2", "198.18.11.2")]
    hop = [p for p in first if p.ttl == 3]
    check = hop[-mda_k(2, 95):]
    assert len({p.flowid for p in check}) == 1 and check[0].flowid == hop[0].flowid
    assert all(p.rxs and str(p.rxs[0].reply_from) == "198.18.11.2" for p in check)
    assert [(p.tx.sec, p.tx.usec) for p in first] == sorted((p.tx.sec, p.tx.usec) for p in first)


def test_equally_near_branches_go_last_queued_first():
    """scamper's waiting heap hands out the later of two equally near branches
    first: behind the balancer the higher address (queued second) is probed
    before the lower, so the probes go out in scamper's order."""
    rec, io = run_tracelb(DIAMOND)
    ttl4 = [pkt for pkt in io.sent if pkt[8] == 4]
    assert [str(io.hop_for(pkt, 3)) for pkt in ttl4] == ["198.18.12.2", "198.18.11.2"]


@given(st.lists(st.integers(0, 5), max_size=40))
def test_waiting_heap_hands_out_nearest_first(keys):
    w = _Waiting()
    for i, k in enumerate(keys):
        w.push(k, (k, i))
    out = [w.pop() for _ in keys]
    assert len(w) == 0
    assert [k for k, _ in out] == sorted(keys)
    assert sorted(out) == sorted((k, i) for i, k in enumerate(keys))


def test_first_hop_with_two_next_hops_is_a_clump():
    rec, _ = run_tracelb(["192.0.2.1", ["198.18.1.2", "198.18.1.6"], str(DST)])
    assert render_text(rec).splitlines()[1:] == ["192.0.2.1 -> (198.18.1.2, 198.18.1.6) -> 203.0.113.66"]
    (lk,) = rec.links
    assert lk.hopc == 2 and rec.nodes[lk.to].addr == DST


# -- the command ------------------------------------------------------------------

def test_parse_defaults_and_options():
    o = parse_tracelb("198.51.100.66")
    assert (o.method, o.confidence, o.dport, o.firsthop, o.gaplimit, o.attempts, o.probec_max,
            o.wait_us, o.wait_probe_us, o.rtr) == ("udp-dport", 95, 33435, 1, 3, 2, 3000,
                                                   5_000_000, 250_000, None)
    o = parse_tracelb("-P ICMP-echo -c 99 -q 1 -w 2 -W 15 -f 2 -g 5 -U 7 -Q 50 -r 192.0.2.2 198.51.100.66")
    assert (o.method, o.confidence, o.attempts, o.wait_us, o.wait_probe_us, o.firsthop,
            o.gaplimit, o.userid, o.probec_max, str(o.rtr)) == (
        "icmp-echo", 99, 1, 2_000_000, 150_000, 2, 5, 7, 50, "192.0.2.2")
    assert parse_tracelb(o.to_command().split(None, 1)[1]) == o
    assert parse_tracelb("-W 0.5s 198.51.100.66").wait_probe_us == 500_000


@pytest.mark.parametrize("cmd,msg", [
    ("-c 90 198.51.100.66", "-c failed: confidence must be 95 or 99"),
    ("-P udp 198.51.100.66", "-P failed: invalid tracelb method 'udp'"),
    ("-W 10 198.51.100.66", "-W failed: inter-probe delay must be within 0.15s - 2s"),
    ("-w 11 198.51.100.66", "-w failed: timeout must be within 1s - 10s"),
    ("-q 6 198.51.100.66", "-q failed: attempts must be within 1 - 5"),
    ("-Q 49 198.51.100.66", "-Q failed: max-probec must be within 50 - 65535".replace("max-probec", "probec_max")),
    ("-r 2001:db8::1 198.51.100.66", "invalid router address '2001:db8::1'"),
    ("-P tcp-sport 2001:db8:d::66", "tracelb -P tcp-sport is not available for IPv6 destinations"),
    ("-q 1 -q 2 198.51.100.66", "repeated option -q"),
    ("", "expected address to trace"),
])
def test_parse_refusals(cmd, msg):
    with pytest.raises(CommandError) as e:
        parse_tracelb(cmd)
    assert str(e.value) == msg


def test_nodes_carry_quoted_ttl_and_new_nodes_are_in_address_order():
    """As scamper: every node found by an ICMP error keeps its q_ttl; a branch's new nodes
    are recorded sorted by address, whatever order the flow hash found them in."""
    for sport in range(40000, 40006):
        rec, _ = run_tracelb(DIAMOND, sport=sport)
        assert all(n.flags == 1 and n.q_ttl == 1 for n in rec.nodes), rec.nodes
        assert nodes(rec)[2:4] == ["198.18.11.2", "198.18.12.2"]


def test_flows_that_reached_a_node_are_used_first_beyond_it():
    """scamper probes a node's next hops first with the flow ids that reached it (in the
    order they were sent), and only then with new ones; found against Debian scamper in
    the lab, where its first six flows at TTL 3 are the six of TTL 2."""
    rec, io = run_tracelb(DIAMOND, dport=33435)
    sent = [(p.flowid, p.ttl) for lk in rec.links for s in lk.sets for p in s.probes]
    at2 = sorted(f for f, t in sent if t == 2)
    order = []
    for pkt in io.sent:
        ttl = pkt[8]
        dport = struct.unpack_from("!H", pkt, 22)[0]
        order.append((ttl, dport))
    ttl3 = [d for t, d in order if t == 3]
    assert at2 == list(range(33435, 33441))
    assert ttl3[:6] == at2
