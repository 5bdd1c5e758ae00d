"""The client's sans-IO task channel (ixpscamper.client.channel) against the
VP's own attached source (ixpscamper.vp.source) in memory, on a Clock."""

from __future__ import annotations

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet import task

from ixpscamper.client.channel import ChannelGone, CommandRefused, TaskChannel, TaskHalted
from ixpscamper.vp.source import AttachedSource
from ixpscamper.warts.records import Ping

from tests.vp_helpers import FakeBackend


class Pair:
    """TaskChannel <-> AttachedSource, bytes delivered when pumped."""

    def __init__(self, delay=1.0, dialect="current", tag_userids=False, window=0):
        self.clock = task.Clock()
        self.clock.advance(1795760000)
        self.backend = FakeBackend(self.clock, delay=delay)
        self.to_vp, self.to_client = [], []
        self.finished = False
        self.src = AttachedSource(self.backend, self.clock, self.to_client.append, self._finish,
                                  attached=True, list_name="x_1", monitor="vp1", hostname="h",
                                  dialect=dialect)
        self.chan = TaskChannel(self.to_vp.append, name="VP vp1", tag_userids=tag_userids,
                                window=window)
        self.pump()

    def _finish(self):
        self.finished = True

    def pump(self):
        while self.to_vp or self.to_client:
            if self.to_client:
                self.chan.data_received(self.to_client.pop(0))
            if self.to_vp:
                self.src.data_received(self.to_vp.pop(0))
        if self.finished and not self.chan.closed:
            self.chan.connection_lost()


def collect():
    out = []
    return out, out.append


def test_results_match_their_tasks_and_commands_wait_for_more():
    p = Pair()
    got = {}
    for i in range(5):
        p.chan.submit(f"ping -c {i + 1} 127.0.0.{i + 1}", lambda r, i=i: got.setdefault(i, r))
    p.pump()
    # sent one per MORE: the source never sees more than it asked for
    assert len(p.backend.started) == 5
    p.clock.advance(1)
    p.pump()
    assert sorted(got) == list(range(5))
    for i, r in got.items():
        assert isinstance(r, Ping) and str(r.dst) == f"127.0.0.{i + 1}" and r.probe_count == i + 1
    assert p.chan.outstanding == 0 and p.chan.lists[0].name == "x_1"


def test_err_carries_command_and_message_and_the_channel_goes_on():
    p = Pair()
    out, cb = collect()
    p.chan.submit("nonsense", cb)
    p.chan.submit("ping 127.0.0.1", cb)
    p.pump()
    p.clock.advance(1)
    p.pump()
    err, ok = out
    assert isinstance(err, CommandRefused) and err.command == "nonsense"
    assert "expected ping" in err.message
    assert isinstance(ok, Ping)


def test_close_sends_done_after_queue_and_channel_ends_cleanly():
    p = Pair(delay=3)
    out, cb = collect()
    for i in range(3):
        p.chan.submit(f"ping 127.0.0.{i + 1}", cb)
    p.chan.close()
    p.pump()
    assert not p.finished
    p.clock.advance(3)
    p.pump()
    assert p.finished and p.chan.closed
    assert len(out) == 3 and all(isinstance(r, Ping) for r in out)
    assert len(p.chan.cycles) == 2  # cycle start and stop


def test_lost_channel_fails_every_open_task_once():
    p = Pair(delay=5)
    out, cb = collect()
    for i in range(4):
        p.chan.submit(f"ping 127.0.0.{i + 1}", cb)
    p.pump()
    p.chan.connection_lost("VP went away")
    assert len(out) == 4 and all(isinstance(e, ChannelGone) for e in out)
    p.chan.submit("ping 127.0.0.9", cb)
    assert isinstance(out[-1], ChannelGone)


def test_halt_queued_and_running():
    p = Pair(delay=5)
    out, cb = collect()
    a = p.chan.submit("ping -c 3 127.0.0.1", cb)   # takes the first MORE
    b = p.chan.submit("ping 127.0.0.2", cb)        # queued until the next MORE
    b.halt()
    a.halt()                                       # before its OK id-1 arrived
    p.pump()
    assert isinstance(out[0], TaskHalted)
    assert isinstance(out[1], Ping) and out[1].probe_count == 0  # the halted record
    assert p.backend.started[0].halted


class UseridBackend(FakeBackend):
    """FakeBackend that honours ``-U N`` (the record carries the userid)."""

    def parse(self, command):
        words = command.split()
        userid = 0
        if "-U" in words:
            i = words.index("-U")
            userid = int(words[i + 1])
            del words[i:i + 2]
        return (*super().parse(" ".join(words)), userid)

    def start(self, options):
        t = super().start(options[:2])
        t.deferred.addCallback(lambda rec: attrs.evolve(rec, userid=options[2]))
        return t


def test_2021_dialect_results_matched_by_userid():
    p = Pair(delay=1, dialect="2021", tag_userids=True)
    p.backend.__class__ = UseridBackend
    got = {}
    for i in range(3):
        p.chan.submit(f"ping -c {i + 1} 127.0.0.{i + 1}", lambda r, i=i: got.setdefault(i, r))
    p.pump()
    p.clock.advance(1)
    p.pump()
    assert sorted(got) == [0, 1, 2]
    for i, r in got.items():
        assert isinstance(r, Ping) and str(r.dst) == f"127.0.0.{i + 1}"


def test_2021_dialect_without_userids_refuses_to_guess():
    p = Pair(delay=1, dialect="2021", tag_userids=False)
    got = {}
    for i in range(3):
        p.chan.submit(f"ping 127.0.0.{i + 1}", lambda r, i=i: got.setdefault(i, r))
    p.pump()
    p.clock.advance(1)
    p.pump()
    assert p.chan.closed and sorted(got) == [0, 1, 2]
    assert all(isinstance(v, ChannelGone) for v in got.values())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(1, 4)), min_size=1, max_size=30),
       st.lists(st.integers(1, 50), max_size=30))
def test_every_task_done_exactly_once(cmds, chunk_sizes):
    """Any mix of good and bad commands, VP output re-chunked arbitrarily."""
    p = Pair(delay=2)
    outcome = {}
    for i, (good, n) in enumerate(cmds):
        text = f"ping -c {n} 127.0.0.{i % 250 + 1}" if good else f"bogus {i}"
        p.chan.submit(text, lambda r, i=i: outcome.setdefault(i, []).append(r))
    sizes = iter(chunk_sizes)

    def rechunk():
        data = b"".join(p.to_client)
        p.to_client.clear()
        while data:
            k = next(sizes, len(data))
            p.chan.data_received(data[:k])
            data = data[k:]

    for _ in range(200):
        rechunk()
        if p.to_vp:
            p.src.data_received(p.to_vp.pop(0))
        elif not p.to_client:
            if p.chan.outstanding == 0:
                break
            p.clock.advance(1)
    assert sorted(outcome) == list(range(len(cmds)))
    for i, (good, n) in enumerate(cmds):
        (r,) = outcome[i]
        assert isinstance(r, Ping if good else CommandRefused)


def test_window_bounds_commands_in_flight_without_waiting_for_more():
    p = Pair(delay=5, window=3)
    out, cb = collect()
    for i in range(10):
        p.chan.submit(f"ping 127.0.0.{i + 1}", cb)
    p.pump()
    assert len(p.backend.started) == 3      # not one per MORE, not all ten
    p.clock.advance(5)
    p.pump()
    assert len(out) == 3 and len(p.backend.started) == 6
    for _ in range(3):
        p.clock.advance(5)
        p.pump()
    assert len(out) == 10 and all(isinstance(r, Ping) for r in out)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 8), st.lists(st.booleans(), min_size=1, max_size=25))
def test_windowed_channel_every_task_done_once(window, goods):
    p = Pair(delay=1, window=window)
    outcome = {}
    for i, good in enumerate(goods):
        text = f"ping 127.0.0.{i + 1}" if good else f"bogus {i}"
        p.chan.submit(text, lambda r, i=i: outcome.setdefault(i, []).append(r))
    for _ in range(100):
        p.pump()
        if p.chan.outstanding == 0:
            break
        assert p.chan.outstanding - len(p.chan._queue) <= window
        p.clock.advance(1)
    assert [len(outcome[i]) for i in range(len(goods))] == [1] * len(goods)
    for i, good in enumerate(goods):
        assert isinstance(outcome[i][0], Ping if good else CommandRefused)


def test_reply_to_our_own_attach_is_not_a_tasks():
    """On a VP's control socket the client sends 'attach' itself: its OK must
    not be taken as the first command's acceptance (results landed on the
    wrong tasks)."""
    from twisted.internet.testing import StringTransport

    from ixpscamper.client.api import VP, _ChannelProtocol
    proto = _ChannelProtocol(VP(id=1, socket="/x"), greeting=b"attach\n")
    proto.makeConnection(StringTransport())
    got = {}
    a = proto.channel.submit("ping 127.0.0.1", lambda r: got.setdefault("a", r))
    b = proto.channel.submit("ping 127.0.0.2", lambda r: got.setdefault("b", r))
    proto.dataReceived(b"OK\nMORE\nOK id-1\nOK id-2\n")
    assert (a.vp_id, b.vp_id) == (1, 2)
