"""Framing of sc_remoted's mux socket (scamper 2026, ``sc_remoted -M``).

One unix stream socket carries every VP a controller holds.  Each frame is
``u32 channel, u32 len`` (big-endian) and ``len`` payload bytes.  Channel 0
carries control messages (``u16 type`` and a body); any other channel is a
client-chosen id carrying the text control protocol of one VP channel,
byte for byte as a per-VP socket would (``docs/scamper-protocols.md`` C.3).

This module is sans-IO and serves both ends: the controller decodes what a
client sends (`MuxDecoder`, role ``"server"``) and the client decodes what
the controller sends (role ``"client"``).  Channel data is streamed: a
frame's payload is handed out in the pieces it arrives in, so a huge
announced length never makes the decoder buffer it.  Control payloads are
buffered whole, up to `MAX_CONTROL` bytes.
"""

from __future__ import annotations

import struct
from typing import Iterator, Union

import attrs

__all__ = [
    "HEADER", "MAX_CONTROL", "MuxError", "Attr", "VpUpdate", "VpDepart", "Go",
    "ChannelOpen", "ChannelClose", "ChannelData", "MuxControl", "MuxDecoder",
    "encode_control", "encode_data", "ATTR_NAMES",
]

HEADER = struct.Struct(">II")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U32x2 = struct.Struct(">II")

#: The largest channel-0 message we accept.  sc_remoted builds VP_UPDATE in
#: a 1024-byte buffer; a client's control messages are 10 bytes.
MAX_CONTROL = 65536

VP_UPDATE, VP_DEPART, GO, CHANNEL_OPEN, CHANNEL_CLOSE = range(5)


class Attr:
    """VP_UPDATE attribute codes (the wire values, not the C header comment's)."""

    NAME = 1
    ARRIVAL = 2
    IPV4 = 3
    ASN4 = 4
    CC = 5
    ST = 6
    PLACE = 7
    LATLONG = 8
    SHORTNAME = 9
    TAG = 10
    IATA = 11
    IPV6 = 12
    ASN6 = 13


#: attribute code -> the name ScamperCtrl / the metadata file use
ATTR_NAMES = {
    Attr.NAME: "name", Attr.ARRIVAL: "arrival", Attr.IPV4: "ipv4", Attr.ASN4: "asn4",
    Attr.CC: "cc", Attr.ST: "st", Attr.PLACE: "place", Attr.LATLONG: "latlong",
    Attr.SHORTNAME: "shortname", Attr.TAG: "tag", Attr.IATA: "iata", Attr.IPV6: "ipv6",
    Attr.ASN6: "asn6",
}


class MuxError(Exception):
    """The peer broke the mux protocol; the message is one log line.

    Raised by `MuxDecoder.feed_batch`, ``events`` holds what was decoded
    before the fault (in order), as `MuxDecoder.feed` would have yielded it."""

    events: "list | tuple" = ()


@attrs.frozen
class VpUpdate:
    """A VP is (or became) available: its id and ``(code, value)`` attributes."""

    vp_id: int
    attrs: tuple[tuple[int, str], ...] = ()

    def encode_body(self) -> bytes:
        out = [_U16.pack(VP_UPDATE), _U32.pack(self.vp_id)]
        for code, value in self.attrs:
            raw = value.encode("utf-8")
            if b"\0" in raw:
                raise ValueError(f"attribute {code} contains a NUL byte")
            out += [_U16.pack(code), raw, b"\0"]
        return b"".join(out)

    def get(self, code: int) -> str | None:
        """The first value of attribute ``code``, or None."""
        for c, v in self.attrs:
            if c == code:
                return v
        return None

    def all(self, code: int) -> list[str]:
        """Every value of attribute ``code`` (tags repeat)."""
        return [v for c, v in self.attrs if c == code]


@attrs.frozen
class VpDepart:
    """The controller freed a VP's state (id 0: a connection that never
    registered -- sc_remoted sends those; clients ignore unknown ids)."""

    vp_id: int

    def encode_body(self) -> bytes:
        return _U16.pack(VP_DEPART) + _U32.pack(self.vp_id)


@attrs.frozen
class Go:
    """Every VP present at connect time has been announced."""

    def encode_body(self) -> bytes:
        return _U16.pack(GO)


@attrs.frozen
class ChannelOpen:
    """Client -> controller: open channel ``channel`` (the client's id) on a VP."""

    vp_id: int
    channel: int

    def encode_body(self) -> bytes:
        return _U16.pack(CHANNEL_OPEN) + _U32x2.pack(self.vp_id, self.channel)


@attrs.frozen
class ChannelClose:
    """Controller -> client: the VP finished channel ``channel``."""

    channel: int

    def encode_body(self) -> bytes:
        return _U16.pack(CHANNEL_CLOSE) + _U32.pack(self.channel)


@attrs.frozen
class ChannelData:
    """A piece of a data frame on ``channel`` (pieces of one frame are in order)."""

    channel: int
    data: bytes


MuxControl = Union[VpUpdate, VpDepart, Go, ChannelOpen, ChannelClose]


def encode_control(msg: MuxControl) -> bytes:
    """One channel-0 frame carrying ``msg``."""
    body = msg.encode_body()
    return HEADER.pack(0, len(body)) + body


def encode_data(channel: int, data: bytes) -> bytes:
    """One data frame (``channel`` != 0)."""
    if channel == 0:
        raise ValueError("channel 0 is the control channel")
    return HEADER.pack(channel, len(data)) + data


def _decode_control(body: bytes, role: str) -> MuxControl | None:
    if len(body) < 2:
        raise MuxError(f"control message of {len(body)} bytes (needs a 2-byte type)")
    (t,) = _U16.unpack_from(body)
    rest = body[2:]
    if role == "server":
        if t == CHANNEL_OPEN:
            if len(rest) < 8:
                raise MuxError(f"CHANNEL_OPEN body of {len(rest)} bytes (needs 8)")
            vp_id, ch = _U32x2.unpack_from(rest)
            if ch == 0:
                raise MuxError("CHANNEL_OPEN for channel 0")
            return ChannelOpen(vp_id, ch)
        # sc_remoted ignores every other control message from a client
        # (a client-sent CHANNEL_CLOSE included); so do we.
        return None
    if t == VP_UPDATE:
        if len(rest) < 4:
            raise MuxError("VP_UPDATE without a VP id")
        (vp_id,) = _U32.unpack_from(rest)
        attrs_: list[tuple[int, str]] = []
        off = 4
        while off < len(rest):
            if off + 2 > len(rest):
                raise MuxError("VP_UPDATE attribute cut short")
            (code,) = _U16.unpack_from(rest, off)
            end = rest.find(b"\0", off + 2)
            if end < 0:
                raise MuxError(f"VP_UPDATE attribute {code} is not NUL-terminated")
            attrs_.append((code, rest[off + 2:end].decode("utf-8", "replace")))
            off = end + 1
        return VpUpdate(vp_id, tuple(attrs_))
    if t == VP_DEPART:
        if len(rest) < 4:
            raise MuxError("VP_DEPART without a VP id")
        return VpDepart(_U32.unpack_from(rest)[0])
    if t == GO:
        return Go()
    if t == CHANNEL_CLOSE:
        if len(rest) < 4:
            raise MuxError("CHANNEL_CLOSE without a channel")
        return ChannelClose(_U32.unpack_from(rest)[0])
    raise MuxError(f"unknown control message type {t}")


def _merge(pending: dict[int, list[bytes]], out: list) -> None:
    for chan, pieces in pending.items():
        out.append(ChannelData(chan, pieces[0] if len(pieces) == 1 else b"".join(pieces)))
    pending.clear()


class MuxDecoder:
    """Bytes in, `MuxControl` / `ChannelData` events out (any chunking).

    ``role`` is ``"server"`` to decode a client's stream (only CHANNEL_OPEN
    means anything; other control types are skipped, as sc_remoted does) or
    ``"client"`` to decode the controller's.  Raises `MuxError`; after an
    error the decoder must not be fed again.
    """

    def __init__(self, role: str, max_control: int = MAX_CONTROL) -> None:
        if role not in ("server", "client"):
            raise ValueError("role must be 'server' or 'client'")
        self.role = role
        self.max_control = max_control
        self._buf = bytearray()
        self._data_chan = 0      # nonzero while inside a data frame's payload
        self._data_left = 0

    @property
    def buffered(self) -> int:
        """Bytes held while waiting for the rest of a header or control message."""
        return len(self._buf)

    def feed_batch(self, data: bytes) -> list[MuxControl | ChannelData]:
        """Like `feed`, with the channel data of one call merged per channel.

        A client reads a whole socket buffer at a time: tens of thousands
        of small frames (a ``MORE``, an ``OK id-N``, a result) for a hundred
        channels.  Handing each on separately costs more than parsing it, so
        between two control messages every channel's pieces are joined into
        one `ChannelData` (channels in the order their data first appears).
        Each channel's bytes stay in order and no data moves across a
        control message, so what a channel sees is unchanged -- only the
        interleaving of different channels' data within such a run is.

        On a protocol error `MuxError` is raised with ``events``: what came
        before it, merged the same way."""
        buf: bytes
        if type(data) is not bytes:
            data = bytes(data)
        if self._buf:
            self._buf += data
            buf = bytes(self._buf)
            self._buf.clear()
        else:
            buf = data
        out: list[MuxControl | ChannelData] = []
        pending: dict[int, list[bytes]] = {}
        n = len(buf)
        off = 0
        unpack = HEADER.unpack_from
        role = self.role
        try:
            if self._data_left:
                # the rest of a data frame begun in an earlier chunk
                take = min(self._data_left, n)
                pending[self._data_chan] = [buf[:take]]
                off = take
                self._data_left -= take
            while n - off >= 8:
                chan, length = unpack(buf, off)
                start = off + 8
                end = start + length
                if chan:
                    if end <= n:
                        off = end
                        if length:
                            got = pending.get(chan)
                            if got is None:
                                pending[chan] = [buf[start:end]]
                            else:
                                got.append(buf[start:end])
                        continue
                    # a data frame the chunk ends in: what is here now, the
                    # rest as it comes
                    if start < n:
                        got = pending.get(chan)
                        if got is None:
                            pending[chan] = [buf[start:]]
                        else:
                            got.append(buf[start:])
                    self._data_chan, self._data_left = chan, end - n
                    off = n
                    break
                if length > self.max_control:
                    raise MuxError(f"control message of {length} bytes (limit {self.max_control})")
                if end > n:
                    break
                off = end
                msg = _decode_control(buf[start:end], role)
                if msg is not None:
                    if pending:
                        _merge(pending, out)
                    out.append(msg)
        except MuxError as e:
            _merge(pending, out)
            e.events = out
            raise
        finally:
            if off < n:
                self._buf += memoryview(buf)[off:]
        _merge(pending, out)
        return out

    def feed(self, data: bytes) -> Iterator[MuxControl | ChannelData]:
        buf = self._buf
        buf += data
        off = 0
        n = len(buf)
        try:
            while off < n:
                if self._data_left:
                    take = min(self._data_left, n - off)
                    piece = bytes(buf[off:off + take])
                    off += take
                    self._data_left -= take
                    yield ChannelData(self._data_chan, piece)
                    continue
                if n - off < HEADER.size:
                    break
                chan, length = HEADER.unpack_from(buf, off)
                if chan != 0:
                    off += HEADER.size
                    self._data_chan, self._data_left = chan, length
                    continue
                if length > self.max_control:
                    raise MuxError(f"control message of {length} bytes (limit {self.max_control})")
                if n - off - HEADER.size < length:
                    break
                body = bytes(buf[off + HEADER.size:off + HEADER.size + length])
                off += HEADER.size + length
                msg = _decode_control(body, self.role)
                if msg is not None:
                    yield msg
        finally:
            del buf[:off]
