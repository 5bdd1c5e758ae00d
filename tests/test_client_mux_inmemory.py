"""The Twisted client API over the mux protocol, end to end in memory:
ixpscamper.client.api's MuxClient <-> ixpscamper.mux.hub's MuxProtocol
(twisted.test.iosim), each VP channel served by the VP's own attached
source (ixpscamper.vp.source) on a fake backend, all on one Clock."""

from __future__ import annotations

from twisted.internet import defer, task
from twisted.test import iosim

from ixpscamper.client.api import ChannelGone, CommandRefused, MuxClient, VPGone, _MuxProtocol
from ixpscamper.commands import CommandError
from ixpscamper.mux.hub import MuxHub, MuxProtocol
from ixpscamper.mux.meta import parse_metadata
from ixpscamper.vp.source import AttachedSource
from ixpscamper.warts.records import Ping

import pytest

from tests.vp_helpers import FakeBackend


class Handle:
    def __init__(self, src):
        self.src = src

    def write(self, data):
        self.src.data_received(data)

    def close(self):
        self.src.eof()


@pytest.fixture(autouse=True, params=[False, True], ids=["immediate", "gathered"])
def _write_mode(request, monkeypatch):
    """Every test twice: commands written as made, and gathered per reactor
    turn (what connect_mux does: MuxClient given the reactor)."""
    monkeypatch.setattr(Lab, "gather", request.param)


class Lab:
    gather = False

    def __init__(self, n_vps=3, delay=1.0):
        self.clock = task.Clock()
        self.clock.advance(1795760000)
        meta, _ = parse_metadata(["vp1 asn4 64500\n", "vp1 cc nz\n", "vp1 tag ixp\n",
                                  "vp1 latlong -37.5,175.25\n"])
        self.hub = MuxHub(meta)
        self.backends = {}
        for i in range(1, n_vps + 1):
            self.add(f"vp{i}", delay)
        self.client = MuxClient(self.clock if self.gather else None)
        self.cproto = _MuxProtocol(self.client)
        self.client._proto = self.cproto
        self.sproto = MuxProtocol(self.hub, "mux client test")
        self.pump = iosim.connect(self.sproto, iosim.makeFakeServer(self.sproto),
                                  self.cproto, iosim.makeFakeClient(self.cproto), clock=self.clock)

    def add(self, name, delay=1.0):
        be = FakeBackend(self.clock, delay=delay)
        self.backends[name] = be

        def opener(conn, ch, be=be, name=name):
            src = AttachedSource(be, self.clock, lambda d: conn.channel_data(ch, d),
                                 lambda: conn.channel_finished(ch), attached=True,
                                 list_name=f"{name}_{ch}", monitor=name, hostname="h")
            return Handle(src)
        return self.hub.add_vp(name, name, "127.0.0.1", False, 1795760000.25, opener)

    def run(self, seconds=0.0, steps=20):
        for _ in range(steps):
            self.pump.flush()
        if seconds:
            t = 0.0
            while t < seconds:
                self.clock.advance(0.5)
                t += 0.5
                for _ in range(5):
                    self.pump.flush()


def result(d):
    out = []
    d.addBoth(out.append)
    return out


def test_vps_with_metadata_after_go():
    lab = Lab()
    lab.run()
    assert lab.client.ready.called
    vps = lab.client.vps()
    assert [v.name for v in vps] == ["vp1", "vp2", "vp3"]
    v1 = vps[0]
    assert (v1.asn4, v1.cc, v1.tags, v1.loc, v1.ipv4) == (64500, "nz", frozenset({"ixp"}),
                                                          (-37.5, 175.25), "127.0.0.1")
    assert v1.arrival == pytest.approx(1795760000.25)


def test_ping_many_vps_each_result_once():
    lab = Lab(n_vps=3)
    lab.run()
    ds = []
    for i in range(20):
        ds += lab.client.ping(lab.client.vps(), f"127.0.0.{i + 1}", count=1)
    outs = [result(d) for d in ds]
    lab.run(seconds=3)
    assert all(len(o) == 1 and isinstance(o[0], Ping) for o in outs)
    # each VP ran exactly its 20 pings
    assert [len(b.started) for b in lab.backends.values()] == [20, 20, 20]


def test_bad_option_fails_before_sending():
    lab = Lab()
    lab.run()
    with pytest.raises(CommandError):
        lab.client.ping("vp1", "127.0.0.1", count=0)
    assert lab.backends["vp1"].started == []


def test_err_is_command_refused_with_command():
    lab = Lab()
    lab.run()
    out = result(lab.client.command("vp1", "trace 127.0.0.1"))  # FakeBackend takes only ping
    lab.run(seconds=1)
    (f,) = out
    assert f.check(CommandRefused) and f.value.command == "trace 127.0.0.1"


def test_departing_vp_fails_its_tasks_and_leave_event():
    lab = Lab(delay=10)
    lab.run()
    left = []
    lab.client.subscribe(on_leave=left.append)
    outs = [result(lab.client.ping("vp2", "127.0.0.1")) for _ in range(3)]
    lab.run(seconds=1)
    lab.hub.remove_vp("vp2", lambda c: list(c.open))
    lab.run()
    assert [v.name for v in left] == ["vp2"]
    assert all(o[0].check(VPGone) for o in outs)
    assert [v.name for v in lab.client.vps()] == ["vp1", "vp3"]


def test_join_event_for_a_later_vp():
    lab = Lab(n_vps=1)
    lab.run()
    joined = []
    lab.client.subscribe(on_join=joined.append)
    lab.add("late")
    lab.run()
    assert [v.name for v in joined] == ["late"]
    out = result(lab.client.ping("late", "127.0.0.1"))
    lab.run(seconds=2)
    assert isinstance(out[0], Ping)


def test_cancel_halts_the_task():
    lab = Lab(delay=10)
    lab.run()
    d = lab.client.ping("vp1", "127.0.0.1", count=3)
    out = result(d)
    lab.run(seconds=1)
    d.cancel()
    lab.run(seconds=1)
    assert out[0].check(defer.CancelledError)
    assert lab.backends["vp1"].started[0].halted


def test_lost_mux_connection_fails_everything():
    lab = Lab(delay=10)
    lab.run()
    outs = [result(lab.client.ping(v, "127.0.0.1")) for v in lab.client.vps()]
    lab.run(seconds=1)
    lab.sproto.transport.loseConnection()
    lab.run()
    assert all(o[0].check(ChannelGone) for o in outs)


def test_close_sends_what_was_submitted_before_it():
    """close() right after submitting: the command still reaches the VP
    (gathered writes are flushed before the connection is let go)."""
    lab = Lab()
    lab.run()
    result(lab.client.ping("vp1", "127.0.0.1"))
    lab.client.close()
    lab.run(seconds=2)
    assert [str(t.dst) for t in lab.backends["vp1"].started] == ["127.0.0.1"]


@pytest.mark.parametrize("text", ["ping 127.0.0.1\n", "ping 127.0.0.1\r", "ping 127.0.0.1\ndone"])
def test_a_command_is_one_line(text):
    """A newline in a command is refused before anything is sent, however it
    is placed (a trailing one too: it would end the line early)."""
    lab = Lab()
    lab.run()
    with pytest.raises(ValueError, match="one line"):
        lab.client.command("vp1", text)
    lab.run(seconds=1)
    assert lab.backends["vp1"].started == []
