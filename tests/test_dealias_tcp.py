"""dealias with TCP probedefs (``-P tcp-ack | tcp-ack-sport | tcp-syn-sport``), sans-IO.

After scamper_dealias_do.c 20211212: tcp-ack keeps one source port and one
random seq/ack per definition; the two ``-sport`` methods add a counter per
target address to the source port and draw seq/ack per probe; the reply that
counts is a TCP segment from the target to the probe's ports (a RST from a
closed port), taken off the datalink and over IPv4 only.  The real tool's
record (tests/fixtures/scamper-repertoire/dealias-ally-tcp.warts) is the
model of the record layout; tests/test_dealias_lab.py compares with the
real scamper in the lab.
"""

from __future__ import annotations

import ipaddress
import struct
from pathlib import Path

import pytest
from twisted.internet.task import Clock

from ixpscamper.dealias_cmd import parse_dealias
from ixpscamper.prober import packets
from ixpscamper.prober.dealias import DealiasRun, unsupported_dealias
from ixpscamper.prober.simnet import icmp_error, make_prober, run_until
from ixpscamper.warts import encode_record, iter_records
from ixpscamper.warts.records import Dealias, DealiasResult

SRC = ipaddress.ip_address("192.0.2.10")
SRC6 = ipaddress.ip_address("2001:db8:1::10")
FIXTURE = Path(__file__).parent / "fixtures" / "scamper-repertoire" / "dealias-ally-tcp.warts"


class TcpRouter:
    """Answers TCP to a closed port with a RST; one IP-ID counter (shared) or one per address."""

    def __init__(self, addrs, shared=True, start=1000, ttl=63, reply_from=None, unreach=None):
        self.addrs = [ipaddress.ip_address(a) for a in addrs]
        self.shared = shared
        self.counters = {a: start + 7919 * i for i, a in enumerate(self.addrs)}
        self.ttl = ttl
        self.reply_from = ipaddress.ip_address(reply_from) if reply_from else None
        self.unreach = unreach  # send this ICMP (type, code) quoting the probe instead

    def ipid(self, addr) -> int:
        key = self.addrs[0] if self.shared else addr
        self.counters[key] = (self.counters[key] + 1) & 0xFFFF
        return self.counters[key]


class IO:
    """The TaskIO of a run, with the routers behind it; replies as the datalink (dl) sees them."""

    def __init__(self, routers, rtt=0.001, dl=True):
        self.clock = Clock()
        self.routers = routers
        self.rtt = rtt
        self.dl = dl
        self.run = None
        self.done = False
        self.sent = []  # (time, dst, packet)
        self.claimed = []  # (port, kind)
        self.accepted = []

    def now_ns(self):
        return int(round(self.clock.seconds() * 1e9))

    def request_send(self):
        self.clock.callLater(0, self.run.send_now)

    def claim_port(self, port, kind=None):
        self.claimed.append((port, kind))

    def transmit(self, pkt, dst=None):
        self.sent.append((self.clock.seconds(), dst, pkt))
        self.clock.callLater(self.rtt, self._answer, pkt)
        return self.now_ns()

    def finished(self):
        self.done = True

    def deliver(self, rep_pkt, dl=None):
        self.accepted.append(self.run.on_reply(packets.dissect(rep_pkt), self.now_ns(),
                                               self.dl if dl is None else dl))

    def _answer(self, pkt):
        p = packets.dissect(pkt)
        dst = ipaddress.ip_address(p.dst)
        for r in self.routers:
            if dst in r.addrs:
                break
        else:
            return
        src = (r.reply_from or dst).packed
        if r.unreach is not None:
            quote = bytearray(pkt)
            quote[8] -= 1  # the router that answers decremented it
            self.deliver(icmp_error(src, p.src, r.unreach[0], r.unreach[1], bytes(quote), ttl=r.ttl,
                                    ipid=r.ipid(dst)))
            return
        assert p.proto == packets.PROTO_TCP
        # a closed port: RST to an ACK (seq = its ack), RST|ACK to a SYN
        ihl = (pkt[0] & 0x0F) * 4 if p.family == 4 else 40
        seq, ack = struct.unpack_from("!II", pkt, ihl + 4)
        flags = 0x04 if p.tcp_flags & 0x10 else 0x14
        seg = packets.tcp_segment(src, p.src, p.dport, p.sport, seq=ack, ack=seq + 1, flags=flags)
        fam4 = len(src) == 4
        self.deliver(packets.ip_packet(src, p.src, packets.PROTO_TCP, seg, ttl=r.ttl,
                                       ipid=r.ipid(dst) if fam4 else 0, df=True))


def started(o, routers, **kw):
    """A DealiasRun of options ``o`` on an IO of its own, started; ``(run, io)``."""
    io = IO(routers, **kw)
    r = DealiasRun(o, SRC if o.dst.version == 4 else SRC6, io)
    io.run = r
    r.start()
    return r, io


def run(cmd, routers, pid=0x1234, **kw):
    o = parse_dealias(cmd.split(None, 1)[1], pid=pid)
    assert unsupported_dealias(o) is None
    r, io = started(o, routers, **kw)
    while not io.done:
        calls = io.clock.getDelayedCalls()
        assert calls
        io.clock.advance(max(0.0, min(c.getTime() for c in calls) - io.clock.seconds()))
    return r.record, io


def tcp_of(pkt):
    """(sport, dport, seq, ack, flags, window, payload) of a probe."""
    ihl = (pkt[0] & 0x0F) * 4 if pkt[0] >> 4 == 4 else 40
    assert (pkt[9] if ihl != 40 else pkt[6]) == packets.PROTO_TCP
    sport, dport, seq, ack, off, flags, win = struct.unpack_from("!HHIIBBH", pkt, ihl)
    assert off >> 4 == 5  # no options
    return sport, dport, seq, ack, flags, win, pkt[ihl + 20:]


def tcp_checksum_ok(pkt):
    ihl = (pkt[0] & 0x0F) * 4 if pkt[0] >> 4 == 4 else 40
    src, dst = (pkt[12:16], pkt[16:20]) if ihl != 40 else (pkt[8:24], pkt[24:40])
    seg = pkt[ihl:]
    return packets.checksum(packets._pseudo(src, dst, packets.PROTO_TCP, len(seg)) + seg) == 0


T1 = TcpRouter(["198.18.1.2", "198.18.11.1"], shared=True)


def test_ally_tcp_ack_shared_counter_is_aliases_and_probes_as_scamper():
    rec, io = run("dealias -m ally -p '-P tcp-ack -d 80' 198.18.1.2 198.18.11.1", [T1])
    assert rec.result == DealiasResult.ALIASES
    assert len(rec.probes) == 5 and all(len(p.replies) == 1 for p in rec.probes)
    sport = (0x1234 & 0x7FFF) + 0x8000
    segs = [tcp_of(pkt) for _, _, pkt in io.sent]
    # one sport, dport 80, ACK only, window 0, two bytes of payload
    assert {(s[0], s[1], s[4], s[5], s[6]) for s in segs} == {(sport, 80, 0x10, 0, b"\0\0")}
    # one random seq/ack per definition, kept for every probe of it
    per_def = {}
    for (_, dst, _), s in zip(io.sent, segs):
        per_def.setdefault(str(dst), set()).add((s[2], s[3]))
    assert all(len(v) == 1 for v in per_def.values()) and len(per_def) == 2
    assert all(tcp_checksum_ok(pkt) for _, _, pkt in io.sent)
    assert all(len(pkt) == 42 and pkt[4:6] == bytes([p.ipid >> 8, p.ipid & 0xFF]) and pkt[6] & 0x40
               for (_, _, pkt), p in zip(io.sent, rec.probes))
    d0 = rec.data.probedefs[0]
    assert (d0.method, d0.sport, d0.dport, d0.tcp_flags, d0.size) == (2, sport, 80, 0x10, 0)
    r0 = rec.probes[0].replies[0]
    assert (r0.proto, r0.tcp_flags, r0.ttl, r0.icmp_type, r0.icmp_code, r0.icmp_q_ttl) == (6, 4, 63, 0, 0, 0)
    assert [p.replies[0].ipid for p in rec.probes] == list(range(1001, 1006))
    assert io.claimed == []  # a fixed port: the scheduler routed it at the start


def test_ally_tcp_two_routers_not_aliases_and_linux_zero_ipids():
    m1 = TcpRouter(["198.18.11.2"], start=100)
    m2 = TcpRouter(["198.18.12.2"], start=30000)
    rec, _ = run("dealias -m ally -p '-P tcp-ack -d 443' 198.18.11.2 198.18.12.2", [m1, m2])
    assert rec.result == DealiasResult.NOTALIASES and len(rec.probes) == 2


def test_tcp_syn_sport_counts_the_port_per_target_and_draws_seq_per_probe():
    rec, io = run("dealias -m ally -W 50 -w 1 -p '-P tcp-syn-sport -d 80' 198.18.1.2 198.18.11.1", [T1])
    assert rec.result == DealiasResult.ALIASES
    base = (0x1234 & 0x7FFF) + 0x8000
    segs = [tcp_of(pkt) for _, _, pkt in io.sent]
    # target A: base, base+1, base+2; target B: base, base+1 (a counter per target)
    assert [s[0] for s in segs] == [base, base, base + 1, base + 1, base + 2]
    assert {s[4] for s in segs} == {0x02}
    assert len({(s[2], s[3]) for s in segs}) == 5
    assert rec.data.probedefs[0].tcp_flags == 0x02 and rec.data.probedefs[0].method == 6
    assert all(p.replies[0].tcp_flags == 0x14 for p in rec.probes)
    # the ports the replies come to are claimed for the run, kind tcp
    assert io.claimed == [(base, "tcp"), (base, "tcp"), (base + 1, "tcp"), (base + 1, "tcp"),
                          (base + 2, "tcp")]


def test_tcp_ack_sport_shares_the_counter_between_definitions_of_one_target():
    # radargun, two definitions to the same address: one counter for that address
    rec, io = run("dealias -m radargun -q 2 -W 10 -w 1 -p '-P tcp-ack-sport -d 80 -i 198.18.1.2' "
                  "-p '-P tcp-ack-sport -d 81 -i 198.18.1.2'", [T1])
    base = (0x1234 & 0x7FFF) + 0x8000
    segs = [tcp_of(pkt) for _, _, pkt in io.sent]
    assert [(s[0], s[1]) for s in segs] == [(base, 80), (base + 1, 81), (base + 2, 80), (base + 3, 81)]
    assert {s[4] for s in segs} == {0x10}
    assert all(len(p.replies) == 1 and p.replies[0].proto == 6 for p in rec.probes)
    assert rec.result == DealiasResult.NONE


def test_tcp_reply_must_come_from_the_target_to_its_ports_off_the_datalink():
    o = parse_dealias("-m ally -p '-P tcp-ack -d 80' 198.18.1.2 198.18.11.1", pid=0x1234)
    r, io = started(o, [])
    io.clock.advance(0)
    (_, _, pkt), = io.sent
    sport, dport = tcp_of(pkt)[:2]
    me = SRC.packed

    def rst(src, sp, dp):
        seg = packets.tcp_segment(ipaddress.ip_address(src).packed, me, sp, dp, flags=0x04)
        return packets.ip_packet(ipaddress.ip_address(src).packed, me, packets.PROTO_TCP, seg,
                                 ttl=64, ipid=7, df=True)

    io.deliver(rst("198.18.1.3", dport, sport))  # not a target
    io.deliver(rst("198.18.1.2", dport + 1, sport))  # another port of the target
    io.deliver(rst("198.18.1.2", dport, sport + 1))  # to another port of ours
    # a socket's copy: scamper reads TCP off the datalink
    io.deliver(rst("198.18.1.2", dport, sport), dl=False)
    io.deliver(rst("198.18.11.1", dport, sport))  # the other target, probed not yet
    assert io.accepted == [False] * 5 and r.record.probes[0].replies == []
    io.deliver(rst("198.18.1.2", dport, sport))
    assert io.accepted[-1] is True
    (rep,) = r.record.probes[0].replies
    assert (rep.proto, rep.tcp_flags, rep.ipid, str(rep.src)) == (6, 4, 7, "198.18.1.2")


def test_tcp_ack_late_reply_goes_to_the_newest_probe_of_its_target():
    """scamper's dealias_probe_tcp_find2: no IP-ID check, the newest probe of the target first."""
    o = parse_dealias("-m ally -W 10 -p '-P tcp-ack -d 80' 198.18.1.2 198.18.11.1", pid=0x1234)
    r, io = started(o, [])
    while len(io.sent) < 3:  # A, B, A
        io.clock.advance(0.01)
    sport = tcp_of(io.sent[0][2])[0]
    a = ipaddress.ip_address("198.18.1.2").packed
    seg = packets.tcp_segment(a, SRC.packed, 80, sport, flags=0x04)
    io.deliver(packets.ip_packet(a, SRC.packed, packets.PROTO_TCP, seg, ttl=64, ipid=9, df=True))
    assert [len(p.replies) for p in r.record.probes] == [0, 0, 1]


def test_icmp_error_quoting_a_tcp_probe_matches_and_is_not_from_the_target():
    # as the fixture: the second address is unreachable, a router says so
    net = TcpRouter(["198.18.3.2"], reply_from="198.18.1.2", unreach=(3, 0))
    dst = TcpRouter(["198.51.100.66"], ttl=62)
    rec, io = run("dealias -m ally -p '-P tcp-ack -d 80' 198.51.100.66 198.18.3.2", [dst, net], dl=False)
    # the socket's copy of the RST does not count: scamper reads TCP off the datalink only
    assert rec.probes[0].replies == []
    rec, io = run("dealias -m ally -p '-P tcp-ack -d 80' 198.51.100.66 198.18.3.2", [dst, net])
    assert rec.result == DealiasResult.NONE and len(rec.probes) == 2
    rep = rec.probes[1].replies[0]
    assert (str(rep.src), rep.proto, rep.icmp_type, rep.icmp_code, rep.tcp_flags) == \
        ("198.18.1.2", 1, 3, 0, 0)


def test_tcp_syn_sport_icmp_error_matches_the_probe_by_its_own_port():
    net = TcpRouter(["198.18.3.2"], reply_from="198.18.1.2", unreach=(11, 0))
    rec, io = run("dealias -m ally -W 10 -w 1 -p '-P tcp-syn-sport -d 80 -t 2' 198.18.3.2 198.18.3.2", [net])
    # every probe (ports base, base, base+1, ...) answered once by a time exceeded
    assert [len(p.replies) for p in rec.probes] == [1] * 5
    assert all(p.replies[0].icmp_type == 11 for p in rec.probes)


def test_ipv6_tcp_rsts_are_not_matched_as_scamper_20211212():
    r6 = TcpRouter(["2001:db8:a::2", "2001:db8:11::1"])
    rec, io = run("dealias -m ally -W 50 -w 1 -p '-P tcp-ack -d 80' 2001:db8:a::2 2001:db8:11::1", [r6])
    assert rec.result == DealiasResult.NONE
    assert len(rec.probes) == 5 and all(p.replies == [] for p in rec.probes)
    assert io.accepted == [False] * 5
    assert all(tcp_checksum_ok(pkt) and len(pkt) == 62 for _, _, pkt in io.sent)


@pytest.mark.parametrize("cmd", [
    "dealias -m prefixscan -W 100 -p '-P tcp-ack -d 80' 198.18.1.2 198.18.11.0/30",
    "dealias -m bump -W 100 -p '-P tcp-syn-sport -i 198.18.1.2' -p '-P tcp-syn-sport -i 198.18.11.1'",
])
def test_prefixscan_and_bump_tcp_shared_counter_are_aliases(cmd):
    r = TcpRouter(["198.18.1.2", "198.18.11.1", "198.18.11.2", "198.18.11.3", "198.18.11.0"])
    rec, io = run(cmd, [r])
    assert rec.result == DealiasResult.ALIASES
    assert all(p.replies[0].proto == 6 for p in rec.probes if p.replies)
    assert {pkt[9] for _, _, pkt in io.sent} == {packets.PROTO_TCP}
    # prefixscan's candidates are definitions made on the way: the same method and flags
    assert {(d.method, d.tcp_flags) for d in rec.data.probedefs} == {(rec.data.probedefs[0].method,
                                                                      rec.data.probedefs[0].tcp_flags)}
    assert all(d.tcp_flags for d in rec.data.probedefs)


def test_tcp_probedef_with_size_is_refused_in_one_line():
    o = parse_dealias("-m ally -p '-P tcp-ack -s 100' 10.0.0.1 10.0.0.2")
    assert unsupported_dealias(o) == "dealias: a TCP probedef takes no -s (scamper 20211212 cannot send it)"
    for m in ("tcp-ack", "tcp-ack-sport", "tcp-syn-sport"):
        assert unsupported_dealias(parse_dealias(f"-m ally -p '-P {m}' 10.0.0.1 10.0.0.2")) is None


def test_record_as_the_real_tools_fixture():
    """The fixture's command (pid giving its sport) against routers that answer as its did."""
    with open(FIXTURE, "rb") as f:
        (want,) = [r for r in iter_records(f) if isinstance(r, Dealias)]
    sport = want.data.probedefs[0].sport
    net = TcpRouter(["198.18.3.2"], reply_from="198.18.1.2", unreach=(3, 0), ttl=63)
    dst = TcpRouter(["198.51.100.66"], ttl=62)
    dst.counters = {a: 0xFFFF for a in dst.counters}  # the RST's IP-ID 0
    net.counters = {a: 63048 for a in net.counters}
    rec, _ = run("dealias -m ally -p '-P tcp-ack -d 80' 198.51.100.66 198.18.3.2", [dst, net],
                 pid=sport - 0x8000)
    assert rec.result == want.result
    fields = ("dst", "id", "method", "ttl", "tos", "size", "mtu", "sport", "dport", "tcp_flags")
    assert [[getattr(d, f) for f in fields] for d in rec.data.probedefs] == \
        [[getattr(d, f) for f in fields] for d in want.data.probedefs]
    rfields = ("src", "ipid", "ttl", "flags", "proto", "icmp_type", "icmp_code", "icmp_q_ttl", "tcp_flags")
    assert [(p.probedef.id, p.seq, p.ipid, [[getattr(x, f) for f in rfields] for x in p.replies])
            for p in rec.probes] == \
        [(p.probedef.id, p.seq, p.ipid, [[getattr(x, f) for f in rfields] for x in p.replies])
         for p in want.probes]
    # and it encodes as the tool's does, timestamps and source aside
    rec.start = want.start
    for d, w in zip(rec.data.probedefs, want.data.probedefs):
        d.src = w.src
    for p, w in zip(rec.probes, want.probes):
        p.tx = w.tx
        for x, y in zip(p.replies, w.replies):
            x.rx = y.rx
    assert encode_record(rec) == encode_record(want)


def test_scheduler_takes_tcp_replies_off_the_datalink_and_routes_every_port():
    clock, net, prober = make_prober({"198.18.1.2": ["198.18.1.2"], "198.18.11.1": ["198.18.11.1"]})
    o = parse_dealias("-m radargun -q 3 -W 50 -w 1 -p '-P tcp-syn-sport -d 80' 198.18.1.2 198.18.11.1",
                      pid=0x1234)
    task = prober.submit(o)
    (rec,) = run_until(clock, [task.deferred])
    assert len(rec.probes) == 6
    base = (0x1234 & 0x7FFF) + 0x8000
    assert [tcp_of(pkt)[0] for _, _, pkt in net.sent] == [base, base, base + 1, base + 1, base + 2, base + 2]
    # every probe's RST|ACK, to ports base..base+2, reached the run (off the datalink)
    assert all(len(p.replies) == 1 and p.replies[0].proto == 6 and p.replies[0].tcp_flags == 0x14
               for p in rec.probes)
    assert net.listening_dl.get(2) == 0  # listened, and let go at the end
    assert prober._by_key == {}  # every claimed port released


def test_scheduler_tcp_ack_ally_not_aliases_on_zero_ipids():
    clock, net, prober = make_prober({"198.18.1.2": ["198.18.1.2"], "198.18.11.1": ["198.18.11.1"]})
    o = parse_dealias("-m ally -W 50 -w 1 -p '-P tcp-ack -d 80' 198.18.1.2 198.18.11.1", pid=0x1234)
    (rec,) = run_until(clock, [prober.submit(o).deferred])
    # simnet's RSTs carry IP-ID 0 (as Linux's): two equal IP-IDs are not in sequence
    assert rec.result == DealiasResult.NOTALIASES and len(rec.probes) == 2
    assert all(p.replies[0].proto == 6 and p.replies[0].tcp_flags == 0x14 for p in rec.probes)


class UdpRouter(TcpRouter):
    """Port unreachables to UDP probes (quoting them, TTL decremented)."""

    def __init__(self, addrs, **kw):
        super().__init__(addrs, unreach=(3, 3), **kw)


def test_udp_dport_counts_the_destination_port_per_target_as_scamper():
    """udp-dport (the UDP sibling of the -sport methods): dport + a counter per target,
    matched by the port each probe left with (scamper's dealias_target_t udp_dport)."""
    rec, io = run("dealias -m ally -W 50 -w 1 -p '-P udp-dport -d 40000' 198.18.1.2 198.18.11.1",
                  [UdpRouter(["198.18.1.2", "198.18.11.1"])])
    dports = [struct.unpack_from("!H", pkt, 22)[0] for _, _, pkt in io.sent]
    assert dports == [40000, 40000, 40001, 40001, 40002]
    sports = {struct.unpack_from("!H", pkt, 20)[0] for _, _, pkt in io.sent}
    assert sports == {(0x1234 & 0x7FFF) + 0x8000}
    assert all(len(p.replies) == 1 for p in rec.probes)
    assert rec.result == DealiasResult.ALIASES
    assert rec.data.probedefs[0].dport == 40000 and rec.data.probedefs[0].method == 5


def test_udp_dport_reply_matches_the_port_its_probe_left_with():
    o = parse_dealias("-m ally -W 10 -p '-P udp-dport -d 40000' 198.18.1.2 198.18.11.1", pid=0x1234)
    r, io = started(o, [])
    while len(io.sent) < 3:  # A (40000), B (40000), A (40001)
        io.clock.advance(0.01)
    a = ipaddress.ip_address("198.18.1.2").packed

    def unreach(pkt, dport):
        quote = bytearray(pkt)
        quote[22:24] = struct.pack("!H", dport)
        return icmp_error(a, SRC.packed, 3, 3, bytes(quote), ipid=5)

    first = io.sent[0][2]
    io.deliver(unreach(first, 40002))  # no probe of A left with 40002
    assert io.accepted == [False]
    io.deliver(unreach(first, 40001))  # the third probe's port (its IP-ID not: 0xffff is the first's)
    assert io.accepted == [False, False]
    io.deliver(unreach(io.sent[2][2], 40001))
    assert io.accepted[-1] is True and [len(p.replies) for p in r.record.probes] == [0, 0, 1]
