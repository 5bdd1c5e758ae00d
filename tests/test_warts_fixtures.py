"""Every golden fixture (made by the Debian scamper 20211212) decodes, renders
byte-identically to sc_warts2text / sc_warts2json, and re-encodes to the same bytes."""

from __future__ import annotations

import io
import struct
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import FIXTURES
from ixpscamper.warts import (CycleStart, CycleStop, Ping, Trace, WartsDecoder, WartsList,
                              WartsWriter, encode_record, iter_records, read_records,
                              render_json, render_text)

CASES = sorted(p.stem for p in FIXTURES.glob("*.warts"))


def test_fixture_set_is_complete():
    # the README of the fixtures lists 25 cases; all must be present with all files
    assert len(CASES) == 25
    for c in CASES:
        for ext in (".txt", ".json", ".dump", ".cmd"):
            assert (FIXTURES / (c + ext)).exists(), c + ext


def _raw_records(data: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(data):
        _, _, ln = struct.unpack_from(">HHI", data, pos)
        out.append(data[pos:pos + 8 + ln])
        pos += 8 + ln
    return out


@pytest.fixture
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("case", CASES)
def test_text_identical(case):
    with open(FIXTURES / f"{case}.warts", "rb") as f:
        got = "".join(render_text(r) for r in iter_records(f))
    assert got.encode() == (FIXTURES / f"{case}.txt").read_bytes()


@pytest.mark.parametrize("case", CASES)
def test_json_identical(case, utc):
    with open(FIXTURES / f"{case}.warts", "rb") as f:
        got = "".join(render_json(r) for r in iter_records(f))
    assert got.encode() == (FIXTURES / f"{case}.json").read_bytes()


@pytest.mark.parametrize("case", CASES)
def test_reencode_identical(case):
    data = (FIXTURES / f"{case}.warts").read_bytes()
    raws = _raw_records(data)
    recs = read_records(data)
    assert len(recs) == len(raws)
    n = 0
    for raw, rec in zip(raws, recs, strict=True):
        if isinstance(rec, (Trace, Ping)):
            assert encode_record(rec, 1 if rec.list else 0, 1 if rec.cycle else 0) == raw
            n += 1
    assert n >= 1
    # the whole file, list/cycle records included, through the writer
    buf = io.BytesIO()
    w = WartsWriter(buf)
    for rec in recs:
        w.write(rec)
    assert buf.getvalue() == data


@pytest.mark.parametrize("case", CASES)
def test_decode_encode_decode_equal(case):
    data = (FIXTURES / f"{case}.warts").read_bytes()
    recs = read_records(data)
    buf = io.BytesIO()
    w = WartsWriter(buf)
    for rec in recs:
        w.write(rec)
    assert read_records(buf.getvalue()) == recs


def test_records_resolve_lists_and_cycles():
    recs = read_records((FIXTURES / "remote-trace-ping.warts").read_bytes())
    lst, cyc, tr, ping, stop = recs
    assert isinstance(lst, WartsList) and lst.monitor == "fixture-vp" and lst.description is None
    assert isinstance(cyc, CycleStart) and cyc.id == 1 and cyc.hostname
    assert tr.list is lst and tr.cycle is cyc and ping.list is lst
    assert isinstance(stop, CycleStop) and stop.cycle is cyc
    assert str(tr.rtr) == "192.0.2.2"
    assert [str(h.addr) for h in tr.hops] == ["192.0.2.2", "198.18.2.2", "198.51.100.66"]


def test_trace_fields_from_worked_example():
    # docs/warts.md section 6: the trace of trace-rtr-rB
    tr = read_records((FIXTURES / "trace-rtr-rB.warts").read_bytes())[2]
    h = tr.hops[0]
    assert (h.probe_ttl, h.reply_ttl, h.flags, h.probe_id) == (1, 64, 0x14, 1)
    assert (h.icmp_type, h.icmp_code, h.probe_size, h.reply_size, h.reply_tos) == (11, 0, 44, 72, 0xC0)
    assert tr.hop_count == 3 and tr.method == 5 and tr.dport == 33435


def test_pmtud_and_negative_rtt():
    tr = read_records((FIXTURES / "trace-pmtud.warts").read_bytes())[2]
    assert tr.hops[0].rtt == 0xFFFFFFEA  # -22 us, as scamper stored it
    assert tr.pmtud is not None and tr.pmtud.ver == 2 and tr.pmtud.ifmtu == 1500
    assert tr.pmtud.hops[0].icmp_q_ipl == 1500


def test_ping_fields():
    p = read_records((FIXTURES / "ping-icmp-time.warts").read_bytes())[2]
    assert p.method == 5 and all(r.tsreply is not None for r in p.replies)
    rr = read_records((FIXTURES / "ping-record-route.warts").read_bytes())[2]
    assert len(rr.replies[0].rr) == 7 and rr.flags & 1
    v6 = read_records((FIXTURES / "ping-v6.warts").read_bytes())[2]
    assert v6.dst.version == 6 and v6.replies[0].reply_proto == 58


@given(st.data())
@settings(max_examples=40, deadline=None)
def test_decoder_any_chunking(data):
    case = data.draw(st.sampled_from(CASES))
    blob = (FIXTURES / f"{case}.warts").read_bytes()
    cuts = sorted(data.draw(st.lists(st.integers(0, len(blob)), max_size=12)))
    dec = WartsDecoder()
    got = []
    prev = 0
    for c in cuts + [len(blob)]:
        got += dec.feed(blob[prev:c])
        prev = c
    dec.close()
    assert got == read_records(blob)
