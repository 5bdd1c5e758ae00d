"""Bad input: every decode ends quickly with records and/or one WartsError that
carries the byte offset; never another exception, a hang, or unbounded memory."""

from __future__ import annotations

import io
import ipaddress
import struct
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import FIXTURES
from ixpscamper.warts import (MAX_RECORD_LENGTH, Ping, Trace, UnknownRecord, WartsDecoder,
                              WartsError, encode_record, iter_records, iter_text, read_records,
                              render_text)

CASES = sorted(p.stem for p in FIXTURES.glob("*.warts"))
BLOBS = {c: (FIXTURES / f"{c}.warts").read_bytes() for c in CASES}


def boundaries(data: bytes) -> list[int]:
    out, pos = [0], 0
    while pos < len(data):
        pos += 8 + struct.unpack_from(">I", data, pos + 4)[0]
        out.append(pos)
    return out


def decode_all(data: bytes):
    """(records, error) from the streaming reader."""
    recs = []
    try:
        for r in iter_records(io.BytesIO(data)):
            recs.append(r)
    except WartsError as e:
        return recs, e
    return recs, None


def decode_incremental(data: bytes, step: int = 7):
    dec = WartsDecoder()
    recs = []
    try:
        for i in range(0, len(data), step):
            recs += dec.feed(data[i:i + step])
        recs += dec.feed(b"")
        dec.close()
    except WartsError as e:
        return recs, e
    return recs, None


@pytest.mark.parametrize("case", ["trace-pmtud", "ping-record-route", "multi-trace-ping"])
def test_every_truncation(case):
    data = BLOBS[case]
    full = read_records(data)
    bounds = boundaries(data)
    for cut in range(len(data)):
        for fn in (decode_all, decode_incremental):
            recs, err = fn(data[:cut])
            complete = max(b for b in bounds if b <= cut)
            n = bounds.index(complete)
            assert recs == full[:n]
            if cut == complete:
                assert err is None
            else:
                assert err is not None and err.offset == complete
                assert "truncated" in err.reason
                assert str(err).startswith(f"offset {complete}: ")


def test_wrong_magic():
    data = bytearray(BLOBS["trace-udp"])
    data[0:2] = b"\x12\x06"
    recs, err = decode_all(bytes(data))
    assert recs == [] and err.offset == 0 and "magic" in err.reason
    # a bad magic later in the stream: records before it are delivered
    data = bytearray(BLOBS["trace-udp"])
    second = boundaries(bytes(data))[1]
    data[second] = 0
    recs, err = decode_all(bytes(data))
    assert len(recs) == 1 and err.offset == second


def test_not_warts_at_all():
    recs, err = decode_all(b"traceroute from 192.0.2.10 to 198.51.100.66\n")
    assert recs == [] and err.offset == 0


def test_length_past_end():
    data = bytearray(BLOBS["ping-v6"])
    b = boundaries(bytes(data))
    struct.pack_into(">I", data, b[2] + 4, 100000)  # the ping record claims 100000 bytes
    for fn in (decode_all, decode_incremental):
        recs, err = fn(bytes(data))
        assert len(recs) == 2 and err.offset == b[2] and "truncated" in err.reason


def test_huge_length_rejected_without_allocating():
    hdr = struct.pack(">HHI", 0x1205, 6, 0xFFFFFFF0)
    recs, err = decode_all(hdr + b"\x00" * 10)
    assert err.offset == 0 and "limit" in err.reason
    dec = WartsDecoder()
    with pytest.raises(WartsError):
        dec.feed(hdr)
    # a length under the cap but beyond the data: only what was fed is held
    dec = WartsDecoder()
    assert dec.feed(struct.pack(">HHI", 0x1205, 6, MAX_RECORD_LENGTH) + b"x" * 100) == []
    assert dec.pending == 108
    with pytest.raises(WartsError, match="truncated"):
        dec.close()


def test_type_zero_rejected():
    recs, err = decode_all(struct.pack(">HHI", 0x1205, 0, 0))
    assert err.offset == 0 and "type 0" in err.reason


def test_unknown_record_types_are_stepped_over():
    data = BLOBS["trace-icmp"]
    b = boundaries(data)
    odd = struct.pack(">HHI", 0x1205, 0x0099, 5) + b"hello"
    # type 0x21 is one no reader decodes: stepped over
    host = struct.pack(">HHI", 0x1205, 0x0021, 3) + b"abc"
    mixed = data[:b[2]] + odd + data[b[2]:b[3]] + host + data[b[3]:]
    recs, err = decode_all(mixed)
    assert err is None
    assert [type(r).__name__ for r in recs] == ["WartsList", "CycleStart", "UnknownRecord", "Trace",
                                                "UnknownRecord", "CycleStop"]
    assert recs[2] == UnknownRecord(0x99, b"hello")
    assert encode_record(recs[2]) == odd
    assert [type(r).__name__ for r in iter_records(io.BytesIO(mixed), skip_unknown=True)] == [
        "WartsList", "CycleStart", "Trace", "CycleStop"]
    # http (15) is decoded now: a malformed one is an error at its offset
    http = struct.pack(">HHI", 0x1205, 0x000F, 3) + b"abc"
    recs, err = decode_all(data[:b[3]] + http + data[b[3]:])
    assert len(recs) == 3 and err.offset == b[3] and "http" in err.reason
    # so are tbit (11), host (14) and owamp (17)
    for rtype, name in ((0x0B, "tbit"), (0x0E, "host"), (0x11, "owamp")):
        bad = struct.pack(">HHI", 0x1205, rtype, 3) + b"abc"
        recs, err = decode_all(data[:b[3]] + bad + data[b[3]:])
        assert len(recs) == 3 and err.offset == b[3] and name in err.reason, (name, err)


def _add_unknown_field(body: bytes, pos: int, fid: int = 40, value: bytes = b"\x01\x02\x03"):
    """Add field ``fid`` (unknown to the reader) to the flags+params at ``pos``."""
    end = pos
    while body[end] & 0x80:
        end += 1
    flags = bytearray(body[pos:end + 1])
    need = (fid - 1) // 7 + 1
    while len(flags) < need:
        flags[-1] |= 0x80
        flags.append(0)
    flags[(fid - 1) // 7] |= 1 << ((fid - 1) % 7)
    p = end + 1
    plen = struct.unpack_from(">H", body, p)[0]
    params = body[p + 2:p + 2 + plen]
    new = bytes(flags) + struct.pack(">H", plen + len(value)) + params + value
    return body[:pos] + new + body[p + 2 + plen:]


def _params_end(body: bytes, pos: int) -> int:
    while body[pos] & 0x80:
        pos += 1
    return pos + 3 + struct.unpack_from(">H", body, pos + 1)[0]


@pytest.mark.parametrize("case", ["trace-rtr-rB", "ping-icmp-time"])
def test_unknown_newer_fields_are_skipped_by_length(case):
    data = BLOBS[case]
    b = boundaries(data)
    rec = data[b[2]:b[3]]
    body = rec[8:]
    orig = read_records(data)[2]
    # newer field in the header, and in the first hop / reply (after the u16 count)
    hdr_end = _params_end(body, 0)
    body2 = _add_unknown_field(body, hdr_end + 2)
    body2 = _add_unknown_field(body2, 0, fid=45, value=b"\x00" * 9)
    rec2 = struct.pack(">HHI", 0x1205, struct.unpack_from(">H", rec, 2)[0], len(body2)) + body2
    got = read_records(data[:b[2]] + rec2 + data[b[3]:])
    assert got[2] == orig


def test_unknown_flag_bits_preserved():
    tr = Trace(dst=ipaddress.IPv4Address("192.0.2.1"), flags=0x80000100 | 0x01)
    back = read_records(encode_record(tr))[0]
    assert back.flags == 0x80000101
    p = Ping(dst=ipaddress.IPv6Address("2001:db8::1"), flags=0x40000000)
    assert read_records(encode_record(p))[0].flags == 0x40000000


def _corrupt_first_trace(mutator):
    data = bytearray(BLOBS["trace-udp"])
    b = boundaries(bytes(data))
    body = bytearray(data[b[2] + 8:b[3]])
    mutator(body)
    rec = struct.pack(">HHI", 0x1205, 6, len(body)) + bytes(body)
    return bytes(data[:b[2]]) + rec + bytes(data[b[3]:]), b[2]


def test_bad_address_type_and_reference():
    def bad_type(body):
        i = body.index(bytes([4, 1, 192, 0, 2, 10]))  # the source address, defined
        body[i + 1] = 7

    data, off = _corrupt_first_trace(bad_type)
    recs, err = decode_all(data)
    assert len(recs) == 2 and err.offset == off and "address" in err.reason

    def bad_ref(body):
        i = body.rindex(bytes([0, 0, 0, 0, 1]))  # a reference to index 1
        body[i + 4] = 200

    data, off = _corrupt_first_trace(bad_ref)
    recs, err = decode_all(data)
    assert err.offset == off and "reference" in err.reason


def test_list_and_cycle_ids_checked():
    data = bytearray(BLOBS["trace-udp"])
    data[8 + 3] = 2  # list warts id 2 where 1 is due
    recs, err = decode_all(bytes(data))
    assert recs == [] and "list id 2" in err.reason
    data = bytearray(BLOBS["trace-udp"])
    b = boundaries(bytes(data))
    body = bytearray(data[b[2] + 8:b[3]])
    # trace header field 1 (list id) is the first parameter: make it 9
    p = _params_end(bytes(body), 0)
    first_param = p - struct.unpack_from(">H", body, 4)[0]
    body[first_param + 3] = 9
    data[b[2] + 8:b[3]] = body
    recs, err = decode_all(bytes(data))
    assert len(recs) == 2 and "unknown list id 9" in err.reason and err.offset == b[2]


def test_decoder_stays_failed_and_reports_intact_records_first():
    data = BLOBS["multi-trace-ping"]
    b = boundaries(data)
    bad = data[:b[3]] + b"\xde\xad" + data[b[3] + 2:]
    dec = WartsDecoder()
    got = dec.feed(bad)
    assert len(got) == 3
    with pytest.raises(WartsError) as ei:
        dec.feed(b"")
    assert ei.value.offset == b[3]
    with pytest.raises(WartsError):
        dec.feed(data)


def _check_ends_cleanly(data: bytes):
    t = time.perf_counter()
    for fn in (decode_all, decode_incremental):
        try:
            fn(data)
        except WartsError:  # pragma: no cover - decode_* catch it
            pass
    assert time.perf_counter() - t < 1.0


@given(st.binary(max_size=400))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_fuzz_random_bytes(data):
    _check_ends_cleanly(data)
    _check_ends_cleanly(struct.pack(">HHI", 0x1205, 6, len(data)) + data)
    _check_ends_cleanly(struct.pack(">HHI", 0x1205, 7, len(data)) + data)


@given(st.sampled_from(CASES), st.data())
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_fuzz_mutated_fixtures(case, data):
    blob = bytearray(BLOBS[case])
    for _ in range(data.draw(st.integers(1, 6))):
        kind = data.draw(st.sampled_from(["flip", "set", "insert", "delete"]))
        i = data.draw(st.integers(0, len(blob) - 1))
        if kind == "flip":
            blob[i] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "set":
            blob[i] = data.draw(st.integers(0, 255))
        elif kind == "insert":
            blob[i:i] = data.draw(st.binary(min_size=1, max_size=4))
        elif len(blob) > 1:
            del blob[i]
    _check_ends_cleanly(bytes(blob))


def _text_outcome(it):
    out = []
    try:
        for s in it:
            out.append(s)
    except WartsError as e:
        return "".join(out), (e.offset, e.reason)
    return "".join(out), None


def _same_text_both_ways(data: bytes):
    """ixp-warts2text's fast path (iter_text) must match decode + render_text
    exactly: same text, same error at the same offset."""
    slow = _text_outcome(render_text(r) for r in iter_records(io.BytesIO(data)))
    fast = _text_outcome(iter_text(io.BytesIO(data)))
    assert fast == slow


@pytest.mark.parametrize("case", CASES)
def test_text_fast_path_on_fixtures(case):
    _same_text_both_ways(BLOBS[case])
    assert _text_outcome(iter_text(io.BytesIO(BLOBS[case])))[0].encode() == \
        (FIXTURES / f"{case}.txt").read_bytes()


@given(st.sampled_from([c for c in CASES if c.startswith("trace")]), st.data())
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_text_fast_path_on_mutated_traces(case, data):
    blob = bytearray(BLOBS[case])
    b = boundaries(bytes(blob))
    lo, hi = b[2], b[3]  # mutate inside the trace record's body
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(lo + 8, hi - 1))
        if data.draw(st.booleans()):
            blob[i] ^= 1 << data.draw(st.integers(0, 7))
        else:
            blob[i] = data.draw(st.integers(0, 255))
    _same_text_both_ways(bytes(blob))


def _flags_params(ids, params: bytes) -> bytes:
    nb = (max(ids) - 1) // 7 + 1
    fl = bytearray(nb)
    for i in ids:
        fl[(i - 1) // 7] |= 1 << ((i - 1) % 7)
    for i in range(nb - 1):
        fl[i] |= 0x80
    return bytes(fl) + struct.pack(">H", len(params)) + params


@st.composite
def _field_value(draw, kind: str) -> bytes:
    """Well-formed bytes for one field of the given kind (reader._SPECS)."""
    sizes = {"B": 1, "H": 2, "I": 4, "tv": 8, "tc": 2, "tsr": 12}
    addr = st.one_of(st.binary(min_size=4, max_size=4).map(lambda b: b"\x04\x01" + b),
                     st.just(b"\x00\x00\x00\x00\x00"),  # reference to index 0
                     st.binary(min_size=16, max_size=16).map(lambda b: b"\x10\x02" + b))
    if kind in sizes:
        return draw(st.binary(min_size=sizes[kind], max_size=sizes[kind]))
    if kind == "addr":
        return draw(addr)
    if kind == "saddr":
        return b"\x04\x01" + draw(st.binary(min_size=4, max_size=4))
    if kind == "str":
        return draw(st.text("abc", max_size=5)).encode() + b"\x00"
    if kind == "ifname":
        return b"\x00" + draw(st.text("lo", max_size=3)).encode() + b"\x00"
    if kind == "addrlist":
        n = draw(st.integers(0, 3))
        return bytes([n]) + b"".join(draw(addr) for _ in range(n))
    if kind == "ts14":
        n = draw(st.integers(0, 2))
        ipc = draw(st.sampled_from([0, n]))
        return bytes([n, ipc]) + b"\x00\x00\x00\x07" * n + b"\x04\x01\x0a\x00\x00\x01" * ipc
    if kind == "icmpext":
        d = draw(st.binary(max_size=8))
        return struct.pack(">HHBB", len(d) + 4, len(d), 1, 1) + d
    if kind == "bytes8":
        return b""  # its length is field 8's value; left to chance
    raise AssertionError(kind)


@given(st.sampled_from([("trace-udp", "trace"), ("trace-udp", "hop"),
                        ("ping-icmp-default", "ping"), ("ping-icmp-default", "reply")]),
       st.binary(max_size=6), st.data())
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_fuzz_any_field_set(case_where, tail, data):
    """Any combination of fields (known, unknown, deprecated), each with
    well-formed or random values, in a header or in a hop / reply: the
    decoders generated for that flag set end in records or WartsError, and
    the text fast path agrees with the full decoder."""
    from ixpscamper.warts.reader import _SPECS
    case, where = case_where
    spec = _SPECS[where]
    ids = data.draw(st.sets(st.integers(2, len(spec)), max_size=len(spec)))
    # usually keep what a record cannot do without (TTL, addresses, ...)
    required = {"trace": {27}, "hop": {2, 18}, "ping": {21}, "reply": {12}}[where]
    if data.draw(st.integers(0, 9)):
        ids |= required
    ids |= data.draw(st.sets(st.sampled_from([1, 3, len(spec) + 1, 45]), max_size=2))
    if not ids:
        ids = {len(spec) + 1}
    ids = sorted(ids)
    params = b"".join(data.draw(_field_value(spec[i - 1])) if i <= len(spec)
                      else data.draw(st.binary(max_size=3)) for i in ids) + tail
    blob_src = BLOBS[case]
    b = boundaries(blob_src)
    body = blob_src[b[2] + 8:b[3]]
    hdr_end = _params_end(body, 0)
    item = _flags_params(ids, params)
    trace = case.startswith("trace")
    if where in ("trace", "ping"):
        new = item + body[hdr_end:]
    else:
        new = body[:hdr_end] + b"\x00\x01" + item + (b"\x00\x00" if trace else b"")
    blob = (blob_src[:b[2]] + struct.pack(">HHI", 0x1205, 6 if trace else 7, len(new)) + new
            + blob_src[b[3]:])
    _check_ends_cleanly(blob)
    _same_text_both_ways(blob)
