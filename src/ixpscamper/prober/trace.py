"""The traceroute state machine (sans-IO): probes out, replies in, a warts Trace.

It follows scamper 20211212's serial traceroute (``scamper_trace_do.c``)
so the record comes out as scamper fills it:

* one TTL at a time from ``firsthop``; ``attempts`` probes per TTL, each
  waiting ``wait`` seconds; a reply to the current TTL moves on at once
  (with ``-Q`` every attempt is sent, each after the previous one's reply);
* ``hop_count`` starts at ``firsthop - 1`` and grows as each TTL finishes
  (answered or timed out), so it is the number of TTLs covered;
* replies are kept per TTL in attempt order, late replies included, and a
  late reply that gives a stop reason ends the trace;
* stop reasons in scamper's order: port unreachable for UDP/TCP methods
  (COMPLETED), other unreachables (UNREACH, data = code), echo reply for
  ICMP methods (COMPLETED), IPv6 packet-too-big (ICMP), loop (LOOP),
  time-exceeded from the destination (COMPLETED unless ``-T``), a TCP
  reply to a TCP method (COMPLETED); then hop limit and gap limit.

With ``-G 2`` (gap action last-ditch), when the gap limit is reached the
trace sends ``attempts`` more probes with TTL 255: the first reply to one
of them is kept in the record's ``lastditch`` list (warts optional block
2) and ends the trace; either way the stop reason is GAPLIMIT and
``hop_count`` is not changed.  A late reply to an earlier probe meanwhile
is recorded with the hops but does not stop the trace (except a TCP
reply, which completes it), as in scamper.

With ``-p`` the probe payload is the user's bytes (paris methods overwrite
the first two to steer the checksum) and the probe size grows to fit.
``-O const-payload`` (udp-paris) leaves the payload alone, so the UDP
checksum is constant; probes are then told apart by IP-ID (IPv4) or flow
label (IPv6) = probe id + 1.  (scamper 20211212 on Linux leaves the IPv6
flow label to the kernel and so matches no reply; ours sets it.)

With ``-N squeries`` > 1 the trace runs as scamper's parallel mode: up to
``squeries`` TTLs beyond ``hop_count`` are probed at once (each TTL keeps
its attempts), ``hop_count`` is the highest TTL answered or given up on,
a stop reason lets the outstanding TTLs finish (their replies, e.g. the
destination again one TTL further, are kept), and the gap limit counts
from the highest TTL that answered; there is no last-ditch probing.

Probe identification, as scamper: udp-paris by UDP checksum = IP-ID =
probe id + 1; udp by destination port; icmp by echo sequence; tcp by IP-ID
(IPv4) or flow label (IPv6) = probe id + 1; a reply must quote (an echo
reply come from) the trace's destination.  Stricter than scamper: a quoted
UDP probe must carry the checksum that probe was sent with (see
:meth:`TraceRun._match_udp`), so a forged or unrelated ICMP error whose
ports and small IP-ID happen to fit is not taken for a hop.
"""

from __future__ import annotations

import ipaddress
from typing import Optional, Protocol

import attrs

from ..warts.records import (HopFlag, Timeval, Trace, TraceFlag, TraceGapAction, TraceHop,
                             TraceMethod, TraceStop, TCP_ACK, TCP_SYN)
from . import packets
from .packets import Reply

__all__ = ["TraceSpec", "TraceRun", "TaskIO", "MeasurementRun", "probe_header_size",
           "default_probe_size"]

IPAddr = ipaddress.IPv4Address | ipaddress.IPv6Address

UDP_METHODS = (TraceMethod.UDP, TraceMethod.UDP_PARIS)
ICMP_METHODS = (TraceMethod.ICMP_ECHO, TraceMethod.ICMP_ECHO_PARIS)
TCP_METHODS = (TraceMethod.TCP, TraceMethod.TCP_ACK)


class TaskIO(Protocol):
    """What a running task needs from the scheduler (tests supply a fake)."""

    clock: object  # IReactorTime

    def now_ns(self) -> int: ...

    def request_send(self) -> None:
        """Ask for a transmit slot; the scheduler then calls ``send_now()``."""

    def transmit(self, pkt: bytes) -> int:
        """Send ``pkt`` (raises OSError); returns the transmit time in ns."""

    def finished(self) -> None:
        """The task is done; its record is final."""


class MeasurementRun:
    """What every measurement's state machine does the same way: its start.

    A subclass has ``io`` (a :class:`TaskIO`) and ``record`` (the warts
    record it fills in)."""

    io: TaskIO
    record: object

    def start(self, start_ns: Optional[int] = None, send: bool = True) -> None:
        """Stamp the start time and (unless ``send`` is false) ask for the first slot."""
        t = self.io.now_ns() if start_ns is None else start_ns
        self.record.start = Timeval.from_ns(t)  # type: ignore[attr-defined]
        if send:
            self.io.request_send()


def probe_header_size(family: int, method: int) -> int:
    ip = 20 if family == 4 else 40
    return ip + (20 if method in TCP_METHODS else 8)


def default_probe_size(family: int, method: int) -> int:
    """scamper's default trace probe size (no payload option)."""
    if family == 4:
        return 40 if method in TCP_METHODS else 44
    return 60


@attrs.frozen
class TraceSpec:
    """Everything a trace needs, resolved: addresses, ports, limits."""

    dst: IPAddr
    src: IPAddr
    method: int = TraceMethod.UDP_PARIS
    rtr: Optional[IPAddr] = None
    attempts: int = 2
    hoplimit: int = 0
    firsthop: int = 1
    wait: int = 5
    wait_probe: int = 0  # centiseconds
    gaplimit: int = 5
    gapaction: int = TraceGapAction.STOP
    loops: int = 1
    loopaction: int = 0
    sport: int = 0
    dport: int = 33435
    tos: int = 0
    probe_size: int = 0  # 0: scamper's default for the family/method
    all_attempts: bool = False
    ignore_ttl_dst: bool = False
    userid: int = 0
    use_dl: bool = False  # replies timed on the datalink (-r and TCP methods)
    flags: int = 0  # further TraceFlag bits from the command (e.g. DL for -O dl)
    payload: bytes = b""  # -p: the probe payload (probe_size must fit it)
    squeries: int = 1  # -N: TTLs probed at once (scamper's parallel mode when > 1)
    const_payload: bool = False  # -O const-payload (udp-paris: ids not in the checksum)

    @property
    def family(self) -> int:
        return self.dst.version

    @property
    def size(self) -> int:
        return self.probe_size or default_probe_size(self.family, self.method)


@attrs.define
class _HopState:
    """A TTL being probed in parallel mode (scamper's trace_hop_state_t)."""

    ttl: int
    attempt: int = 0
    id: int = -1  # the latest probe sent for this TTL
    last_tx_ns: int = 0


@attrs.define
class _Probe:
    id: int
    ttl: int
    attempt: int
    tx_ns: int
    replies: int = 0
    timed_out: bool = False
    lastditch: bool = False
    udp_sum: int = 0  # the UDP checksum the probe carried (UDP methods)


class TraceRun(MeasurementRun):
    """One traceroute in progress.  ``record`` is the warts Trace being filled."""

    def __init__(self, spec: TraceSpec, io: TaskIO):
        self.spec = spec
        self.io = io
        flags = spec.flags
        if spec.all_attempts:
            flags |= TraceFlag.ALLATTEMPTS
        if spec.ignore_ttl_dst:
            flags |= TraceFlag.IGNORETTLDST
        if spec.method == TraceMethod.ICMP_ECHO_PARIS:
            flags |= TraceFlag.ICMPCSUMDP
        self.record = Trace(
            dst=spec.dst, src=spec.src, rtr=spec.rtr, flags=int(flags), attempts=spec.attempts,
            hoplimit=spec.hoplimit, method=int(spec.method), probe_size=spec.size,
            sport=spec.sport, dport=spec.dport, firsthop=spec.firsthop, tos=spec.tos,
            wait=spec.wait, loops=spec.loops, hop_count=spec.firsthop - 1,
            gaplimit=spec.gaplimit, gapaction=int(spec.gapaction), loopaction=spec.loopaction,
            wait_probe=spec.wait_probe, userid=spec.userid, squeries=spec.squeries,
        )
        self.ttl = spec.firsthop
        self.attempt = 0
        self.lastditch = False  # in last-ditch mode (-G 2, gap limit reached)
        # parallel mode (-N): TTLs awaiting a reply, in send order; TTLs to probe again
        self.parallel = spec.squeries > 1
        self._window: list[_HopState] = []
        self._probeq: list[_HopState] = []
        self._max_ttl = 0  # highest TTL that answered
        self._finishing = False  # stopped: only the outstanding TTLs are finished
        self._lastditch_hops: list[TraceHop] = []
        self.probes: list[_Probe] = []
        self._by_ttl: dict[int, list[TraceHop]] = {}
        self._timer = None
        self._loopc = 0
        self.done = False
        self._src_b = spec.src.packed
        self._dst_b = spec.dst.packed
        self._payload_len = self.record.probe_size - probe_header_size(spec.family, spec.method)
        if self._payload_len < 0:
            raise ValueError(f"probe size {self.record.probe_size} is too small")
        if spec.payload and len(spec.payload) != self._payload_len:
            raise ValueError(f"payload of {len(spec.payload)} bytes does not fit probe size "
                             f"{self.record.probe_size}")

    # -- life cycle -------------------------------------------------------

    def halt(self) -> None:
        if not self.done:
            self._stop(TraceStop.HALTED, 0)
            self._finish()

    def fail(self, stop_data: int = 0) -> None:
        """End the trace with stop reason ERROR (e.g. the router never answered ARP)."""
        if not self.done:
            self._stop(TraceStop.ERROR, stop_data)
            self._finish()

    def _finish(self) -> None:
        self.done = True
        self._cancel_timer()
        hops: list[TraceHop] = []
        for ttl in sorted(self._by_ttl):
            hops.extend(self._by_ttl[ttl])
        self.record.hops = hops
        # scamper writes the last-ditch block only when it holds a reply
        self.record.lastditch = list(self._lastditch_hops) or None
        self.io.finished()

    def _stop(self, reason: int, data: int) -> None:
        if self.record.stop_reason == TraceStop.NONE:
            self.record.stop_reason = int(reason)
            self.record.stop_data = data

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    # -- probing ----------------------------------------------------------

    def build_probe(self, pid: int, ttl: int) -> bytes:
        """The probe with id ``pid`` (0-based, in send order) at ``ttl``."""
        s = self.spec
        src, dst = self._src_b, self._dst_b
        plen = self._payload_len
        data = s.payload or bytes(plen)
        ipid = (pid + 1) & 0xFFFF
        flow = 0
        if s.method in UDP_METHODS:
            proto = packets.PROTO_UDP
            if s.method == TraceMethod.UDP:
                dport = (s.dport + pid) & 0xFFFF
                l4 = packets.udp_segment(src, dst, s.sport, dport, data)
            elif s.const_payload:
                l4 = packets.udp_segment(src, dst, s.sport, s.dport, data)
                if s.family == 6:
                    flow = pid + 1
            else:
                payload = packets.paris_udp_payload(src, dst, s.sport, s.dport, plen, pid + 1, data)
                l4 = packets.udp_segment(src, dst, s.sport, s.dport, payload)
        elif s.method in ICMP_METHODS:
            proto = packets.PROTO_ICMP if s.family == 4 else packets.PROTO_ICMP6
            if s.method == TraceMethod.ICMP_ECHO_PARIS:
                payload = packets.paris_icmp_payload(src, dst, s.sport, pid, plen, s.dport, data)
            else:
                payload = data
            l4 = packets.icmp_echo(src, dst, s.sport, pid, payload)
        else:
            proto = packets.PROTO_TCP
            flags = TCP_SYN if s.method == TraceMethod.TCP else TCP_ACK
            l4 = packets.tcp_segment(src, dst, s.sport, s.dport, flags=flags, window=0,
                                     payload=data)
            if s.family == 6:
                flow = pid + 1
        return packets.ip_packet(src, dst, proto, l4, ttl=ttl, tos=s.tos, ipid=ipid, df=True, flow=flow)

    def send_now(self) -> None:
        """Called by the scheduler in a transmit slot: send the next probe."""
        if self.done:
            return
        if self.parallel:
            self._send_parallel()
            return
        pid = len(self.probes)
        if pid >= 0xFFFF:
            self._stop(TraceStop.ERROR, 0)
            self._finish()
            return
        pkt = self.build_probe(pid, self.ttl)
        try:
            tx = self.io.transmit(pkt)
        except OSError as exc:
            self._stop(TraceStop.ERROR, exc.errno or 0)
            self._finish()
            return
        self.attempt += 1
        self.probes.append(_Probe(pid, self.ttl, self.attempt, tx, lastditch=self.lastditch,
                                  udp_sum=self._udp_sum(pkt)))
        self.record.probec += 1
        self._cancel_timer()
        # the wait runs from the transmit time, which the kernel clock gave
        now = self.io.now_ns()
        delay = max(0.0, self.spec.wait - (now - tx) / 1e9)
        self._timer = self.io.clock.callLater(delay, self._on_timeout)

    def _queue_probe(self) -> None:
        # -W: at least wait_probe centiseconds between this trace's probes
        gap = self.spec.wait_probe / 100.0
        if gap <= 0 or not self.probes:
            self.io.request_send()
            return
        due = self.probes[-1].tx_ns / 1e9 + gap - self.io.now_ns() / 1e9
        if due <= 0:
            self.io.request_send()
            return
        self._cancel_timer()
        self._timer = self.io.clock.callLater(due, self._gap_done)

    def _gap_done(self) -> None:
        self._timer = None
        if not self.done:
            self.io.request_send()

    def _on_timeout(self) -> None:
        self._timer = None
        if self.done:
            return
        if self.parallel:
            self._pqueue()
            return
        last = self.probes[-1]
        if last.replies:
            return
        last.timed_out = True
        if self.attempt < self.spec.attempts:
            self._queue_probe()
            return
        self.attempt = 0
        if self.lastditch:
            # no reply to any last-ditch probe
            self._stop(TraceStop.GAPLIMIT, 0)
            self._finish()
            return
        self._ttl_timed_out()

    def _end_on_any(self, hops) -> bool:
        """Stop and finish on the first of ``hops`` that ends the trace."""
        for hop in hops:
            reason = self._stop_reason(hop)
            if reason is not None:
                self._stop(*reason)
                self._finish()
                return True
        return False

    def _end_on_hoplimit(self) -> bool:
        """Stop and finish once the hop limit (-m; 0 = 255) is covered."""
        r = self.record
        if (r.hoplimit or 255) <= r.hop_count:
            self._stop(TraceStop.HOPLIMIT, 0)
            self._finish()
            return True
        return False

    def _ttl_timed_out(self) -> None:
        r = self.record
        r.hop_count += 1
        self.ttl += 1
        if self.spec.all_attempts and self._end_on_any(self._by_ttl.get(r.hop_count, [])):
            return
        if self._end_on_hoplimit():
            return
        if r.hop_count - (r.firsthop - 1) >= r.gaplimit:
            if all(not self._by_ttl.get(r.hop_count - i) for i in range(r.gaplimit)):
                if r.gapaction == TraceGapAction.LASTDITCH:
                    # is the destination alive at all?  probe it past any TTL
                    self.lastditch = True
                    self.ttl = 255
                    self._queue_probe()
                    return
                self._stop(TraceStop.GAPLIMIT, 0)
                self._finish()
                return
        self._queue_probe()

    # -- replies ----------------------------------------------------------

    def match(self, rep: Reply) -> Optional[int]:
        """The id of the probe ``rep`` answers, or None if it is not ours."""
        s = self.spec
        n = len(self.probes)
        if n == 0:
            return None
        if rep.is_icmp:
            wanted = (rep.is_time_exceeded or rep.is_unreach or rep.is_ptb) and rep.has_inner \
                and rep.inner_off == 0
            echo = s.method in ICMP_METHODS and rep.is_echo_reply
            if not wanted and not echo:
                return None
            # scamper finds the task by the quoted destination, or by the
            # source of an echo reply
            if (echo and rep.src != self._dst_b) or (not echo and rep.inner_dst != self._dst_b):
                return None
            if s.method in UDP_METHODS:
                return self._match_udp(rep)
            if s.method in ICMP_METHODS:
                if echo:
                    if rep.icmp_id != s.sport or rep.icmp_seq >= n:
                        return None
                    return rep.icmp_seq
                proto = packets.PROTO_ICMP if rep.family == 4 else packets.PROTO_ICMP6
                if rep.inner_proto != proto or rep.inner_icmp_id != s.sport or rep.inner_icmp_seq >= n:
                    return None
                return rep.inner_icmp_seq
            # TCP methods
            if rep.inner_proto != packets.PROTO_TCP or rep.inner_sport != s.sport \
                    or rep.inner_dport != s.dport:
                return None
            if rep.family == 4:
                return self._ipid_fudge(rep.inner_ipid)
            if rep.inner_flow == 0:
                return None
            return self._in_range(rep.inner_flow - 1)
        if rep.proto == packets.PROTO_TCP and s.method in TCP_METHODS:
            if rep.sport == s.dport and rep.dport == s.sport and rep.dst == self._src_b \
                    and rep.src == self._dst_b:
                # scamper cannot tell which probe a TCP reply is for: the last one
                return n - 1
        return None

    def _match_udp(self, rep: Reply) -> Optional[int]:
        """The probe a quoted UDP header is a copy of, or None.

        The probe id comes from where scamper takes it: the destination port
        (udp), the checksum when it equals the IP-ID or else the IP-ID with
        scamper's fudge for IP-IDs a router rewrote (udp-paris, IPv4), the
        checksum (udp-paris, IPv6) or the flow label (-O const-payload,
        IPv6).  Then, beyond scamper, the quoted checksum must be the one
        that probe carried: scamper 20211212 takes a quote whose IP-ID names
        a probe even when its checksum is no probe's, which any ICMP error
        with our source port and a small IP-ID passes (a storm of forged
        port unreachables ends a trace early that way, in scamper too).
        The cost: a middlebox that rewrites the quoted UDP checksum but not
        the ports and the IP-ID hides its hops from ixpscamper, not from
        scamper.
        """
        s = self.spec
        if rep.inner_proto != packets.PROTO_UDP or rep.inner_sport != s.sport:
            return None
        pid: Optional[int]
        if s.method == TraceMethod.UDP:
            if not (s.dport <= rep.inner_dport < s.dport + len(self.probes)):
                return None
            pid = rep.inner_dport - s.dport
        elif rep.inner_dport != s.dport:
            return None
        elif rep.family == 4:
            if rep.inner_udp_sum == rep.inner_ipid and rep.inner_udp_sum != 0:
                pid = self._in_range(rep.inner_udp_sum - 1)
            else:
                pid = self._ipid_fudge(rep.inner_ipid)
        elif s.const_payload:
            pid = None if rep.inner_flow == 0 else self._in_range(rep.inner_flow - 1)
        elif rep.inner_udp_sum == 0:
            return None
        else:
            pid = self._in_range(rep.inner_udp_sum - 1)
        if pid is None or rep.inner_udp_sum != self.probes[pid].udp_sum:
            return None
        return pid

    @staticmethod
    def _udp_sum(pkt: bytes) -> int:
        """The UDP checksum field of an IPv4/IPv6 probe (0 for other protocols)."""
        if pkt[0] >> 4 == 4:
            off = (pkt[0] & 0x0F) * 4
            proto = pkt[9]
        else:
            off, proto = 40, pkt[6]
        if proto != packets.PROTO_UDP or len(pkt) < off + 8:
            return 0
        return int.from_bytes(pkt[off + 6:off + 8], "big")

    def _in_range(self, pid: int) -> Optional[int]:
        return pid if 0 <= pid < len(self.probes) else None

    def _ipid_fudge(self, ipid: int) -> Optional[int]:
        n = len(self.probes)
        if ipid == 0:
            return None
        if ipid <= n:
            return ipid - 1
        if ipid == n + 1:
            return ipid - 2
        swapped = ((ipid & 0xFF) << 8) | (ipid >> 8)
        if swapped <= n:
            return swapped - 1
        return None

    def on_reply(self, rep: Reply, rx_ns: int, dl: bool) -> bool:
        """Offer a dissected reply; returns True if it was ours and recorded."""
        if self.done:
            return False
        pid = self.match(rep)
        if pid is None:
            return False
        probe = self.probes[pid]
        hop = self._make_hop(probe, rep, rx_ns, dl)
        probe.replies += 1
        if self.parallel:
            self._parallel_reply(probe, hop)
            return True
        if self.lastditch:
            self._lastditch_reply(probe, hop, rep.proto == packets.PROTO_TCP)
            return True
        self._insert(hop)
        if rep.proto == packets.PROTO_TCP:
            self._tcp_reply(probe)
        else:
            self._icmp_reply(probe, hop)
        return True

    def _make_hop(self, probe: _Probe, rep: Reply, rx_ns: int, dl: bool) -> TraceHop:
        rtt = ((rx_ns // 1000) - (probe.tx_ns // 1000)) & 0xFFFFFFFF
        flags = HopFlag.REPLY_TTL | (HopFlag.TS_DL_RX if dl else HopFlag.TS_SOCK_RX)
        hop = TraceHop(
            addr=ipaddress.ip_address(rep.src), probe_ttl=probe.ttl, probe_id=probe.attempt,
            probe_size=self.record.probe_size, rtt=rtt, reply_ttl=rep.ttl,
            reply_size=rep.size, reply_ipid=rep.ipid if rep.family == 4 else 0,
            tx=Timeval.from_ns(probe.tx_ns),
        )
        if rep.proto == packets.PROTO_TCP:
            hop.flags = int(flags | HopFlag.TCP)
            hop.tcp_flags = rep.tcp_flags
            hop.reply_tos = rep.tos
            hop.icmp_type = hop.icmp_code = 0
            return hop
        hop.flags = int(flags)
        # scamper takes an ICMP hop's TOS from the socket, which for IPv6 is never read
        hop.reply_tos = rep.tos if rep.family == 4 else 0
        hop.icmp_type, hop.icmp_code = rep.icmp_type, rep.icmp_code
        if rep.has_inner:
            hop.icmp_q_ttl = rep.inner_ttl
            hop.icmp_q_ipl = rep.inner_size
            hop.icmp_q_tos = rep.inner_tos if rep.family == 4 else 0
        if rep.is_ptb:
            hop.icmp_nhmtu = rep.icmp_nhmtu
        if rep.icmpext:
            hop.icmpext = list(rep.icmpext)
        return hop

    # -- parallel mode (-N), after scamper's trace_queue / handleicmp_parallel ----

    def _send_parallel(self) -> None:
        if self._probeq:
            hs = self._probeq.pop(0)
        elif not self._finishing:
            hs = _HopState(self.ttl)
            self.ttl += 1
        else:
            self._pqueue()
            return
        self._window.append(hs)
        pid = len(self.probes)
        if pid >= 0xFFFF:
            self._stop(TraceStop.ERROR, 0)
            self._finish()
            return
        pkt = self.build_probe(pid, hs.ttl)
        try:
            tx = self.io.transmit(pkt)
        except OSError as exc:
            self._stop(TraceStop.ERROR, exc.errno or 0)
            self._finish()
            return
        hs.attempt += 1
        hs.id = pid
        hs.last_tx_ns = tx
        self.probes.append(_Probe(pid, hs.ttl, hs.attempt, tx, udp_sum=self._udp_sum(pkt)))
        self.record.probec += 1
        self._pqueue()

    def _pqueue(self) -> None:
        """Decide what the parallel trace does next: probe, wait, or end."""
        r = self.record
        s = self.spec
        now = self.io.now_ns()
        wait_ns = s.wait * 1_000_000_000
        while self._window and self._window[0].last_tx_ns + wait_ns <= now:
            hs = self._window.pop(0)
            self.probes[hs.id].timed_out = True
            if hs.attempt < s.attempts:
                self._probeq.append(hs)
            elif hs.ttl > r.hop_count:
                r.hop_count = hs.ttl
        self._cancel_timer()
        if self._probeq:
            self._queue_probe()
            return
        if not self._finishing:
            if r.hop_count + s.squeries >= self.ttl and (r.hoplimit or 255) >= self.ttl \
                    and self.ttl - self._max_ttl <= r.gaplimit:
                self._queue_probe()
                return
        elif not self._window:
            self._finish()
            return
        if self._end_on_hoplimit():
            return
        if r.hop_count - (r.firsthop - 1) >= r.gaplimit and not self._window:
            if all(not self._by_ttl.get(r.hop_count - i) for i in range(r.gaplimit)):
                self._stop(TraceStop.GAPLIMIT, 0)
                self._finish()
                return
        if not self._window:  # nothing outstanding and nothing to send: cannot go on
            self._stop(TraceStop.GAPLIMIT, 0)
            self._finish()
            return
        due = (self._window[0].last_tx_ns + wait_ns - now) / 1e9
        self._timer = self.io.clock.callLater(max(0.0, due), self._on_timeout)

    def _parallel_reply(self, probe: _Probe, hop: TraceHop) -> None:
        r = self.record
        self._insert(hop)
        r.hop_count = max(r.hop_count, probe.ttl)
        self._max_ttl = max(self._max_ttl, probe.ttl)
        for i, hs in enumerate(self._window):
            if hs.id == probe.id:
                del self._window[i]
                break
        if r.stop_reason == TraceStop.NONE:
            reason = self._stop_reason(hop)
            if reason is not None:
                self._stop(*reason)
                if self._window or self._probeq:
                    self._finishing = True
                    self._pqueue()
                else:
                    self._finish()
                return
        if self._finishing and not self._window and not self._probeq:
            self._finish()
            return
        self._pqueue()

    def _lastditch_reply(self, probe: _Probe, hop: TraceHop, tcp: bool) -> None:
        # scamper's handleicmp_lastditch / handletp_lastditch
        if probe.lastditch:
            if not tcp and hop.flags & HopFlag.TS_DL_RX:
                # scamper makes this hop from the ICMP socket and ends the
                # trace at once: the datalink timestamp never reaches it
                hop.flags = int((hop.flags & ~HopFlag.TS_DL_RX) | HopFlag.TS_SOCK_RX)
            self._insert(hop, self._lastditch_hops)
            self._stop(TraceStop.GAPLIMIT, 0)
            self._finish()
            return
        self._insert(hop)
        if tcp:
            self._stop(TraceStop.COMPLETED, 0)
            self._finish()

    def _insert(self, hop: TraceHop, lst: Optional[list[TraceHop]] = None) -> None:
        if lst is None:
            lst = self._by_ttl.setdefault(hop.probe_ttl, [])
        i = len(lst)
        while i > 0 and lst[i - 1].probe_id > hop.probe_id:
            i -= 1
        lst.insert(i, hop)

    def _icmp_reply(self, probe: _Probe, hop: TraceHop) -> None:
        s = self.spec
        r = self.record
        if probe.ttl != self.ttl:
            self._end_on_any([hop])
            return
        if s.all_attempts:
            if probe.attempt != self.attempt:
                return
            if self.attempt < s.attempts:
                self._cancel_timer()
                self._queue_probe()
                return
        self.attempt = 0
        r.hop_count += 1
        self.ttl += 1
        self._cancel_timer()
        # with -Q every reply at this TTL may end the trace, else just this one
        if self._end_on_any(self._by_ttl.get(r.hop_count, []) if s.all_attempts else [hop]):
            return
        if self._end_on_hoplimit():
            return
        self._queue_probe()

    def _tcp_reply(self, probe: _Probe) -> None:
        # scamper's handletp_trace: a TCP reply ends the trace as COMPLETED
        r = self.record
        if self.spec.all_attempts:
            if probe.attempt != self.spec.attempts:
                self._cancel_timer()
                self._queue_probe()
                return
            r.hop_count += 1
        elif probe.replies == 1 and not probe.timed_out:
            r.hop_count += 1
        self._stop(TraceStop.COMPLETED, 0)
        self._finish()

    def _stop_reason(self, hop: TraceHop) -> Optional[tuple[int, int]]:
        s = self.spec
        fam = s.family
        unreach = hop.is_icmp and hop.icmp_type == (3 if fam == 4 else 1)
        port_unreach = unreach and hop.icmp_code == (3 if fam == 4 else 4)
        echo_reply = hop.is_icmp and hop.icmp_type == (0 if fam == 4 else 129)
        ttl_exp = hop.is_icmp and hop.icmp_type == (11 if fam == 4 else 3)
        if port_unreach and (s.method in UDP_METHODS or s.method in TCP_METHODS):
            return (TraceStop.COMPLETED, 0)
        if unreach:
            return (TraceStop.UNREACH, hop.icmp_code)
        if echo_reply:
            if s.method in ICMP_METHODS:
                return (TraceStop.COMPLETED, 0)
            return None
        if fam == 6 and hop.is_icmp and hop.icmp_type == 2:
            return (TraceStop.ICMP, hop.icmp_type)
        if s.loops != 0 and self._is_loop(hop):
            return (TraceStop.LOOP, 0)
        if ttl_exp and not s.ignore_ttl_dst and hop.addr == s.dst:
            return (TraceStop.COMPLETED, 0)
        if s.method in TCP_METHODS and hop.is_tcp:
            return (TraceStop.COMPLETED, 0)
        return None

    def _is_loop(self, hop: TraceHop) -> bool:
        r = self.record
        if hop.probe_ttl <= r.firsthop:
            return False
        for other in self._by_ttl.get(hop.probe_ttl, []):
            if other is hop:
                break
            if other.addr == hop.addr:
                return False
        for ttl in range(r.firsthop, r.hop_count + 1):
            if ttl == hop.probe_ttl:
                continue
            for other in self._by_ttl.get(ttl, []):
                if other.addr == hop.addr:
                    if ttl + 1 == hop.probe_ttl or ttl - 1 == hop.probe_ttl:
                        return False
                    self._loopc += 1
                    return self._loopc >= self.spec.loops
        return False
