"""The VP and the prober's pacing: a user's attach starts an idle prober's schedule (scamper's
sources are ready from their attach), so a client's start-up between attaching and sending its
commands is not lost to the probing rate.  Simulated network, task.Clock."""

from __future__ import annotations

import pytest

from ixpscamper.prober.simnet import make_prober
from ixpscamper.vp.backend import ProberBackend
from ixpscamper.vp.opsstate import CountingBackend
from ixpscamper.vp.source import AttachedSource

DST = "198.51.100.66"
PATHS = {DST: ["192.0.2.1", DST]}


@pytest.mark.parametrize("counted", [False, True], ids=["backend", "as-ixp-vp-wraps-it"])
def test_commands_after_an_attach_use_the_slots_since_the_attach(counted):
    clock, net, prober = make_prober(PATHS, pps=1000)
    backend = ProberBackend(clock, prober=prober)
    if counted:  # the daemon's backend counts tasks for its status and metrics
        backend = CountingBackend(backend)
    clock.advance(10.0)  # an idle VP
    out: list[bytes] = []
    t0 = clock.seconds()
    src = AttachedSource(backend, clock, out.append, lambda: None, attached=True,
                         list_name="bench_1", monitor="vp", hostname="h")
    clock.advance(0.03)  # the client imports, reads its input, then sends
    src.data_received(b"".join(b"ping -c 1 %s\n" % DST.encode() for _ in range(100)))
    clock.advance(0)
    # the slots t0, t0 + 1 ms, ..., t0 + 30 ms are used at once, as scamper would
    assert len(net.sent) == 31
    end = clock.seconds() + 5
    while len(net.sent) < 100 and clock.seconds() < end:
        clock.advance(0.0001)
    times = [s[0] for s in net.sent]
    assert len(times) == 100
    for k, t in enumerate(times[31:], 31):
        assert abs(t - (t0 + k * 0.001)) < 0.0001 + 1e-6
    # never more than (W + 250 ms) * pps + 1 in any window W
    for width in (0.001, 0.01, 0.1):
        j = best = 0
        for i, t in enumerate(times):
            while t - times[j] >= width - 1e-6:
                j += 1
            best = max(best, i - j + 1)
        assert best <= int((width + 0.25) * 1000) + 1
