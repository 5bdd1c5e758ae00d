"""The uuencoding scamper uses for warts records in ``DATA`` blocks.

This is classic uuencoding without the ``begin``/``end`` lines (protocol
doc A.5): 45 input bytes per line, each line led by ``chr(32 + k)`` for its
k bytes, every 6-bit value written as ``chr(32 + v)`` except 0, which is a
backtick, and the block ends with the line ``"`\\n"``.  The ``n`` of
``DATA <n>`` is the exact byte length of the block, see :func:`encoded_length`.
"""

from __future__ import annotations

import binascii

__all__ = ["UUError", "encode", "encoded_length", "decode", "UUDecoder", "LINE_BYTES"]

#: input bytes carried by one full line
LINE_BYTES = 45

# value -> char; 0 is a backtick rather than a space so no line has trailing blanks
_ENC = bytes([0x60] + list(range(33, 96)))
# char -> value; both the space and the backtick decode to 0, as uudecode allows
_DEC = [-1] * 256
for _c in range(32, 97):
    _DEC[_c] = (_c - 32) & 0x3F
del _c
_ALPHABET = bytes(range(32, 97))


class UUError(ValueError):
    """A uuencoded block is malformed; the message says how."""


def encoded_length(length: int) -> int:
    """Bytes of the uuencoded block of a ``length``-byte record.

    ``62 * (L // 45) + (4 * ceil(r / 3) + 2 if r else 0) + 2`` with
    ``r = L % 45``: full lines are 1 + 60 + 1 bytes, the last line is
    shorter, and the end line is a backtick and a newline.
    """
    if length < 0:
        raise ValueError("negative length")
    full, rest = divmod(length, LINE_BYTES)
    tail = 4 * ((rest + 2) // 3) + 2 if rest else 0
    return 62 * full + tail + 2


def _encode_line(chunk: bytes, out: bytearray) -> None:
    out.append(_ENC[len(chunk)] if chunk else 0x60)
    padded = chunk + b"\x00" * (-len(chunk) % 3)
    enc = _ENC
    for i in range(0, len(padded), 3):
        a, b, c = padded[i], padded[i + 1], padded[i + 2]
        out.append(enc[a >> 2])
        out.append(enc[((a & 0x03) << 4) | (b >> 4)])
        out.append(enc[((b & 0x0F) << 2) | (c >> 6)])
        out.append(enc[c & 0x3F])
    out.append(0x0A)


def encode(data: bytes) -> bytes:
    """uuencode ``data`` into a complete block, end line included."""
    # binascii's backtick mode is exactly scamper's alphabet; _encode_line is
    # the readable reference the tests compare it with
    b2a = binascii.b2a_uu
    parts = [b2a(data[i:i + LINE_BYTES], backtick=True) for i in range(0, len(data), LINE_BYTES)]
    parts.append(b"`\n")
    return b"".join(parts)


def encode_reference(data: bytes) -> bytes:
    """Pure-Python :func:`encode`, spelled out per the protocol doc (for tests)."""
    out = bytearray()
    for i in range(0, len(data), LINE_BYTES):
        _encode_line(data[i:i + LINE_BYTES], out)
    out += b"`\n"
    return bytes(out)


def _decode_line(line: bytes) -> bytes:
    """Decode one line (without its newline); an empty bytes means end line."""
    if not line:
        raise UUError("empty line in uuencoded block")
    k = _DEC[line[0]]
    if k < 0:
        raise UUError(f"invalid length character {line[0]:#04x}")
    if k > LINE_BYTES:
        raise UUError(f"line claims {k} bytes, more than {LINE_BYTES}")
    need = 4 * ((k + 2) // 3)
    body = line[1:]
    if len(body) != need:
        raise UUError(f"line for {k} bytes has {len(body)} characters, expected {need}")
    if body.translate(None, _ALPHABET):
        raise UUError("invalid character in uuencoded line")
    # a2b_uu is lenient about what it is given; the checks above make it strict
    try:
        return binascii.a2b_uu(line)
    except binascii.Error as e:
        raise UUError(f"bad uuencoded line: {e}") from None


# length character -> the length of a well-formed line it leads (newline not
# counted), or 0 where no data line may start with it: the end-line
# characters (space, backtick: k == 0) and anything outside the alphabet
_LINE_LEN = [0] * 256
for _k in range(1, LINE_BYTES + 1):
    _LINE_LEN[32 + _k] = 1 + 4 * ((_k + 2) // 3)
del _k


def decode(block: bytes) -> bytes:
    """Decode a complete block (as :func:`encode` makes it); strict.

    Raises :class:`UUError` unless ``block`` is a sequence of data lines
    followed by exactly one end line and nothing after it.
    """
    # A client decodes one block per result, so the well-formed case is done
    # in C-level passes: a length check per line and binascii per line,
    # which refuses any character outside ' '..'`' (exactly the alphabet)
    # except CR, which it reads as a zero: a block with a CR is not taken
    # this way.  Anything else goes the line-by-line way of UUDecoder, which
    # says what is wrong.
    lines = bytes(block).split(b"\n")
    if (len(lines) >= 2 and not lines[-1] and lines[-2] in (b"`", b" ")
            and b"\r" not in block):
        del lines[-2:]
        ll = _LINE_LEN
        for line in lines:
            if not line or len(line) != ll[line[0]]:
                break
        else:
            a2b = binascii.a2b_uu
            try:
                return b"".join([a2b(line) for line in lines])
            except binascii.Error:
                pass  # e.g. bits set past a short line's end: said below
    return _decode_strict(block)


def _decode_strict(block: bytes) -> bytes:
    dec = UUDecoder()
    out = dec.feed(block)
    if not dec.finished:
        raise UUError("uuencoded block has no end line")
    if dec.unused:
        raise UUError("bytes after the end line of a uuencoded block")
    return out


class UUDecoder:
    """Incremental decoder: feed pieces of a block, get decoded bytes.

    ``finished`` turns true once the end line has been read; bytes fed
    after it are kept in ``unused`` and not decoded.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self.finished = False
        self.unused = b""

    def feed(self, data: bytes) -> bytes:
        """Decode whatever complete lines ``data`` completes."""
        if self.finished:
            self.unused += data
            return b""
        self._buf += data
        out = bytearray()
        start = 0
        buf = self._buf
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            line = bytes(buf[start:nl])
            start = nl + 1
            if line == b"`" or line == b" ":
                self.finished = True
                self.unused = bytes(buf[start:])
                start = len(buf)
                break
            chunk = _decode_line(line)
            if len(chunk) == 0:
                raise UUError("zero-length data line")
            out += chunk
        del buf[:start]
        if not self.finished and len(buf) > 1 + 4 * 15:
            raise UUError("uuencoded line longer than 61 characters")
        return bytes(out)
