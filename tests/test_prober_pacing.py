"""The prober's packets-per-second pacing, against scamper 20211212's schedule, on a Clock.

scamper (``scamper.c``: ``wait_between``, ``probe_window``, ``lastprobe``)
keeps an absolute schedule: probe after probe, ``lastprobe`` advances by
``wait_between = 1000000 / pps`` microseconds, and a probe may go once
``lastprobe + wait_between`` has come.  A main loop that woke late sends
every probe that came due meanwhile; once the schedule is more than
``probe_window`` (250 ms, plus ``wait_between`` when that exceeds 250 ms)
behind, it restarts from now.  So over the long run the rate is ``pps``,
and over any interval of length W at most ``(W + probe_window) * pps + 1``
probes go.  (One deliberate difference: scamper starts the schedule at
start-up, crediting tasks that arrive within 250 ms of it; ours starts at
the first probe.)  These tests drive the prober with a Clock that ticks
late (as a loaded reactor does) and check both: the exact send times
scamper's schedule gives, and the bound over every window.
"""

from __future__ import annotations

import math

import pytest

from ixpscamper.commands import parse_command
from ixpscamper.prober.simnet import make_prober

DST = "198.51.100.66"
PATHS = {DST: ["192.0.2.1", DST]}
# the scheduler keeps whole microseconds; a Clock ticking in float steps
# around 1e6 s is off by about 1e-9 s
EPS = 1e-6


def pings(prober, n: int):
    tasks = [prober.submit(parse_command(f"ping -c 1 {DST}")) for _ in range(n)]
    prober.reactor.advance(0)  # the reactor's next turn: the first slot is due at once
    return tasks


def tick_until_sent(clock, net, n: int, step: float, limit: float = 60.0) -> list[float]:
    """Advance the clock in fixed ``step``s (a reactor that wakes only that often)."""
    t0 = clock.seconds()
    while len(net.sent) < n and clock.seconds() - t0 < limit:
        clock.advance(step)
    assert len(net.sent) == n, f"only {len(net.sent)} of {n} probes sent"
    return [s[0] for s in net.sent]


def max_in_window(times: list[float], width: float) -> int:
    best = j = 0
    for i, t in enumerate(times):
        while t - times[j] >= width - EPS:
            j += 1
        best = max(best, i - j + 1)
    return best


def assert_rate_promise(times: list[float], pps: int) -> None:
    """No interval of length W holds more than (W + probe_window) * pps + 1 probes."""
    wb = (1_000_000 // pps) / 1e6
    pw = 0.25 + (wb if wb > 0.25 else 0.0)
    for width in (wb, 0.01, 0.1, 0.25, 1.0, 5.0):
        allowed = math.floor((width + pw) / wb + EPS) + 1
        assert max_in_window(times, width) <= allowed, (width, max_in_window(times, width), allowed)
    # and the long run: the k-th probe after the first never before k * wait_between
    # minus one probe window of credit
    for k, t in enumerate(times):
        assert t - times[0] >= k * wb - pw - EPS


def test_steady_rate_is_exactly_pps_from_the_start():
    """An on-time reactor: probe k goes at start + k / pps, as scamper's lastprobe schedule."""
    clock, net, prober = make_prober(PATHS, pps=1000)
    start = clock.seconds()
    pings(prober, 300)
    times = tick_until_sent(clock, net, 300, step=0.0005)
    for k, t in enumerate(times):
        due = start + k * 0.001
        # sent at the first tick at or after its due time
        assert due - EPS <= t < due + 0.0005 + EPS, (k, t - start)
    assert_rate_promise(times, 1000)


@pytest.mark.parametrize("step", [0.003, 0.03, 0.2])
def test_late_wakeups_catch_up_to_the_schedule(step):
    """A reactor that wakes every ``step`` sends what came due meanwhile: the rate stays pps.

    Before, slots older than 10 ms were dropped, so a reactor waking every
    30 ms probed at two thirds of the rate asked for.
    """
    clock, net, prober = make_prober(PATHS, pps=1000)
    start = clock.seconds()
    pings(prober, 1000)
    times = tick_until_sent(clock, net, 1000, step=step)
    for k, t in enumerate(times):
        due = start + k * 0.001
        sent_at = start + math.ceil(round(k * 0.001 / step, 6)) * step
        assert abs(t - sent_at) < 1e-6, (k, t - start, sent_at - start)
        assert t >= due - EPS
    # 1000 probes at 1000 pps: the last one 999 ms after the first, to within one wake-up
    assert times[-1] - start <= 0.999 + step + EPS
    assert_rate_promise(times, 1000)


def test_a_stall_beyond_the_probe_window_restarts_the_schedule():
    """A 400 ms stall (more than probe_window behind): one probe, then the normal rate, no burst."""
    clock, net, prober = make_prober(PATHS, pps=1000)
    pings(prober, 200)
    clock.advance(0.0101)
    before = len(net.sent)
    assert before == 11
    clock.advance(0.4)  # the reactor was busy elsewhere
    assert len(net.sent) == before + 1
    stalled_at = clock.seconds()
    times = tick_until_sent(clock, net, 200, step=0.0001)
    for k, t in enumerate(times[before:]):
        assert abs(t - (stalled_at + k * 0.001)) < 0.0001 + EPS
    assert_rate_promise(times, 1000)


def test_a_stall_within_the_probe_window_is_caught_up_at_once():
    """A 100 ms stall: the 100 probes that came due go together, as scamper sends them."""
    clock, net, prober = make_prober(PATHS, pps=1000)
    start = clock.seconds()
    pings(prober, 300)
    clock.advance(0.0101)
    assert len(net.sent) == 11
    clock.advance(0.1)
    assert len(net.sent) == 111
    times = tick_until_sent(clock, net, 300, step=0.0001)
    assert abs(times[-1] - (start + 0.299)) < 0.0001 + EPS
    assert_rate_promise(times, 1000)


def test_no_credit_before_the_first_probe():
    """A prober made 200 ms before its first task: no burst (scamper would credit that time)."""
    clock, net, prober = make_prober(PATHS, pps=1000)
    clock.advance(0.2)
    start = clock.seconds()
    pings(prober, 50)
    times = tick_until_sent(clock, net, 50, step=0.0001)
    assert len([t for t in times if t - start < 0.001 - EPS]) == 1
    for k, t in enumerate(times):
        assert abs(t - (start + k * 0.001)) < 0.0001 + EPS
    assert_rate_promise(times, 1000)


def test_idle_longer_than_the_window_gives_no_credit():
    """After a second with nothing to send, the first probe goes at once and the next 1/pps later."""
    clock, net, prober = make_prober(PATHS, pps=100)
    pings(prober, 3)
    tick_until_sent(clock, net, 3, step=0.001)
    clock.advance(1.0)
    t0 = clock.seconds()
    pings(prober, 50)
    times = tick_until_sent(clock, net, 53, step=0.001)[3:]
    assert abs(times[0] - t0) < EPS
    for k, t in enumerate(times):
        assert abs(t - (t0 + k * 0.01)) < 0.001 + EPS
    assert_rate_promise([s[0] for s in net.sent], 100)


def test_idle_within_the_window_is_credit_scamper_spends():
    """Idle for less than probe_window after probing: the slots missed meanwhile are used (scamper's catch-up)."""
    clock, net, prober = make_prober(PATHS, pps=100)
    pings(prober, 3)
    times = tick_until_sent(clock, net, 3, step=0.001)
    last = times[-1]
    clock.advance(last + 0.1 - clock.seconds())  # 100 ms later: 10 slots behind
    pings(prober, 30)
    assert len(net.sent) == 3 + 10
    times = tick_until_sent(clock, net, 33, step=0.001)
    assert abs(times[-1] - (last + 0.3)) < 0.001 + EPS
    assert_rate_promise(times, 100)


def test_changing_pps_takes_effect_for_the_next_slots():
    """SIGHUP sets prober.pps: wait_between and probe_window follow, as scamper's ppswindow_set."""
    clock, net, prober = make_prober(PATHS, pps=1000)
    start = clock.seconds()
    pings(prober, 20)
    clock.advance(0.0101)
    assert len(net.sent) == 11
    prober.pps = 10
    times = tick_until_sent(clock, net, 20, step=0.001)
    later = times[11:]
    # the next slot is 100 ms after the last one taken at 1000 pps (10 ms)
    for k, t in enumerate(later):
        assert abs(t - (start + 0.11 + k * 0.1)) < 0.001 + EPS


def test_low_rates_use_scampers_integer_wait_and_longer_window():
    """pps 3: wait_between 333333 us (C integer division), probe_window 250 ms + that."""
    clock, net, prober = make_prober(PATHS, pps=3)
    start = clock.seconds()
    pings(prober, 4)
    times = tick_until_sent(clock, net, 4, step=0.001)
    for k, t in enumerate(times):
        assert abs(t - (start + k * 0.333333)) < 0.001 + EPS
    assert_rate_promise(times, 3)


def test_the_schedule_starts_when_the_first_task_is_ready_not_when_the_reactor_gets_to_it():
    """scamper checks the schedule whenever something is ready to probe.

    A VP reading 1000 commands in one chunk submits the first at once but
    reaches its first slot only after parsing the rest; the slots of that
    time are used then (scamper's catch-up), not lost.
    """
    clock, net, prober = make_prober(PATHS, pps=1000)
    clock.advance(5.0)  # long idle: the schedule is stale
    t0 = clock.seconds()
    [prober.submit(parse_command(f"ping -c 1 {DST}")) for _ in range(300)]
    clock.advance(0.03)  # the reactor was busy for 30 ms before its next turn
    assert len(net.sent) == 31  # the slots t0, t0 + 1 ms, ..., t0 + 30 ms
    times = tick_until_sent(clock, net, 300, step=0.0001)
    for k, t in enumerate(times[31:], 31):
        assert abs(t - (t0 + k * 0.001)) < 0.0001 + EPS
    assert_rate_promise(times, 1000)



def test_a_source_attaching_starts_a_stale_schedule():
    """scamper: a source is ready once it attaches; the slots from then on wait for its commands."""
    clock, net, prober = make_prober(PATHS, pps=1000)
    clock.advance(5.0)
    t0 = clock.seconds()
    prober.source_ready()
    clock.advance(0.02)  # the user's commands come 20 ms after its attach
    pings(prober, 100)
    assert len(net.sent) == 21  # the slots t0 ... t0 + 20 ms
    times = tick_until_sent(clock, net, 100, step=0.0001)
    for k, t in enumerate(times[21:], 21):
        assert abs(t - (t0 + k * 0.001)) < 0.0001 + EPS
    assert_rate_promise(times, 1000)


def test_a_source_attaching_leaves_a_running_schedule_alone():
    clock, net, prober = make_prober(PATHS, pps=100)
    start = clock.seconds()
    pings(prober, 20)
    tick_until_sent(clock, net, 6, step=0.001)
    prober.source_ready()  # another user attaches while the first is probing
    pings(prober, 10)
    times = tick_until_sent(clock, net, 30, step=0.001)
    for k, t in enumerate(times):
        assert abs(t - (start + k * 0.01)) < 0.001 + EPS
    # and a late attach (beyond the window) after the probing ended restarts it
    clock.advance(1.0)
    t1 = clock.seconds()
    prober.source_ready()
    clock.advance(0.05)
    pings(prober, 10)
    assert len(net.sent) == 36
    assert_rate_promise([s[0] for s in net.sent], 100)
    assert all(abs(s[0] - (t1 + 0.05)) < EPS for s in net.sent[30:36])
