"""The controller's side of one mux-socket client, sans-IO.

A `MuxServerConnection` is one client on ``ixp-remoted -M PATH``.  It
announces the VPs present at connect time (one VP_UPDATE each, then GO),
later arrivals and departures, opens a VP channel for each CHANNEL_OPEN,
and carries channel bytes both ways -- behaving, per channel, exactly like
a user on that VP's own unix socket (``docs/scamper-protocols.md`` C.3).

Rules kept from sc_remoted 2026: the client picks channel ids; a
CHANNEL_OPEN naming an unknown VP, or reusing a channel id (even a closed
one), ends the whole client connection, and every channel it still has
open is finished towards its VP (CHANNEL_FIN), as when the client simply
closes the socket; other control messages from a client are ignored.
Unlike sc_remoted, data for a channel the client never opened is counted
and reported in one log line instead of vanishing.

The controller is reached through a `MuxHost`; bytes go out through
``write`` and ``close(reason)`` drops the client (one log line from the
adapter).
"""

from __future__ import annotations

from typing import Callable, Optional, Protocol

from .frames import (
    ChannelClose, ChannelData, ChannelOpen, Go, MuxDecoder, MuxError, VpDepart, VpUpdate,
    encode_control, encode_data,
)

__all__ = ["MuxHost", "MuxChannelHandle", "MuxServerConnection"]


class MuxChannelHandle(Protocol):
    """The controller's half of one mux channel (a VP channel)."""

    def write(self, data: bytes) -> None:
        """Client bytes for the VP."""

    def close(self) -> None:
        """The client is gone: finish the channel towards the VP."""


class MuxHost(Protocol):
    """What a mux connection needs from the controller."""

    def mux_open(self, conn: "MuxServerConnection", vp_id: int,
                 channel: int) -> Optional[MuxChannelHandle]:
        """Open a channel on VP ``vp_id`` for ``conn``'s ``channel``; None if
        there is no such VP.  VP output for it arrives via
        ``conn.channel_data`` / ``conn.channel_finished``."""

    def mux_warn(self, conn: "MuxServerConnection", message: str) -> None:
        """One log line about this client that does not end it."""


class _Opening:
    """Stands for a channel's handle while the host is opening it."""

    def write(self, data: bytes) -> None:  # pragma: no cover - never reached
        raise AssertionError("write to a channel being opened")

    def close(self) -> None:
        pass


_OPENING = _Opening()


class MuxServerConnection:
    """One mux client; see the module docstring."""

    def __init__(self, host: MuxHost, write: Callable[[bytes], None],
                 close: Callable[[str], None], label: str = "mux client") -> None:
        self.host = host
        self.label = label
        self._write = write
        self._close = close
        self._decoder = MuxDecoder("server")
        self.open: dict[int, MuxChannelHandle] = {}   # client channel -> handle
        self.used: set[int] = set()                   # every id ever opened
        self.closed = False
        self.stray_bytes = 0          # data for channels never opened
        self._stray_reported = False

    # ---- controller -> client ------------------------------------------

    def start(self, vps: list[VpUpdate]) -> None:
        """Announce the VPs present now, then GO."""
        self._write(b"".join(encode_control(u) for u in vps) + encode_control(Go()))

    def vp_update(self, update: VpUpdate) -> None:
        if not self.closed:
            self._write(encode_control(update))

    def vp_depart(self, vp_id: int, channels: list[int]) -> None:
        """VP ``vp_id`` is gone; ``channels`` are this client's channels on it.

        sc_remoted sends no CHANNEL_CLOSE for them; they are forgotten (and
        their ids stay used)."""
        for ch in channels:
            self.open.pop(ch, None)
        if not self.closed:
            self._write(encode_control(VpDepart(vp_id)))

    def channel_data(self, channel: int, data: bytes) -> None:
        if not self.closed and channel in self.open and data:
            self._write(encode_data(channel, data))

    def channel_finished(self, channel: int) -> None:
        """The VP sent its FIN for ``channel``."""
        if self.open.pop(channel, None) is not None and not self.closed:
            self._write(encode_control(ChannelClose(channel)))

    # ---- client -> controller ------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        # A client may send every command in a frame of its own; one read's
        # data for a channel is passed on in one piece (feed_batch), so the
        # VP gets one frame, and sends one ACK, per read rather than per
        # command.  (ScamperCtrl sends a VP its next command when the VP
        # asks, so its reads rarely hold two frames for one channel.)
        try:
            events = self._decoder.feed_batch(data)
        except MuxError as e:
            bad = e
            events = e.events   # what came before the bad frame still counts
        else:
            bad = None
        try:
            for ev in events:
                if self.closed:
                    return
                if type(ev) is ChannelData:
                    h = self.open.get(ev.channel)
                    if h is not None:
                        h.write(ev.data)
                    else:
                        self._stray(ev.channel, len(ev.data))
                elif type(ev) is ChannelOpen:
                    self._channel_open(ev)
        except MuxError as e:
            bad = e
        if bad is not None and not self.closed:
            self._fail(f"protocol error: {bad}")

    def _stray(self, channel: int, n: int) -> None:
        self.stray_bytes += n
        if not self._stray_reported:
            self._stray_reported = True
            why = "finished" if channel in self.used else "never opened"
            self.host.mux_warn(self, f"data for channel {channel}, which it {why}, discarded "
                                     "(further such data is counted, not logged)")

    def _channel_open(self, ev: ChannelOpen) -> None:
        if ev.channel in self.used:
            raise MuxError(f"CHANNEL_OPEN reuses channel id {ev.channel}")
        # Registered before the host opens it: the VP side may answer at
        # once (MORE, list, cycle start), from inside mux_open.
        self.used.add(ev.channel)
        self.open[ev.channel] = _OPENING
        handle = self.host.mux_open(self, ev.vp_id, ev.channel)
        if handle is None:
            self.open.pop(ev.channel, None)
            raise MuxError(f"CHANNEL_OPEN for unknown VP id {ev.vp_id}")
        if ev.channel in self.open:
            self.open[ev.channel] = handle

    def _fail(self, reason: str) -> None:
        self.connection_lost()
        self._close(reason)

    def connection_lost(self) -> None:
        """The client went away (idempotent): finish every open channel."""
        if self.closed:
            return
        self.closed = True
        handles, self.open = list(self.open.values()), {}
        for h in handles:
            h.close()
