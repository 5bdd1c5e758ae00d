"""The client's fast paths give what the plain paths give.

Each speed-up of the mux client (bench/mux_bench.py) keeps a slower,
general path beside it: a uu block decoded in whole-block C passes against
the line-by-line strict decoder, the reply parser's byte-level recognition
of MORE / OK id-N / DATA n id-N against its general line path, the mux
decoder's per-chunk merge (``feed_batch``) against ``feed``, gathered writes
against one write per command, and a command text kept per (options,
family) against building it anew.  Each pair is compared here on arbitrary
input, so a fast path that drifts from its reference fails."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ixpscamper.client import api
from ixpscamper.client.api import build_command
from ixpscamper.client.vps import MAX_FRAME, MuxClientCore
from ixpscamper.commands import CommandError, PingOptions, TraceOptions, _ip, parse_command
from ixpscamper.control import uu
from ixpscamper.control.client import (
    ControlProtocolError, Data, Err, Info, More, Ok, ReplyParser, Unknown,
)
from ixpscamper.mux.frames import (
    Attr, ChannelClose, ChannelData, ChannelOpen, Go, MuxDecoder, MuxError, VpDepart, VpUpdate,
    encode_control, encode_data,
)


def _outcome(f, *a):
    try:
        return ("ok", f(*a))
    except uu.UUError as e:
        return ("err", str(e))


# ---- uu -------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_uu_fast_decode_of_valid_blocks(data):
    block = uu.encode(data)
    assert uu.decode(block) == data == uu._decode_strict(block)


@settings(max_examples=600, deadline=None)
@given(st.binary(max_size=200), st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)),
                                         max_size=4),
       st.sampled_from([b"", b"`\n", b"x", b"\n", b" \n"]))
def test_uu_fast_decode_agrees_with_the_strict_decoder(data, flips, tail):
    """Valid or not, the result -- bytes, or the error and its message -- is
    the strict decoder's."""
    block = bytearray(uu.encode(data))
    for where, value in flips:
        block[where % len(block)] = value
    block = bytes(block) + tail
    assert _outcome(uu.decode, block) == _outcome(uu._decode_strict, block)


@pytest.mark.parametrize("block", [
    b"!`\n`\n",            # bits past a one-byte line's end set: binascii calls it garbage
    b"`\n`\n",             # an end line, then another
    b"M" + b"!" * 60 + b"\n",  # no end line
    b"#86)C\r\n`\n",       # CR at a line's end
    b"!\r```\n`\n",        # CR inside a line: binascii reads it as a zero
])
def test_uu_fast_decode_odd_blocks(block):
    assert _outcome(uu.decode, block) == _outcome(uu._decode_strict, block)
    assert _outcome(uu.decode, block)[0] == "err"


# ---- reply parser ----------------------------------------------------------


_word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=8)
_reply = st.one_of(
    st.just(("MORE", More())),
    st.integers(0, 10**6).map(lambda n: (f"OK id-{n}", Ok(f"id-{n}", n))),
    _word.map(lambda w: (f"OK {w}", Ok(w, int(w[3:]) if w[:3] == "id-" and w[3:].isdigit()
                                       else None))),
    _word.map(lambda w: (f"ERR {w}", Err(w))),
    _word.map(lambda w: (f"INFO {w}", Info(w))),
    st.just(("more", More())),
    st.just(("OK", Ok(""))),
    _word.map(lambda w: (f"what {w}", Unknown(f"what {w}"))),
    st.tuples(st.binary(max_size=120), st.integers(0, 99),
              st.sampled_from(["", " id-{}", " id-{} inprog", " inprog", " id-{} future"]))
    .map(lambda a: ((f"DATA {len(uu.encode(a[0]))}" + a[2].format(a[1]), uu.encode(a[0])),
                    Data(a[0], a[1] if "id-" in a[2] else None, "inprog" in a[2]))),
)


def _wire(replies, crlf):
    out = b""
    for text, _ in replies:
        if isinstance(text, tuple):
            out += text[0].encode() + (b"\r\n" if crlf else b"\n") + text[1]
        else:
            out += text.encode() + (b"\r\n" if crlf else b"\n")
    return out


@settings(max_examples=300, deadline=None)
@given(st.lists(_reply, max_size=30), st.lists(st.integers(1, 200), max_size=20), st.booleans())
def test_reply_parser_any_chunking(replies, cuts, crlf):
    """The fast recognitions and the general path together give exactly the
    replies that were written, however the bytes are cut."""
    raw = _wire(replies, crlf)
    p = ReplyParser("warts")
    got = []
    pos = 0
    for c in cuts:
        got += p.feed(raw[pos:pos + c])
        pos += c
    got += p.feed(raw[pos:])
    assert got == [r for _, r in replies]
    assert p.buffered == 0 and not p.in_block


@pytest.mark.parametrize("line", [
    b"DATA 99999999999 id-1", b"DATA 5 id-x", b"DATA x id-1", b"DATA", b"OK id-1 ", b"MORE ",
    b"\xffMORE",
])
def test_reply_parser_fast_lines_fall_back(line):
    """Lines that look almost like the fast ones get the general verdict."""
    def general(raw):
        p = ReplyParser("warts")
        out = []
        try:
            p._line(raw, out)
            return ("ok", out, p.in_block)
        except ControlProtocolError as e:
            return ("err", str(e), None)

    def fast(raw):
        p = ReplyParser("warts")
        try:
            return ("ok", p.feed(raw + b"\n"), p.in_block)
        except ControlProtocolError as e:
            return ("err", str(e), None)

    assert fast(line) == general(line)


def test_reply_parser_a_block_in_many_pieces_is_gathered_once():
    p = ReplyParser("warts")
    rec = bytes(range(256)) * 40
    block = uu.encode(rec)
    raw = f"DATA {len(block)} id-7\n".encode() + block + b"MORE\n"
    got = []
    for i in range(0, len(raw), 100):
        got += p.feed(raw[i:i + 100])
    assert got == [Data(rec, 7, False), More()]


# ---- mux decoder ------------------------------------------------------------


_control = st.one_of(
    st.builds(lambda i, n: VpUpdate(i, ((Attr.NAME, n),)), st.integers(1, 9), _word),
    st.builds(VpDepart, st.integers(0, 9)),
    st.just(Go()),
    st.builds(ChannelClose, st.integers(1, 4)),
)
_frame = st.one_of(_control, st.tuples(st.integers(1, 4), st.binary(max_size=40)))


def _frames_wire(frames):
    return b"".join(encode_control(f) if not isinstance(f, tuple) else encode_data(*f)
                    for f in frames)


def _runs(events):
    """Control messages in order; between them, each channel's bytes."""
    out, run = [], {}
    for ev in events:
        if isinstance(ev, ChannelData):
            run[ev.channel] = run.get(ev.channel, b"") + ev.data
        else:
            if run:
                out.append({k: v for k, v in run.items() if v})
            run = {}
            out.append(ev)
    if run:
        out.append({k: v for k, v in run.items() if v})
    return [x for x in out if x != {}]


@settings(max_examples=300, deadline=None)
@given(st.lists(_frame, max_size=40), st.lists(st.integers(1, 60), max_size=20))
def test_feed_batch_is_feed_merged(frames, cuts):
    raw = _frames_wire(frames)
    a, b = MuxDecoder("client"), MuxDecoder("client")
    plain, batched = [], []
    pos = 0
    for c in cuts + [len(raw)]:
        piece = raw[pos:pos + c]
        pos += c
        plain += list(a.feed(piece))
        got = b.feed_batch(piece)
        # one piece per channel between control messages, in one call
        seen = set()
        for ev in got:
            if isinstance(ev, ChannelData):
                assert ev.channel not in seen and ev.data
                seen.add(ev.channel)
            else:
                seen = set()
        batched += got
    assert _runs(batched) == _runs(plain)
    assert a.buffered == b.buffered


def test_feed_batch_error_carries_what_came_before():
    raw = (encode_data(1, b"MORE\n") + encode_control(Go()) + encode_data(2, b"OK id-1\n")
           + encode_data(1, b"MORE\n") + b"\0\0\0\0\0\0\0\2\0\x63")   # control type 99
    with pytest.raises(MuxError, match="unknown control message type 99") as e:
        MuxDecoder("client").feed_batch(raw)
    assert e.value.events == [ChannelData(1, b"MORE\n"), Go(), ChannelData(2, b"OK id-1\n"),
                              ChannelData(1, b"MORE\n")]


def test_feed_batch_server_role_skips_what_the_server_ignores():
    raw = encode_control(ChannelOpen(3, 1)) + encode_control(Go()) + encode_data(1, b"ping\n")
    assert MuxDecoder("server").feed_batch(raw) == [ChannelOpen(3, 1), ChannelData(1, b"ping\n")]


# ---- gathered writes ---------------------------------------------------------


class Sched:
    def __init__(self):
        self.calls = []

    def __call__(self, f):
        self.calls.append(f)

    def run(self):
        calls, self.calls = self.calls, []
        for f in calls:
            f()


def _core(n_vps=3, schedule=None, window=None):
    writes = []
    core = MuxClientCore(writes.append, schedule=schedule)
    core.data_received(b"".join(encode_control(VpUpdate(i, ((Attr.NAME, f"vp{i}"),)))
                                for i in range(1, n_vps + 1)) + encode_control(Go()))
    return core, writes


def _decode_client_stream(writes):
    return list(MuxDecoder("server").feed(b"".join(writes)))


def test_gathered_commands_go_in_one_write_a_frame_per_vp():
    s = Sched()
    core, writes = _core(schedule=s)
    for i in range(15):
        core.submit(i % 3 + 1, f"ping 127.0.0.{i + 1}", lambda r: None)
    assert writes == []            # nothing until the scheduled flush
    s.run()
    assert len(writes) == 1
    evs = _decode_client_stream(writes)
    assert evs[:3] == [ChannelOpen(1, 1), ChannelOpen(2, 2), ChannelOpen(3, 3)]
    assert [type(e) for e in evs[3:]] == [ChannelData] * 3
    for ev in evs[3:]:
        assert ev.data == b"".join(f"ping 127.0.0.{i + 1}\n".encode()
                                   for i in range(15) if i % 3 + 1 == ev.channel)


def test_gathered_stream_equals_the_immediate_stream_per_channel():
    s = Sched()
    gathered, gw = _core(schedule=s)
    immediate, iw = _core()
    for core in (gathered, immediate):
        for i in range(40):
            core.submit(i % 3 + 1, f"ping -c {i % 5 + 1} 127.0.0.{i + 1}", lambda r: None)
        core.finish(2)
    s.run()
    assert _runs(_decode_client_stream(gw)) != []
    per = lambda evs: {c: b"".join(e.data for e in evs if isinstance(e, ChannelData)
                                   and e.channel == c) for c in (1, 2, 3)}
    g, i = _decode_client_stream(gw), _decode_client_stream(iw)
    assert per(g) == per(i)
    assert [e for e in g if not isinstance(e, ChannelData)] == \
        [e for e in i if not isinstance(e, ChannelData)]


def test_gathered_frames_are_bounded():
    s = Sched()
    core, writes = _core(n_vps=1, schedule=s)
    core.channel(1).window = 5000
    cmds = [f"ping -c 1 -s 100 127.0.{i // 250}.{i % 250 + 1}" for i in range(2000)]
    for c in cmds:
        core.submit(1, c, lambda r: None)
    s.run()
    evs = _decode_client_stream(writes)
    data = [e for e in evs if isinstance(e, ChannelData)]
    assert len(data) > 1 and all(len(e.data) <= MAX_FRAME for e in data)
    assert b"".join(e.data for e in data) == "".join(c + "\n" for c in cmds).encode()


def test_replies_release_commands_written_at_the_end_of_the_read():
    s = Sched()
    core, writes = _core(n_vps=2, schedule=s)
    ch = core.channel(1)
    ch.window = 1
    core.channel(2).window = 1
    for i in range(3):
        core.submit(1, f"ping 127.0.0.{i + 1}", lambda r: None)
        core.submit(2, f"ping 127.0.1.{i + 1}", lambda r: None)
    s.run()
    writes.clear()
    # both VPs take their first command: the next two go out in one write,
    # made by data_received itself, not by the scheduled call
    core.data_received(encode_data(1, b"OK id-1\n") + encode_data(2, b"ERR no\n"))
    assert len(writes) == 1
    assert [(e.channel, e.data) for e in _decode_client_stream(writes)] == \
        [(2, b"ping 127.0.1.2\n")]
    s.run()
    assert len(writes) == 1


def test_gathered_writes_dropped_when_the_connection_is_lost():
    s = Sched()
    core, writes = _core(schedule=s)
    got = []
    core.submit(1, "ping 127.0.0.1", got.append)
    core.connection_lost("gone")
    s.run()
    assert writes == [] and len(got) == 1 and isinstance(got[0], Exception)


# ---- command text --------------------------------------------------------------


_dst4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
_dst = st.one_of(_dst4, st.sampled_from([
    "127.1", "0x7f.1", "010.0.0.1", "127.000.0.1", "::1", "2001:db8::1", "::ffff:1.2.3.4",
    "2001:DB8:0:0::5", " 127.0.0.1", "127.0.0.1 ", "1.2.3.4.5", "256.1.1.1", "", "x", "1.2.3.04",
]), st.builds(lambda a: ipaddress.ip_address(a), _dst4))
_ping = st.fixed_dictionaries({}, optional={
    "count": st.integers(1, 5), "wait_us": st.sampled_from([100_000, 1_000_000, 2_500_000]),
    "size": st.sampled_from([0, 84, 1500]), "userid": st.integers(0, 9), "ttl": st.integers(1, 64)})
_trace = st.fixed_dictionaries({}, optional={
    "attempts": st.integers(1, 3), "firsthop": st.integers(1, 4),
    "rtr": st.sampled_from(["192.0.2.1", "::2", ipaddress.ip_address("192.0.2.9")]),
    "method": st.sampled_from(["udp-paris", "icmp-paris", "tcp"])})


def _reference(kind, dst, **fields):
    """build_command spelled out: parse the destination, build, check."""
    addr = _ip(str(dst))
    if addr is None:
        raise CommandError(f"bad destination {str(dst)[:60]!r}")
    for k in ("rtr", "src"):
        if isinstance(fields.get(k), str):
            fields[k] = _ip(fields[k])
    text = {"ping": PingOptions, "trace": TraceOptions}[kind](dst=addr, **fields).to_command()
    parse_command(text)
    return text


def _either(f, *a, **kw):
    try:
        return ("ok", f(*a, **kw))
    except (CommandError, TypeError, ValueError) as e:
        return ("err", type(e).__name__)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(["ping", "trace"]), st.lists(_dst, min_size=1, max_size=6), st.data())
def test_build_command_kept_text_is_the_text_built(kind, dsts, data):
    fields = data.draw(_ping if kind == "ping" else _trace)
    api._checked.clear()
    api._memo.clear()
    # the first of a (fields, family) builds it, later ones reuse it; a
    # (fields, destination) seen before is the text kept whole
    for dst in dsts + dsts:
        assert _either(build_command, kind, dst, **dict(fields)) == \
            _either(_reference, kind, dst, **dict(fields))


def test_gathered_commands_of_a_channel_gone_before_the_flush_are_not_sent():
    """A channel closed (or its VP gone) between submit and flush: its tasks
    have failed, so their commands are not sent after all; the others are."""
    s = Sched()
    core, writes = _core(n_vps=3, schedule=s)
    got = {}
    for vp in (1, 2, 3):
        core.submit(vp, f"ping 127.0.0.{vp}", lambda r, vp=vp: got.setdefault(vp, r))
    core.data_received(encode_control(ChannelClose(1)) + encode_control(VpDepart(2)))
    s.run()
    # nor are their opens (opening a channel on a departed VP would make
    # sc_remoted end the whole mux connection)
    assert _decode_client_stream(writes) == [ChannelOpen(3, 3),
                                             ChannelData(3, b"ping 127.0.0.3\n")]
    assert sorted(got) == [1, 2] and all(isinstance(r, Exception) for r in got.values())
