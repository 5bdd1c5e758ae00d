"""The fair-share policy (ixpscamper.prober.fairshare) on its own: plain
sequences of push/pop, properties checked with hypothesis."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings, strategies as st

from ixpscamper.prober.fairshare import FairShare


def drain(fs: FairShare, n: int) -> list:
    return [fs.pop() for _ in range(n)]


def backlogged(weights: list[int], per_group: int) -> FairShare:
    fs: FairShare = FairShare()
    for g, w in enumerate(weights):
        for i in range(per_group):
            fs.push(g, (g, i), w)
    return fs


def test_fifo_within_a_group_and_empty_pop():
    fs: FairShare = FairShare()
    assert fs.pop() is None and not fs and len(fs) == 0
    for i in range(5):
        fs.push("a", i)
    assert len(fs) == 5 and fs.queued("a") == 5
    assert drain(fs, 6) == [0, 1, 2, 3, 4, None]
    assert fs.groups() == []


def test_equal_weights_alternate():
    fs = backlogged([1, 1], 3)
    assert [g for g, _ in drain(fs, 6)] == [0, 1, 0, 1, 0, 1]


def test_weights_interleave_rather_than_burst():
    fs = backlogged([3, 1], 8)
    order = [g for g, _ in drain(fs, 8)]
    assert order.count(0) == 6 and order.count(1) == 2
    assert order[:4].count(1) == 1  # group 1 is served inside the first round


def test_new_group_goes_next_behind_a_long_queue():
    """The issue's starvation, at the policy level: A has 400 queued, B
    arrives with one and is served within one round."""
    fs: FairShare = FairShare()
    for i in range(400):
        fs.push("A", ("A", i))
    drain(fs, 10)
    fs.push("B", ("B", 0))
    assert [fs.pop(), fs.pop()] in ([("A", 10), ("B", 0)], [("B", 0), ("A", 10)])


def test_idle_group_saves_up_no_credit():
    fs: FairShare = FairShare()
    for i in range(100):
        fs.push("A", ("A", i))
    fs.push("B", ("B", 0))
    drain(fs, 2)  # B served once, then idle while A is served 50 times
    drain(fs, 50)
    for i in range(20):
        fs.push("B", ("B", i + 1))
    got = [g for g, _ in drain(fs, 20)]
    # back in business, B gets its share (half), not a burst to catch up
    assert got.count("B") in (10, 11)


def test_emptying_the_queue_does_not_shed_the_debt():
    """A group that asks for its next slot only after being served (a trace
    waiting for each reply) must not take every slot from a backlogged one."""
    fs: FairShare = FairShare()
    for i in range(100):
        fs.push("A", ("A", i))
    got = []
    for _ in range(40):
        fs.push("T", ("T", 0))
        got.append(fs.pop()[0])
        if got[-1] == "T":
            continue
        # T is still queued: serve again, then T re-asks only when served
        while got[-1] != "T":
            got.append(fs.pop()[0])
    assert got.count("A") >= got.count("T") - 1


def test_remove_and_weight_checks():
    fs: FairShare = FairShare()
    fs.push("a", 1)
    fs.push("a", 2)
    fs.push("b", 3)
    assert fs.remove("a", 1) and not fs.remove("a", 1) and not fs.remove("zz", 1)
    assert fs.remove("b", 3) and fs.groups() == ["a"]
    assert sorted(fs) == [2] and drain(fs, 2) == [2, None]
    with pytest.raises(ValueError):
        fs.push("a", 1, weight=0)


def test_many_removals_keep_the_heap_small():
    fs: FairShare = FairShare()
    fs.push("keep", 0)
    for i in range(1000):
        fs.push(i, i)
        fs.remove(i, i)
    assert len(fs._heap) < 40 and drain(fs, 2) == [0, None]


# -- properties ---------------------------------------------------------------------

weights_st = st.lists(st.integers(1, 6), min_size=1, max_size=5)


@settings(max_examples=200, deadline=None)
@given(weights=weights_st, start=st.integers(0, 60), length=st.integers(1, 120))
def test_backlogged_groups_are_served_in_proportion(weights, start, length):
    """Over any window of slots in which every group stays backlogged, the
    normalised service of two groups differs by at most one item of each
    (|n_i/w_i - n_j/w_j| <= 1/w_i + 1/w_j: within +-1 per round)."""
    fs = backlogged(weights, start + length + 1)
    drain(fs, start)
    got = [g for g, _ in drain(fs, length)]
    for i, wi in enumerate(weights):
        for j, wj in enumerate(weights):
            ni, nj = got.count(i), got.count(j)
            assert abs(Fraction(ni, wi) - Fraction(nj, wj)) <= Fraction(1, wi) + Fraction(1, wj)


@settings(max_examples=200, deadline=None)
@given(weights=weights_st, rounds=st.integers(1, 5))
def test_each_full_round_gives_every_group_its_weight(weights, rounds):
    fs = backlogged(weights, sum(weights) * rounds)
    got = [g for g, _ in drain(fs, sum(weights) * rounds)]
    assert [got.count(g) for g in range(len(weights))] == [w * rounds for w in weights]


# A random workload: each step pushes to a group (with its fixed weight) or pops.
ops_st = st.lists(st.one_of(st.tuples(st.just("push"), st.integers(0, 4)), st.just(("pop", None))),
                  max_size=300)


@settings(max_examples=300, deadline=None)
@given(weights=st.lists(st.integers(1, 5), min_size=5, max_size=5), ops=ops_st,
       late_weight=st.integers(1, 5), late_count=st.integers(1, 4))
def test_a_new_group_waits_at_most_one_item_per_other_group(weights, ops, late_weight, late_count):
    """Whatever happened before, a group that was never seen is served
    before any other group gets a second item: after at most one item of
    each other backlogged group, so within one round."""
    fs: FairShare = FairShare()
    for op, g in ops:
        if op == "push":
            fs.push(g, g, weights[g])
        else:
            fs.pop()
    others = len(fs.groups())
    for _ in range(late_count):
        fs.push("new", "new", late_weight)
    served = []
    while (item := fs.pop()) != "new":
        assert item is not None
        served.append(item)
    assert len(served) <= others and len(set(served)) == len(served)


@settings(max_examples=300, deadline=None)
@given(w_idle=st.integers(1, 5), w_busy=st.integers(1, 5), served_before=st.integers(0, 5),
       idle_slots=st.integers(0, 200), window=st.integers(1, 60))
def test_an_idle_group_never_accumulates_credit(w_idle, w_busy, served_before, idle_slots, window):
    """However long a group was idle, once it is back (backlogged) it gets no
    more than its proportional share of the next slots, plus one."""
    fs: FairShare = FairShare()
    big = 1000  # busy stays backlogged throughout
    for i in range(big):
        fs.push("busy", "busy", w_busy)
    for _ in range(served_before):
        fs.push("idle", "idle", w_idle)
    while fs.queued("idle"):
        fs.pop()
    drain(fs, idle_slots)  # the group stays idle meanwhile
    for _ in range(window):
        fs.push("idle", "idle", w_idle)
    got = drain(fs, window)
    share = Fraction(window * w_idle, w_idle + w_busy)
    assert got.count("idle") <= share + 1
