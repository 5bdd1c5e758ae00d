"""ixpscamper.bgp.mrt: the MRT TABLE_DUMP_V2 reader.

Round trips through our writer (hypothesis), every way a file can be cut,
compression by magic, skipped types, corrupt records, fuzzed input, and
the real RouteViews excerpts Debian's python3-pyasn ships, compared with
``bgpdump -m`` on the same file.
"""

from __future__ import annotations

import bz2
import functools
import gzip
import io
import ipaddress
import lzma
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ixpscamper.bgp.mrt import (
    MrtError, MrtReader, Peer, PathAttributes, decode_attributes, iter_routes,
)
from ixpscamper.bgp.mrtwrite import MrtWriter, encode_attributes, encode_rib, encode_table_dump

PYASN_DATA = Path("/usr/lib/python3/dist-packages/data")
RV2_2014 = PYASN_DATA / "rib.20140523.0600_firstMB.bz2"
RV6_2015 = PYASN_DATA / "rib6.20151101.0600_firstMB.bz2"
RV_2008 = PYASN_DATA / "rib.20080501.0644_firstMB.bz2"  # the old TABLE_DUMP format

requires_bgpdump = pytest.mark.skipif(shutil.which("bgpdump") is None,
                                      reason="bgpdump not installed (apt-get install bgpdump)")


def _excerpt(path: Path):
    return pytest.mark.skipif(not path.exists(),
                              reason=f"{path} absent (apt-get install python3-pyasn)")


# ------------------------------------------------------------------ helpers

def v4(s): return ipaddress.IPv4Address(s)
def v6(s): return ipaddress.IPv6Address(s)


def small_file(mp_full: bool = False) -> tuple[bytes, list[tuple]]:
    """A 4-record file (peer table + 3 RIB records) and its expected routes
    as (peer index, prefix, as_path, next_hop)."""
    peers = [Peer(0, v4("192.0.2.1"), v4("192.0.2.1"), 64500),
             Peer(1, v4("192.0.2.2"), v6("2001:db8::2"), 4200000001)]
    routes = [
        (0, ipaddress.ip_network("198.51.100.0/24"), ((64500, 64501),), v4("192.0.2.1")),
        (1, ipaddress.ip_network("198.51.100.0/24"), ((4200000001, 64501),), v4("192.0.2.2")),
        (0, ipaddress.ip_network("203.0.113.0/25"), ((64500,), frozenset({7, 8})), v4("192.0.2.1")),
        (1, ipaddress.ip_network("2001:db8:1::/48"), ((4200000001, 64502, 64502),), v6("2001:db8::2")),
    ]
    f = io.BytesIO()
    w = MrtWriter(f)
    w.write_peers(peers)
    by_prefix: dict = {}
    for peer, prefix, path, nh in routes:
        ll = v6("fe80::2") if nh.version == 6 else None
        by_prefix.setdefault(prefix, []).append(
            (peer, encode_attributes(path, nh, prefix.version, mp_full=mp_full, link_local=ll)))
    for prefix, entries in by_prefix.items():
        w.write_rib(prefix, entries)
    return f.getvalue(), routes


def read_all(data: bytes, **kw):
    warnings: list[str] = []
    reader = MrtReader(io.BytesIO(data), warn=warnings.append, name="t.mrt", **kw)
    routes = []
    for rec in reader:
        for peer, blob in rec.entries:
            pa = decode_attributes(blob, rec.version)
            routes.append((peer, rec.prefix(), pa.as_path, pa.next_hop))
    return routes, warnings, reader


def record_bounds(data: bytes) -> list[int]:
    """Offsets where records end (walking the headers)."""
    out, p = [], 0
    while p + 12 <= len(data):
        p += 12 + int.from_bytes(data[p + 8:p + 12], "big")
        out.append(p)
    return out


# ------------------------------------------------------------------ round trips

asns = st.one_of(st.integers(1, 65535), st.integers(65536, 2**32 - 1))
segments = st.lists(
    st.one_of(st.lists(asns, min_size=1, max_size=8).map(tuple),
              st.frozensets(asns, min_size=1, max_size=5)),
    min_size=0, max_size=4)


@st.composite
def dumps(draw):
    npeers = draw(st.integers(1, 6))
    peers = []
    for i in range(npeers):
        ip = draw(st.one_of(st.integers(1, 2**32 - 1).map(ipaddress.IPv4Address),
                            st.integers(1, 2**128 - 1).map(ipaddress.IPv6Address)))
        peers.append(Peer(i, ipaddress.IPv4Address(draw(st.integers(0, 2**32 - 1))), ip, draw(asns)))
    nprefixes = draw(st.integers(0, 6))
    prefixes = []
    for _ in range(nprefixes):
        if draw(st.booleans()):
            plen = draw(st.integers(0, 32))
            net = ipaddress.IPv4Network((draw(st.integers(0, 2**32 - 1)), plen), strict=False)
        else:
            plen = draw(st.integers(0, 128))
            net = ipaddress.IPv6Network((draw(st.integers(0, 2**128 - 1)), plen), strict=False)
        entries = []
        for peer in draw(st.lists(st.integers(0, npeers - 1), max_size=npeers, unique=True)):
            path = tuple(draw(segments))
            if net.version == 4:
                nh = draw(st.integers(1, 2**32 - 1).map(ipaddress.IPv4Address))
                ll = None
            else:
                nh = draw(st.integers(1, 2**128 - 1).map(ipaddress.IPv6Address))
                ll = draw(st.none() | st.integers(1, 2**64).map(lambda x: ipaddress.IPv6Address((0xfe80 << 112) | x)))
            entries.append((peer, path, nh, ll))
        prefixes.append((net, entries))
    return peers, prefixes


def write_dump(peers, prefixes, mp_full: bool) -> bytes:
    f = io.BytesIO()
    w = MrtWriter(f)
    w.write_peers(peers)
    for net, entries in prefixes:
        w.write_rib(net, [(p, encode_attributes(path, nh, net.version, mp_full=mp_full, link_local=ll))
                          for p, path, nh, ll in entries])
    return f.getvalue()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dump=dumps(), mp_full=st.booleans())
def test_round_trip(dump, mp_full):
    peers, prefixes = dump
    data = write_dump(peers, prefixes, mp_full)
    got = list(iter_routes(io.BytesIO(data), strict=True))
    want = [(peers[p], net, tuple(path), nh) for net, entries in prefixes for p, path, nh, _ll in entries]
    assert [(r.peer, r.prefix, r.attributes.as_path, r.attributes.next_hop) for r in got] == want
    for r, (_peer, _net, path, _nh) in zip(got, want):
        last = path[-1] if path else None
        expect = frozenset() if last is None else (last if isinstance(last, frozenset) else frozenset({last[-1]}))
        assert r.attributes.origin_asns == expect


def test_peer_table_as2_as4_v4_v6():
    data, _routes = small_file()
    _r, warnings, reader = read_all(data, strict=True)
    assert warnings == []
    assert reader.peers == [Peer(0, v4("192.0.2.1"), v4("192.0.2.1"), 64500),
                            Peer(1, v4("192.0.2.2"), v6("2001:db8::2"), 4200000001)]
    # Peer 0's ASN fits 2 bytes, so the writer used the AS2 form for it.
    assert data[12 + 4 + 2 + 2] == 0


@pytest.mark.parametrize("mp_full", [False, True])
def test_mp_reach_both_forms_keep_global_next_hop(mp_full):
    data, routes = small_file(mp_full=mp_full)
    got, warnings, _ = read_all(data, strict=True)
    assert warnings == []
    assert got == routes


def test_mp_reach_forms_decoded():
    nh, ll = v6("2001:db8::1"), v6("fe80::1")
    abbreviated = b"\x80\x0e\x21\x20" + nh.packed + ll.packed
    full = b"\x80\x0e\x25\x00\x02\x01\x20" + nh.packed + ll.packed + b"\x00"
    full_nlri = b"\x80\x0e\x1c\x00\x02\x01\x10" + nh.packed + b"\x00" + b"\x30\x20\x01\x0d\xb8\x00\x01"
    for blob in (abbreviated, full, full_nlri):
        assert decode_attributes(blob, 6).next_hop == nh
    # IPv4 route over an IPv6 next hop (RFC 8950): no NEXT_HOP attribute.
    assert decode_attributes(abbreviated, 4).next_hop == nh


def test_extended_length_attribute_and_long_path():
    path = (tuple(range(1, 301)),)  # 300 ASes: two segments, > 255 bytes
    blob = encode_attributes(path, v4("192.0.2.1"))
    pa = decode_attributes(blob)
    assert [a for seg in pa.as_path for a in seg] == list(range(1, 301))
    assert pa.origin_asns == {300}


def test_as4_path_merged_for_two_byte_paths():
    # TABLE_DUMP (v1) style: 2-byte AS_PATH with AS_TRANS, AS4_PATH carries the truth.
    as_path = b"\x40\x02\x08" + b"\x02\x03" + b"\x00\x01" + b"\x5b\xa0" * 2  # 1 23456 23456
    as4 = b"\xc0\x11\x0a\x02\x02" + (4200000001).to_bytes(4, "big") + (4200000002).to_bytes(4, "big")
    pa = decode_attributes(as_path + as4, 4, asn_size=2)
    assert pa.as_path == ((1,), (4200000001, 4200000002))
    assert pa.origin_asns == {4200000002}


@settings(max_examples=100, deadline=None)
@given(paths=st.lists(segments, min_size=1, max_size=5), v6_=st.booleans())
def test_old_table_dump_round_trip_with_as4_path(paths, v6_):
    """Old TABLE_DUMP: 2-byte AS_PATH (AS_TRANS for 4-byte ASes) + AS4_PATH
    -> the true 4-byte path."""
    prefix = ipaddress.ip_network("2001:db8::/32" if v6_ else "198.51.100.0/24")
    nh = v6("2001:db8::1") if v6_ else v4("192.0.2.1")
    peer_ip = (lambda i: v6(f"2001:db8::{i + 1}")) if v6_ else (lambda i: v4(f"192.0.2.{i + 1}"))
    data = b"".join(encode_table_dump(i, prefix, peer_ip(i), 64500 + i,
                                      encode_attributes(tuple(p), nh, prefix.version, asn_size=2))
                    for i, p in enumerate(paths))
    got = list(iter_routes(io.BytesIO(data), strict=True))
    assert [(r.peer.ip, r.peer.asn, r.prefix, r.attributes.as_path, r.attributes.next_hop) for r in got] == \
        [(peer_ip(i), 64500 + i, prefix, tuple(p), nh) for i, p in enumerate(paths)]


# ------------------------------------------------------------------ cut files

def test_truncation_at_every_byte():
    data, routes = small_file()
    bounds = record_bounds(data)
    assert bounds[-1] == len(data) and len(bounds) == 4
    for k in range(len(data) + 1):
        if 0 < k < 12:
            with pytest.raises(MrtError, match="not an MRT file"):
                read_all(data[:k])
            continue
        got, warnings, reader = read_all(data[:k])
        whole = [b for b in bounds if b <= k]
        # Routes of the whole RIB records only (record i holds routes by prefix).
        nrib = max(len(whole) - 1, 0)
        prefixes = list(dict.fromkeys(r[1] for r in routes))[:nrib]
        assert got == [r for r in routes if r[1] in prefixes], k
        last = whole[-1] if whole else 0
        if k == last:
            assert warnings == [], k
        else:
            assert len(warnings) == 1, (k, warnings)
            assert f"at byte offset {last})" in warnings[0] and "cut short" in warnings[0]
            assert reader.stats.truncated_at == last


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress])
def test_compressed_by_magic_not_name(tmp_path, compress):
    data, routes = small_file()
    p = tmp_path / "rib.mrt"  # no telling suffix
    p.write_bytes(compress(data))
    got = [(r.peer.index, r.prefix, r.attributes.as_path, r.attributes.next_hop)
           for r in iter_routes(p, strict=True)]
    assert got == routes


def test_concatenated_gzip_members(tmp_path):
    data, routes = small_file()
    b = record_bounds(data)[1]
    p = tmp_path / "x.gz"
    p.write_bytes(gzip.compress(data[:b]) + gzip.compress(data[b:]))
    assert len(list(iter_routes(p, strict=True))) == len(routes)


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress])
def test_cut_compressed_stream_one_warning(compress):
    data, routes = small_file()
    data = data * 50  # several records, and bz2 blocks have something to give
    z = compress(data)
    warnings: list[str] = []
    n = sum(len(r.entries) for r in MrtReader(io.BytesIO(z[: len(z) * 2 // 3]), warn=warnings.append))
    assert len(warnings) == 1 and "cut short" in warnings[0] and "stream ends early" in warnings[0]
    assert n <= len(routes) * 50


# ------------------------------------------------------------------ bad input

def test_not_mrt():
    with pytest.raises(MrtError, match="not an MRT file"):
        list(MrtReader(io.BytesIO(b"TABLE_DUMP2|1400824800|B|196.7.106.245|2905|0.0.0.0/0|\n" * 3)))
    with pytest.raises(MrtError, match="not an MRT file"):
        list(MrtReader(io.BytesIO(gzip.compress(b"hello world, this is not MRT at all\n"))))


def test_empty_file_is_empty():
    warnings: list[str] = []
    r = MrtReader(io.BytesIO(b""), warn=warnings.append)
    assert list(r) == [] and warnings == []


def test_unknown_types_and_subtypes_skipped_and_counted():
    data, routes = small_file()
    f = io.BytesIO()
    w = MrtWriter(f)
    w.write_raw(16, 4, b"\x00" * 20)    # BGP4MP message: not a RIB
    w.write_raw(99, 0, b"junk")         # unknown type
    w.write_raw(13, 3, b"\x00" * 7)     # RIB_IPV4_MULTICAST
    w.write_raw(13, 5, b"")             # RIB_IPV6_MULTICAST
    w.write_raw(13, 6, b"\x00" * 9)     # RIB_GENERIC
    w.write_raw(13, 8, b"\x00" * 9)     # RIB_IPV4_UNICAST_ADDPATH
    b = record_bounds(data)[0]
    got, warnings, reader = read_all(data[:b] + f.getvalue() + data[b:], strict=True)
    assert got == routes and warnings == []
    assert reader.stats.skipped_types == {16: 1, 99: 1}
    assert reader.stats.skipped_subtypes == {3: 1, 5: 1, 6: 1, 8: 1}


def test_corrupt_record_named_by_offset_others_read():
    data, routes = small_file()
    bounds = record_bounds(data)
    # Make the second RIB record's first entry claim more attribute bytes
    # than the record holds.
    start = bounds[1]
    body = bytearray(data[start:bounds[2]])
    nb = (24 + 7) // 8
    entry = 12 + 5 + nb + 2
    body[entry + 6:entry + 8] = (0xFFFF).to_bytes(2, "big")
    bad = data[:start] + bytes(body) + data[bounds[2]:]
    got, warnings, reader = read_all(bad)
    assert len(warnings) == 1
    assert f"(at byte offset {start})" in warnings[0] and "overruns" in warnings[0]
    assert got == [r for r in routes if str(r[1]) != "203.0.113.0/25"]
    assert reader.stats.corrupt_records == 1
    with pytest.raises(MrtError, match=f"at byte offset {start}"):
        read_all(bad, strict=True)


def test_rib_before_peer_table():
    data, _ = small_file()
    b = record_bounds(data)[0]
    _got, warnings, _r = read_all(data[b:b + 200][: record_bounds(data[b:])[0]])
    assert len(warnings) == 1 and "before any PEER_INDEX_TABLE" in warnings[0]


def test_bad_prefix_length():
    f = io.BytesIO()
    MrtWriter(f).write_peers([Peer(0, v4("192.0.2.1"), v4("192.0.2.1"), 1)])
    f.write(encode_rib(0, ipaddress.ip_network("10.0.0.0/8"), []).replace(b"\x00\x00\x00\x00\x08", b"\x00\x00\x00\x00\x29", 1))
    _got, warnings, _r = read_all(f.getvalue())
    assert len(warnings) == 1 and "prefix length 41" in warnings[0]


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_fuzzed_bytes_records_or_clean_error(data):
    base, _ = small_file(mp_full=data.draw(st.booleans()))
    buf = bytearray(base)
    for _ in range(data.draw(st.integers(1, 8))):
        i = data.draw(st.integers(0, len(buf) - 1))
        buf[i] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        buf = buf[: data.draw(st.integers(0, len(buf)))]
    warnings: list[str] = []
    try:
        for r in iter_routes(io.BytesIO(bytes(buf)), warn=warnings.append):
            assert isinstance(r.attributes, PathAttributes)
    except MrtError as exc:
        assert "not an MRT file" in str(exc) or exc.offset is not None
    for w in warnings:
        assert "\n" not in w and "byte offset" in w


# ------------------------------------------------------------------ real data vs bgpdump

@functools.lru_cache(maxsize=4)
def bgpdump_routes(path: Path) -> list[tuple[str, str, str, str]]:
    """(peer ip, prefix, as path with sets sorted, next hop) per line of
    ``bgpdump -m``."""
    out = subprocess.run(["bgpdump", "-m", str(path)], capture_output=True, text=True, timeout=120).stdout
    rows = []
    for line in out.splitlines():
        f = line.split("|")
        if len(f) < 9 or f[0] not in ("TABLE_DUMP2", "TABLE_DUMP"):
            continue
        # Addresses through ipaddress: bgpdump's inet_ntop writes a single
        # zero group as "0", Python as "::".
        rows.append((_norm_ip(f[3]), str(ipaddress.ip_network(f[5])), _norm_path(f[6]), _norm_ip(f[8])))
    return rows


@functools.lru_cache(maxsize=None)
def _norm_ip(s: str) -> str:
    return str(ipaddress.ip_address(s))


@functools.lru_cache(maxsize=None)
def _norm_path(s: str) -> str:
    parts = []
    for tok in s.split(" ") if s else []:
        if tok.startswith("{"):
            tok = "{" + ",".join(str(a) for a in sorted(int(x) for x in tok.strip("{}").split(","))) + "}"
        parts.append(tok)
    return " ".join(parts)


def our_path(as_path) -> str:
    return " ".join(" ".join(map(str, seg)) if isinstance(seg, tuple)
                    else "{" + ",".join(map(str, sorted(seg))) + "}" for seg in as_path)


@pytest.mark.slow
@requires_bgpdump
@pytest.mark.parametrize("path", [pytest.param(RV2_2014, marks=_excerpt(RV2_2014)),
                                  pytest.param(RV6_2015, marks=_excerpt(RV6_2015)),
                                  pytest.param(RV_2008, marks=_excerpt(RV_2008))],
                         ids=["route-views2-2014", "route-views6-2015", "route-views-2008-table-dump-v1"])
def test_real_excerpt_equals_bgpdump(path):
    warnings: list[str] = []
    ours = [(str(r.peer.ip), str(r.prefix), our_path(r.attributes.as_path), str(r.attributes.next_hop))
            for r in iter_routes(path, warn=warnings.append)]
    theirs = bgpdump_routes(path)
    assert len(theirs) > 100_000
    assert ours == theirs
    # The excerpt is the first MiB of a bzip2 file: one warning, naming where.
    assert len(warnings) == 1 and "cut short" in warnings[0] and "byte offset" in warnings[0]
