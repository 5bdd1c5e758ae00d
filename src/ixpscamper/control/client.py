"""Sans-IO client side of scamper's text control protocol.

:class:`ReplyParser` turns the bytes a scamper (or ixp-vp, or an
sc_remoted per-VP socket) sends into reply events.  It reads both
dialects of the result header: ``DATA <n>`` (scamper 20211212) and
``DATA <n> id-<N>[ inprog]`` (scamper since 2023).  For the warts format
the ``n`` bytes after the header are a uuencoded record, which is decoded;
for json they are one JSON object and a newline, passed on as they are.
"""

from __future__ import annotations

from typing import Union

from ixpscamper.control import uu

__all__ = [
    "ControlProtocolError", "Ok", "Err", "More", "Data", "Info", "Unknown",
    "Reply", "ReplyParser", "MAX_LINE", "MAX_BLOCK",
]

#: longest reply line accepted (scamper's are far shorter)
MAX_LINE = 65536
#: largest DATA block accepted; a warts record is at most a few hundred KB
MAX_BLOCK = 64 * 1024 * 1024


class ControlProtocolError(Exception):
    """The peer sent something that is not the control protocol."""


class _Value:
    """An immutable value with equality, hashing and a repr over its slots.

    The reply events are plain classes rather than attrs ones: this module
    is on ixp-attach's start-up path, where importing attrs was a third of
    the time before the first command could be sent.
    """

    __slots__ = ()

    def _values(self) -> tuple:
        return tuple(getattr(self, f) for f in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self), self._values()))

    def __repr__(self) -> str:
        args = ", ".join(f"{f}={getattr(self, f)!r}" for f in self.__slots__)
        return f"{type(self).__name__}({args})"

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")


_set = object.__setattr__


class Ok(_Value):
    """``OK`` with whatever followed it; ``task_id`` set for ``OK id-N``."""

    __slots__ = ("text", "task_id")
    text: str
    task_id: int | None

    def __init__(self, text: str, task_id: int | None = None) -> None:
        _set(self, "text", text)
        _set(self, "task_id", task_id)


class Err(_Value):
    """``ERR <message>``."""

    __slots__ = ("message",)
    message: str

    def __init__(self, message: str) -> None:
        _set(self, "message", message)


class More(_Value):
    """``MORE``: the peer's command queue is empty."""

    __slots__ = ()


class Info(_Value):
    """``INFO ...`` (interactive listings)."""

    __slots__ = ("text",)
    text: str

    def __init__(self, text: str) -> None:
        _set(self, "text", text)


class Data(_Value):
    """One result block.

    ``payload`` is the decoded warts record (warts format) or the JSON
    object line including its newline (json format).  ``task_id`` is the
    ``id-N`` of the header when the peer sent one, ``inprog`` marks a
    partial result.
    """

    __slots__ = ("payload", "task_id", "inprog")
    payload: bytes
    task_id: int | None
    inprog: bool

    def __init__(self, payload: bytes, task_id: int | None = None, inprog: bool = False) -> None:
        _set(self, "payload", payload)
        _set(self, "task_id", task_id)
        _set(self, "inprog", inprog)


class Unknown(_Value):
    """A line that is no reply scamper sends; the caller decides what to do."""

    __slots__ = ("line",)
    line: str

    def __init__(self, line: str) -> None:
        _set(self, "line", line)


Reply = Union[Ok, Err, More, Info, Data, Unknown]

_MORE = More()  # immutable and field-less: one instance serves every MORE


def _parse_task_id(token: str) -> int | None:
    if token.startswith("id-") and token[3:].isdigit():
        return int(token[3:])
    return None


def parse_data_header(line: str) -> tuple[int, int | None, bool]:
    """``DATA <n> [id-N] [inprog]`` -> (n, task id or None, inprog).

    Tokens after ``n`` that are not understood are ignored, as the
    protocol doc asks, so a future extension does not break us.
    """
    parts = line.split()
    if len(parts) < 2 or parts[0].upper() != "DATA" or not parts[1].isdigit():
        raise ControlProtocolError(f"malformed DATA line: {line[:80]!r}")
    n = int(parts[1])
    if n > MAX_BLOCK:
        raise ControlProtocolError(f"DATA block of {n} bytes is too large")
    task_id = None
    inprog = False
    for tok in parts[2:]:
        tid = _parse_task_id(tok)
        if tid is not None:
            task_id = tid
        elif tok == "inprog":
            inprog = True
    return n, task_id, inprog


def _parse_line(line: str) -> Reply:
    word, _, rest = line.partition(" ")
    key = word.upper()
    if key == "OK":
        tid = _parse_task_id(rest.strip()) if rest else None
        return Ok(rest, tid)
    if key == "ERR":
        return Err(rest)
    if key == "MORE" and not rest.strip():
        return _MORE
    if key == "INFO":
        return Info(rest)
    return Unknown(line)


class ReplyParser:
    """Feed bytes from the peer, get :data:`Reply` events in order.

    ``fmt`` is ``"warts"``, ``"json"`` or ``"auto"``; ``auto`` tells the two
    apart by the block's first byte (``{`` can never start a uuencoded
    line), so a client need not know where ``attach format json`` took
    effect.
    A protocol violation raises :class:`ControlProtocolError`; the parser
    is then unusable.
    """

    def __init__(self, fmt: str = "warts") -> None:
        if fmt not in ("warts", "json", "auto"):
            raise ValueError(f"unknown format {fmt!r}")
        self._fmt = fmt
        self._buf = bytearray()
        # while reading a block: bytes still to read, and its header fields
        self._need = 0
        self._hdr: tuple[int | None, bool] | None = None
        self._failed = False

    def set_format(self, fmt: str) -> None:
        if fmt not in ("warts", "json", "auto"):
            raise ValueError(f"unknown format {fmt!r}")
        self._fmt = fmt

    @property
    def in_block(self) -> bool:
        """True while part of a DATA block is still expected."""
        return self._hdr is not None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet turned into events."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Reply]:
        """Parse ``data``; return the replies it completes."""
        if self._failed:
            raise ControlProtocolError("parser already failed")
        if type(data) is not bytes:
            data = bytes(data)
        buf = self._buf
        if buf:
            buf += data
            if self._hdr is not None and len(buf) < self._need:
                return []  # inside a block: gather it without re-reading
            data = bytes(buf)
            buf.clear()
        out: list[Reply] = []
        try:
            pos = self._drain(data, out)
        except (ControlProtocolError, uu.UUError) as e:
            self._failed = True
            if isinstance(e, uu.UUError):
                raise ControlProtocolError(f"bad DATA block: {e}") from None
            raise
        if pos < len(data):
            buf += memoryview(data)[pos:]
        return out

    def _drain(self, data: bytes, out: list[Reply]) -> int:
        """Parse what ``data`` completes into ``out``; the offset of the rest.

        The replies a client sees by the thousand -- ``MORE``, ``OK id-N``,
        ``DATA n id-N`` -- are recognised on the raw bytes; every other line
        takes the general path (``\\r``, case, the old dialect, ...)."""
        pos = 0
        n = len(data)
        find = data.find
        startswith = data.startswith
        append = out.append
        while pos < n:
            if self._hdr is not None:
                need = self._need
                if n - pos < need:
                    break
                block = data[pos:pos + need]
                pos += need
                task_id, inprog = self._hdr
                self._hdr = None
                append(Data(self._decode_block(block), task_id, inprog))
                continue
            nl = find(b"\n", pos)
            if nl < 0:
                if n - pos > MAX_LINE:
                    raise ControlProtocolError("reply line too long")
                break
            start = pos
            pos = nl + 1
            # recognised in place, before any slice of the line is made
            if nl - start == 4 and startswith(b"MORE", start):
                append(_MORE)
                continue
            if startswith(b"OK id-", start):
                digits = data[start + 6:nl]
                if digits.isdigit():
                    append(Ok("id-" + digits.decode("ascii"), int(digits)))
                    continue
            elif startswith(b"DATA ", start):
                parts = data[start + 5:nl].split(b" ")
                if (len(parts) == 2 and parts[0].isdigit() and parts[1][:3] == b"id-"
                        and parts[1][3:].isdigit()):
                    need = int(parts[0])
                    if need > MAX_BLOCK:
                        raise ControlProtocolError(f"DATA block of {need} bytes is too large")
                    self._need = need
                    self._hdr = (int(parts[1][3:]), False)
                    continue
            raw = data[start:nl]
            self._line(raw, out)
        return pos

    def _line(self, raw: bytes, out: list[Reply]) -> None:
        """One reply line, any form (without its newline)."""
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if not raw:
            return
        try:
            line = raw.decode("ascii")
        except UnicodeDecodeError:
            raise ControlProtocolError(f"non-ASCII reply line: {raw[:80]!r}") from None
        if line[:4].upper() == "DATA" and (len(line) == 4 or line[4] == " "):
            n, task_id, inprog = parse_data_header(line)
            self._need = n
            self._hdr = (task_id, inprog)
            return
        out.append(_parse_line(line))

    def _decode_block(self, block: bytes) -> bytes:
        if self._fmt == "json" or (self._fmt == "auto" and block[:1] == b"{"):
            if not block.endswith(b"\n"):
                raise ControlProtocolError("json DATA block does not end in a newline")
            return block
        return uu.decode(block)
