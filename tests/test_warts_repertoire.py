"""Tracelb and dealias against the real tools: the scamper-repertoire fixtures
(made by scamper 20211212 / 2026 in the lab, see its README) decode,
re-encode byte for byte, and render exactly as the tools printed them (and,
where installed, as the tools print them now); the CLI names every record
the tools print nothing for; bad input of these types ends in records or one
WartsError with its offset, quickly."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import TESTS, have_tool
from warts_render import _utc, ours_json, ours_text
from ixpscamper.warts import (Dealias, Tracelb, WartsDecoder, WartsError, WartsWriter,
                              iter_records, iter_text, read_records, render_json, render_text)
from ixpscamper.warts import cli

HERE = TESTS / "fixtures" / "scamper-repertoire"
S26 = Path(os.environ.get("SCAMPER_2026", TESTS.parents[1] / "shared" / "scamper-2026"))
ALL = sorted(p.stem for p in HERE.glob("*.warts"))
#: scamper 20211212 writes neighbourdisc probes whose declared length runs
#: into their replies: no scamper reader (20211212's skips the type; 2026's
#: fails on it) nor ours reads them
UNREADABLE = {"neighbourdisc-arp", "neighbourdisc-nd"}
#: decoded, not yet encoded
DECODE_ONLY: set = set()
CASES = [c for c in ALL if c not in UNREADABLE]
BLOBS = {c: (HERE / f"{c}.warts").read_bytes() for c in ALL}
#: cases sc_warts2json (20211212 and 2026) stops at: it prints nothing for a
#: MIDAR record and nothing after it; we print the rest and say so
MIDAR = {"dealias-midarest", "dealias-midardisc"}


def _version(case: str) -> str:
    return (HERE / f"{case}.cmd").read_text().split("]")[0].lstrip("[")


def boundaries(data: bytes) -> list[int]:
    out, pos = [0], 0
    while pos < len(data):
        pos += 8 + struct.unpack_from(">I", data, pos + 4)[0]
        out.append(pos)
    return out


def test_fixtures_cover_the_repertoire():
    recs = [r for c in CASES for r in read_records(BLOBS[c])]
    assert {r.method for r in recs if isinstance(r, Dealias)} == {1, 2, 3, 4, 5, 6, 7}
    assert {r.type for r in recs if isinstance(r, Tracelb)} == {1, 2, 3, 4, 5}
    mixed = read_records(BLOBS["mixed"])
    assert {type(r).__name__ for r in mixed} >= {"Trace", "Ping", "Tracelb", "Dealias"}
    assert len({r.name for r in mixed if type(r).__name__ == "WartsList"}) >= 3
    assert sum(type(r).__name__ == "CycleStart" for r in mixed) >= 3


@pytest.mark.parametrize("case", [c for c in CASES if c not in DECODE_ONLY])
def test_reencodes_byte_for_byte(case):
    data = BLOBS[case]
    w = WartsWriter()
    assert b"".join(w.encode(r) for r in read_records(data)) == data


@pytest.mark.parametrize("case", ALL)
def test_text_equals_the_tools(case):
    assert ours_text(BLOBS[case]) == (HERE / f"{case}.txt").read_text()


@pytest.mark.parametrize("case", [c for c in ALL if c not in UNREADABLE])
def test_json_equals_the_tools(case):
    want = (HERE / f"{case}.json").read_text()
    got = ours_json(BLOBS[case])
    if case in MIDAR:
        # the tools stop at the MIDAR record; we go on (and say so, see below)
        assert got.startswith(want) and got[len(want):].startswith('{"type":"cycle-stop"')
    else:
        assert got == want


@pytest.mark.parametrize("case", sorted(UNREADABLE))
def test_unreadable_neighbourdisc_is_an_error_at_its_offset(case):
    from ixpscamper.warts import Neighbourdisc
    recs, err = decode_all(BLOBS[case])
    assert err is not None and err.offset == 65 and "neighbourdisc" in str(err)
    assert not any(isinstance(r, Neighbourdisc) for r in recs)
    dump26 = S26 / "bin" / "sc_wartsdump"
    if dump26.exists():  # 2026's reader gives up on the record too
        r = subprocess.run([str(dump26), str(HERE / f"{case}.warts")], capture_output=True,
                           timeout=60)
        assert b"cycle stop" not in r.stdout and b"type 0x000a" in r.stdout + r.stderr


@pytest.mark.parametrize("case", sorted(UNREADABLE))
def test_ixp_warts2json_stops_at_unreadable_neighbourdisc_like_2026(case, capsys):
    """20211212's sc_warts2json steps over neighbourdisc undecoded; we print
    the type as 2026 does, and 2026's reader fails on these records: so do we,
    after everything before them, with the offset."""
    want = (HERE / f"{case}.json").read_text().splitlines(keepends=True)[0]
    rc = cli.main_json([str(HERE / f"{case}.warts")])
    out, err = capsys.readouterr()
    assert rc == 1 and err.count("\n") == 1 and "offset 65: bad neighbourdisc record" in err
    assert _utc(lambda: ours_json(BLOBS[case][:65])) == want


def test_udpprobe_replies_go_to_their_probes():
    from ixpscamper.warts import Udpprobe
    u = [r for r in read_records(BLOBS["udpprobe-echo"]) if isinstance(r, Udpprobe)][0]
    assert [len(p.replies) for p in u.probes] == [1, 1, 1]
    assert [p.replies[0].data for p in u.probes] == [b"hello"] * 3
    assert u.probes[0].tx == u.start and u.wait_timeout == 2_000_000


def test_http_decodes_request_response_and_body():
    from ixpscamper.warts import Http
    h = [r for r in read_records(BLOBS["http-get"]) if isinstance(r, Http)][0]
    assert (h.type, h.dport, h.host, h.file) == (1, 80, "198.51.100.66", "/")
    assert [(b.dir, b.type) for b in h.bufs[:3]] == [(1, 1), (0, 1), (0, 0)]
    assert h.bufs[0].data.startswith(b"GET / HTTP/1.1\r\n")
    assert h.bufs[1].data.startswith(b"HTTP/1.0 200 OK")


def test_sting_decodes_to_typed_fields():
    from ixpscamper.warts import Sting
    s = [r for r in read_records(BLOBS["sting-http"]) if isinstance(r, Sting)][0]
    assert (str(s.src), str(s.dst), s.dport, s.count, s.mean) == (
        "192.0.2.10", "198.51.100.66", 80, 4, 100)


def _cli(main, path, capsys):
    rc = main([str(path)])
    out, err = capsys.readouterr()
    return rc, err.splitlines()


def test_cli_names_each_record_the_tool_does_not_print(capsys):
    data = BLOBS["mixed"]
    silent = []
    off = 0
    for r in read_records(data):
        n = 8 + struct.unpack_from(">I", data, off + 4)[0]
        if isinstance(r, Dealias) and r.method != 2:
            silent.append(off)
        off += n
    assert silent
    rc, err = _cli(cli.main_text, HERE / "mixed.warts", capsys)
    assert rc == cli.EXIT_UNPRINTED == 3
    assert [int(e.split("offset ")[1].split(":")[0]) for e in err] == silent
    assert all("dealias (" in e and "not printed" in e for e in err)
    rc, err = _cli(cli.main_json, HERE / "mixed.warts", capsys)
    assert rc == 0 and err == []


@pytest.mark.parametrize("case", sorted(MIDAR))
def test_cli_names_midar_records_in_both_tools(case, capsys):
    for main in (cli.main_text, cli.main_json):
        rc, err = _cli(main, HERE / f"{case}.warts", capsys)
        assert rc == 3 and len(err) == 1 and "offset 65: dealias (mid" in err[0]


def test_cli_exit_status_after_an_unprinted_record_and_a_fault(tmp_path, capsys):
    data = BLOBS["dealias-mercator"]
    bad = tmp_path / "bad.warts"
    bad.write_bytes(data + data[:20])
    rc, err = _cli(cli.main_text, bad, capsys)
    assert rc == 1 and len(err) == 2 and "not printed" in err[0] and "truncated" in err[1]


def _live(tool: str, case: str) -> bytes:
    return subprocess.run([tool, str(HERE / f"{case}.warts")], capture_output=True,
                          timeout=60, env={**os.environ, "TZ": "UTC"}).stdout


def _tool_for(case: str, tool: str) -> str:
    """The real ``tool`` of the version that printed ``case`` (skips if absent)."""
    if _version(case).split("/")[-1] == "2026":
        path = S26 / "bin" / tool
        if not path.exists():
            pytest.skip("no scamper 2026 build")
        return str(path)
    if not have_tool(tool):
        pytest.skip(f"{tool} not installed")
    return tool


@pytest.mark.parametrize("case", ALL)
def test_text_equals_live_sc_warts2text(case):
    assert ours_text(BLOBS[case]).encode() == _live(_tool_for(case, "sc_warts2text"), case)


@pytest.mark.parametrize("case", [c for c in ALL if c not in MIDAR | UNREADABLE])
def test_json_equals_live_sc_warts2json(case):
    assert ours_json(BLOBS[case]).encode() == _live(_tool_for(case, "sc_warts2json"), case)


@pytest.mark.skipif(not (S26 / "bin" / "sc_warts2text").exists(), reason="no scamper 2026 build")
@pytest.mark.parametrize("case", [c for c in CASES if c != "mixed"])
def test_2026_sc_warts2text_prints_the_same_text(case):
    """2026's text for tracelb / dealias is 20211212's: nothing to match separately.
    (Not the mixed file: 2026 prints its pings as "ping from A to B".)"""
    assert ours_text(BLOBS[case]).encode() == _live(str(S26 / "bin" / "sc_warts2text"), case)


# --------------------------------------------------------------------------
# bad input

def decode_all(data: bytes):
    recs = []
    try:
        for r in iter_records(io.BytesIO(data)):
            recs.append(r)
    except WartsError as e:
        return recs, e
    return recs, None


def decode_incremental(data: bytes, step: int = 5):
    dec = WartsDecoder()
    recs = []
    try:
        for i in range(0, len(data), step):
            recs += dec.feed(data[i:i + step])
        dec.close()
    except WartsError as e:
        return recs, e
    return recs, None


@pytest.mark.parametrize("case", ["tracelb-udp-dport", "tracelb-silent", "dealias-ally-v6",
                                  "dealias-radargun", "dealias-prefixscan", "dealias-midardisc",
                                  "sting-http", "udpprobe-echo"])
def test_every_truncation(case):
    data = BLOBS[case]
    full = read_records(data)
    bounds = boundaries(data)
    for cut in range(len(data)):
        for fn in (decode_all, decode_incremental):
            recs, err = fn(data[:cut])
            complete = max(b for b in bounds if b <= cut)
            assert recs == full[:bounds.index(complete)]
            if cut == complete:
                assert err is None
            else:
                assert err is not None and err.offset == complete and "truncated" in err.reason


@pytest.mark.parametrize("case", ["tracelb-icmp-echo", "dealias-bump", "dealias-midarest"])
def test_every_shortened_body_is_an_error_at_its_record(case):
    """A body cut short but framed as complete (outer length fixed up): the
    record is rejected with its own offset, or, where the cut falls after
    the last field scamper reads, decoded."""
    data = BLOBS[case]
    b = boundaries(data)
    i = next(k for k, r in enumerate(read_records(data)) if isinstance(r, (Tracelb, Dealias)))
    start, end = b[i], b[i + 1]
    body = data[start + 8:end]
    for n in range(len(body)):
        blob = (data[:start] + struct.pack(">HHI", 0x1205, data[start + 3], n) + body[:n]
                + data[end:])
        recs, err = decode_all(blob)
        assert err is None or err.offset == start, (n, err)
        if err is not None:
            assert len(recs) == i


def _ends_cleanly(data: bytes):
    t = time.perf_counter()
    for fn in (decode_all, decode_incremental):
        recs, _ = fn(data)
        for r in recs:  # and whatever decodes also renders
            render_text(r)
            render_json(r)
    assert time.perf_counter() - t < 1.0


@given(st.binary(max_size=400))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_fuzz_random_bodies(data):
    for t in (8, 9, 10, 12, 13, 15, 16):
        _ends_cleanly(struct.pack(">HHI", 0x1205, t, len(data)) + data)


@given(st.sampled_from(ALL), st.data())
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
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
    _ends_cleanly(bytes(blob))
    # the CLI paths too: text fast path + notes, JSON
    _ = _text_or_error(bytes(blob))


def _text_or_error(data: bytes):
    out = []
    try:
        for s in iter_text(io.BytesIO(data), like="sc_warts2text", unprinted=lambda o, r: None):
            out.append(s)
    except WartsError as e:
        return "".join(out), e.offset
    return "".join(out), None


def test_huge_counts_end_quickly():
    """Counts that promise far more than the record holds (4 billion probes,
    65535 nodes) fail at the end of the record, not after a long loop."""
    from ixpscamper.warts.writer import _fp
    t = time.perf_counter()
    # dealias: mercator header with probec = 2**32 - 1, then one good probedef
    hdr = _fp([(4, b"\x01"), (6, b"\xff\xff\xff\xff")])
    pd = _fp([(4, b"\x03"), (5, b"\xff"), (7, b"\x00\x01\x00\x02"), (10, b"\x04\x01\x7f\x00\x00\x01")])
    body = hdr + _fp([(1, b"\x01"), (2, b"\x01")]) + pd + b"\x00" * 64
    recs, err = decode_all(struct.pack(">HHI", 0x1205, 9, len(body)) + body)
    assert err is not None and err.offset == 0
    # tracelb: 65535 nodes of one byte each, record ends first
    hdr = _fp([(16, b"\xff\xff"), (22, b"\x04\x01\x7f\x00\x00\x01")])
    body = hdr + b"\x00" * 100
    recs, err = decode_all(struct.pack(">HHI", 0x1205, 8, len(body)) + body)
    assert err is not None and err.offset == 0
    assert time.perf_counter() - t < 1.0
