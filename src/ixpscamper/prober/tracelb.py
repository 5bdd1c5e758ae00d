"""The MDA traceroute (``tracelb``) state machine, sans-IO: probes out, replies in, a warts Tracelb.

The Multipath Detection Algorithm (Augustin, Friedman, Teixeira, IMC 2007)
as scamper runs it (``scamper_tracelb_do.c``); the facts taken from there:

* one probe in flight at a time for the whole measurement; after a reply
  the next probe waits until ``wait_probe`` after the previous one was
  sent, after a timeout (``wait_timeout``) it goes at once; a probe without
  a reply is sent again with the same flow id and TTL up to ``attempts``
  times;
* the first probe (TTL ``firsthop``, flow id = the first flow id) finds
  the first node; if it is the destination, or its reply is not a time
  exceeded message, the measurement ends there;
* each node's next hop is then probed with flow ids known to reach that
  node, counting replies ``k`` and lost probes ``l``; with ``n`` the
  number of next hops found plus one (at least 2), probing stops when
  ``k`` (or ``k + l``) reaches the confidence table's ``k(n)`` (95 % or
  99 %), when ``n`` reaches 99, or at once when the destination answers
  and fewer than two next hops were seen;
* a node with more than one next hop is then checked for per-packet load
  balancing: the first new node's flow id is sent again until ``k(2)``
  replies came from it (per-flow) or one came from another node;
* flow ids: udp-dport varies the destination port (first flow id =
  ``-d``), udp-sport / tcp-sport / tcp-ack-sport the source port (first =
  ``-s``), icmp-echo the ICMP checksum (first = 1); the probe id goes in
  the UDP checksum and IP-ID (UDP), the echo sequence (ICMP) or the IP-ID
  (TCP, IPv4);
* a flow id is kept for probing beyond a node only if every reply to it
  from that node was time exceeded;
* a hop where a flow got no reply at all, or one flow got several replies
  or replies from several addresses, is a "clump" (scamper's MODE_CLUMP):
  the link from the node ends in ``*`` (``to`` None) with that hop's probes
  as its first probeset, and probing goes on one TTL further with the
  same flows; each further hop adds a probeset, until a hop answers from
  one address with nothing lost (the link then ends at that node, a
  multi-hop link), a reply is not a time exceeded (the branch ends), or
  ``gaplimit`` hops in a row were silent; several next hops right after
  the first node, or behind a clump, and a per-packet load balancer (the
  per-packet check saw another next hop for the flow, or lost a probe)
  are clumps too;
* ``probec_max`` (``-Q``) caps the probes sent;
* branches wait in a binary heap keyed on their path length (links back to
  the first node), nearest first; of two equally near, the one queued
  last goes first (the heap's tie rule, which sets the order probes go out);
* nodes are recorded in discovery order, links sorted by from and to
  address, each link with the probes (all attempts) whose flow ids reached
  its far end, the per-packet check's probes after the hop probes.

Where this differs from scamper (said plainly, so results can be judged):

* flow ids that reach a node not on a single-path prefix are "brought
  forward" by probing a fresh flow id at that node's own TTL (scamper
  walks them forward segment by segment from the root), so probe counts
  differ from scamper's on diamonds behind diamonds;
* a clump that runs out of the flows it carried forward takes new ones
  (where nothing branches before it) or flows that reached its node, not
  scamper's path walk;
* there is no loop detection beyond not probing a node twice.
"""

from __future__ import annotations

import ipaddress
from typing import Optional

import attrs

from ..warts.records import (Timeval, Tracelb, TracelbLink, TracelbNode, TracelbNodeFlag,
                             TracelbProbe, TracelbProbeset, TracelbReply, TracelbReplyFlag,
                             TracelbType)
from . import packets
from .packets import Reply
from .trace import MeasurementRun

__all__ = ["TracelbSpec", "TracelbRun", "mda_k", "tracelb_probe_size"]

IPAddr = ipaddress.IPv4Address | ipaddress.IPv6Address

# number of probes (k) to send to rule out n next hops: 95 % and 99 %
# confidence, the table of scamper_tracelb_do.c (from Augustin et al.)
_K = (
    (0, 0), (0, 0), (6, 8), (11, 15), (16, 21), (21, 28), (27, 36), (33, 43), (38, 51),
    (44, 58), (51, 66), (57, 74), (63, 82), (70, 90), (76, 98), (83, 106), (90, 115),
    (96, 123), (103, 132), (110, 140), (117, 149), (124, 157), (131, 166), (138, 175),
    (145, 183), (152, 192), (159, 201), (167, 210), (174, 219), (181, 228), (189, 237),
    (196, 246), (203, 255), (211, 264), (218, 273), (226, 282), (233, 291), (241, 300),
    (248, 309), (256, 319), (264, 328), (271, 337), (279, 347), (287, 356), (294, 365),
    (302, 375), (310, 384), (318, 393), (326, 403), (333, 412), (341, 422), (349, 431),
    (357, 441), (365, 450), (373, 460), (381, 470), (389, 479), (397, 489), (405, 499),
    (413, 508), (421, 518), (429, 528), (437, 537), (445, 547), (453, 557), (462, 566),
    (470, 576), (478, 586), (486, 596), (494, 606), (502, 616), (511, 625), (519, 635),
    (527, 645), (535, 655), (544, 665), (552, 675), (560, 685), (569, 695), (577, 705),
    (585, 715), (594, 725), (602, 735), (610, 745), (619, 755), (627, 765), (635, 775),
    (644, 785), (652, 795), (661, 805), (669, 815), (678, 825), (686, 835), (695, 845),
    (703, 855), (712, 866), (720, 876), (729, 886), (737, 896), (746, 906),
)
MAX_N = 99

UDP_TYPES = (TracelbType.UDP_DPORT, TracelbType.UDP_SPORT)
TCP_TYPES = (TracelbType.TCP_SPORT, TracelbType.TCP_ACK_SPORT)
SPORT_TYPES = (TracelbType.UDP_SPORT, TracelbType.TCP_SPORT, TracelbType.TCP_ACK_SPORT)


def mda_k(n: int, confidence: int) -> int:
    """Probes needed to rule out ``n`` next hops (2 <= n <= 99) at 95 or 99 % confidence."""
    if not 2 <= n <= MAX_N:
        raise ValueError(f"n must be within 2 - {MAX_N}")
    return _K[n][0 if confidence == 95 else 1]


def tracelb_probe_size(family: int, method: int) -> int:
    """scamper's tracelb probe size: 40 (TCP) / 44 (UDP, ICMP) for IPv4, 60 for IPv6."""
    if family == 4:
        return 40 if method in TCP_TYPES else 44
    return 60


@attrs.frozen
class TracelbSpec:
    """Everything a tracelb needs, resolved."""

    dst: IPAddr
    src: IPAddr
    method: int = TracelbType.UDP_DPORT
    rtr: Optional[IPAddr] = None
    confidence: int = 95
    sport: int = 0
    dport: int = 33435
    firsthop: int = 1
    gaplimit: int = 3
    attempts: int = 2
    probec_max: int = 3000
    tos: int = 0
    userid: int = 0
    wait_us: int = 5_000_000
    wait_probe_us: int = 250_000

    @property
    def family(self) -> int:
        return self.dst.version

    @property
    def first_flowid(self) -> int:
        if self.method == TracelbType.UDP_DPORT:
            return self.dport
        if self.method == TracelbType.ICMP_ECHO:
            return 1
        return self.sport


FIRSTADDR, HOP, BRINGFWD, PERPACKET = "firstaddr", "hop", "bringfwd", "perpacket"


@attrs.define(eq=False)
class _Probe:
    id: int
    flowid: int
    ttl: int
    attempt: int
    mode: str
    branch: "_Branch"
    rec: TracelbProbe
    udp_sum: int = 0


@attrs.define(eq=False)
class _Node:
    """A node as the algorithm sees it (index into the record's nodes)."""

    index: int
    addr: Optional[IPAddr]
    dist: int  # the TTL it was found at
    sole: bool  # every flow reaches it (no branching before it)
    pool: list[int] = attrs.field(factory=list)  # flow ids known to reach it at ``dist``
    q_ttl: Optional[int] = None  # the TTL quoted in its first reply
    parents: list["_Node"] = attrs.field(factory=list)  # nodes with a link to this one
    nexthops: int = 0  # links from this node
    depth: int = 0  # links on the shortest chain back to the first node (scamper's path length)


@attrs.define(eq=False)
class _Link:
    """A link being recorded: ``to`` None while it ends in silence (a clump)."""

    src: _Node
    to: Optional[_Node]
    sets: list[list[TracelbProbe]] = attrs.field(factory=list)


@attrs.define(eq=False)
class _Clump:
    """The hops of a clump probed so far from a branch's node."""

    link: _Link
    pool: list[int] = attrs.field(factory=list)  # the flows carried to the next hop


@attrs.define(eq=False)
class _Branch:
    """Probing the next hops of one node (scamper's tracelb_branch_t)."""

    node: Optional[_Node]
    mode: str = HOP
    probes: list[_Probe] = attrs.field(factory=list)
    newnodes: list[tuple[IPAddr, _Probe]] = attrs.field(factory=list)
    k: int = 0
    l: int = 0
    n: int = 2
    fwd_fails: int = 0
    checked_perpacket: bool = False
    clump: Optional[_Clump] = None

    def ttl(self, firsthop: int) -> int:
        """The TTL its hop probes go out with: one past the node and any silent hops."""
        if self.node is None:
            return firsthop + 1
        return self.node.dist + 1 + (len(self.clump.link.sets) if self.clump else 0)


class _Waiting:
    """Branches waiting to be probed, nearest the first node first.

    scamper keeps them in a binary heap keyed on path length; which of
    several equally near branches goes first is the heap's doing (the one
    queued last, of two), and it decides the order probes go out in, so
    this is the same heap: sift up past parents that are no nearer, sift
    down below children that are nearer.
    """

    def __init__(self) -> None:
        self._a: list[tuple[int, _Branch]] = [(0, None)]  # type: ignore[list-item]  # 1-based

    def __len__(self) -> int:
        return len(self._a) - 1

    def push(self, key: int, br: "_Branch") -> None:
        a = self._a
        a.append((key, br))
        k = len(a) - 1
        v = a[k]
        while k > 1 and a[k // 2][0] >= key:
            a[k] = a[k // 2]
            k //= 2
        a[k] = v

    def pop(self) -> "_Branch":
        a = self._a
        top = a[1][1]
        last = a.pop()
        n = len(a) - 1
        if n:
            k = 1
            while k <= n // 2:
                j = k + k
                if j < n and a[j][0] > a[j + 1][0]:
                    j += 1
                if last[0] <= a[j][0]:
                    break
                a[k] = a[j]
                k = j
            a[k] = last
        return top


class TracelbRun(MeasurementRun):
    """One MDA traceroute in progress; ``record`` is the warts Tracelb being filled.

    Driven like :class:`~ixpscamper.prober.trace.TraceRun`: ``start()``,
    the scheduler calls ``send_now()`` in a transmit slot after
    ``io.request_send()``, replies go to ``on_reply()``, and
    ``io.finished()`` is called once the record is final.  If ``io`` has
    ``claim_port(port)`` it is told of each new source port (the sport
    methods vary it), so replies quoting that port come back here.
    """

    def __init__(self, spec: TracelbSpec, io):
        self.spec = spec
        self.io = io
        self.record = Tracelb(
            dst=spec.dst, src=spec.src, rtr=spec.rtr, userid=spec.userid, sport=spec.sport,
            dport=spec.dport, probe_size=tracelb_probe_size(spec.family, spec.method),
            type=int(spec.method), firsthop=spec.firsthop, attempts=spec.attempts,
            confidence=spec.confidence, tos=spec.tos, gaplimit=spec.gaplimit,
            probec_max=spec.probec_max, wait_timeout=spec.wait_us // 1_000_000,
            wait_probe=spec.wait_probe_us // 10_000,
        )
        self.done = False
        self.probes: list[_Probe] = []
        self._nodes: list[_Node] = []
        self._by_addr: dict[IPAddr, _Node] = {}
        self._links: list[_Link] = []
        self._waiting = _Waiting()
        self._branch: Optional[_Branch] = _Branch(None, mode=FIRSTADDR)
        self._flowid_next = spec.first_flowid
        self._timer = None
        self._outstanding: Optional[_Probe] = None
        self._last_tx_ns: Optional[int] = None
        self._claimed: set[int] = set()
        self._src_b = spec.src.packed
        self._dst_b = spec.dst.packed
        hdr = (20 if spec.family == 4 else 40) + (20 if spec.method in TCP_TYPES else 8)
        self._payload_len = self.record.probe_size - hdr

    # -- life cycle -------------------------------------------------------

    def halt(self) -> None:
        if not self.done:
            self.record.errmsg = self.record.errmsg or None
            self._finish()

    def fail(self, stop_data: int = 0, why: str = "") -> None:
        """End the measurement early (e.g. the router never answered ARP)."""
        if not self.done:
            self._finish()

    def _finish(self) -> None:
        self.done = True
        self._cancel_timer()
        r = self.record
        r.nodes = [TracelbNode(addr=n.addr) for n in self._nodes]
        for n, rn in zip(self._nodes, r.nodes):
            if n.q_ttl is not None:
                rn.flags = int(TracelbNodeFlag.QTTL)
                rn.q_ttl = n.q_ttl
        # scamper sorts links by from address, then to address (a link
        # ending in silence after the others)
        def key(link: _Link):
            f, t = link.src, link.to
            return (f.addr.packed if f.addr else b"", t is None,
                    t.addr.packed if t is not None and t.addr else b"")
        links = sorted(self._links, key=key)
        r.links = []
        for i, lk in enumerate(links):
            r.links.append(TracelbLink(from_=lk.src.index, to=lk.to.index if lk.to else None,
                                       sets=[TracelbProbeset(probes=list(ps)) for ps in lk.sets]))
            r.nodes[lk.src.index].links.append(i)
        self.io.finished()

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    # -- choosing and sending probes ----------------------------------------

    def _k(self, n: int) -> int:
        return mda_k(min(max(n, 2), MAX_N), self.spec.confidence)

    def _next_probe(self, br: _Branch) -> tuple[int, int, int, str]:
        """(flowid, ttl, attempt, mode) for the next probe of ``br``."""
        last = br.probes[-1] if br.probes else None
        if last is not None and not last.rec.rxs and last.attempt + 1 < self.spec.attempts:
            return last.flowid, last.ttl, last.attempt + 1, last.mode
        s = self.spec
        if br.mode == FIRSTADDR:
            return self._flowid_next, s.firsthop, 0, FIRSTADDR
        if br.mode == PERPACKET:
            p = br.newnodes[0][1]
            return p.flowid, p.ttl, 0, PERPACKET
        node = br.node
        ttl = br.ttl(s.firsthop)
        if br.clump is not None and br.clump.pool:
            return br.clump.pool.pop(0), ttl, 0, HOP
        if node is not None:
            # as scamper: first the flows known to reach this node, or a node
            # before it with no other next hop, oldest first
            flowid = self._take_flow(node, set())
            if flowid is not None:
                return flowid, ttl, 0, HOP
        if node is None or node.sole:
            # nothing branches before this node: every flow reaches it
            return self._new_flowid(), ttl, 0, HOP
        return self._new_flowid(), node.dist, 0, BRINGFWD

    def _take_flow(self, node: _Node, seen: set[int]) -> Optional[int]:
        """Pop a flow id that reaches ``node``: its own, or one of a parent that leads only here."""
        if node.pool:
            return node.pool.pop(0)
        seen.add(node.index)
        for parent in node.parents:
            if parent.nexthops == 1 and parent.index not in seen:
                flowid = self._take_flow(parent, seen)
                if flowid is not None:
                    return flowid
        return None

    def _new_flowid(self) -> int:
        f = self._flowid_next
        self._flowid_next = (self._flowid_next + 1) & 0xFFFF or 1
        return f

    def build_probe(self, pid: int, flowid: int, ttl: int) -> bytes:
        """The probe with id ``pid`` for flow ``flowid`` at ``ttl``."""
        s = self.spec
        src, dst = self._src_b, self._dst_b
        plen = self._payload_len
        ipid = (pid + 1) & 0xFFFF
        if s.method in UDP_TYPES:
            if s.method == TracelbType.UDP_DPORT:
                sport, dport = s.sport, flowid
            else:
                sport, dport = flowid, s.dport
            payload = packets.paris_udp_payload(src, dst, sport, dport, plen, (pid + 1) & 0xFFFF)
            l4 = packets.udp_segment(src, dst, sport, dport, payload)
            proto = packets.PROTO_UDP
        elif s.method == TracelbType.ICMP_ECHO:
            payload = packets.paris_icmp_payload(src, dst, s.sport, pid, plen, flowid)
            l4 = packets.icmp_echo(src, dst, s.sport, pid, payload)
            proto = packets.PROTO_ICMP if s.family == 4 else packets.PROTO_ICMP6
        else:
            from ..warts.records import TCP_ACK, TCP_SYN
            flags = TCP_SYN if s.method == TracelbType.TCP_SPORT else TCP_ACK
            l4 = packets.tcp_segment(src, dst, flowid, s.dport, flags=flags, window=0)
            proto = packets.PROTO_TCP
        return packets.ip_packet(src, dst, proto, l4, ttl=ttl, tos=s.tos, ipid=ipid, df=True)

    def send_now(self) -> None:
        """Called by the scheduler in a transmit slot: send the next probe."""
        if self.done or self._outstanding is not None:
            return
        br = self._branch
        if br is None:
            return
        if self.record.probec >= self.spec.probec_max or len(self.probes) >= 0xFFFF:
            self._finish()
            return
        flowid, ttl, attempt, mode = self._next_probe(br)
        if self.spec.method in SPORT_TYPES and flowid not in self._claimed:
            self._claimed.add(flowid)
            claim = getattr(self.io, "claim_port", None)
            if claim is not None:
                claim(flowid)
        pid = len(self.probes)
        pkt = self.build_probe(pid, flowid, ttl)
        try:
            tx = self.io.transmit(pkt)
        except OSError as exc:
            self.record.errmsg = f"could not send probe: {exc.strerror or exc}"
            self._finish()
            return
        rec = TracelbProbe(tx=Timeval.from_ns(tx), flowid=flowid, ttl=ttl, attempt=attempt)
        pr = _Probe(pid, flowid, ttl, attempt, mode, br, rec, udp_sum=_udp_sum(pkt))
        self.probes.append(pr)
        br.probes.append(pr)
        self.record.probec += 1
        self._outstanding = pr
        self._last_tx_ns = tx
        now = self.io.now_ns()
        delay = max(0.0, self.spec.wait_us / 1e6 - (now - tx) / 1e9)
        self._cancel_timer()
        self._timer = self.io.clock.callLater(delay, self._on_timeout)

    def _schedule_next(self) -> None:
        """Ask for the next slot, no sooner than wait_probe after the last probe."""
        self._cancel_timer()
        if self._branch is None:
            if not self._waiting:
                self._finish()
                return
            self._branch = self._waiting.pop()
        if self.record.probec >= self.spec.probec_max:
            self._finish()
            return
        due = 0.0
        if self._last_tx_ns is not None:
            due = (self._last_tx_ns + self.spec.wait_probe_us * 1000 - self.io.now_ns()) / 1e9
        if due <= 0:
            self.io.request_send()
        else:
            self._timer = self.io.clock.callLater(due, self._gap_done)

    def _gap_done(self) -> None:
        self._timer = None
        if not self.done:
            self.io.request_send()

    # -- replies and timeouts ------------------------------------------------

    def _on_timeout(self) -> None:
        self._timer = None
        pr = self._outstanding
        if self.done or pr is None:
            return
        self._outstanding = None
        br = pr.branch
        if pr.attempt + 1 < self.spec.attempts:
            self.io.request_send()  # the same flow again, at once
            return
        if br.mode == FIRSTADDR:
            self._add_first(None, None)
        elif pr.mode == BRINGFWD:
            br.fwd_fails += 1
            if br.fwd_fails >= self._k(max(br.n, 2)):
                self._process(br)
        elif br.mode == PERPACKET:
            # scamper decides at the first lost probe: not shown per-flow
            self._process(br)
        else:
            br.l += 1
            if br.k + br.l >= self._k(br.n):
                self._process(br)
        self._schedule_next()

    def match(self, rep: Reply) -> Optional[_Probe]:
        """The probe ``rep`` answers, or None if it is not ours."""
        s = self.spec
        n = len(self.probes)
        if n == 0:
            return None
        if rep.is_icmp:
            echo = s.method == TracelbType.ICMP_ECHO and rep.is_echo_reply
            wanted = (rep.is_time_exceeded or rep.is_unreach) and rep.has_inner and rep.inner_off == 0
            if not wanted and not echo:
                return None
            if echo:
                if rep.src != self._dst_b or rep.icmp_id != s.sport or rep.icmp_seq >= n:
                    return None
                return self.probes[rep.icmp_seq]
            if rep.inner_dst != self._dst_b:
                return None
            if s.method in UDP_TYPES:
                if rep.inner_proto != packets.PROTO_UDP or rep.inner_udp_sum == 0:
                    return None
                pid = rep.inner_udp_sum - 1
                if not 0 <= pid < n:
                    return None
                pr = self.probes[pid]
                if rep.inner_udp_sum != pr.udp_sum:
                    return None
                if s.method == TracelbType.UDP_DPORT:
                    ok = rep.inner_sport == s.sport and rep.inner_dport == pr.flowid
                else:
                    ok = rep.inner_sport == pr.flowid and rep.inner_dport == s.dport
                return pr if ok else None
            if s.method == TracelbType.ICMP_ECHO:
                proto = packets.PROTO_ICMP if rep.family == 4 else packets.PROTO_ICMP6
                if rep.inner_proto != proto or rep.inner_icmp_id != s.sport \
                        or rep.inner_icmp_seq >= n:
                    return None
                return self.probes[rep.inner_icmp_seq]
            if rep.inner_proto != packets.PROTO_TCP or rep.inner_dport != s.dport \
                    or rep.family != 4:
                return None
            pid = rep.inner_ipid - 1
            if not 0 <= pid < n or self.probes[pid].flowid != rep.inner_sport:
                return None
            return self.probes[pid]
        if rep.proto == packets.PROTO_TCP and s.method in TCP_TYPES:
            # a TCP reply names no probe: scamper takes the latest one
            last = self.probes[-1]
            if rep.src == self._dst_b and rep.sport == s.dport and rep.dport == last.flowid:
                return last
        return None

    def on_reply(self, rep: Reply, rx_ns: int, dl: bool) -> bool:
        """Offer a dissected reply; returns True if it was ours and recorded."""
        if self.done:
            return False
        pr = self.match(rep)
        if pr is None:
            return False
        reply = self._make_reply(rep, rx_ns)
        pr.rec.rxs.append(reply)
        if pr is not self._outstanding or len(pr.rec.rxs) > 1:
            return True  # late or duplicate: kept with its probe, nothing else
        self._outstanding = None
        self._cancel_timer()
        br = pr.branch
        addr = reply.reply_from
        if br.mode == FIRSTADDR:
            self._add_first(addr, rep)
        elif pr.mode == BRINGFWD:
            self._bringfwd_reply(br, pr, addr, reply)
        elif br.mode == PERPACKET:
            br.k += 1
            if addr != br.newnodes[0][0]:
                self._process(br)  # another next hop for the same flow: per-packet
            elif br.k == self._k(2):
                br.k += 1  # k(2) answers from the first new node: per-flow
                self._process(br)
        else:
            if all(a != addr for a, _ in br.newnodes):
                # scamper keeps a branch's new nodes sorted by address: they
                # are recorded in that order, and the first one is the one
                # the per-packet check probes again
                br.newnodes.append((addr, pr))
                br.newnodes.sort(key=lambda e: e[0].packed)
                if br.n == len(br.newnodes):
                    br.n += 1
            br.k += 1
            if br.n >= MAX_N or (addr == self.spec.dst and len(br.newnodes) < 2) \
                    or br.k >= self._k(br.n):
                self._process(br)
        self._schedule_next()
        return True

    def _make_reply(self, rep: Reply, rx_ns: int) -> TracelbReply:
        addr = ipaddress.ip_address(rep.src)
        r = TracelbReply(reply_from=addr, reply_rx=Timeval.from_ns(rx_ns),
                         reply_ipid=rep.ipid if rep.family == 4 else 0, reply_ttl=rep.ttl)
        if rep.proto == packets.PROTO_TCP:
            r.reply_flags = int(TracelbReplyFlag.REPLY_TTL | TracelbReplyFlag.TCP)
            r.reply_tcp_flags = rep.tcp_flags
            r.reply_icmp_type = r.reply_icmp_code = 0
            r.reply_icmp_q_ttl = 0
        else:
            r.reply_icmp_type, r.reply_icmp_code = rep.icmp_type, rep.icmp_code
            r.reply_icmp_q_tos = rep.inner_tos if rep.has_inner else 0
            r.reply_icmp_q_ttl = rep.inner_ttl if rep.has_inner else 0
            if rep.icmpext:
                r.reply_icmp_exts = list(rep.icmpext)
        return r

    def _is_ttl_exp(self, r: TracelbReply) -> bool:
        if r.reply_flags & TracelbReplyFlag.TCP:
            return False
        return r.reply_icmp_type == (11 if self.spec.family == 4 else 3)

    def _is_unreach(self, r: TracelbReply) -> bool:
        if r.reply_flags & TracelbReplyFlag.TCP:
            return False
        return r.reply_icmp_type == (3 if self.spec.family == 4 else 1)

    # -- the algorithm's steps ------------------------------------------------

    def _node(self, addr: Optional[IPAddr], dist: int, sole: bool) -> tuple[_Node, bool]:
        """The node for ``addr`` (existing, or new); True if it is new."""
        if addr is not None and addr in self._by_addr:
            return self._by_addr[addr], False
        node = _Node(len(self._nodes), addr, dist, sole)
        self._nodes.append(node)
        if addr is not None:
            self._by_addr[addr] = node
        return node, True

    def _add_first(self, addr: Optional[IPAddr], rep: Optional[Reply]) -> None:
        node, _ = self._node(addr, self.spec.firsthop, True)
        if rep is not None and rep.is_icmp and (rep.is_time_exceeded or rep.is_unreach) \
                and rep.has_inner:
            node.q_ttl = rep.inner_ttl
        self._branch = None
        if rep is not None and (not rep.is_time_exceeded or addr == self.spec.dst):
            return  # cannot probe beyond it
        # the first flow id is used again for the first hop's next hops
        self._waiting.push(node.depth, _Branch(node, mode=HOP))

    def _bringfwd_reply(self, br: _Branch, pr: _Probe, addr: IPAddr, reply: TracelbReply) -> None:
        node = br.node
        assert node is not None
        if not self._is_ttl_exp(reply):
            br.fwd_fails += 1
        elif addr == node.addr:
            node.pool.append(pr.flowid)
            br.fwd_fails = 0
            return
        else:
            other = self._by_addr.get(addr)
            if other is not None and other.dist == pr.ttl:
                other.pool.append(pr.flowid)
            br.fwd_fails += 1
        if br.fwd_fails >= self._k(max(br.n, 2)):
            self._process(br)

    def _losses(self, br: _Branch) -> tuple[int, int]:
        """(flows without any reply, flows with several replies or repliers) among hop probes."""
        lost = multi = 0
        groups: list[list[_Probe]] = []
        for p in br.probes:
            if p.mode != HOP:
                continue
            if groups and groups[-1][0].flowid == p.flowid:
                groups[-1].append(p)
            else:
                groups.append([p])
        for g in groups:
            if not any(p.rec.rxs for p in g):
                lost += 1
            multi += sum(1 for p in g if len(p.rec.rxs) > 1)
            addrs = [p.rec.rxs[0].reply_from for p in g if len(p.rec.rxs) == 1]
            multi += sum(1 for a in addrs[1:] if a != addrs[0])
        return lost, multi

    def _process(self, br: _Branch) -> None:
        """The branch has been probed enough: record its links, queue the next hops."""
        if br.mode == HOP and br.node is not None:
            lost, multi = self._losses(br)
            # several next hops right after the first node, or after a clump,
            # are a clump too (scamper: only a hop-probing branch checks per-packet)
            first = br.node is self._nodes[0] and br.clump is None
            if lost or multi or (len(br.newnodes) > 1 and (first or br.clump is not None)):
                self._process_clump(br)
                return
        if br.mode == PERPACKET:
            lost, multi = self._losses(br)
            if br.k <= self._k(2) or lost or multi:
                # per-packet load balancing (or no answer to tell): a clump
                self._process_clump(br)
                return
        if br.mode == HOP and len(br.newnodes) > 1 and not br.checked_perpacket \
                and br.node is not None and br.node is not self._nodes[0]:
            # is it per-flow?  send the first new node's flow again
            br.checked_perpacket = True
            br.mode = PERPACKET
            br.k = br.l = 0
            return
        self._branch = None
        src = br.node
        if src is None:
            return
        # the per-packet check's probes are recorded with the link their
        # replies name, as scamper records them, but their flow id (already
        # a hop probe's) is not pooled again
        hop_probes = [p for p in br.probes if p.mode in (HOP, PERPACKET)]
        clump = br.clump
        for addr, _first in br.newnodes:
            to, new = self._node(addr, br.ttl(self.spec.firsthop),
                                 src.sole and len(br.newnodes) == 1)
            first = _first.rec.rxs[0]
            if new and not first.reply_flags & TracelbReplyFlag.TCP \
                    and (self._is_ttl_exp(first) or self._is_unreach(first)):
                to.q_ttl = first.reply_icmp_q_ttl
            recorded: list[TracelbProbe] = []
            keep_going = new and addr != self.spec.dst
            i = 0
            while i < len(hop_probes):
                j = i
                while j < len(hop_probes) and hop_probes[j].flowid == hop_probes[i].flowid:
                    j += 1
                group = hop_probes[i:j]
                replies = [r for p in group for r in p.rec.rxs]
                if any(r.reply_from == addr for r in replies):
                    recorded.extend(p.rec for p in group)
                    if not all(self._is_ttl_exp(r) for r in replies if r.reply_from == addr):
                        keep_going = False
                    elif group[0].mode != PERPACKET:
                        to.pool.append(group[0].flowid)
                i = j
            if not recorded:
                continue
            if clump is not None:
                # the silent hops end here: the clump's link reaches this node
                clump.link.to = to
                clump.link.sets.append(recorded)
            else:
                self._links.append(_Link(src, to, [recorded]))
                src.nexthops += 1
            if new or src.depth + 1 < to.depth:
                to.depth = src.depth + 1
            to.parents.append(src)
            if keep_going:
                self._waiting.push(to.depth, _Branch(to, mode=HOP))

    def _process_clump(self, br: _Branch) -> None:
        """A hop with losses or several repliers per flow: one more probeset on a link to ``*``."""
        self._branch = None
        src = br.node
        assert src is not None
        clump = br.clump
        gaplimit = self.spec.gaplimit
        halt = False
        if not br.newnodes and (clump is not None or src is not self._nodes[0]):
            if gaplimit < 2:
                halt = True
            elif clump is not None and len(clump.link.sets) + 1 >= gaplimit:
                # this hop and the silent ones before it: gaplimit in a row ends it
                silent = 1
                for ps in reversed(clump.link.sets):
                    if silent == gaplimit or any(p.rxs for p in ps):
                        break
                    silent += 1
                halt = silent == gaplimit
        probes = [p for p in br.probes if p.mode not in (BRINGFWD,)]
        pool: list[int] = []
        i = 0
        while i < len(probes):
            j = i
            while j < len(probes) and probes[j].flowid == probes[i].flowid:
                if any(not self._is_ttl_exp(r) for r in probes[j].rec.rxs):
                    halt = True  # an answer that is not a time exceeded: nothing beyond
                j += 1
            if not halt and probes[i].mode != PERPACKET:
                pool.append(probes[i].flowid)
            i = j
        hopset = [p.rec for p in probes]
        if clump is None:
            link = _Link(src, None, [hopset])
            self._links.append(link)
            src.nexthops += 1
            clump = _Clump(link)
        else:
            clump.link.sets.append(hopset)
        if not halt:
            clump.pool = pool
            # the clump's link, to nowhere yet, is one more on the path
            self._waiting.push(src.depth + 1, _Branch(src, mode=HOP, clump=clump))


def _udp_sum(pkt: bytes) -> int:
    if pkt[0] >> 4 == 4:
        off, proto = (pkt[0] & 0x0F) * 4, pkt[9]
    else:
        off, proto = 40, pkt[6]
    if proto != packets.PROTO_UDP or len(pkt) < off + 8:
        return 0
    return int.from_bytes(pkt[off + 6:off + 8], "big")
