"""The prober's network layer: raw and packet sockets as reactor readers.

Everything here is non-blocking and runs in the reactor thread:

* probes without ``-r`` leave through raw ``IPPROTO_RAW`` sockets (the
  prober builds the whole IP header);
* probes with ``-r`` leave as Ethernet frames through an ``AF_PACKET``
  socket, addressed to the chosen router's MAC whatever the routing table says;
* replies arrive on raw ICMP/ICMPv6 sockets ("sock" path) and on
  ``AF_PACKET`` sockets bound to an interface ("dl" path), both with kernel
  receive timestamps (``SO_TIMESTAMPNS``);
* routes and source addresses come from the kernel over rtnetlink, with a
  small hand-rolled ``RTM_GETROUTE`` query (:class:`RouteQuery`) because
  pyroute2 costs milliseconds per lookup and every task needs one;
  neighbour entries and interface MACs come through pyroute2; a missing
  neighbour is resolved with our own ARP request / neighbour solicitation.

:class:`Network` is the interface the scheduler uses; tests substitute a
fake with the same methods.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import struct
import time
from typing import Callable, Optional

import attrs
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime, IReadDescriptor
from twisted.logger import Logger
from twisted.python import failure
from zope.interface import implementer

from . import packets

__all__ = [
    "ProberError", "PermissionProblem", "Route", "Network", "SocketReader",
    "SOURCE_SOCK", "SOURCE_DL", "now_ns", "RouteQuery", "RouteLookupError",
    "encode_route_get", "decode_route_reply",
]

log = Logger()

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
PACKET_OUTGOING = 4
RTN_UNICAST = 1
RTN_LOCAL = 2
_TIMESPEC = struct.Struct("@qq")
_NUD_USABLE = 0x02 | 0x04 | 0x08 | 0x10 | 0x40 | 0x80  # REACHABLE STALE DELAY PROBE NOARP PERMANENT

MAC_CACHE_SECONDS = 30.0

SOURCE_SOCK = "sock"
SOURCE_DL = "dl"

now_ns = time.time_ns


class ProberError(Exception):
    """A measurement could not be set up (bad router, no route, ...); one line."""


class PermissionProblem(ProberError):
    """Raw or packet sockets could not be opened for lack of privilege."""


def _no_permission(what: str) -> PermissionProblem:
    return PermissionProblem(
        f"cannot open {what}: permission denied (run as root or grant CAP_NET_RAW)")


def _open(family: int, kind: int, proto: int, what: str) -> socket.socket:
    try:
        s = socket.socket(family, kind, proto)
    except PermissionError:
        raise _no_permission(what) from None
    except OSError as exc:
        if exc.errno in (errno.EPERM, errno.EACCES):
            raise _no_permission(what) from None
        raise ProberError(f"cannot open {what}: {exc.strerror}") from None
    s.setblocking(False)
    return s


@attrs.frozen
class Route:
    """Where the kernel would send a packet: interface, source, next hop."""

    ifindex: int
    ifname: str
    src: Optional[str]
    gateway: Optional[str]
    type: int


# -- route lookups over a plain rtnetlink socket ---------------------------------

NLMSG_ERROR = 2
RTM_NEWROUTE = 24
RTM_GETROUTE = 26
NLM_F_REQUEST = 0x1
RT_TABLE_MAIN = 254
RTA_DST = 1
RTA_OIF = 4
RTA_GATEWAY = 5
RTA_PREFSRC = 7
_NLMSGHDR = struct.Struct("=IHHII")
_RTMSG = struct.Struct("=BBBBBBBBI")
_RTATTR = struct.Struct("=HH")
_NLA_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED / NLA_F_NET_BYTEORDER


class RouteLookupError(Exception):
    """The kernel refused a route lookup; ``code`` is the (positive) errno."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


def encode_route_get(seq: int, dst: str) -> bytes:
    """The ``RTM_GETROUTE`` request ``ip route get DST`` sends (as pyroute2 does).

    Raises ``OSError`` / ``ValueError`` when ``dst`` is not an IP address.
    """
    fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
    addr = socket.inet_pton(fam, dst)
    rta = _RTATTR.pack(_RTATTR.size + len(addr), RTA_DST) + addr  # 4 or 16 bytes: aligned
    body = _RTMSG.pack(fam, len(addr) * 8, 0, 0, RT_TABLE_MAIN, 0, 0, 0, 0) + rta
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), RTM_GETROUTE, NLM_F_REQUEST, seq, 0) + body


def decode_route_reply(data: bytes, seq: int) -> Optional[tuple[int, int, Optional[str], Optional[str]]]:
    """Find the answer to request ``seq`` in one datagram from the kernel.

    Returns ``(route type, oif, prefsrc, gateway)``; None if the datagram
    holds no answer to ``seq`` (a stale message); raises
    :class:`RouteLookupError` for a kernel error, ``ValueError`` for a
    malformed message.
    """
    off = 0
    while off + _NLMSGHDR.size <= len(data):
        length, kind, _flags, mseq, _pid = _NLMSGHDR.unpack_from(data, off)
        if length < _NLMSGHDR.size or off + length > len(data):
            raise ValueError("truncated netlink message")
        body = data[off + _NLMSGHDR.size:off + length]
        off += (length + 3) & ~3
        if mseq != seq:
            continue
        if kind == NLMSG_ERROR:
            if len(body) < 4:
                raise ValueError("truncated netlink error")
            err = struct.unpack_from("=i", body)[0]
            if err == 0:  # an acknowledgement, not the answer
                continue
            raise RouteLookupError(-err)
        if kind != RTM_NEWROUTE:
            continue
        if len(body) < _RTMSG.size:
            raise ValueError("truncated route message")
        fam, *_rest, rtype, _rflags = _RTMSG.unpack_from(body)
        oif = 0
        src = gateway = None
        pos = _RTMSG.size
        while pos + _RTATTR.size <= len(body):
            alen, atype = _RTATTR.unpack_from(body, pos)
            if alen < _RTATTR.size or pos + alen > len(body):
                raise ValueError("truncated route attribute")
            value = body[pos + _RTATTR.size:pos + alen]
            atype &= _NLA_TYPE_MASK
            if atype == RTA_OIF and len(value) >= 4:
                oif = struct.unpack_from("=I", value)[0]
            elif atype in (RTA_PREFSRC, RTA_GATEWAY) and fam in (socket.AF_INET, socket.AF_INET6):
                want = 4 if fam == socket.AF_INET else 16
                if len(value) != want:
                    raise ValueError("bad address length in route attribute")
                text = socket.inet_ntop(fam, value)
                if atype == RTA_PREFSRC:
                    src = text
                else:
                    gateway = text
            pos += (alen + 3) & ~3
        return rtype, oif, src, gateway
    return None


class RouteQuery:
    """``ip route get`` over one rtnetlink socket, in tens of microseconds.

    The kernel answers a route request while it is being sent (rtnetlink
    runs in the sender's context), so the reply is already queued when
    ``sendto`` returns: the socket is non-blocking, and a missing reply
    is an error (``BlockingIOError``) rather than a stall of the reactor.
    """

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        try:
            self.sock.bind((0, 0))
            self.sock.setblocking(False)
        except OSError:
            self.sock.close()
            raise
        self._seq = 0

    def get(self, dst: str) -> tuple[int, int, Optional[str], Optional[str]]:
        """``(route type, oif, prefsrc, gateway)`` towards ``dst``.

        Raises :class:`RouteLookupError` when the kernel refuses (no route),
        ``ValueError`` for a bad address or a malformed reply, ``OSError``
        when the socket fails.
        """
        self._seq = (self._seq % 0x7FFFFFFF) + 1
        seq = self._seq
        self.sock.sendto(encode_route_get(seq, dst), (0, 0))
        for _ in range(16):  # skip replies not ours (the socket is replaced after any error)
            got = decode_route_reply(self.sock.recv(65536), seq)
            if got is not None:
                return got
        raise ValueError("no reply to the route request")

    def close(self) -> None:
        self.sock.close()


def _route_error(dst: str, code: Optional[int], fallback: str) -> ProberError:
    reason = errno.errorcode.get(code, "") if code else ""
    msg = "no route" if code in (errno.ENETUNREACH, errno.EHOSTUNREACH) else (reason or fallback)
    return ProberError(f"no route to {dst}: {msg}")


def _ts_from(ancdata: list, default_ns: int) -> tuple[int, dict]:
    ts = default_ns
    extra: dict = {}
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= _TIMESPEC.size:
            sec, nsec = _TIMESPEC.unpack_from(data)
            ts = sec * 1_000_000_000 + nsec
        elif level == socket.IPPROTO_IPV6 and kind == socket.IPV6_HOPLIMIT and len(data) >= 4:
            extra["hlim"] = struct.unpack("@i", data[:4])[0]
        elif level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO and len(data) >= 16:
            extra["dst"] = bytes(data[:16])
    return ts, extra


@implementer(IReadDescriptor)
class SocketReader:
    """A socket registered with the reactor as a reader.

    Each readable event drains up to ``burst`` datagrams (so a storm cannot
    starve timers) and hands ``(data, ancdata, address, rx_ns)`` to ``handler``.
    """

    def __init__(self, reactor, sock: socket.socket,
                 handler: Callable[[bytes, list, object, int], None], name: str, burst: int = 256):
        self.reactor = reactor
        self.sock = sock
        self.handler = handler
        self.name = name
        self.burst = burst
        self._fd = sock.fileno()
        self.reactor.addReader(self)

    def fileno(self) -> int:
        return self._fd

    def logPrefix(self) -> str:
        return f"prober-{self.name}"

    def doRead(self):
        for _ in range(self.burst):
            if self.sock is None:  # closed by a handler
                return None
            try:
                data, anc, _flags, addr = self.sock.recvmsg(65535, 256)
            except (BlockingIOError, InterruptedError):
                return None
            except OSError as exc:
                log.warn("{name}: receive error: {err}", name=self.name, err=exc.strerror)
                return None
            try:
                ts, _ = _ts_from(anc, 0)
                self.handler(data, anc, addr, ts or now_ns())
            except Exception:
                log.failure("{name}: error handling a packet", name=self.name)
        return None

    def connectionLost(self, reason: failure.Failure) -> None:
        self.close()

    def close(self) -> None:
        if self.sock is not None:
            self.reactor.removeReader(self)
            self.sock.close()
            self.sock = None


def _big_rcvbuf(s: socket.socket, size: int = 16 << 20) -> None:
    # a storm must not push replies out of the queue: ask for a big buffer,
    # beyond net.core.rmem_max when privileged (SO_RCVBUFFORCE)
    try:
        s.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_RCVBUFFORCE", 33), size)
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)


def _mac_bytes(text: str) -> bytes:
    return bytes(int(x, 16) for x in text.split(":"))


class Network:
    """Sockets, routes and neighbours for the prober (one per Prober).

    ``on_packet(source, ifindex, rx_ns, ip_packet)`` is called for every IP
    packet received; ``source`` is :data:`SOURCE_SOCK` (raw ICMP sockets) or
    :data:`SOURCE_DL` (a packet socket on ``ifindex``).
    """

    def __init__(self, reactor: IReactorTime, on_packet: Callable[[str, int, int, bytes], None]):
        self.reactor = reactor
        self.on_packet = on_packet
        self._icmp: dict[int, SocketReader] = {}
        self._dl: dict[int, SocketReader] = {}
        self._dl_users: dict[int, int] = {}
        self._arp: dict[int, SocketReader] = {}
        self._raw_tx: dict[int, socket.socket] = {}
        self._dl_tx: Optional[socket.socket] = None
        # pyroute2 takes half a second to import: pay that now, not when the
        # first task's clock is already running
        from pyroute2 import IPRoute  # noqa: PLC0415

        self._iproute_cls = IPRoute
        self._ipr = None
        self._rq: Optional[RouteQuery] = None
        self._rq_broken = False
        self._ifnames: dict[int, str] = {}
        self._if_macs: dict[int, tuple[bytes, float]] = {}
        # answers to our own ARP / ND (the kernel does not learn from them)
        self._macs: dict[tuple[int, bytes], tuple[bytes, float]] = {}
        self._pending_nd: dict[tuple[int, bytes], list[defer.Deferred]] = {}
        self._reserved: dict[tuple[int, int, int], socket.socket] = {}

    # -- privileges -------------------------------------------------------

    def check_privileges(self) -> None:
        """Raise :class:`PermissionProblem` now if raw sockets are not allowed."""
        self._raw_sender(4)

    # -- routes and neighbours -------------------------------------------

    def _rtnl(self):
        if self._ipr is None:
            self._ipr = self._iproute_cls()
        return self._ipr

    def _route_query(self) -> Optional[RouteQuery]:
        if self._rq is None and not self._rq_broken:
            try:
                self._rq = RouteQuery()
            except OSError as exc:
                self._rq_broken = True
                log.info("route lookups through pyroute2: no rtnetlink socket ({err})", err=exc)
        return self._rq

    def route(self, dst: str) -> Route:
        """The kernel's route to ``dst`` (``ip route get``)."""
        rq = self._route_query()
        if rq is not None:
            try:
                rtype, oif, src, gateway = rq.get(dst)
            except RouteLookupError as exc:
                raise _route_error(dst, exc.code, str(exc)) from None
            except (OSError, ValueError) as exc:
                # something odd on our socket: start afresh next time, and
                # answer this one the slow way
                log.info("route lookup for {dst} through pyroute2: {err}", dst=dst, err=exc)
                rq.close()
                self._rq = None
            else:
                return Route(ifindex=oif, ifname=self.ifname(oif), src=src, gateway=gateway, type=rtype)
        return self._route_pyroute2(dst)

    def _route_pyroute2(self, dst: str) -> Route:
        try:
            msgs = list(self._rtnl().route("get", dst=dst))
        except Exception as exc:  # pyroute2 raises NetlinkError with an errno
            raise _route_error(dst, getattr(exc, "code", None), str(exc)) from None
        m = msgs[0]
        oif = m.get("RTA_OIF") or 0
        return Route(ifindex=oif, ifname=self.ifname(oif), src=m.get("RTA_PREFSRC"),
                     gateway=m.get("RTA_GATEWAY"), type=m["type"])

    def ifname(self, ifindex: int) -> str:
        name = self._ifnames.get(ifindex)
        if name is None:
            try:
                name = socket.if_indextoname(ifindex)
            except (OSError, OverflowError):
                try:
                    links = list(self._rtnl().link("get", index=ifindex))
                    name = links[0].get("IFLA_IFNAME") or str(ifindex)
                except Exception:
                    return str(ifindex)
            self._ifnames[ifindex] = name
        return name

    def if_mac(self, ifindex: int) -> bytes:
        # kept a little while: a burst of tasks via routers on one LAN asks
        # for the same interface's MAC again and again
        now = self.reactor.seconds()
        cached = self._if_macs.get(ifindex)
        if cached is not None and now - cached[1] < MAC_CACHE_SECONDS:
            return cached[0]
        links = list(self._rtnl().link("get", index=ifindex))
        mac = _mac_bytes(links[0].get("IFLA_ADDRESS") or "00:00:00:00:00:00")
        self._if_macs[ifindex] = (mac, now)
        return mac

    def source_for(self, dst: str) -> str:
        """The source address the kernel would use towards ``dst``."""
        r = self.route(dst)
        if r.src:
            return r.src
        fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
        with socket.socket(fam, socket.SOCK_DGRAM) as s:
            s.connect((dst, 9))
            return s.getsockname()[0]

    def kernel_neighbour(self, ifindex: int, addr: str) -> Optional[bytes]:
        """The MAC of ``addr`` on ``ifindex`` if the kernel holds a usable entry."""
        fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
        try:
            entries = list(self._rtnl().neigh("dump", family=fam, ifindex=ifindex))
        except Exception:
            return None
        want = ipaddress.ip_address(addr)
        for e in entries:
            dst = e.get("NDA_DST")
            mac = e.get("NDA_LLADDR")
            if dst is None or mac is None or e.get("ifindex") != ifindex:
                continue
            if ipaddress.ip_address(dst) == want and e.get("state", 0) & _NUD_USABLE:
                return _mac_bytes(mac)
        return None

    def resolve(self, ifindex: int, addr: str, src: str, tries: int = 3,
                interval: float = 0.5) -> defer.Deferred:
        """Resolve ``addr``'s MAC on ``ifindex``: the kernel table, else ARP / ND.

        Fires with the MAC bytes, or fails with :class:`ProberError` after
        ``tries`` unanswered requests ``interval`` seconds apart.
        """
        mac = self.kernel_neighbour(ifindex, addr)
        if mac is not None:
            return defer.succeed(mac)
        target = ipaddress.ip_address(addr).packed
        cached = self._macs.get((ifindex, target))
        if cached is not None and self.reactor.seconds() - cached[1] < MAC_CACHE_SECONDS:
            return defer.succeed(cached[0])
        key = (ifindex, target)
        d: defer.Deferred = defer.Deferred()
        waiting = self._pending_nd.get(key)
        if waiting is not None:
            waiting.append(d)
            return d
        self._pending_nd[key] = [d]
        my_mac = self.if_mac(ifindex)
        src_b = ipaddress.ip_address(src).packed
        if len(target) == 4:
            self._arp_reader(ifindex)
        else:
            self._icmp_reader(6)
        state = {"left": tries, "call": None}

        def send_one() -> None:
            if key not in self._pending_nd:
                return
            if state["left"] == 0:
                waiters = self._pending_nd.pop(key, [])
                err = ProberError(f"no {'ARP' if len(target) == 4 else 'neighbour discovery'} reply "
                                  f"from {addr} on {self.ifname(ifindex)}")
                for w in waiters:
                    w.errback(failure.Failure(err))
                return
            state["left"] -= 1
            try:
                if len(target) == 4:
                    frame = packets.arp_request(my_mac, src_b, target)
                    self._dl_sender().sendto(frame, (self.ifname(ifindex), ETH_P_ARP, 0, 1, b"\xff" * 6))
                else:
                    ns = packets.neighbour_solicit(src_b, target, my_mac)
                    pkt = packets.ipv6_header(src_b, packets.solicited_node(target), packets.PROTO_ICMP6,
                                              len(ns), hlim=255) + ns
                    mcast_mac = b"\x33\x33" + packets.solicited_node(target)[12:]
                    self._dl_sender().sendto(pkt, (self.ifname(ifindex), ETH_P_IPV6, 0, 1, mcast_mac))
            except OSError as exc:
                log.warn("neighbour request for {addr} failed: {err}", addr=addr, err=exc.strerror)
            state["call"] = self.reactor.callLater(interval, send_one)

        send_one()
        return d

    def _neighbour_answer(self, ifindex: Optional[int], addr: bytes, mac: bytes) -> None:
        for key in list(self._pending_nd):
            if key[1] == addr and (ifindex is None or key[0] == ifindex):
                self._macs[key] = (mac, self.reactor.seconds())
                for w in self._pending_nd.pop(key):
                    w.callback(mac)

    # -- receivers ---------------------------------------------------------

    def _icmp_reader(self, family: int) -> SocketReader:
        r = self._icmp.get(family)
        if r is not None:
            return r
        if family == 4:
            s = _open(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP, "a raw ICMP socket")
        else:
            s = _open(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6, "a raw ICMPv6 socket")
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
        s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        _big_rcvbuf(s)
        handler = self._on_icmp4 if family == 4 else self._on_icmp6
        r = SocketReader(self.reactor, s, handler, f"icmp{family}")
        self._icmp[family] = r
        return r

    def listen_sock(self, family: int) -> None:
        """Make sure replies of ``family`` are received on the raw ICMP socket."""
        self._icmp_reader(family)

    def _on_icmp4(self, data: bytes, anc: list, addr, ts: int) -> None:
        self.on_packet(SOURCE_SOCK, 0, ts, data)

    def _on_icmp6(self, data: bytes, anc: list, addr, ts: int) -> None:
        _, extra = _ts_from(anc, ts)
        if len(data) >= 32 and data[0] == 136:  # neighbour advertisement
            target = bytes(data[8:24])
            mac = None
            opts = data[24:]
            while len(opts) >= 8 and opts[1]:
                if opts[0] == 2 and len(opts) >= 8:
                    mac = bytes(opts[2:8])
                opts = opts[opts[1] * 8:]
            if mac is not None:
                self._neighbour_answer(None, target, mac)
            return
        src = socket.inet_pton(socket.AF_INET6, addr[0].split("%")[0])
        dst = extra.get("dst", b"\0" * 16)
        # scamper reads no traffic class from an ICMPv6 socket: its tos is 0.
        pkt = packets.ipv6_from_parts(src, dst, extra.get("hlim", 0) & 0xFF, packets.PROTO_ICMP6, data)
        self.on_packet(SOURCE_SOCK, 0, ts, pkt)

    def listen_dl(self, ifindex: int) -> None:
        """Receive every IP packet on ``ifindex`` through a packet socket (refcounted)."""
        self._dl_users[ifindex] = self._dl_users.get(ifindex, 0) + 1
        if ifindex in self._dl:
            return
        s = _open(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL), "a packet socket")
        s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        _big_rcvbuf(s)
        s.bind((self.ifname(ifindex), ETH_P_ALL))

        def handler(data: bytes, anc: list, addr, ts: int, ifindex=ifindex) -> None:
            # addr: (ifname, proto, pkttype, hatype, hwaddr)
            if addr[2] == PACKET_OUTGOING or addr[1] not in (ETH_P_IP, ETH_P_IPV6):
                return
            self.on_packet(SOURCE_DL, ifindex, ts, data)

        self._dl[ifindex] = SocketReader(self.reactor, s, handler, f"dl{ifindex}")

    def unlisten_dl(self, ifindex: int) -> None:
        n = self._dl_users.get(ifindex, 0) - 1
        if n > 0:
            self._dl_users[ifindex] = n
            return
        self._dl_users.pop(ifindex, None)
        r = self._dl.pop(ifindex, None)
        if r is not None:
            r.close()

    def _arp_reader(self, ifindex: int) -> SocketReader:
        r = self._arp.get(ifindex)
        if r is not None:
            return r
        s = _open(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ARP), "a packet socket")
        s.bind((self.ifname(ifindex), ETH_P_ARP))

        def handler(data: bytes, anc: list, addr, ts: int, ifindex=ifindex) -> None:
            got = packets.parse_arp_reply(data)
            if got is not None:
                self._neighbour_answer(ifindex, got[0], got[1])

        r = SocketReader(self.reactor, s, handler, f"arp{ifindex}")
        self._arp[ifindex] = r
        return r

    # -- senders -----------------------------------------------------------

    def _raw_sender(self, family: int) -> socket.socket:
        s = self._raw_tx.get(family)
        if s is None:
            fam = socket.AF_INET if family == 4 else socket.AF_INET6
            s = _open(fam, socket.SOCK_RAW, socket.IPPROTO_RAW, "a raw IP socket")
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
            self._raw_tx[family] = s
        return s

    def _dl_sender(self) -> socket.socket:
        if self._dl_tx is None:
            self._dl_tx = _open(socket.AF_PACKET, socket.SOCK_DGRAM, 0, "a packet socket")
        return self._dl_tx

    def send_ip(self, family: int, dst: str, pkt: bytes) -> int:
        """Send a complete IP packet the routing table's way; returns the tx time (ns)."""
        s = self._raw_sender(family)
        # the transmit time is taken immediately before the send, as scamper does
        t = now_ns()
        s.sendto(pkt, (dst, 0))
        return t

    def send_dl(self, ifindex: int, mac: bytes, family: int, pkt: bytes) -> int:
        """Send an IP packet as an Ethernet frame to ``mac`` on ``ifindex``; returns tx time (ns)."""
        s = self._dl_sender()
        addr = (self.ifname(ifindex), ETH_P_IP if family == 4 else ETH_P_IPV6, 0, 1, mac)
        t = now_ns()
        s.sendto(pkt, addr)
        return t

    # -- port reservation ---------------------------------------------------

    def reserve_port(self, family: int, proto: int, port: int) -> bool:
        """Bind a UDP/TCP socket to ``port`` so nothing else uses it while we probe.

        Returns False if the port is in use.  A bound UDP socket also stops
        the kernel answering UDP replies to our source port with ICMP.
        """
        key = (family, proto, port)
        if key in self._reserved:
            return False
        fam = socket.AF_INET if family == 4 else socket.AF_INET6
        kind = socket.SOCK_DGRAM if proto == packets.PROTO_UDP else socket.SOCK_STREAM
        s = socket.socket(fam, kind)
        try:
            s.bind(("::" if family == 6 else "0.0.0.0", port))
        except OSError:
            s.close()
            return False
        self._reserved[key] = s
        return True

    def release_port(self, family: int, proto: int, port: int) -> None:
        s = self._reserved.pop((family, proto, port), None)
        if s is not None:
            s.close()

    # -- shutdown -----------------------------------------------------------

    def close(self) -> None:
        for r in list(self._icmp.values()) + list(self._dl.values()) + list(self._arp.values()):
            r.close()
        self._icmp.clear()
        self._dl.clear()
        self._arp.clear()
        for s in self._raw_tx.values():
            s.close()
        self._raw_tx.clear()
        if self._dl_tx is not None:
            self._dl_tx.close()
            self._dl_tx = None
        for s in self._reserved.values():
            s.close()
        self._reserved.clear()
        if self._rq is not None:
            self._rq.close()
            self._rq = None
        if self._ipr is not None:
            self._ipr.close()
            self._ipr = None
