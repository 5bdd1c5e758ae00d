"""Probe construction and reply dissection (ixpscamper.prober.packets)."""

from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ixpscamper.prober import packets as P
from ixpscamper.prober.simnet import icmp_error
from ixpscamper.warts.records import IcmpExt

S4 = ipaddress.ip_address("192.0.2.10").packed
D4 = ipaddress.ip_address("198.51.100.66").packed
S6 = ipaddress.ip_address("2001:db8:1::10").packed
D6 = ipaddress.ip_address("2001:db8:d::66").packed

ports = st.integers(0, 0xFFFF)
addrs = st.sampled_from([(S4, D4), (S6, D6)])


def _l4_sum_ok(src: bytes, dst: bytes, proto: int, seg: bytes) -> bool:
    return P.checksum(P._pseudo(src, dst, proto, len(seg)) + seg) == 0


def test_checksum_known_value():
    # RFC 1071's example words
    assert P.checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D


def test_ipv4_header_fields_and_checksum():
    h = P.ipv4_header(S4, D4, P.PROTO_UDP, 24, ttl=3, tos=0x10, ipid=7)
    assert len(h) == 20 and P.checksum(h) == 0
    assert h[8] == 3 and h[1] == 0x10 and struct.unpack("!H", h[4:6])[0] == 7
    assert struct.unpack("!H", h[6:8])[0] == P.IP_DF
    assert struct.unpack("!H", h[2:4])[0] == 44


def test_ipv6_header_fields():
    h = P.ipv6_header(S6, D6, P.PROTO_UDP, 20, hlim=9, tclass=0x20, flow=5)
    first, plen, nh, hlim = struct.unpack("!IHBB", h[:8])
    assert (first >> 28, (first >> 20) & 0xFF, first & 0xFFFFF) == (6, 0x20, 5)
    assert (plen, nh, hlim) == (20, P.PROTO_UDP, 9)


@settings(max_examples=60, deadline=None)
@given(addrs, ports, ports, st.binary(max_size=40))
def test_udp_checksum_valid(sd, sport, dport, payload):
    src, dst = sd
    seg = P.udp_segment(src, dst, sport, dport, payload)
    assert _l4_sum_ok(src, dst, P.PROTO_UDP, seg)


@settings(max_examples=60, deadline=None)
@given(addrs, ports, ports, st.integers(0, 0xFF), st.integers(0, 2**32 - 1))
def test_tcp_checksum_valid(sd, sport, dport, flags, seq):
    src, dst = sd
    seg = P.tcp_segment(src, dst, sport, dport, seq=seq, flags=flags)
    assert _l4_sum_ok(src, dst, P.PROTO_TCP, seg)
    assert seg[13] == flags and struct.unpack("!I", seg[4:8])[0] == seq


@settings(max_examples=100, deadline=None)
@given(addrs, ports, st.integers(1, 0xFFFF), st.integers(2, 40))
def test_paris_udp_checksum_is_the_id(sd, sport, want, plen):
    src, dst = sd
    payload = P.paris_udp_payload(src, dst, sport, 33435, plen, want)
    assert len(payload) == plen
    seg = P.udp_segment(src, dst, sport, 33435, payload)
    assert struct.unpack("!H", seg[6:8])[0] == want
    assert _l4_sum_ok(src, dst, P.PROTO_UDP, seg)


@settings(max_examples=100, deadline=None)
@given(addrs, ports, st.integers(0, 300), st.integers(1, 0xFFFE))
def test_paris_icmp_checksum_constant(sd, ident, seq, want):
    src, dst = sd
    payload = P.paris_icmp_payload(src, dst, ident, seq, 16, want)
    msg = P.icmp_echo(src, dst, ident, seq, payload)
    assert struct.unpack("!H", msg[2:4])[0] == want


@settings(max_examples=100, deadline=None)
@given(addrs, ports, st.integers(1, 0xFFFE), st.binary(min_size=2, max_size=40))
def test_paris_payloads_keep_user_bytes_after_the_first_two(sd, port, want, data):
    # trace -p: the paris methods overwrite only the first two payload bytes
    src, dst = sd
    payload = P.paris_udp_payload(src, dst, port, 33435, len(data), want, data)
    assert payload[2:] == data[2:] and len(payload) == len(data)
    seg = P.udp_segment(src, dst, port, 33435, payload)
    assert struct.unpack("!H", seg[6:8])[0] == want and _l4_sum_ok(src, dst, P.PROTO_UDP, seg)
    payload = P.paris_icmp_payload(src, dst, port, 7, len(data), want, data)
    assert payload[2:] == data[2:]
    assert struct.unpack("!H", P.icmp_echo(src, dst, port, 7, payload)[2:4])[0] == want
    with pytest.raises(P.PacketError):
        P.paris_udp_payload(src, dst, port, 33435, len(data) + 1, want, data)


def test_paris_needs_two_bytes():
    with pytest.raises(P.PacketError):
        P.paris_udp_payload(S4, D4, 1, 2, 1, 5)


@settings(max_examples=60, deadline=None)
@given(addrs, st.integers(1, 255), st.integers(0, 0xFF), ports, ports, st.integers(0, 0xFFFF))
def test_dissect_time_exceeded_round_trip(sd, ttl, tos, sport, dport, ipid):
    src, dst = sd
    probe = P.ip_packet(src, dst, P.PROTO_UDP, P.udp_segment(src, dst, sport, dport, bytes(16)),
                        ttl=1, tos=tos, ipid=ipid)
    hop = ipaddress.ip_address("198.18.1.2" if len(src) == 4 else "2001:db8:a::2").packed
    typ = 11 if len(src) == 4 else 3
    rep = P.dissect(icmp_error(hop, src, typ, 0, probe, ttl=ttl, ipid=99))
    assert rep is not None and rep.is_time_exceeded and rep.has_inner
    assert rep.src == hop and rep.ttl == ttl
    assert rep.inner_proto == P.PROTO_UDP and (rep.inner_sport, rep.inner_dport) == (sport, dport)
    assert rep.inner_size == len(probe) and rep.inner_ttl == 1
    assert rep.size == len(probe) + (28 if len(src) == 4 else 48)
    if len(src) == 4:
        assert rep.inner_ipid == ipid and rep.inner_tos == tos and rep.ipid == 99
    else:
        assert rep.ipid == 0


def test_dissect_echo_reply_tcp_and_truncated():
    body = bytearray(P.icmp_echo(D4, S4, 0xBEEF, 3, bytes(8)))
    body[0] = 0
    rep = P.dissect(P.ip_packet(D4, S4, P.PROTO_ICMP, bytes(body), ttl=62, ipid=5))
    assert rep.is_echo_reply and (rep.icmp_id, rep.icmp_seq) == (0xBEEF, 3) and rep.size == 36
    seg = P.tcp_segment(D4, S4, 80, 50000, flags=0x14)
    rep = P.dissect(P.ip_packet(D4, S4, P.PROTO_TCP, seg, ttl=62))
    assert (rep.proto, rep.sport, rep.dport, rep.tcp_flags) == (P.PROTO_TCP, 80, 50000, 0x14)
    assert P.dissect(b"\x45" + bytes(10)) is None
    assert P.dissect(b"") is None
    assert P.dissect(bytes(40)) is None  # version 0


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_dissect_never_raises_on_garbage(data):
    P.dissect(data)
    P.dissect(b"\x45" + data)
    P.dissect(b"\x60" + data)


def _ext(objs: list[tuple[int, int, bytes]]) -> bytes:
    body = b"".join(struct.pack("!HBB", 4 + len(d), cn, ct) + d for cn, ct, d in objs)
    hdr = bytearray(b"\x20\x00\x00\x00")
    ext = bytes(hdr) + body
    csum = P.checksum(ext)
    return ext[:2] + struct.pack("!H", csum) + ext[4:]


def test_icmp_extension_mpls_parsed():
    probe = P.ip_packet(S4, D4, P.PROTO_UDP, P.udp_segment(S4, D4, 1, 2, bytes(16)), ttl=1)
    quote = probe + bytes(128 - len(probe))  # RFC 4884: quote padded to 128 bytes
    label = (16001 << 12) | (0 << 9) | (1 << 8) | 1
    ext = _ext([(1, 1, struct.pack("!I", label))])
    rep = P.dissect(icmp_error(D4, S4, 11, 0, quote, extra=ext))
    assert rep.icmpext == [IcmpExt(1, 1, struct.pack("!I", label))]
    assert rep.icmpext[0].mpls_labels[0].label == 16001


def test_icmp_extension_20211212_quirk_two_objects_ignored():
    # scamper 20211212 stops at an object that does not end exactly at the
    # end of the data, so with two objects it records none
    probe = P.ip_packet(S4, D4, P.PROTO_UDP, P.udp_segment(S4, D4, 1, 2, bytes(16)), ttl=1)
    quote = probe + bytes(128 - len(probe))
    ext = _ext([(1, 1, bytes(4)), (2, 1, bytes(4))])
    assert P.dissect(icmp_error(D4, S4, 11, 0, quote, extra=ext)).icmpext is None
    # and a short quote has no extension at all
    assert P.dissect(icmp_error(D4, S4, 11, 0, probe)).icmpext is None


def test_record_route_option_parsed():
    rr = bytes([7, 39, 12]) + S4 + D4 + bytes(28) + b"\0"
    body = bytearray(P.icmp_echo(D4, S4, 1, 0, bytes(8)))
    body[0] = 0
    rep = P.dissect(P.ip_packet(D4, S4, P.PROTO_ICMP, bytes(body), ttl=60, options=rr))
    assert rep.rr == [S4, D4]


def test_arp_and_nd_messages():
    req = P.arp_request(b"\x02" * 6, S4, D4)
    assert len(req) == 28 and struct.unpack("!H", req[6:8])[0] == 1
    reply = bytearray(req)
    reply[7] = 2
    reply[8:14] = b"\x0a" * 6
    reply[14:18] = D4
    assert P.parse_arp_reply(bytes(reply)) == (D4, b"\x0a" * 6)
    assert P.parse_arp_reply(req) is None
    assert str(ipaddress.ip_address(P.solicited_node(D6))) == "ff02::1:ff00:66"
    ns = P.neighbour_solicit(S6, D6, b"\x02" * 6)
    assert ns[0] == 135 and ns[8:24] == D6 and ns[24:26] == b"\x01\x01"
    assert P.checksum(P._pseudo(S6, P.solicited_node(D6), P.PROTO_ICMP6, len(ns)) + ns) == 0


@settings(max_examples=150, deadline=None)
@given(addrs, ports, ports, st.sampled_from(["udp", "tcp", "icmp"]), st.booleans())
def test_quick_key_agrees_with_dissect(sd, sport, dport, kind, error):
    from ixpscamper.prober.scheduler import _reply_key
    src, dst = sd
    v6 = len(src) == 16
    if kind == "udp":
        l4, proto = P.udp_segment(src, dst, sport, dport, bytes(16)), P.PROTO_UDP
    elif kind == "tcp":
        l4, proto = P.tcp_segment(src, dst, sport, dport, flags=2), P.PROTO_TCP
    else:
        l4, proto = P.icmp_echo(src, dst, sport, dport, bytes(16)), (P.PROTO_ICMP6 if v6 else P.PROTO_ICMP)
    probe = P.ip_packet(src, dst, proto, l4, ttl=1)
    if error:
        pkt = icmp_error(dst, src, 3 if v6 else 11, 0, probe)
    elif kind == "icmp":
        body = bytearray(l4)
        body[0] = 129 if v6 else 0
        pkt = P.ip_packet(dst, src, proto, bytes(body), ttl=60)
    else:
        back = (P.udp_segment(dst, src, dport, sport, b"") if kind == "udp"
                else P.tcp_segment(dst, src, dport, sport, flags=0x14))
        pkt = P.ip_packet(dst, src, proto, back, ttl=60)
    assert P.quick_key(pkt) == _reply_key(P.dissect(pkt)) == (6 if v6 else 4, kind, sport)


def _fragment6(pkt: bytes, ident: int, offset: int = 0, more: bool = True) -> bytes:
    """``pkt`` (an IPv6 packet) with a fragment header after its fixed header
    (the whole payload as one fragment: enough for the dissector)."""
    nh = pkt[6]
    frag = struct.pack("!BBHI", nh, 0, (offset << 3) | int(more), ident)
    payload = frag + pkt[40:]
    return P.ipv6_from_parts(pkt[8:24], pkt[24:40], pkt[7], 44, payload)


def test_fragmented_ipv6_reply_carries_its_identification():
    # dealias over IPv6 with -M reads IP-IDs from the replies' fragment
    # headers: the first fragment of an echo reply must be dissected, keyed
    # like an unfragmented one, and carry the 32-bit identification
    body = bytearray(P.icmp_echo(D6, S6, 0xBEEF, 7, bytes(1300)))
    body[0] = 129
    whole = P.ip_packet(D6, S6, P.PROTO_ICMP6, bytes(body), ttl=60)
    pkt = _fragment6(whole, 0x12345678)
    rep = P.dissect(pkt)
    assert rep.is_echo_reply and (rep.icmp_id, rep.icmp_seq) == (0xBEEF, 7)
    assert rep.frag_id == 0x12345678 and rep.frag_off == 0
    assert P.quick_key(pkt) == (6, "icmp", 0xBEEF)
    assert P.dissect(whole).frag_id is None
    # a later fragment has no L4 header: no key, and only its header fields
    later = _fragment6(whole, 0x12345678, offset=100, more=False)
    assert P.quick_key(later) is None
    assert P.dissect(later).frag_id == 0x12345678
