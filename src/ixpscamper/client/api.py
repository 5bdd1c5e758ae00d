"""A Twisted-native API for driving many VPs at once.

Connect in one of four ways; each gives a `Client`::

    client = await connect_mux(reactor, "/run/ixp-remoted/mux")      # every VP, one socket
    client = await connect_dir(reactor, "/run/ixp-remoted")          # per-VP sockets
    client = await connect_socket(reactor, "/run/ixp-remoted/rc1-10.0.0.5:41234")
    client = await connect_control(reactor, "/run/ixp-vp.sock")      # a VP's own socket

    for vp in client.vps():
        print(vp.name, vp.asn4, vp.cc, sorted(vp.tags))
    ping = await client.ping("rc1", "192.0.2.1", count=3)            # a warts Ping record
    traces = await gatherResults(client.trace(client.vps(), "198.51.100.66", rtr=...))

Options are the command language's, typed: ``ping(vp, dst, **fields)``
takes the fields of `ixpscamper.commands.PingOptions` (``count``,
``method``, ``wait_us``, ...) and ``trace`` those of `TraceOptions`; each
command is built with ``to_command()`` and checked by the same parser the
VP uses, so a bad option fails here, before anything is sent
(`ixpscamper.commands.CommandError`).  ``command(vp, text)`` sends a
command line as it is.

Every call returns a Deferred (``await`` works) firing with the record, or
failing with `CommandRefused` (the VP's ``ERR``, with the command and the
message), `VPGone` (the VP departed), `ChannelGone` (the connection
ended).  Cancelling the Deferred halts the task.  ``submit`` gives the
task object itself (``.deferred``, ``.halt()``, ``.vp``, ``.state``); the
Deferred a call returns is that task (a `Task` is a Deferred).

Flow control is per VP: each VP's channel sends a command each time the VP
asks for one (``MORE``), so thousands of tasks may be outstanding across
hundreds of VPs while each VP is fed only as fast as it takes work.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import socket
import stat
from typing import Any, Callable, Iterable, Optional, Union

from twisted.internet import defer, protocol
from twisted.internet.endpoints import UNIXClientEndpoint, TCP4ClientEndpoint, connectProtocol
from twisted.internet.task import LoopingCall

from ixpscamper.commands import PingOptions, TraceOptions, parse_command, _ip  # noqa: F401

from .channel import (
    ChannelGone, ClientTask, CommandRefused, TaskChannel, TaskHalted, _command_userid,
)
from .vps import VP, MuxClientCore, VPGone

__all__ = [
    "Client", "Task", "connect_mux", "connect_dir", "connect_socket", "connect_control",
    "CommandRefused", "ChannelGone", "VPGone", "TaskHalted", "build_command",
]

VPRef = Union[VP, str, int]

_pton4 = functools.partial(socket.inet_pton, socket.AF_INET)
_ntop4 = functools.partial(socket.inet_ntop, socket.AF_INET)


_KINDS = {"ping": PingOptions, "trace": TraceOptions}

# (kind, fields, family) -> the command text before the destination, for
# options the parser accepted (None: accepted, but no such prefix)
_checked: dict = {}
# (kind, destination, *fields) -> the command text, for commands already built
_memo: dict = {}


def build_command(kind: str, dst: str, **fields: Any) -> str:
    """``ping``/``trace`` command text from typed option fields, checked.

    The check is the VP's own parser on the text.  Whether options are valid
    does not depend on the destination beyond its family, and the text is
    the options' words then the destination, so both are kept per
    (options, family): a campaign of one command to many addresses builds
    and parses it once, then only checks and appends each address."""
    try:
        # one command to one destination from many VPs (a measurement from
        # every VP of a mux) is built once: the whole text is kept
        memo_key = (kind, dst, *fields.items())
        text = _memo.get(memo_key)
    except TypeError:   # an unhashable field value
        memo_key = text = None
    if text is not None:
        return text
    text = _build_command(kind, dst, fields)
    if memo_key is not None:
        if len(_memo) > 4096:
            _memo.clear()
        _memo[memo_key] = text
    return text


def _build_command(kind: str, dst, fields: dict) -> str:
    cls = _KINDS.get(kind)
    if cls is None:
        raise ValueError(f"unknown measurement {kind!r}")
    dst_text = str(dst)
    addr = None
    try:
        # a dotted quad as the address's own text is common and is quick
        # to recognise; everything else is read the way the parser reads it
        if _ntop4(_pton4(dst_text)) == dst_text:
            version = 4
        else:
            dst_text = ""
    except OSError:
        dst_text = ""
    if not dst_text:
        addr = _ip(str(dst))
        if addr is None:
            from ixpscamper.commands import CommandError
            raise CommandError(f"bad destination {str(dst)[:60]!r}")
        version = addr.version
        dst_text = str(addr)
    for k in ("rtr", "src"):
        if isinstance(fields.get(k), str):
            fields[k] = _ip(fields[k])
    try:
        key = (kind, tuple(sorted(fields.items())), version)
        prefix = _checked.get(key, False)
    except TypeError:   # an unhashable field value: just check
        key = None
        prefix = False
    if prefix:
        return prefix + dst_text
    if addr is None:
        addr = ipaddress.IPv4Address(dst_text)
    text = cls(dst=addr, **fields).to_command()
    if prefix is None:
        return text
    parse_command(text)  # the VP's own rules: raises CommandError
    if key is not None:
        if len(_checked) > 4096:
            _checked.clear()
        _checked[key] = (text[:-len(dst_text)] if text.endswith(" " + dst_text) else None)
    return text


class Task(defer.Deferred, ClientTask):
    """One submitted command, and the Deferred of its record.

    The task is the channel's own (`ClientTask`: ``command``, ``state``,
    ``vp_id``, `halt`) with its ``vp``, and is itself the Deferred that
    fires with the record (``deferred`` is the task): one object per task
    where there were three, which a client with ten thousand tasks
    outstanding notices in its memory and its garbage collector.
    Cancelling it halts the task."""

    def __init__(self, vp: VP, command: str) -> None:
        if "\n" in command or "\r" in command:
            raise ValueError("a command is one line")  # before the strip below hides one
        defer.Deferred.__init__(self, _halt_task)
        ClientTask.__init__(self, command.strip(), _no_callback, _command_userid(command))
        self.vp = vp

    @property
    def deferred(self) -> defer.Deferred:
        """The Deferred of the record: the task itself."""
        return self

    def _finished(self, outcome: Any) -> None:
        if self.called:
            return  # cancelled: the halted record is not wanted
        if isinstance(outcome, BaseException):
            self.errback(outcome)
        else:
            self.callback(outcome)


def _halt_task(task: "Task") -> None:
    """A `Task`'s canceller: halt it (see `ClientTask.halt`)."""
    task.halt()


def _no_callback(_outcome: Any) -> None:
    """A `Task` reports through its Deferred, not ``on_done``."""


class Client:
    """VPs reachable through one connection; see the module docstring."""

    def __init__(self) -> None:
        self._listeners: list[tuple[Callable[[VP], None] | None, Callable[[VP], None] | None]] = []

    # ---- VPs -------------------------------------------------------------

    def vps(self) -> list[VP]:
        """The VPs available now."""
        raise NotImplementedError

    def vp(self, ref: VPRef) -> VP:
        """A VP by object, monitor name, socket path or id (`KeyError` if none)."""
        if isinstance(ref, VP):
            return ref
        for vp in self.vps():
            if ref in (vp.id, vp.name, vp.socket, str(vp)):
                return vp
        raise KeyError(f"no VP {ref!r}")

    def subscribe(self, on_join: Callable[[VP], None] | None = None,
                  on_leave: Callable[[VP], None] | None = None) -> None:
        """Be told when a VP arrives or departs."""
        self._listeners.append((on_join, on_leave))

    def _joined(self, vp: VP) -> None:
        for j, _ in list(self._listeners):
            if j is not None:
                j(vp)

    def _left(self, vp: VP) -> None:
        for _, leave in list(self._listeners):
            if leave is not None:
                leave(vp)

    # ---- tasks -----------------------------------------------------------

    def _channel(self, vp: VP) -> TaskChannel:
        raise NotImplementedError

    def submit(self, vp: VPRef, command: str) -> Task:
        """Send one command line to a VP; see `Task`."""
        v = self.vp(vp)
        t = Task(v, command)
        self._channel(v).submit_task(t)
        return t

    def command(self, vp: VPRef | Iterable[VPRef], command: str):
        """Deferred record of ``command`` on ``vp`` (a list of them for many VPs)."""
        if _many(vp):
            return [self.submit(v, command).deferred for v in vp]  # type: ignore[union-attr]
        return self.submit(vp, command).deferred  # type: ignore[arg-type]

    def ping(self, vp: VPRef | Iterable[VPRef], dst: str, **options: Any):
        """A ping (fields of `PingOptions`); Deferred, or a list for many VPs."""
        return self.command(vp, build_command("ping", dst, **options))

    def trace(self, vp: VPRef | Iterable[VPRef], dst: str, **options: Any):
        """A traceroute (fields of `TraceOptions`); Deferred, or a list for many VPs."""
        return self.command(vp, build_command("trace", dst, **options))

    def close(self) -> defer.Deferred:
        """End every channel (``done``) and the connection."""
        raise NotImplementedError


def _many(vp) -> bool:
    return not isinstance(vp, (VP, str, int))


# ==========================================================================
# mux socket


class _MuxProtocol(protocol.Protocol):
    def __init__(self, client: "MuxClient") -> None:
        self.client = client

    def connectionMade(self) -> None:
        reactor = self.client._reactor
        # with a reactor, what the channels write is gathered and written
        # once per reactor turn (MuxClientCore: one write, a frame per VP)
        schedule = None if reactor is None else (lambda f: reactor.callLater(0, f))
        self.client._core = MuxClientCore(self.transport.write, on_ready=self.client._ready,
                                          on_join=self.client._joined, on_leave=self.client._left,
                                          on_lost=self.client._lost, schedule=schedule)

    def dataReceived(self, data: bytes) -> None:
        self.client._core.data_received(data)

    def connectionLost(self, reason=None) -> None:
        core = self.client._core
        if core is not None:
            core.connection_lost(f"mux connection closed ({reason.getErrorMessage()})"
                                 if reason is not None else "mux connection closed")
        if not self.client.closed.called:
            self.client.closed.callback(None)


class MuxClient(Client):
    """Every VP of one controller, through its mux socket.

    ``reactor``, when given, lets the client gather its writes (see
    `MuxClientCore`); `connect_mux` gives it."""

    def __init__(self, reactor=None) -> None:
        super().__init__()
        self._reactor = reactor
        self._core: Optional[MuxClientCore] = None
        self._proto: Optional[_MuxProtocol] = None
        self.ready: defer.Deferred = defer.Deferred()
        self.closed: defer.Deferred = defer.Deferred()

    def _ready(self) -> None:
        if not self.ready.called:
            self.ready.callback(self)

    def _lost(self, reason: str) -> None:
        if not self.ready.called:
            self.ready.errback(ChannelGone(reason))

    def vps(self) -> list[VP]:
        return [] if self._core is None else sorted(self._core.vps.values(), key=lambda v: v.id)

    def _channel(self, vp: VP) -> TaskChannel:
        assert self._core is not None
        return self._core.channel(vp.id)

    def close(self) -> defer.Deferred:
        if self._core is not None:
            for vp_id in list(self._core._by_vp):
                self._core.finish(vp_id)
            self._core.flush()
        if self._proto is not None and self._proto.transport is not None:
            t = self._proto.transport
            # let the 'done's go out; the controller finishes the channels
            t.loseConnection()
        return self.closed


def connect_mux(reactor, path: str) -> defer.Deferred:
    """Connect to a controller's mux socket; fires with a `MuxClient` once
    every present VP has been announced (GO)."""
    client = MuxClient(reactor)
    proto = _MuxProtocol(client)
    client._proto = proto
    d = connectProtocol(UNIXClientEndpoint(reactor, path), proto)
    d.addCallback(lambda _: client.ready)
    return d


# ==========================================================================
# per-VP sockets and a VP's own control socket


class _ChannelProtocol(protocol.Protocol):
    """One stream connection carrying one attached channel."""

    def __init__(self, vp: VP, greeting: bytes = b"", tag_userids: bool = False,
                 on_gone: Callable[[], None] | None = None) -> None:
        self.vp = vp
        self.greeting = greeting
        self._pending: list[bytes] = []
        self._on_gone = on_gone
        self.channel = TaskChannel(self._write, name=f"VP {vp}", tag_userids=tag_userids)
        if greeting:
            # the OK to 'attach' comes before the first command's OK id-N
            self.channel.expect_reply(greeting.decode().strip())

    def _write(self, data: bytes) -> None:
        if self.transport is None:
            self._pending.append(data)
        else:
            self.transport.write(data)

    def connectionMade(self) -> None:
        if self.greeting:
            self.transport.write(self.greeting)
        for b in self._pending:
            self.transport.write(b)
        self._pending = []

    def dataReceived(self, data: bytes) -> None:
        self.channel.data_received(data)
        if self.channel.closed:
            self.transport.loseConnection()

    def connectionLost(self, reason=None) -> None:
        self.channel.connection_lost(f"VP {self.vp}: connection closed")
        if self._on_gone is not None:
            self._on_gone()


class SocketsClient(Client):
    """VPs each reached on a stream socket of its own."""

    def __init__(self, reactor, greeting: bytes = b"", tag_userids: bool = False) -> None:
        super().__init__()
        self.reactor = reactor
        self.greeting = greeting
        self.tag_userids = tag_userids
        self._vps: dict[str, VP] = {}       # socket path -> VP
        self._protos: dict[str, _ChannelProtocol] = {}
        self._endpoint_for: Callable[[str], Any] = lambda p: UNIXClientEndpoint(reactor, p)

    def vps(self) -> list[VP]:
        return sorted(self._vps.values(), key=lambda v: v.id)

    def _channel(self, vp: VP) -> TaskChannel:
        key = vp.socket or ""
        p = self._protos.get(key)
        if p is not None and not p.channel.closed:
            return p.channel
        p = _ChannelProtocol(vp, self.greeting, self.tag_userids,
                             on_gone=lambda key=key: self._protos.pop(key, None))
        self._protos[key] = p
        d = connectProtocol(self._endpoint_for(key), p)
        d.addErrback(lambda f, p=p: p.channel.connection_lost(
            f"VP {vp}: cannot connect: {f.getErrorMessage()}"))
        return p.channel

    def close(self) -> defer.Deferred:
        for p in list(self._protos.values()):
            p.channel.close()
        return defer.succeed(None)


def _vp_from_socket_name(index: int, path: str) -> VP:
    """sc_remoted names a VP's socket ``[monitor-]addr``."""
    base = os.path.basename(path)
    name = None
    head, sep, rest = base.partition("-")
    if sep and rest and (":" in rest or "." in rest) and not (":" in head):
        name = head
    return VP(id=index, name=name, socket=path)


class DirClient(SocketsClient):
    """The per-VP sockets of a controller's socket directory, rescanned every
    ``poll`` seconds for arrivals and departures."""

    def __init__(self, reactor, directory: str, poll: float = 1.0) -> None:
        super().__init__(reactor)
        self.directory = directory
        self._next = 1
        self._loop = LoopingCall(self.rescan)
        self._loop.clock = reactor
        self.poll = poll

    def rescan(self) -> None:
        try:
            names = os.listdir(self.directory)
        except OSError:
            names = []
        seen = set()
        for n in names:
            p = os.path.join(self.directory, n)
            try:
                if not stat.S_ISSOCK(os.lstat(p).st_mode):
                    continue
            except OSError:
                continue
            seen.add(p)
            if p not in self._vps:
                vp = _vp_from_socket_name(self._next, p)
                self._next += 1
                self._vps[p] = vp
                self._joined(vp)
        for p in list(self._vps):
            if p not in seen:
                vp = self._vps.pop(p)
                self._left(vp)

    def start(self) -> None:
        self.rescan()
        if self.poll > 0:
            self._loop.start(self.poll, now=False)

    def close(self) -> defer.Deferred:
        if self._loop.running:
            self._loop.stop()
        return super().close()


def connect_dir(reactor, directory: str, poll: float = 1.0) -> defer.Deferred:
    """A `Client` over every per-VP socket in ``directory`` (``-U`` of the controller)."""
    if not os.path.isdir(directory):
        return defer.fail(ChannelGone(f"{directory}: not a directory"))
    c = DirClient(reactor, directory, poll)
    c.start()
    return defer.succeed(c)


def connect_socket(reactor, path: str) -> defer.Deferred:
    """A `Client` with the one VP behind a controller's per-VP socket."""
    c = SocketsClient(reactor)
    c._vps[path] = _vp_from_socket_name(1, path)
    return defer.succeed(c)


def connect_control(reactor, where: str, tag_userids: bool = False) -> defer.Deferred:
    """A `Client` with the VP whose own control socket is ``where`` (a unix
    path, or ``[host:]port`` on TCP); the channel starts with ``attach``.
    ``tag_userids`` for a scamper 20211212 VP, whose results carry no id."""
    c = SocketsClient(reactor, greeting=b"attach\n", tag_userids=tag_userids)
    if os.path.sep in where or not where.replace(":", "").replace(".", "").isdigit():
        c._vps[where] = VP(id=1, socket=where)
    else:
        host, _, port = where.rpartition(":")
        c._endpoint_for = lambda _p: TCP4ClientEndpoint(reactor, host or "127.0.0.1", int(port))
        c._vps[where] = VP(id=1, socket=where)
    return defer.succeed(c)
