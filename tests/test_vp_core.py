"""The VP's sources and remote link, in memory, on a task.Clock:
our RemoteVP against H2's ControllerCore, with cuts and resumes."""

from __future__ import annotations

import io
import random

from hypothesis import given, settings, strategies as st
from twisted.internet import task

from ixpscamper.control import client as C
from ixpscamper.control.server import ServerInfo
from ixpscamper.vp.remote import retry_policy
from ixpscamper.vp.source import AttachedSource
from ixpscamper.warts import iter_records
from ixpscamper.warts.records import CycleStart, CycleStop, Ping, WartsList

from tests.vp_helpers import FakeBackend, Wire


def user_results(data: bytes):
    """Replies on a user stream, and the warts records of its DATA blocks."""
    replies = C.ReplyParser().feed(bytes(data))
    blocks = b"".join(r.payload for r in replies if isinstance(r, C.Data))
    return replies, list(iter_records(io.BytesIO(blocks)))


# -- AttachedSource directly -----------------------------------------------------

class Sink:
    def __init__(self):
        self.data = bytearray()
        self.finished = 0

    def write(self, b):
        assert not self.finished, "write after finish"
        self.data += b

    def finish(self):
        self.finished += 1


def make_source(clock, backend, **kw):
    sink = Sink()
    kw.setdefault("attached", True)
    kw.setdefault("list_name", "127.0.0.1:5000_0")
    src = AttachedSource(backend, clock, sink.write, sink.finish, monitor="vp1", hostname="h", **kw)
    return src, sink


def test_channel_source_full_session_current_dialect():
    clock = task.Clock()
    clock.advance(1795760000)
    be = FakeBackend(clock, delay=2)
    src, sink = make_source(clock, be)
    src.data_received(b"ping -c 2 127.0.0.1\nping 127.0.0.2\nnonsense\nhalt 9\n")
    src.data_received(b"done\n")
    assert sink.finished == 0  # two tasks still running
    clock.advance(2)
    assert sink.finished == 1
    replies, recs = user_results(sink.data)
    kinds = [type(r).__name__ for r in replies]
    assert kinds == ["More", "Data", "Data", "Ok", "More", "Ok", "More", "Err", "Err", "Ok",
                     "Data", "Data", "Data"]
    assert replies[7] == C.Err("command not accepted: expected ping [-c N] ADDRESS")
    assert replies[8] == C.Err("no task id-9")
    assert [r.task_id for r in replies if isinstance(r, C.Data)] == [None, None, 1, 2, None]
    assert [type(r) for r in recs] == [WartsList, CycleStart, Ping, Ping, CycleStop]
    assert recs[0].name == "127.0.0.1:5000_0" and recs[0].monitor == "vp1"
    assert recs[0].description is None
    assert recs[1].id == 1 and recs[1].hostname == "h"
    assert {str(r.dst) for r in recs[2:4]} == {"127.0.0.1", "127.0.0.2"}


def test_2021_dialect_has_no_ids():
    clock = task.Clock()
    src, sink = make_source(clock, FakeBackend(clock), dialect="2021")
    src.data_received(b"ping 127.0.0.1\ndone\n")
    clock.advance(1)
    assert b" id-" not in sink.data.replace(b"OK id-", b"")
    assert sink.finished == 1


def test_tasks_of_one_channel_run_concurrently():
    clock = task.Clock()
    be = FakeBackend(clock, delay=5)
    src, sink = make_source(clock, be)
    src.data_received(b"".join(b"ping 127.0.0.1\n" for _ in range(20)) + b"done\n")
    assert len(be.started) == 20
    clock.advance(5)  # all finish together: one delay, not twenty
    replies, recs = user_results(sink.data)
    assert sum(isinstance(r, Ping) for r in recs) == 20
    assert sink.finished == 1


def test_a_burst_of_commands_is_started_a_batch_per_reactor_turn():
    """An impatient client's 200 queued commands are started 64 per reactor
    turn, so the first probes go out before the last command is parsed; an
    EOF right behind them still runs every one, in order."""
    from ixpscamper.vp.source import COMMANDS_PER_TURN

    clock = task.Clock()
    be = FakeBackend(clock, delay=5)
    src, sink = make_source(clock, be)
    src.data_received(b"".join(b"ping 127.0.0.%d\n" % (i % 250 + 1) for i in range(200)) + b"done\n")
    assert len(be.started) == COMMANDS_PER_TURN
    src.data_received(b"")  # more input while a batch is pending starts nothing extra
    assert len(be.started) == COMMANDS_PER_TURN
    src.eof()  # the FIN: lines already received are still acted on first
    assert len(be.started) == 200
    clock.advance(5)
    replies, recs = user_results(sink.data)
    oks = [r.task_id for r in replies if isinstance(r, C.Ok) and r.task_id is not None]
    assert oks == list(range(1, 201))
    assert [str(t.dst) for t in be.started] == ["127.0.0.%d" % (i % 250 + 1) for i in range(200)]
    assert sink.finished == 1

    # without an EOF, the next reactor turns start the rest
    clock2 = task.Clock()
    be2 = FakeBackend(clock2, delay=5)
    src2, sink2 = make_source(clock2, be2)
    src2.data_received(b"ping 127.0.0.1\n" * 150)
    assert len(be2.started) == COMMANDS_PER_TURN
    clock2.advance(0)
    assert len(be2.started) == 150


def test_halt_and_invalid_character():
    clock = task.Clock()
    be = FakeBackend(clock, delay=10)
    src, sink = make_source(clock, be)
    src.data_received(b"ping 127.0.0.1\nhalt 1\n")
    assert be.started[0].halted
    assert b"OK halted 1\n" in sink.data
    src.data_received(b"ping 127.0.0.3\nping\x01 x\n")
    # input error: the source is abandoned, cycle stop sent, finished at once
    assert sink.finished == 1
    replies, recs = user_results(sink.data)
    assert C.Err("invalid character in line") in replies
    assert type(recs[-1]) is CycleStop


def test_local_control_connection_interactive_then_json():
    clock = task.Clock()
    be = FakeBackend(clock)
    src, sink = make_source(clock, be, attached=False, list_name="/tmp/s:0", abandon_on_eof=True,
                            info=ServerInfo(pid=7))
    src.data_received(b"get pid\nattach format json\nping 127.0.0.1\ndone\n")
    clock.advance(1)
    lines = bytes(sink.data).split(b"\n")
    assert lines[:3] == [b"OK pid 7", b"OK", b"MORE"]
    replies = C.ReplyParser("json").feed(bytes(sink.data))
    datas = [r.payload for r in replies if isinstance(r, C.Data)]
    assert datas[0].startswith(b'{"type":"cycle-start", "list_name":"/tmp/s:0", "id":1')
    assert datas[1].startswith(b'{"type":"ping"')
    assert datas[2].startswith(b'{"type":"cycle-stop"')
    assert sink.finished == 1


def test_local_eof_abandons_running_tasks():
    clock = task.Clock()
    be = FakeBackend(clock, delay=10)
    src, sink = make_source(clock, be, attached=False, list_name="/tmp/s:0", abandon_on_eof=True)
    src.data_received(b"attach\nping 127.0.0.1\n")
    src.eof()
    assert be.started[0].halted and sink.finished == 1


# -- over the remote protocol, against H2's controller core ---------------------

def open_user(wire):
    sess = wire.events.sessions[-1]
    ch = sess.open_channel()
    wire.pump()
    return sess, ch


def test_register_and_run_a_channel():
    clock = task.Clock()
    clock.advance(1000)
    w = Wire(clock, FakeBackend(clock))
    w.connect()
    assert w.events.log == ["new"]
    sess, ch = open_user(w)
    sess.channel_write(ch, b"ping -c 3 127.0.0.1\ndone\n")
    w.pump()
    w.advance(2)
    assert ch in w.events.fins
    replies, recs = user_results(w.events.data[ch])
    assert [type(r) for r in recs] == [WartsList, CycleStart, Ping, CycleStop]
    assert recs[0].name == "127.0.0.1:40001_0" and recs[0].monitor == "testvp"
    # the next channel's list name counts on (k is per VP process)
    sess, ch2 = open_user(w)
    _, recs2 = user_results(w.events.data[ch2])
    assert recs2[0].name == "127.0.0.1:40001_1"


def test_keepalives_keep_an_idle_link_up():
    clock = task.Clock()
    w = Wire(clock, FakeBackend(clock))
    w.connect()
    w.advance(400, step=5)
    assert w.up and w.closes == [] and w.events.log == ["new"]


@settings(max_examples=15, deadline=None)
@given(st.lists(st.floats(min_value=0.1, max_value=20), min_size=1, max_size=6),
       st.integers(0, 2**32 - 1))
def test_cuts_during_a_run_every_result_exactly_once(cut_times, seed):
    """200 commands with the link cut at random times: each result arrives once, in order."""
    rng = random.Random(seed)
    clock = task.Clock()
    be = FakeBackend(clock, delay=0.7)
    w = Wire(clock, be)
    w.connect()
    sess, ch = open_user(w)
    cmds = [f"ping -c 1 127.0.{i // 250}.{i % 250 + 1}" for i in range(200)]
    # the user writes in arbitrary pieces, unrelated to lines
    stream = ("\n".join(cmds) + "\ndone\n").encode()
    pos = 0
    cuts = sorted(cut_times)
    t = 0.0
    while pos < len(stream) or cuts:
        if pos < len(stream):
            n = rng.randint(1, 400)
            sess.channel_write(ch, stream[pos:pos + n])
            pos += n
        w.pump()
        clock.advance(0.1)
        t += 0.1
        w.pump()
        if cuts and t >= cuts[0]:
            cuts.pop(0)
            w.cut()
            clock.advance(rng.uniform(0.1, 3))
            w.connect()
    w.advance(5)
    assert ch in w.events.fins, w.events.log
    replies, recs = user_results(w.events.data[ch])
    oks = [r.task_id for r in replies if isinstance(r, C.Ok)]
    assert oks == list(range(1, 201)) + [None]  # every command once, then the OK for done
    pings = [r for r in recs if isinstance(r, Ping)]
    assert len(pings) == 200
    assert sorted(str(p.dst) for p in pings) == sorted(c.split()[-1] for c in cmds)
    assert type(recs[-1]) is CycleStop
    assert "resumed" in w.events.log
    assert len(be.started) == 200  # nothing ran twice


def test_rejected_resume_starts_a_new_session():
    clock = task.Clock()
    w = Wire(clock, FakeBackend(clock, delay=30), zombie=5)
    w.connect()
    sess, ch = open_user(w)
    sess.channel_write(ch, b"ping 127.0.0.1\n")
    w.pump()
    w.cut()
    clock.advance(10)  # zombie expires on the controller
    w.connect()  # MASTER_RES -> MASTER_REJ: the VP drops its channels
    clock.advance(0)
    assert w.vp.rejections == 1 and w.vp.sources == {}
    assert not w.vp.session.has_session
    w.connect()  # and registers anew
    assert w.events.log.count("new") == 2
    assert w.vp.session.established


def test_garbage_from_the_controller_closes_and_resumes():
    clock = task.Clock()
    w = Wire(clock, FakeBackend(clock))
    w.connect()
    # a KEEPALIVE with the wrong sequence number, then junk
    w.vp.session.data_received(b"\x00\x00\x00\x4d\x00\x00\x00\x00\x00\x01\x04garbage")
    assert w.closes and w.closes[0][0] == "vp"
    w.connect()
    assert w.events.log[-1] == "resumed"


def test_retry_policy_first_retry_fast_then_backoff_capped():
    rng = random.Random(1)
    pol = retry_policy(1.0, 60.0, rand=rng.random)
    firsts = [pol(1) for _ in range(200)]
    assert all(0.5 <= d <= 1.0 for d in firsts)
    assert len({round(d, 3) for d in firsts}) > 50  # jittered
    assert all(1.0 <= pol(2) <= 2.0 for _ in range(50))
    assert all(30.0 <= pol(n) <= 60.0 for n in (7, 8, 20, 1000) for _ in range(20))


def test_list_and_cycle_records_byte_identical_to_real_remote_scamper():
    """The fixture remote-trace-ping.warts was written by sc_attach from a real
    scamper -R VP; our channel source frames its results with the same bytes."""
    from tests.conftest import FIXTURES
    real = (FIXTURES / "remote-trace-ping.warts").read_bytes()
    recs = list(iter_records(io.BytesIO(real)))
    lst, cyc, stop = recs[0], recs[1], recs[-1]
    clock = task.Clock()
    clock.advance(cyc.start_time)
    sink = Sink()
    src = AttachedSource(FakeBackend(clock), clock, sink.write, sink.finish, attached=True,
                         list_name=lst.name, monitor=lst.monitor, hostname=cyc.hostname)
    clock.advance(stop.stop_time - cyc.start_time)
    src.data_received(b"done\n")
    blocks = [r.payload for r in C.ReplyParser().feed(bytes(sink.data)) if isinstance(r, C.Data)]
    first_two = real[:len(blocks[0]) + len(blocks[1])]
    assert blocks[0] + blocks[1] == first_two
    assert real.endswith(blocks[2])
    assert sink.finished == 1


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300), st.booleans())
def test_fuzzed_user_bytes_never_break_a_source(junk, attached):
    clock = task.Clock()
    sink = Sink()
    src = AttachedSource(FakeBackend(clock, delay=1), clock, sink.write, sink.finish, attached=attached,
                         list_name="x_0", hostname="h")
    src.data_received(junk)
    src.eof()
    clock.advance(2)
    assert sink.finished == 1  # always ends, exactly once
    if attached:
        replies, recs = user_results(sink.data)
        assert type(recs[-1]) is CycleStop
