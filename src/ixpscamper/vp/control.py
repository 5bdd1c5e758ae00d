"""The VP's local control socket (like ``scamper -U`` / ``scamper -P``).

Each connection starts in interactive mode; after ``attach`` it is an
attached source running on the same prober as the remote channels.
"""

from __future__ import annotations

from twisted.internet import protocol
from twisted.logger import Logger

from ixpscamper.control.server import ServerInfo
from ixpscamper.vp.source import AttachedSource, Backend

__all__ = ["ControlProtocol", "ControlFactory"]

log = Logger()


class ControlProtocol(protocol.Protocol):
    """Adapter: one local control connection <-> one :class:`AttachedSource`."""

    source: AttachedSource | None = None

    def connectionMade(self) -> None:
        f: ControlFactory = self.factory
        self.source = AttachedSource(
            f.backend, f.clock, self.transport.write, self._finished, attached=False,
            list_name=f.list_name(self.transport), monitor=f.monitor, dialect=f.dialect,
            hostname=f.hostname, info=f.info, abandon_on_eof=True, label="control connection")
        f.connections.add(self)

    def _finished(self) -> None:
        self.transport.loseConnection()

    def dataReceived(self, data: bytes) -> None:
        self.source.data_received(data)
        if self.source.core.closing:
            self.transport.loseConnection()

    def connectionLost(self, reason) -> None:
        self.factory.connections.discard(self)
        if self.source is not None and not self.source.finished:
            self.source.eof()
            self.source.abandon()


class ControlFactory(protocol.Factory):
    """Serves the control protocol on the VP's backend."""

    protocol = ControlProtocol
    noisy = False

    def __init__(self, clock, backend: Backend, *, path: str | None = None,
                 monitor: str | None = None, dialect: str = "current",
                 hostname: str | None = None, pps: int = 20, window: int = 0) -> None:
        self.clock = clock
        self.backend = backend
        self.path = path
        self.monitor = monitor
        self.dialect = dialect
        self.hostname = hostname
        self.info = ServerInfo(pps=pps, window=window, monitorname=monitor)
        self.connections: set[ControlProtocol] = set()
        self._count = 0

    def list_name(self, transport) -> str:
        """``<socket path>:<n>`` for a unix socket, ``<ip>:<port>`` for TCP, as scamper names them."""
        if self.path is not None:
            name = f"{self.path}:{self._count}"
            self._count += 1
            return name
        peer = transport.getPeer()
        return f"{getattr(peer, 'host', '?')}:{getattr(peer, 'port', '?')}"

    def stop(self) -> None:
        for p in list(self.connections):
            if p.source is not None:
                p.source.abandon()
            p.transport.abortConnection()
