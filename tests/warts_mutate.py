"""Seeded structural mutations of warts files, for the differential tests.

:func:`mutate` damages a warts byte string the way real files get damaged
(and the way a fuzzer finds reader bugs): byte flips, a length *inside* a
record corrupted while the record's outer length stays sane, truncations,
records swapped / dropped / duplicated, hop TTLs rewritten so that one TTL
has non-adjacent replies.  The same seed always gives the same bytes.
"""

from __future__ import annotations

import random
import struct

__all__ = ["records", "join", "mutate", "length_fields", "hop_ttl_positions"]

_HDR = struct.Struct(">HHI")


def records(data: bytes) -> list[list]:
    """Split ``data`` into ``[type, body]`` items by the outer framing.

    A tail that does not make a whole record is returned as type ``None``.
    """
    out: list[list] = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < 8:
            out.append([None, data[pos:]])
            break
        _, t, n = _HDR.unpack_from(data, pos)
        if len(data) - pos - 8 < n:
            out.append([None, data[pos:]])
            break
        out.append([t, data[pos + 8:pos + 8 + n]])
        pos += 8 + n
    return out


def join(recs: list[list]) -> bytes:
    """Frame ``[type, body]`` items again, each with a correct outer length."""
    parts = []
    for t, body in recs:
        if t is None:
            parts.append(bytes(body))
        else:
            parts.append(_HDR.pack(0x1205, t, len(body)) + bytes(body))
    return b"".join(parts)


def _params_at(body, pos: int):
    """``(plen_pos, end)`` of the flags+params at ``pos``, or None (no flags / bad)."""
    p = pos
    while p < len(body) and body[p] & 0x80:
        p += 1
    if p >= len(body) or body[pos] == 0:
        return None
    plen_pos = p + 1
    if plen_pos + 2 > len(body):
        return None
    return plen_pos, plen_pos + 2 + struct.unpack_from(">H", body, plen_pos)[0]


def _after_params(body, pos: int) -> int:
    r = _params_at(body, pos)
    if r is None:
        return pos + 1
    return r[1]


def _items(body, pos: int):
    """Walk a u16 count then that many flags+params items; yield (kind, pos) fields."""
    if pos + 2 > len(body):
        return
    yield ("u16", pos)
    n = struct.unpack_from(">H", body, pos)[0]
    pos += 2
    for _ in range(n):
        r = _params_at(body, pos)
        if r is None:
            return
        yield ("plen", r[0])
        yield ("item", pos)
        pos = r[1]
        if pos > len(body):
            return
    yield ("tail", pos)


def length_fields(rtype: int, body: bytes) -> list[tuple[str, int]]:
    """Positions of the length-like fields inside a record body.

    ``("u16", pos)`` a count, ``("plen", pos)`` a flags+params length,
    ``("strz", pos)`` a string terminator, ``("item", pos)`` the start of a
    hop / reply, ``("tail", pos)`` where a trace's optional blocks start.
    """
    out: list[tuple[str, int]] = []
    try:
        if rtype == 1:
            z = body.index(0, 8)
            out.append(("strz", z))
            r = _params_at(body, z + 1)
            if r:
                out.append(("plen", r[0]))
                for i in range(r[0] + 2, min(r[1], len(body))):
                    if body[i] == 0:
                        out.append(("strz", i))
        elif rtype in (2, 3):
            r = _params_at(body, 16)
            if r:
                out.append(("plen", r[0]))
        elif rtype in (6, 7):
            r = _params_at(body, 0)
            if r:
                out.append(("plen", r[0]))
                out.extend(_items(body, r[1]))
    except (ValueError, IndexError, struct.error):
        pass
    return out


def hop_ttl_positions(body: bytes) -> list[int]:
    """Positions of the probe-TTL byte of each hop of a trace body."""
    out = []
    for kind, pos in length_fields(6, body):
        if kind != "item":
            continue
        fb0 = body[pos]
        if fb0 & 0x02 and not fb0 & 0x01:  # TTL is the first parameter
            p = pos
            while body[p] & 0x80:
                p += 1
            out.append(p + 3)
    return out


def _u16_value(rng: random.Random, old: int) -> int:
    c = rng.randrange(6)
    if c == 0:
        return 0
    if c == 1:
        return 0xFFFF
    if c == 2:
        return rng.randrange(0x10000)
    return max(0, min(0xFFFF, old + rng.choice([-3, -2, -1, 1, 2, 3, 5, 8, 16, 100])))


def _one(rng: random.Random, data: bytes) -> bytes:
    recs = records(data)
    whole = [i for i, (t, _) in enumerate(recs) if t is not None]
    kind = rng.choice(["flip", "flip", "set", "field", "field", "field", "ttl", "trunc_file",
                       "trunc_rec", "extend_rec", "swap", "drop", "dup", "hdr", "addr"])
    if not whole:
        kind = "flip"
    if kind in ("flip", "set"):
        if not data:
            return data
        b = bytearray(data)
        # mostly inside bodies: the header has no slack
        i = rng.randrange(len(b))
        if kind == "flip":
            b[i] ^= 1 << rng.randrange(8)
        else:
            b[i] = rng.randrange(256)
        return bytes(b)
    if kind == "hdr":
        i = rng.choice(whole)
        t, body = recs[i]
        recs[i] = [rng.choice([t, 1, 2, 3, 4, 5, 6, 7, 8, 99, rng.randrange(0x10000)]), body]
        return join(recs)
    if kind in ("field", "ttl"):
        cands = [i for i in whole if recs[i][0] in (1, 2, 3, 6, 7)]
        if not cands:
            return data
        i = rng.choice(cands)
        t, body = recs[i]
        b = bytearray(body)
        if kind == "ttl" and t == 6:
            pos = hop_ttl_positions(body)
            if pos:
                ttls = sorted({b[p] for p in pos})
                p = rng.choice(pos)
                b[p] = rng.choice(ttls + [rng.randrange(256)])
                recs[i] = [t, bytes(b)]
                return join(recs)
        fields = [f for f in length_fields(t, body) if f[0] != "item"]
        if not fields:
            return data
        what, pos = rng.choice(fields)
        if what in ("u16", "plen") and pos + 2 <= len(b):
            old = struct.unpack_from(">H", b, pos)[0]
            struct.pack_into(">H", b, pos, _u16_value(rng, old))
        elif what == "strz":
            b[pos] = rng.randrange(1, 256)
        elif what == "tail":
            # a trace's optional-block header, or bytes after the ping replies
            ins = struct.pack(">H", rng.choice([0, 0x1000 | rng.randrange(16), 0x2003,
                                                rng.randrange(0x10000)]))
            b[pos:pos] = ins if rng.random() < 0.5 else b""
            if not ins or rng.random() < 0.3:
                del b[pos:pos + rng.randrange(1, 4)]
        recs[i] = [t, bytes(b)]
        return join(recs)
    if kind == "addr":
        # an inline address's length or type byte (IPv4 "04 01", IPv6 "10 02")
        cands = [(i, j) for i in whole if recs[i][0] in (6, 7)
                 for j in range(len(recs[i][1]) - 1)
                 if recs[i][1][j:j + 2] in (b"\x04\x01", b"\x10\x02")]
        if not cands:
            return data
        i, j = rng.choice(cands)
        b = bytearray(recs[i][1])
        if rng.random() < 0.7:
            b[j] = rng.choice([0, 1, 3, 5, 6, 8, 15, 17, rng.randrange(256)])
        else:
            b[j + 1] = rng.choice([0, 1, 2, 3, 4, 5])
        recs[i] = [recs[i][0], bytes(b)]
        return join(recs)
    if kind == "trunc_file":
        return data[:rng.randrange(len(data) + 1)]
    if kind == "trunc_rec":
        i = rng.choice(whole)
        t, body = recs[i]
        if body:
            recs[i] = [t, body[:rng.randrange(len(body))]]
        return join(recs)
    if kind == "extend_rec":
        i = rng.choice(whole)
        t, body = recs[i]
        junk = rng.choice([b"\x00", b"\x00\x00", bytes(rng.randrange(256) for _ in range(3))])
        recs[i] = [t, body + junk]
        return join(recs)
    if kind == "swap" and len(whole) >= 2:
        i, j = rng.sample(whole, 2)
        recs[i], recs[j] = recs[j], recs[i]
        return join(recs)
    if kind == "drop":
        del recs[rng.choice(whole)]
        return join(recs)
    if kind == "dup":
        i = rng.choice(whole)
        recs.insert(rng.randrange(len(recs) + 1), list(recs[i]))
        return join(recs)
    return data


def mutate(data: bytes, seed: int, max_mutations: int = 3) -> tuple[bytes, int]:
    """Apply 1..``max_mutations`` seeded mutations; returns ``(bytes, count)``."""
    rng = random.Random(seed)
    n = rng.randint(1, max_mutations)
    for _ in range(n):
        data = _one(rng, data)
    return data, n
