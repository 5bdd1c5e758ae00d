"""Encoders for neighbourdisc (10), sting (12), sniff (13), http (15) and
udpprobe (16) (ixpscamper.warts.misc_writers).

Oracles: the repertoire fixtures (made by the real scamper) re-encode to
their own bytes; scamper 2026's libscamperfile reads our encoding of
generated records and writes it back byte for byte; and the real tools
print our encoding as they print the original (or as our renderers do).
"""

from __future__ import annotations

import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import TESTS, have_tool
from warts_misc_strategies import (
    have_2026, have_2026_python, https, neighbourdiscs, ptexts, raw_records, reencode,
    rewrite_2026, run_2026, sniffs, stings, stream, udpprobes,
)
from ixpscamper.warts import WartsWriter
from ixpscamper.warts.jsonfmt import render_json
from ixpscamper.warts.reader import iter_records, read_records
from ixpscamper.warts.records import (
    Http, HttpBuf, Neighbourdisc, NeighbourdiscProbe, NeighbourdiscReply, Sniff, SniffPkt, Sting,
    StingPkt, Timeval, Udpprobe, UdpprobeProbe, UdpprobeReply,
)
from ixpscamper.warts.text import render_text
from ixpscamper.warts.writer import WartsEncodeError, encode_record

HERE = TESTS / "fixtures" / "scamper-repertoire"
#: the fixtures of these types that a reader can decode (20211212's
#: neighbourdisc records cannot be: see that folder's README)
FIXTURES = ["neighbourdisc-arp-2026", "neighbourdisc-nd-2026", "sting-http", "udpprobe-echo",
            "http-get"]
TYPES = {10: Neighbourdisc, 12: Sting, 13: Sniff, 15: Http, 16: Udpprobe}
needs_2026_py = pytest.mark.skipif(not have_2026_python(),
                                   reason="no scamper 2026 build (python module)")


def _ids(data: bytes):
    """Each record of ``data`` with its list and cycle warts ids and raw bytes."""
    lists, cycles = {}, {}
    out = []
    for (t, raw), rec in zip(raw_records(data), read_records(data)):
        if t == 1:
            lists[id(rec)] = int.from_bytes(raw[8:12], "big")
        elif t in (2, 3):
            cycles[id(rec)] = int.from_bytes(raw[8:12], "big")
        out.append((t, raw, rec, lists.get(id(getattr(rec, "list", None)), 0),
                    cycles.get(id(getattr(rec, "cycle", None)), 0)))
    return out


@pytest.mark.parametrize("case", FIXTURES)
def test_fixture_records_reencode_byte_identical(case):
    data = (HERE / f"{case}.warts").read_bytes()
    seen = 0
    for t, raw, rec, lid, cid in _ids(data):
        if t in TYPES:
            assert isinstance(rec, TYPES[t])
            assert encode_record(rec, lid, cid) == raw
            seen += 1
    assert seen == 1
    assert reencode(read_records(data)) == data  # the whole file, lists and cycles too


SNIFF = TESTS / "fixtures" / "scamper-repertoire" / "sniff"
SNIFF_CASES = sorted(p.stem for p in SNIFF.glob("sniff-*.warts"))


def _sniff_ours(case: str) -> bytes:
    """The fixture with each sniff record replaced by our encoding of it (the
    others, a 2026 ping, kept as they are: writer.py writes 20211212's ping)."""
    data = (SNIFF / f"{case}.warts").read_bytes()
    return b"".join(encode_record(rec, lid, cid) if t == 13 else raw
                    for t, raw, rec, lid, cid in _ids(data))


def test_sniff_fixtures_cover_packets_and_none():
    recs = [r for c in SNIFF_CASES for r in read_records((SNIFF / f"{c}.warts").read_bytes())
            if isinstance(r, Sniff)]
    assert sorted(len(r.pkts) for r in recs) == [0, 2, 2]
    assert {r.stop_reason for r in recs} == {2, 3}  # limit-time, limit-pktc


@pytest.mark.parametrize("case", SNIFF_CASES)
def test_sniff_fixture_records_reencode_byte_identical(case):
    assert _sniff_ours(case) == (SNIFF / f"{case}.warts").read_bytes()


@pytest.mark.parametrize("case", SNIFF_CASES)
def test_sc_wartsdump_dumps_our_sniff_as_the_original(tmp_path, case):
    p = tmp_path / "ours.warts"
    p.write_bytes(_sniff_ours(case))
    assert _dump(SNIFF, case, p) == (SNIFF / f"{case}.dump").read_bytes()


def _dump(folder, case: str, path) -> bytes:
    """sc_wartsdump of ``path`` by the version that made the case's .dump (its .cmd)."""
    import subprocess
    if (folder / f"{case}.cmd").read_text().startswith("[2021]"):
        if not have_tool("sc_wartsdump"):
            pytest.skip("no sc_wartsdump (20211212)")
        res = subprocess.run(["sc_wartsdump", str(path)], capture_output=True, timeout=60,
                             env={"TZ": "UTC"})
    else:
        if not have_2026("sc_wartsdump"):
            pytest.skip("no scamper 2026 build")
        res = run_2026("sc_wartsdump", path)
    assert res.returncode == 0
    return res.stdout


@needs_2026_py
@pytest.mark.parametrize("case", SNIFF_CASES)
def test_scamper_2026_rewrites_the_sniff_fixture_identically(tmp_path, case):
    """scamper's sniff layout is deterministic (its ping is not compared: 2026
    rewrites a 20211212 ping in its own layout)."""
    data = (SNIFF / f"{case}.warts").read_bytes()
    theirs = rewrite_2026(SNIFF / f"{case}.warts", tmp_path / "theirs.warts")
    ours = [raw for t, raw in raw_records(data) if t == 13]
    assert len(ours) == 1
    assert [raw for t, raw in raw_records(theirs) if t == 13] == ours


def _roundtrip(rec):
    got = [r for r in read_records(stream([rec])) if type(r) is type(rec)]
    assert got == [rec]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(neighbourdiscs())
def test_neighbourdisc_roundtrip(rec):
    _roundtrip(rec)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stings())
def test_sting_roundtrip(rec):
    _roundtrip(rec)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sniffs())
def test_sniff_roundtrip(rec):
    _roundtrip(rec)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(https())
def test_http_roundtrip(rec):
    _roundtrip(rec)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(udpprobes())
def test_udpprobe_roundtrip(rec):
    _roundtrip(rec)


def test_udpprobe_ifnames_are_tabled_by_first_use():
    rs = [UdpprobeReply(Timeval(1, 1), b"x", n) for n in ("eth0", "eth1", "eth0")]
    up = Udpprobe(probes=[UdpprobeProbe(Timeval(0, 0), 1, rs), UdpprobeProbe(Timeval(2, 0), 2)])
    body = encode_record(up)
    # eth0 and eth1 defined once each (ids 1 and 2), then eth0 by its id
    assert body.count(b"eth0\x00") == 1 and body.count(b"eth1\x00") == 1
    assert b"\x01eth0\x00" in body and b"\x02eth1\x00" in body
    _roundtrip(up)


def test_udpprobe_ifname_table_full_writes_names_inline(tmp_path):
    # scamper numbers 254 names; a further one is written with id 0, in full, each time
    names = [f"if{i}" for i in range(256)] + ["if255", "if0"]
    probes = [UdpprobeProbe(Timeval(0, 0), 0, [UdpprobeReply(Timeval(1, 0), b"", n)
                                               for n in names[:200]]),
              UdpprobeProbe(Timeval(1, 0), 0, [UdpprobeReply(Timeval(1, 0), b"", n)
                                               for n in names[200:]])]
    up = Udpprobe(probes=probes)
    body = encode_record(up)
    assert body.count(b"\x00if255\x00") == 2  # past the table: inline twice
    assert body.count(b"if0\x00") == 1
    _roundtrip(up)
    if have_2026_python():  # scamper's own writer numbers them the same way
        p = tmp_path / "ours.warts"
        p.write_bytes(stream([up]))
        assert rewrite_2026(p, tmp_path / "theirs.warts") == p.read_bytes()


# ---- bad input to the encoders: one clear WartsEncodeError

@pytest.mark.parametrize("rec, words", [
    (Neighbourdisc(probes=[NeighbourdiscProbe(Timeval(0, 0), [NeighbourdiscReply(Timeval(0, 0),
                                                                                 None)])]),
     "MAC"),
    (Sting(*(__import__("ipaddress").ip_address(a) for a in ("192.0.2.1", "192.0.2.2")),
           pkts=[StingPkt(0, Timeval(0, 0), b"")]), "without data"),
    (Sniff(None), "source"),
    (Sniff(__import__("ipaddress").ip_address("192.0.2.1"), pkts=[SniffPkt(Timeval(0, 0), b"")]),
     "without data"),
    (Http(headers=["h"] * 256), "255"),
    (Http(bufs=[HttpBuf(2, 0)]), "direction"),
    (Http(bufs=[HttpBuf(0, 128)]), "direction"),
    (Udpprobe(start=Timeval(1, 0), probes=[UdpprobeProbe(Timeval(2, 0))]), "start"),
    (Udpprobe(probes=[UdpprobeProbe()] * 256), "255"),
    (Udpprobe(data=b"x" * 70000), "65535"),
    (Sniff(__import__("ipaddress").ip_address("192.0.2.1"), userid=2 ** 32), "out of range"),
    (Neighbourdisc(ifname="a\x00b"), "NUL"),
    (Http(src="192.0.2.1"), "not an address"),
    (Neighbourdisc(src_mac=b"\x00" * 6), "not an address"),
])
def test_encode_refuses_what_no_reader_takes(rec, words):
    with pytest.raises(WartsEncodeError, match=words):
        encode_record(rec)


# ---- the real tools reading our encoding

def _records_file(tmp_path, recs):
    p = tmp_path / "ours.warts"
    data = stream(recs)
    p.write_bytes(data)
    return p, data


@needs_2026_py
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(neighbourdiscs(), sniffs(), https(host_file=True), udpprobes(),
                          # scamper's sting writer copies its data pointer and
                          # has no errmsg handler: nothing to compare there
                          stings(with_data=False, with_errmsg=False)),
                min_size=1, max_size=25))
def test_scamper_2026_rewrites_our_encoding_byte_for_byte(tmp_path, recs):
    """libscamperfile 2026 reads our records and writes the same bytes back."""
    p, data = _records_file(tmp_path, recs)
    assert rewrite_2026(p, tmp_path / "theirs.warts") == data


@needs_2026_py
@pytest.mark.parametrize("case", [c for c in FIXTURES if c != "sting-http"])
def test_scamper_2026_rewrites_the_fixtures_as_we_do(tmp_path, case):
    data = (HERE / f"{case}.warts").read_bytes()
    ours = tmp_path / "ours.warts"
    ours.write_bytes(reencode(read_records(data)))
    assert rewrite_2026(ours, tmp_path / "theirs.warts") == data


def _reencoded(tmp_path, case):
    data = (HERE / f"{case}.warts").read_bytes()
    p = tmp_path / f"{case}.warts"
    p.write_bytes(reencode(read_records(data)))
    return p


@pytest.mark.skipif(not have_2026(), reason="no scamper 2026 build")
@pytest.mark.parametrize("case", ["neighbourdisc-arp-2026", "neighbourdisc-nd-2026",
                                  "udpprobe-echo"])
def test_2026_sc_warts2json_prints_our_reencoding_as_the_original(tmp_path, case):
    res = run_2026("sc_warts2json", _reencoded(tmp_path, case))
    assert res.returncode == 0
    assert res.stdout == (HERE / f"{case}.json").read_bytes()


@pytest.mark.parametrize("case", FIXTURES)
def test_sc_wartsdump_dumps_our_reencoding_as_the_original(tmp_path, case):
    """The version of sc_wartsdump that made the fixture's .dump (see its .cmd)."""
    p = _reencoded(tmp_path, case)
    assert _dump(HERE, case, p) == (HERE / f"{case}.dump").read_bytes()


@pytest.mark.skipif(not have_tool("sc_warts2text"), reason="no sc_warts2text (20211212)")
def test_20211212_sc_warts2text_prints_our_sting_as_the_original(tmp_path):
    import subprocess
    p = _reencoded(tmp_path, "sting-http")
    res = subprocess.run(["sc_warts2text", str(p)], capture_output=True, timeout=60)
    assert res.returncode == 0
    assert res.stdout == (HERE / "sting-http.txt").read_bytes()


@pytest.mark.skipif(not have_2026(), reason="no scamper 2026 build")
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(neighbourdiscs(strings=ptexts), udpprobes(strings=ptexts)),
                min_size=1, max_size=25))
def test_2026_sc_warts2json_prints_generated_records_as_we_do(tmp_path, recs):
    p, data = _records_file(tmp_path, recs)
    res = run_2026("sc_warts2json", p)
    assert res.returncode == 0
    ours = "".join(render_json(r) for r in iter_records(io.BytesIO(data), like="sc_warts2json"))
    assert res.stdout.decode("utf-8", "surrogateescape") == ours


@pytest.mark.skipif(not have_tool("sc_warts2text"), reason="no sc_warts2text (20211212)")
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(st.lists(stings(strings=ptexts), min_size=1, max_size=25))
def test_20211212_sc_warts2text_prints_generated_stings_as_we_do(tmp_path, recs):
    import subprocess
    p, data = _records_file(tmp_path, recs)
    res = subprocess.run(["sc_warts2text", str(p)], capture_output=True, timeout=60)
    assert res.returncode == 0
    ours = "".join(render_text(r) for r in read_records(data))
    assert res.stdout.decode("utf-8", "surrogateescape") == ours


# ---- what other files need (reported; they are not this module's to change)

def test_wartswriter_writes_the_new_types():
    data = (HERE / "udpprobe-echo.warts").read_bytes()
    w = WartsWriter()
    assert b"".join(w.encode(r) for r in read_records(data)) == data


def test_udpprobe_with_one_probe_roundtrip():
    up = Udpprobe(start=Timeval(5, 0), probe_count=1,
                  probes=[UdpprobeProbe(Timeval(5, 0), 1234, [UdpprobeReply(Timeval(5, 9), b"x")])])
    _roundtrip(up)
