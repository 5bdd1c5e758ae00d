"""The ping state machine (sans-IO): probes out, replies in, a warts Ping.

Follows scamper 20211212's ``scamper_ping_do.c``: ``probe_count`` probes
``wait`` (+ ``wait_us``) apart, then ``timeout`` seconds (+ ``timeout_us``) after the last
before the ping is done; ``reply_count`` (``-o``) replies end it early.
Every reply is kept, duplicates and ICMP errors included, filed under the
sequence number it answers.

Matching, as scamper: ICMP methods by echo/timestamp id = ``sport`` and
sequence - ``dport``; ``udp`` and ``tcp-ack``/``tcp-syn`` by the probe's
IP-ID (IPv4) or the last probe (IPv6); ``udp-dport`` by destination port;
``tcp-ack-sport`` by source port.
"""

from __future__ import annotations

import ipaddress
import random
from typing import Optional

import attrs

from ..warts.records import (Ping, PingFlag, PingMethod, PingReply, PingReplyFlag, PingStop,
                             Timeval, TCP_ACK, TCP_RST, TCP_SYN)
from . import packets
from .packets import Reply
from .trace import MeasurementRun, TaskIO

__all__ = ["PingSpec", "PingRun", "default_ping_size", "ICMP_PING_METHODS", "TCP_PING_METHODS",
           "UDP_PING_METHODS"]

IPAddr = ipaddress.IPv4Address | ipaddress.IPv6Address

ICMP_PING_METHODS = (PingMethod.ICMP_ECHO, PingMethod.ICMP_TIME)
TCP_PING_METHODS = (PingMethod.TCP_ACK, PingMethod.TCP_ACK_SPORT, PingMethod.TCP_SYN,
                    PingMethod.TCP_SYNACK, PingMethod.TCP_RST)
UDP_PING_METHODS = (PingMethod.UDP, PingMethod.UDP_DPORT)

# IPv4 record-route option with room for nine addresses, padded to 40 bytes
RR_OPTION = bytes([7, 39, 4]) + bytes(36) + b"\0"


def _ip_header_size(family: int, flags: int) -> int:
    if family == 6:
        return 40
    return 20 + (40 if flags & PingFlag.V4RR else 0)


def default_ping_size(family: int, method: int, flags: int = 0) -> int:
    """scamper's default ping probe size for the family / method / options."""
    hdr = _ip_header_size(family, flags)
    if method in ICMP_PING_METHODS:
        return hdr + 8 + (12 + 44 if method == PingMethod.ICMP_TIME else 56)
    if method in TCP_PING_METHODS:
        return hdr + 20
    return hdr + 8 + 12


@attrs.frozen
class PingSpec:
    """Everything a ping needs, resolved."""

    dst: IPAddr
    src: IPAddr
    method: int = PingMethod.ICMP_ECHO
    rtr: Optional[IPAddr] = None
    probe_count: int = 4
    probe_size: int = 0  # 0: scamper's default
    wait: int = 1
    wait_us: int = 0
    timeout: Optional[int] = None  # None: wait if >= 1 else 1
    timeout_us: int = 0  # microseconds beyond ``timeout_s`` (ping -W 1.5s, 2026)
    ttl: int = 64
    tos: int = 0
    reply_count: int = 0
    sport: int = 0
    dport: int = 0
    tcp_seq: int = 0
    tcp_ack: int = 0
    pattern: bytes = b""
    payload: bool = False  # pattern is a -B payload, not a -p pattern
    flags: int = 0  # PingFlag bits given on the command line (V4RR for -R)
    userid: int = 0
    use_dl: bool = False  # TCP/UDP replies come from a packet socket

    @property
    def family(self) -> int:
        return self.dst.version

    @property
    def size(self) -> int:
        return self.probe_size or default_ping_size(self.family, self.method, self.flags)

    @property
    def timeout_s(self) -> int:
        if self.timeout is not None:
            return self.timeout
        return self.wait if self.wait >= 1 else 1


@attrs.define
class _Probe:
    seq: int
    tx_ns: int
    ipid: int


class PingRun(MeasurementRun):
    """One ping in progress.  ``record`` is the warts Ping being filled."""

    def __init__(self, spec: PingSpec, io: TaskIO, rng: Optional[random.Random] = None):
        self.spec = spec
        self.io = io
        self.rng = rng or random.SystemRandom()
        flags = int(spec.flags)
        if spec.payload:
            flags |= PingFlag.PAYLOAD
        self.record = Ping(
            dst=spec.dst, src=spec.src, rtr=spec.rtr, stop_reason=PingStop.NONE,
            pattern=spec.pattern, probe_count=spec.probe_count, probe_size=spec.size,
            wait=spec.wait, ttl=spec.ttl, reply_count=spec.reply_count, method=int(spec.method),
            sport=spec.sport, dport=spec.dport, userid=spec.userid, flags=int(flags),
            tos=spec.tos, timeout=spec.timeout_s, timeout_us=spec.timeout_us, wait_us=spec.wait_us,
            tcp_seq=spec.tcp_seq, tcp_ack=spec.tcp_ack,
        )
        self.probes: list[_Probe] = []
        self._replies: dict[int, list[PingReply]] = {}
        self._answered = 0
        self._timer = None
        self._due: Optional[float] = None
        self.done = False
        self._src_b = spec.src.packed
        self._dst_b = spec.dst.packed
        hdr = _ip_header_size(spec.family, spec.flags)
        if spec.method in ICMP_PING_METHODS:
            plen = spec.size - hdr - 8 - (12 if spec.method == PingMethod.ICMP_TIME else 0)
        elif spec.method in TCP_PING_METHODS:
            plen = spec.size - hdr - 20
        else:
            plen = spec.size - hdr - 8
        if plen < 0:
            raise ValueError(f"probe size {spec.size} is too small")
        self._payload = self._fill(plen)

    def _fill(self, plen: int) -> bytes:
        pat = self.spec.pattern
        if not pat:
            return bytes(plen)
        if self.spec.payload:
            return (pat + bytes(plen))[:plen]
        reps = plen // len(pat) + 1
        return (pat * reps)[:plen]

    # -- life cycle -------------------------------------------------------

    def halt(self) -> None:
        if not self.done:
            self._finish(PingStop.HALTED, 0)

    def fail(self, stop_data: int = 0) -> None:
        if not self.done:
            self._finish(PingStop.ERROR, stop_data)

    def _finish(self, reason: int, data: int) -> None:
        self.done = True
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        self.record.stop_reason = int(reason)
        self.record.stop_data = data
        replies: list[PingReply] = []
        for seq in sorted(self._replies):
            replies.extend(self._replies[seq])
        self.record.replies = replies
        self.io.finished()

    # -- probing ----------------------------------------------------------

    def build_probe(self, seq: int, ipid: int, now_ns: int = 0) -> bytes:
        s = self.spec
        src, dst = self._src_b, self._dst_b
        opts = RR_OPTION if (s.flags & PingFlag.V4RR and s.family == 4) else b""
        if s.method == PingMethod.ICMP_ECHO:
            proto = packets.PROTO_ICMP if s.family == 4 else packets.PROTO_ICMP6
            l4 = packets.icmp_echo(src, dst, s.sport, s.dport + seq, self._payload)
        elif s.method == PingMethod.ICMP_TIME:
            proto = packets.PROTO_ICMP
            ms = ((now_ns // 1_000_000_000) % 86400) * 1000 + (now_ns // 1_000_000) % 1000
            l4 = packets.icmp_timestamp(src, dst, s.sport, s.dport + seq, ms, self._payload)
        elif s.method in TCP_PING_METHODS:
            proto = packets.PROTO_TCP
            sport = s.sport
            flags = {PingMethod.TCP_ACK: TCP_ACK, PingMethod.TCP_ACK_SPORT: TCP_ACK,
                     PingMethod.TCP_SYN: TCP_SYN, PingMethod.TCP_SYNACK: TCP_SYN | TCP_ACK,
                     PingMethod.TCP_RST: TCP_RST}[PingMethod(s.method)]
            if s.method == PingMethod.TCP_ACK_SPORT:
                sport = (s.sport + seq) & 0xFFFF
            l4 = packets.tcp_segment(src, dst, sport, s.dport, seq=s.tcp_seq, ack=s.tcp_ack,
                                     flags=flags, window=65535, payload=self._payload)
        else:
            proto = packets.PROTO_UDP
            dport = s.dport + seq if s.method == PingMethod.UDP_DPORT else s.dport
            l4 = packets.udp_segment(src, dst, s.sport, dport & 0xFFFF, self._payload)
        return packets.ip_packet(src, dst, proto, l4, ttl=s.ttl, tos=s.tos, ipid=ipid, df=True,
                                 options=opts)

    def send_now(self) -> None:
        if self.done:
            return
        s = self.spec
        seq = len(self.probes)
        ipid = 0
        if s.family == 4:
            while ipid == 0:
                ipid = self.rng.randrange(0, 0x10000)
        pkt = self.build_probe(seq, ipid, self.io.now_ns())
        try:
            tx = self.io.transmit(pkt)
        except OSError as exc:
            self._finish(PingStop.ERROR, exc.errno or 0)
            return
        self.probes.append(_Probe(seq, tx, ipid))
        self.record.ping_sent += 1
        now = self.io.now_ns() / 1e9
        if self.record.ping_sent < s.probe_count:
            # Probes are due every `wait` seconds from the first one (scamper
            # counts from each transmit time); timers fire up to a millisecond
            # late, and counting from the schedule keeps the rate asked for.
            interval = s.wait + s.wait_us / 1e6
            if self._due is None or self._due + max(interval, 0.01) < tx / 1e9:
                self._due = tx / 1e9
            self._due += interval
            delay, nxt = self._due - now, self._next_probe
        else:
            delay, nxt = s.timeout_s + s.timeout_us / 1e6 - (now - tx / 1e9), self._all_done
        self._timer = self.io.clock.callLater(max(0.0, delay), nxt)

    def _next_probe(self) -> None:
        self._timer = None
        if not self.done:
            self.io.request_send()

    def _all_done(self) -> None:
        self._timer = None
        if not self.done:
            self._finish(PingStop.DONE, 0)

    # -- replies ----------------------------------------------------------

    def _seq_from_icmp(self, value: int) -> int:
        seq = value
        if seq < self.spec.dport:
            seq += 0x10000
        return seq - self.spec.dport

    def _match_ipid(self, ipid: int) -> int:
        n = len(self.probes)
        seq = n - 1
        while self.probes[seq].ipid != ipid:
            if seq == 0 or self.record.ping_sent - 5 == seq:
                return n - 1
            seq -= 1
        return seq

    def match(self, rep: Reply, dl: bool) -> Optional[int]:
        """The sequence number ``rep`` answers, or None if it is not ours."""
        s = self.spec
        n = len(self.probes)
        if n == 0:
            return None
        m = s.method
        seq: Optional[int] = None
        if rep.is_icmp:
            if dl:
                return None  # ICMP is read from the ICMP socket, as scamper does
            echo = rep.is_echo_reply
            tsr = rep.family == 4 and rep.icmp_type == 14
            if echo or tsr:
                if not ((m == PingMethod.ICMP_ECHO and echo) or (m == PingMethod.ICMP_TIME and tsr)):
                    return None
                if rep.icmp_id != s.sport:
                    return None
                seq = self._seq_from_icmp(rep.icmp_seq)
            elif rep.is_error and rep.has_inner:
                if rep.inner_off != 0:
                    return None
                if m in ICMP_PING_METHODS:
                    if rep.inner_icmp_id != s.sport:
                        return None
                    want = {PingMethod.ICMP_ECHO: 8 if s.family == 4 else 128,
                            PingMethod.ICMP_TIME: 13}[PingMethod(m)]
                    if rep.inner_icmp_type != want:
                        return None
                    seq = self._seq_from_icmp(rep.inner_icmp_seq)
                elif m in TCP_PING_METHODS:
                    if rep.inner_proto != packets.PROTO_TCP or rep.inner_dport != s.dport:
                        return None
                    if m == PingMethod.TCP_ACK:
                        if rep.inner_sport != s.sport:
                            return None
                        seq = self._match_ipid(rep.inner_ipid) if s.family == 4 else n - 1
                    else:
                        if rep.inner_sport > s.sport + n or rep.inner_sport < s.sport:
                            return None
                        seq = rep.inner_sport - s.sport
                else:
                    if rep.inner_proto != packets.PROTO_UDP or rep.inner_sport != s.sport:
                        return None
                    if m == PingMethod.UDP:
                        if rep.inner_dport != s.dport:
                            return None
                        seq = self._match_ipid(rep.inner_ipid) if s.family == 4 else n - 1
                    else:
                        if rep.inner_dport > s.dport + n or rep.inner_dport < s.dport:
                            return None
                        seq = rep.inner_dport - s.dport
            else:
                return None
        elif rep.proto == packets.PROTO_TCP:
            if not dl or m not in TCP_PING_METHODS or rep.sport != s.dport or rep.dst != self._src_b:
                return None
            if m == PingMethod.TCP_ACK_SPORT:
                seq = rep.dport
                if rep.dport < s.sport:
                    seq += 0x10000
                seq -= s.sport
            else:
                if rep.dport != s.sport:
                    return None
                seq = self._match_ipid(rep.ipid) if s.family == 4 else n - 1
        elif rep.proto == packets.PROTO_UDP:
            if not dl or m != PingMethod.UDP or rep.dport != s.sport or rep.sport != s.dport \
                    or rep.dst != self._src_b:
                return None
            seq = n - 1
        if seq is None or seq < 0 or seq >= n:
            return None
        return seq

    def on_reply(self, rep: Reply, rx_ns: int, dl: bool) -> bool:
        """Offer a dissected reply; returns True if it was ours and recorded."""
        if self.done:
            return False
        seq = self.match(rep, dl)
        if seq is None:
            return False
        probe = self.probes[seq]
        rtt = ((rx_ns // 1000) - (probe.tx_ns // 1000)) & 0xFFFFFFFF
        reply = PingReply(
            addr=ipaddress.ip_address(rep.src), probe_id=seq, rtt=rtt, reply_ttl=rep.ttl,
            reply_size=rep.size, reply_proto=rep.proto,
            tx=Timeval.from_ns(probe.tx_ns),
        )
        flags = PingReplyFlag.REPLY_TTL
        if rep.is_icmp:
            reply.icmp_type, reply.icmp_code = rep.icmp_type, rep.icmp_code
            if rep.family == 4 and rep.icmp_type == 14:
                reply.tsreply = (rep.ts_originate, rep.ts_receive, rep.ts_transmit)
            if rep.family == 4 and rep.rr is not None:
                reply.rr = [ipaddress.IPv4Address(a) for a in rep.rr]
        elif rep.proto == packets.PROTO_TCP:
            reply.tcp_flags = rep.tcp_flags
        if rep.family == 4:
            reply.reply_ipid = rep.ipid
            reply.probe_ipid = probe.ipid
            flags |= PingReplyFlag.REPLY_IPID | PingReplyFlag.PROBE_IPID
        reply.flags = int(flags)
        lst = self._replies.setdefault(seq, [])
        if not lst:
            self._answered += 1
        lst.append(reply)
        if self.spec.reply_count and self._answered >= self.spec.reply_count:
            self._finish(PingStop.DONE, 0)
        return True
