"""VPs as a client sees them, and the sans-IO client core of a mux socket."""

from __future__ import annotations

from typing import Any, Callable, Optional

import attrs

from ixpscamper.mux.frames import (
    Attr, ChannelClose, ChannelData, ChannelOpen, Go, MuxDecoder, MuxError, VpDepart, VpUpdate,
    encode_control, encode_data,
)

from .channel import ChannelGone, ClientTask, TaskChannel

__all__ = ["VP", "MuxClientCore", "VPGone", "MAX_FRAME"]

#: the largest data frame a gathering `MuxClientCore` writes
MAX_FRAME = 4096


class VPGone(ChannelGone):
    """The VP departed (its state was freed at the controller)."""


def _asn(text: Optional[str]) -> int | str | None:
    if text is None:
        return None
    return int(text) if text.isdigit() else text


@attrs.frozen
class VP:
    """One vantage point: ``id`` (the controller's VP id on a mux, or an
    index for sockets), its monitor ``name`` and what the controller knows
    about it (address, arrival time, the metadata file's attributes)."""

    id: int
    name: Optional[str] = None
    ipv4: Optional[str] = None
    ipv6: Optional[str] = None
    arrival: Optional[float] = None
    asn4: int | str | None = None
    asn6: int | str | None = None
    cc: Optional[str] = None
    st: Optional[str] = None
    place: Optional[str] = None
    latlong: Optional[str] = None
    shortname: Optional[str] = None
    iata: Optional[str] = None
    tags: frozenset[str] = frozenset()
    socket: Optional[str] = None      # the per-VP socket path, when reached that way

    @property
    def loc(self) -> Optional[tuple[float, float]]:
        """``(lat, long)`` from ``latlong``, as ScamperVp.loc gives it."""
        if not self.latlong:
            return None
        try:
            a, b = self.latlong.split(",", 1)
            return float(a), float(b)
        except ValueError:
            return None

    @classmethod
    def from_update(cls, u: VpUpdate) -> "VP":
        g = u.get
        arrival = None
        if g(Attr.ARRIVAL):
            try:
                arrival = float(g(Attr.ARRIVAL))
            except ValueError:
                arrival = None
        return cls(id=u.vp_id, name=g(Attr.NAME), ipv4=g(Attr.IPV4), ipv6=g(Attr.IPV6),
                   arrival=arrival, asn4=_asn(g(Attr.ASN4)), asn6=_asn(g(Attr.ASN6)),
                   cc=g(Attr.CC), st=g(Attr.ST), place=g(Attr.PLACE), latlong=g(Attr.LATLONG),
                   shortname=g(Attr.SHORTNAME), iata=g(Attr.IATA),
                   tags=frozenset(u.all(Attr.TAG)))

    def __str__(self) -> str:
        return self.name or self.socket or f"vp{self.id}"


class MuxClientCore:
    """The client end of a mux socket, sans-IO.

    Keeps the VP table from VP_UPDATE / VP_DEPART, opens one channel per VP
    on first use (CHANNEL_OPEN with an id of ours), and runs a `TaskChannel`
    on each.  ``on_ready`` fires once at GO, ``on_join(vp)`` /
    ``on_leave(vp)`` for later changes, ``on_lost(reason)`` when the mux
    connection fails or ends.

    Without ``schedule`` every command goes out at once in a frame of its
    own.  With it (``schedule(f)`` must call ``f()`` soon, e.g.
    ``lambda f: reactor.callLater(0, f)``) what the channels write is
    gathered: per channel into one frame, and into one ``write`` for all,
    made by that call, at the end of `data_received` (the commands the
    replies let go), or by `flush`.  Ten thousand submitted commands then
    cost one write and a hundred frames rather than ten thousand of each.
    """

    def __init__(self, write: Callable[[bytes], None], *,
                 on_ready: Callable[[], None] | None = None,
                 on_join: Callable[[VP], None] | None = None,
                 on_leave: Callable[[VP], None] | None = None,
                 on_lost: Callable[[str], None] | None = None,
                 schedule: Callable[[Callable[[], None]], Any] | None = None) -> None:
        self._write = write
        self._schedule = schedule
        self._flush_due = False
        self._opens: dict[int, bytes] = {}                # channel -> CHANNEL_OPEN not yet written
        self._pending: dict[int, list[bytes]] = {}        # channel -> bytes not yet written
        self.on_ready = on_ready
        self.on_join = on_join
        self.on_leave = on_leave
        self.on_lost = on_lost
        self._decoder = MuxDecoder("client")
        self.vps: dict[int, VP] = {}
        self.ready = False
        self.lost: Optional[str] = None
        self._next_channel = 1
        self._channels: dict[int, TaskChannel] = {}      # our channel id -> channel
        self._by_vp: dict[int, tuple[int, TaskChannel]] = {}

    # ---- use -------------------------------------------------------------

    def channel(self, vp_id: int) -> TaskChannel:
        """The channel to ``vp_id`` (opened now if there is none)."""
        got = self._by_vp.get(vp_id)
        if got is not None and not got[1].closed:
            return got[1]
        ch = self._next_channel
        self._next_channel += 1
        name = self.vps[vp_id].name if vp_id in self.vps else None
        tc = TaskChannel(lambda data, ch=ch: self._send(ch, data),
                         name=f"VP {name or vp_id}",
                         on_closed=lambda reason, ch=ch: self._forget(ch))
        if self.lost is not None:
            tc.connection_lost(f"mux connection lost: {self.lost}")
            return tc
        if vp_id not in self.vps:
            tc.connection_lost(f"no VP with id {vp_id}")
            return tc
        self._channels[ch] = tc
        self._by_vp[vp_id] = (ch, tc)
        if self._schedule is None:
            self._write(encode_control(ChannelOpen(vp_id, ch)))
        else:
            # written before any channel's data at the flush: a channel's
            # data never precedes its open
            self._opens[ch] = encode_control(ChannelOpen(vp_id, ch))
            self._due()
        return tc

    def submit(self, vp_id: int, command: str, on_done: Callable[[Any], None]) -> ClientTask:
        return self.channel(vp_id).submit(command, on_done)

    def finish(self, vp_id: int) -> None:
        """Send ``done`` on the VP's channel once its queue is sent."""
        got = self._by_vp.get(vp_id)
        if got is not None:
            got[1].close()

    def _send(self, ch: int, data: bytes) -> None:
        if self.lost is not None:
            return
        if self._schedule is None:
            self._write(encode_data(ch, data))
            return
        got = self._pending.get(ch)
        if got is None:
            self._pending[ch] = [data]
        else:
            got.append(data)
        if not self._flush_due:
            self._due()

    def _due(self) -> None:
        if not self._flush_due:
            self._flush_due = True
            assert self._schedule is not None
            self._schedule(self.flush)

    def flush(self) -> None:
        """Write what the channels have gathered (see the class docstring)."""
        self._flush_due = False
        if self.lost is not None or not (self._opens or self._pending):
            return
        # a channel closed or whose VP left since is left out: its tasks
        # have failed, and opening a channel on a VP that is gone is fatal
        # to the whole mux connection at sc_remoted
        channels = self._channels
        out = [frame for ch, frame in self._opens.items() if ch in channels]
        self._opens = {}
        for ch, parts in self._pending.items():
            if ch not in channels:
                continue
            data = parts[0] if len(parts) == 1 else b"".join(parts)
            # frames of at most MAX_FRAME bytes: a controller need not take
            # more in one piece than a single command ever made
            for i in range(0, len(data), MAX_FRAME):
                out.append(encode_data(ch, data[i:i + MAX_FRAME]))
        self._pending.clear()
        self._write(b"".join(out))

    def _forget(self, ch: int) -> None:
        self._channels.pop(ch, None)
        for vp_id, (c, _) in list(self._by_vp.items()):
            if c == ch:
                del self._by_vp[vp_id]

    # ---- bytes from the controller --------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.lost is not None:
            return
        try:
            events = self._decoder.feed_batch(data)
        except MuxError as e:
            self._events(e.events)
            self.connection_lost(f"mux protocol error: {e}")
            return
        self._events(events)
        if self._flush_due:
            self.flush()   # what the replies let go, at once

    def _events(self, events) -> None:
        channels = self._channels
        for ev in events:
            t = type(ev)
            if t is ChannelData:
                tc = channels.get(ev.channel)
                if tc is not None:
                    tc.data_received(ev.data)
            elif t is VpUpdate:
                vp = VP.from_update(ev)
                known = ev.vp_id in self.vps
                self.vps[ev.vp_id] = vp
                if self.ready and not known and self.on_join is not None:
                    self.on_join(vp)
            elif t is VpDepart:
                self._depart(ev.vp_id)
            elif t is Go:
                if not self.ready:
                    self.ready = True
                    if self.on_ready is not None:
                        self.on_ready()
            elif t is ChannelClose:
                tc = channels.pop(ev.channel, None)
                if tc is not None:
                    tc.connection_lost(f"{tc.name}: channel closed by the VP")

    def _depart(self, vp_id: int) -> None:
        vp = self.vps.pop(vp_id, None)
        if vp is None:
            return  # sc_remoted sends id 0 for connections that never registered
        got = self._by_vp.pop(vp_id, None)
        if got is not None:
            self._channels.pop(got[0], None)
            got[1].connection_lost(f"VP {vp.name or vp_id} departed", VPGone)
        if self.on_leave is not None:
            self.on_leave(vp)

    def connection_lost(self, reason: str = "mux connection closed") -> None:
        if self.lost is not None:
            return
        self.lost = reason
        self._opens = {}
        self._pending.clear()
        chans = list(self._channels.values())
        self._channels.clear()
        self._by_vp.clear()
        for tc in chans:
            tc.connection_lost(f"{tc.name}: {reason}")
        if self.on_lost is not None:
            self.on_lost(reason)
