"""A simulated network for tests of the prober and its users (no sockets, a Clock).

``SimNet`` has the methods of :class:`ixpscamper.prober.net.Network`.  Each
probe sent is answered the way the lab's routers answer: a time-exceeded
from the hop at the probe's TTL, and from the destination a port
unreachable (UDP), echo reply (ICMP echo), timestamp reply or RST (TCP).
Replies are handed to the prober after ``rtt`` seconds of Clock time.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import Optional

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from . import packets
from .net import ProberError, Route, SOURCE_DL, SOURCE_SOCK
from .scheduler import Prober

SRC4 = "192.0.2.10"
SRC6 = "2001:db8:1::10"
MAC_RB = bytes.fromhex("02000000000b")


def ip(a: str) -> bytes:
    return ipaddress.ip_address(a).packed


def icmp_error(src: bytes, dst: bytes, typ: int, code: int, quote: bytes, ttl: int = 64,
               ipid: int = 0x1234, extra: bytes = b"") -> bytes:
    if len(src) == 4:
        body = struct.pack("!BBHI", typ, code, 0, 0) + quote[:548] + extra
        body = body[:2] + struct.pack("!H", packets.checksum(body)) + body[4:]
        return packets.ip_packet(src, dst, packets.PROTO_ICMP, body, ttl=ttl, tos=0xC0, ipid=ipid, df=False)
    body = struct.pack("!BBHI", typ, code, 0, 0) + quote[:1232] + extra
    return packets.ipv6_header(src, dst, packets.PROTO_ICMP6, len(body), hlim=ttl) + body


class SimNet:
    """A fake :class:`Network`: routes, neighbours and a path per destination."""

    def __init__(self, clock: Clock, paths: dict[str, list[Optional[str]]], rtt: float = 0.001):
        self.clock = clock
        self.paths = {ipaddress.ip_address(k): [None if h is None else ipaddress.ip_address(h) for h in v]
                      for k, v in paths.items()}
        self.rtt = rtt
        self.prober: Optional[Prober] = None
        self.sent: list[tuple[float, str, bytes]] = []  # (time, "ip"|"dl", packet)
        self.dl_macs: list[bytes] = []
        self.neighbours: dict[str, bytes] = {"192.0.2.2": MAC_RB, "2001:db8:1::2": MAC_RB}
        self.direct = {"192.0.2.1", "192.0.2.2", "192.0.2.99", "2001:db8:1::1", "2001:db8:1::2",
                       "2001:db8:1::99"}
        self.unreach: dict[str, tuple[int, int]] = {}  # hop address -> (type, code) it sends instead
        self.dup_dst = False  # the destination answers every probe twice
        self.listening_dl: dict[int, int] = {}
        self.reserved: set = set()
        self.closed = False
        self.mute_after: Optional[int] = None

    # -- Network interface ------------------------------------------------

    def check_privileges(self) -> None:
        pass

    def route(self, dst: str) -> Route:
        fam6 = ":" in dst
        if dst in self.direct:
            return Route(2, "eth0", SRC6 if fam6 else SRC4, None, 1)
        if dst.startswith("203.0.113."):
            raise ProberError(f"no route to {dst}: no route")
        return Route(2, "eth0", SRC6 if fam6 else SRC4, "2001:db8:1::1" if fam6 else "192.0.2.1", 1)

    def source_for(self, dst: str) -> str:
        return SRC6 if ":" in dst else SRC4

    def resolve(self, ifindex: int, addr: str, src: str) -> defer.Deferred:
        d: defer.Deferred = defer.Deferred()
        mac = self.neighbours.get(addr)
        if mac is not None:
            self.clock.callLater(0.0005, d.callback, mac)
        else:
            self.clock.callLater(1.5, d.errback, Failure(ProberError(f"no ARP reply from {addr} on eth0")))
        return d

    def listen_sock(self, family: int) -> None:
        pass

    def listen_dl(self, ifindex: int) -> None:
        self.listening_dl[ifindex] = self.listening_dl.get(ifindex, 0) + 1

    def unlisten_dl(self, ifindex: int) -> None:
        self.listening_dl[ifindex] -= 1

    def reserve_port(self, family: int, proto: int, port: int) -> bool:
        if (family, proto, port) in self.reserved:
            return False
        self.reserved.add((family, proto, port))
        return True

    def release_port(self, family: int, proto: int, port: int) -> None:
        self.reserved.discard((family, proto, port))

    def close(self) -> None:
        self.closed = True

    def now_ns(self) -> int:
        return int(round(self.clock.seconds() * 1e9))

    def send_ip(self, family: int, dst: str, pkt: bytes) -> int:
        self.sent.append((self.clock.seconds(), "ip", pkt))
        self._answer(pkt)
        return self.now_ns()

    def send_dl(self, ifindex: int, mac: bytes, family: int, pkt: bytes) -> int:
        self.sent.append((self.clock.seconds(), "dl", pkt))
        self.dl_macs.append(mac)
        self._answer(pkt)
        return self.now_ns()

    # -- the simulated Internet ---------------------------------------------

    def deliver(self, pkt: bytes, delay: Optional[float] = None) -> None:
        """Hand ``pkt`` to the prober after ``delay`` (default: the RTT), as the
        kernel would: to the packet sockets (if any listen) and, if it is ICMP, to
        the ICMP socket (the same kernel timestamp on both)."""
        d = self.rtt if delay is None else delay

        def go() -> None:
            rx = self.now_ns()
            if self.listening_dl.get(2, 0) > 0:
                self.prober._on_packet(SOURCE_DL, 2, rx, pkt)
            r = packets.dissect(pkt)
            if r is not None and r.is_icmp:
                self.prober._on_packet(SOURCE_SOCK, 0, rx, pkt)

        self.clock.callLater(d, go)

    def _answer(self, pkt: bytes) -> None:
        if self.mute_after is not None and len(self.sent) > self.mute_after:
            return
        p = packets.dissect(pkt)
        dst = ipaddress.ip_address(p.dst)
        path = self.paths.get(dst)
        if path is None:
            return
        if p.ttl < len(path):
            hop = path[p.ttl - 1]
            if hop is None:
                return
            typ, code = self.unreach.get(str(hop), (11 if p.family == 4 else 3, 0))
            quote = bytearray(pkt)
            if p.family == 4:
                quote[8] = 1
                quote[10:12] = b"\0\0"
            else:
                quote[7] = 1
            rep = icmp_error(hop.packed, p.src, typ, code, bytes(quote), ttl=65 - p.ttl)
            self.deliver(rep)
            return
        hop = path[-1]
        if hop is None:
            return
        reps = self._dst_answer(p, pkt, hop.packed)
        for rep in reps:
            self.deliver(rep)
            if self.dup_dst:
                self.deliver(rep)

    def _dst_answer(self, p: packets.Reply, pkt: bytes, me: bytes) -> list[bytes]:
        ttl = 64 - len(self.paths[ipaddress.ip_address(p.dst)]) + 1
        if p.proto == packets.PROTO_UDP:
            quote = bytearray(pkt)
            if p.family == 4:
                quote[8] = 1
            else:
                quote[7] = 1
            typ, code = (3, 3) if p.family == 4 else (1, 4)
            return [icmp_error(me, p.src, typ, code, bytes(quote), ttl=ttl)]
        if p.proto in (packets.PROTO_ICMP, packets.PROTO_ICMP6):
            ihl = (pkt[0] & 0x0F) * 4 if p.family == 4 else 40
            body = bytearray(pkt[ihl:])
            if p.family == 4 and body[0] == 13:  # timestamp request
                body[0] = 14
                body[12:16] = struct.pack("!I", 1000)
                body[16:20] = struct.pack("!I", 1001)
            else:
                body[0] = 0 if p.family == 4 else 129
            body[2:4] = b"\0\0"
            if p.family == 4:
                body[2:4] = struct.pack("!H", packets.checksum(bytes(body)))
                return [packets.ip_packet(me, p.src, packets.PROTO_ICMP, bytes(body), ttl=ttl, ipid=77, df=False)]
            return [packets.ipv6_header(me, p.src, packets.PROTO_ICMP6, len(body), hlim=ttl) + bytes(body)]
        if p.proto == packets.PROTO_TCP:
            seg = packets.tcp_segment(me, p.src, p.dport, p.sport, flags=0x14, seq=0, ack=1)
            return [packets.ip_packet(me, p.src, packets.PROTO_TCP, seg, ttl=ttl, ipid=0, df=True)]
        return []


def make_prober(paths: dict[str, list[Optional[str]]], pps: int = 20, window: int = 0, rtt: float = 0.001):
    clock = Clock()
    clock.advance(1_000_000)
    net = SimNet(clock, paths, rtt=rtt)
    prober = Prober(clock, pps=pps, window=window, network=net, pid=0x1234)
    net.prober = prober
    return clock, net, prober


def run_until(clock: Clock, deferreds: list[defer.Deferred], limit: float = 600.0):
    """Advance the clock until every deferred has fired; returns their results."""
    results: list = [None] * len(deferreds)
    fired = [False] * len(deferreds)
    for i, d in enumerate(deferreds):
        def cb(r, i=i):
            results[i] = r
            fired[i] = True
        d.addBoth(cb)
    t0 = clock.seconds()
    while not all(fired) and clock.seconds() - t0 < limit:
        calls = clock.getDelayedCalls()
        if not calls:
            break
        nxt = min(c.getTime() for c in calls)
        clock.advance(max(0.0, nxt - clock.seconds()))
    if not all(fired):
        raise AssertionError("tasks did not finish")
    return results
