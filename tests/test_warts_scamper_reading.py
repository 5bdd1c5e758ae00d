"""Damaged files that scamper 20211212's reader accepts are read the same way.

One test per class of difference the differential fuzz test
(test_warts_resilience.py) found.  Each builds a damaged file from a golden
fixture and compares our output with the output for the *intact* (or the
equivalently repaired) file, so it needs no real tool; where the Debian
tools are installed it also compares with them.
"""

from __future__ import annotations

import io
import ipaddress
import os
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import FIXTURES, have_tool, requires_tool  # noqa: E402
from warts_mutate import join, length_fields, records  # noqa: E402
from warts_render import _utc  # noqa: E402

from ixpscamper.warts import (Timeval, Trace, TraceHop, WartsError, encode_record,  # noqa: E402
                              iter_records, iter_text, read_records, render_json, render_text)
from ixpscamper.warts.text import _tcp_note  # noqa: E402


def blob(case: str) -> bytes:
    return (FIXTURES / f"{case}.warts").read_bytes()


def text_of(data: bytes) -> str:
    """What ixp-warts2text prints (the CLI's reader settings), or raises WartsError."""
    return "".join(iter_text(io.BytesIO(data), like="sc_warts2text"))


def json_of(data: bytes) -> str:
    """What ixp-warts2json prints with TZ=UTC (as the fixtures were made)."""
    return _utc(lambda: "".join(render_json(r)
                                for r in iter_records(io.BytesIO(data), like="sc_warts2json")))


def both(data: bytes) -> tuple[str, str]:
    return text_of(data), json_of(data)


def real(tool: str, data: bytes):
    """``(rc, stdout, stderr)`` of the Debian tool on ``data``, or None if not installed."""
    if not have_tool(tool):
        return None
    fd, path = tempfile.mkstemp(suffix=".warts")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        r = subprocess.run([tool, path], capture_output=True, timeout=30,
                           env={**os.environ, "TZ": "UTC"})
    finally:
        os.unlink(path)
    return r.returncode, r.stdout.decode(), r.stderr


def assert_like_real_tools(data: bytes) -> None:
    """Where the Debian tools are installed: they accept ``data``, and print what we print."""
    for tool, ours in (("sc_warts2text", text_of), ("sc_warts2json", json_of)):
        r = real(tool, data)
        if r is not None:
            assert r[0] == 0 and r[2] == b"", r
            assert ours(data) == r[1]


def field(rtype: int, body: bytes, kind: str, nth: int = 0) -> int:
    return [p for k, p in length_fields(rtype, body) if k == kind][nth]


def with_record(data: bytes, index: int, body: bytes) -> bytes:
    recs = records(data)
    recs[index] = [recs[index][0], body]
    return join(recs)


# ---------------------------------------------------------------------------


def test_list_parameter_length_overrunning_the_record():
    """The issue's example: sc_warts2text printed the whole file, we printed nothing."""
    data = blob("multi-trace-ping")
    body = bytearray(records(data)[0][1])
    struct.pack_into(">H", body, field(1, bytes(body), "plen"), 0xFF)
    bad = with_record(data, 0, bytes(body))
    assert both(bad) == both(data)
    assert text_of(data).encode() == (FIXTURES / "multi-trace-ping.txt").read_bytes()
    assert_like_real_tools(bad)


def test_cycle_parameters_overrunning_and_cycle_stop_trailing_bytes():
    data = blob("trace-udp")
    recs = records(data)
    cyc = bytearray(recs[1][1])
    struct.pack_into(">H", cyc, field(2, bytes(cyc), "plen"), 0x200)
    stop = recs[3][1] + b"\x01\x00\x00\x07junk"  # a cycle stop is 8 bytes to scamper
    bad = join([recs[0], [2, bytes(cyc)], recs[2], [4, stop]])
    assert both(bad) == both(data)
    assert_like_real_tools(bad)


def test_bytes_after_the_last_ping_reply_and_reply_length_past_the_record():
    data = blob("ping-icmp-default")
    body = bytearray(records(data)[2][1])
    last_plen = field(7, bytes(body), "plen", -1)
    struct.pack_into(">H", body, last_plen, struct.unpack_from(">H", body, last_plen)[0] + 40)
    bad = with_record(data, 2, bytes(body) + b"\x00\x07")
    assert both(bad) == both(data)
    assert_like_real_tools(bad)


def test_address_length_byte_only_says_how_far_to_skip():
    """scamper takes an address's value length from its type, and skips the length byte's count."""
    data = blob("trace-udp")
    body = bytes(records(data)[2][1])
    src = bytes([4, 1, 192, 0, 2, 10])
    i = body.index(src)
    plen = field(6, body, "plen")
    grown = bytearray(body[:i] + bytes([5]) + src[1:] + b"\xee" + body[i + len(src):])
    struct.pack_into(">H", grown, plen, struct.unpack_from(">H", body, plen)[0] + 1)
    bad = with_record(data, 2, bytes(grown))
    assert both(bad) == both(data)
    assert_like_real_tools(bad)
    # a value running past the record is still an error (scamper reads past its buffer):
    # a trace whose only field, the destination (27), is an IPv4 address cut short
    short = b"\x80\x80\x80\x20" + struct.pack(">H", 4) + b"\x04\x01\xc0\x00"
    with pytest.raises(WartsError, match="address runs past the record"):
        read_records(struct.pack(">HHI", 0x1205, 6, len(short)) + short)


def _params_start(body, item: int) -> int:
    p = item
    while body[p] & 0x80:
        p += 1
    return p + 3


def _set_hop_ttl(data: bytes, hop: int, ttl: int) -> bytes:
    body = bytearray(records(data)[2][1])
    items = [p for k, p in length_fields(6, bytes(body)) if k == "item"]
    p = items[hop]
    assert body[p] & 0x02 and not body[p] & 0x01  # TTL is the first parameter
    body[_params_start(body, p)] = ttl
    return with_record(data, 2, bytes(body))


def _drop_hop(data: bytes, hop: int) -> bytes:
    body = bytes(records(data)[2][1])
    f = length_fields(6, body)
    count_pos = [p for k, p in f if k == "u16"][0]
    items = [p for k, p in f if k == "item"] + [[p for k, p in f if k == "tail"][0]]
    n = struct.unpack_from(">H", body, count_pos)[0]
    new = (body[:count_pos] + struct.pack(">H", n - 1) + body[count_pos + 2:items[hop]]
           + body[items[hop + 1]:])
    return with_record(data, 2, new)


def test_two_runs_with_one_ttl_keep_the_later():
    """Hops with TTLs 3, 2, 3: scamper files each run under its TTL, the later 3 wins."""
    data = blob("trace-udp")  # TTLs 1, 2, 3
    bad = _set_hop_ttl(data, 0, 3)
    expect = _drop_hop(bad, 0)  # the same trace without the earlier TTL-3 reply
    got = both(bad)
    assert got == both(expect)
    assert got[0].splitlines()[1] == " 1  *"
    assert got[1].count('"probe_ttl":3') == 1
    (tr,) = [r for r in read_records(bad) if isinstance(r, Trace)]
    assert [h.probe_ttl for h in tr.hops] == [2, 3]
    assert_like_real_tools(bad)


def test_adjacent_replies_with_one_ttl_are_all_kept():
    data = blob("trace-udp")
    both_kept = _set_hop_ttl(data, 1, 1)  # TTLs 1, 1, 3: one run of two
    (tr,) = [r for r in read_records(both_kept) if isinstance(r, Trace)]
    assert [h.probe_ttl for h in tr.hops] == [1, 1, 3]
    assert_like_real_tools(both_kept)


def test_tcp_flags_and_icmp_type_share_a_byte():
    """A hop marked TCP but carrying an ICMP type: scamper prints that byte as the TCP flags."""
    data = blob("trace-udp")
    body = bytearray(records(data)[2][1])
    items = [p for k, p in length_fields(6, bytes(body)) if k == "item"]
    p = items[0]
    # hop fields 2 (TTL), 3 (reply TTL), 4 (flags) lead: flags is the third parameter byte
    assert body[p] & 0x0F == 0x0E
    body[_params_start(body, p) + 2] |= 0x20
    bad = with_record(data, 2, bytes(body))
    (tr,) = [r for r in read_records(bad) if isinstance(r, Trace)]
    it = tr.hops[0].icmp_type
    assert tr.hops[0].tcp_flags == it == 11
    line = text_of(bad).splitlines()[1]
    assert line.endswith(" ms" + _tcp_note(it)) and _tcp_note(it) == " [unknown, SYN PSH FIN]"
    assert f'"tcp_flags":{it}' in json_of(bad)
    assert_like_real_tools(bad)


def test_zero_hop_trace_ignores_what_follows():
    data = blob("trace-gaplimit")
    (i, tr), = [(i, r) for i, r in enumerate(read_records(data)) if isinstance(r, Trace)]
    assert not tr.hops
    bad = with_record(data, i, records(data)[i][1] + b"\x10\x05junk")
    assert both(bad) == both(data)
    assert_like_real_tools(bad)


def test_file_ending_right_after_a_record_header(tmp_path):
    """scamper takes a missing body for a read to retry, then sees the end: no complaint."""
    from ixpscamper.warts import cli
    data = blob("trace-udp")
    cut = data + struct.pack(">HHI", 0x1205, 6, 120)
    assert text_of(cut) == text_of(data)
    with pytest.raises(WartsError, match="truncated"):  # our own API still says so
        read_records(cut)
    path = tmp_path / "cut.warts"
    path.write_bytes(cut)
    rc = cli.run("ixp-warts2text", cli._text_lines, [str(path)])
    assert rc == 0
    r = real("sc_warts2text", cut)
    if r is not None:
        assert r[0] == 0 and r[2] == b"" and r[1] == text_of(data)


def test_empty_named_file_is_refused_with_one_line(tmp_path, capsys):
    from ixpscamper.warts import cli
    path = tmp_path / "empty.warts"
    path.write_bytes(b"")
    assert cli.main_text([str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "empty" in err
    r = real("sc_warts2text", b"")
    if r is not None:
        assert r[1] == "" and r[2]  # sc_warts2text: "could not open ...: Success"


def test_record_types_the_tool_decodes_and_we_do_not_are_errors():
    data = blob("trace-udp")
    recs = records(data)
    tracelb = join(recs[:2] + [[8, b"\x00" * 12]] + recs[2:])
    with pytest.raises(WartsError, match="tracelb"):
        text_of(tracelb)
    # types the tool skips are skipped, unless empty (scamper cannot read 0 bytes)
    http = join(recs[:2] + [[15, b"abc"]] + recs[2:])
    assert both(http) == both(data)
    assert_like_real_tools(http)
    with pytest.raises(WartsError, match="empty"):
        text_of(join(recs[:2] + [[15, b""]] + recs[2:]))


def test_newer_fields_are_read_as_absent_when_malformed():
    """A reply field from newer scamper (20: interface name) that is garbage does not spoil
    the record: 20211212 never reads it."""
    from ixpscamper.warts.reader import _field_ids
    assert _field_ids(bytes([0x80, 0x80, 0x20])) == [20]  # how field 20 is flagged
    data = blob("ping-icmp-default")
    body = bytes(records(data)[2][1])
    f = length_fields(7, body)
    item = [p for k, p in f if k == "item"][0]
    plen = [p for k, p in f if k == "plen"][1]
    p = item
    while body[p] & 0x80:
        p += 1
    flags = bytearray(body[item:p + 1])
    while len(flags) < 3:
        flags[-1] |= 0x80
        flags.append(0)
    flags[2] |= 0x20  # field 20 (ifname): an id byte 5, out of sequence
    n = struct.unpack_from(">H", body, plen)[0]
    params = body[plen + 2:plen + 2 + n]
    new = (body[:item] + bytes(flags) + struct.pack(">H", n + 1) + params + b"\x05"
           + body[plen + 2 + n:])
    bad = with_record(data, 2, new)
    assert both(bad) == both(data)
    assert_like_real_tools(bad)


# ---------------------------------------------------------------------------
# the text fast paths and ICMPv6 type 11


def _v6_trace(icmp_type: int, v: int = 6) -> Trace:
    ip = ipaddress.IPv6Address if v == 6 else ipaddress.IPv4Address
    a = (lambda s: ip(f"2001:db8::{s}")) if v == 6 else (lambda s: ip(f"192.0.2.{s}"))
    hops = [TraceHop(addr=a(1), probe_ttl=1, probe_id=1, probe_size=60, rtt=1234, flags=0x11,
                     reply_ttl=64, icmp_type=icmp_type, icmp_code=0, icmp_q_ttl=1,
                     icmp_q_ipl=60, tx=Timeval(1795760000, 1)),
             TraceHop(addr=a(2), probe_ttl=2, probe_id=1, probe_size=60, rtt=2345, flags=0x11,
                      reply_ttl=63, icmp_type=1 if v == 6 else 3, icmp_code=4 if v == 6 else 3,
                      icmp_q_ttl=1, icmp_q_ipl=60, tx=Timeval(1795760000, 2))]
    return Trace(dst=a(2), src=a(9), start=Timeval(1795760000, 0), method=2, probe_size=60,
                 hop_count=2, hops=hops)


@pytest.mark.parametrize("path", ["bytes", "records"])
def test_ipv6_type_11_keeps_its_note_on_the_fast_paths(path):
    """ICMPv6 type 11 is not time exceeded (that is 3): sc_warts2text prints ' !<11,0>'."""
    tr = _v6_trace(11)
    data = encode_record(tr)
    text = text_of(data) if path == "bytes" else render_text(read_records(data)[0])
    assert text.splitlines()[1] == " 1  2001:db8::1  1.234 ms !<11,0>"
    r = real("sc_warts2text", data)
    if r is not None:
        assert r[1] == text


@pytest.mark.parametrize("path", ["bytes", "records"])
def test_ipv4_time_exceeded_has_no_note_and_ipv6_type_3_neither(path):
    for tr in (_v6_trace(11, v=4), _v6_trace(3)):
        data = encode_record(tr)
        text = text_of(data) if path == "bytes" else render_text(read_records(data)[0])
        assert text.splitlines()[1].endswith(" ms")
        r = real("sc_warts2text", data)
        if r is not None:
            assert r[1] == text


@requires_tool("sc_warts2text")
def test_fast_paths_agree_with_the_tool_for_every_icmpv6_type():
    for t in sorted(set(range(0, 256, 5)) | {1, 2, 3, 11, 129}):
        data = encode_record(_v6_trace(t))
        assert text_of(data) == real("sc_warts2text", data)[1]


def test_hop_without_attempt_number_has_probe_id_0():
    """Hop field 5 is stored minus one; when it is absent scamper's zeroed hop keeps 0."""
    data = blob("trace-udp")
    body = bytearray(records(data)[2][1])
    f = length_fields(6, bytes(body))
    p = [q for k, q in f if k == "item"][0]
    plen = [q for k, q in f if k == "plen"][1]
    assert body[p] & 0x1F == 0x1E  # fields 2, 3, 4, 5 lead: the attempt is the 4th byte
    body[p] &= ~0x10
    start = _params_start(body, p)
    del body[start + 3]
    struct.pack_into(">H", body, plen, struct.unpack_from(">H", body, plen)[0] - 1)
    bad = with_record(data, 2, bytes(body))
    (tr,) = [r for r in read_records(bad) if isinstance(r, Trace)]
    assert [h.probe_id for h in tr.hops][0] == 0
    assert '"probe_ttl":1, "probe_id":0,' in json_of(bad)
    assert text_of(bad) == text_of(data)
    assert_like_real_tools(bad)


def test_ping_replies_from_a_link_layer_address_are_not_icmp():
    """scamper's SCAMPER_PING_REPLY_IS_ICMP needs an IPv4 or IPv6 reply address."""
    data = blob("ping-icmp-time")
    body = bytearray(records(data)[2][1])
    # the destination, which the replies refer to: 4 bytes of a 6-byte Ethernet
    # address (scamper takes the 2 bytes after it too)
    i = bytes(body).index(b"\x04\x01\xc6\x33\x64\x42")
    body[i + 1] = 3
    bad = with_record(data, 2, bytes(body))
    p = [r for r in read_records(bad) if hasattr(r, "replies")][0]
    assert p.replies[0].addr.version == 0
    line = text_of(bad).splitlines()[1]
    assert line.endswith(f"seq={p.replies[0].probe_id} ")  # no "ttl=... time=..." part
    assert '"icmp_type"' not in json_of(bad).split('"responses"')[1].split("}")[0]
    assert_like_real_tools(bad)
