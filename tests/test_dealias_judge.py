"""The lab test's judge of two dealias records (tests/dealias_judge.py).

The records are built the way sc_warts2json prints them.  The first case is
the prefixscan run CI failed on (``-P udp 198.18.1.2 198.18.11.1/29``): ours
saw A and the candidate .2 in sequence by chance and probed the pair on;
scamper did not and moved on.  The rest are differences that must still fail.
"""

from __future__ import annotations

import pytest

from tests.dealias_judge import judge_prefix, judge_prefixscan

A, M1 = "198.18.1.2", "198.18.11.2"


def _reply(src: str, ipid: int) -> dict:
    return {"src": src, "proto": 1, "icmp_type": 3, "icmp_code": 3, "icmp_q_ttl": 254, "ipid": ipid}


def _run(steps: list[tuple[int, object]]) -> list[dict]:
    """Probes in the order sent: (definition, reply IP-ID or None for silence).
    The probe IP-IDs count down from 65535 by 257 and each definition's
    rounds count up, as both programs number them."""
    out, rounds = [], {}
    for i, (d, rid) in enumerate(steps):
        src = A if d == 0 else M1
        out.append({"probedef_id": d, "seq": rounds.get(d, 0), "ipid": (65535 - 257 * i) % 65536,
                    "replies": [] if rid is None else [_reply(src, rid)]})
        rounds[d] = rounds.get(d, 0) + 1
    return out


# after .2: .3 silent (two attempts), then .0 silent
_TAIL = [(2, None), (2, None), (3, None), (3, None)]


def _ci_case():
    ours = _run([(0, 1000), (1, 1040), (0, 1090), (1, 31000)] + _TAIL)  # in sequence, then not
    theirs = _run([(0, 1000), (1, 30000)] + _TAIL)
    return ours, theirs


def test_a_chance_sequence_mid_prefixscan_is_judged_not_a_mismatch():
    ours, theirs = _ci_case()
    judge_prefixscan(ours, theirs)
    judge_prefixscan(theirs, ours)


def test_the_prefix_rule_alone_fails_that_run():
    """What the lab test did before: CI's failure."""
    with pytest.raises(AssertionError):
        judge_prefix(*_ci_case())


def test_equal_runs_pass():
    run = _run([(0, 1000), (1, 30000)] + _TAIL)
    judge_prefixscan(run, [dict(p) for p in run])


@pytest.mark.parametrize("ours_steps", [
    # probed on though its replies were out of sequence
    [(0, 1000), (1, 9000), (0, 1090), (1, 31000)] + _TAIL,
    # moved to another candidate next
    [(0, 1000), (1, 1040), (0, 1090), (1, 31000), (3, None), (3, None), (2, None), (2, None)],
    # a reply the other run did not get
    [(0, 1000), (1, 1040), (0, 1090), (1, 31000), (2, 5), (2, None), (3, None), (3, None)],
    # one attempt too few at a silent candidate
    [(0, 1000), (1, 1040), (0, 1090), (1, 31000), (2, None), (3, None), (3, None)],
])
def test_unjustified_differences_fail(ours_steps):
    theirs = _run([(0, 1000), (1, 30000)] + _TAIL)
    with pytest.raises(AssertionError):
        judge_prefixscan(_run(ours_steps), theirs)


def test_both_in_sequence_yet_one_stopped_fails():
    ours = _run([(0, 1000), (1, 1040), (0, 1090), (1, 31000)] + _TAIL)
    theirs = _run([(0, 1000), (1, 1100)] + _TAIL)
    with pytest.raises(AssertionError):
        judge_prefixscan(ours, theirs)


def test_a_probe_ip_id_out_of_count_fails():
    ours, theirs = _ci_case()
    ours[1]["ipid"] += 1
    with pytest.raises(AssertionError):
        judge_prefixscan(ours, theirs)


def test_a_round_out_of_count_fails():
    ours, theirs = _ci_case()
    ours[2]["seq"] = 0  # A's second round numbered as its first
    with pytest.raises(AssertionError):
        judge_prefixscan(ours, theirs)


def test_a_reply_carried_over_from_a_opens_the_next_series():
    """After A's probe ends one candidate's episode, A's reply and the next
    candidate's make the series: a chance sequence there is judged too."""
    head = [(0, 1000), (1, 30000), (0, 1100)]
    ours = _run(head + [(2, 1150), (0, 1200), (2, 40000)])
    theirs = _run(head + [(2, 50000)])
    judge_prefixscan(ours, theirs)
    bad = _run(head + [(2, 50000), (0, 1200), (2, 40000)])  # out of sequence, probed on anyway
    with pytest.raises(AssertionError):
        judge_prefixscan(bad, theirs)


def test_ally_a_run_in_sequence_by_chance_may_probe_on():
    """ally: where the shorter run stopped, the longer saw its replies in
    sequence (and the shorter not): judged, not a mismatch (seen once in CI)."""
    ours = _run([(0, 1000), (1, 1040), (0, 9000)])
    theirs = _run([(0, 1000), (1, 30000)])
    judge_prefix(ours, theirs)
    judge_prefix(theirs, ours)
    with pytest.raises(AssertionError):   # probed on out of sequence
        judge_prefix(_run([(0, 1000), (1, 9000), (0, 9100)]), theirs)
    with pytest.raises(AssertionError):   # parted before the shorter ended
        judge_prefix(_run([(1, 1040), (0, 1000), (0, 9000)]), theirs)
