"""Every command the VP accepts yields a result record; what the prober
cannot run is refused up front (ERR), never accepted and then dropped."""

from __future__ import annotations

import pytest
from twisted.internet import defer, task

from ixpscamper.control import client as C
from ixpscamper.vp.backend import ProberBackend
from ixpscamper.vp.source import AttachedSource, CommandRejected
from ixpscamper.warts import WartsDecoder
from ixpscamper.warts.records import Ping, PingStop, Trace, TraceStop


class _FakeProber:
    """Stands in for the Prober: every task fails while being set up, as a
    real one does for an unroutable destination or an unreachable -r."""

    network = None

    def __init__(self):
        self.submitted = []

    def submit(self, options, group=None, weight=1):
        t = type("T", (), {})()
        t.deferred = defer.Deferred()
        t.halt = lambda: None
        self.submitted.append((options, t))
        return t


@pytest.mark.parametrize("command, why", [
    ("ping -c 1 ::ffff:127.0.0.1", "IPv4-mapped"),
    ("trace -M 127.0.0.1", "trace -M"),
    ("ping -T tsonly 127.0.0.1", "ping -T"),
])
def test_unsupported_commands_are_refused_at_parse(command, why):
    be = ProberBackend(None, prober=_FakeProber())
    with pytest.raises(CommandRejected, match=why):
        be.parse(command)


def _session(command):
    clock = task.Clock()
    fp = _FakeProber()
    be = ProberBackend(clock, prober=fp)
    out = bytearray()
    src = AttachedSource(be, clock, out.extend, lambda: None, attached=True, list_name="x_1",
                         monitor="vp1", hostname="h")
    src.data_received(command.encode() + b"\n")
    return fp, out


@pytest.mark.parametrize("command, kind, stop", [
    ("ping -c 2 192.0.2.9", Ping, PingStop.ERROR),
    ("trace -q 1 198.51.100.9", Trace, TraceStop.ERROR),
])
def test_task_that_fails_after_ok_still_yields_a_record(command, kind, stop):
    from ixpscamper.prober import ProberError
    fp, out = _session(command)
    (_, t), = fp.submitted
    t.deferred.errback(ProberError("no route to the destination"))
    replies = C.ReplyParser().feed(bytes(out))
    ok = [r for r in replies if isinstance(r, C.Ok)]
    data = [r for r in replies if isinstance(r, C.Data) and r.task_id is not None]
    assert [r.task_id for r in ok] == [1] and [d.task_id for d in data] == [1]
    dec = WartsDecoder()
    recs = []
    for r in replies:
        if isinstance(r, C.Data):
            recs += dec.feed(r.payload)
    (rec,) = [r for r in recs if isinstance(r, kind)]
    assert rec.stop_reason == int(stop) and str(rec.dst) == command.split()[-1]


@pytest.mark.parametrize("command, kind", [
    ("tracelb -P icmp-echo 198.51.100.9", "Tracelb"),
    ("dealias -m ally -p '-P icmp-echo' 192.0.2.1 192.0.2.2", "Dealias"),
])
def test_tracelb_and_dealias_failures_also_yield_a_record(command, kind):
    from ixpscamper.prober import ProberError
    from ixpscamper.warts import records
    fp, out = _session(command)
    (_, t), = fp.submitted
    t.deferred.errback(ProberError("no route to the destination"))
    replies = C.ReplyParser().feed(bytes(out))
    dec = WartsDecoder()
    recs = []
    for r in replies:
        if isinstance(r, C.Data):
            recs += dec.feed(r.payload)
    assert [type(r).__name__ for r in recs if isinstance(r, getattr(records, kind))] == [kind]
