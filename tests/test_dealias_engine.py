"""dealias (ally, mercator) sans-IO: the command parser and the state machine on simulated routers."""

from __future__ import annotations

import ipaddress
import struct

import pytest
from twisted.internet.task import Clock

from ixpscamper.commands import CommandError
from ixpscamper.dealias_cmd import parse_dealias
from ixpscamper.prober import packets
from ixpscamper.prober.dealias import DealiasRun, ipid_inseq
from ixpscamper.prober.simnet import icmp_error
from ixpscamper.warts.records import (DealiasAlly, DealiasMercator, DealiasProbe, DealiasProbedef,
                                      DealiasReply, DealiasResult)

SRC = ipaddress.ip_address("192.0.2.10")


class Router:
    """Answers probes to its addresses; one IP-ID counter (shared) or one per address."""

    def __init__(self, addrs, shared=True, step=1, reply_from=None, start=1000, swap=False):
        self.addrs = [ipaddress.ip_address(a) for a in addrs]
        self.shared = shared
        self.step = step
        self.reply_from = ipaddress.ip_address(reply_from) if reply_from else None
        self.counters = {a: start + 7919 * i for i, a in enumerate(self.addrs)}
        self.swap = swap

    def ipid(self, addr) -> int:
        key = self.addrs[0] if self.shared else addr
        self.counters[key] = (self.counters[key] + self.step) & 0xFFFF
        v = self.counters[key]
        return ((v & 0xFF) << 8 | v >> 8) if self.swap else v


class IO:
    def __init__(self, routers, rtt=0.001):
        self.clock = Clock()
        self.routers = routers
        self.rtt = rtt
        self.run = None
        self.done = False
        self.sent = []

    def now_ns(self):
        return int(round(self.clock.seconds() * 1e9))

    def request_send(self):
        self.clock.callLater(0, self.run.send_now)

    def transmit(self, pkt, dst=None):
        self.sent.append((self.clock.seconds(), dst, pkt))
        self.clock.callLater(self.rtt, self._answer, pkt)
        return self.now_ns()

    def finished(self):
        self.done = True

    def _answer(self, pkt):
        dst = ipaddress.ip_address(pkt[16:20])
        for r in self.routers:
            if dst in r.addrs:
                break
        else:
            return
        src = r.reply_from or dst
        ipid = r.ipid(dst)
        if pkt[9] == 17:
            quote = bytearray(pkt)
            quote[8] -= 1
            rep = icmp_error(src.packed, pkt[12:16], 3, 3, bytes(quote), ipid=ipid)
        else:
            ident, seq = struct.unpack_from("!HH", pkt, 24)
            body = bytearray(packets.icmp_echo(src.packed, pkt[12:16], ident, seq, pkt[28:]))
            body[0] = 0
            body[2:4] = b"\0\0"
            body[2:4] = struct.pack("!H", packets.checksum(bytes(body)))
            rep = packets.ip_packet(src.packed, pkt[12:16], 1, bytes(body), ttl=64, ipid=ipid, df=False)
        self.run.on_reply(packets.dissect(rep), self.now_ns(), False)


def run(cmd, routers):
    o = parse_dealias(cmd.split(None, 1)[1], pid=0x1234)
    io = IO(routers)
    r = DealiasRun(o, SRC, io)
    io.run = r
    r.start()
    while not io.done:
        calls = io.clock.getDelayedCalls()
        assert calls
        io.clock.advance(max(0.0, min(c.getTime() for c in calls) - io.clock.seconds()))
    return r.record, io


T1 = Router(["198.18.1.2", "198.18.11.1", "198.51.100.1"], shared=True)


def test_ally_shared_counter_is_aliases():
    rec, io = run("dealias -m ally 198.18.1.2 198.18.11.1", [T1])
    assert rec.result == DealiasResult.ALIASES
    assert len(rec.probes) == 5 and all(len(p.replies) == 1 for p in rec.probes)
    assert [str(p.probedef.dst) for p in rec.probes] == ["198.18.1.2", "198.18.11.1"] * 2 + ["198.18.1.2"]
    assert [p.seq for p in rec.probes] == [0, 0, 1, 1, 2]
    # 0xabab IP-IDs counting down from 0xffff, 150 ms apart, then wait_timeout
    assert [p.ipid for p in rec.probes] == [0xFFFF, 0xFEFE, 0xFDFD, 0xFCFC, 0xFBFB]
    times = [t for t, _, _ in io.sent]
    assert [round(b - a, 3) for a, b in zip(times, times[1:])] == [0.15] * 4
    assert io.clock.seconds() == pytest.approx(times[-1] + 5)
    assert isinstance(rec.data, DealiasAlly) and rec.data.fudge == 200 and rec.data.attempts == 5


def test_ally_byte_swapped_counter_is_aliases_unless_nobs():
    r = Router(["10.0.0.1", "10.0.0.2"], shared=True, swap=True)
    rec, _ = run("dealias -m ally 10.0.0.1 10.0.0.2", [r])
    assert rec.result == DealiasResult.ALIASES
    r = Router(["10.0.0.1", "10.0.0.2"], shared=True, swap=True, start=0x10f0)
    rec, _ = run("dealias -m ally -O nobs 10.0.0.1 10.0.0.2", [r])
    assert rec.result == DealiasResult.NOTALIASES


def test_ally_two_routers_not_aliases_early():
    m1, m2 = Router(["198.18.11.2"], start=100), Router(["198.18.12.2"], start=30000)
    rec, _ = run("dealias -m ally 198.18.11.2 198.18.12.2", [m1, m2])
    assert rec.result == DealiasResult.NOTALIASES
    assert len(rec.probes) == 2  # decided at the second reply


def test_ally_silent_address_is_none():
    rec, _ = run("dealias -m ally -w 1 198.18.1.2 192.0.2.99", [T1])
    assert rec.result == DealiasResult.NONE and len(rec.probes) == 5


def test_ally_icmp_probedef():
    rec, io = run("dealias -m ally -p '-P icmp-echo' 198.18.1.2 198.51.100.1", [T1])
    assert rec.result == DealiasResult.ALIASES
    assert all(pkt[9] == 1 for _, _, pkt in io.sent)


def test_mercator_reply_from_other_address_is_aliases():
    r = Router(["198.18.11.1"], reply_from="198.18.1.2")
    rec, io = run("dealias -m mercator 198.18.11.1", [r])
    assert rec.result == DealiasResult.ALIASES
    assert str(rec.probes[0].replies[0].src) == "198.18.1.2"
    assert isinstance(rec.data, DealiasMercator) and len(io.sent) == 1


def test_mercator_same_address_is_none_and_silence_retries():
    rec, _ = run("dealias -m mercator 198.18.11.1", [T1])
    assert rec.result == DealiasResult.NONE and len(rec.probes) == 1
    rec, io = run("dealias -m mercator -w 1 192.0.2.99", [T1])
    assert rec.result == DealiasResult.NONE and len(rec.probes) == 3
    assert [round(t) for t, _, _ in io.sent] == [0, 1, 2]


def _probes(ipids):
    d = DealiasProbedef(dst=SRC)
    return [DealiasProbe(probedef=d, replies=[DealiasReply(src=SRC, ipid=v)]) for v in ipids]


@pytest.mark.parametrize("ipids,fudge,bs,want", [
    ([1, 2, 3], 200, 0, True),
    ([1, 2, 300], 200, 0, False),  # a gap beyond the fudge
    ([3, 2, 1], 200, 0, False),
    ([0xFFFE, 0xFFFF, 1], 200, 0, True),  # wraps
    ([5, 5, 6], 200, 0, False),  # repeated
    ([0x0100, 0x0200, 0x0300], 200, 0, False),
    ([0x0100, 0x0200, 0x0300], 200, 2, True),  # byte-swapped: 1, 2, 3
    ([10, 20], 0, 0, True),  # two samples, no fudge: cannot tell
])
def test_ipid_inseq(ipids, fudge, bs, want):
    assert ipid_inseq(_probes(ipids), fudge, bs) is want


def test_parse_dealias():
    o = parse_dealias("-m ally -W 100 -q 7 -f 50 198.18.1.2 198.18.11.1", pid=0x1234)
    assert (o.method, o.wait_probe_ms, o.attempts, o.fudge, o.wait_timeout) == ("ally", 100, 7, 50, 5)
    assert [str(p.dst) for p in o.probedefs] == ["198.18.1.2", "198.18.11.1"]
    assert o.probedefs[0].sport == (0x1234 & 0x7FFF) + 0x8000 and o.probedefs[0].dport == 33435
    o = parse_dealias("-m ally -p '-P icmp-echo -i 10.0.0.1' -p '-P udp -i 10.0.0.2 -d 40000'")
    assert [p.method for p in o.probedefs] == ["icmp-echo", "udp"] and o.probedefs[1].dport == 40000
    o = parse_dealias("198.18.1.2")
    assert (o.method, o.attempts, o.wait_timeout) == ("mercator", 3, 5)
    assert parse_dealias("-m ally 2001:db8::1 2001:db8::2").nobs


@pytest.mark.parametrize("cmd,msg", [
    ("-m foo 1.2.3.4", "-m failed: invalid dealias method"),
    ("-m ally 1.2.3.4", "expected second address"),
    ("-m ally 1.2.3.4 2001:db8::1", "dst IP specified incorrectly"),
    ("-m mercator -q 4 1.2.3.4", "invalid parameters for mercator"),
    ("-m mercator -p '-P icmp-echo' 1.2.3.4", "expected UDP probedef method for mercator"),
    ("-m ally -p '-P icmp-echo -d 5' 1.2.3.4 1.2.3.5", "-p failed: sport/dport option not permitted for icmp"),
    ("-m ally -p '-P udp -c 5' 1.2.3.4 1.2.3.5", "-p failed: csum option not permitted for udp"),
    ("-m mercator", "expected target address for mercator"),
    ("-m ally 224.0.0.1 1.2.3.4", "cannot dealias 224.0.0.1: it is a multicast address"),
])
def test_parse_dealias_refusals(cmd, msg):
    with pytest.raises(CommandError) as e:
        parse_dealias(cmd)
    assert str(e.value) == msg


def test_radargun_rounds_pacing_and_result():
    rec, io = run("dealias -m radargun -q 3 -W 100 -r 500 -w 1 198.18.1.2 198.18.11.1 198.51.100.1", [T1])
    assert rec.result == DealiasResult.NONE  # radargun only collects
    assert [str(p.probedef.dst) for p in rec.probes] == ["198.18.1.2", "198.18.11.1", "198.51.100.1"] * 3
    assert [p.seq for p in rec.probes] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert all(len(p.replies) == 1 for p in rec.probes)
    times = [round(t, 3) for t, _, _ in io.sent]
    # 100 ms apart within a round; a round starts 500 ms after the previous one did
    assert times == [0.0, 0.1, 0.2, 0.5, 0.6, 0.7, 1.0, 1.1, 1.2]
    assert io.clock.seconds() == pytest.approx(2.2)  # wait_timeout after the last probe
    assert rec.data.rounds == 3 and rec.data.wait_round == 500


def test_radargun_shuffle_changes_order_between_rounds():
    o = parse_dealias("-m radargun -q 6 -W 10 -O shuffle 10.0.0.1 10.0.0.2 10.0.0.3 10.0.0.4")
    io = IO([Router(["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"])])
    import random
    r = DealiasRun(o, SRC, io, random.Random(7))
    io.run = r
    r.start()
    while not io.done:
        io.clock.advance(max(0.0, min(c.getTime() for c in io.clock.getDelayedCalls()) - io.clock.seconds()))
    rounds = [tuple(str(p.probedef.dst) for p in r.record.probes[i:i + 4]) for i in range(0, 24, 4)]
    assert all(sorted(x) == ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"] for x in rounds)
    assert len(set(rounds)) > 1
    assert r.record.data.flags == 1


def test_radargun_default_wait_round_as_scamper_20211212():
    """-r unset: wait-probe x the number of -p definitions (found against Debian scamper)."""
    assert parse_dealias("-m radargun -W 50 10.0.0.1 10.0.0.2").wait_round_ms == 0
    assert parse_dealias("-m radargun -W 50 -p '-P icmp-echo' 10.0.0.1 10.0.0.2").wait_round_ms == 50
    assert parse_dealias("-m radargun -W 50 -r 700 10.0.0.1 10.0.0.2").wait_round_ms == 700
