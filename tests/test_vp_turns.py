"""The VP's per-turn batch of input is shared by every source of the process
(`ixpscamper.vp.turns`): many busy sources cannot make one reactor turn
start thousands of tasks, and none of them starves."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st
from twisted.internet import task

from ixpscamper.vp.source import AttachedSource
from ixpscamper.vp.turns import COMMANDS_PER_TURN, TurnBudget, budget_for

from tests.vp_helpers import FakeBackend


class TurnClock(task.Clock):
    """``advance`` runs only the calls due when it starts, as one reactor
    turn does (`task.Clock` would also run the calls they make for now)."""

    def advance(self, amount):
        self.rightNow += amount
        due = [c for c in self.calls if c.getTime() <= self.seconds()]
        for c in due:
            if c in self.calls:
                self.calls.remove(c)
                c.called = 1
                c.func(*c.args, **c.kw)


def _source(clock, backend):
    out = bytearray()
    done = []
    src = AttachedSource(backend, clock, out.extend, lambda: done.append(1), attached=True,
                         list_name="l", monitor="vp", hostname="h")
    return src, out, done


def _commands(n, base=1):
    return b"".join(b"ping 127.0.0.%d\n" % ((base + i) % 250 + 1) for i in range(n))


def test_many_sources_share_one_batch_per_turn():
    """A hundred sources that each receive 100 commands in the same turn
    start 64 between them in it, not 64 each (6,400)."""
    clock = TurnClock()
    be = FakeBackend(clock, delay=5)
    sources = [_source(clock, be) for _ in range(100)]
    for i, (src, _, _) in enumerate(sources):
        src.data_received(b"".join(b"ping 127.0.%d.%d\n" % (i, k + 1) for k in range(100)))
    assert len(be.started) == COMMANDS_PER_TURN
    turns = 0
    while len(be.started) < 10_000:
        before = len(be.started)
        clock.advance(0)
        turns += 1
        assert 0 < len(be.started) - before <= COMMANDS_PER_TURN
        # round robin: the first reader had the first turn's batch; of the
        # rest, none is more than one command ahead of another
        per = [0] * 100
        for t in be.started:
            per[t.dst.packed[2]] += 1
        assert max(per[1:]) - min(per[1:]) <= 1
        assert per[0] - min(per) <= COMMANDS_PER_TURN + 1
    assert turns <= -(-10_000 // COMMANDS_PER_TURN)   # every turn full but the last


def test_no_source_waits_behind_a_busy_one():
    """A source with one command, arriving behind one with thousands, is
    served within two turns; the busy one keeps going."""
    clock = TurnClock()
    be = FakeBackend(clock, delay=5)
    busy, _, _ = _source(clock, be)
    late, late_out, _ = _source(clock, be)
    busy.data_received(_commands(5000))
    assert len(be.started) == COMMANDS_PER_TURN
    late.data_received(b"ping 192.0.2.1\n")   # this turn's batch is spent: it queues
    clock.advance(0)
    assert "192.0.2.1" in {str(t.dst) for t in be.started}
    assert b"OK id-1\n" in late_out
    n = len(be.started)
    clock.advance(0)
    assert len(be.started) == n + COMMANDS_PER_TURN   # the busy one has the turn to itself


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 300), min_size=1, max_size=12))
def test_every_command_of_every_source_starts_once_in_order(counts):
    clock = TurnClock()
    be = FakeBackend(clock, delay=1)
    sources = []
    for i, n in enumerate(counts):
        src, out, _ = _source(clock, be)
        # the address names the source and the command's place
        src.data_received(b"".join(b"ping 127.%d.%d.%d\n" % (i, k // 256, k % 256)
                                   for k in range(n)))
        sources.append(src)
    for _ in range(sum(counts) + 2):
        clock.advance(0)
    by_source: dict[int, list[int]] = {}
    for t in be.started:
        _, i, hi, lo = t.dst.packed
        by_source.setdefault(i, []).append(hi * 256 + lo)
    for i, n in enumerate(counts):
        assert by_source.get(i, []) == list(range(n))


def test_eof_acts_on_queued_lines_at_once():
    clock = TurnClock()
    be = FakeBackend(clock, delay=5)
    a, _, _ = _source(clock, be)
    b, _, b_done = _source(clock, be)
    a.data_received(_commands(COMMANDS_PER_TURN))
    b.data_received(_commands(10) + b"done\n")   # queued behind a's batch
    assert len(be.started) == COMMANDS_PER_TURN
    b.eof()
    assert len(be.started) == COMMANDS_PER_TURN + 10
    clock.advance(5)
    assert b_done == [1]
    clock.advance(0)   # b's stale place in the queue does nothing
    assert len(be.started) == COMMANDS_PER_TURN + 10


def test_budget_rules():
    clock = TurnClock()
    with pytest.raises(ValueError):
        TurnBudget(clock, 0)
    b = TurnBudget(clock, 10)
    assert b.take() == 10
    b.spend(12)              # an EOF acts on everything: the turn is over-spent
    assert b.take() == 0
    got = []

    def user(allowance):
        got.append(allowance)
        b.spend(allowance)

    b.wait(user)
    b.wait(user)
    clock.advance(0)
    assert got == [5, 5]     # equal shares of the new turn
    got.clear()
    b.wait(got.append)       # uses none of its share ...
    b.wait(user)
    clock.advance(0)
    assert got == [5, 10]    # ... so the next may use it
    assert budget_for(clock) is budget_for(clock)
    assert budget_for(TurnClock()) is not budget_for(clock)
