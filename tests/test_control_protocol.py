"""Sans-IO cores of the text control protocol: ReplyParser and ControlServer."""

from __future__ import annotations

import ast

import pytest
from hypothesis import given, settings, strategies as st

from ixpscamper.control import client as C
from ixpscamper.control import server as S
from ixpscamper.control import uu

from tests.conftest import TRANSCRIPTS


def chunked(data: bytes, cuts: list[int]):
    pos = 0
    for c in cuts:
        yield data[pos:pos + c]
        pos += c
    yield data[pos:]


def parse_all(data: bytes, cuts=(), fmt="warts"):
    p = C.ReplyParser(fmt)
    out = []
    for piece in chunked(data, list(cuts)):
        out += p.feed(piece)
    assert not p.in_block and p.buffered == 0
    return out


# -- client parser --------------------------------------------------------------

def test_real_transcript_2026_dialect():
    """The ScamperCtrl transcript: DATA <n> id-N, results matched to ids."""
    stream = b""
    for line in (TRANSCRIPTS / "scamperctrl-2026-per-vp-socket.log").read_text().splitlines():
        if line.startswith("<V "):
            stream += ast.literal_eval(line[3:])
    events = parse_all(stream)
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["More", "Data", "Data", "Ok", "More", "Data", "Ok", "More", "Data"]
    assert [e.task_id for e in events if isinstance(e, C.Ok)] == [1, 2]
    datas = [e for e in events if isinstance(e, C.Data)]
    assert [d.task_id for d in datas] == [None, None, 1, 2]
    # warts record types: list (1), cycle start (2), trace (6), ping (7)
    assert [int.from_bytes(d.payload[2:4], "big") for d in datas] == [1, 2, 6, 7]
    for d in datas:
        assert d.payload[:2] == b"\x12\x05"
        assert int.from_bytes(d.payload[4:8], "big") == len(d.payload) - 8


def test_2021_dialect_bare_data_and_both_ok_forms():
    rec = b"\x12\x05\x00\x04" + (9).to_bytes(4, "big") + bytes(9)
    block = uu.encode(rec)
    data = b"OK\nMORE\nOK id-7\r\n\nDATA %d\n" % len(block) + block + b"ERR command not accepted: bad\nINFO x\nHELLO\n"
    ev = parse_all(data)
    assert ev == [C.Ok(""), C.More(), C.Ok("id-7", 7), C.Data(rec), C.Err("command not accepted: bad"),
                  C.Info("x"), C.Unknown("HELLO")]


def test_data_header_tokens():
    assert C.parse_data_header("DATA 12") == (12, None, False)
    assert C.parse_data_header("DATA 12 id-3") == (12, 3, False)
    assert C.parse_data_header("DATA 12 id-3 inprog") == (12, 3, True)
    assert C.parse_data_header("DATA 12 future-thing id-4") == (12, 4, False)
    for bad in ("DATA", "DATA x", "DATA -1", "DATA 99999999999"):
        with pytest.raises(C.ControlProtocolError):
            C.parse_data_header(bad)


def test_json_blocks_are_passed_through():
    obj = b'{"type":"cycle-start", "list_name":"x", "id":1}\n'
    ev = parse_all(b"OK\nMORE\nDATA %d\n" % len(obj) + obj + b"DATA 3 id-1\n{}\n", fmt="json")
    assert ev == [C.Ok(""), C.More(), C.Data(obj), C.Data(b"{}\n", 1)]


def test_bad_blocks_raise_protocol_error():
    with pytest.raises(C.ControlProtocolError):
        C.ReplyParser().feed(b"DATA 4\nabc\n")  # not uuencoded
    with pytest.raises(C.ControlProtocolError):
        C.ReplyParser("json").feed(b"DATA 3\n{}}")  # no newline
    with pytest.raises(C.ControlProtocolError):
        C.ReplyParser().feed(b"\xff\xfe\n")
    p = C.ReplyParser()
    with pytest.raises(C.ControlProtocolError):
        p.feed(b"x" * (C.MAX_LINE + 2))
    with pytest.raises(C.ControlProtocolError):
        p.feed(b"OK\n")  # a failed parser stays failed


# -- server core ----------------------------------------------------------------

def test_interactive_then_attach_then_commands():
    s = S.ControlServer(info=S.ServerInfo(pid=42, monitorname=None))
    assert s.receive(b"get version\nget pid\nget monitorname\nping -c 1 127.0.0.1\nget\n") == []
    assert s.data_to_send() == (b"OK version 20211212\nOK pid 42\nOK null monitorname\n"
                                b"ERR unhandled command 'ping'\n"
                                b"ERR usage: get [command | monitorname | pid | pps | version | window]\n")
    assert s.receive(b"attach priority 0\nattach bogus 1\nattach format xml\n") == []
    assert s.data_to_send() == (b"ERR invalid priority\nERR command attach param 'bogus' failed\n"
                                b"ERR format must be warts or json\n")
    ev = s.receive(b'ATTACH format "json" priority 5\r\n')
    assert ev == [S.Attached("json", 5)]
    assert s.data_to_send() == b"OK\nMORE\n"
    ev = s.receive(b"ping -c 1 127.0.0.1\nhalt 1\nhalt x\ndone\n")
    assert ev == [S.Command("ping -c 1 127.0.0.1"), S.Halt(1), S.Done()]
    assert s.data_to_send() == b"ERR usage: halt [id]\nOK\n"
    assert s.receive(b"ping 127.0.0.1\n") == []
    assert s.data_to_send() == b"ERR command not accepted: done already received\n"


def test_attached_channel_ids_and_dialects():
    rec = bytes(range(50))
    for dialect, header in (("current", b"DATA 74 id-1\n"), ("2021", b"DATA 74\n")):
        s = S.ControlServer(attached=True, dialect=dialect)
        assert s.receive(b"trace 127.0.0.1\n") == [S.Command("trace 127.0.0.1")]
        assert s.accept() == 1
        s.more()
        s.result(rec, task_id=1)
        s.result(rec)  # list/cycle records never carry an id
        out = s.data_to_send()
        assert out == b"OK id-1\nMORE\n" + header + uu.encode(rec) + b"DATA 74\n" + uu.encode(rec)
        assert len(uu.encode(rec)) == 74
        assert s.accept() == 2


def test_invalid_character_closes_input():
    s = S.ControlServer(attached=True)
    ev = s.receive(b"ping 127.0.0.1\npi\tng\nping 127.0.0.2\n")
    assert ev == [S.Command("ping 127.0.0.1"), S.InputError("invalid character in line")]
    assert s.data_to_send() == b"ERR invalid character in line\n"
    assert s.receive(b"ping 127.0.0.3\n") == []
    assert s.eof() == []


def test_line_too_long():
    s = S.ControlServer(attached=True)
    ev = s.receive(b"p" * (S.MAX_LINE + 10))
    assert ev == [S.InputError("line too long")]


def test_reject_and_halt_replies():
    s = S.ControlServer(attached=True)
    s.reject("expected address\nto ping")
    s.halted(3)
    s.no_task(4)
    assert s.data_to_send() == (b"ERR command not accepted: expected address to ping\n"
                                b"OK halted 3\nERR no task id-4\n")


# -- properties -----------------------------------------------------------------

printable_line = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=60)


@settings(max_examples=150, deadline=None)
@given(st.lists(printable_line, max_size=15), st.lists(st.integers(1, 40), max_size=20),
       st.booleans())
def test_server_same_events_for_any_chunking(lines, cuts, crlf):
    data = b"".join(l.encode() + (b"\r\n" if crlf else b"\n") for l in lines)
    whole = S.ControlServer(attached=True)
    ev_whole = whole.receive(data)
    pieces = S.ControlServer(attached=True)
    ev_pieces = []
    for piece in chunked(data, cuts):
        ev_pieces += pieces.receive(piece)
    assert ev_whole == ev_pieces
    assert whole.data_to_send() == pieces.data_to_send()
    assert all(isinstance(e, (S.Command, S.Halt, S.Done)) for e in ev_whole)


result_item = st.one_of(
    st.tuples(st.just("data"), st.binary(max_size=200), st.one_of(st.none(), st.integers(1, 10**6))),
    st.tuples(st.just("ok"), st.none(), st.none()),
    st.tuples(st.just("more"), st.none(), st.none()),
    st.tuples(st.just("err"), printable_line, st.none()),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(result_item, max_size=12), st.sampled_from(S.DIALECTS),
       st.lists(st.integers(1, 80), max_size=30))
def test_server_replies_round_trip_through_parser(items, dialect, cuts):
    s = S.ControlServer(attached=True, dialect=dialect)
    expected = []
    for kind, a, b in items:
        if kind == "data":
            s.result(a, task_id=b)
            expected.append(C.Data(a, b if dialect == "current" else None))
        elif kind == "ok":
            tid = s.accept()
            expected.append(C.Ok(f"id-{tid}", tid))
        elif kind == "more":
            s.more()
            expected.append(C.More())
        else:
            s.reject(a)
            reason = " ".join(a.split())
            expected.append(C.Err("command not accepted" + (f": {reason}" if reason else "")))
    assert parse_all(s.data_to_send(), cuts) == expected


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=80), max_size=6), st.lists(st.integers(1, 60), max_size=20))
def test_json_round_trip(objs, cuts):
    s = S.ControlServer(attached=True, fmt="json")
    objs = [o.replace(b"\n", b" ") for o in objs]
    for i, o in enumerate(objs):
        s.result(o, task_id=i + 1)
    ev = parse_all(s.data_to_send(), cuts, fmt="json")
    assert ev == [C.Data(o + b"\n", i + 1) for i, o in enumerate(objs)]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_fuzzed_replies_end_in_clean_errors(junk):
    p = C.ReplyParser()
    try:
        for ev in p.feed(junk):
            assert isinstance(ev, (C.Ok, C.Err, C.More, C.Info, C.Data, C.Unknown))
    except C.ControlProtocolError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_fuzzed_commands_never_crash_the_server(junk):
    s = S.ControlServer()
    for ev in s.receive(junk) + s.eof():
        assert isinstance(ev, (S.Attached, S.Command, S.Halt, S.Done, S.InputError, S.Eof))
    for line in s.data_to_send().split(b"\n")[:-1]:
        assert line[:3] in (b"OK", b"OK ", b"ERR", b"MOR")


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=1, max_size=400), st.integers(0, 500))
def test_mutated_uu_blocks(rec, where):
    block = bytearray(b"DATA %d\n" % uu.encoded_length(len(rec)) + uu.encode(rec))
    block[where % len(block)] ^= 0x41
    p = C.ReplyParser()
    try:
        p.feed(bytes(block))
    except C.ControlProtocolError:
        pass


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(["ping 127.0.0.1", "halt x", "halt 3", "done", "trace 127.0.0.2"]),
                max_size=20),
       st.lists(st.integers(1, 30), max_size=20))
def test_replies_follow_line_order_with_next_event(lines, cuts):
    """Replies the core makes itself and replies the app makes interleave in line order."""
    data = "".join(l + "\n" for l in lines).encode()
    s = S.ControlServer(attached=True)
    for piece in chunked(data, cuts):
        s.feed(piece)
        while (ev := s.next_event()) is not None:
            if isinstance(ev, S.Command):
                s.accept()
            elif isinstance(ev, S.Halt):
                s.no_task(ev.task_id)
    got = s.data_to_send().decode().splitlines()
    expected, n, done = [], 0, False
    for l in lines:
        if l == "halt x":
            expected.append("ERR usage: halt [id]")
        elif l == "halt 3":
            expected.append("ERR no task id-3")
        elif l == "done":
            expected.append("ERR done already received" if done else "OK")
            done = True
        elif done:
            expected.append("ERR command not accepted: done already received")
        else:
            n += 1
            expected.append(f"OK id-{n}")
    assert got == expected


def test_auto_format_tells_json_from_warts_per_block():
    rec = bytes(range(20))
    block = uu.encode(rec)
    obj = b'{"type":"ping"}\n'
    data = (b"OK\nMORE\nDATA %d\n" % len(block) + block + b"DATA %d id-1\n" % len(obj) + obj)
    assert parse_all(data, fmt="auto") == [C.Ok(""), C.More(), C.Data(rec), C.Data(obj, 1)]


def test_halt_takes_a_bare_number_like_scamper():
    s = S.ControlServer(attached=True)
    assert s.receive(b"halt id-1\nhalt 5\nhalt\n") == [S.Halt(5)]
    assert s.data_to_send() == b"ERR usage: halt [id]\nERR usage: halt [id]\n"


def test_the_client_side_imports_neither_attrs_nor_the_server():
    # ixp-attach imports it between connecting and its first command
    import subprocess
    import sys
    code = ("import sys; import ixpscamper.control.client, ixpscamper.control.lines; "
            "print(sorted(m for m in ('attrs', 'attr', 'ixpscamper.control.server') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_reply_events_are_immutable_values():
    a = C.Ok("id-3", 3)
    assert a == C.Ok("id-3", 3) and a != C.Ok("id-3", 4) and a != C.Err("id-3")
    assert hash(a) == hash(C.Ok("id-3", 3)) and len({C.More(), C.More()}) == 1
    assert repr(C.Data(b"x", 2)) == "Data(payload=b'x', task_id=2, inprog=False)"
    with pytest.raises(AttributeError):
        a.text = "x"
