"""OWAMP records (warts type 17, ixpscamper.warts.owamp): codec and JSON.

Oracles: scamper 2026's libscamperfile reads our encoding and writes the
same bytes back; its sc_warts2json prints our encoding as our renderer
does; its sc_warts2text prints nothing for the type (ixp-warts2text names
the record and exits 3).  Malformed input is only ever a WartsError.
"""

from __future__ import annotations

import io
import ipaddress
import random
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import TESTS, requires_root
from warts_misc_strategies import (
    S26, have_2026, have_2026_python, owamps, ptexts, raw_records, reencode, rewrite_2026,
    run_2026, stream,
)
from ixpscamper.warts import cli
from ixpscamper.warts.jsonfmt import render_json
from ixpscamper.warts.owamp import (
    OWAMP_RECORD_TYPE, Owamp, OwampRx, OwampSched, OwampTx, encode_owamp, owamp_json,
)
from ixpscamper.warts.reader import WartsError, iter_records, read_records
from ixpscamper.warts.records import CycleStart, Timeval, WartsList
from ixpscamper.warts.text import render_text
from ixpscamper.warts.writer import WartsEncodeError, encode_record

HERE = TESTS / "fixtures" / "scamper-repertoire" / "owamp"
#: made by scamper 2026 against tests/owamp_server.py in the lab (see the
#: repertoire README and make_fixtures.py)
FIXTURES = sorted(p.stem for p in HERE.glob("owamp-*.warts"))
SLOW = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                      HealthCheck.function_scoped_fixture])


def _sample() -> Owamp:
    L = WartsList("default", 0, "default", "vp1")
    C = CycleStart(L, 100, 0, 0, "host")
    return Owamp(L, C, src=ipaddress.ip_address("192.0.2.10"),
                 dst=ipaddress.ip_address("198.51.100.66"), start=Timeval(1796117211, 5),
                 sched=[OwampSched(Timeval(0, 100000), 0)], hsrtt=1234, result=1,
                 udp_sport=1000, udp_dport=2000,
                 txs=[OwampTx(Timeval(1, 2), Timeval(3, 4), 0, 5, 2,
                              [OwampRx(Timeval(5, 6), 7, 7, 46, 64)]),
                      OwampTx(seq=1, flags=1)])


def test_type_is_17():
    assert OWAMP_RECORD_TYPE == 17
    assert raw_records(encode_record(_sample(), 1, 1))[0][0] == 17


def test_fixtures_cover_both_directions_and_a_failure():
    recs = [r for c in FIXTURES for r in read_records((HERE / f"{c}.warts").read_bytes())
            if isinstance(r, Owamp)]
    assert len(FIXTURES) == len(recs) == 6
    assert {r.dir for r in recs} == {0, 1}
    assert {r.result for r in recs} == {1, 4}  # done, noconn
    assert {r.dst.version for r in recs} == {4, 6}
    assert any(len(r.sched) == 2 for r in recs)
    assert all(len(t.rxs) == 1 for r in recs if r.result == 1 for t in r.txs)


@pytest.mark.parametrize("case", FIXTURES)
def test_fixture_reencodes_byte_for_byte(case):
    data = (HERE / f"{case}.warts").read_bytes()
    assert reencode(read_records(data)) == data


@pytest.mark.parametrize("case", FIXTURES)
def test_fixture_json_and_text_equal_the_tools(case):
    data = (HERE / f"{case}.warts").read_bytes()
    assert _ours_json(data) == (HERE / f"{case}.json").read_text()
    assert (HERE / f"{case}.txt").read_bytes() == b""  # 2026's sc_warts2text: nothing


@pytest.mark.skipif(not have_2026(), reason="no scamper 2026 build")
@pytest.mark.parametrize("case", FIXTURES)
def test_fixture_json_equals_live_2026(case):
    res = run_2026("sc_warts2json", HERE / f"{case}.warts")
    assert res.returncode == 0
    assert res.stdout.decode() == _ours_json((HERE / f"{case}.warts").read_bytes())


@pytest.mark.skipif(not have_2026_python(), reason="no scamper 2026 build (python module)")
@pytest.mark.parametrize("case", FIXTURES)
def test_scamper_2026_rewrites_the_fixture_identically(tmp_path, case):
    """scamper's own layout of these records is deterministic: its library
    writes back what it read, byte for byte (as we do)."""
    data = (HERE / f"{case}.warts").read_bytes()
    assert rewrite_2026(HERE / f"{case}.warts", tmp_path / "theirs.warts") == data


def test_defaults_are_left_out():
    # scamper's defaults (dport 861, wait 2 s, one schedule entry, 10
    # attempts, 42 bytes, TTL 255) are not written; the reader restores them
    o = Owamp(sched=[OwampSched()])
    assert encode_owamp(o) == b"\x00\x00"
    assert read_records(encode_record(o)) == [o]


@settings(max_examples=300, deadline=None)
@given(owamps())
def test_roundtrip(rec):
    got = [r for r in read_records(stream([rec])) if isinstance(r, Owamp)]
    assert got == [rec]


@pytest.mark.skipif(not have_2026_python(), reason="no scamper 2026 build (python module)")
@settings(SLOW, max_examples=10)
@given(st.lists(owamps(), min_size=1, max_size=30))
def test_scamper_2026_rewrites_our_encoding_byte_for_byte(tmp_path, recs):
    p = tmp_path / "ours.warts"
    data = stream(recs)
    p.write_bytes(data)
    assert rewrite_2026(p, tmp_path / "theirs.warts") == data


def _ours_json(data: bytes) -> str:
    return "".join(render_json(r) for r in iter_records(io.BytesIO(data), like="sc_warts2json"))


@pytest.mark.skipif(not have_2026(), reason="no scamper 2026 build")
@settings(SLOW, max_examples=10)
@given(st.lists(owamps(strings=ptexts), min_size=1, max_size=30))
def test_2026_sc_warts2json_prints_it_as_we_do(tmp_path, recs):
    p = tmp_path / "ours.warts"
    data = stream(recs)
    p.write_bytes(data)
    res = run_2026("sc_warts2json", p)
    assert res.returncode == 0
    assert res.stdout.decode("utf-8", "surrogateescape") == _ours_json(data)


@pytest.mark.skipif(not have_2026(), reason="no scamper 2026 build")
def test_2026_sc_warts2json_long_strings_and_unprintables(tmp_path):
    # json_esc's 512-byte buffers, the header's 1024-byte buffer, and the
    # stop at the first unprintable character
    L = WartsList("l", 0, None, "m\\" * 300 + "x")
    recs = [Owamp(L, errmsg='e"' * 300, sched=[OwampSched(Timeval(1, 0), 1)] * 3),
            Owamp(L, errmsg="a" * 600), Owamp(errmsg="ok\x01hidden", sched=[]),
            Owamp(L, errmsg="b" * 511, dir=7, result=200,
                  sched=[OwampSched(Timeval(0, 5), 9)])]
    p = tmp_path / "ours.warts"
    data = stream(recs)
    p.write_bytes(data)
    res = run_2026("sc_warts2json", p)
    assert res.returncode == 0
    assert res.stdout.decode() == _ours_json(data)
    assert "hidden" not in _ours_json(data)


def test_json_of_the_sample():
    s = owamp_json(_sample())
    assert s.startswith('{"type":"owamp","dir":"tx","src":"192.0.2.10","dst":"198.51.100.66",'
                        '"dport":861,')
    assert '"sched":[{"value":{"sec":0,"usec":100000},"type":"fixed"}]' in s
    assert s.endswith('{"stamp":{"sec":0,"usec":0},"seq":1,"rxc":0,"sent":0,"rxs":[]}]}\n')


def test_no_text(tmp_path):
    assert render_text(_sample()) == ""


@pytest.mark.skipif(not have_2026("sc_warts2text"), reason="no scamper 2026 build")
def test_2026_sc_warts2text_prints_nothing_and_we_name_it(tmp_path, capsys):
    p = tmp_path / "ow.warts"
    p.write_bytes(stream([_sample()]))
    res = run_2026("sc_warts2text", p)
    assert res.returncode == 0 and res.stdout == b""
    rc = cli.run("ixp-warts2text", cli._text_lines, [str(p)])
    out, err = capsys.readouterr()
    assert rc == cli.EXIT_UNPRINTED and out == ""
    assert err.count("\n") == 1 and "not printed" in err


def test_ixp_warts2json_prints_it(tmp_path, capsys):
    p = tmp_path / "ow.warts"
    p.write_bytes(stream([_sample()]))
    rc = cli.run("ixp-warts2json", cli._json_lines, [str(p)])
    out, err = capsys.readouterr()
    assert rc == 0 and err == ""
    assert out.splitlines()[-1] == owamp_json(_sample()).rstrip("\n")


# ---- encoder refusals

@pytest.mark.parametrize("rec, words", [
    (Owamp(txs=[OwampTx(rxs=[OwampRx()] * 256)]), "255"),
    (Owamp(dport=70000), "out of range"),
    (Owamp(hsrtt=2 ** 32), "out of range"),
    (Owamp(errmsg="a\x00b"), "NUL"),
    (Owamp(src="not an address"), "not an address"),
])
def test_encode_refuses_what_does_not_fit(rec, words):
    with pytest.raises(WartsEncodeError, match=words):
        encode_record(rec)


# ---- bad input: one WartsError naming the record and its offset

def _rec(body: bytes) -> bytes:
    return struct.pack(">HHI", 0x1205, 17, len(body)) + body


_TX2 = encode_owamp(Owamp(sched=[], txs=[OwampTx(rxs=[OwampRx(errest=1), OwampRx(errest=2)])]))
_ERR = encode_owamp(Owamp(sched=[], errmsg="abc"))


@pytest.mark.parametrize("body, words", [
    (b"", "empty"),
    (b"\x80", "flag bytes"),
    (b"\x08\x00", "ends in the middle"),                      # no parameter length
    (b"\x08\x00\x02\x01", "ends in the middle"),              # src cut short
    (b"\x08\x00\x02\x00\x01", "static address of length 0"),
    (b"\x08\x00\x06\x04\x09\x01\x02\x03\x04", "unknown type"),
    (b"\x80\x08\x00\x04\xff\xff\xff\xff", "past the end"),   # schedc 2^32-1, no entries
    (b"\x00", "past the end"),                                 # default: one sched, missing
    (_TX2[:-5], "past the end"),                               # the second reception cut
    (_TX2[:-4], "ends in the middle"),                         # its errest cut
    (_ERR[:_ERR.index(b"abc") + 3], "unterminated"),           # errmsg without its NUL
])
def test_bad_records(body, words):
    with pytest.raises(WartsError) as ei:
        read_records(_rec(body))
    assert words in ei.value.reason and ei.value.reason.startswith("bad ")
    assert ei.value.offset == 0


def test_errors_name_the_owamp_record():
    with pytest.raises(WartsError, match="bad owamp record"):
        read_records(_rec(b""))


def test_bytes_after_the_last_structure_are_ignored():
    o = _sample()
    body = encode_owamp(o, 0, 0)
    o.list = o.cycle = None
    assert read_records(_rec(body + b"\x01\x02\x03")) == [o]


def test_later_fields_are_skipped_by_length():
    # a header field newer than the codec (id 23) is stepped over, as
    # scamper's reader does: the next structure starts at the declared end
    fl = bytes([0x80, 0x88, 0x80, 0x02])  # byte 1 bit 3: id 11 (schedc); byte 3 bit 1: id 23
    data = fl + struct.pack(">H", 4 + 3) + b"\x00\x00\x00\x00" + b"new"
    assert read_records(_rec(data)) == [Owamp(sched=[])]


def test_flag_test_reads_past_short_flags_like_scamper(tmp_path):
    # the header's flags end at id 7 (one byte), but scamper tests id 13
    # (pktsize) in the *next* byte, here the high byte of the parameter
    # length (0x20): so pktsize keeps the unread value 0, not the default 42
    src = bytes([4, 1, 192, 0, 2, 1])
    params = src + b"\x00" * (0x2000 - len(src))
    data = _rec(bytes([0x08]) + struct.pack(">H", len(params)) + params + b"\x00")
    (o,) = read_records(data)
    assert o.src == ipaddress.ip_address("192.0.2.1")
    assert o.pktsize == 0 and o.attempts == 10 and o.ttl == 255 and len(o.sched) == 1
    if have_2026():
        p = tmp_path / "short.warts"
        p.write_bytes(data)
        res = run_2026("sc_warts2json", p)
        assert res.stdout.decode() == _ours_json(data)
        assert '"pktsize":0,' in res.stdout.decode()


# ---- fuzzing: nothing but WartsError escapes

@settings(max_examples=1500, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_random_bodies(body):
    try:
        read_records(_rec(body))
    except WartsError as e:
        assert e.offset == 0


@settings(max_examples=500, deadline=None)
@given(owamps(), st.randoms(use_true_random=False))
def test_fuzz_mutated_encodings(rec, rnd):
    body = bytearray(encode_owamp(rec))
    for _ in range(rnd.randint(1, 6)):
        op = rnd.random()
        i = rnd.randrange(len(body) + 1)
        if op < 0.5 and body:
            body[min(i, len(body) - 1)] = rnd.randrange(256)
        elif op < 0.75:
            del body[i:i + rnd.randint(1, 8)]
        else:
            body[i:i] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 8)))
    try:
        read_records(_rec(bytes(body)))
    except WartsError as e:
        assert e.offset == 0


@pytest.mark.skipif(not have_2026(), reason="no scamper 2026 build")
def test_mutated_encodings_print_like_2026(tmp_path):
    """Seeded damage: where 2026's sc_warts2json prints the damaged record,
    we print the same; where it gives up, so do we (with an error)."""
    rnd = random.Random(20261201)
    base = [encode_owamp(r) for r in (
        _sample(), Owamp(sched=[OwampSched()]), Owamp(dport=80, sched=[], txs=[OwampTx(
            Timeval(1, 1), Timeval(2, 2), 7, 9, 3, [OwampRx(Timeval(3, 3), 1, 5, 2, 3)] * 2)]))]
    same = differ = 0
    for n in range(120):
        body = bytearray(rnd.choice(base))
        for _ in range(rnd.randint(1, 3)):
            i = rnd.randrange(len(body))
            body[i] = rnd.randrange(256)
        p = tmp_path / f"m{n}.warts"
        data = _rec(bytes(body))
        p.write_bytes(data)
        res = run_2026("sc_warts2json", p)
        theirs = res.stdout.decode("utf-8", "surrogateescape")
        try:
            ours = _ours_json(data)
        except WartsError:
            ours = ""
        if theirs == ours:
            same += 1
        else:
            differ += 1
            assert theirs == ours, (n, bytes(body).hex())
    assert same == 120 and differ == 0


# ---- live: scamper 2026 against tests/owamp_server.py in the lab

@requires_root
@pytest.mark.skipif(not have_2026("scamper"), reason="no scamper 2026 build")
def test_live_owamp_in_the_lab(tmp_path):
    """A fresh measurement each way: decoded, printed like 2026, re-encoded byte for byte."""
    import subprocess
    import sys

    from ixpscamper.lab import lab
    out = tmp_path / "live.warts"
    with lab() as L:
        srv = L.popen("dst", [sys.executable, str(TESTS / "owamp_server.py"), "198.51.100.66"],
                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            assert srv.stdout.readline() == b"ready\n"
            L.run("coll", [str(S26 / "bin" / "scamper"), "-O", "warts", "-o", str(out),
                           "-I", "owamp -c 2 -i 0.1 198.51.100.66",
                           "-I", "owamp -c 2 -i 0.1 -d rx 198.51.100.66"], timeout=60)
        finally:
            srv.terminate()
            srv.wait(timeout=10)
    data = out.read_bytes()
    recs = [r for r in read_records(data) if isinstance(r, Owamp)]
    assert sorted(r.dir for r in recs) == [0, 1]
    assert all(r.result == 1 and len(r.txs) == 2 and all(len(t.rxs) == 1 for t in r.txs)
               for r in recs)
    assert reencode(read_records(data)) == data
    res = run_2026("sc_warts2json", out)
    assert res.stdout.decode() == _ours_json(data)
