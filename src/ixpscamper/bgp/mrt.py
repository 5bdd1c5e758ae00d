"""Streaming reader for MRT ``TABLE_DUMP_V2`` RIB dumps (RFC 6396).

(The old ``TABLE_DUMP`` format of pre-2008 archives is read too: one route
per record, 2-byte AS paths merged with AS4_PATH as RFC 6793 says.)

Reads the files RouteViews and RIPE RIS publish and those BIRD 2 and FRR
write: plain, gzip, bzip2 or xz (detected from the magic bytes, never from
the name), decompressed in chunks so memory stays bounded whatever the
file size.

Two layers:

* :class:`MrtReader` walks the records.  For each RIB record it yields a
  :class:`RibRecord` whose entries are ``(peer_index, attribute_bytes)``
  pairs -- the path attributes are *not* decoded there.  A full RIB has
  ten million entries but far fewer distinct attribute blobs, so the RIB
  (:mod:`ixpscamper.bgp.rib`) interns the raw bytes and decodes each
  distinct blob only when a lookup needs it.
* :func:`decode_attributes` turns one blob into :class:`PathAttributes`
  (AS path segments, next hop, origin ASes); :func:`iter_routes` is the
  fully decoded convenience iterator.

Bad input: a file cut short (the published "first MiB" excerpts are) is
read up to the last whole record and reported with *one* warning naming the
byte offset; a structurally corrupt record is skipped with one warning
naming its offset; unknown MRT types and the RIB subtypes we do not model
(multicast, RIB_GENERIC, ADD-PATH) are skipped and counted in
:attr:`MrtReader.stats`.  A file whose first record is not MRT at all raises
:class:`MrtError` ("not an MRT file").  With ``strict=True`` every warning
becomes an :class:`MrtError`.
"""

from __future__ import annotations

import bz2
import ipaddress
import lzma
import os
import struct
import zlib
from collections import Counter
from typing import BinaryIO, Callable, Iterator, Optional, Union

import attrs

__all__ = [
    "MrtError", "Peer", "PathAttributes", "RibRecord", "MrtStats", "MrtReader", "DecodedRoute", "Segment",
    "decode_attributes", "iter_routes", "open_decompressed",
    "TABLE_DUMP", "TABLE_DUMP_V2", "PEER_INDEX_TABLE", "RIB_IPV4_UNICAST",
    "RIB_IPV4_MULTICAST", "RIB_IPV6_UNICAST", "RIB_IPV6_MULTICAST", "RIB_GENERIC",
    "AS_SET", "AS_SEQUENCE",
]

# MRT types (RFC 6396 section 4, RFC 8050).
TABLE_DUMP = 12
TABLE_DUMP_V2 = 13
_KNOWN_TYPES = frozenset({11, 12, 13, 16, 17, 32, 33, 48, 49})

# TABLE_DUMP_V2 subtypes.
PEER_INDEX_TABLE = 1
RIB_IPV4_UNICAST = 2
RIB_IPV4_MULTICAST = 3
RIB_IPV6_UNICAST = 4
RIB_IPV6_MULTICAST = 5
RIB_GENERIC = 6
# 7 = GEO_PEER_TABLE, 8..12 = the ADD-PATH variants (RFC 8050): skipped, counted.

# AS_PATH segment types (RFC 4271, RFC 5065).
AS_SET = 1
AS_SEQUENCE = 2
AS_CONFED_SEQUENCE = 3
AS_CONFED_SET = 4

#: Largest record accepted.  A real RIB record (one prefix, a few hundred
#: peers with communities) stays well under 1 MiB; the cap keeps a corrupt
#: length from making us buffer the whole rest of the file as one record.
MAX_RECORD_LENGTH = 16 * 1024 * 1024

_CHUNK = 1 << 20

_HDR = struct.Struct(">IHHI")
_RIB_HEAD = struct.Struct(">IB")
_U16 = struct.Struct(">H")
_ENTRY = struct.Struct(">HIH")


class MrtError(ValueError):
    """Malformed MRT input.  ``offset`` is the byte offset (in the
    decompressed stream) of the record at fault, or ``None``."""

    def __init__(self, message: str, offset: Optional[int] = None) -> None:
        self.offset = offset
        self.reason = message
        super().__init__(message if offset is None else f"{message} (at byte offset {offset})")


@attrs.frozen
class Peer:
    """One BGP peer of the collector, from the PEER_INDEX_TABLE."""

    index: int
    bgp_id: ipaddress.IPv4Address
    ip: Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
    asn: int


Segment = Union[tuple[int, ...], frozenset[int]]


@attrs.frozen
class PathAttributes:
    """The decoded attributes we use.

    ``as_path`` is a tuple of segments: an AS_SEQUENCE is a ``tuple`` of
    ints in the order received, an AS_SET a ``frozenset``.  Confederation
    segments are dropped (RFC 5065: they are not part of the AS path a
    collector compares).  ``next_hop`` is the NEXT_HOP attribute for IPv4
    routes (or the MP_REACH next hop when NEXT_HOP is absent), the *global*
    MP_REACH next hop for IPv6; ``None`` if the route carries none.
    """

    as_path: tuple[Segment, ...]
    next_hop: Optional[Union[ipaddress.IPv4Address, ipaddress.IPv6Address]]
    origin_asns: frozenset[int]


@attrs.frozen
class RibRecord:
    """One RIB_IPV4_UNICAST / RIB_IPV6_UNICAST record (or one old
    TABLE_DUMP record, a single entry), attributes undecoded.

    ``network`` is the prefix as an integer of its top ``length`` bits
    (so ``network << (width - length)`` is the address); ``entries`` is a
    list of ``(peer_index, attribute_bytes)``.
    """

    offset: int
    version: int  # 4 or 6
    network: int
    length: int
    entries: list[tuple[int, bytes]]
    #: 4 for TABLE_DUMP_V2; 2 for the old TABLE_DUMP, whose AS_PATHs are
    #: 2-byte (with AS4_PATH for 4-byte ASes).
    asn_size: int = 4

    def prefix(self) -> Union[ipaddress.IPv4Network, ipaddress.IPv6Network]:
        width = 32 if self.version == 4 else 128
        addr = self.network << (width - self.length) if self.length else 0
        cls = ipaddress.IPv4Network if self.version == 4 else ipaddress.IPv6Network
        return cls((addr, self.length))


@attrs.define
class MrtStats:
    """What a read saw.  ``skipped_types`` counts records of MRT types we do
    not read (by type); ``skipped_subtypes`` TABLE_DUMP_V2 records of
    subtypes we do not model (by subtype)."""

    records: int = 0
    rib_records: int = 0
    rib_entries: int = 0
    corrupt_records: int = 0
    skipped_types: Counter = attrs.Factory(Counter)
    skipped_subtypes: Counter = attrs.Factory(Counter)
    truncated_at: Optional[int] = None
    bytes_read: int = 0


# ---------------------------------------------------------------- decompression

def _magic_kind(head: bytes) -> str:
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:3] == b"BZh":
        return "bzip2"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    return "plain"


def _new_decompressor(kind: str):
    if kind == "gzip":
        return zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    if kind == "bzip2":
        return bz2.BZ2Decompressor()
    return lzma.LZMADecompressor()


class _Chunks:
    """Iterates decompressed chunks; afterwards ``compressed_cut`` tells
    whether the compressed stream itself ended early (published excerpts
    are cut in the middle of a bzip2 block) and ``kind`` what it was."""

    def __init__(self, fileobj: BinaryIO, chunk: int = _CHUNK) -> None:
        self._f = fileobj
        self._chunk = chunk
        self.kind = "plain"
        self.compressed_cut = False
        self.compressed_error: Optional[str] = None

    def __iter__(self) -> Iterator[bytes]:
        head = self._f.read(self._chunk)
        self.kind = _magic_kind(head)
        if self.kind == "plain":
            while head:
                yield head
                head = self._f.read(self._chunk)
            return
        dec = _new_decompressor(self.kind)
        data = head
        while True:
            if not data:
                data = self._f.read(self._chunk)
                if not data:
                    # A stream that stopped before its end-of-stream marker.
                    if not dec.eof:
                        self.compressed_cut = True
                    return
            try:
                out = dec.decompress(data)
            except (OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
                self.compressed_error = str(exc) or exc.__class__.__name__
                return
            if out:
                yield out
            if dec.eof:
                # Concatenated members (gzip -c a b, pbzip2): start again on
                # what follows, unless it is padding.
                data = dec.unused_data
                if not data.strip(b"\x00"):
                    data = self._f.read(self._chunk)
                    if not data:
                        return
                dec = _new_decompressor(self.kind)
                continue
            data = b""


def open_decompressed(path: Union[str, os.PathLike]) -> bytes:
    """The whole decompressed content of ``path`` (tests, small files); a
    cut compressed stream gives what could be decompressed."""
    with open(path, "rb") as f:
        return b"".join(_Chunks(f))


# ---------------------------------------------------------------- attributes

def _ip(b: bytes):
    return ipaddress.IPv4Address(b) if len(b) == 4 else ipaddress.IPv6Address(b)


def _parse_as_path(b: bytes, asn_size: int) -> tuple[Segment, ...]:
    segs: list[Segment] = []
    i, n = 0, len(b)
    fmt = ">%d" + ("I" if asn_size == 4 else "H")
    while i < n:
        if i + 2 > n:
            raise MrtError("AS_PATH segment header cut short")
        stype, count = b[i], b[i + 1]
        i += 2
        end = i + count * asn_size
        if end > n:
            raise MrtError(f"AS_PATH segment of {count} ASes overruns the attribute")
        asns = struct.unpack_from(fmt % count, b, i)
        i = end
        if stype == AS_SEQUENCE:
            segs.append(asns)
        elif stype == AS_SET:
            segs.append(frozenset(asns))
        elif stype in (AS_CONFED_SEQUENCE, AS_CONFED_SET):
            continue
        else:
            raise MrtError(f"AS_PATH segment type {stype} unknown")
    return tuple(segs)


def _merge_as4(as_path: tuple[Segment, ...], as4: tuple[Segment, ...]) -> tuple[Segment, ...]:
    """RFC 6793 section 4.2.3: replace the tail of a 2-byte AS_PATH by
    AS4_PATH (only for TABLE_DUMP v1 / 2-byte sessions; TABLE_DUMP_V2 paths
    are always 4-byte and carry no AS4_PATH)."""
    def count(segs):
        return sum(len(s) if isinstance(s, tuple) else 1 for s in segs)
    n, n4 = count(as_path), count(as4)
    if n4 > n:
        return as_path
    keep = n - n4
    out: list[Segment] = []
    for s in as_path:
        if keep <= 0:
            break
        if isinstance(s, tuple):
            take = s[:keep]
            out.append(take)
            keep -= len(take)
        else:
            out.append(s)
            keep -= 1
    return tuple(out) + as4


def _mp_next_hop(b: bytes):
    """Next hop of an MP_REACH_NLRI attribute in either form: RFC 6396's
    abbreviated one (next-hop length, next hop) or the full RFC 4760 one
    (AFI, SAFI, length, next hop, reserved, NLRI).  They are told apart the
    way bgpdump does: abbreviated iff the first byte + 1 is the length (the
    full form starts with a 2-byte AFI whose high byte is 0)."""
    if not b:
        raise MrtError("MP_REACH_NLRI empty")
    if b[0] + 1 == len(b):
        nhlen, start = b[0], 1
    else:
        if len(b) < 5:
            raise MrtError("MP_REACH_NLRI cut short")
        nhlen, start = b[3], 4
        if start + nhlen > len(b):
            raise MrtError("MP_REACH_NLRI next hop overruns the attribute")
    nh = b[start:start + nhlen]
    if nhlen in (16, 32):
        # 32 = global + link-local (RFC 2545): keep the global one.
        return ipaddress.IPv6Address(nh[:16])
    if nhlen == 4:
        return ipaddress.IPv4Address(nh)
    if nhlen in (12, 24):
        # VPN forms: 8-byte route distinguisher first.
        return _ip(nh[8:]) if nhlen == 12 else ipaddress.IPv6Address(nh[8:24])
    if nhlen == 0:
        return None
    raise MrtError(f"MP_REACH_NLRI next hop length {nhlen} not understood")


def decode_attributes(blob: bytes, version: int = 4, asn_size: int = 4) -> PathAttributes:
    """Decode a BGP path attribute blob (as stored in a RIB entry).

    ``version`` (4/6) picks which next hop applies; ``asn_size`` is 4 for
    TABLE_DUMP_V2.  Raises :class:`MrtError` (without offset) on malformed
    attributes."""
    i, n = 0, len(blob)
    as_path: tuple[Segment, ...] = ()
    as4_path: Optional[tuple[Segment, ...]] = None
    next_hop = None
    mp_hop = None
    while i < n:
        if i + 3 > n:
            raise MrtError("path attribute header cut short")
        flags, atype = blob[i], blob[i + 1]
        if flags & 0x10:
            if i + 4 > n:
                raise MrtError("path attribute header cut short")
            alen = (blob[i + 2] << 8) | blob[i + 3]
            i += 4
        else:
            alen = blob[i + 2]
            i += 3
        end = i + alen
        if end > n:
            raise MrtError(f"path attribute {atype} of length {alen} overruns the entry")
        if atype == 2:
            as_path = _parse_as_path(blob[i:end], asn_size)
        elif atype == 3:
            if alen != 4:
                raise MrtError(f"NEXT_HOP of length {alen}")
            next_hop = ipaddress.IPv4Address(blob[i:end])
        elif atype == 14:
            mp_hop = _mp_next_hop(blob[i:end])
        elif atype == 17 and asn_size == 2:
            as4_path = _parse_as_path(blob[i:end], 4)
        i = end
    if as4_path is not None:
        as_path = _merge_as4(as_path, as4_path)
    if version == 6:
        nh = mp_hop if mp_hop is not None else next_hop
    else:
        nh = next_hop if next_hop is not None else mp_hop
    if as_path:
        last = as_path[-1]
        origins = frozenset((last[-1],)) if isinstance(last, tuple) else last
    else:
        origins = frozenset()
    return PathAttributes(as_path=as_path, next_hop=nh, origin_asns=origins)


# ---------------------------------------------------------------- the reader

Source = Union[str, os.PathLike, BinaryIO]


class MrtReader:
    """Iterate the RIB records of one MRT file.

    ``source`` is a path or a binary file object.  ``warn`` receives one
    line per problem (default: ignore; see ``stats``).  After the
    iteration, :attr:`peers` is the PEER_INDEX_TABLE (list of
    :class:`Peer`, index = peer index) and :attr:`stats` the counts.
    """

    def __init__(self, source: Source, warn: Optional[Callable[[str], None]] = None,
                 strict: bool = False, name: Optional[str] = None,
                 chunk_size: int = _CHUNK) -> None:
        self._source = source
        self._warn = warn or (lambda msg: None)
        self._strict = strict
        self._chunk = chunk_size
        if name is None:
            name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else getattr(source, "name", "<stream>")
        self.name = str(name)
        self.peers: list[Peer] = []
        #: Bumped whenever :attr:`peers` changes (a new PEER_INDEX_TABLE, or
        #: a new peer seen in an old TABLE_DUMP file).
        self.peers_version = 0
        self._v1_peers: dict[tuple, int] = {}
        self.collector_bgp_id: Optional[ipaddress.IPv4Address] = None
        self.view_name = ""
        self.stats = MrtStats()

    # -- problems
    def _problem(self, msg: str, offset: Optional[int]) -> None:
        err = MrtError(msg, offset)
        if self._strict:
            raise err
        self._warn(f"{self.name}: {err}")

    def __iter__(self) -> Iterator[RibRecord]:
        if isinstance(self._source, (str, os.PathLike)):
            with open(self._source, "rb") as f:
                yield from self._run(f)
        else:
            yield from self._run(self._source)

    def _run(self, f: BinaryIO) -> Iterator[RibRecord]:
        chunks = _Chunks(f, self._chunk)
        stats = self.stats
        hdr_unpack = _HDR.unpack_from
        buf = b""
        pos = 0          # position in buf
        base = 0         # stream offset of buf[0]
        first = True
        for chunk in chunks:
            if pos < len(buf):
                buf = buf[pos:] + chunk
            else:
                buf = chunk
            base += pos
            pos = 0
            n = len(buf)
            while pos + 12 <= n:
                _ts, mtype, sub, length = hdr_unpack(buf, pos)
                if first:
                    first = False
                    if mtype not in _KNOWN_TYPES or length > MAX_RECORD_LENGTH:
                        raise MrtError(f"{self.name}: not an MRT file (first record type {mtype}, "
                                       f"length {length})", 0)
                if length > MAX_RECORD_LENGTH:
                    # Not a record boundary we can trust: stop here.
                    stats.bytes_read = base + pos
                    self._problem(f"record length {length} implausible, reading stops", base + pos)
                    return
                end = pos + 12 + length
                if end > n:
                    break  # wait for more data
                stats.records += 1
                if mtype == TABLE_DUMP_V2:
                    if sub == RIB_IPV4_UNICAST or sub == RIB_IPV6_UNICAST:
                        rec = self._rib(buf, pos + 12, end, 4 if sub == RIB_IPV4_UNICAST else 6,
                                        base + pos)
                        if rec is not None:
                            yield rec
                    elif sub == PEER_INDEX_TABLE:
                        self._peer_table(buf, pos + 12, end, base + pos)
                    else:
                        stats.skipped_subtypes[sub] += 1
                elif mtype == TABLE_DUMP and (sub == 1 or sub == 2):
                    rec = self._table_dump_v1(buf, pos + 12, end, 4 if sub == 1 else 6, base + pos)
                    if rec is not None:
                        yield rec
                else:
                    stats.skipped_types[mtype] += 1
                pos = end
        stats.bytes_read = base + pos
        tail = len(buf) - pos
        why = ""
        if chunks.compressed_error:
            why = f"{chunks.kind} stream corrupt ({chunks.compressed_error}); "
        elif chunks.compressed_cut:
            why = f"{chunks.kind} stream ends early; "
        if first and not tail and not why:
            return  # empty file: nothing to say
        if first and tail:
            # Fewer than 12 bytes in all, or not a single whole record.
            if tail < 12 or hdr_unpack(buf, pos)[1] not in _KNOWN_TYPES:
                raise MrtError(f"{self.name}: not an MRT file", 0)
        if tail or why:
            stats.truncated_at = base + pos
            what = f"{tail} trailing bytes of a cut record dropped" if tail else "no partial record"
            self._problem(f"file cut short: {why}read up to the last whole record, {what}",
                          base + pos)

    def _peer_table(self, buf: bytes, p: int, end: int, offset: int) -> None:
        try:
            self.collector_bgp_id = ipaddress.IPv4Address(buf[p:p + 4])
            (nlen,) = _U16.unpack_from(buf, p + 4)
            p += 6
            self.view_name = buf[p:p + nlen].decode("utf-8", "replace")
            p += nlen
            (count,) = _U16.unpack_from(buf, p)
            p += 2
            peers = []
            for idx in range(count):
                ptype = buf[p]
                bgp_id = ipaddress.IPv4Address(buf[p + 1:p + 5])
                p += 5
                alen = 16 if ptype & 1 else 4
                ip = _ip(buf[p:p + alen])
                p += alen
                if ptype & 2:
                    (asn,) = struct.unpack_from(">I", buf, p)
                    p += 4
                else:
                    (asn,) = _U16.unpack_from(buf, p)
                    p += 2
                if p > end:
                    raise IndexError
                peers.append(Peer(index=idx, bgp_id=bgp_id, ip=ip, asn=asn))
        except (IndexError, struct.error, ValueError):
            self.stats.corrupt_records += 1
            self._problem("PEER_INDEX_TABLE corrupt", offset)
            return
        self.peers = peers
        self.peers_version += 1

    def _table_dump_v1(self, buf: bytes, p: int, end: int, version: int,
                       offset: int) -> Optional[RibRecord]:
        """RFC 6396 section 4.2: one route per record, the peer named in
        the record (no peer table: peers are numbered as first seen, with
        BGP identifier 0.0.0.0), 2-byte AS paths."""
        alen = 4 if version == 4 else 16
        try:
            if p + 4 + alen + 8 + alen + 4 > end:
                raise MrtError("TABLE_DUMP record cut short")
            width = alen * 8
            a = int.from_bytes(buf[p + 4:p + 4 + alen], "big")
            plen = buf[p + 4 + alen]
            if plen > width:
                raise MrtError(f"prefix length {plen}")
            q = p + 4 + alen + 6
            ip = _ip(buf[q:q + alen])
            q += alen
            asn, attr_len = struct.unpack_from(">HH", buf, q)
            q += 4
            if q + attr_len > end:
                raise MrtError("TABLE_DUMP attributes overrun the record")
        except MrtError as exc:
            self.stats.corrupt_records += 1
            self._problem(f"TABLE_DUMP record corrupt: {exc.reason}", offset)
            return None
        key = (ip, asn)
        idx = self._v1_peers.get(key)
        if idx is None:
            idx = self._v1_peers[key] = len(self.peers)
            self.peers = self.peers + [Peer(index=idx, bgp_id=ipaddress.IPv4Address(0), ip=ip, asn=asn)]
            self.peers_version += 1
        self.stats.rib_records += 1
        self.stats.rib_entries += 1
        return RibRecord(offset=offset, version=version, network=a >> (width - plen) if plen else 0,
                         length=plen, entries=[(idx, buf[q:q + attr_len])], asn_size=2)

    def _rib(self, buf: bytes, p: int, end: int, version: int, offset: int) -> Optional[RibRecord]:
        stats = self.stats
        try:
            _seq, plen = _RIB_HEAD.unpack_from(buf, p)
            width = 32 if version == 4 else 128
            if plen > width:
                raise MrtError(f"prefix length {plen}")
            nb = (plen + 7) >> 3
            p += 5
            net = int.from_bytes(buf[p:p + nb], "big") >> ((nb << 3) - plen)
            p += nb
            (count,) = _U16.unpack_from(buf, p)
            p += 2
            npeers = len(self.peers)
            entries = []
            append = entries.append
            unpack = _ENTRY.unpack_from
            for _ in range(count):
                peer, _t, alen = unpack(buf, p)
                p += 8
                q = p + alen
                if q > end or peer >= npeers:
                    if q > end:
                        raise MrtError("RIB entry overruns the record")
                    if not npeers:
                        raise MrtError("RIB record before any PEER_INDEX_TABLE")
                    raise MrtError(f"peer index {peer} not in the PEER_INDEX_TABLE ({npeers} peers)")
                append((peer, buf[p:q]))
                p = q
            if p > end:
                raise MrtError("RIB record cut short")
        except struct.error:
            stats.corrupt_records += 1
            self._problem("RIB record corrupt: cut short inside the record", offset)
            return None
        except MrtError as exc:
            stats.corrupt_records += 1
            self._problem(f"RIB record corrupt: {exc.reason}", offset)
            return None
        stats.rib_records += 1
        stats.rib_entries += count
        return RibRecord(offset=offset, version=version, network=net, length=plen, entries=entries)


@attrs.frozen
class DecodedRoute:
    """One fully decoded RIB entry (see :func:`iter_routes`)."""

    peer: Peer
    prefix: Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
    attributes: PathAttributes


def iter_routes(source: Source, warn: Optional[Callable[[str], None]] = None,
                strict: bool = False) -> Iterator[DecodedRoute]:
    """Every RIB entry of ``source``, attributes decoded.  A malformed
    attribute blob is reported like a corrupt record (its record offset)
    and the entry skipped."""
    reader = MrtReader(source, warn=warn, strict=strict)
    for rec in reader:
        prefix = rec.prefix()
        for peer_index, blob in rec.entries:
            try:
                attrs_ = decode_attributes(blob, rec.version, rec.asn_size)
            except MrtError as exc:
                reader.stats.corrupt_records += 1
                reader._problem(f"RIB entry of peer {peer_index} for {prefix}: {exc.reason}", rec.offset)
                continue
            yield DecodedRoute(peer=reader.peers[peer_index], prefix=prefix, attributes=attrs_)
