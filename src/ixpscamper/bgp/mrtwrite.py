"""A small MRT TABLE_DUMP_V2 writer (RFC 6396).

Used by the tests (round trips), the synthetic benchmark
(``bench/rib_bench.py``) and lab tests that need a collector RIB.  It writes
what collectors write: one PEER_INDEX_TABLE, then one RIB_IPV4_UNICAST /
RIB_IPV6_UNICAST record per prefix.  The MP_REACH_NLRI of IPv6 routes is
written in RFC 6396's abbreviated form by default (as RouteViews, RIS and
BIRD do) or in the full RFC 4760 form (``mp_full=True``, as some older
dumpers do).
"""

from __future__ import annotations

import ipaddress
import struct
from typing import BinaryIO, Iterable, Optional, Sequence, Union

from ixpscamper.bgp.mrt import (
    AS_SEQUENCE, AS_SET, PEER_INDEX_TABLE, RIB_IPV4_UNICAST, RIB_IPV6_UNICAST, TABLE_DUMP_V2,
    Peer, Segment,
)

__all__ = ["encode_attributes", "encode_as_path", "encode_peer_table", "encode_rib",
           "encode_table_dump", "MrtWriter"]

Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


def _record(ts: int, mtype: int, sub: int, body: bytes) -> bytes:
    return struct.pack(">IHHI", ts, mtype, sub, len(body)) + body


def _attr(flags: int, atype: int, value: bytes) -> bytes:
    if len(value) > 255:
        return struct.pack(">BBH", flags | 0x10, atype, len(value)) + value
    return struct.pack(">BBB", flags, atype, len(value)) + value


AS_TRANS = 23456


def encode_as_path(segments: Sequence[Segment], asn_size: int = 4) -> bytes:
    """AS_PATH value with 4-byte ASNs (or 2-byte ones, 4-byte ASes written
    as AS_TRANS); a tuple is an AS_SEQUENCE, a (frozen)set an AS_SET
    (written in ascending order)."""
    out = bytearray()
    code = "I" if asn_size == 4 else "H"
    for seg in segments:
        if isinstance(seg, (set, frozenset)):
            asns, stype = sorted(seg), AS_SET
        else:
            asns, stype = list(seg), AS_SEQUENCE
        # A segment holds at most 255 ASes: split longer sequences.
        for i in range(0, max(len(asns), 1), 255):
            part = asns[i:i + 255]
            if asn_size == 2:
                part = [a if a <= 0xFFFF else AS_TRANS for a in part]
            out += struct.pack(">BB%d%s" % (len(part), code), stype, len(part), *part)
    return bytes(out)


def encode_attributes(as_path: Sequence[Segment], next_hop: Optional[Address],
                      version: int = 4, mp_full: bool = False,
                      link_local: Optional[ipaddress.IPv6Address] = None,
                      origin: int = 0, extra: bytes = b"", asn_size: int = 4) -> bytes:
    """Path attributes of one RIB entry: ORIGIN, AS_PATH, and NEXT_HOP
    (IPv4 next hop of an IPv4 route) or MP_REACH_NLRI (any other).  With
    ``asn_size=2`` (old TABLE_DUMP) the AS_PATH is 2-byte and an AS4_PATH
    follows when some AS needs 4 bytes (RFC 6793)."""
    out = _attr(0x40, 1, bytes((origin,))) + _attr(0x40, 2, encode_as_path(as_path, asn_size))
    if asn_size == 2 and any(a > 0xFFFF for seg in as_path for a in seg):
        out += _attr(0xC0, 17, encode_as_path(as_path, 4))
    if next_hop is not None:
        if version == 4 and next_hop.version == 4:
            out += _attr(0x40, 3, next_hop.packed)
        else:
            nh = next_hop.packed + (link_local.packed if link_local is not None else b"")
            if mp_full:
                afi = 1 if version == 4 else 2
                # AFI, SAFI unicast, next hop, reserved, and no NLRI (as in
                # full-form dumps, the prefix is in the RIB record).
                value = struct.pack(">HBB", afi, 1, len(nh)) + nh + b"\x00"
            else:
                value = bytes((len(nh),)) + nh
            out += _attr(0x80, 14, value)
    return out + extra


def encode_peer_table(peers: Sequence[Peer], collector: str = "192.0.2.255",
                      view: str = "", force_as4: bool = False) -> bytes:
    """The PEER_INDEX_TABLE record.  A peer's ASN is written in 4 bytes if
    it needs them (or ``force_as4``), else in 2, as collectors do."""
    body = bytearray(ipaddress.IPv4Address(collector).packed)
    vb = view.encode()
    body += struct.pack(">H", len(vb)) + vb + struct.pack(">H", len(peers))
    for p in peers:
        as4 = force_as4 or p.asn > 0xFFFF
        ptype = (1 if p.ip.version == 6 else 0) | (2 if as4 else 0)
        body += bytes((ptype,)) + p.bgp_id.packed + p.ip.packed
        body += struct.pack(">I" if as4 else ">H", p.asn)
    return _record(0, TABLE_DUMP_V2, PEER_INDEX_TABLE, bytes(body))


def encode_rib(seq: int, prefix: Network, entries: Iterable[tuple[int, bytes]],
               ts: int = 0, originated: int = 0) -> bytes:
    """One RIB_IPVx_UNICAST record: ``entries`` are (peer_index, attribute bytes)."""
    plen = prefix.prefixlen
    nb = (plen + 7) // 8
    pbytes = prefix.network_address.packed[:nb]
    ents = list(entries)
    parts = [struct.pack(">IB", seq, plen), pbytes, struct.pack(">H", len(ents))]
    for peer, blob in ents:
        parts.append(struct.pack(">HIH", peer, originated, len(blob)))
        parts.append(blob)
    sub = RIB_IPV4_UNICAST if prefix.version == 4 else RIB_IPV6_UNICAST
    return _record(ts, TABLE_DUMP_V2, sub, b"".join(parts))


def encode_table_dump(seq: int, prefix: Network, peer_ip: Address, peer_as: int, blob: bytes,
                      ts: int = 0, originated: int = 0) -> bytes:
    """One old-format TABLE_DUMP record (RFC 6396 section 4.2): one route,
    the peer named inline with a 2-byte AS.  The peer address is of the
    prefix's family (the format has one address family per record)."""
    if peer_ip.version != prefix.version:
        raise ValueError("TABLE_DUMP: peer address and prefix must be of one family")
    body = (struct.pack(">HH", 0, seq & 0xFFFF) + prefix.network_address.packed
            + struct.pack(">BBI", prefix.prefixlen, 1, originated) + peer_ip.packed
            + struct.pack(">HH", peer_as, len(blob)) + blob)
    return _record(ts, 12, 1 if prefix.version == 4 else 2, body)


class MrtWriter:
    """Write a TABLE_DUMP_V2 file: ``write_peers`` once, then ``write_rib``
    per prefix (sequence numbers are kept here)."""

    def __init__(self, f: BinaryIO, ts: int = 0) -> None:
        self._f = f
        self._ts = ts
        self._seq = 0

    def write_peers(self, peers: Sequence[Peer], **kw) -> None:
        self._f.write(encode_peer_table(peers, **kw))

    def write_rib(self, prefix: Network, entries: Iterable[tuple[int, bytes]]) -> None:
        self._f.write(encode_rib(self._seq, prefix, entries, ts=self._ts))
        self._seq += 1

    def write_raw(self, mtype: int, sub: int, body: bytes) -> None:
        """Any other record (tests: unknown types, skipped subtypes)."""
        self._f.write(_record(self._ts, mtype, sub, body))
