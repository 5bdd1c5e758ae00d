"""Framing of scamper's remote protocol (scamper ``-R`` <-> sc_remoted ``-P``).

Every message in both directions is a 10-byte big-endian header
``u32 seq, u32 channel, u16 len`` followed by ``len`` payload bytes
(1...65535).  Channel 0 carries control messages: one type byte and a body.
Other channels carry raw text-protocol bytes.

This module is sans-IO: `Frame` and the control-message classes encode to
bytes and decode from bytes; `FrameDecoder` turns an arbitrarily chunked
byte stream into frames.  Anything malformed raises `ProtocolError` with a
one-line reason.
"""

from __future__ import annotations

import struct
from typing import ClassVar, Union

import attrs

__all__ = [
    "HEADER_LEN", "MAX_PAYLOAD", "SEQ_MOD", "ProtocolError", "Frame", "FrameDecoder",
    "MasterNew", "MasterId", "ChannelNew", "ChannelFin", "Keepalive", "Ack",
    "MasterRes", "MasterRej", "MasterOk", "ControlMessage", "decode_control",
    "encode_frame", "valid_monitor_name",
]

HEADER = struct.Struct(">IIH")
HEADER_LEN = HEADER.size  # 10
MAX_PAYLOAD = 0xFFFF
SEQ_MOD = 1 << 32

_U32 = struct.Struct(">I")
_RES_TAIL = struct.Struct(">III")

# Allowed monitor-name characters, as scamper and sc_remoted accept them.
_NAME_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-")
MAX_NAME = 254


class ProtocolError(Exception):
    """The peer sent something the remote protocol does not allow.

    The message is a single line suitable for a log.
    """


def valid_monitor_name(name: bytes) -> bool:
    """True when ``name`` (without its NUL) is a safe monitor name.

    Only ``A-Z a-z 0-9 . -`` as scamper allows, at most 254 bytes, and, since
    the name becomes part of a file name, never ``.``/``..`` sequences nor a
    leading dot.
    """
    return (0 < len(name) <= MAX_NAME and all(c in _NAME_CHARS for c in name)
            and b".." not in name and not name.startswith(b"."))


def _describe(name: bytes) -> str:
    return repr(name[:40])[2:-1]


@attrs.frozen
class Frame:
    """One frame: sequence number, channel (0 = control) and payload."""

    seq: int
    channel: int
    payload: bytes

    def encode(self) -> bytes:
        return encode_frame(self.seq, self.channel, self.payload)


def encode_frame(seq: int, channel: int, payload: bytes) -> bytes:
    """Header + payload bytes of one frame."""
    n = len(payload)
    if not 0 < n <= MAX_PAYLOAD:
        raise ValueError(f"frame payload of {n} bytes (must be 1..{MAX_PAYLOAD})")
    return HEADER.pack(seq & 0xFFFFFFFF, channel, n) + payload


class FrameDecoder:
    """Incremental decoder: ``feed(bytes)`` returns the complete frames so far.

    ``max_payload`` may be set below 65535 to refuse oversized frames early.
    After a `ProtocolError` the decoder must not be used again.
    """

    __slots__ = ("_buf", "_pos", "_rest", "max_payload")

    def __init__(self, max_payload: int = MAX_PAYLOAD) -> None:
        self._buf = bytearray()
        self._pos = 0
        self._rest = 0
        self.max_payload = max_payload

    @property
    def buffered(self) -> int:
        """Bytes held that do not yet make a whole frame."""
        return len(self._buf) - self._pos

    def feed(self, data: bytes) -> list[Frame]:
        buf = self._buf
        if not buf:
            # Fast path: parse straight from ``data``; buffer only the tail.
            out = self._parse(data, 0, len(data))
            rest = self._rest
            if rest < len(data):
                buf += data[rest:]
            return out
        buf += data
        out = self._parse(buf, self._pos, len(buf))
        pos = self._rest
        # Compact lazily so a stream of small frames is not quadratic.
        if pos == len(buf):
            buf.clear()
            pos = 0
        elif pos > 65536:
            del buf[:pos]
            pos = 0
        self._pos = pos
        return out

    def _parse(self, buf, pos: int, end: int) -> list[Frame]:
        """Frames in buf[pos:end]; sets ``_rest`` to where the unparsed tail starts."""
        out: list[Frame] = []
        unpack = HEADER.unpack_from
        maxp = self.max_payload
        view = memoryview(buf)  # one copy per payload, none for slicing
        try:
            while end - pos >= HEADER_LEN:
                seq, channel, n = unpack(buf, pos)
                if n == 0:
                    raise ProtocolError(f"zero-length frame (seq {seq}, channel {channel})")
                if n > maxp:
                    raise ProtocolError(f"frame of {n} bytes exceeds the limit of {maxp}")
                stop = pos + HEADER_LEN + n
                if stop > end:
                    break
                out.append(Frame(seq, channel, view[pos + HEADER_LEN:stop].tobytes()))
                pos = stop
        finally:
            view.release()
        self._rest = pos
        return out


# --------------------------------------------------------------------------
# Channel-0 control messages.  `encode()` gives the payload (type byte +
# body); `decode_control(payload)` parses one.


def _take_lv(body: bytes, pos: int, what: str) -> tuple[bytes, int]:
    if pos >= len(body):
        raise ProtocolError(f"{what}: length byte missing")
    n = body[pos]
    pos += 1
    if pos + n > len(body):
        raise ProtocolError(f"{what}: {n} bytes announced, {len(body) - pos} present")
    return bytes(body[pos:pos + n]), pos + n


def _exact(body: bytes, n: int, what: str) -> None:
    if len(body) != n:
        raise ProtocolError(f"{what}: body of {len(body)} bytes, expected {n}")


@attrs.frozen
class MasterNew:
    """VP -> controller: start a new session.  ``name`` is the monitor name
    without its terminating NUL, or None when the VP sent none."""

    TYPE: ClassVar[int] = 0
    magic: bytes
    name: bytes | None = None

    def encode(self) -> bytes:
        if not 0 < len(self.magic) < 256:
            raise ValueError("magic must be 1..255 bytes")
        if self.name is None:
            return bytes((0, len(self.magic))) + self.magic + b"\x00"
        nb = self.name + b"\x00"
        if len(nb) > 255:
            raise ValueError("monitor name too long")
        return bytes((0, len(self.magic))) + self.magic + bytes((len(nb),)) + nb

    @classmethod
    def decode(cls, body: bytes) -> MasterNew:
        magic, pos = _take_lv(body, 0, "MASTER_NEW magic")
        if not magic:
            raise ProtocolError("MASTER_NEW with an empty magic")
        if pos == len(body):
            return cls(magic, None)  # sc_remoted accepts the nlen byte absent
        raw, pos = _take_lv(body, pos, "MASTER_NEW name")
        if pos != len(body):
            raise ProtocolError(f"MASTER_NEW: {len(body) - pos} bytes after the name")
        if not raw:
            return cls(magic, None)
        if raw[-1] != 0:
            raise ProtocolError("MASTER_NEW: monitor name not NUL-terminated")
        name = raw[:-1]
        if not name:
            return cls(magic, None)
        if not valid_monitor_name(name):
            raise ProtocolError(f"MASTER_NEW: bad monitor name '{_describe(name)}'")
        return cls(magic, name)


@attrs.frozen
class MasterId:
    """Controller -> VP: the session's id string (sc_remoted: ``addr:port``)."""

    TYPE: ClassVar[int] = 1
    id: bytes

    def encode(self) -> bytes:
        nb = self.id + b"\x00"
        if len(nb) > 255:
            raise ValueError("MASTER_ID too long")
        return bytes((1, len(nb))) + nb

    @classmethod
    def decode(cls, body: bytes) -> MasterId:
        raw, pos = _take_lv(body, 0, "MASTER_ID")
        if pos != len(body):
            raise ProtocolError("MASTER_ID: trailing bytes")
        if not raw or raw[-1] != 0:
            raise ProtocolError("MASTER_ID: not NUL-terminated")
        ident = raw[:-1]
        if not ident or not all(0x20 <= c < 0x7F for c in ident):
            raise ProtocolError("MASTER_ID: empty or not printable")
        return cls(ident)


@attrs.frozen
class ChannelNew:
    """Controller -> VP (reliable): a user opened channel ``channel``."""

    TYPE: ClassVar[int] = 2
    channel: int

    def encode(self) -> bytes:
        return b"\x02" + _U32.pack(self.channel)

    @classmethod
    def decode(cls, body: bytes) -> ChannelNew:
        _exact(body, 4, "CHANNEL_NEW")
        ch = _U32.unpack(body)[0]
        if ch == 0:
            raise ProtocolError("CHANNEL_NEW for channel 0")
        return cls(ch)


@attrs.frozen
class ChannelFin:
    """Either direction (reliable): the sender is done with ``channel``."""

    TYPE: ClassVar[int] = 3
    channel: int

    def encode(self) -> bytes:
        return b"\x03" + _U32.pack(self.channel)

    @classmethod
    def decode(cls, body: bytes) -> ChannelFin:
        _exact(body, 4, "CHANNEL_FIN")
        ch = _U32.unpack(body)[0]
        if ch == 0:
            raise ProtocolError("CHANNEL_FIN for channel 0")
        return cls(ch)


@attrs.frozen
class Keepalive:
    """Either direction (unreliable): nothing to say for 30 s."""

    TYPE: ClassVar[int] = 4

    def encode(self) -> bytes:
        return b"\x04"

    @classmethod
    def decode(cls, body: bytes) -> Keepalive:
        _exact(body, 0, "KEEPALIVE")
        return cls()


@attrs.frozen
class Ack:
    """Either direction (unreliable): acknowledges the reliable frame ``seq``."""

    TYPE: ClassVar[int] = 5
    seq: int

    def encode(self) -> bytes:
        return b"\x05" + _U32.pack(self.seq)

    @classmethod
    def decode(cls, body: bytes) -> Ack:
        _exact(body, 4, "ACK")
        return cls(_U32.unpack(body)[0])


@attrs.frozen
class MasterRes:
    """VP -> controller: resume the session named by ``magic``."""

    TYPE: ClassVar[int] = 6
    magic: bytes
    rcv_nxt: int
    snd_una: int
    snd_nxt: int

    def encode(self) -> bytes:
        if not 0 < len(self.magic) < 256:
            raise ValueError("magic must be 1..255 bytes")
        return (bytes((6, len(self.magic))) + self.magic
                + _RES_TAIL.pack(self.rcv_nxt, self.snd_una, self.snd_nxt))

    @classmethod
    def decode(cls, body: bytes) -> MasterRes:
        magic, pos = _take_lv(body, 0, "MASTER_RES magic")
        if not magic:
            raise ProtocolError("MASTER_RES with an empty magic")
        if len(body) - pos != 12:
            raise ProtocolError(f"MASTER_RES: {len(body) - pos} bytes after the magic, expected 12")
        return cls(magic, *_RES_TAIL.unpack_from(body, pos))


@attrs.frozen
class MasterRej:
    """Controller -> VP: resume refused; start a new session."""

    TYPE: ClassVar[int] = 7

    def encode(self) -> bytes:
        return b"\x07"

    @classmethod
    def decode(cls, body: bytes) -> MasterRej:
        _exact(body, 0, "MASTER_REJ")
        return cls()


@attrs.frozen
class MasterOk:
    """Controller -> VP: resume accepted; ``rcv_nxt`` is the next seq the
    controller expects from the VP."""

    TYPE: ClassVar[int] = 8
    rcv_nxt: int

    def encode(self) -> bytes:
        return b"\x08" + _U32.pack(self.rcv_nxt)

    @classmethod
    def decode(cls, body: bytes) -> MasterOk:
        _exact(body, 4, "MASTER_OK")
        return cls(_U32.unpack(body)[0])


ControlMessage = Union[MasterNew, MasterId, ChannelNew, ChannelFin, Keepalive, Ack,
                       MasterRes, MasterRej, MasterOk]

_BY_TYPE = {c.TYPE: c for c in (MasterNew, MasterId, ChannelNew, ChannelFin, Keepalive,
                                 Ack, MasterRes, MasterRej, MasterOk)}
CONTROL_NAMES = {c.TYPE: c.__name__ for c in _BY_TYPE.values()}


def decode_control(payload: bytes) -> ControlMessage:
    """Parse a channel-0 payload into its control message."""
    if not payload:
        raise ProtocolError("empty control message")
    cls = _BY_TYPE.get(payload[0])
    if cls is None:
        raise ProtocolError(f"unknown control message type {payload[0]}")
    return cls.decode(payload[1:])
