"""Probe construction and reply dissection (sans-IO, plain ``struct``).

Probes are built as complete IP packets (header included) so the prober
controls every field scamper controls: TTL, TOS, IP-ID, DF, flow label,
ports, ICMP id/sequence and, for the Paris methods, the checksum.

Replies are dissected into :class:`Reply`, which carries what scamper's
``scamper_icmp_resp_t`` / ``scamper_dl_rec_t`` carry: outer header fields,
the ICMP header, and for ICMP errors the quoted probe (``inner_*``).
"""

from __future__ import annotations

import ipaddress
import struct
from typing import Optional

import attrs

from ..warts.records import IcmpExt

__all__ = [
    "PROTO_ICMP", "PROTO_TCP", "PROTO_UDP", "PROTO_ICMP6",
    "checksum", "ipv4_header", "ipv6_header", "ip_packet",
    "udp_segment", "tcp_segment", "icmp_echo", "icmp_timestamp",
    "paris_udp_payload", "paris_icmp_payload",
    "Reply", "dissect", "ipv6_from_parts", "PacketError",
    "arp_request", "parse_arp_reply", "neighbour_solicit", "solicited_node", "quick_key",
]

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ICMP6 = 58

IP_DF = 0x4000

_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_IPV6 = struct.Struct("!IHBB16s16s")
_UDP = struct.Struct("!HHHH")
_TCP = struct.Struct("!HHIIBBHHH")
_ICMP_ECHO = struct.Struct("!BBHHH")


class PacketError(ValueError):
    """A packet could not be built from the given values."""


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _pseudo(src: bytes, dst: bytes, proto: int, length: int) -> bytes:
    if len(src) == 4:
        return src + dst + struct.pack("!BBH", 0, proto, length)
    return src + dst + struct.pack("!IxxxB", length, proto)


def ipv4_header(src: bytes, dst: bytes, proto: int, payload_len: int, *, ttl: int,
                tos: int = 0, ipid: int = 0, df: bool = True, options: bytes = b"") -> bytes:
    """A 20-byte (plus options) IPv4 header with its checksum filled in."""
    if len(options) % 4:
        raise PacketError("IPv4 options must be a multiple of 4 bytes")
    ihl = 5 + len(options) // 4
    total = ihl * 4 + payload_len
    if total > 0xFFFF:
        raise PacketError(f"IPv4 packet too large ({total} bytes)")
    hdr = _IPV4.pack(0x40 | ihl, tos & 0xFF, total, ipid & 0xFFFF, IP_DF if df else 0,
                     ttl & 0xFF, proto, 0, src, dst) + options
    return hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:]


def ipv6_header(src: bytes, dst: bytes, nh: int, payload_len: int, *, hlim: int,
                tclass: int = 0, flow: int = 0) -> bytes:
    """A 40-byte IPv6 header."""
    if payload_len > 0xFFFF:
        raise PacketError(f"IPv6 payload too large ({payload_len} bytes)")
    first = (6 << 28) | ((tclass & 0xFF) << 20) | (flow & 0xFFFFF)
    return _IPV6.pack(first, payload_len, nh, hlim & 0xFF, src, dst)


def ip_packet(src: bytes, dst: bytes, proto: int, l4: bytes, *, ttl: int, tos: int = 0,
              ipid: int = 0, df: bool = True, flow: int = 0, options: bytes = b"") -> bytes:
    """A complete IPv4 or IPv6 packet (family from the address length)."""
    if len(src) == 4:
        return ipv4_header(src, dst, proto, len(l4), ttl=ttl, tos=tos, ipid=ipid,
                           df=df, options=options) + l4
    return ipv6_header(src, dst, proto, len(l4), hlim=ttl, tclass=tos, flow=flow) + l4


def udp_segment(src: bytes, dst: bytes, sport: int, dport: int, payload: bytes) -> bytes:
    """A UDP header and payload with a correct checksum."""
    length = 8 + len(payload)
    seg = _UDP.pack(sport, dport, length, 0) + payload
    csum = checksum(_pseudo(src, dst, PROTO_UDP, length) + seg)
    if csum == 0:
        csum = 0xFFFF
    return seg[:6] + struct.pack("!H", csum) + seg[8:]


def tcp_segment(src: bytes, dst: bytes, sport: int, dport: int, *, seq: int = 0, ack: int = 0,
                flags: int, window: int = 0, payload: bytes = b"") -> bytes:
    """A 20-byte TCP header (no options) and payload with a correct checksum."""
    seg = _TCP.pack(sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags,
                    window, 0, 0) + payload
    csum = checksum(_pseudo(src, dst, PROTO_TCP, len(seg)) + seg)
    return seg[:16] + struct.pack("!H", csum) + seg[18:]


def _icmp_finish(src: bytes, dst: bytes, msg: bytes) -> bytes:
    if len(src) == 4:
        csum = checksum(msg)
    else:
        csum = checksum(_pseudo(src, dst, PROTO_ICMP6, len(msg)) + msg)
    return msg[:2] + struct.pack("!H", csum) + msg[4:]


def icmp_echo(src: bytes, dst: bytes, ident: int, seq: int, payload: bytes) -> bytes:
    """An ICMP (IPv4) or ICMPv6 echo request with a correct checksum."""
    typ = 8 if len(src) == 4 else 128
    return _icmp_finish(src, dst, _ICMP_ECHO.pack(typ, 0, 0, ident & 0xFFFF, seq & 0xFFFF) + payload)


def icmp_timestamp(src: bytes, dst: bytes, ident: int, seq: int, originate: int,
                   padding: bytes = b"") -> bytes:
    """An ICMP timestamp request (IPv4 only): originate ms since midnight UTC."""
    msg = _ICMP_ECHO.pack(13, 0, 0, ident & 0xFFFF, seq & 0xFFFF) + struct.pack("!III", originate, 0, 0)
    return _icmp_finish(src, dst, msg + padding)


def paris_udp_payload(src: bytes, dst: bytes, sport: int, dport: int, payload_len: int,
                      want_sum: int, data: bytes = b"") -> bytes:
    """A UDP payload of ``payload_len`` bytes making the UDP checksum ``want_sum``.

    udp-paris identifies its probes by the UDP checksum (probe id + 1) while
    keeping the ports, and so the flow, constant.  ``data`` (trace ``-p``)
    supplies the payload's bytes; its first two are overwritten, as scamper does.
    """
    if payload_len < 2:
        raise PacketError("udp-paris needs at least 2 bytes of payload")
    tail = _tail(data, payload_len)
    # With W in the first payload word the checksum is C = ~(S0 + W); putting
    # C there instead makes the checksum ~(S0 + ~(S0 + W)) = W in one's
    # complement arithmetic.  This is how scamper turns the checksum into an id.
    body = struct.pack("!H", want_sum) + tail
    seg = udp_segment(src, dst, sport, dport, body)
    return seg[6:8] + tail


def _tail(data: bytes, payload_len: int) -> bytes:
    # bytes 2.. of a paris payload: the user's payload, else zeros
    if not data:
        return bytes(payload_len - 2)
    if len(data) != payload_len:
        raise PacketError(f"payload is {len(data)} bytes, expected {payload_len}")
    return data[2:]


def paris_icmp_payload(src: bytes, dst: bytes, ident: int, seq: int, payload_len: int,
                       want_sum: int, data: bytes = b"") -> bytes:
    """An echo payload making the ICMP checksum ``want_sum`` (icmp-paris: constant).

    ``data`` as for :func:`paris_udp_payload`.
    """
    if payload_len < 2:
        raise PacketError("icmp-paris needs at least 2 bytes of payload")
    tail = _tail(data, payload_len)
    body = struct.pack("!H", want_sum) + tail
    msg = icmp_echo(src, dst, ident, seq, body)
    csum = struct.unpack_from("!H", msg, 2)[0]
    return struct.pack("!H", csum) + tail


# --------------------------------------------------------------------------
# replies

@attrs.define
class Reply:
    """A received IP packet, dissected the way scamper dissects replies.

    ``size`` is the IP length (IPv4 total length; IPv6 payload length + 40).
    ``ttl``/``tos``/``ipid`` are from the outer header (``ipid`` is 0 for IPv6).
    ``inner_*`` describe the probe quoted by an ICMP error; ``inner_sport`` /
    ``inner_dport`` are UDP or TCP ports, ``inner_icmp_id``/``_seq`` an echo's.
    """

    family: int
    src: bytes
    dst: bytes
    proto: int
    size: int
    ttl: int
    tos: int = 0
    ipid: int = 0
    flow: int = 0
    frag_off: int = 0
    #: an IPv6 reply's fragment-header identification (32 bits), None if unfragmented
    frag_id: Optional[int] = None
    # ICMP
    icmp_type: int = -1
    icmp_code: int = -1
    icmp_id: int = 0
    icmp_seq: int = 0
    icmp_nhmtu: int = 0
    ts_originate: int = 0
    ts_receive: int = 0
    ts_transmit: int = 0
    # TCP / UDP reply
    sport: int = 0
    dport: int = 0
    tcp_flags: int = 0
    # quoted probe (ICMP errors)
    has_inner: bool = False
    inner_proto: int = 0
    inner_src: bytes = b""
    inner_dst: bytes = b""
    inner_ttl: int = 0
    inner_size: int = 0
    inner_tos: int = 0
    inner_ipid: int = 0
    inner_flow: int = 0
    inner_off: int = 0
    inner_sport: int = 0
    inner_dport: int = 0
    inner_udp_sum: int = 0
    inner_icmp_type: int = -1
    inner_icmp_id: int = 0
    inner_icmp_seq: int = 0
    icmpext: Optional[list[IcmpExt]] = None
    rr: Optional[list[bytes]] = None

    @property
    def src_addr(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        return ipaddress.ip_address(self.src)

    @property
    def is_icmp(self) -> bool:
        return self.proto == (PROTO_ICMP if self.family == 4 else PROTO_ICMP6)

    @property
    def is_echo_reply(self) -> bool:
        return self.is_icmp and self.icmp_type == (0 if self.family == 4 else 129)

    @property
    def is_time_exceeded(self) -> bool:
        return self.is_icmp and self.icmp_type == (11 if self.family == 4 else 3)

    @property
    def is_unreach(self) -> bool:
        return self.is_icmp and self.icmp_type == (3 if self.family == 4 else 1)

    @property
    def is_ptb(self) -> bool:
        if not self.is_icmp:
            return False
        if self.family == 4:
            return self.icmp_type == 3 and self.icmp_code == 4
        return self.icmp_type == 2

    @property
    def is_paramprob(self) -> bool:
        return self.is_icmp and self.icmp_type == (12 if self.family == 4 else 4)

    @property
    def is_error(self) -> bool:
        return self.is_time_exceeded or self.is_unreach or self.is_ptb or self.is_paramprob


def _parse_rr(opts: bytes) -> Optional[list[bytes]]:
    i = 0
    while i < len(opts):
        kind = opts[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= len(opts):
            break
        length = opts[i + 1]
        if length < 2 or i + length > len(opts):
            break
        if kind == 7 and length >= 3:
            ptr = opts[i + 2]
            used = max(0, (ptr - 4) // 4)
            body = opts[i + 3:i + length]
            return [body[j * 4:j * 4 + 4] for j in range(min(used, len(body) // 4))]
        i += length
    return None


def _parse_ext(ext: bytes) -> Optional[list[IcmpExt]]:
    # scamper 20211212 (scamper_icmpext_parse) walks objects from offset 4
    # and stops at the first object that does not end exactly at the end of
    # the data; replicated so our hop records hold what scamper's hold.
    out: list[IcmpExt] = []
    off = 4
    n = len(ext)
    while off + 4 < n:
        dl = struct.unpack_from("!H", ext, off)[0]
        if off + dl < n:
            break
        cn, ct = ext[off + 2], ext[off + 3]
        if dl >= 8:
            out.append(IcmpExt(cn, ct, bytes(ext[off + 4:off + dl])))
        if dl == 0:
            break
        off += dl
    return out or None


def _ext_from(icmp_body: bytes, family: int) -> Optional[list[IcmpExt]]:
    # icmp_body starts at the ICMP header.  Extensions are looked for only at
    # the fixed RFC 4884 offset of 128 bytes of quote, as scamper does.
    if len(icmp_body) - 8 <= 128 + 4:
        return None
    ext = icmp_body[8 + 128:]
    ok_version = (ext[0] & 0xF0) == 0x20 or (family == 4 and ext[0] == 0x02)
    if not ok_version:
        return None
    if not ((ext[2] == 0 and ext[3] == 0) or checksum(ext) == 0):
        return None
    return _parse_ext(ext)


def _dissect_inner(r: Reply, quote: bytes) -> None:
    if r.family == 4:
        if len(quote) < 20 or quote[0] >> 4 != 4:
            return
        ihl = (quote[0] & 0x0F) * 4
        if len(quote) < ihl:
            return
        r.has_inner = True
        r.inner_tos = quote[1]
        r.inner_size = struct.unpack_from("!H", quote, 2)[0]
        r.inner_ipid = struct.unpack_from("!H", quote, 4)[0]
        r.inner_off = struct.unpack_from("!H", quote, 6)[0] & 0x1FFF
        r.inner_ttl = quote[8]
        r.inner_proto = quote[9]
        r.inner_src = bytes(quote[12:16])
        r.inner_dst = bytes(quote[16:20])
        l4 = quote[ihl:]
    else:
        if len(quote) < 40 or quote[0] >> 4 != 6:
            return
        r.has_inner = True
        first, plen, nh, hlim = struct.unpack_from("!IHBB", quote, 0)
        r.inner_tos = (first >> 20) & 0xFF
        r.inner_flow = first & 0xFFFFF
        r.inner_size = plen + 40
        r.inner_ttl = hlim
        r.inner_src = bytes(quote[8:24])
        r.inner_dst = bytes(quote[24:40])
        off = 40
        # skip a fragment header if the probe carried one
        if nh == 44 and len(quote) >= off + 8:
            nh = quote[off]
            r.inner_off = struct.unpack_from("!H", quote, off + 2)[0] >> 3
            off += 8
        r.inner_proto = nh
        l4 = quote[off:]
    if r.inner_proto in (PROTO_UDP, PROTO_TCP) and len(l4) >= 4:
        r.inner_sport, r.inner_dport = struct.unpack_from("!HH", l4, 0)
        if r.inner_proto == PROTO_UDP and len(l4) >= 8:
            r.inner_udp_sum = struct.unpack_from("!H", l4, 6)[0]
    elif r.inner_proto in (PROTO_ICMP, PROTO_ICMP6) and len(l4) >= 8:
        r.inner_icmp_type = l4[0]
        r.inner_icmp_id, r.inner_icmp_seq = struct.unpack_from("!HH", l4, 4)


def dissect(pkt: bytes) -> Optional[Reply]:
    """Dissect a complete IPv4/IPv6 packet; ``None`` if it is not one we can use."""
    if len(pkt) < 20:
        return None
    version = pkt[0] >> 4
    if version == 4:
        ihl = (pkt[0] & 0x0F) * 4
        if ihl < 20 or len(pkt) < ihl:
            return None
        total = struct.unpack_from("!H", pkt, 2)[0]
        frag = struct.unpack_from("!H", pkt, 6)[0]
        r = Reply(family=4, src=bytes(pkt[12:16]), dst=bytes(pkt[16:20]), proto=pkt[9],
                  size=total, ttl=pkt[8], tos=pkt[1], ipid=struct.unpack_from("!H", pkt, 4)[0],
                  frag_off=frag & 0x1FFF)
        if ihl > 20:
            r.rr = _parse_rr(pkt[20:ihl])
        body = pkt[ihl:total] if total >= ihl else pkt[ihl:]
    elif version == 6:
        if len(pkt) < 40:
            return None
        first, plen, nh, hlim = struct.unpack_from("!IHBB", pkt, 0)
        r = Reply(family=6, src=bytes(pkt[8:24]), dst=bytes(pkt[24:40]), proto=nh,
                  size=plen + 40, ttl=hlim, tos=(first >> 20) & 0xFF, flow=first & 0xFFFFF)
        body = pkt[40:40 + plen]
        if nh == 44 and len(body) >= 8:
            r.proto = body[0]
            r.frag_off = struct.unpack_from("!H", body, 2)[0] >> 3
            r.frag_id = struct.unpack_from("!I", body, 4)[0]
            body = body[8:]
    else:
        return None
    if r.frag_off:
        return r
    icmp_proto = PROTO_ICMP if r.family == 4 else PROTO_ICMP6
    if r.proto == icmp_proto:
        if len(body) < 8:
            return None
        r.icmp_type, r.icmp_code = body[0], body[1]
        r.icmp_id, r.icmp_seq = struct.unpack_from("!HH", body, 4)
        if r.is_echo_reply:
            pass
        elif r.family == 4 and r.icmp_type == 14 and len(body) >= 20:
            r.ts_originate, r.ts_receive, r.ts_transmit = struct.unpack_from("!III", body, 8)
        elif r.is_error:
            if r.family == 4 and r.icmp_type == 3 and r.icmp_code == 4:
                r.icmp_nhmtu = struct.unpack_from("!H", body, 6)[0]
            elif r.family == 6 and r.icmp_type == 2:
                r.icmp_nhmtu = struct.unpack_from("!I", body, 4)[0] % 0xFFFF
            _dissect_inner(r, body[8:])
            r.icmpext = _ext_from(body, r.family)
    elif r.proto == PROTO_TCP:
        if len(body) < 20:
            return None
        r.sport, r.dport = struct.unpack_from("!HH", body, 0)
        r.tcp_flags = body[13]
    elif r.proto == PROTO_UDP:
        if len(body) < 8:
            return None
        r.sport, r.dport = struct.unpack_from("!HH", body, 0)
    return r


def ipv6_from_parts(src: bytes, dst: bytes, hlim: int, nh: int, payload: bytes, tclass: int = 0) -> bytes:
    """Rebuild an IPv6 packet from what a raw ICMPv6 socket hands over.

    Linux does not give IPv6 raw sockets the IP header; the source comes from
    recvmsg's address, hop limit and destination from ancillary data.
    """
    return ipv6_header(src, dst, nh, len(payload), hlim=hlim, tclass=tclass) + payload


# --------------------------------------------------------------------------
# neighbour resolution

def arp_request(sender_mac: bytes, sender_ip: bytes, target_ip: bytes) -> bytes:
    """An ARP request (the ARP payload, without the Ethernet header)."""
    return struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, sender_mac, sender_ip,
                       b"\0" * 6, target_ip)


def parse_arp_reply(data: bytes) -> Optional[tuple[bytes, bytes]]:
    """``(sender_ip, sender_mac)`` of an Ethernet/IPv4 ARP reply, else ``None``."""
    if len(data) < 28:
        return None
    htype, ptype, hlen, plen, op = struct.unpack_from("!HHBBH", data, 0)
    if htype != 1 or ptype != 0x0800 or hlen != 6 or plen != 4 or op != 2:
        return None
    return bytes(data[14:18]), bytes(data[8:14])


def solicited_node(target: bytes) -> bytes:
    """The solicited-node multicast address of an IPv6 address."""
    return bytes.fromhex("ff0200000000000000000001ff") + target[13:16]


def neighbour_solicit(src: bytes, target: bytes, src_mac: bytes) -> bytes:
    """An ICMPv6 neighbour solicitation with a source link-layer option (no IP header)."""
    dst = solicited_node(target)
    msg = struct.pack("!BBHI", 135, 0, 0, 0) + target + struct.pack("!BB", 1, 1) + src_mac
    return _icmp_finish(src, dst, msg)


_U16 = struct.Struct("!H")


def quick_key(pkt: bytes) -> Optional[tuple[int, str, int]]:
    """The (family, protocol kind, port) a reply would be demultiplexed on.

    A cheap look at a few bytes, so that a storm of unrelated packets costs
    little more than the receive: only packets whose key belongs to a task
    are dissected in full.  Kinds: ``"icmp"`` (echo/timestamp id), ``"udp"``
    and ``"tcp"`` (our source port, from a reply or from a quoted probe).
    """
    n = len(pkt)
    if n < 28:
        return None
    v = pkt[0] >> 4
    if v == 4:
        ihl = (pkt[0] & 0x0F) * 4
        proto = pkt[9]
        fam = 4
        icmp = 1
    elif v == 6:
        ihl = 40
        proto = pkt[6]
        fam = 6
        icmp = 58
        if n < 48:
            return None
        if proto == 44:
            # a first fragment (a large reply to dealias -M) is keyed on what
            # follows its fragment header; a later one carries no L4 header
            if _U16.unpack_from(pkt, 42)[0] >> 3:
                return None
            proto = pkt[40]
            ihl = 48
    else:
        return None
    if proto == icmp:
        if n < ihl + 8:
            return None
        t = pkt[ihl]
        if (fam == 4 and t in (0, 14)) or (fam == 6 and t == 129):
            return (fam, "icmp", _U16.unpack_from(pkt, ihl + 4)[0])
        q = ihl + 8
        if fam == 4:
            if n < q + 20 or pkt[q] >> 4 != 4:
                return None
            qp = pkt[q + 9]
            l4 = q + (pkt[q] & 0x0F) * 4
        else:
            if n < q + 40 or pkt[q] >> 4 != 6:
                return None
            qp = pkt[q + 6]
            l4 = q + 40
        if n < l4 + 8:
            return None
        if qp == PROTO_UDP:
            return (fam, "udp", _U16.unpack_from(pkt, l4)[0])
        if qp == PROTO_TCP:
            return (fam, "tcp", _U16.unpack_from(pkt, l4)[0])
        if qp == icmp:
            return (fam, "icmp", _U16.unpack_from(pkt, l4 + 4)[0])
        return None
    if proto == PROTO_TCP or proto == PROTO_UDP:
        if n < ihl + 4:
            return None
        return (fam, "tcp" if proto == PROTO_TCP else "udp", _U16.unpack_from(pkt, ihl + 2)[0])
    return None
