"""In-memory helpers for VP tests: a fake measurement backend and a wire
between a RemoteVP and H2's ControllerCore, both on one task.Clock."""

from __future__ import annotations

import ipaddress
import re

from twisted.internet import defer

from ixpscamper.control import client as C
from ixpscamper.remote.session import ControllerCore
from ixpscamper.vp.remote import RemoteVP
from ixpscamper.vp.source import CommandRejected
from ixpscamper.warts.records import Ping, PingReply, Timeval

_PING = re.compile(r"^ping(?: -c (\d+))? (\S+)$")


class FakeTask:
    def __init__(self, clock, dst, count, delay):
        self.deferred = defer.Deferred()
        self.halted = False
        self.dst = dst
        self.count = count
        self._call = clock.callLater(delay, self._fire, clock)

    def _fire(self, clock):
        now = clock.seconds()
        sec = int(now)
        replies = [PingReply(addr=self.dst, probe_id=i, rtt=100 + i, reply_ttl=64, reply_size=84,
                             tx=Timeval(sec, 0)) for i in range(self.count)]
        self.deferred.callback(Ping(dst=self.dst, src=ipaddress.ip_address("127.0.0.1"),
                                    start=Timeval(sec, 0), probe_count=self.count,
                                    ping_sent=self.count, reply_count=len(replies), replies=replies))

    def halt(self):
        self.halted = True
        if self._call.active():
            self._call.cancel()
            self.count = 0
            self._fire_now()

    def _fire_now(self):
        self.deferred.callback(Ping(dst=self.dst, probe_count=0))


class FakeBackend:
    """``ping [-c N] ADDR`` only; each takes ``delay`` seconds of the clock."""

    def __init__(self, clock, delay=1.0):
        self.clock = clock
        self.delay = delay
        self.started: list[FakeTask] = []

    def parse(self, command):
        m = _PING.match(command)
        if not m:
            raise CommandRejected("expected ping [-c N] ADDRESS")
        try:
            addr = ipaddress.ip_address(m.group(2))
        except ValueError:
            raise CommandRejected(f"invalid address {m.group(2)}") from None
        return (addr, int(m.group(1) or 1))

    def start(self, options):
        t = FakeTask(self.clock, options[0], options[1], self.delay)
        self.started.append(t)
        return t


class _End:
    def __init__(self):
        self.buf = []
        self.open = True

    def write(self, data):
        if self.open:
            self.buf.append(data)


class VPProtoStub:
    """What RemoteVP needs of a connection: write / close_for."""

    def __init__(self, wire):
        self.wire = wire
        self.end = _End()

    def write(self, data):
        self.end.write(data)

    def close_for(self, reason):
        self.wire.closes.append(("vp", reason))
        self.wire.cut()


class Wire:
    """A RemoteVP and a ControllerCore joined by an in-memory link that can be cut."""

    def __init__(self, clock, backend, monitor="testvp", dialect="current", zombie=900):
        self.clock = clock
        self.events = ControllerEventsRecorder()
        self.core = ControllerCore(clock, self.events, zombie_time=zombie)
        self.vp = RemoteVP(clock, backend, monitor=monitor, dialect=dialect, hostname="testhost")
        self.closes = []
        self.up = False
        self.port = 40000

    def connect(self):
        self.port += 1
        self.vp_proto = VPProtoStub(self)
        self.c_end = _End()
        self.conn = self.core.connection(f"127.0.0.1:{self.port}", self.c_end.write, self._c_close)
        self.up = True
        self.vp.attach_transport(self.vp_proto)
        self.pump()

    def _c_close(self, reason):
        # like loseConnection: what the controller wrote still arrives
        self.closes.append(("controller", reason))
        if self.up and self.c_end.buf:
            data = b"".join(self.c_end.buf)
            self.c_end.buf.clear()
            self.clock.callLater(0, self._late_delivery, data, self.vp_proto)
            return
        self.cut()

    def _late_delivery(self, data, proto):
        if self.up and self.vp_proto is proto:
            self.vp.session.data_received(data)
            self.cut()

    def cut(self):
        if not self.up:
            return
        self.up = False
        self.vp_proto.end.open = False
        self.c_end.open = False
        self.vp_proto.end.buf.clear()
        self.c_end.buf.clear()
        self.vp.transport_lost(self.vp_proto, "cut")
        self.conn.connection_lost("cut")

    def pump(self, limit=10000):
        for _ in range(limit):
            if not self.up:
                return
            moved = False
            if self.vp_proto.end.buf:
                data = b"".join(self.vp_proto.end.buf)
                self.vp_proto.end.buf.clear()
                self.conn.data_received(data)
                moved = True
            if self.up and self.c_end.buf:
                data = b"".join(self.c_end.buf)
                self.c_end.buf.clear()
                self.vp.session.data_received(data)
                moved = True
            if not moved:
                return
        raise AssertionError("wire never went quiet")

    def advance(self, seconds, step=0.25):
        t = 0.0
        while t < seconds:
            self.clock.advance(step)
            self.pump()
            t += step


class ControllerEventsRecorder:
    def __init__(self):
        self.sessions = []
        self.data: dict[int, bytearray] = {}
        self.fins: list[int] = []
        self.log = []

    def vp_new(self, session):
        self.sessions.append(session)
        self.log.append("new")

    def vp_resumed(self, session):
        self.log.append("resumed")

    def vp_detached(self, session, reason):
        self.log.append("detached")

    def vp_gone(self, session, reason):
        self.log.append("gone")

    def channel_data(self, session, channel, data):
        self.data.setdefault(channel, bytearray()).extend(data)

    def channel_fin(self, session, channel):
        self.fins.append(channel)


def parse_user_stream(data: bytes):
    return C.ReplyParser().feed(bytes(data))
