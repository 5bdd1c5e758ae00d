"""Flags+params structures for the record codecs that plug in through the registry.

The reader's generated decoders (``reader._params``) know a fixed set of
field kinds; tbit's fast-open cookie and host's resource-record data,
TXT strings and EDNS options are not among them, and a codec module does
not change the reader.  :func:`read_params` is scamper's
``warts_params_read`` with one Python handler per field instead: each
handler gets ``(buf, pos, nb)`` and returns ``(value, next_pos)``, every
field is bounded by the end of the *record* (``nb``), not by the declared
parameter length, and the structure ends at its declared end wherever that
is; fields past the last handler are skipped by length.  Malformed input
raises the reader's ``_Bad`` (or ``IndexError`` / ``struct.error``, which the
reader reports the same way).

The field readers below are scamper's ``extract_*`` functions; the writer
side reuses the core writer's helpers (``_fp``, ``_Table``, ``_tv``, ``_s``).
"""

from __future__ import annotations

import struct
from typing import Callable, Sequence

from ixpscamper.warts.reader import _Bad, _addr, _str
from ixpscamper.warts.records import Timeval

__all__ = ["read_params", "flag_bytes", "u8", "u16", "u32", "i32", "tv", "string", "addr_in",
           "Handler"]

Handler = Callable[[bytes, int, int], tuple]

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_I32 = struct.Struct(">i")
_TV = struct.Struct(">II")


def read_params(buf, pos: int, handlers: Sequence[Handler]):
    """Decode one flags+params structure at ``pos``.

    Returns ``(values, next_pos)``: ``values[i]`` is field ``i + 1``'s value,
    None where the field is absent.
    """
    nb = len(buf)
    n = len(handlers)
    vals: list = [None] * n
    if pos >= nb:
        raise _Bad("structure starts past the end of the record")
    if buf[pos] == 0:
        return vals, pos + 1
    start = pos
    while buf[pos] & 0x80:
        pos += 1
        if pos >= nb:
            raise _Bad("flags run past the end of the record")
    flags = buf[start:pos + 1]
    pos += 1
    if nb - pos < 2:
        raise _Bad("parameter length runs past the end of the record")
    plen = _U16.unpack_from(buf, pos)[0]
    pos += 2
    final = pos + plen  # may lie past the record: only reading from there fails
    for i, fb in enumerate(flags):
        if not fb & 0x7F:
            continue
        for j in range(7):
            if fb & (1 << j):
                fid = i * 7 + j
                if fid >= n:
                    return vals, final
                vals[fid], pos = handlers[fid](buf, pos, nb)
    return vals, final


def flag_bytes(buf, pos: int) -> int:
    """How many flag bytes the structure at ``pos`` has (0 if none are set)."""
    if pos >= len(buf) or buf[pos] == 0:
        return 0
    p = pos
    while p < len(buf) and buf[p] & 0x80:
        p += 1
    return p - pos + 1


def _need(pos: int, nb: int, n: int, what: str) -> None:
    if pos >= nb or nb - pos < n:
        raise _Bad(f"{what} runs past the end of the record")


def u8(buf, pos, nb):
    """extract_byte"""
    _need(pos, nb, 1, "byte field")
    return buf[pos], pos + 1


def u16(buf, pos, nb):
    """extract_uint16"""
    _need(pos, nb, 2, "16-bit field")
    return _U16.unpack_from(buf, pos)[0], pos + 2


def u32(buf, pos, nb):
    """extract_uint32"""
    _need(pos, nb, 4, "32-bit field")
    return _U32.unpack_from(buf, pos)[0], pos + 4


def i32(buf, pos, nb):
    """extract_int32"""
    _need(pos, nb, 4, "32-bit field")
    return _I32.unpack_from(buf, pos)[0], pos + 4


def tv(buf, pos, nb):
    """extract_timeval"""
    _need(pos, nb, 8, "timeval")
    return Timeval(*_TV.unpack_from(buf, pos)), pos + 8


def string(buf, pos, nb):
    """extract_string: NUL-terminated within the record"""
    if pos >= nb:
        raise _Bad("string runs past the end of the record")
    return _str(buf, pos, nb)


def addr_in(table: list) -> Handler:
    """extract_addr with the record's address table ``table``."""
    def h(buf, pos, nb):
        if pos >= nb:
            raise _Bad("address runs past the end of the record")
        return _addr(buf, pos, table)
    return h
