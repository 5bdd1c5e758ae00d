"""The reliability layer of scamper's remote protocol, for both roles, sans-IO.

Nothing here touches a socket.  Bytes come in through ``data_received``;
bytes go out through the ``write`` callable given to ``connection_made``;
time comes from an injected ``IReactorTime`` (``twisted.internet.task.Clock``
in tests).  Wire rules follow ``docs/scamper-protocols.md`` B.4-B.8 and the
checklist D.11-D.29.

VP role -- `VPSession` (used by the VP daemon)
---------------------------------------------
::

    s = VPSession(clock, events, name=b"mon1")        # magic: 8 random bytes
    s.connection_made(write, close)   # after TCP (+TLS) is up: sends MASTER_NEW,
                                      # or MASTER_RES when a session is held
    s.data_received(data)             # feed every byte read
    s.connection_lost()               # the transport went away (idempotent)
    s.send_data(channel, data)        # reliable; queued while disconnected
    s.send_fin(channel)               # reliable; the channel is then closed
    s.has_session / s.established / s.channels / s.master_id

``events`` is any object with these methods (see `VPEvents`)::

    established(master_id: bytes | None, resumed: bool)   # MASTER_ID / MASTER_OK
    rejected()              # MASTER_REJ: every channel is gone, counters are 0,
                            # a new magic is drawn; reconnect for MASTER_NEW
    channel_opened(ch)      # CHANNEL_NEW (already ACKed): start an attached
                            # warts source, send MORE + list + cycle-start
    channel_data(ch, data)  # user bytes, in order, exactly once
    channel_closed(ch)      # controller FIN: no more input on ch; finish the
                            # running tasks, then send_fin(ch)

The ``write`` contract (both roles): ``write(data)`` hands bytes to the
transport and must not block.  It may raise (a blocking socket's ``sendall``
on a reset connection does): the session then treats the transport as dead
-- ``close(reason)`` is called -- and nothing is lost, because a reliable
frame is queued for retransmission before it is written, and a received
frame is delivered to the owner before its ACK is written.  The owner's
callbacks may themselves send (and so fail) re-entrantly.

``close(reason)`` is called by the session when the link must be dropped
(protocol error, 60 s of silence, MASTER_REJ): the adapter should log the
one-line reason and close the transport.  The session has already detached
itself, so a later ``connection_lost()`` is harmless -- but an adapter that
has already called ``connection_made`` for a newer transport must not call
``connection_lost`` for the old one.  After a close because
of silence or an error the VP may reconnect at once; the session resumes
(MASTER_RES) and replays every unacknowledged frame after MASTER_OK.

Notes for the VP daemon: ``send_data`` splits into frames of at most
``chunk`` bytes (8184, like scamper); bytes sent while disconnected are
numbered and held, and go out after MASTER_OK (so the VP need not stop its
tasks during an outage).  Unlike 20211212 scamper, a MASTER_REJ empties the
retransmit queue and draws a new magic (as scamper 2026 does).  Timers
(KEEPALIVE after 30 s without sending, dead after 60 s without receiving)
run only while a transport is attached.  ``tests/remotestub.py`` (`StubVP`)
is a complete small driver over a blocking socket; it passes against our
controller and the real sc_remoted (tests/test_remoted_interop.py).

Controller role -- `ControllerCore` (used by ``twistd ixp-remoted``)
--------------------------------------------------------------------
::

    core = ControllerCore(clock, events, zombie_time=900)
    conn = core.connection(peer_id, write, close, authorize=None)
    conn.data_received(data); conn.connection_lost()
    sess = conn.session / core.sessions[magic]          # ControllerSession
    ch = sess.open_channel(); sess.channel_write(ch, data); sess.channel_close(ch)

``events`` (see `ControllerEvents`) is told ``vp_new``, ``vp_resumed``,
``vp_detached`` (zombie), ``vp_gone`` (state freed), ``channel_data``,
``channel_fin`` (the VP finished a channel) and, if it has the method,
``channel_drained`` (below).  ``authorize(name)`` may return a refusal reason
(TLS client-certificate name check); it is asked for the claimed name of a
MASTER_NEW, for the held name of a MASTER_RES, and -- when a MASTER_NEW
carries a magic we hold -- for the held name too: a VP may replace only a
session it could also have resumed.  ``admit(name, replaces)`` may refuse a
MASTER_NEW before any state is made (the daemon's admission policy).

Back-pressure (controller -> VP).  Every reliable frame stays in the
retransmit queue until the VP ACKs it, so a VP that is away (zombie) or not
reading would make the queue grow without bound.  The session counts the
payload bytes awaiting an ACK per channel (``unacked_bytes[ch]``) and in
total (``unacked_total``).  ``channel_write`` always accepts its bytes but
returns False once the channel holds ``channel_high`` (1 MiB) unacked bytes or
the whole VP ``vp_high`` (4 MiB): the owner should then stop reading from
that user.  When ACKs (or the MASTER_RES of a resume) bring the channel to
``channel_low`` (1/4 of high) and the VP to ``vp_low`` (1/2 of high),
``channel_drained(session, ch)`` is called once and the owner may read
again.  Memory per VP is so bounded by ``vp_high`` plus one read per user;
other VPs are unaffected.  The VP -> controller direction needs no window:
the controller delivers every frame at once (and the daemon bounds what a
slow user may have pending).
"""

from __future__ import annotations

import os
from collections import deque
from typing import Callable, Optional, Protocol

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from .frames import (
    HEADER, MAX_PAYLOAD, Ack, ChannelFin, ChannelNew, Frame, FrameDecoder, Keepalive,
    MasterId, MasterNew, MasterOk, MasterRej, MasterRes, ProtocolError, decode_control,
    encode_frame,
)

__all__ = [
    "KEEPALIVE_TIME", "DEAD_TIME", "HANDSHAKE_TIME", "ZOMBIE_TIME", "seq_diff",
    "VPSession", "VPEvents", "ControllerCore", "ControllerConnection", "ControllerSession",
    "ControllerEvents", "CHANNEL_HIGH", "VP_HIGH",
]

KEEPALIVE_TIME = 30.0   # send a KEEPALIVE after this long without sending
DEAD_TIME = 60.0        # nothing received for this long: the peer is gone
HANDSHAKE_TIME = 30.0   # controller: MASTER_NEW/RES must arrive within this
ZOMBIE_TIME = 900.0     # controller: keep a disconnected VP's state this long
VP_CHUNK = 8184         # VP -> controller data frames (what scamper uses)
CONTROLLER_CHUNK = 4096  # controller -> VP data frames (what sc_remoted uses)
CHANNEL_HIGH = 1 << 20   # controller: unacked bytes per channel before the user is paused
VP_HIGH = 4 << 20        # controller: unacked bytes per VP before its users are paused

_MASK = 0xFFFFFFFF
_ACK_HEAD = HEADER.pack  # (seq, channel, len)


def seq_diff(a: int, b: int) -> int:
    """Signed 32-bit serial difference a - b."""
    d = (a - b) & _MASK
    return d - (1 << 32) if d & 0x80000000 else d


Write = Callable[[bytes], None]
Close = Callable[[Optional[str]], None]


class _Link:
    """Sequence numbers, ACKs, retransmit queue and the keepalive/dead timers.

    Survives transports: ``_attach``/``_detach`` switch it between live and
    held.  While held, reliable frames are numbered and queued.
    """

    def __init__(self, clock: IReactorTime, keepalive: float, dead: float) -> None:
        self.clock = clock
        self.keepalive_time = keepalive
        self.dead_time = dead
        self.snd_nxt = 0
        self.rcv_nxt = 0
        self.unacked: deque[Frame] = deque()
        # Payload bytes of the data frames in ``unacked``, per channel and in
        # total: what the back-pressure of the controller role is based on.
        self.unacked_bytes: dict[int, int] = {}
        self.unacked_total = 0
        self._write: Optional[Write] = None   # set only while established
        self._close: Optional[Close] = None
        # ACKs due while one read is handled (see _hold_acks), or None
        self._held_acks: Optional[list[bytes]] = None
        self._last_send = 0.0
        self._last_recv = 0.0
        self._timer: Optional[IDelayedCall] = None
        self._timer_stops = 0   # counts _stop_timer calls (see _tick)

    # ---- transport -------------------------------------------------------

    @property
    def live(self) -> bool:
        """True while a transport is attached and the session established."""
        return self._write is not None

    def _start_timer(self) -> None:
        now = self.clock.seconds()
        self._last_send = self._last_recv = now
        self._schedule(now)

    def _schedule(self, now: float) -> None:
        due = min(self._last_recv + self.dead_time, self._last_send + self.keepalive_time)
        self._timer = self.clock.callLater(max(0.0, due - now), self._tick)

    def _stop_timer(self) -> None:
        self._timer_stops += 1
        if self._timer is not None:
            if self._timer.active():
                self._timer.cancel()
            self._timer = None

    def _tick(self) -> None:
        self._timer = None
        now = self.clock.seconds()
        if now - self._last_recv >= self.dead_time:
            self._fail(f"nothing received for {self.dead_time:g} s")
            return
        if self._write is not None and now - self._last_send >= self.keepalive_time:
            stops = self._timer_stops
            self._send_unreliable(Keepalive())
            if self._timer_stops != stops:  # the write failed and the link is down
                return
        self._schedule(now)

    def _fail(self, reason: str) -> None:
        raise NotImplementedError

    def _hold_acks(self) -> None:
        """Gather the ACKs due until :meth:`_release_acks` into one write.

        A write per received frame cost the controller as much as relaying
        the frame.  The contract is kept: each frame is delivered before its
        ACK is written (they are written after the whole read), and frames
        keep their order on the wire (anything written meanwhile carries
        the ACKs due before it in front of it).
        """
        if self._held_acks is None:
            self._held_acks = []

    def _release_acks(self) -> None:
        held, self._held_acks = self._held_acks, None
        if held and self._write is not None:
            self._raw(b"".join(held))

    def _raw(self, data: bytes) -> None:
        held = self._held_acks
        if held:
            data = b"".join(held) + data
            held.clear()
        self._last_send = self.clock.seconds()
        try:
            self._write(data)  # type: ignore[misc]
        except Exception as e:  # noqa: BLE001 -- any failing write means a dead link
            # The write contract (module docstring): a write may raise.  Every
            # reliable frame is queued before it is written and every received
            # frame is delivered before its ACK, so a broken link costs only a
            # resume: drop the transport and let the replay do the rest.
            self._fail(f"write failed: {e}")

    # ---- sending ---------------------------------------------------------

    def _send_reliable(self, channel: int, payload: bytes) -> None:
        f = Frame(self.snd_nxt, channel, payload)
        self.snd_nxt = (self.snd_nxt + 1) & _MASK
        self.unacked.append(f)
        if channel:
            n = len(payload)
            self.unacked_bytes[channel] = self.unacked_bytes.get(channel, 0) + n
            self.unacked_total += n
        if self._write is not None:
            self._raw(f.encode())

    def _send_unreliable(self, msg) -> None:
        if self._write is not None:
            self._raw(encode_frame(self.snd_nxt, 0, msg.encode()))

    def _send_chunked(self, channel: int, data: bytes, chunk: int) -> None:
        for i in range(0, len(data), chunk):
            self._send_reliable(channel, data[i:i + chunk])

    def _replay(self) -> None:
        if self.unacked:
            self._raw(b"".join(f.encode() for f in self.unacked))

    def _drop_acked_before(self, seq: int) -> None:
        """Discard held frames older than ``seq`` (the peer has them)."""
        q = self.unacked
        while q and seq_diff(q[0].seq, seq) < 0:
            self._acked(q.popleft())

    def _acked(self, f: Frame) -> None:
        """``f`` left the retransmit queue (the peer has it): update the counts."""
        ch = f.channel
        if ch:
            n = len(f.payload)
            left = self.unacked_bytes[ch] - n
            if left:
                self.unacked_bytes[ch] = left
            else:
                del self.unacked_bytes[ch]
            self.unacked_total -= n

    def _clear_unacked(self) -> None:
        self.unacked.clear()
        self.unacked_bytes.clear()
        self.unacked_total = 0

    # ---- receiving -------------------------------------------------------

    def _take(self, f: Frame) -> None:
        """The next frame of an established session is ``f``: check its seq."""
        self._last_recv = self.clock.seconds()
        if f.seq != self.rcv_nxt:
            raise ProtocolError(f"frame seq {f.seq}, expected {self.rcv_nxt}")

    def _handle(self, f: Frame) -> None:
        """Process one frame of an established session."""
        self._take(f)
        if f.channel != 0:
            # Deliver before acknowledging: once the ACK is on the wire the
            # peer may discard the frame, so it must have reached the owner.
            self.rcv_nxt = (f.seq + 1) & _MASK
            self._on_data(f.channel, f.payload)
            self._send_ack(f.seq)
            return
        msg = decode_control(f.payload)
        t = type(msg)
        if t is Ack:
            q = self.unacked
            if not q:
                raise ProtocolError(f"ACK {msg.seq} with nothing outstanding")
            if q[0].seq != msg.seq:
                raise ProtocolError(f"ACK {msg.seq} does not name the oldest unacked seq {q[0].seq}")
            self._acked(q.popleft())
        elif t is Keepalive:
            pass
        elif t is ChannelFin or t is ChannelNew:
            self.rcv_nxt = (f.seq + 1) & _MASK
            self._on_control(msg)
            self._send_ack(f.seq)
        else:
            raise ProtocolError(f"unexpected {t.__name__} in an established session")

    def _deliver_run(self, channel: int, parts: list[bytes], seqs: list[int]) -> None:
        """Data frames ``seqs`` of ``channel``, already checked and counted
        in ``rcv_nxt``: deliver their payloads as one piece, then ACK each."""
        self._on_data(channel, parts[0] if len(parts) == 1 else b"".join(parts))
        for seq in seqs:
            self._send_ack(seq)

    def _send_ack(self, seq: int) -> None:
        if self._write is not None:
            ack = _ACK_HEAD(self.snd_nxt, 0, 5) + b"\x05" + seq.to_bytes(4, "big")
            if self._held_acks is not None:
                self._held_acks.append(ack)
            else:
                self._raw(ack)

    def _on_data(self, channel: int, data: bytes) -> None:
        raise NotImplementedError

    def _on_control(self, msg) -> None:
        raise NotImplementedError


# ==========================================================================
# VP role


class VPEvents(Protocol):
    """What a `VPSession` tells its owner (the VP daemon)."""

    def established(self, master_id: Optional[bytes], resumed: bool) -> None: ...
    def rejected(self) -> None: ...
    def channel_opened(self, channel: int) -> None: ...
    def channel_data(self, channel: int, data: bytes) -> None: ...
    def channel_closed(self, channel: int) -> None: ...


class VPSession(_Link):
    """VP side of one scamper remote session; see the module docstring."""

    # handshake states
    IDLE, NEW_SENT, RES_SENT, ESTABLISHED = range(4)

    def __init__(self, clock: IReactorTime, events: VPEvents, name: Optional[bytes] = None,
                 magic: Optional[bytes] = None, keepalive: float = KEEPALIVE_TIME,
                 dead: float = DEAD_TIME, chunk: int = VP_CHUNK) -> None:
        super().__init__(clock, keepalive, dead)
        if chunk < 1 or chunk > MAX_PAYLOAD:
            raise ValueError("chunk must be 1..65535")
        self.events = events
        self.name = name
        self.magic = magic if magic is not None else os.urandom(8)
        self.chunk = chunk
        self.has_session = False     # a MASTER_ID was received and not rejected since
        self.master_id: Optional[bytes] = None
        self.channels: set[int] = set()
        self.state = self.IDLE
        self._decoder: Optional[FrameDecoder] = None
        self._transport_write: Optional[Write] = None

    @property
    def established(self) -> bool:
        return self.state == self.ESTABLISHED

    # ---- transport events ------------------------------------------------

    def connection_made(self, write: Write, close: Close) -> None:
        """A transport is up: start (MASTER_NEW) or resume (MASTER_RES)."""
        self.connection_lost()
        self._transport_write = write
        self._close = close
        self._decoder = FrameDecoder()
        if self.has_session:
            snd_una = self.unacked[0].seq if self.unacked else self.snd_nxt
            msg = MasterRes(self.magic, self.rcv_nxt, snd_una, self.snd_nxt)
            self.state = self.RES_SENT
        else:
            self._reset()
            msg = MasterNew(self.magic, self.name)
            self.state = self.NEW_SENT
        self._start_timer()
        self._last_send = self.clock.seconds()
        try:
            write(encode_frame(0, 0, msg.encode()))
        except Exception as e:  # noqa: BLE001 -- the write contract: a write may raise
            self._fail(f"write failed: {e}")

    def connection_lost(self) -> None:
        """The transport went away; keep the session for a resume."""
        self._stop_timer()
        self._write = None
        self._transport_write = None
        self._decoder = None
        self._close = None
        self.state = self.IDLE

    def data_received(self, data: bytes) -> None:
        dec = self._decoder
        if dec is None:
            return
        self._hold_acks()
        try:
            for f in dec.feed(data):
                if self.state == self.ESTABLISHED:
                    self._handle(f)
                else:
                    self._handshake(f)
                if self._decoder is not dec:  # closed while handling
                    return
        except ProtocolError as e:
            self._release_acks()  # the frames before the bad one were delivered
            self._fail(str(e))
        finally:
            self._release_acks()

    def _fail(self, reason: str) -> None:
        close = self._close
        self.connection_lost()
        if close is not None:
            close(reason)

    def _reset(self) -> None:
        self.snd_nxt = self.rcv_nxt = 0
        self._clear_unacked()
        self.channels.clear()
        self.master_id = None

    def _handshake(self, f: Frame) -> None:
        self._last_recv = self.clock.seconds()
        if f.channel != 0 or f.seq != 0:
            raise ProtocolError(f"frame seq {f.seq} channel {f.channel} before the session is established")
        msg = decode_control(f.payload)
        t = type(msg)
        if t is MasterId and self.state == self.NEW_SENT:
            self.master_id = msg.id
            self.has_session = True
            self._go_live()
            self.events.established(msg.id, False)
        elif t is MasterOk and self.state == self.RES_SENT:
            x = msg.rcv_nxt
            snd_una = self.unacked[0].seq if self.unacked else self.snd_nxt
            if not (seq_diff(x, snd_una) >= 0 and seq_diff(self.snd_nxt, x) >= 0):
                raise ProtocolError(f"MASTER_OK {x} outside [{snd_una}, {self.snd_nxt}]")
            self._drop_acked_before(x)
            self._go_live()
            self._replay()
            self.events.established(self.master_id, True)
        elif t is MasterRej and self.state == self.RES_SENT:
            self.has_session = False
            self._reset()
            self.magic = os.urandom(len(self.magic))
            self.events.rejected()
            self._fail("resume rejected by the controller (MASTER_REJ)")
        else:
            raise ProtocolError(f"unexpected {t.__name__} during the handshake")

    def _go_live(self) -> None:
        self.state = self.ESTABLISHED
        self._write = self._transport_write

    # ---- channel traffic -------------------------------------------------

    def _on_data(self, channel: int, data: bytes) -> None:
        if channel in self.channels:
            self.events.channel_data(channel, data)
        # else: a channel we finished -- ACKed above and discarded (D.28)

    def _on_control(self, msg) -> None:
        if type(msg) is ChannelNew:
            if msg.channel in self.channels:
                raise ProtocolError(f"CHANNEL_NEW for open channel {msg.channel}")
            self.channels.add(msg.channel)
            self.events.channel_opened(msg.channel)
        elif msg.channel in self.channels:
            self.events.channel_closed(msg.channel)

    def send_data(self, channel: int, data: bytes) -> None:
        """Send ``data`` on ``channel`` reliably (queued while disconnected)."""
        if channel not in self.channels:
            raise ValueError(f"channel {channel} is not open")
        if data:
            self._send_chunked(channel, data, self.chunk)

    def send_fin(self, channel: int) -> None:
        """Finish ``channel``; nothing more may be sent on it."""
        if channel not in self.channels:
            raise ValueError(f"channel {channel} is not open")
        self.channels.discard(channel)
        self._send_reliable(0, ChannelFin(channel).encode())


# ==========================================================================
# Controller role


class ControllerEvents(Protocol):
    """What the `ControllerCore` tells the daemon."""

    def vp_new(self, session: ControllerSession) -> None: ...
    def vp_resumed(self, session: ControllerSession) -> None: ...
    def vp_detached(self, session: ControllerSession, reason: str) -> None: ...
    def vp_gone(self, session: ControllerSession, reason: str) -> None: ...
    def channel_data(self, session: ControllerSession, channel: int, data: bytes) -> None: ...
    def channel_fin(self, session: ControllerSession, channel: int) -> None: ...
    # optional: def channel_drained(self, session, channel) -> None -- a channel
    # whose channel_write returned False may be written again (back-pressure)


class ControllerSession(_Link):
    """Controller-side state of one VP session (keyed by its magic).

    Outlives TCP connections: after a disconnect it is a zombie until the
    VP resumes or the zombie time ends.
    """

    def __init__(self, core: ControllerCore, magic: bytes, name: Optional[bytes],
                 peer_id: str) -> None:
        super().__init__(core.clock, core.keepalive_time, core.dead_time)
        self.core = core
        self.magic = magic
        self.name = name
        self.peer_id = peer_id          # MASTER_ID string of the first connection
        self.current_peer = peer_id
        self.conn: Optional[ControllerConnection] = None
        self.channels: dict[int, bool] = {}   # channel -> FIN already sent by us
        self._next_channel = 1
        self._zombie: Optional[IDelayedCall] = None
        self.gone = False
        self.context: object = None      # for the daemon's own use
        # channels whose last channel_write returned False: each gets one
        # channel_drained event once it may take more (see channel_write)
        self._blocked: set[int] = set()

    @property
    def label(self) -> str:
        """``[monitor-]addr``, as sc_remoted names the VP's socket."""
        if self.name:
            return f"{self.name.decode('ascii')}-{self.peer_id}"
        return self.peer_id

    # ---- channels --------------------------------------------------------

    def open_channel(self) -> int:
        """A user connected: allocate a channel and send CHANNEL_NEW."""
        if self.gone:
            raise ValueError("VP session is gone")
        ch = self._next_channel
        while ch == 0 or ch in self.channels:
            ch = (ch + 1) & _MASK
        self._next_channel = (ch + 1) & _MASK
        self.channels[ch] = False
        self._send_reliable(0, ChannelNew(ch).encode())
        return ch

    def channel_write(self, channel: int, data: bytes) -> bool:
        """User bytes for the VP (dropped once we sent our FIN).

        Always accepted (never dropped, never raises for a full window).
        Returns False when the caller should stop producing for this
        channel: its unacknowledged bytes reached the core's
        ``channel_high``, or this VP's total reached ``vp_high``.  The
        events' ``channel_drained(session, channel)`` then follows once, when
        both are back at or below ``channel_low`` / ``vp_low``.
        """
        if self.channels.get(channel) is not False or not data or self.gone:
            return True
        self._send_chunked(channel, data, CONTROLLER_CHUNK)
        core = self.core
        if (channel in self._blocked or self.unacked_bytes.get(channel, 0) >= core.channel_high
                or self.unacked_total >= core.vp_high):
            if channel in self.channels:  # (a failing write may have freed us meanwhile)
                self._blocked.add(channel)
            return False
        return True

    def channel_writable(self, channel: int) -> bool:
        """False between a channel_write that returned False and its channel_drained."""
        return channel not in self._blocked

    def _drained(self, channel: int) -> bool:
        core = self.core
        return (self.unacked_bytes.get(channel, 0) <= core.channel_low
                and self.unacked_total <= core.vp_low)

    def _acked(self, f: Frame) -> None:
        super()._acked(f)
        blocked = self._blocked
        if blocked and (f.channel in blocked or self.unacked_total <= self.core.vp_low):
            drained = self.core.events_drained
            for ch in [c for c in blocked if self._drained(c)]:
                blocked.discard(ch)
                if drained is not None:
                    drained(self, ch)

    def channel_close(self, channel: int) -> None:
        """The user went away: send CHANNEL_FIN unless the VP already ended it."""
        self._blocked.discard(channel)
        if self.channels.get(channel) is False and not self.gone:
            self.channels[channel] = True
            self._send_reliable(0, ChannelFin(channel).encode())

    def _on_data(self, channel: int, data: bytes) -> None:
        if channel in self.channels:
            self.core.events.channel_data(self, channel, data)
        # else: unknown/finished channel: ACKed and discarded (D.28)

    def _on_control(self, msg) -> None:
        if type(msg) is ChannelNew:
            raise ProtocolError("CHANNEL_NEW from a VP")
        self._blocked.discard(msg.channel)
        if self.channels.pop(msg.channel, None) is not None:
            self.core.events.channel_fin(self, msg.channel)

    # ---- connection management ------------------------------------------

    def _adopt(self, conn: ControllerConnection) -> None:
        self._cancel_zombie()
        self.conn = conn
        self.current_peer = conn.peer_id
        self._close = conn._do_close
        self._write = conn._write
        self._start_timer()

    def _fail(self, reason: str) -> None:
        """Dead peer (timer): drop the connection, become a zombie."""
        conn = self.conn
        if conn is not None:
            conn._abandon(reason, quiet=True)
        self.detach(reason)

    def detach(self, reason: str) -> None:
        """The connection is gone: keep the state as a zombie (or free it)."""
        if self.conn is None:
            return
        self._stop_timer()
        self.conn = None
        self._write = None
        self._close = None
        zt = self.core.zombie_time
        if zt <= 0:
            self.core._free(self, f"{reason}; zombie time is 0")
            return
        self._zombie = self.clock.callLater(zt, self._expire)
        self.core.events.vp_detached(self, reason)

    def _expire(self) -> None:
        self._zombie = None
        self.core._free(self, f"no resume within the zombie time ({self.core.zombie_time:g} s)")

    def _cancel_zombie(self) -> None:
        if self._zombie is not None:
            if self._zombie.active():
                self._zombie.cancel()
            self._zombie = None

    def terminate(self, reason: str) -> None:
        """Free this VP's state now (users get EOF via ``vp_gone``)."""
        self.core._free(self, reason)


class ControllerConnection:
    """One accepted TCP connection, before and after its handshake."""

    def __init__(self, core: ControllerCore, peer_id: str, write: Write, close: Close,
                 authorize: Optional[Callable[[Optional[bytes]], Optional[str]]],
                 admit: Optional[Callable[[Optional[bytes], bool], Optional[str]]] = None) -> None:
        self.core = core
        self.peer_id = peer_id
        self._write = write
        self._close_cb: Optional[Close] = close
        self.authorize = authorize
        self.admit = admit
        self.session: Optional[ControllerSession] = None
        self._decoder: Optional[FrameDecoder] = FrameDecoder(core.max_payload)
        self._timer: Optional[IDelayedCall] = core.clock.callLater(
            core.handshake_time, self._slow)

    @property
    def closed(self) -> bool:
        return self._decoder is None

    def _slow(self) -> None:
        self._timer = None
        self._do_close(f"no MASTER_NEW/MASTER_RES within {self.core.handshake_time:g} s")

    def _cancel(self) -> None:
        if self._timer is not None:
            if self._timer.active():
                self._timer.cancel()
            self._timer = None

    def _abandon(self, reason: str, quiet: bool = False) -> None:
        """Close the transport without touching the session (it handles itself).

        ``quiet``: the reason reaches the daemon through ``vp_detached`` /
        ``vp_gone``, so the close callback gets None (one log line per event).
        """
        self._cancel()
        self._decoder = None
        self.session = None
        cb, self._close_cb = self._close_cb, None
        if cb is not None:
            cb(None if quiet else reason)

    def _do_close(self, reason: str) -> None:
        sess = self.session
        live = sess is not None and sess.conn is self
        self._abandon(reason, quiet=live)
        if live:
            sess.detach(reason)

    def connection_lost(self, reason: str = "connection lost") -> None:
        """The transport closed (idempotent)."""
        self._close_cb = None
        if self._decoder is None:
            return
        self._cancel()
        self._decoder = None
        sess, self.session = self.session, None
        if sess is not None and sess.conn is self:
            sess.detach(reason)

    def data_received(self, data: bytes) -> None:
        dec = self._decoder
        if dec is None:
            return
        held = None  # the session whose ACKs this read gathers (see _Link._hold_acks)
        # A run of data frames for one channel is delivered as one piece: a
        # VP sends every reply line as a frame of its own, and relaying each
        # on its own (to a user, a mux client) cost more than parsing it.
        # Each frame is still checked and ACKed on its own, its ACK queued
        # once the run holding it has been delivered.
        run: list = []            # the run's frames, all of channel run[0].channel

        def deliver_run() -> None:
            frames = run[:]
            run.clear()
            held._deliver_run(frames[0].channel, [f.payload for f in frames],  # type: ignore[union-attr]
                              [f.seq for f in frames])

        try:
            for f in dec.feed(data):
                sess = self.session
                if run and (sess is not held or not f.channel or f.channel != run[0].channel):
                    deliver_run()
                    if self._decoder is not dec:
                        return
                    sess = self.session
                if sess is None:
                    self._handshake(f)
                elif sess is not held:
                    if held is not None:
                        held._release_acks()
                    sess._hold_acks()
                    held = sess
                if sess is not None:
                    if f.channel:
                        sess._take(f)
                        sess.rcv_nxt = (f.seq + 1) & _MASK
                        run.append(f)
                        continue
                    sess._handle(f)
                if self._decoder is not dec:
                    return
        except ProtocolError as e:
            if held is not None:
                if run:
                    deliver_run()   # the frames before the bad one: delivered and ACKed
                held._release_acks()
                held = None
            self._do_close(f"protocol error: {e}")
        finally:
            if held is not None:
                if run:
                    deliver_run()
                held._release_acks()

    def _handshake(self, f: Frame) -> None:
        if f.channel != 0 or f.seq != 0:
            raise ProtocolError(f"first frame has seq {f.seq} channel {f.channel}, expected a MASTER_NEW/RES")
        msg = decode_control(f.payload)
        core = self.core
        if type(msg) is MasterNew:
            if self.authorize is not None:
                refusal = self.authorize(msg.name)
                if refusal:
                    raise ProtocolError(refusal)
            old = core.sessions.get(msg.magic)
            if old is not None and self.authorize is not None:
                # Holding the magic is not enough to take over a session:
                # the new VP must be one that could resume it (MASTER_RES
                # checks the held name; so must this).
                problem = self.authorize(old.name)
                if problem:
                    self._do_close(f"MASTER_NEW refused: its magic belongs to VP {old.label}, "
                                   f"which this connection may not replace ({problem})")
                    return
            if self.admit is not None:
                refusal = self.admit(msg.name, old is not None)
                if refusal:
                    self._do_close(f"registration refused: {refusal}")
                    return
            if old is not None:
                old.terminate("replaced by a MASTER_NEW with the same magic")
            self._cancel()
            sess = ControllerSession(core, msg.magic, msg.name, self.peer_id)
            core.sessions[msg.magic] = sess
            self.session = sess
            core.events.vp_new(sess)
            if sess.gone:  # the daemon refused it (and logged why)
                self._abandon("VP refused by the controller")
                return
            self._write(encode_frame(0, 0, MasterId(self.peer_id.encode("ascii")).encode()))
            sess._adopt(self)
        elif type(msg) is MasterRes:
            sess = core.sessions.get(msg.magic)
            problem = None
            if sess is None:
                problem = "unknown magic"
            elif self.authorize is not None:
                problem = self.authorize(sess.name)
            if problem is None:
                problem = _check_resume(sess, msg)
            if problem is not None:
                self._write(encode_frame(0, 0, MasterRej().encode()))
                self._do_close(f"MASTER_RES refused: {problem}")
                return
            old = sess.conn
            if old is not None:  # a live old connection: replace it, no zombie
                sess._stop_timer()
                sess.conn = None
                old._abandon("replaced by a resumed connection")
            self._cancel()
            sess._drop_acked_before(msg.rcv_nxt)
            self.session = sess
            self._write(encode_frame(0, 0, MasterOk(sess.rcv_nxt).encode()))
            sess._adopt(self)
            sess._replay()
            core.events.vp_resumed(sess)
        else:
            raise ProtocolError(f"first message is {type(msg).__name__}, expected MASTER_NEW/RES")


def _check_resume(sess: ControllerSession, res: MasterRes) -> Optional[str]:
    # The VP must be missing nothing we no longer hold ...
    if res.rcv_nxt != sess.snd_nxt and not any(f.seq == res.rcv_nxt for f in sess.unacked):
        return f"VP expects seq {res.rcv_nxt}, we are at {sess.snd_nxt} and do not hold it"
    # ... and we must be missing nothing the VP no longer holds.
    if not (seq_diff(sess.rcv_nxt, res.snd_una) >= 0 and seq_diff(res.snd_nxt, sess.rcv_nxt) >= 0):
        return f"our rcv_nxt {sess.rcv_nxt} is outside the VP's [{res.snd_una}, {res.snd_nxt}]"
    return None


class ControllerCore:
    """All VP sessions of a controller, keyed by magic; see the module docstring."""

    def __init__(self, clock: IReactorTime, events: ControllerEvents,
                 zombie_time: float = ZOMBIE_TIME, handshake_time: float = HANDSHAKE_TIME,
                 keepalive: float = KEEPALIVE_TIME, dead: float = DEAD_TIME,
                 max_payload: int = MAX_PAYLOAD, channel_high: int = CHANNEL_HIGH,
                 channel_low: Optional[int] = None, vp_high: int = VP_HIGH,
                 vp_low: Optional[int] = None) -> None:
        self.clock = clock
        self.events = events
        # Back-pressure bounds (bytes unacknowledged by the VP); see channel_write.
        self.channel_high = channel_high
        self.channel_low = channel_high // 4 if channel_low is None else channel_low
        self.vp_high = vp_high
        self.vp_low = vp_high // 2 if vp_low is None else vp_low
        if not (0 <= self.channel_low < self.channel_high and 0 <= self.vp_low < self.vp_high):
            raise ValueError("back-pressure bounds need 0 <= low < high")
        # optional event: owners written before back-pressure existed lack it
        self.events_drained = getattr(events, "channel_drained", None)
        self.zombie_time = zombie_time
        self.handshake_time = handshake_time
        self.keepalive_time = keepalive
        self.dead_time = dead
        self.max_payload = max_payload
        self.sessions: dict[bytes, ControllerSession] = {}

    def connection(self, peer_id: str, write: Write, close: Close,
                   authorize: Optional[Callable[[Optional[bytes]], Optional[str]]] = None,
                   admit: Optional[Callable[[Optional[bytes], bool], Optional[str]]] = None
                   ) -> ControllerConnection:
        """A VP connected from ``peer_id`` (``a.b.c.d:port`` / ``v6.port``).

        ``write`` sends bytes, ``close(reason)`` must close the transport
        (the adapter logs the reason; None when the reason comes as a
        ``vp_detached``/``vp_gone`` event instead).  ``authorize(monitor_name)`` returns
        None to allow or a reason to refuse.  ``admit(monitor_name,
        replaces)`` is asked last for a MASTER_NEW (``replaces``: it carries
        a magic we hold) and may refuse it the same way; it may free other
        sessions meanwhile.
        """
        return ControllerConnection(self, peer_id, write, close, authorize, admit)

    def _free(self, sess: ControllerSession, reason: str) -> None:
        if sess.gone:
            return
        sess.gone = True
        sess._cancel_zombie()
        sess._stop_timer()
        conn = sess.conn
        sess.conn = None
        sess._write = None
        if conn is not None:
            conn._abandon(reason, quiet=True)
        if self.sessions.get(sess.magic) is sess:
            del self.sessions[sess.magic]
        sess._clear_unacked()
        sess._blocked.clear()
        self.events.vp_gone(sess, reason)
        sess.channels.clear()

    def shutdown(self, reason: str = "controller stopping") -> None:
        """Free every session (on service stop)."""
        for sess in list(self.sessions.values()):
            self._free(sess, reason)
