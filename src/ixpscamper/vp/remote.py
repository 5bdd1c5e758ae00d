"""The VP's link to a controller: the remote protocol session and its channels.

:class:`RemoteVP` holds the :class:`~ixpscamper.remote.session.VPSession`
(which survives TCP connections, so a resume carries on where the link
broke) and one :class:`~ixpscamper.vp.source.AttachedSource` per channel.
:class:`RemoteProtocol` is the thin adapter a ``ClientService`` connects;
:func:`retry_policy` is the reconnect schedule.
"""

from __future__ import annotations

import functools
import random
from typing import Callable

from twisted.internet import protocol
from twisted.logger import Logger
from zope.interface import implementer

from ixpscamper.ops.tlsdiag import classify_tls_failure, first_bytes_mismatch
from ixpscamper.remote.session import VPSession
from ixpscamper.vp.opsstate import LinkStats
from ixpscamper.vp.source import AttachedSource, Backend, sanitize_name

from twisted.internet.interfaces import IHandshakeListener

__all__ = ["RemoteVP", "RemoteProtocol", "RemoteFactory", "retry_policy", "TLS_HANDSHAKE_TIME"]

log = Logger(namespace="ixp-vp.remote")

#: seconds a TLS handshake may take before the VP names the likely cause and
#: gives up (a controller that says nothing at all to a ClientHello)
TLS_HANDSHAKE_TIME = 10.0


def retry_policy(first: float = 1.0, cap: float = 60.0,
                 rand: Callable[[], float] = random.random) -> Callable[[int], float]:
    """Delay before reconnect attempt ``n`` (1-based, as ``ClientService`` counts).

    The first retry comes within ``first`` seconds; each further one waits
    up to twice as long, up to ``cap``.  "Equal jitter": half the delay is
    fixed, half random, so VPs cut off together by a controller restart do
    not come back together, and none waits less than half its step.
    """
    def policy(attempt: int) -> float:
        step = min(cap, first * (2 ** min(max(attempt - 1, 0), 30)))
        return step / 2 + rand() * step / 2
    return policy


def _guarded(method):
    """A bug in one channel's handling is logged, not allowed to break the link."""
    @functools.wraps(method)
    def wrapper(self, *args):
        try:
            return method(self, *args)
        except Exception:
            log.failure("{name} failed", name=method.__name__)
    return wrapper


class RemoteVP:
    """The VP side of the remote protocol, over any number of connections.

    Implements the ``VPEvents`` interface of :class:`VPSession`.
    """

    def __init__(self, clock, backend: Backend, monitor: str | None = None,
                 dialect: str = "current", hostname: str | None = None,
                 session_factory=VPSession, tls: bool = False) -> None:
        self.clock = clock
        self.tls = tls
        self.stats = LinkStats(clock)
        self.backend = backend
        self.monitor = monitor
        self.dialect = dialect
        self.hostname = hostname
        self.session = session_factory(clock, self, name=monitor.encode("ascii") if monitor else None)
        self.sources: dict[int, AttachedSource] = {}
        self.channel_count = 0  # k of the list name: per process, never reset
        self.current: RemoteProtocol | None = None
        self.established_count = 0
        self.rejections = 0
        #: consecutive connections that ended before the session was up
        self.unestablished_failures = 0

    # -- transport side --------------------------------------------------------

    def attach_transport(self, proto: "RemoteProtocol") -> None:
        self.current = proto
        self._was_established = False
        self.stats.transport_made()
        self.session.connection_made(proto.write, proto.close_for)

    def transport_lost(self, proto: "RemoteProtocol", reason: str) -> None:
        if proto is not self.current:
            return
        self.current = None
        if not self._was_established:
            self.unestablished_failures += 1
        self.stats.transport_lost()
        self.session.connection_lost()

    _was_established = False

    # -- VPEvents ------------------------------------------------------------------

    def established(self, master_id: bytes | None, resumed: bool) -> None:
        self._was_established = True
        self.unestablished_failures = 0
        self.established_count += 1
        self.stats.session_up(resumed)
        mid = sanitize_name((master_id or b"").decode("ascii", "replace"))
        if resumed:
            took = self.stats.last_resume_seconds
            log.info("resumed the session with the controller ({mid}) after {took}; "
                     "{n} channel(s) open", mid=mid, n=len(self.sources),
                     took="an outage" if took is None else f"{took:.2f} s")
        else:
            log.info("new session with the controller, id {mid}", mid=mid)

    @_guarded
    def rejected(self) -> None:
        self.rejections += 1
        self.stats.session_rejected()
        log.warn("the controller rejected the resume (MASTER_REJ): dropping {n} channel(s), "
                 "starting a new session", n=len(self.sources))
        sources = list(self.sources.values())
        self.sources.clear()
        for s in sources:
            s.abandon()

    @_guarded
    def channel_opened(self, channel: int) -> None:
        mid = (self.session.master_id or b"").decode("ascii", "replace")
        k = self.channel_count
        self.channel_count += 1

        def write(data: bytes, ch=channel) -> None:
            if ch in self.session.channels:
                self.session.send_data(ch, data)

        def finish(ch=channel) -> None:
            src = self.sources.pop(ch, None)
            if src is not None:
                log.info("channel {ch} done (user detached): {n} result(s) sent", ch=ch,
                         n=src.results_sent)
            if ch in self.session.channels:
                self.session.send_fin(ch)

        src = AttachedSource(self.backend, self.clock, write, finish, attached=True,
                             list_name=f"{mid}_{k}", monitor=self.monitor, dialect=self.dialect,
                             hostname=self.hostname, label=f"channel {channel}")
        self.sources[channel] = src
        log.info("channel {ch} opened (a user attached); {n} open", ch=channel, n=len(self.sources))

    @_guarded
    def channel_data(self, channel: int, data: bytes) -> None:
        src = self.sources.get(channel)
        if src is not None:
            src.data_received(data)

    @_guarded
    def channel_closed(self, channel: int) -> None:
        src = self.sources.get(channel)
        if src is not None:
            # like scamper 20211212: the user's EOF ends input, running
            # tasks still finish and their results are still sent
            src.eof()

    def stop(self) -> None:
        for s in list(self.sources.values()):
            s.abandon()
        self.sources.clear()


@implementer(IHandshakeListener)
class RemoteProtocol(protocol.Protocol):
    """Adapter: one TCP (or TLS) connection to the controller.

    Before the session is up it also names a TLS / plaintext mismatch in
    one line (see :mod:`ixpscamper.ops.tlsdiag`): a plaintext VP whose
    MASTER_NEW is answered by TLS bytes, a TLS VP whose handshake meets EOF,
    bytes that are not TLS, or silence for :data:`TLS_HANDSHAKE_TIME`.
    """

    def __init__(self, vp: RemoteVP) -> None:
        self.vp = vp
        self._closed_reason: str | None = None
        self._diagnosed = False
        self._got_bytes = False
        self.tls_done = False
        self._tls_timer = None

    def connectionMade(self) -> None:
        # the control protocol is request/response in small frames: Nagle
        # plus delayed ACKs would add tens of ms to every command
        nodelay = getattr(self.transport, "setTcpNoDelay", None)
        if nodelay is not None:
            try:
                nodelay(True)
            except OSError:
                pass
        peer = self.transport.getPeer()
        self.peer = f"{getattr(peer, 'host', '?')}:{getattr(peer, 'port', '?')}"
        log.info("connected to the controller at {peer}{tls}", peer=self.peer,
                 tls=" (TLS handshake next)" if self.vp.tls else "")
        if self.vp.tls:
            self._tls_timer = self.vp.clock.callLater(TLS_HANDSHAKE_TIME, self._tls_timeout)
        self.vp.attach_transport(self)

    # -- TLS -----------------------------------------------------------------

    def handshakeCompleted(self) -> None:  # noqa: N802 -- IHandshakeListener
        self.tls_done = True
        self._cancel_tls_timer()
        log.debug("TLS handshake with the controller done")

    def _cancel_tls_timer(self) -> None:
        if self._tls_timer is not None and self._tls_timer.active():
            self._tls_timer.cancel()
        self._tls_timer = None

    def _tls_timeout(self) -> None:
        self._tls_timer = None
        if self.tls_done or self is not self.vp.current:
            return
        self._diagnose("timeout", f"no TLS answer from the controller at {self.peer} in "
                       f"{TLS_HANDSHAKE_TIME:g} s: a plaintext controller waits for a frame "
                       "and says nothing to a ClientHello; if it is one, give this VP --no-tls")
        self._closed_reason = "TLS handshake timed out"
        self.transport.abortConnection()

    def _diagnose(self, kind: str, line: str, lost: bool = False) -> None:
        """Say once, in one line, why this connection cannot work."""
        if self._diagnosed:
            return
        self._diagnosed = True
        self.vp.stats.failure(kind, line)
        log.warn("{what}: {line}", line=line,
                 what="connection to the controller lost" if lost
                 else "closing the connection to the controller")

    # -- data ----------------------------------------------------------------

    def write(self, data: bytes) -> None:
        self.vp.stats.bytes_out += len(data)
        self.transport.write(data)

    def close_for(self, reason: str) -> None:
        """Called by the session: drop this connection and say why, once."""
        self._closed_reason = reason
        if not self.vp.session.established and not self._diagnosed:
            self.vp.stats.failure("protocol", reason)
        log.info("closing the connection to the controller: {reason}", reason=reason)
        self.transport.abortConnection()

    def dataReceived(self, data: bytes) -> None:  # noqa: N802
        if self is not self.vp.current:
            return
        self.vp.stats.bytes_in += len(data)
        if not self._got_bytes:
            self._got_bytes = True
            if not self.vp.tls and not self.vp.session.established:
                hint = first_bytes_mismatch(data, expect_tls=False)
                if hint is not None:
                    self._diagnose("tls_mismatch", hint)
                    self._closed_reason = "the controller speaks TLS"
                    self.transport.abortConnection()
                    return
        self.vp.session.data_received(data)

    def connectionLost(self, reason) -> None:  # noqa: N802
        self._cancel_tls_timer()
        why = reason.getErrorMessage()
        current = self is self.vp.current
        if current and not self.vp.session.established and not self._diagnosed \
                and self._closed_reason is None:
            if self.vp.tls and not self.tls_done:
                kind, line = classify_tls_failure(f"{type(reason.value).__name__}: {why}")
                self._diagnose(kind, line, lost=True)
            elif not self._got_bytes:
                hint = "the controller closed the connection without answering MASTER_NEW: "
                if self.vp.tls:
                    hint += ("it refused this VP (see its log: a certificate not naming the "
                             "monitor, a registration limit)")
                else:
                    hint += ("it refused this VP (see its log), or it expects TLS "
                             "(ixp-remoted --tls-cert): then drop --no-tls")
                self._diagnose("closed", hint, lost=True)
            else:
                self._diagnose("closed", f"the controller closed the connection before the "
                                         f"session was up: {why}", lost=True)
        elif self._closed_reason is None:
            log.info("connection to the controller lost: {why}", why=why)
        self.vp.transport_lost(self, self._closed_reason or why)


class RemoteFactory(protocol.Factory):
    noisy = False

    def __init__(self, vp: RemoteVP) -> None:
        self.vp = vp

    def buildProtocol(self, addr) -> RemoteProtocol:
        p = RemoteProtocol(self.vp)
        p.factory = self
        return p
