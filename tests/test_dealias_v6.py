"""dealias ally / radargun over IPv6, sans-IO: packet-too-big, fragment identifications,
the 32-bit IP-ID sequence test (scamper_dealias_do.c / scamper_dealias.c 20211212).

IPv6 has no IP-ID in its header: a router fills the 32-bit identification
of a fragment header only when it fragments.  With ``-p '-s 1300 -M 1280'``
the replies to the 1300-byte echo requests are too big for the 1280 bytes
scamper claims: it sends the target a packet-too-big quoting the reply, and
the target fragments from then on.  The simulated routers below do what a
Linux router does: one path MTU towards us per router (so a PTB for one of
its addresses covers all of them), one identification counter per router
(``shared``) or per address.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import Optional

import pytest
from twisted.internet.task import Clock

from ixpscamper.dealias_cmd import parse_dealias
from ixpscamper.prober import packets
from ixpscamper.prober.dealias import DealiasRun, ipid_inseq, unsupported_dealias
from ixpscamper.warts.records import (DealiasProbe, DealiasProbedef, DealiasReply, DealiasReplyFlag,
                                      DealiasResult)

SRC = ipaddress.ip_address("2001:db8:1::10")
A, B = "2001:db8:a::2", "2001:db8:11::1"


class Router6:
    def __init__(self, addrs, shared=True, start=0x10000000, step=1):
        self.addrs = [ipaddress.ip_address(a) for a in addrs]
        self.shared = shared
        self.pmtu: Optional[int] = None
        self.step = step
        self.ids = {a: start + 0x01000000 * i for i, a in enumerate(self.addrs)}

    def next_id(self, addr) -> int:
        key = self.addrs[0] if self.shared else addr
        self.ids[key] = (self.ids[key] + self.step) & 0xFFFFFFFF
        return self.ids[key]


class IO6:
    def __init__(self, routers, rtt=0.001, socket_copies=False):
        self.clock = Clock()
        self.routers = routers
        self.rtt = rtt
        self.socket_copies = socket_copies
        self.run = None
        self.done = False
        self.sent = []  # (time, dst, packet)
        self.ptbs = []  # (time, dst, mtu, quoted packet)

    def now_ns(self):
        return int(round(self.clock.seconds() * 1e9))

    def request_send(self):
        self.clock.callLater(0, self.run.send_now)

    def finished(self):
        self.done = True

    def transmit(self, pkt, dst=None):
        self.sent.append((self.clock.seconds(), dst, pkt))
        self.clock.callLater(self.rtt, self._arrive, pkt)
        return self.now_ns()

    def _router(self, addr):
        return next((r for r in self.routers if addr in r.addrs), None)

    def _arrive(self, pkt):
        dst = ipaddress.ip_address(pkt[24:40])
        r = self._router(dst)
        if r is None or pkt[6] != packets.PROTO_ICMP6:
            return
        icmp = pkt[40:]
        if icmp[0] == 2:  # packet too big: the quote's destination is the route to learn
            mtu = struct.unpack_from("!I", icmp, 4)[0]
            quote = icmp[8:]
            self.ptbs.append((self.clock.seconds(), dst, mtu, quote))
            if ipaddress.ip_address(quote[24:40]) == SRC:
                r.pmtu = mtu
            return
        if icmp[0] != 128:
            return
        ident, seq = struct.unpack_from("!HH", icmp, 4)
        reply = bytearray(icmp)
        reply[0], reply[2:4] = 129, b"\0\0"
        body = packets._icmp_finish(dst.packed, SRC.packed, bytes(reply))
        if r.pmtu is not None and 40 + len(body) > r.pmtu:
            fid = r.next_id(dst)
            first = body[:(r.pmtu - 48) & ~7]
            frag = struct.pack("!BBHI", packets.PROTO_ICMP6, 0, 1, fid)  # offset 0, more fragments
            wire = packets.ipv6_header(dst.packed, SRC.packed, 44, 8 + len(first), hlim=63) + frag + first
            rep = packets.dissect(wire)
            assert rep.frag_id == fid
        else:
            wire = packets.ipv6_header(dst.packed, SRC.packed, packets.PROTO_ICMP6, len(body), hlim=63) + body
            rep = packets.dissect(wire)
        self.run.on_reply(rep, self.now_ns(), True)
        if self.socket_copies:
            # the ICMPv6 socket sees the reassembled reply, no identification
            whole = packets.ipv6_header(dst.packed, SRC.packed, packets.PROTO_ICMP6, len(body), hlim=63) + body
            self.run.on_reply(packets.dissect(whole), self.now_ns(), False)


def run(cmd, routers, **kw):
    o = parse_dealias(cmd.split(None, 1)[1], pid=0x1234)
    io = IO6(routers, **kw)
    r = DealiasRun(o, SRC, io)
    io.run = r
    r.start()
    while not io.done:
        calls = io.clock.getDelayedCalls()
        assert calls
        io.clock.advance(max(0.0, min(c.getTime() for c in calls) - io.clock.seconds()))
    return r.record, io


ALLY_M = f"dealias -m ally -W 50 -w 1 -p '-P icmp-echo -s 1300 -M 1280' {A} {B}"


def test_ally_v6_ptb_then_shared_identification_is_aliases():
    rec, io = run(ALLY_M, [Router6([A, B], shared=True)])
    assert rec.result == DealiasResult.ALIASES
    # the first probe's reply came whole: discarded, a PTB to A, a second, then B:
    # the router's one path MTU to us covers B too, so B's reply is fragmented
    (ptb,) = io.ptbs
    t_ptb, dst, mtu, quote = ptb
    assert (str(dst), mtu) == (A, 1280)
    assert len(quote) == 1280 - 48 and ipaddress.ip_address(quote[8:24]) == ipaddress.ip_address(A)
    assert quote[40] == 129  # the echo reply it quotes
    assert [str(p.probedef.dst) for p in rec.probes] == [B, A, B, A, B]
    assert [p.seq for p in rec.probes] == [0, 1, 1, 2, 2]
    assert all(p.ipid == 0 for p in rec.probes)
    assert all(r.flags == int(DealiasReplyFlag.IPID32) for p in rec.probes for r in p.replies)
    ids = [p.replies[0].ipid32 for p in rec.probes]
    assert ids == sorted(ids) and ids[-1] - ids[0] == 4
    # the record starts again with the first probe kept, a second after the PTB
    first_tx = rec.probes[0].tx
    assert (first_tx.sec, first_tx.usec) == (rec.start.sec, rec.start.usec)
    ptb_tx = t_ptb - io.rtt  # the PTB was logged on arrival
    assert first_tx.sec + first_tx.usec / 1e6 == pytest.approx(ptb_tx + 1.0, abs=1e-6)


def test_ally_v6_separate_identifications_not_aliases():
    # two routers, each told separately
    rec, io = run(ALLY_M, [Router6([A], start=0x20000000), Router6([B], start=0x70000000)])
    assert rec.result == DealiasResult.NOTALIASES
    assert [str(d) for _, d, _, _ in io.ptbs] == [A, B]
    assert len(rec.probes) == 2 and [str(p.probedef.dst) for p in rec.probes] == [A, B]


def test_ally_v6_ignores_the_sockets_reassembled_copies():
    rec, _ = run(ALLY_M, [Router6([A, B], shared=True)], socket_copies=True)
    assert rec.result == DealiasResult.ALIASES
    assert all(len(p.replies) == 1 for p in rec.probes)


def test_ally_v6_without_mtu_is_none_at_the_first_reply():
    # no -M: the replies never carry an identification (scamper: NONE at once)
    rec, io = run(f"dealias -m ally -W 50 -w 1 -p '-P icmp-echo' {A} {B}", [Router6([A, B])])
    assert rec.result == DealiasResult.NONE
    assert len(rec.probes) == 1 and not io.ptbs
    assert rec.data.flags == 1  # nobs: the parser sets it for IPv6, as scamper


def test_radargun_v6_sends_a_ptb_per_whole_reply_and_keeps_its_probes():
    rec, io = run(f"dealias -m radargun -q 2 -W 50 -w 1 -p '-P icmp-echo -s 1300 -M 1280' {A} {B}",
                  [Router6([A]), Router6([B], start=0x50000000)])
    assert rec.result == DealiasResult.NONE
    assert [str(p.probedef.dst) for p in rec.probes] == [A, B, A, B]
    assert [str(d) for _, d, _, _ in io.ptbs] == [A, B]
    flags = [[r.flags for r in p.replies] for p in rec.probes]
    assert flags == [[0], [0], [1], [1]]


def test_prober_runs_v6_with_and_without_mtu():
    assert unsupported_dealias(parse_dealias(f"-m ally -p '-P icmp-echo' {A} {B}")) is None
    assert unsupported_dealias(parse_dealias(f"-m radargun {A} {B}")) is None
    assert unsupported_dealias(parse_dealias(f"-m ally -p '-P icmp-echo -s 1300 -M 1280' {A} {B}")) is None


def _probes(ipids, bits=16):
    addr = "2001:db8::1" if bits == 32 else "192.0.2.1"
    out = []
    for i, v in enumerate(ipids):
        d = DealiasProbedef(dst=ipaddress.ip_address(addr), id=i)
        r = DealiasReply(src=d.dst, ipid=v) if bits == 16 else DealiasReply(src=d.dst, ipid32=v, flags=1)
        out.append(DealiasProbe(probedef=d, replies=[r]))
    return out


@pytest.mark.parametrize("ipids,fudge,bs,want", [
    ([0xFFFFFFFE, 0xFFFFFFFF, 1], 200, 0, True),  # 32-bit wrap
    ([0x10000, 0x10001, 0x10002], 200, 0, True),  # beyond 16 bits: still in sequence
    ([0x10000, 0x10001, 0x20002], 200, 0, False),
    ([0x01000000, 0x02000000, 0x03000000], 200, 2, True),  # byte-swapped 1, 2, 3
])
def test_ipid_inseq_32(ipids, fudge, bs, want):
    assert ipid_inseq(_probes(ipids, 32), fudge, bs) is want


def test_ipid_inseq_undecided_byte_order_without_fudge_tries_swapped_only():
    """scamper: bs 3, fudge 0, order undecided (2) -> the check swaps (it was 'either' here)."""
    # 254, 256, 511 in sequence as sent; swapped 0xfe00, 0x0001, 0xff01 is not
    assert ipid_inseq(_probes([0x00FE, 0x0100, 0x01FF]), 0, 3) is False
    assert ipid_inseq(_probes([0x00FE, 0x0100, 0x01FF]), 0, 2) is True
