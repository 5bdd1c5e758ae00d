"""Streaming warts reader.

:func:`iter_records` reads records one at a time from a binary file object;
:class:`WartsDecoder` takes bytes as they arrive (``feed``) and returns the
records completed so far.  Both resolve list and cycle references, so every
:class:`~ixpscamper.warts.records.Trace` / ``Ping`` carries its
:class:`WartsList` and cycle objects.  Any malformed input raises
:class:`WartsError`, which carries the byte offset of the fault; nothing
else escapes the reader for bad input.

Hot paths: each flags+params structure is decoded by a small function
generated once per distinct set of flag bytes (a file holds only a handful),
which unpacks every run of fixed-size fields with one precompiled
:class:`struct.Struct`.  Per-field interpretation happens in plain Python
code the generator writes; nothing from the input reaches that code except
flag *bits*, which only select among fixed templates.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import BinaryIO, Iterator, Optional

from ixpscamper.warts.records import (
    CycleDefinition, CycleStart, CycleStop, IcmpExt, LinkAddress, Ping, PingReply,
    PmtudNote, Timeval, Trace, TraceHop, TracePmtud, UnknownRecord, WartsList,
)

__all__ = ["WartsError", "WartsDecoder", "iter_records", "iter_text", "read_records",
           "MAX_RECORD_LENGTH", "MAGIC"]

MAGIC = 0x1205
#: Largest record body accepted.  scamper's own records stay far below this
#: (a trace is a few KB; a 10,000-probe ping about 400 KB); the cap bounds
#: the memory a corrupt or hostile length can make the reader allocate.
MAX_RECORD_LENGTH = 16 * 1024 * 1024

_HDR = struct.Struct(">HHI")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_TV = struct.Struct(">II")
_tuple_new = tuple.__new__

_RECORD_NAMES = {1: "list", 2: "cycle start", 3: "cycle definition", 4: "cycle stop",
                 6: "trace", 7: "ping"}


class WartsError(Exception):
    """Malformed warts input.

    ``offset`` is the byte offset, from the start of the stream, of the record
    (or record header) that could not be decoded; ``reason`` says what was
    wrong.  ``str(err)`` is ``"offset N: reason"``.
    """

    def __init__(self, reason: str, offset: int) -> None:
        super().__init__(f"offset {offset}: {reason}")
        self.reason = reason
        self.offset = offset


class _Bad(Exception):
    """Internal: a structure inside a record body is malformed."""


# --------------------------------------------------------------------------
# addresses

# address field bytes (length, type, address) -> address object
_addr_key_cache: dict = {}
_ADDR_CACHE_MAX = 100_000
_ADDR_LEN = {1: 4, 2: 16, 3: 6, 4: 8}
_V4new = ipaddress.IPv4Address.__new__
_V6new = ipaddress.IPv6Address.__new__


def _mkaddr(atype: int, raw: bytes):
    if _ADDR_LEN.get(atype) != len(raw):
        raise _Bad(f"address of type {atype} with length {len(raw)}")
    # the public constructors re-validate what the length check settled;
    # setting the one slot directly is several times faster
    if atype == 1:
        a = _V4new(ipaddress.IPv4Address)
        a._ip = int.from_bytes(raw, "big")
    elif atype == 2:
        a = _V6new(ipaddress.IPv6Address)
        a._ip = int.from_bytes(raw, "big")
        a._scope_id = None
    else:
        a = LinkAddress(raw, atype)
    return a


def _addr_slow(buf, pos, table):
    n = buf[pos]
    end = pos + 2 + n
    if end > len(buf):
        raise _Bad("address runs past the record")
    key = bytes(buf[pos:end])
    a = _mkaddr(buf[pos + 1], key[2:])
    if len(_addr_key_cache) >= _ADDR_CACHE_MAX:
        _addr_key_cache.clear()
    _addr_key_cache[key] = a
    table.append(a)
    return a, end


def _addr(buf, pos, table):
    """Decode a table address (define or reference) at ``pos``."""
    n = buf[pos]
    if n:
        a = _addr_key_cache.get(buf[pos:pos + 2 + n])
        if a is None:
            return _addr_slow(buf, pos, table)
        table.append(a)
        return a, pos + 2 + n
    idx = _U32.unpack_from(buf, pos + 1)[0]
    if idx >= len(table):
        raise _Bad(f"address reference {idx} not in the record's table ({len(table)} entries)")
    return table[idx], pos + 5


def _saddr(buf, pos):
    """Decode a static (never tabled) address, as used for ``-r``."""
    n = buf[pos]
    if n == 0:
        raise _Bad("static address of length 0")
    end = pos + 2 + n
    if end > len(buf):
        raise _Bad("address runs past the record")
    return _mkaddr(buf[pos + 1], buf[pos + 2:end]), end


def _str(buf, pos, end):
    try:
        z = buf.index(0, pos, end)
    except ValueError:
        raise _Bad("unterminated string") from None
    return buf[pos:z].decode("utf-8", "surrogateescape"), z + 1


def _addrlist(buf, pos, table):
    n = buf[pos]
    pos += 1
    if n == 0:
        return None, pos  # scamper itself rejects this; read it as absent
    out = []
    for _ in range(n):
        a, pos = _addr(buf, pos, table)
        out.append(a)
    return out, pos


def _ts14(buf, pos, table):
    tsc = buf[pos]
    ipc = buf[pos + 1]
    pos += 2
    times = list(struct.unpack_from(f">{tsc}I", buf, pos))
    pos += 4 * tsc
    addrs = None
    if ipc:
        addrs = []
        for _ in range(ipc):
            a, pos = _addr(buf, pos, table)
            addrs.append(a)
    return (times, addrs), pos


def _icmpext(buf, pos):
    total = _U16.unpack_from(buf, pos)[0]
    pos += 2
    end = pos + total
    if total == 0 or end > len(buf):
        raise _Bad("bad ICMP extension length")
    out = []
    while pos < end:
        dl, cn, ct = struct.unpack_from(">HBB", buf, pos)
        pos += 4
        if pos + dl > end:
            raise _Bad("ICMP extension object runs past its block")
        out.append(IcmpExt(cn, ct, bytes(buf[pos:pos + dl])))
        pos += dl
    return out, pos


def _ifname(buf, pos, end, ctx):
    ident = buf[pos]
    pos += 1
    names = ctx.setdefault("ifnames", [])
    if ident:
        if ident - 1 < len(names):
            return names[ident - 1], pos
        if ident - 1 != len(names):
            raise _Bad(f"interface name id {ident} out of sequence")
    name, pos = _str(buf, pos, end)
    if ident:
        names.append(name)
    return name, pos


# --------------------------------------------------------------------------
# generated flags+params decoders

# kinds: fixed-size ones map to a struct format; the rest are variable.
_FIXED = {"B": "B", "H": "H", "I": "I", "tv": "II", "tc": "BB", "tsr": "III"}

_TRACE_HDR = ["I", "I", "I", "I", "tv", "B", "B", "B", "B", "B", "B", "H", "H", "H", "B", "B",
              "B", "B", "H", "B", "B", "B", "H", "B", "B", "addr", "addr", "I", "H", "saddr",
              "B", "I", "B", "str"]
_TRACE_HOP = ["I", "B", "B", "B", "B", "I", "tc", "H", "H", "H", "B", "H", "H", "B", "B", "B",
              "icmpext", "addr", "tv", "str"]
_PING_HDR = ["I", "I", "I", "I", "tv", "B", "B", "H", "bytes8", "H", "H", "B", "B", "H", "H",
             "B", "H", "H", "I", "addr", "addr", "B", "B", "addrlist", "H", "H", "B", "I", "I",
             "I", "I", "saddr", "I", "str"]
_PING_REPLY = ["I", "B", "B", "H", "tc", "I", "H", "H", "H", "B", "B", "addr", "addrlist",
               "ts14", "I", "tv", "tsr", "H", "B", "ifname", "H"]
_LIST_OPT = ["str", "str"]
_CYCLE_OPT = ["I", "str"]
_PMTUD = ["H", "H", "H", "B", "B"]
_PMTUD_NOTE = ["B", "H", "H"]

_SPECS = {"trace": _TRACE_HDR, "trace_text": _TRACE_HDR, "hop": _TRACE_HOP, "ping": _PING_HDR,
          "reply": _PING_REPLY,
          "list": _LIST_OPT, "cycle": _CYCLE_OPT, "pmtud": _PMTUD, "note": _PMTUD_NOTE}

_decoders: dict = {}
_DECODERS_MAX = 4096
_structs: dict = {}


def _struct(fmt: str) -> struct.Struct:
    s = _structs.get(fmt)
    if s is None:
        s = _structs[fmt] = struct.Struct(">" + fmt)
    return s


def _field_ids(flagbytes: bytes) -> list[int]:
    ids = []
    for i, b in enumerate(flagbytes):
        for bit in range(7):
            if b & (1 << bit):
                ids.append(i * 7 + bit + 1)
    return ids


def _compile(kind: str, flagbytes: bytes):
    spec = _SPECS[kind]
    ids = _field_ids(flagbytes)
    lines = ["def dec(buf, pos, end, table, ctx):"]
    env = {"_addr": _addr, "_saddr": _saddr, "_str": _str, "_addrlist": _addrlist,
           "_ts14": _ts14, "_icmpext": _icmpext, "_ifname": _ifname, "_Bad": _Bad,
           "_tn": _tuple_new, "Timeval": Timeval}
    if kind == "trace_text":
        # the text fast path: addresses as (text, is_ipv4), no objects
        env["_addr"] = _addr_text
        env["_saddr"] = _saddr_text
    nvals = len(spec)
    present = set()
    run: list[tuple[int, str]] = []

    def flush():
        if not run:
            return
        fmt = "".join(_FIXED[k] for _, k in run)
        sname = f"S{len(env)}"
        env[sname] = _struct(fmt)
        targets = []
        post = []
        for fid, k in run:
            if k == "tv":
                targets += [f"a{fid}", f"b{fid}"]
                post.append(f"    v{fid} = _tn(Timeval, (a{fid}, b{fid}))")
            elif k == "tc":
                targets += [f"a{fid}", f"b{fid}"]
                post.append(f"    v{fid} = (a{fid}, b{fid})")
            elif k == "tsr":
                targets += [f"a{fid}", f"b{fid}", f"c{fid}"]
                post.append(f"    v{fid} = (a{fid}, b{fid}, c{fid})")
            else:
                targets.append(f"v{fid}")
        lines.append(f"    {', '.join(targets)}, = {sname}.unpack_from(buf, pos)")
        lines.append(f"    pos += {env[sname].size}")
        lines.extend(post)
        run.clear()

    for fid in ids:
        if fid > nvals:
            break  # a field newer than this codec: skip to the end by length
        k = spec[fid - 1]
        present.add(fid)
        if k in _FIXED:
            run.append((fid, k))
            continue
        flush()
        if k == "addr":
            lines.append(f"    v{fid}, pos = _addr(buf, pos, table)")
        elif k == "saddr":
            lines.append(f"    v{fid}, pos = _saddr(buf, pos)")
        elif k == "str":
            lines.append(f"    v{fid}, pos = _str(buf, pos, end)")
        elif k == "addrlist":
            lines.append(f"    v{fid}, pos = _addrlist(buf, pos, table)")
        elif k == "ts14":
            lines.append(f"    v{fid}, pos = _ts14(buf, pos, table)")
        elif k == "icmpext":
            lines.append(f"    v{fid}, pos = _icmpext(buf, pos)")
        elif k == "ifname":
            lines.append(f"    v{fid}, pos = _ifname(buf, pos, end, ctx)")
        elif k == "bytes8":
            # the pattern's length is the previous field (8)
            ln = "v8" if 8 in present else "0"
            lines.append(f"    v{fid} = bytes(buf[pos:pos + {ln}]); pos += {ln}")
        else:  # pragma: no cover - spec tables only use the kinds above
            raise AssertionError(k)
    flush()
    lines.append("    if pos > end: raise _Bad('fields run past their declared length')")
    vals = ", ".join(f"v{i}" if i in present else "None" for i in range(1, nvals + 1))
    lines.append(f"    return ({vals},)")
    exec("\n".join(lines), env)  # noqa: S102 - source built only from the tables above
    return env["dec"]


def _params(kind: str, buf, pos: int, table, ctx=None):
    """Decode one flags+params structure at ``pos``.

    Returns ``(values, next_pos)``; ``values`` is None when no flag is set.
    """
    p = pos
    while buf[p] & 0x80:
        p += 1
    fb = buf[pos:p + 1]
    p += 1
    if fb == b"\x00":
        return None, p
    plen = (buf[p] << 8) | buf[p + 1]
    p += 2
    end = p + plen
    if end > len(buf):
        raise _Bad("parameters run past the record")
    key = (kind, fb)
    dec = _decoders.get(key)
    if dec is None:
        if len(_decoders) >= _DECODERS_MAX:
            _decoders.clear()
        dec = _decoders[key] = _compile(kind, bytes(fb))
    return dec(buf, p, end, table, ctx), end


# --------------------------------------------------------------------------
# record bodies

_ICMP_Q4 = (3, 11)
_ICMP_Q6 = (1, 2, 3)
_V4 = ipaddress.IPv4Address
_V6 = ipaddress.IPv6Address

# Hop records dominate every trace file, so each distinct set of hop flag
# bytes gets a decoder generated for it that goes from the parameter bytes
# straight to a TraceHop: one struct unpack for the fixed fields, the
# address inline, and the reader's defaults folded in as constants.
_hop_decoders: dict = {}

_HOP_ARGS = ("addr", "ttl", "att", "psize", "rtt", "flags", "rttl", "tos", "ipid", "rsize",
             "it", "ic", "qttl", "qipl", "qtos", "nhmtu", "tcpf", "tx", "ext", "name")
_HOP_VAR = {2: "ttl", 3: "rttl", 4: "flags", 5: "att", 6: "rtt", 8: "psize", 9: "rsize",
            10: "ipid", 11: "tos", 12: "nhmtu", 13: "qipl", 14: "qttl", 15: "tcpf", 16: "qtos"}


def _compile_hop(flagbytes: bytes, mode: str = "hop"):
    """Generate a decoder for a run of hop records that all have these flag bytes.

    The generated ``run(buf, pos, table, n, append)`` decodes up to ``n``
    consecutive hops while their flag bytes equal ``flagbytes``, appends one
    item per hop, and returns ``(pos, count)``.  ``mode`` "hop" appends
    :class:`TraceHop` objects; mode "text" appends the lines sc_warts2text
    prints for TTLs up to this hop (``last[0]`` tracks the previous TTL) and
    ``table`` holds ``(address text, is_ipv4)`` pairs.  Both modes perform
    the same validation.
    """
    ids = [i for i in _field_ids(flagbytes) if i <= len(_TRACE_HOP)]
    env = {"_Bad": _Bad, "TraceHop": TraceHop, "_tn": _tuple_new, "Timeval": Timeval,
           "_U32": _U32, "_addr_slow": _addr_slow, "_cache": _addr_key_cache,
           "_icmpext": _icmpext, "_str": _str, "_V4": _V4, "_Q4": _ICMP_Q4, "_Q6": _ICMP_Q6,
           "_U16": _U16, "FB": bytes(flagbytes), "_TV": _TV}
    text = mode == "text"
    if text:
        from ixpscamper.warts import text as _text  # late: text imports records only
        env.update(_tcache=_text_addr_cache, _taddr=_text_addr_slow, _MS3=_text._MS3,
                   _note=_text._note_of_values, _P=_text._TTL_PREFIX, _STAR=_text._STAR_LINE,
                   _Decline=_Decline)
    nfb = len(flagbytes)
    L = ["def run(buf, pos, table, n, append, last):",
         "    k = 0",
         "    startswith = buf.startswith",
         "    nb = len(buf)",
         "    while k < n and startswith(FB, pos):",
         f"        pos += {nfb}",
         ]
    IND = "        "
    vals = {k: "0" for k in _HOP_ARGS}
    vals.update(tx="None", ext="None", name="None", addr=None)
    fixed = [i for i in ids if i <= 16]
    if 1 in fixed:
        raise _Bad("hop refers to the deprecated file-wide address table")
    # the u16 parameter length is read by the same unpack as the fixed fields
    fmt = "H"
    targets = ["plen"]
    if True:
        for i in fixed:
            if i == 7:
                fmt += "BB"
                targets += ["it", "ic"]
            else:
                fmt += _FIXED[_TRACE_HOP[i - 1]]
                targets.append(_HOP_VAR[i])
                vals[_HOP_VAR[i]] = _HOP_VAR[i]
        if 7 in fixed:
            vals["it"], vals["ic"] = "it", "ic"
        st = _struct(fmt)
        env["S"] = st
        L.append(f"{IND}{', '.join(targets)}, = S.unpack_from(buf, pos)")
        L.append(f"{IND}end = pos + 2 + plen")
        L.append(f"{IND}if end > nb: raise _Bad('hop parameters run past the record')")
        L.append(f"{IND}pos += {st.size}")
    if 17 in ids:
        L.append(f"{IND}ext, pos = _icmpext(buf, pos)")
        vals["ext"] = "ext"
    if 18 in ids:
        cache, slow = ("_tcache", "_taddr") if text else ("_cache", "_addr_slow")
        L += [f"{IND}m = buf[pos]",
              f"{IND}if m:",
              f"{IND}    addr = {cache}.get(buf[pos:pos + 2 + m])",
              f"{IND}    if addr is None:",
              f"{IND}        addr, pos = {slow}(buf, pos, table)",
              f"{IND}    else:",
              f"{IND}        table.append(addr)",
              f"{IND}        pos += 2 + m",
              f"{IND}else:",
              f"{IND}    i = _U32.unpack_from(buf, pos + 1)[0]",
              f"{IND}    if i >= len(table): raise _Bad(f'address reference {{i}} not in the record table')",
              f"{IND}    addr = table[i]",
              f"{IND}    pos += 5"]
        vals["addr"] = "addr"
    else:
        L.append(f"{IND}raise _Bad('hop record without an address')")
    if 19 in ids:
        if text:
            L += [f"{IND}pos += 8"]
        else:
            L += [f"{IND}tx = _tn(Timeval, _TV.unpack_from(buf, pos))", f"{IND}pos += 8"]
            vals["tx"] = "tx"
    if 20 in ids:
        L.append(f"{IND}name, pos = _str(buf, pos, end)")
        vals["name"] = "name"
    if 2 not in ids:
        L.append(f"{IND}raise _Bad('hop record with probe TTL 0')")
    else:
        L.append(f"{IND}if not ttl: raise _Bad('hop record with probe TTL 0')")
    L.append(f"{IND}if pos > end: raise _Bad('hop fields run past their declared length')")
    if text:
        f, it, ic, tf, rtt = vals["flags"], vals["it"], vals["ic"], vals["tcpf"], vals["rtt"]
        # whole lines; TTLs must rise strictly (gaps become "*" lines), else
        # _Decline sends the trace to the general renderer
        L += [f"{IND}if ttl <= last[0]: raise _Decline",
              f"{IND}while last[0] + 1 < ttl:",
              f"{IND}    last[0] += 1",
              f"{IND}    append(_STAR[last[0]])",
              f"{IND}last[0] = ttl",
              f"{IND}q, r = divmod({rtt}, 1000)",
              f"{IND}if {f} & 0x60 or {it} != 11:",
              f"{IND}    append(f'{{_P[ttl]}}{{addr[0]}}  {{q}}.{{_MS3[r]}} ms'"
              f" + _note({f}, {it}, {ic}, {tf}, addr[1]))",
              f"{IND}else:",
              f"{IND}    append(f'{{_P[ttl]}}{{addr[0]}}  {{q}}.{{_MS3[r]}} ms')"]
    else:
        vals["att"] = "(att + 1) & 255" if 5 in ids else "1"  # u8 in scamper: 256 wraps to 0
        # defaults for replies that quote the probe (see TraceHop.icmp_q_ipl)
        if 13 not in ids or 14 not in ids:
            fl, it = vals["flags"], vals["it"]
            L.append(f"{IND}q = not {fl} & 0x60 and ({it} in _Q4 if type(addr) is _V4 else {it} in _Q6)")
            if 13 not in ids:
                vals["qipl"] = f"({vals['psize']} if q else 0)"
            if 14 not in ids:
                vals["qttl"] = "(1 if q else 0)"
        args = ", ".join(vals[k] for k in _HOP_ARGS)
        L.append(f"{IND}append(TraceHop({args}))")
    L += [f"{IND}pos = end", f"{IND}k += 1", "    return pos, k"]
    exec("\n".join(L), env)  # noqa: S102 - source built only from the tables above
    return env["run"]


# address field bytes -> (text as scamper prints it, is IPv4); the text
# renderer's fast path keeps these instead of address objects
_text_addr_cache: dict = {}
_text_decoders: dict = {}


def _text_addr_slow(buf, pos, table):
    n = buf[pos]
    end = pos + 2 + n
    if end > len(buf):
        raise _Bad("address runs past the record")
    atype = buf[pos + 1]
    if _ADDR_LEN.get(atype) != n:
        raise _Bad(f"address of type {atype} with length {n}")
    if atype == 1:
        ent = (f"{buf[pos + 2]}.{buf[pos + 3]}.{buf[pos + 4]}.{buf[pos + 5]}", True)
    else:
        from ixpscamper.warts.text import addr_str
        ent = (addr_str(_mkaddr(atype, bytes(buf[pos + 2:end]))), False)
    if len(_text_addr_cache) >= _ADDR_CACHE_MAX:
        _text_addr_cache.clear()
    _text_addr_cache[bytes(buf[pos:end])] = ent
    table.append(ent)
    return ent, end


def _addr_text(buf, pos, table):
    n = buf[pos]
    if n:
        ent = _text_addr_cache.get(buf[pos:pos + 2 + n])
        if ent is None:
            return _text_addr_slow(buf, pos, table)
        table.append(ent)
        return ent, pos + 2 + n
    idx = _U32.unpack_from(buf, pos + 1)[0]
    if idx >= len(table):
        raise _Bad(f"address reference {idx} not in the record's table ({len(table)} entries)")
    return table[idx], pos + 5


def _saddr_text(buf, pos):
    if buf[pos] == 0:
        raise _Bad("static address of length 0")
    return _text_addr_slow(buf, pos, [])


class _Decline(Exception):
    """Internal: the text fast path hands this trace to the general renderer."""


def _hops(buf, pos, table, mode: str = "hop", out: Optional[list] = None, last=None):
    n = (buf[pos] << 8) | buf[pos + 1]
    pos += 2
    if out is None:
        out = []
    append = out.append
    decs = _text_decoders if mode == "text" else _hop_decoders
    while n:
        p = pos
        while buf[p] & 0x80:
            p += 1
        fb = buf[pos:p + 1]
        run = decs.get(fb)
        if run is None:
            if fb == b"\x00":
                raise _Bad("hop record without fields")
            if len(decs) >= _DECODERS_MAX:
                decs.clear()
            run = decs[bytes(fb)] = _compile_hop(fb, mode)
        # consecutive hops nearly always share their flag bytes: one call decodes them all
        pos, k = run(buf, pos, table, n, append, last)
        n -= k
    return out, pos


def _pmtud(buf, pos, end, table) -> TracePmtud:
    v, pos = _params("pmtud", buf, pos, table)
    ifmtu, pmtu, outmtu, ver, notec = v if v is not None else (None,) * 5
    hops, pos = _hops(buf, pos, table)
    notes = []
    for _ in range(notec or 0):
        nv, pos = _params("note", buf, pos, table)
        ntype, nhmtu, idx = nv if nv is not None else (None, None, None)
        if idx is not None and idx >= len(hops):
            raise _Bad("PMTUD note refers to a missing reply")
        notes.append(PmtudNote(ntype or 0, nhmtu or 0, idx))
    if pos > end:
        raise _Bad("PMTUD block overruns its length")
    return TracePmtud(ifmtu or 0, pmtu or 0, outmtu or 0, 1 if ver is None else ver, hops, notes)


class _Resolver:
    """File-wide state: lists and cycles by warts id."""

    def __init__(self) -> None:
        self.lists: dict[int, WartsList] = {}
        self.cycles: dict[int, CycleStart] = {}
        self.next_cycle = 1

    def list_of(self, lid):
        if not lid:
            return None
        lst = self.lists.get(lid)
        if lst is None:
            raise _Bad(f"reference to unknown list id {lid}")
        return lst

    def cycle_of(self, cid):
        if not cid:
            return None
        c = self.cycles.get(cid)
        if c is None:
            raise _Bad(f"reference to unknown cycle id {cid}")
        return c

    # ---- record decoders; each takes the body bytes

    def list_rec(self, buf):
        wid, hid = struct.unpack_from(">II", buf, 0)
        name, pos = _str(buf, 8, len(buf))
        v, pos = _params("list", buf, pos, None)
        descr, monitor = v if v is not None else (None, None)
        if wid != len(self.lists) + 1:
            raise _Bad(f"list id {wid} out of sequence (expected {len(self.lists) + 1})")
        lst = WartsList(name, hid, descr, monitor)
        self.lists[wid] = lst
        return lst

    def cycle_rec(self, buf, cls):
        wid, lid, hid, start = struct.unpack_from(">IIII", buf, 0)
        v, pos = _params("cycle", buf, 16, None)
        stop, host = v if v is not None else (None, None)
        if wid != self.next_cycle:
            raise _Bad(f"cycle id {wid} out of sequence (expected {self.next_cycle})")
        lst = self.lists.get(lid)
        if lst is None:
            raise _Bad(f"cycle refers to unknown list id {lid}")
        c = cls(lst, start, hid, stop or 0, host)
        self.cycles[wid] = c
        self.next_cycle += 1
        return c

    def cycle_stop(self, buf):
        cid, stop = struct.unpack_from(">II", buf, 0)
        _params("cycle", buf, 8, None)
        c = self.cycles.pop(cid, None)
        if c is None:
            raise _Bad(f"cycle stop for unknown cycle id {cid}")
        return CycleStop(c, stop)

    def trace(self, buf):
        table: list = []
        v, pos = _params("trace", buf, 0, table)
        if v is None:
            raise _Bad("trace without header fields")
        (lid, cid, sgid, dgid, start, sr, sd, f8, att, hl, meth, psize, sport, dport, fh, tos,
         wait, loops, hc, gl, ga, la, probec, wp, conf, src, dst, uid, off, rtr, sq, f32,
         stophop, errmsg) = v
        if dst is None:
            raise _Bad("trace without a destination")
        flags = f32 if f32 is not None else (f8 or 0)
        hops, pos = _hops(buf, pos, table)
        maxttl = 0
        for h in hops:
            if h.probe_ttl > maxttl:
                maxttl = h.probe_ttl
        if not hc:
            hc = maxttl
        elif hc < maxttl or hc > 255:
            raise _Bad(f"hop count {hc} inconsistent with hop records (TTL up to {maxttl})")
        tr = Trace(dst, src, rtr, self.list_of(lid), self.cycle_of(cid),
                   start if start is not None else Timeval(0, 0), sr or 0, sd or 0, flags,
                   att or 0, hl or 0, meth or 0, psize or 0, sport or 0, dport or 0,
                   1 if fh is None else fh, tos or 0, wait or 0, loops or 0, hc, gl or 0,
                   ga or 0, la or 0, probec or 0, wp or 0, conf or 0, uid or 0, off or 0,
                   1 if sq is None else sq, stophop or 0, errmsg, hops)
        # optional blocks, ended by a 0 header.  20211212 stops after a
        # zero hop count; being lenient here, read blocks while bytes remain.
        n = len(buf)
        while pos + 2 <= n:
            hdr = (buf[pos] << 8) | buf[pos + 1]
            pos += 2
            if hdr == 0:
                break
            btype = hdr >> 12
            blen = hdr & 0xFFF
            bend = pos + blen
            if bend > n:
                raise _Bad("optional block runs past the record")
            if btype == 1:
                tr.pmtud = _pmtud(buf, pos, bend, table)
            elif btype == 2:
                ld, p2 = _params("hop", buf, pos, table)  # one flag byte, always 00
                tr.lastditch, p2 = _hops(buf, p2, table)
                if p2 > bend:
                    raise _Bad("last-ditch block overruns its length")
            else:
                tr.other_blocks.append((btype, bytes(buf[pos:bend])))
            pos = bend
        else:
            if hops or pos < n:
                raise _Bad("trace record lacks its end marker")
        return tr

    def trace_text(self, buf):
        """sc_warts2text's text for a trace body, straight from the bytes.

        The fast path of ``ixp-warts2text``: no record objects are built.
        It returns None for anything but the common shape (one reply per
        TTL, in order, no optional blocks, no all-attempts flag) and for
        any fault, so the caller falls back to :meth:`decode`, which
        renders the other shapes and raises the proper error.
        """
        try:
            table: list = []
            v, pos = _params("trace_text", buf, 0, table)
            if v is None:
                return None
            (lid, cid, sgid, dgid, start, sr, sd, f8, att, hl, meth, psize, sport, dport, fh,
             tos, wait, loops, hc, gl, ga, la, probec, wp, conf, src, dst, uid, off, rtr, sq, f32,
             stophop, errmsg) = v
            if dst is None or (lid and lid not in self.lists) or (cid and cid not in self.cycles):
                return None
            flags = f32 if f32 is not None else (f8 or 0)
            if flags & 0x01:
                return None
            from ixpscamper.warts.text import _STAR_LINE
            head = "traceroute"
            if src is not None:
                head += " from " + src[0]
            head += " to " + dst[0]
            if rtr is not None:
                head += " via " + rtr[0]
            last = [0]
            lines, pos = _hops(buf, pos, table, "text", [head], last)
            n = len(buf)
            if not (n - pos == 2 and buf[pos] == 0 and buf[pos + 1] == 0) and not (
                    last[0] == 0 and pos == n):
                return None
            maxttl = last[0]
            if not hc:
                hc = maxttl
            elif hc < maxttl or hc > 255:
                return None
            if hc == 0:
                return head + "\n"
            for ttl in range(maxttl + 1, hc + 1):
                lines.append(_STAR_LINE[ttl])
            lines.append("")
            return "\n".join(lines)
        except (_Decline, _Bad, struct.error, IndexError, ValueError, TypeError, OverflowError):
            return None

    def ping(self, buf):
        table: list = []
        ctx: dict = {}
        v, pos = _params("ping", buf, 0, table)
        if v is None:
            raise _Bad("ping without header fields")
        (lid, cid, sgid, dgid, start, sr, sd, plen, pattern, pcount, psize, wait, ttl, rcount,
         sent, meth, sport, dport, uid, src, dst, f8, tos, tsps, csum, pmtu, timeout, wait_us,
         tcpack, f32, tcpseq, rtr, timeout_us, errmsg) = v
        if dst is None:
            raise _Bad("ping without a destination")
        sent = sent or 0
        wait = wait or 0
        p = Ping(dst, src, rtr, self.list_of(lid), self.cycle_of(cid),
                 start if start is not None else Timeval(0, 0), sr or 0, sd or 0,
                 pattern or b"", pcount or 0, psize or 0, wait, ttl or 0, rcount or 0, sent,
                 meth or 0, sport or 0, dport or 0, uid or 0,
                 f32 if f32 is not None else (f8 or 0), tos or 0, tsps, csum or 0, pmtu or 0,
                 wait if timeout is None else timeout, wait_us or 0, tcpack or 0, tcpseq or 0,
                 timeout_us or 0, errmsg)
        n = _U16.unpack_from(buf, pos)[0]
        pos += 2
        v4 = dst.version == 4
        default_proto = 1 if v4 else 58
        replies = p.replies
        for _ in range(n):
            rv, pos = _params("reply", buf, pos, table, ctx)
            if rv is None:
                raise _Bad("ping reply without fields")
            (_, rflags, rttl, rsize, tc, rtt, seq, ipid, pipid, proto, tcpf, addr, rr, ts,
             ipid32, tx, tsr, psport, rtos, ifname, nhmtu) = rv
            if addr is None:
                raise _Bad("ping reply without an address")
            seq = seq or 0
            if seq >= sent:
                raise _Bad(f"ping reply for probe {seq} but only {sent} sent")
            if tc is not None:
                it, ic = tc
            else:
                it = ic = 0
            r = PingReply(addr, seq, rtt or 0, rflags or 0, rttl or 0, rsize or 0,
                          default_proto if proto is None else proto, it, ic, tcpf or 0,
                          ipid or 0, pipid or 0, ipid32 or 0, tx, rr,
                          ts[0] if ts is not None else None, ts[1] if ts is not None else None,
                          tsr, psport, rtos, ifname, nhmtu)
            replies.append(r)
        if pos != len(buf):
            raise _Bad(f"{len(buf) - pos} stray bytes after the ping replies")
        return p

    def decode(self, rtype: int, body: bytes, offset: int):
        try:
            if rtype == 6:
                return self.trace(body)
            if rtype == 7:
                return self.ping(body)
            if rtype == 1:
                return self.list_rec(body)
            if rtype == 2:
                return self.cycle_rec(body, CycleStart)
            if rtype == 3:
                return self.cycle_rec(body, CycleDefinition)
            if rtype == 4:
                return self.cycle_stop(body)
            return UnknownRecord(rtype, bytes(body))
        except _Bad as e:
            reason = str(e)
        except (struct.error, IndexError):
            reason = "record body ends in the middle of a field"
        except (ValueError, TypeError, OverflowError) as e:  # e.g. a bad address
            reason = f"malformed field ({e})"
        raise WartsError(f"bad {_RECORD_NAMES.get(rtype, 'type %d' % rtype)} record: {reason}",
                         offset)


def _check_header(buf, offset: int):
    magic, rtype, length = _HDR.unpack_from(buf, 0)
    if magic != MAGIC:
        raise WartsError(f"bad magic 0x{magic:04x} (not a warts record)", offset)
    if rtype == 0:
        raise WartsError("record type 0", offset)
    if length > MAX_RECORD_LENGTH:
        raise WartsError(f"record length {length} exceeds the {MAX_RECORD_LENGTH}-byte limit",
                         offset)
    return rtype, length


class WartsDecoder:
    """Incremental decoder for a warts byte stream (sans-IO).

    ``feed(data)`` returns the records completed by ``data`` (possibly none),
    buffering any partial record.  When ``data`` holds intact records and
    then a fault, ``feed`` returns those records and the :class:`WartsError`
    is raised by the next call (``feed`` or :meth:`close`); after an error
    the decoder stays failed.  Call :meth:`close` at end of stream: it
    raises :class:`WartsError` if a partial record is pending.  ``offset``
    is the stream offset of the next undecoded byte; ``pending`` how many
    bytes are buffered.  Memory is bounded by :data:`MAX_RECORD_LENGTH`.
    """

    def __init__(self, *, skip_unknown: bool = False) -> None:
        self._buf = bytearray()
        self._res = _Resolver()
        self.offset = 0
        self._skip_unknown = skip_unknown
        self._failed: Optional[WartsError] = None

    def feed(self, data: bytes) -> list:
        if self._failed is not None:
            raise self._failed
        buf = self._buf
        buf += data
        out = []
        pos = 0
        n = len(buf)
        try:
            while n - pos >= 8:
                rtype, length = _check_header(buf[pos:pos + 8], self.offset)
                if n - pos - 8 < length:
                    break
                body = bytes(buf[pos + 8:pos + 8 + length])
                rec = self._res.decode(rtype, body, self.offset)
                pos += 8 + length
                self.offset += 8 + length
                if not (self._skip_unknown and type(rec) is UnknownRecord):
                    out.append(rec)
        except WartsError as e:
            self._failed = e
            del buf[:pos]
            if out:
                # hand back what was intact; the error surfaces on the next call
                return out
            raise
        del buf[:pos]
        return out

    def close(self) -> None:
        """Declare end of stream; raise :class:`WartsError` if a record is incomplete."""
        if self._failed is not None:
            raise self._failed
        if self._buf:
            n = len(self._buf)
            if n < 8:
                what = f"truncated record header ({n} of 8 bytes)"
            else:
                _, _, length = _HDR.unpack_from(self._buf, 0)
                what = f"truncated record: {n - 8} of {length} body bytes"
            self._failed = WartsError(what, self.offset)
            raise self._failed

    @property
    def pending(self) -> int:
        """Bytes buffered that do not yet make a whole record."""
        return len(self._buf)


def _iter_raw(fileobj: BinaryIO):
    """Yield ``(type, body, offset)`` per record, checking only the framing."""
    offset = 0
    read = fileobj.read
    while True:
        hdr = read(8)
        if not hdr:
            return
        while len(hdr) < 8:
            more = read(8 - len(hdr))
            if not more:
                raise WartsError(f"truncated record header ({len(hdr)} of 8 bytes)", offset)
            hdr += more
        rtype, length = _check_header(hdr, offset)
        body = read(length) if length else b""
        while len(body) < length:
            more = read(length - len(body))
            if not more:
                raise WartsError(f"truncated record: {len(body)} of {length} body bytes", offset)
            body += more
        yield rtype, body, offset
        offset += 8 + length


def iter_records(fileobj: BinaryIO, *, skip_unknown: bool = False) -> Iterator:
    """Yield the records of a warts stream read from the binary file ``fileobj``.

    Reads one record at a time (never the whole file).  Records of types this
    codec does not decode are yielded as :class:`UnknownRecord` unless
    ``skip_unknown``.  Raises :class:`WartsError` at the first fault, after
    yielding every intact record before it.
    """
    res = _Resolver()
    decode = res.decode
    for rtype, body, offset in _iter_raw(fileobj):
        rec = decode(rtype, body, offset)
        if skip_unknown and type(rec) is UnknownRecord:
            continue
        yield rec


def iter_text(fileobj: BinaryIO) -> Iterator[str]:
    """Yield what ``sc_warts2text`` prints for each record of ``fileobj``.

    Equivalent to ``render_text(rec) for rec in iter_records(fileobj)`` (and
    tested to be), but renders common traces straight from their bytes.
    Raises :class:`WartsError` like :func:`iter_records`.
    """
    from ixpscamper.warts.text import render_text
    res = _Resolver()
    decode = res.decode
    fast = res.trace_text
    for rtype, body, offset in _iter_raw(fileobj):
        if rtype == 6:
            s = fast(body)
            if s is not None:
                yield s
                continue
        s = render_text(decode(rtype, body, offset))
        if s:
            yield s


def read_records(data: bytes, *, skip_unknown: bool = False) -> list:
    """Decode a complete warts byte string into a list of records."""
    dec = WartsDecoder(skip_unknown=skip_unknown)
    out = dec.feed(data)
    out += dec.feed(b"")
    dec.close()
    return out
