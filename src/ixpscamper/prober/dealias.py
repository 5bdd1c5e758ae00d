"""Alias resolution (``dealias``) state machines, sans-IO: all five of scamper 20211212's methods.

After ``scamper_dealias_do.c``:

* every probe carries IP-ID ``0xabab`` (IPv4; ``ab`` counts down from 255)
  and, for UDP, a payload that makes the UDP checksum the probe's number;
  a quoted probe must show that IP-ID, its ports and destination;
* **mercator** sends a UDP probe to a closed port of the address, up to
  ``attempts`` times ``wait_timeout`` apart; a port unreachable from another
  address than the one probed means the two are aliases (ALIASES),
  anything else ends with NONE;
* **ally** alternates probes to the two addresses, ``wait_probe`` apart,
  ``attempts`` in all; each reply must be the kind the probe asks for (or
  a time exceeded when the TTL was not 255) and the first to its probe, or
  the result is NONE; as soon as up to five neighbouring replies have
  IP-IDs out of sequence (within ``fudge``, either byte order unless
  ``nobs``) the result is NOTALIASES; ``wait_timeout`` after the last probe
  every probe must have exactly one reply (else NONE), and an in-sequence
  series means ALIASES, all-zero IP-IDs NONE, otherwise NOTALIASES;
* **IPv6** (ally, radargun): the IP-ID is the 32-bit identification of a
  fragment header, there only if the target fragments its reply.  With a
  probedef ``-M`` (and ``-s`` larger than it), a reply too big and not
  fragmented makes the run send the target a packet-too-big quoting it
  (ally: once per definition, discarding the probes so far and waiting a
  second before probing again; radargun: for each such reply, keeping its
  probes).  A reply without an identification otherwise ends ally with
  NONE.  Those identifications come only with the datalink copy of a reply
  (``uses_dl``; the socket's copy is reassembled): the scheduler listens
  on the datalink for such a run.

* **radargun** collects IP-IDs for offline analysis: ``attempts`` rounds,
  each probing every definition once (``-O shuffle``: in a new random order
  each round), ``wait_probe`` apart, a round starting no sooner than
  ``wait_round`` after the previous one started; ``wait_timeout`` after the
  last probe the result is NONE, as scamper's.

* **prefixscan** (IPv4) looks for an alias of A in B/len: A is probed,
  then each candidate (:func:`~ixpscamper.prober.prefixscan.scan_order`)
  alternately with A, ``wait_probe`` apart; a candidate silent for
  ``attempts`` probes, or out of sequence, gives way to the next; ``replyc``
  replies in sequence mean ALIASES (``ab`` the candidate), as does a UDP
  port unreachable from A (or from an address A answered from) to a
  candidate's probe; two replies echoing the probe's IP-ID end the
  candidate (for A itself: IPIDECHO); no candidate left: NONE.
* **bump** (IPv4) probes the two addresses in turn, ``wait_probe`` apart;
  once three replies are in sequence, it sends twice the last IP-ID gap of
  probes to the second address (at least 3, at most ``-f``, else NONE) and
  checks the series again: out of sequence is NOTALIASES, in sequence
  after ``attempts`` bumps ALIASES; a reply of the wrong kind is NONE.

* **TCP** probedefs (every method but mercator, which takes UDP only):
  ``tcp-ack`` sends ACKs from one source port with one random sequence
  and acknowledgement number per definition; ``tcp-ack-sport`` (ACK) and
  ``tcp-syn-sport`` (SYN) add to the source port a counter kept per
  target address and draw both numbers anew per probe.  The segment is a
  bare 20-byte header, window 0, with two bytes of payload (scamper's
  unsized probe; a TCP probedef with ``-s`` is refused, as scamper 20211212
  cannot make that task).  The reply that counts is any TCP segment from
  the target to the probe's ports (the lab's Linux routers: a RST), with
  its IP-ID and TCP flags; it is matched to the newest probe of that
  target with those ports, without an IP-ID check.  As scamper 20211212,
  TCP replies are taken off the datalink and over IPv4 only (``tcp_dl``):
  over IPv6 the probes go out and only ICMP errors quoting them match.
  ICMP errors quoting a TCP probe match by its IP-ID, ports and address.
* **udp-dport** likewise adds a counter per target address to the
  destination port (``udp`` keeps it); a port unreachable matches the port
  its probe left with.

A reply "from the target" is the one the probe asks for (UDP: a port
unreachable, ICMP: an echo reply, TCP: a TCP segment), whichever address
sent it.

scamper forgets probes older than ten seconds when matching replies; this
run matches any probe it sent.
"""

from __future__ import annotations

import ipaddress
from typing import Optional

import random
import struct

from ..warts.records import (Dealias, DealiasAlly, DealiasAllyFlag, DealiasBump, DealiasMercator,
                             DealiasMethod, DealiasPrefixscan, DealiasPrefixscanFlag, DealiasProbe,
                             DealiasProbedef, DealiasRadargun, DealiasRadargunFlag, DealiasReply,
                             DealiasReplyFlag, DealiasResult, Timeval)
from . import packets
from .prefixscan import reply_series, scan_order
from .packets import Reply
from .trace import MeasurementRun

__all__ = ["DealiasRun", "ipid_inseq", "unsupported_dealias", "from_target"]


def unsupported_dealias(options) -> Optional[str]:
    """Why the prober cannot run this dealias, or None (one line for the user)."""
    from ..commands import destination_problem
    if options.method not in ("ally", "mercator", "radargun", "prefixscan", "bump"):
        return f"dealias -m {options.method} is not supported by the ixpscamper prober"
    if any(pd.method.startswith("tcp") and pd.size for pd in options.probedefs):
        # scamper 20211212 sizes only ICMP probes: with -s its task cannot be
        # made and it writes no record at all
        return "dealias: a TCP probedef takes no -s (scamper 20211212 cannot send it)"
    if options.method in ("prefixscan", "bump") and options.dst.version != 4:
        return f"dealias -m {options.method} needs IPv4 addresses"
    for pd in options.probedefs:
        problem = destination_problem(pd.dst)
        if problem is not None:
            return f"cannot dealias {pd.dst}: it is {problem}"
    return None


def _diff(a: int, b: int, bits: int = 16) -> int:
    return (b - a) & ((1 << bits) - 1)


def _bswap(v: int, bits: int = 16) -> int:
    return int.from_bytes(v.to_bytes(bits // 8, "big"), "little")


def _inseq2(a: int, b: int, fudge: int, bits: int = 16) -> bool:
    return a != b and _diff(a, b, bits) <= fudge


def _inseq3(a: int, b: int, c: int, fudge: int, bits: int = 16) -> bool:
    if a == b or b == c or a == c:
        return False
    if a > b:
        b += 1 << bits
    if a > c:
        c += 1 << bits
    if a > b or b > c:
        return False
    return not (fudge and (b - a > fudge or c - b > fudge))


def _inseq(ipids: list[int], fudge: int, bs: bool, bits: int = 16) -> bool:
    if bs:
        ipids = [_bswap(v, bits) for v in ipids]
    if len(ipids) == 2:
        return True if fudge == 0 else _inseq2(ipids[0], ipids[1], fudge, bits)
    return all(_inseq3(ipids[i], ipids[i + 1], ipids[i + 2], fudge, bits)
               for i in range(len(ipids) - 2))


def _reply_ipid(p: DealiasProbe, bits: int) -> int:
    r = p.replies[0]
    return r.ipid if bits == 16 else r.ipid32


def _byte_order(probes: list[DealiasProbe], bits: int = 16) -> int:
    """scamper's dealias_ipid16_bo / _ipid32_bo: 0 as sent, 1 byte-swapped, 2 undecided."""
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
            a, b = _reply_ipid(s[i], bits), _reply_ipid(s[i + 1], bits)
            u = _diff(a, b, bits)
            if u > max_nobs or max_nobs == 0:
                max_nobs = u
            u = _diff(_bswap(a, bits), _bswap(b, bits), bits)
            if u > max_bs or max_bs == 0:
                max_bs = u
            c += 1
    return rc


def ipid_inseq(probes: list[DealiasProbe], fudge: int, bs: int) -> bool:
    """scamper_dealias_ipid_inseq: are the first replies' IP-IDs in sequence?

    IPv4: the 16-bit IP-IDs; IPv6: the 32-bit fragment identifications.
    ``bs``: 0 as sent, 1 byte-swapped, 2 either, 3 the byte order the
    series suggests, with a fudge: either.  (Without a fudge and when the
    series does not tell, scamper tries the byte-swapped order only: its
    "undecided" 2 reaches the check as a true "swap" flag.)
    """
    bits = 16 if probes[0].probedef.dst.version == 4 else 32
    ipids = [_reply_ipid(p, bits) for p in probes]
    if bs == 3 and fudge == 0:
        return _inseq(ipids, fudge, _byte_order(probes, bits) != 0, bits)
    if bs in (2, 3):
        return _inseq(ipids, fudge, False, bits) or _inseq(ipids, fudge, True, bits)
    return _inseq(ipids, fudge, bool(bs), bits)


def from_target(d: DealiasProbedef, reply: DealiasReply) -> bool:
    """scamper's SCAMPER_DEALIAS_REPLY_FROM_TARGET: the reply is the kind the probe asks for."""
    if d.is_udp:
        return reply.is_icmp and reply.icmp_type == (3 if reply.proto == 1 else 1) \
            and reply.icmp_code == (3 if reply.proto == 1 else 4)
    if d.is_icmp:
        return reply.is_icmp and reply.icmp_type == (0 if reply.proto == 1 else 129)
    return d.is_tcp and reply.is_tcp


def _probedef_record(pd, src, index: int) -> DealiasProbedef:
    rec = DealiasProbedef(dst=pd.dst, src=src, id=index, method=pd.code, ttl=pd.ttl, size=pd.size,
                          mtu=pd.mtu)
    if pd.is_icmp:
        rec.icmp_id, rec.icmp_csum = pd.sport, pd.csum
    else:
        rec.sport, rec.dport = pd.sport, pd.dport
    if rec.is_tcp:
        rec.tcp_flags = _TCP_SYN if rec.method == _TCP_SYN_SPORT else _TCP_ACK
    return rec


# scamper's probedef methods (scamper_dealias.h) and the TCP flags they send
_TCP_ACK_FIXED, _TCP_SYN_SPORT, _UDP_DPORT = 2, 6, 5
_TCP_ACK, _TCP_SYN = 0x10, 0x02


class DealiasRun(MeasurementRun):
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
        elif o.method == "prefixscan":
            data = DealiasPrefixscan(a=o.dst, b=o.b, xs=sorted(set(o.excludes)), prefix=o.prefixlen,
                                     attempts=o.attempts, fudge=o.fudge, wait_probe=o.wait_probe_ms,
                                     wait_timeout=o.wait_timeout, replyc=o.replyc,
                                     flags=int(DealiasPrefixscanFlag.NOBS) if o.nobs else 0,
                                     probedefs=self.defs)
        elif o.method == "bump":
            data = DealiasBump(probedefs=self.defs, wait_probe=o.wait_probe_ms, bump_limit=o.fudge,
                               attempts=o.attempts)
        else:
            data = DealiasAlly(probedefs=self.defs, wait_probe=o.wait_probe_ms,
                               wait_timeout=o.wait_timeout, attempts=o.attempts, fudge=o.fudge,
                               flags=int(DealiasAllyFlag.NOBS) if o.nobs else 0)
        method = {"mercator": DealiasMethod.MERCATOR, "ally": DealiasMethod.ALLY,
                  "radargun": DealiasMethod.RADARGUN, "prefixscan": DealiasMethod.PREFIXSCAN,
                  "bump": DealiasMethod.BUMP}[o.method]
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
        self._send_pending = False  # a probe is due and waits for its transmit slot
        self._probe = 0  # prefixscan, bump: the index of the definition probed next
        # prefixscan: the candidates, the addresses A replied from, IP-ID
        # echoes per definition, and scamper's counters (dealias_prefixscan_t)
        self._cands = scan_order(o.dst, o.b, o.prefixlen, o.excludes) \
            if o.method == "prefixscan" else []
        self._aaliases: list = []
        self._echo: dict[int, int] = {}
        self._ps = {"attempt": 0, "seq": 0, "round0": 0, "round": 0, "replyc": 0}
        # bump: scamper's dealias_bump_t
        self._bump = {"step": 0, "attempt": 0, "bump": 0}
        # IPv6 IP-IDs: the 32-bit identification of a fragment header, which
        # a target adds once told (a packet-too-big for -M) that the path to
        # us is narrower than its replies to the -s sized probes
        self.uses_dl = any(d.mtu for d in self.defs)  # scamper's DEALIAS_STATE_FLAG_DL
        self._sent: list[DealiasProbe] = []  # every probe, discarded ones too: replies still match
        self._payload: dict[int, bytes] = {}  # id(probe) -> what it carried after its L4 header
        self._ptbq: list[tuple[DealiasProbedef, bytes]] = []  # packet-too-bigs to send: (def, quote)
        self._ptb_wait = False  # ally: a PTB went out and no probe since
        self._discard: list[DealiasProbe] = []
        self._tx_ptb: set[int] = set()  # definitions a PTB was sent for
        self._rx_ipid: set[int] = set()  # definitions whose replies carry an identification
        self._next_tx_ns = 0
        # TCP: tcp-ack keeps one sport and one random seq/ack per definition;
        # tcp-ack-sport / tcp-syn-sport add a counter per target address to
        # the sport (shared by the definitions probing that address) and
        # draw seq/ack anew for every probe, as scamper's dealias_target_t
        self._tcp_seqack: dict[int, tuple[int, int]] = {}  # def id -> (seq, ack)
        self._tcp_sport_n: dict[bytes, int] = {}  # target -> probes it had
        self._sport: dict[int, int] = {}  # id(probe) -> the TCP sport it left with
        self._last_sport = 0
        self._udp_dport_n: dict[bytes, int] = {}  # udp-dport: the same, for the destination port
        self._dport: dict[int, int] = {}  # id(probe) -> the UDP dport it left with
        self._last_dport = 0
        # scamper 20211212 reads TCP replies off the datalink, and for IPv4
        # only (do_dealias_handle_dl): an IPv6 RST is never matched
        self.tcp_dl = self.family == 4 and any(d.is_tcp for d in self.defs)

    # -- life cycle -------------------------------------------------------

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
        if d.is_tcp:
            return packets.ip_packet(src, dst, packets.PROTO_TCP, self._tcp_probe(d), ttl=d.ttl,
                                     ipid=ipid, df=True)
        plen = self._sizes[id(d)] - (20 if self.family == 4 else 40) - 8
        if d.is_icmp:
            seq = self._icmpseq
            self._icmpseq = (self._icmpseq + 1) & 0xFFFF
            payload = packets.paris_icmp_payload(src, dst, d.icmp_id, seq, plen, d.icmp_csum)
            l4 = packets.icmp_echo(src, dst, d.icmp_id, seq, payload)
            proto = packets.PROTO_ICMP if self.family == 4 else packets.PROTO_ICMP6
        else:
            dport = d.dport
            if d.method == _UDP_DPORT:
                # as the -sport TCP methods, with the destination port
                n = self._udp_dport_n.get(dst, 0)
                self._udp_dport_n[dst] = (n + 1) & 0xFFFF
                dport = (d.dport + n) & 0xFFFF
            self._last_dport = dport
            payload = packets.paris_udp_payload(src, dst, d.sport, dport, plen, number & 0xFFFF)
            l4 = packets.udp_segment(src, dst, d.sport, dport, payload)
            proto = packets.PROTO_UDP
        return packets.ip_packet(src, dst, proto, l4, ttl=d.ttl, ipid=ipid, df=True)

    def _tcp_probe(self, d: DealiasProbedef) -> bytes:
        """The TCP segment of the next probe of ``d`` (sport in ``_last_sport``).

        A bare 20-byte header, window 0, and the two bytes of payload
        scamper sends with every unsized probe (zeros here).
        """
        src, dst = self._src_b, d.dst.packed
        if d.method == _TCP_ACK_FIXED:
            sport = d.sport
            if d.id not in self._tcp_seqack:
                self._tcp_seqack[d.id] = (self.rng.getrandbits(32), self.rng.getrandbits(32))
            seq, ack = self._tcp_seqack[d.id]
        else:
            n = self._tcp_sport_n.get(dst, 0)
            self._tcp_sport_n[dst] = (n + 1) & 0xFFFF
            sport = (d.sport + n) & 0xFFFF
            seq, ack = self.rng.getrandbits(32), self.rng.getrandbits(32)
            claim = getattr(self.io, "claim_port", None)
            if claim is not None:
                # replies come to this port: route them to this run
                claim(sport, "tcp")
        self._last_sport = sport
        return packets.tcp_segment(src, dst, sport, d.dport, seq=seq, ack=ack, flags=d.tcp_flags,
                                   payload=b"\0\0")

    def _request_send(self) -> None:
        self._send_pending = True
        self.io.request_send()

    def _next_probedef(self) -> DealiasProbedef:
        m = self.options.method
        if m == "radargun":
            return self.defs[self._order[self._next_def]]
        if m in ("prefixscan", "bump"):
            return self.defs[self._probe]
        return self.defs[self._next_def]

    def send_now(self) -> None:
        self._send_pending = False
        if self.done:
            return
        if self._ptbq:
            self._send_ptb()
            return
        radargun = self.options.method == "radargun"
        d = self._next_probedef()
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
        if not self.record.probes and self._sent:
            # the probes before a packet-too-big were discarded: scamper starts over
            self.record.start = Timeval.from_ns(tx)
        probe = DealiasProbe(probedef=d, seq=self._round, tx=Timeval.from_ns(tx), ipid=ipid)
        self.record.probes.append(probe)
        self._sent.append(probe)
        self._payload[id(probe)] = pkt[(20 if self.family == 4 else 40) + 8:]
        if d.is_tcp:
            self._sport[id(probe)] = self._last_sport
        elif d.is_udp:
            self._dport[id(probe)] = self._last_dport
        self._ptb_wait = False
        self._id = self._id - 1 or 255
        o = self.options
        probec = len(self.record.probes)
        if o.method == "mercator":
            wait = o.wait_timeout
            self._round += 1
        elif o.method == "prefixscan":
            ps = self._ps
            ps["round0" if d.id == 0 else "round"] += 1
            ps["attempt"] += 1
            ps["replyc"] = 0
            wait = o.wait_probe_ms / 1000
        elif o.method == "bump":
            wait = o.wait_probe_ms / 1000
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
        self._next_tx_ns = tx + int(wait * 1e9)
        self._timer = self.io.clock.callLater(max(0.0, wait - (now - tx) / 1e9), self._on_timeout)

    # -- IPv6: packet-too-big --------------------------------------------

    def _queue_ptb(self, probe: DealiasProbe, rep: Reply) -> None:
        """Tell the target its replies are too big for us (sent before the next probe)."""
        self._ptbq.append((probe.probedef, self._ptb_quote(probe, rep)))
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if not self._send_pending:
            self._request_send()

    def _ptb_quote(self, probe: DealiasProbe, rep: Reply) -> bytes:
        """The reply as it arrived, at most 1280 - 40 - 8 bytes (as scamper quotes it).

        The reply is rebuilt from what it echoed (our probe's payload): the
        target looks only at the quoted header to find its route to us.
        """
        body = self._payload.get(id(probe), b"")
        if rep.is_echo_reply:
            msg = struct.pack("!BBHHH", rep.icmp_type, rep.icmp_code, 0, rep.icmp_id, rep.icmp_seq) + body
        else:
            msg = struct.pack("!BBHI", max(rep.icmp_type, 0), max(rep.icmp_code, 0), 0, 0)
            msg += bytes(max(0, rep.size - 48))
        msg = packets._icmp_finish(rep.src, rep.dst, msg)
        pkt = packets.ipv6_header(rep.src, rep.dst, packets.PROTO_ICMP6, len(msg), hlim=rep.ttl) + msg
        return pkt[:1280 - 40 - 8]

    def _send_ptb(self) -> None:
        d, quote = self._ptbq.pop(0)
        src = self._src_b
        msg = packets._icmp_finish(src, d.dst.packed, struct.pack("!BBHI", 2, 0, 0, d.mtu) + quote)
        pkt = packets.ip_packet(src, d.dst.packed, packets.PROTO_ICMP6, msg, ttl=255)
        try:
            tx = self.io.transmit(pkt, d.dst)
        except OSError as exc:
            self.record.errmsg = f"could not send packet too big: {exc.strerror or exc}"
            self._result(DealiasResult.ERROR)
            return
        now = self.io.now_ns()
        if self._ptbq:
            self._request_send()
            return
        if self.options.method == "ally":
            # give the target a second to take the new MTU before probing again
            self._ptb_wait = True
            delay = 1.0 - (now - tx) / 1e9
        else:
            delay = (self._next_tx_ns - now) / 1e9
        self._timer = self.io.clock.callLater(max(0.0, delay), self._on_timeout)

    def _on_timeout(self) -> None:
        self._timer = None
        if self.done:
            return
        o = self.options
        probec = len(self.record.probes)
        if o.method == "prefixscan":
            self._prefixscan_timeout()
            return
        if o.method == "bump":
            self._bump_timeout()
            return
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

    def _tcp_sport_of(self, p: DealiasProbe) -> int:
        d = p.probedef
        return d.sport if d.method == _TCP_ACK_FIXED else self._sport.get(id(p), -1)

    def match(self, rep: Reply) -> Optional[DealiasProbe]:
        """The probe ``rep`` answers, or None; the newest one that fits, as scamper's."""
        probes = self._sent
        if not probes:
            return None
        if rep.proto == packets.PROTO_TCP:
            # from a target, to the probe's ports (scamper's
            # dealias_probe_tcp_find2: no IP-ID to check; a tcp-ack reply
            # goes to the newest probe of that target and ports)
            for i in range(len(probes) - 1, -1, -1):
                p = probes[i]
                d = p.probedef
                if d.is_tcp and d.dst.packed == rep.src and d.dport == rep.sport \
                        and self._tcp_sport_of(p) == rep.dport:
                    return p
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
                        and rep.inner_sport == d.sport and rep.inner_dport == self._dport.get(id(p), -1):
                    return p
                if d.is_icmp and rep.inner_proto in (packets.PROTO_ICMP, packets.PROTO_ICMP6) \
                        and rep.inner_icmp_id == d.icmp_id:
                    return p
                if d.is_tcp and rep.inner_proto == packets.PROTO_TCP and rep.inner_dport == d.dport \
                        and rep.inner_sport == self._tcp_sport_of(p):
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
        tcp = rep.proto == packets.PROTO_TCP
        if tcp:
            if not (dl and self.tcp_dl):
                return False
        elif not rep.is_icmp:
            return False
        elif self.uses_dl and self.family == 6 and not dl:
            # the socket's copy is reassembled: no fragment header, no identification
            return False
        probe = self.match(rep)
        if probe is None:
            return False
        addr = ipaddress.ip_address(rep.src)
        # no reply size: scamper 20211212 records none (the field is 2026's)
        reply = DealiasReply(src=addr, rx=Timeval.from_ns(rx_ns), ipid=rep.ipid if rep.family == 4 else 0,
                             ttl=rep.ttl)
        if tcp:
            reply.proto, reply.tcp_flags = packets.PROTO_TCP, rep.tcp_flags
        else:
            reply.proto = packets.PROTO_ICMP if rep.family == 4 else packets.PROTO_ICMP6
            reply.icmp_type, reply.icmp_code = rep.icmp_type, rep.icmp_code
            reply.icmp_q_ttl = rep.inner_ttl if rep.has_inner else 0
        frag_id = rep.frag_id
        if rep.family == 6 and frag_id is not None:
            reply.ipid32 = frag_id
            reply.flags |= int(DealiasReplyFlag.IPID32)
        probe.replies.append(reply)
        if self.options.method == "radargun":
            # data for offline analysis; the result is NONE at the end.  IPv6
            # with -M: a reply too big and unfragmented asks for a PTB
            d = probe.probedef
            if self.family == 6 and frag_id is None and d.mtu and d.mtu < rep.size:
                self._queue_ptb(probe, rep)
        elif self.options.method == "prefixscan":
            self._prefixscan_reply(probe, reply)
        elif self.options.method == "bump":
            if len(probe.replies) != 1 or not from_target(probe.probedef, reply):
                self._result(DealiasResult.NONE)
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
        if len(probe.replies) != 1 or not (from_target(d, reply) or (ttl_exp and d.ttl != 255)):
            self._result(DealiasResult.NONE)
            return
        if self.family == 6 and not self._ally_v6(probe, reply, rep):
            return
        probes = self.record.probes
        if len(probes) < 2:
            return
        k = next((i for i, p in enumerate(probes) if p is probe), None)
        if k is None:
            return
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

    def _ally_v6(self, probe: DealiasProbe, reply: DealiasReply, rep: Reply) -> bool:
        """scamper's dealias_ally_handlereply_v6: is this IPv6 reply one to judge by?"""
        d = probe.probedef
        waiting = self._ptb_wait or bool(self._ptbq)
        discarded = any(p is probe for p in self._discard)
        if reply.flags & int(DealiasReplyFlag.IPID32):
            self._rx_ipid.add(d.id)
            return not (discarded or waiting)
        if d.mtu and d.mtu < rep.size and d.id not in self._tx_ptb and d.id not in self._rx_ipid:
            # replies without an identification so far: start over after a PTB
            self._discard.extend(self.record.probes)
            self.record.probes.clear()
            self._round = 0
            self._tx_ptb.add(d.id)
            self._queue_ptb(probe, rep)
            return False
        if not (waiting or discarded):
            self._result(DealiasResult.NONE)
        return False

    # -- prefixscan -------------------------------------------------------

    def _prefixscan_add_next(self) -> None:
        """Add the next candidate as a definition (dealias_prefixscan_next)."""
        cand = self._cands[len(self.defs) - 1]
        data = self.record.data
        if cand in self._aaliases:
            # A already answered from this address: no need to probe it
            data.ab = cand
            data.flags |= int(DealiasPrefixscanFlag.CSA)
            self._result(DealiasResult.ALIASES)
            return
        first = self.defs[0]
        d = DealiasProbedef(dst=cand, src=first.src, id=len(self.defs), method=first.method,
                            ttl=first.ttl, tos=first.tos, size=first.size, mtu=first.mtu,
                            icmp_id=first.icmp_id, icmp_csum=first.icmp_csum, sport=first.sport,
                            dport=first.dport, tcp_flags=first.tcp_flags)
        self._sizes[id(d)] = self._sizes[id(first)]
        self.defs.append(d)  # the record's probedefs list

    def _prefixscan_move_on(self) -> None:
        """The candidate failed: the next one, or NONE (scamper's prefixscan_next label)."""
        if len(self.defs) - 1 == len(self._cands):
            self._result(DealiasResult.NONE)
            return
        self._prefixscan_add_next()
        if self.done:
            return
        ps = self._ps
        ps["round"] = ps["attempt"] = 0
        self._probe = len(self.defs) - 1
        # A's reply, if A was probed last, starts the new candidate's series
        ps["seq"] = 1 if self.record.probes[-1].probedef.id == 0 else 0

    def _prefixscan_reply(self, probe: DealiasProbe, reply: DealiasReply) -> None:
        o, ps, data = self.options, self._ps, self.record.data
        # only the first reply to the probe sent last counts
        if probe is not self.record.probes[-1] or len(probe.replies) != 1:
            return
        d = probe.probedef
        if probe.ipid == reply.ipid:
            self._echo[d.id] = self._echo.get(d.id, 0) + 1
            if self._echo[d.id] >= 2:
                if d.id != 0:
                    self._prefixscan_move_on()
                else:
                    self._result(DealiasResult.IPIDECHO)
                return
        if self._send_pending:
            return  # late: the next probe is already due
        if not from_target(d, reply):
            return
        ps["replyc"] += 1
        if d.is_udp and reply.src != d.dst:
            # a port unreachable from another address than the one probed
            if d.id == 0:
                if reply.src not in self._aaliases:
                    self._aaliases.append(reply.src)
            elif reply.src == data.a or reply.src in self._aaliases:
                data.ab = d.dst
                data.flags |= int(DealiasPrefixscanFlag.CSA)
                self._result(DealiasResult.ALIASES)
                return
        ps["seq"] += 1
        seq = ps["seq"]
        ps["attempt"] = 0
        if seq < 2:
            if self._probe != 0:
                self._probe = 0
                return
            if len(self.defs) == 1:
                self._prefixscan_add_next()
                if self.done:
                    return
            self._probe = len(self.defs) - 1
            return
        series = reply_series(self.record.probes, seq, len(self.defs) - 1)
        if series is None:
            self.record.errmsg = "prefixscan: probe history out of order"
            self._result(DealiasResult.ERROR)
            return
        bs = 0 if o.nobs else (2 if seq < o.replyc else 3)
        if ipid_inseq(series, o.fudge, bs):
            if seq == o.replyc:
                data.ab = self.defs[-1].dst
                self._result(DealiasResult.ALIASES)
                return
            self._probe = len(self.defs) - 1 if self._probe == 0 else 0
            return
        self._prefixscan_move_on()

    def _prefixscan_timeout(self) -> None:
        o, ps = self.options, self._ps
        d = self.record.probes[-1].probedef
        if ps["replyc"] == 0 and ps["attempt"] >= o.attempts:
            if d.id == 0 or len(self.defs) - 1 >= len(self._cands):
                self._result(DealiasResult.NONE)
                return
            # the candidate is silent: the next one
            self._prefixscan_add_next()
            if self.done:
                return
            ps["round"] = ps["seq"] = ps["attempt"] = 0
            self._probe = len(self.defs) - 1
        self._round = ps["round0"] if self._probe == 0 else ps["round"]
        self._request_send()

    # -- bump -------------------------------------------------------------

    def _bump_timeout(self) -> None:
        bs, o, probes = self._bump, self.options, self.record.probes
        if bs["step"] < 2:
            bs["step"] += 1
        elif bs["step"] == 2:
            last = probes[-3:]
            if len(last) < 3 or any(len(p.replies) != 1 for p in last):
                self._result(DealiasResult.NONE)
                return
            if not ipid_inseq(last, 0, 0):
                self._result(DealiasResult.NOTALIASES)
                return
            if bs["attempt"] > o.attempts:
                self._result(DealiasResult.ALIASES)
                return
            gap = (last[2].replies[0].ipid - last[1].replies[0].ipid) & 0xFFFF or 0x10000
            bump = gap * 2
            if bump > 65535:
                self._result(DealiasResult.NONE)
                return
            if bump == 2:
                bump = 3
            if bump > o.fudge:
                self._result(DealiasResult.NONE)
                return
            bs["bump"] = bump
            bs["step"] = 3
        else:
            if bs["bump"] != 0:
                # one more probe to the same address: its counter moves on
                bs["bump"] -= 1
                self._request_send()
                return
            bs["attempt"] += 1
            bs["step"] = 1
        self._probe ^= 1
        self._request_send()
