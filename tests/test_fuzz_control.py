"""Fuzzing the user side of the text control protocol through the real adapters.

Arbitrary bytes, cut into arbitrary chunks, go into

* the sans-IO :class:`~ixpscamper.control.server.ControlServer`,
* the VP's local control socket (``vp.control.ControlProtocol`` and its
  :class:`~ixpscamper.vp.source.AttachedSource`, over a StringTransport, on a
  fake measurement backend and a task.Clock) and a VP remote channel
  (an attached ``AttachedSource``),
* the controller's per-VP user socket (``remoted.service.UserProtocol``, with
  the daemon's ControllerCore on a MemoryReactorClock and the VP's TCP
  connection a StringTransport).

Properties: nothing raises; the output is valid protocol (every line a reply
scamper sends, every DATA block exactly as long as its header says and
decodable); every command that reaches the backend gets exactly one reply,
``OK id-N`` with N counting up or ``ERR``, in line order; chunking changes
nothing; and a line that never ends costs bounded memory (scamper's
linepoll has no limit: it grows its buffer with every read until the
newline comes; ours refuses a line longer than ``MAX_LINE``).
"""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure

from ixpscamper.control import client as C
from ixpscamper.control import server as S
from ixpscamper.remote.frames import Ack, FrameDecoder, MasterNew, encode_frame
from ixpscamper.vp.control import ControlFactory
from ixpscamper.vp.source import AttachedSource, CommandRejected

REJECT_REASON = "fake backend refuses it"

# -- input: protocol words, garbage and arbitrary bytes, in arbitrary chunks --------

WORDS = [
    "ping 127.0.0.1", "trace 127.0.0.2", "ping -c 1 ::1", "tracer 1.2.3.4", "foo", "PING 1.2.3.4",
    "halt 1", "halt 2", "halt 99", "halt x", "halt", "halt id-1", "done", "done now", "DONE",
    "attach", "attach format json", "attach priority 3", "attach format xml", "attach priority",
    "get pid", "get version", "get window", "get monitorname", "get", "get x", "help", "exit",
    "  ping 127.0.0.1  ", "'unbalanced", "attach \"format\" warts",
]
line_text = st.one_of(
    st.sampled_from(WORDS),
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40),
)
line_end = st.sampled_from([b"\n", b"\r\n", b"\n\n", b"\r"])
piece = st.one_of(
    st.tuples(line_text, line_end).map(lambda t: t[0].encode() + t[1]),
    st.tuples(line_text, line_end).map(lambda t: t[0].encode() + t[1]),  # weight the words
    st.binary(max_size=12),
)
stream = st.lists(piece, max_size=30).map(b"".join)
cuts = st.lists(st.integers(1, 50), max_size=25)


def chunked(data: bytes, sizes: list[int]) -> list[bytes]:
    out, pos = [], 0
    for n in sizes:
        if pos >= len(data):
            break
        out.append(data[pos:pos + n])
        pos += n
    if pos < len(data):
        out.append(data[pos:])
    return out


# -- output: what a valid reply stream is ---------------------------------------------

_LINE = re.compile(
    rb"OK|OK id-[1-9][0-9]*|OK halted [0-9]+|MORE|ERR [\x20-\x7e]+"
    rb"|OK (version|pid|pps|monitorname|command) [\x20-\x7e]+|OK window [0-9]+/[0-9]+|OK null monitorname"
)
_DATA = re.compile(rb"DATA ([0-9]+)( id-([1-9][0-9]*)( inprog)?)?")


def replies(out: bytes) -> list[tuple]:
    """Split a server's output into ('line', bytes) and ('data', task_id, payload);
    assert it is the protocol: nothing else, blocks exact, warts blocks
    uudecode, json blocks one line (the reply parser tells them apart)."""
    items: list[tuple] = []
    pos = 0
    while pos < len(out):
        nl = out.find(b"\n", pos)
        assert nl >= 0, f"unterminated output {out[pos:pos + 60]!r}"
        line = out[pos:nl]
        pos = nl + 1
        m = _DATA.fullmatch(line)
        if m:
            n = int(m.group(1))
            block = out[pos:pos + n]
            assert len(block) == n, "DATA block shorter than its header"
            pos += n
            items.append(("data", int(m.group(3)) if m.group(3) else None, block))
            continue
        assert _LINE.fullmatch(line), f"not a reply: {line!r}"
        items.append(("line", line))
    # the project's reply parser reads the same stream without an Unknown or error
    parsed = C.ReplyParser(fmt="auto").feed(out)
    assert not any(isinstance(r, C.Unknown) for r in parsed)
    assert len(parsed) == len(items)
    return items


# -- a fake measurement backend ---------------------------------------------------------


class FakeTask:
    def __init__(self) -> None:
        self.deferred: Deferred = Deferred()
        self.halted = False

    def halt(self) -> None:
        self.halted = True


class FakeBackend:
    """Accepts ``ping ...`` / ``trace ...``; records every decision in order."""

    def __init__(self) -> None:
        self.decisions: list[bool] = []
        self.tasks: list[FakeTask] = []

    def parse(self, command: str):
        ok = command.split()[0] in ("ping", "trace")
        self.decisions.append(ok)
        if not ok:
            raise CommandRejected(REJECT_REASON)
        return command

    def start(self, options) -> FakeTask:
        t = FakeTask()
        self.tasks.append(t)
        return t


def check_accounting(items: list[tuple], backend: FakeBackend) -> None:
    """Every command the backend saw got exactly one reply, in order: OK id-N
    (N = 1, 2, ...) if accepted, ERR with the backend's reason if not."""
    answers = [it[1] for it in items if it[0] == "line"
               and (it[1].startswith(b"OK id-") or it[1] == b"ERR command not accepted: " + REJECT_REASON.encode())]
    assert [a.startswith(b"OK id-") for a in answers] == backend.decisions
    ids = [int(a[6:]) for a in answers if a.startswith(b"OK id-")]
    assert ids == list(range(1, len(backend.tasks) + 1))
    data_ids = [it[1] for it in items if it[0] == "data" and it[1] is not None]
    assert len(data_ids) == len(set(data_ids)) and set(data_ids) <= set(ids)


def run_clock(clock: Clock) -> None:
    # the source starts at most 64 commands per reactor turn: let the turns pass
    for _ in range(1000):
        if not clock.getDelayedCalls():
            return
        clock.advance(0)
    raise AssertionError("the source never stopped rescheduling itself")


# -- the sans-IO core -----------------------------------------------------------------


def drive_core(chunks: list[bytes], attached: bool) -> tuple[bytes, FakeBackend, S.ControlServer]:
    core = S.ControlServer(attached=attached)
    backend = FakeBackend()
    for c in chunks:
        core.feed(c)
        while (ev := core.next_event()) is not None:
            if isinstance(ev, S.Command):
                try:
                    backend.parse(ev.text)
                except CommandRejected as e:
                    core.reject(str(e))
                else:
                    backend.start(ev.text)
                    core.accept()
                    core.more()
            elif isinstance(ev, S.Halt):
                core.no_task(ev.task_id)
        assert len(core._inbuf) <= S.MAX_LINE + 1 + len(c)
    core.eof()
    return core.data_to_send(), backend, core


@settings(max_examples=300, deadline=None)
@given(stream, cuts, st.booleans())
def test_core_fuzz(data, sizes, attached):
    out, backend, _ = drive_core(chunked(data, sizes), attached)
    check_accounting(replies(out), backend)
    assert drive_core([data], attached)[0] == out  # chunking changes nothing


def test_core_never_ending_line_is_bounded():
    core = S.ControlServer(attached=True)
    core.feed(b"ping 127.0.0.1\n")
    assert isinstance(core.next_event(), S.Command)
    chunk = b"x" * 65536
    for _ in range(160):  # 10 MiB, and the application reads no event meanwhile
        core.feed(chunk)
        assert len(core._inbuf) <= S.MAX_LINE + 2 * len(chunk)
    assert isinstance(core.next_event(), S.InputError)
    assert core.data_to_send() == b"ERR line too long\n"
    core.feed(chunk + b"\nping 127.0.0.1\n")  # the session is over: nothing more is read
    assert core.next_event() is None and len(core._inbuf) == 0


def test_core_lines_before_an_endless_one_are_answered():
    core = S.ControlServer(attached=True)
    core.feed(b"ping 127.0.0.1\nhalt 7\n" + b"y" * (3 * S.MAX_LINE))
    core.feed(b"y" * S.MAX_LINE + b"\ndone\n")
    events = []
    while (ev := core.next_event()) is not None:
        events.append(ev)
        if isinstance(ev, S.Halt):
            core.no_task(ev.task_id)
    assert events == [S.Command("ping 127.0.0.1"), S.Halt(7), S.InputError("line too long")]
    assert core.data_to_send() == b"ERR no task id-7\nERR line too long\n"


def test_core_longest_line_is_accepted():
    core = S.ControlServer(attached=True)
    cmd = b"ping " + b"9" * (S.MAX_LINE - 5)
    assert len(cmd) == S.MAX_LINE
    for i in range(0, len(cmd), 1000):
        core.feed(cmd[i:i + 1000])
        assert core.next_event() is None
    core.feed(b"\r\n")
    assert core.next_event() == S.Command(cmd.decode())


def test_core_line_end_split_after_the_cr():
    # the longest line, its CR in one read and its LF in the next
    cmd = b"ping " + b"9" * (S.MAX_LINE - 5)
    core = S.ControlServer(attached=True)
    core.feed(cmd + b"\r")
    assert core.next_event() is None
    core.feed(b"\n")
    assert core.next_event() == S.Command(cmd.decode())
    one_more = S.ControlServer(attached=True)
    one_more.feed(cmd + b"9")
    assert one_more.next_event() is None  # it may still be the longest line and a CR...
    one_more.feed(b"\n")
    assert one_more.next_event() == S.InputError("line too long")


# -- the VP: local control socket and remote channel ------------------------------------


class Transport(StringTransport):
    pass


def drive_vp_local(chunks: list[bytes], finish_some: list[int]):
    clock = Clock()
    backend = FakeBackend()
    factory = ControlFactory(clock, backend, path="/run/fuzz.sock", monitor="fz", hostname="h")
    proto = factory.buildProtocol(None)
    tr = Transport()
    proto.makeConnection(tr)
    rec = _ping_record()
    for i, c in enumerate(chunks):
        if tr.disconnecting:
            break
        proto.dataReceived(c)
        run_clock(clock)
        _finish(backend, finish_some, i, rec)
    proto.connectionLost(Failure(ConnectionDone()))
    run_clock(clock)
    return tr, backend, proto


def _ping_record():
    from pathlib import Path

    from ixpscamper.warts import iter_records

    path = Path(__file__).parent / "fixtures" / "scamper-20211212" / "ping-icmp-default.warts"
    with open(path, "rb") as f:
        return [r for r in iter_records(f) if type(r).__name__ == "Ping"][0]


def _finish(backend: FakeBackend, finish_some: list[int], i: int, rec) -> None:
    import copy

    if i < len(finish_some):
        k = finish_some[i]
        if k < len(backend.tasks) and not backend.tasks[k].deferred.called:
            backend.tasks[k].deferred.callback(copy.copy(rec))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream, cuts, st.lists(st.integers(0, 10), max_size=25))
def test_vp_control_socket_fuzz(data, sizes, finish_some):
    tr, backend, proto = drive_vp_local(chunked(data, sizes), finish_some)
    items = replies(tr.value())
    check_accounting(items, backend)
    finished = sum(t.deferred.called for t in backend.tasks)
    results = [it for it in items if it[0] == "data" and it[1] is not None]
    assert len(results) <= finished
    # every task is over once the connection is gone (halted, or finished)
    assert all(t.halted or t.deferred.called for t in backend.tasks)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream, cuts)
def test_vp_control_socket_chunking_changes_nothing(data, sizes):
    whole, _, _ = drive_vp_local([data], [])
    pieces, _, _ = drive_vp_local(chunked(data, sizes), [])
    assert pieces.value() == whole.value()
    assert pieces.disconnecting == whole.disconnecting


def drive_vp_channel(chunks: list[bytes], finish_some: list[int], eof: bool = True):
    clock = Clock()
    backend = FakeBackend()
    out: list[bytes] = []
    finished: list[bool] = []
    src = AttachedSource(backend, clock, out.append, lambda: finished.append(True), attached=True,
                         list_name="fz_1", monitor="fz", hostname="h")
    rec = _ping_record()
    for i, c in enumerate(chunks):
        src.data_received(c)
        run_clock(clock)
        _finish(backend, finish_some, i, rec)
    if eof:
        src.eof()
        run_clock(clock)
    return b"".join(out), backend, src, finished


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream, cuts, st.lists(st.integers(0, 10), max_size=25))
def test_vp_remote_channel_fuzz(data, sizes, finish_some):
    out, backend, src, finished = drive_vp_channel(chunked(data, sizes), finish_some)
    items = replies(out)
    assert items[0] == ("line", b"MORE")  # a channel starts with MORE, then list and cycle
    check_accounting(items, backend)
    assert len(finished) <= 1


def test_vp_never_ending_line_is_bounded():
    # 200 commands queue a deferred drain (64 a turn); a client that keeps
    # sending one endless line meanwhile must not grow the buffer without end
    clock = Clock()
    backend = FakeBackend()
    out: list[bytes] = []
    src = AttachedSource(backend, clock, out.append, lambda: None, attached=True, list_name="fz_1",
                         hostname="h")
    src.data_received(b"ping 127.0.0.1\n" * 200)
    chunk = b"z" * 65536
    for _ in range(160):  # 10 MiB in the reads of one reactor turn
        src.data_received(chunk)
        assert len(src.core._inbuf) <= 200 * 15 + S.MAX_LINE + 2 * len(chunk)
    run_clock(clock)
    items = replies(b"".join(out))
    assert len(backend.tasks) == 200
    lines = [it[1] for it in items if it[0] == "line"]
    assert lines.count(b"ERR line too long") == 1
    assert lines.index(b"ERR line too long") > lines.index(b"OK id-200")


# -- the controller: a user on a VP's unix socket ---------------------------------------


def controller_with_user(tmp_path):
    from ixpscamper.remoted.service import RemotedService, VPFactory

    reactor = MemoryReactorClock()
    svc = RemotedService(reactor, [], str(tmp_path))
    vp = VPFactory(svc).buildProtocol(None)
    from twisted.internet.address import IPv4Address

    vptr = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000))
    vp.makeConnection(vptr)
    vp.dataReceived(encode_frame(0, 0, MasterNew(b"fuzzfuzz", b"fz").encode()))
    user_factory = reactor.unixServers[0][1]
    user = user_factory.buildProtocol(None)
    utr = StringTransport()
    user.makeConnection(utr)
    return reactor, svc, vp, vptr, user, utr


def vp_frames(vptr: StringTransport, dec: FrameDecoder):
    frames = dec.feed(vptr.value())
    vptr.clear()
    return frames


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=3000), cuts, st.binary(max_size=3000), cuts)
def test_controller_user_socket_relays_any_bytes(tmp_path_factory, up, up_cuts, down, down_cuts):
    # the controller does not parse the user's text (sc_remoted does not
    # either): whatever the user sends reaches the VP's channel, byte for
    # byte and in order, in valid frames; whatever the VP sends on the
    # channel reaches the user the same way
    reactor, svc, vp, vptr, user, utr = controller_with_user(tmp_path_factory.mktemp("u"))
    dec = FrameDecoder()
    got = bytearray()
    channel_new = [f for f in vp_frames(vptr, dec) if f.channel == 0 and f.payload[:1] == b"\x02"]
    assert len(channel_new) == 1
    vp.dataReceived(encode_frame(0, 0, Ack(channel_new[0].seq).encode()))  # oldest first
    for c in chunked(up, up_cuts):
        user.dataReceived(c)
        for f in vp_frames(vptr, dec):
            assert f.channel == user.channel, f  # nothing but the user's bytes
            assert 0 < len(f.payload) <= 65535
            got += f.payload
            vp.dataReceived(encode_frame(0, 0, Ack(f.seq).encode()))
    assert bytes(got) == up
    ch = user.channel
    seq = 0  # the VP's first reliable frame (MASTER_NEW is not one)
    for c in chunked(down, down_cuts):
        if c:
            vp.dataReceived(encode_frame(seq, ch, c))
            seq += 1
    assert utr.value() == down
    assert not utr.disconnecting and not vptr.disconnecting


def test_controller_never_ending_line_pauses_the_user(tmp_path):
    # a user sending without end to a VP that does not acknowledge: the
    # controller stops reading from that user, holding at most channel_high
    # (plus one read) of its bytes
    reactor, svc, vp, vptr, user, utr = controller_with_user(tmp_path)
    chunk = b"q" * 65536
    sess = user.entry.session
    for _ in range(160):  # 10 MiB offered
        if utr.producerState == "paused":
            break
        user.dataReceived(chunk)
    assert utr.producerState == "paused"
    assert sess.unacked_total <= svc.core.channel_high + len(chunk)
