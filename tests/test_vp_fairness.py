"""Issue 8: one user must not starve another on a shared VP.

The VP's sources (remote channels, control connections) on the real
prober over a simulated network and a task.Clock (simnet's); then end to
end, ixp-vp behind ixp-remoted pinging 127.0.0.0/8.
"""

from __future__ import annotations

import ipaddress

import pytest

from ixpscamper.control import client as C
from ixpscamper.prober.simnet import make_prober
from ixpscamper.vp.backend import ProberBackend
from ixpscamper.vp.source import AttachedSource

from tests.conftest import requires_root
from tests.fairness_helpers import B_DST, two_users
from tests.pipeline_helpers import Procs, free_port, vp_socket, wait_port

DST = "198.51.100.66"
DST2 = "198.51.100.67"
PATHS = {DST: ["192.0.2.1", DST], DST2: ["192.0.2.1", DST2]}


class TimedSink:
    """A source's output: when (Clock time) each task's result arrived."""

    def __init__(self, clock):
        self.clock = clock
        self.parser = C.ReplyParser()
        self.results: list[float] = []
        self.accepted = 0
        self.errors: list[str] = []
        self.finished = False

    def write(self, data: bytes) -> None:
        for r in self.parser.feed(data):
            if isinstance(r, C.Data) and r.task_id is not None:
                self.results.append(self.clock.seconds())
            elif isinstance(r, C.Ok) and r.task_id is not None:
                self.accepted += 1
            elif isinstance(r, C.Err):
                self.errors.append(str(r))

    def finish(self) -> None:
        self.finished = True


def vp(pps=20, window=0):
    clock, net, prober = make_prober(PATHS, pps=pps, window=window)
    return clock, net, ProberBackend(clock, prober=prober)


def source(clock, backend, name, attached=True):
    sink = TimedSink(clock)
    src = AttachedSource(backend, clock, sink.write, sink.finish, attached=attached,
                         list_name=name, monitor="vp", hostname="h")
    return src, sink


def advance_until(clock, cond, limit=600.0, step=0.01):
    end = clock.seconds() + limit
    while not cond() and clock.seconds() < end:
        clock.advance(step)
    return cond()


def test_second_user_is_not_starved_by_a_long_queue():
    """The issue's reproduction: user A queues 400 pings on a 20 pps VP, then
    user B sends one.  With slots handed out first come, first served, B's
    four probes each wait behind A's whole backlog (its first alone 20 s);
    shared fairly, B's probes go out about one slot after they are due, so
    B's ping takes its own 4 s (4 probes 1 s apart, then 1 s for the last
    reply) and a slot or two more."""
    clock, net, backend = vp(pps=20)
    a, a_out = source(clock, backend, "A")
    b, b_out = source(clock, backend, "B")
    a.data_received(b"".join(b"ping %s\n" % DST.encode() for _ in range(400)))
    clock.advance(0.5)
    t0 = clock.seconds()
    b.data_received(b"ping %s\n" % DST.encode())
    assert advance_until(clock, lambda: b_out.results, limit=200)
    latency = b_out.results[0] - t0
    assert a_out.accepted == 400 and b_out.accepted == 1
    assert latency < 4.3, f"B's ping took {latency:.2f} s"
    # A's tasks still run concurrently: none of them has finished yet, and
    # the prober has been busy at its rate the whole time
    assert a_out.results == []
    sent = [t for t, _, _ in net.sent if t0 <= t <= b_out.results[0]]
    assert len(sent) >= 20 * latency - 2


def test_priority_weights_the_share_of_slots():
    """``attach priority 3`` on a control connection gets three slots for
    every one of a priority-1 source while both have probes waiting."""
    clock, net, backend = vp(pps=20)
    hi, hi_out = source(clock, backend, "hi", attached=False)
    lo, lo_out = source(clock, backend, "lo", attached=False)
    hi.data_received(b"attach priority 3\n")
    lo.data_received(b"attach\n")
    assert (hi.core.priority, lo.core.priority) == (3, 1)
    # hi pings DST, lo pings DST2: a probe's destination tells whose it is
    hi.data_received(b"".join(b"ping -c 1 %s\n" % DST.encode() for _ in range(200)))
    lo.data_received(b"".join(b"ping -c 1 %s\n" % DST2.encode() for _ in range(200)))
    advance_until(clock, lambda: len(net.sent) >= 120, limit=60)
    name = {DST: "hi", DST2: "lo"}
    who = [name[str(ipaddress.ip_address(p[16:20]))] for _, _, p in net.sent[:120]]
    for first in range(0, 120, 4):  # every round of 4 slots: 3 for hi, 1 for lo
        assert sorted(who[first:first + 4]) == ["hi", "hi", "hi", "lo"], who
    assert len(hi_out.errors + lo_out.errors) == 0


def test_window_starts_tasks_fairly_between_users():
    """With a window (``--window``) A's queued tasks fill it; B's task must
    be started as soon as A's running task gives up its place, not after all
    of A's waiting ones."""
    clock, net, backend = vp(pps=20, window=2)
    a, a_out = source(clock, backend, "A")
    b, b_out = source(clock, backend, "B")
    a.data_received(b"".join(b"ping -c 1 %s\n" % DST.encode() for _ in range(50)))
    clock.advance(0.0)
    b.data_received(b"ping -c 1 %s\n" % DST.encode())
    assert advance_until(clock, lambda: b_out.results, limit=200)
    assert len(a_out.results) <= 3, len(a_out.results)


def test_ungrouped_backend_use_keeps_submission_order():
    """Tasks started without a source (``ProberBackend.start``) share one
    group and keep first come, first served among themselves."""
    clock, net, backend = vp(pps=20)
    from ixpscamper.commands import parse_command
    tasks = [backend.start(parse_command(f"ping -c 1 {DST}")) for _ in range(5)]
    done = []
    for i, t in enumerate(tasks):
        t.deferred.addCallback(lambda _r, i=i: done.append(i))
    advance_until(clock, lambda: len(done) == 5, limit=30)
    assert done == [0, 1, 2, 3, 4]


# -- end to end ------------------------------------------------------------------


@pytest.fixture
def procs(tmp_path):
    p = Procs(tmp_path)
    try:
        yield p
    finally:
        p.stop_all()


@requires_root
@pytest.mark.interop
@pytest.mark.timeout(180)
def test_end_to_end_second_user_finishes_before_the_first_users_queue(tmp_path, procs):
    """ixp-vp at 20 pps behind ixp-remoted: A queues 200 pings (4 probes
    each, 1 s apart), then B sends one.  First come, first served, B's
    probes wait behind A's backlog each time (B ends with the last of A's
    pings, after some 40 s); shared fairly, B ends about 4 s later, before
    any of A's pings, whose probes take turns with each other.  The bound
    is relative (B before a quarter of A's queue is done), so a slow
    machine stretches both sides alike."""
    port = free_port()
    sockdir = tmp_path / "sockets"
    sockdir.mkdir()
    procs.our_remoted(port, sockdir)
    wait_port(port)
    procs.our_vp(port, "fairvp", "--pps", "20")
    sock = vp_socket(sockdir, "fairvp", procs=procs)
    got = two_users(sock, n_a=200)
    assert got.b_ping is not None, (got.b_stderr, procs.log("ixp-vp")[-2000:])
    assert str(got.b_ping.dst) == B_DST and len(got.b_ping.replies) == got.b_ping.ping_sent == 4
    assert got.a_done < got.a_queued // 4, (
        f"B's ping took {got.b_latency:.1f} s; {got.a_done} of A's {got.a_queued} were done by then")
