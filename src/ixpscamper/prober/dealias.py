"""Alias resolution (``dealias``) state machine, sans-IO: ally and mercator.

After ``scamper_dealias_do.c``:

* every probe carries IP-ID ``0xabab`` (IPv4; ``ab`` counts down from 255)
  and, for UDP, a payload that makes the UDP checksum the probe's number;
  a quoted probe must show that IP-ID, its ports and destination;
* **mercator** sends a UDP probe to a closed port of the address, up to
  ``attempts`` times ``wait_timeout`` apart; a port unreachable from another
  address than the one probed means the two are aliases (ALIASES),
  anything else ends with NONE;
* **ally** alternates probes to the two addresses, ``wait_probe`` apart,
  ``attempts`` in all; each reply must come from the address probed (or be
  a time exceeded when the TTL was not 255) or the result is NONE; as soon
  as up to five neighbouring replies have IP-IDs out of sequence (within
  ``fudge``, either byte order unless ``nobs``) the result is NOTALIASES;
  ``wait_timeout`` after the last probe every probe must have exactly one
  reply (else NONE), and an in-sequence series means ALIASES, all-zero
  IP-IDs NONE, otherwise NOTALIASES.

* **radargun** collects IP-IDs for offline analysis: ``attempts`` rounds,
  each probing every definition once (``-O shuffle``: in a new random order
  each round), ``wait_probe`` apart, a round starting no sooner than
  ``wait_round`` after the previous one started; ``wait_timeout`` after the
  last probe the result is NONE, as scamper's.

Not here (said plainly): ally and radargun over IPv6 (scamper induces
fragment headers with a packet-too-big to get 32-bit IDs; we refuse them),
TCP probe methods, prefixscan and bump (parsed by
:mod:`ixpscamper.dealias_cmd`, refused by the prober).
"""

from __future__ import annotations

import ipaddress
from typing import Optional

import random

from ..warts.records import (Dealias, DealiasAlly, DealiasAllyFlag, DealiasMercator,
                             DealiasMethod, DealiasProbe, DealiasProbedef, DealiasRadargun,
                             DealiasRadargunFlag, DealiasReply, DealiasResult, Timeval)
from . import packets
from .packets import Reply

__all__ = ["DealiasRun", "ipid_inseq"]


def _diff16(a: int, b: int) -> int:
    return (b - a) & 0xFFFF


def _bs16(v: int) -> int:
    return ((v & 0xFF) << 8) | (v >> 8)


def _inseq2(a: int, b: int, fudge: int) -> bool:
    return a != b and _diff16(a, b) <= fudge


def _inseq3(a: int, b: int, c: int, fudge: int) -> bool:
    if a == b or b == c or a == c:
        return False
    if a > b:
        b += 0x10000
    if a > c:
        c += 0x10000
    if a > b or b > c:
        return False
    return not (fudge and (b - a > fudge or c - b > fudge))


def _inseq(ipids: list[int], fudge: int, bs: bool) -> bool:
    if bs:
        ipids = [_bs16(v) for v in ipids]
    if len(ipids) == 2:
        return True if fudge == 0 else _inseq2(ipids[0], ipids[1], fudge)
    return all(_inseq3(ipids[i], ipids[i + 1], ipids[i + 2], fudge) for i in range(len(ipids) - 2))


def _byte_order(probes: list[DealiasProbe]) -> int:
    """scamper's dealias_ipid16_bo: 0 as sent, 1 byte-swapped, 2 undecided."""
    s = sorted(probes, key=lambda p: p.probedef.id)
    rc, c, max_bs, max_nobs = 2, 1, 0, 0
    for i in range(len(s)):
        if i + 1 == len(s) or s[i].probedef is not s[i + 1].probedef:
            if c >= 3:
                if max_nobs < max_bs:
                    rc = 0
                elif max_nobs > max_bs:
                    rc = 1
                if rc == 0:
                    return rc
            c, max_nobs, max_bs = 1, 0, 0
        else:
            a, b = s[i].replies[0].ipid, s[i + 1].replies[0].ipid
            u = _diff16(a, b)
            if u > max_nobs or max_nobs == 0:
                max_nobs = u
            u = _diff16(_bs16(a), _bs16(b))
            if u > max_bs or max_bs == 0:
                max_bs = u
            c += 1
    return rc


def ipid_inseq(probes: list[DealiasProbe], fudge: int, bs: int) -> bool:
    """scamper_dealias_ipid_inseq for IPv4: are the first replies' IP-IDs in sequence?

    ``bs``: 0 as sent, 1 byte-swapped, 2 either, 3 the byte order the
    series suggests (either when it does not tell, or with a fudge).
    """
    ipids = [p.replies[0].ipid for p in probes]
    if bs == 3 and fudge == 0:
        order = _byte_order(probes)
        return _inseq(ipids, fudge, order == 1) if order != 2 else \
            (_inseq(ipids, fudge, False) or _inseq(ipids, fudge, True))
    if bs in (2, 3):
        return _inseq(ipids, fudge, False) or _inseq(ipids, fudge, True)
    return _inseq(ipids, fudge, bool(bs))


def _probedef_record(pd, src, index: int) -> DealiasProbedef:
    rec = DealiasProbedef(dst=pd.dst, src=src, id=index, method=pd.code, ttl=pd.ttl, size=pd.size,
                          mtu=pd.mtu)
    if pd.is_icmp:
        rec.icmp_id, rec.icmp_csum = pd.sport, pd.csum
    else:
        rec.sport, rec.dport = pd.sport, pd.dport
    return rec


class DealiasRun:
    """One dealias in progress; ``record`` is the warts Dealias being filled.

    Driven like the other runs; ``io.transmit(pkt, dst)`` takes the
    probe's destination (ally probes two addresses).
    """

    def __init__(self, options, src, io, rng: Optional[random.Random] = None):
        self.options = options
        self.rng = rng or random.SystemRandom()
        self.io = io
        self.done = False
        self.family = options.dst.version
        self.defs = [_probedef_record(pd, src, i) for i, pd in enumerate(options.probedefs)]
        self._sizes = {id(d): pd.probe_size for d, pd in zip(self.defs, options.probedefs)}
        o = options
        if o.method == "mercator":
            data = DealiasMercator(probedef=self.defs[0], attempts=o.attempts,
                                   wait_timeout=o.wait_timeout)
        elif o.method == "radargun":
            data = DealiasRadargun(probedefs=self.defs, rounds=o.attempts,
                                   wait_probe=o.wait_probe_ms, wait_round=o.wait_round_ms,
                                   wait_timeout=o.wait_timeout,
                                   flags=int(DealiasRadargunFlag.SHUFFLE) if o.shuffle else 0)
        else:
            data = DealiasAlly(probedefs=self.defs, wait_probe=o.wait_probe_ms,
                               wait_timeout=o.wait_timeout, attempts=o.attempts, fudge=o.fudge,
                               flags=int(DealiasAllyFlag.NOBS) if o.nobs else 0)
        method = {"mercator": DealiasMethod.MERCATOR, "ally": DealiasMethod.ALLY,
                  "radargun": DealiasMethod.RADARGUN}[o.method]
        self.record = Dealias(method=int(method), data=data, userid=o.userid)
        self._order = list(range(len(self.defs)))  # radargun: this round's order
        self._round_start_ns = 0
        self._src_b = src.packed
        self._id = 255
        self._icmpseq = 0
        self._next_def = 0
        self._round = 0
        self._timer = None
        self._ipids: list[int] = []  # the IP-ID each probe carried, by probe index

    # -- life cycle -------------------------------------------------------

    def start(self, start_ns: Optional[int] = None, send: bool = True) -> None:
        t = self.io.now_ns() if start_ns is None else start_ns
        self.record.start = Timeval.from_ns(t)
        if send:
            self.io.request_send()

    def halt(self) -> None:
        if not self.done:
            self._result(DealiasResult.HALTED)

    def fail(self, stop_data: int = 0) -> None:
        if not self.done:
            self.record.errmsg = "could not reach the first hop"
            self._result(DealiasResult.ERROR)

    def _result(self, result: int) -> None:
        if self.done:
            return
        self.done = True
        self.record.result = int(result)
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        self.io.finished()

    # -- probing ----------------------------------------------------------

    def build_probe(self, d: DealiasProbedef, ipid: int, number: int) -> bytes:
        src, dst = self._src_b, d.dst.packed
        plen = self._sizes[id(d)] - (20 if self.family == 4 else 40) - 8
        if d.is_icmp:
            seq = self._icmpseq
            self._icmpseq = (self._icmpseq + 1) & 0xFFFF
            payload = packets.paris_icmp_payload(src, dst, d.icmp_id, seq, plen, d.icmp_csum)
            l4 = packets.icmp_echo(src, dst, d.icmp_id, seq, payload)
            proto = packets.PROTO_ICMP if self.family == 4 else packets.PROTO_ICMP6
        else:
            payload = packets.paris_udp_payload(src, dst, d.sport, d.dport, plen, number & 0xFFFF)
            l4 = packets.udp_segment(src, dst, d.sport, d.dport, payload)
            proto = packets.PROTO_UDP
        return packets.ip_packet(src, dst, proto, l4, ttl=d.ttl, ipid=ipid, df=True)

    def send_now(self) -> None:
        if self.done:
            return
        radargun = self.options.method == "radargun"
        d = self.defs[self._order[self._next_def] if radargun else self._next_def]
        ipid = (self._id << 8) | self._id if self.family == 4 else 0
        number = len(self.record.probes) + 1
        pkt = self.build_probe(d, ipid, number)
        try:
            tx = self.io.transmit(pkt, d.dst)
        except OSError as exc:
            self.record.errmsg = f"could not send probe: {exc.strerror or exc}"
            self._result(DealiasResult.ERROR)
            return
        self._ipids.append(ipid)
        self.record.probes.append(DealiasProbe(probedef=d, seq=self._round,
                                               tx=Timeval.from_ns(tx), ipid=ipid))
        self._id = self._id - 1 or 255
        o = self.options
        probec = len(self.record.probes)
        if o.method == "mercator":
            wait = o.wait_timeout
            self._round += 1
        elif radargun:
            if self._next_def == 0:
                self._round_start_ns = tx
            self._next_def += 1
            wait = o.wait_probe_ms / 1000
            if self._next_def == len(self.defs):
                self._next_def = 0
                self._round += 1
                if self._round >= o.attempts:
                    wait = o.wait_timeout
                else:
                    # the next round waits for wait_round after this one began
                    wait = max(wait, (self._round_start_ns - tx) / 1e9 + o.wait_round_ms / 1000)
                    if o.shuffle:
                        self.rng.shuffle(self._order)
        else:
            wait = o.wait_probe_ms / 1000 if probec != o.attempts else o.wait_timeout
            self._next_def += 1
            if self._next_def == 2:
                self._next_def = 0
                self._round += 1
        now = self.io.now_ns()
        self._timer = self.io.clock.callLater(max(0.0, wait - (now - tx) / 1e9), self._on_timeout)

    def _on_timeout(self) -> None:
        self._timer = None
        if self.done:
            return
        o = self.options
        probec = len(self.record.probes)
        if o.method == "radargun":
            if self._round < o.attempts:
                self.io.request_send()
            else:
                self._result(DealiasResult.NONE)
            return
        if o.method == "mercator":
            if probec < o.attempts:
                self.io.request_send()
            else:
                self._result(DealiasResult.NONE)
            return
        if probec < o.attempts:
            self.io.request_send()
            return
        probes = self.record.probes
        if any(len(p.replies) != 1 for p in probes):
            self._result(DealiasResult.NONE)
        elif ipid_inseq(probes, o.fudge, 0 if o.nobs else 3):
            self._result(DealiasResult.ALIASES)
        elif self.family == 4 and all(r.ipid == 0 for p in probes for r in p.replies):
            self._result(DealiasResult.NONE)
        else:
            self._result(DealiasResult.NOTALIASES)

    # -- replies ----------------------------------------------------------

    def match(self, rep: Reply) -> Optional[DealiasProbe]:
        probes = self.record.probes
        if not probes:
            return None
        if rep.is_icmp and (rep.is_time_exceeded or rep.is_unreach or rep.is_ptb):
            if not rep.has_inner or rep.inner_off != 0:
                return None
            if rep.family == 4 and (rep.inner_ipid & 0xFF) != (rep.inner_ipid >> 8):
                return None
            dst = rep.inner_dst
            for i in range(len(probes) - 1, -1, -1):
                p = probes[i]
                d = p.probedef
                if d.dst.packed != dst or (rep.family == 4 and p.ipid != rep.inner_ipid):
                    continue
                if d.is_udp and rep.inner_proto == packets.PROTO_UDP \
                        and rep.inner_sport == d.sport and rep.inner_dport == d.dport:
                    return p
                if d.is_icmp and rep.inner_proto in (packets.PROTO_ICMP, packets.PROTO_ICMP6) \
                        and rep.inner_icmp_id == d.icmp_id:
                    return p
            return None
        if rep.is_icmp and rep.is_echo_reply:
            seq = 0
            for p in probes:
                d = p.probedef
                if d.is_icmp:
                    if d.dst.packed == rep.src and d.icmp_id == rep.icmp_id and seq == rep.icmp_seq:
                        return p
                    seq += 1
        return None

    def on_reply(self, rep: Reply, rx_ns: int, dl: bool) -> bool:
        if self.done:
            return False
        probe = self.match(rep)
        if probe is None:
            return False
        addr = ipaddress.ip_address(rep.src)
        reply = DealiasReply(src=addr, rx=Timeval.from_ns(rx_ns), ipid=rep.ipid if rep.family == 4 else 0,
                             ttl=rep.ttl, size=rep.size,
                             proto=packets.PROTO_ICMP if rep.family == 4 else packets.PROTO_ICMP6,
                             icmp_type=rep.icmp_type, icmp_code=rep.icmp_code,
                             icmp_q_ttl=rep.inner_ttl if rep.has_inner else 0)
        probe.replies.append(reply)
        if self.options.method == "radargun":
            pass  # data for offline analysis; the result is NONE at the end
        elif self.options.method == "mercator":
            port_unreach = rep.is_unreach and rep.icmp_code == (3 if rep.family == 4 else 4)
            self._result(DealiasResult.ALIASES if port_unreach and addr != probe.probedef.dst
                         else DealiasResult.NONE)
        else:
            self._ally_reply(probe, reply, rep)
        return True

    def _ally_reply(self, probe: DealiasProbe, reply: DealiasReply, rep: Reply) -> None:
        d = probe.probedef
        ttl_exp = rep.is_time_exceeded
        if len(probe.replies) != 1 or not (reply.src == d.dst or (ttl_exp and d.ttl != 255)):
            self._result(DealiasResult.NONE)
            return
        probes = self.record.probes
        if len(probes) < 2:
            return
        k = next(i for i, p in enumerate(probes) if p is probe)
        seq: list[DealiasProbe] = []
        if k >= 1 and len(probes[k - 1].replies) == 1:
            if k >= 2 and len(probes[k - 2].replies) == 1:
                seq.append(probes[k - 2])
            seq.append(probes[k - 1])
        seq.append(probe)
        if k + 1 < len(probes) and len(probes[k + 1].replies) == 1:
            seq.append(probes[k + 1])
            if k + 2 < len(probes) and len(probes[k + 2].replies) == 1:
                seq.append(probes[k + 2])
        if len(seq) < 2:
            return
        if not ipid_inseq(seq, self.options.fudge, 0 if self.options.nobs else 2):
            self._result(DealiasResult.NOTALIASES)
