"""The controller's mux socket: the VP table every mux client sees, and the
Twisted adapter for one client.

`MuxHub` numbers VPs (ids from 1, kept across a VP's resumes, as
sc_remoted keeps them), builds their VP_UPDATE from what the controller
knows and the metadata file says, and tells every connected client about
arrivals and departures.  The controller registers each VP with
``add_vp(key, ...)`` and an ``opener`` that opens a channel on it for a
client; `MuxProtocol` is the thin adapter between a unix-socket
connection and a sans-IO `MuxServerConnection`.

Back-pressure: a client that does not read has its output buffered up to
``max_backlog`` bytes, then it is cut (one log line) -- never does it slow
the VPs or other clients.  Its input is paused while any of its channels
has more than the controller's per-channel bound waiting for a VP (the
controller calls ``pause`` / ``resume``).
"""

from __future__ import annotations

from typing import Callable, Optional

import attrs
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger

from .frames import Attr, VpUpdate
from .meta import VPMeta
from .server import MuxChannelHandle, MuxServerConnection

__all__ = ["MuxHub", "MuxProtocol", "MuxFactory", "HubVP"]

log = Logger(namespace="ixp-remoted.mux")

Opener = Callable[[MuxServerConnection, int], Optional[MuxChannelHandle]]


@attrs.define
class HubVP:
    """One VP as the mux sees it."""

    id: int
    key: object
    name: Optional[str]
    address: Optional[str]
    ipv6: bool
    arrival: float
    opener: Opener


def _pending(transport) -> int:
    buf = getattr(transport, "dataBuffer", b"")
    return (len(buf) - getattr(transport, "offset", 0)
            + getattr(transport, "_tempDataLen", 0))


class MuxHub:
    """Every VP of the controller, for every mux client; see the module docstring."""

    def __init__(self, meta: dict[str, VPMeta] | None = None,
                 max_backlog: int = 64 * 1024 * 1024) -> None:
        self.meta: dict[str, VPMeta] = dict(meta or {})
        self.max_backlog = max_backlog
        self.vps: dict[int, HubVP] = {}
        self._by_key: dict[object, HubVP] = {}
        self._next_id = 1
        self.clients: set[MuxServerConnection] = set()
        self._holding = 0
        self._dirty: list["MuxProtocol"] = []

    # ---- gathering writes ------------------------------------------------

    def hold(self) -> None:
        """Gather what clients are sent until the matching :meth:`release`.

        The controller holds while it handles one read from a VP: the
        results in it reach each client in one write, not one per frame (a
        write per frame cost more than the relaying).  Order is kept: a
        client's writes are queued in order and flushed together.
        """
        self._holding += 1

    def release(self) -> None:
        self._holding -= 1
        if self._holding == 0 and self._dirty:
            dirty, self._dirty = self._dirty, []
            for p in dirty:
                p._flush()

    # ---- VPs (from the controller) --------------------------------------

    def add_vp(self, key: object, name: Optional[str], address: Optional[str], ipv6: bool,
               arrival: float, opener: Opener) -> int:
        """A VP registered; returns its mux id and announces it."""
        vp = HubVP(self._next_id, key, name, address, ipv6, arrival, opener)
        self._next_id = self._next_id + 1 if self._next_id < 0xFFFFFFFF else 1
        self.vps[vp.id] = vp
        self._by_key[key] = vp
        upd = self.update_for(vp)
        for c in list(self.clients):
            c.vp_update(upd)
        return vp.id

    def remove_vp(self, key: object, channels_of: Callable[[MuxServerConnection], list[int]]
                  ) -> None:
        """A VP's state was freed: VP_DEPART to every client."""
        vp = self._by_key.pop(key, None)
        if vp is None:
            return
        del self.vps[vp.id]
        for c in list(self.clients):
            c.vp_depart(vp.id, channels_of(c))

    def vp_id(self, key: object) -> Optional[int]:
        vp = self._by_key.get(key)
        return None if vp is None else vp.id

    def update_for(self, vp: HubVP) -> VpUpdate:
        """VP_UPDATE in sc_remoted's attribute order: name, arrival, address, metadata."""
        a: list[tuple[int, str]] = []
        if vp.name:
            a.append((Attr.NAME, vp.name))
        a.append((Attr.ARRIVAL, _arrival(vp.arrival)))
        if vp.address:
            a.append((Attr.IPV6 if vp.ipv6 else Attr.IPV4, vp.address))
        md = self.meta.get(vp.name) if vp.name else None
        if md is not None:
            a += md.vp_attrs()
        return VpUpdate(vp.id, tuple(a))

    # ---- clients ---------------------------------------------------------

    def attach(self, conn: MuxServerConnection) -> None:
        self.clients.add(conn)
        conn.start([self.update_for(v) for v in sorted(self.vps.values(), key=lambda v: v.id)])

    def detach(self, conn: MuxServerConnection) -> None:
        self.clients.discard(conn)

    # MuxHost
    def mux_open(self, conn: MuxServerConnection, vp_id: int, channel: int):
        vp = self.vps.get(vp_id)
        if vp is None:
            return None
        return vp.opener(conn, channel)

    def mux_warn(self, conn: MuxServerConnection, message: str) -> None:
        log.warn("{client}: {message}", client=conn.label, message=message)


def _arrival(t: float) -> str:
    sec = int(t)
    usec = int(round((t - sec) * 1e6))
    if usec >= 1000000:
        sec, usec = sec + 1, usec - 1000000
    return f"{sec}.{usec:06d}"


class MuxProtocol(Protocol):
    """One client on the mux socket (thin adapter)."""

    def __init__(self, hub: MuxHub, label: str) -> None:
        self.hub = hub
        self.label = label
        self.conn: Optional[MuxServerConnection] = None
        self._paused = 0
        self._held: list[bytes] = []

    def connectionMade(self) -> None:
        self.conn = MuxServerConnection(self.hub, self._write, self._close, self.label)
        self.conn.adapter = self  # type: ignore[attr-defined]  # for pause/resume
        log.info("{client} connected", client=self.label)
        self.hub.attach(self.conn)

    def _write(self, data: bytes) -> None:
        if self.hub._holding:
            if not self._held:
                self.hub._dirty.append(self)
            self._held.append(data)
            return
        self._send(data)

    def _flush(self) -> None:
        held = self._held
        if held:
            data = b"".join(held)
            held.clear()
            if self.conn is not None and not self.conn.closed:
                self._send(data)

    def _send(self, data: bytes) -> None:
        t = self.transport
        if _pending(t) + len(data) > self.hub.max_backlog:
            log.warn("{client} is not reading ({n} bytes pending); closing it",
                     client=self.label, n=_pending(t))
            self.conn.connection_lost()
            self.hub.detach(self.conn)
            t.abortConnection()
            return
        t.write(data)

    def _close(self, reason: str) -> None:
        if self._held:
            # what was sent before the close is delivered, as an unheld write would be
            data = b"".join(self._held)
            self._held.clear()
            self._send(data)
        log.warn("{client} closed: {reason}", client=self.label, reason=reason)
        self.hub.detach(self.conn)
        self.transport.loseConnection()

    def pause(self) -> None:
        """Stop reading from this client (a channel's VP is not keeping up)."""
        self._paused += 1
        if self._paused == 1:
            self.transport.pauseProducing()

    def resume(self) -> None:
        if self._paused:
            self._paused -= 1
            if self._paused == 0:
                self.transport.resumeProducing()

    def dataReceived(self, data: bytes) -> None:
        self.conn.data_received(data)

    def connectionLost(self, reason=None) -> None:
        self._held.clear()
        if self.conn is not None and not self.conn.closed:
            log.info("{client} disconnected", client=self.label)
            self.conn.connection_lost()
        if self.conn is not None:
            self.hub.detach(self.conn)


class MuxFactory(Factory):
    noisy = False

    def __init__(self, hub: MuxHub) -> None:
        self.hub = hub
        self._n = 0

    def buildProtocol(self, addr):
        self._n += 1
        return MuxProtocol(self.hub, f"mux client {self._n}")
