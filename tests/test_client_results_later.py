"""MuxClientCore with ``schedule_results``: the commands a read lets go are
written before that read's results are decoded, and no result is lost or
doubled by the wait (ixpscamper.client.vps / channel)."""

from __future__ import annotations

from twisted.internet import task

from ixpscamper.client.channel import ChannelGone
from ixpscamper.client.vps import MuxClientCore
from ixpscamper.control import uu
from ixpscamper.mux.frames import (
    Attr, ChannelData, ChannelOpen, Go, MuxDecoder, VpUpdate, encode_control, encode_data,
)
from ixpscamper.vp.source import AttachedSource
from ixpscamper.warts.records import Ping

from tests.vp_helpers import FakeBackend


class Sched:
    def __init__(self):
        self.calls = []

    def __call__(self, f):
        self.calls.append(f)

    def run(self):
        calls, self.calls = self.calls, []
        for f in calls:
            f()


class Wire:
    """One MuxClientCore and one VP (an AttachedSource per channel), bytes moved by hand."""

    def __init__(self, later=True):
        self.clock = task.Clock()
        self.clock.advance(1795760000)
        self.backend = FakeBackend(self.clock, delay=1.0)
        self.writes: list[bytes] = []
        self.flushes, self.results = Sched(), Sched()
        self.core = MuxClientCore(self.writes.append, schedule=self.flushes,
                                  schedule_results=self.results if later else None)
        self.core.data_received(encode_control(VpUpdate(1, ((Attr.NAME, "vp1"),)))
                                + encode_control(Go()))
        self.dec = MuxDecoder("server")
        self.sources: dict[int, AttachedSource] = {}
        self.to_client: list[bytes] = []

    def to_vp(self) -> list:
        """Hand what the client wrote to the VP; returns the ChannelData seen."""
        data, self.writes[:] = b"".join(self.writes), []
        seen = []
        for ev in self.dec.feed(data):
            if isinstance(ev, ChannelOpen):
                ch = ev.channel
                self.sources[ch] = AttachedSource(
                    self.backend, self.clock, lambda d, ch=ch: self.to_client.append(encode_data(ch, d)),
                    lambda: None, attached=True, list_name="vp1_1", monitor="vp1", hostname="h")
            elif isinstance(ev, ChannelData):
                seen.append(ev)
                self.sources[ev.channel].data_received(ev.data)
        return seen

    def one_read(self) -> None:
        """Everything the VP has written, to the client in one read."""
        data, self.to_client[:] = b"".join(self.to_client), []
        self.core.data_received(data)


def _start(w: Wire, n: int, got: dict) -> int:
    w.core.channel(1).window = 0   # one command per MORE: each result's MORE lets one go
    for i in range(n):
        w.core.submit(1, f"ping 127.0.0.{i + 1}", lambda r, i=i: got.setdefault(i, []).append(r))
    for _ in range(3):               # open, MORE, command, OK and MORE, ...
        w.flushes.run()
        w.to_vp()
        w.one_read()
    w.flushes.run()
    w.to_vp()
    # some running at the VP, the rest waiting for MOREs
    assert 1 <= len(w.backend.started) < n
    return len(w.backend.started)


def test_commands_a_read_lets_go_are_written_before_its_results_are_decoded():
    w = Wire()
    got: dict = {}
    running = _start(w, 10, got)
    w.clock.advance(1)               # the VP's pings end: DATA id-N blocks, and MOREs
    w.one_read()
    # the next command is already written; no task has its result yet
    assert w.writes and got == {}
    sent = w.to_vp()
    assert sent and b"ping 127.0.0." in sent[0].data
    w.results.run()
    assert sorted(got) == list(range(running))
    assert all(len(v) == 1 and isinstance(v[0], Ping) for v in got.values())


def test_without_schedule_results_results_come_in_the_read():
    w = Wire(later=False)
    got: dict = {}
    running = _start(w, 10, got)
    w.clock.advance(1)
    w.one_read()
    assert sorted(got) == list(range(running)) and w.results.calls == []


def test_results_held_when_the_connection_ends_are_results_not_failures():
    w = Wire()
    got: dict = {}
    running = _start(w, 10, got)
    w.clock.advance(1)
    w.one_read()
    assert got == {}
    w.core.connection_lost("gone")
    # those whose result was in hand succeed; the others fail
    assert sorted(got) == list(range(10))
    assert all(isinstance(got[i][0], Ping) for i in range(running))
    assert all(isinstance(got[i][0], ChannelGone) for i in range(running, 10))
    w.results.run()                  # the scheduled delivery finds nothing left
    assert all(len(v) == 1 for v in got.values())


def test_a_bad_block_among_held_results_fails_the_channel_once():
    w = Wire()
    got: dict = {}
    _start(w, 10, got)
    w.clock.advance(1)
    good = b"".join(w.to_client)
    w.to_client[:] = []
    # a well-formed block that is not warts, for id 1, ahead of the VP's output
    block = uu.encode(b"\x12\x34" + bytes(6))
    bad = f"DATA {len(block)} id-1\n".encode() + block
    w.core.data_received(encode_data(1, bad) + good)
    w.results.run()
    assert all(len(v) == 1 and isinstance(v[0], ChannelGone) for v in got.values()), got
    assert "bad warts record" in str(got[0][0])
