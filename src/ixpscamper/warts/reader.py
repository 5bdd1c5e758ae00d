"""Streaming warts reader.

:func:`iter_records` reads records one at a time from a binary file object;
:class:`WartsDecoder` takes bytes as they arrive (``feed``) and returns the
records completed so far.  Both resolve list and cycle references, so every
:class:`~ixpscamper.warts.records.Trace` / ``Ping`` carries its
:class:`WartsList` and cycle objects.  Any malformed input raises
:class:`WartsError`, which carries the byte offset of the fault; nothing
else escapes the reader for bad input.

"Malformed" is what scamper 20211212's own reader (the Debian tools) rejects,
and a damaged record it accepts is decoded to what it decodes: each field is
bounded by the end of the record rather than by its structure's declared
length, a declared length that overruns is only an error once something is
read from beyond the record, bytes after the last field are ignored, a later
run of replies with one TTL replaces an earlier one, and so on (each rule is
commented where it is implemented).  tests/test_warts_resilience.py checks
this against the real tools on seeded damage of the golden fixtures.

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

import attrs

from ixpscamper.warts.registry import codec_for_type
from ixpscamper.warts.text import ping_reply_line, ping_text_of
from ixpscamper.warts.records import (
    CycleDefinition, CycleStart, CycleStop, Dealias, DealiasAlly, DealiasBump, DealiasMercator,
    DealiasMidardisc, DealiasMidardiscRound, DealiasMidarest, DealiasPrefixscan, DealiasProbe,
    DealiasProbedef, DealiasRadargun, DealiasReply, IcmpExt, LinkAddress, Neighbourdisc,
    NeighbourdiscProbe, NeighbourdiscReply, Ping, PingReply, Sniff, SniffPkt, Sting, StingPkt,
    Udpprobe, UdpprobeProbe, UdpprobeReply, Http, HttpBuf,
    PmtudNote, Timeval, Trace, TraceHop, TracePmtud, Tracelb, TracelbLink, TracelbNode,
    TracelbProbe, TracelbProbeset, TracelbReply, UnknownRecord, WartsList,
)

__all__ = ["WartsError", "WartsDecoder", "iter_records", "iter_records_at", "iter_text",
           "read_records", "record_name", "split_point", "iter_part",
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
                 6: "trace", 7: "ping", 8: "tracelb", 9: "dealias", 10: "neighbourdisc",
                 11: "tbit", 12: "sting", 13: "sniff", 14: "host", 15: "http", 16: "udpprobe",
                 17: "owamp"}


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
    """An address object of warts type ``atype`` from exactly its bytes."""
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


def _addr_bytes(buf, pos):
    """scamper's reading of an inline address (length byte ``n`` != 0) at ``pos``.

    Returns ``(type, value bytes, next_pos)``.  Like scamper's extract_addr,
    the value is as long as the *type* says and the length byte only says how
    far to skip: a mismatch is not an error.  A value running past the record
    is (scamper would read past its buffer).
    """
    atype = buf[pos + 1]
    ln = _ADDR_LEN.get(atype)
    if ln is None:
        raise _Bad(f"address of unknown type {atype}")
    vend = pos + 2 + ln
    if vend > len(buf):
        raise _Bad("address runs past the record")
    return atype, bytes(buf[pos + 2:vend]), pos + 2 + buf[pos]


def _addr_slow(buf, pos, table):
    atype, raw, end = _addr_bytes(buf, pos)
    a = _mkaddr(atype, raw)
    if end - pos == len(raw) + 2:  # only well-formed fields are cache keys
        if len(_addr_key_cache) >= _ADDR_CACHE_MAX:
            _addr_key_cache.clear()
        _addr_key_cache[bytes(buf[pos:end])] = a
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
    if buf[pos] == 0:
        raise _Bad("static address of length 0")
    atype, raw, end = _addr_bytes(buf, pos)
    return _mkaddr(atype, raw), end


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
        raise _Bad("address list of length 0")  # scamper's reader rejects it too
    out = []
    for _ in range(n):
        a, pos = _addr(buf, pos, table)
        out.append(a)
    return out, pos


def _ts14(buf, pos, table):
    tsc = buf[pos]
    ipc = buf[pos + 1]
    if ipc and ipc != tsc:
        raise _Bad(f"timestamp option with {tsc} times but {ipc} addresses")
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
    # scamper's warts_icmpext_read, step for step: objects are bounded by the
    # record, not by the block, and the remaining length is a u16 that wraps
    # when an object claims more than is left
    nb = len(buf)
    total = _U16.unpack_from(buf, pos)[0]
    pos += 2
    if total == 0 or nb - pos < total:
        raise _Bad("bad ICMP extension length")
    out = []
    while total >= 4:
        dl, cn, ct = struct.unpack_from(">HBB", buf, pos)
        if nb - pos < dl + 4:
            raise _Bad("ICMP extension object runs past the record")
        out.append(IcmpExt(cn, ct, bytes(buf[pos + 4:pos + 4 + dl])))
        pos += 4 + dl
        total = (total - 4 - dl) & 0xFFFF
    if total:
        raise _Bad("ICMP extension objects do not fill their block")
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


def _xs(buf, pos, table):
    """Prefixscan's excluded addresses: a u16 count, then that many addresses."""
    n = _U16.unpack_from(buf, pos)[0]
    pos += 2
    out = []
    for _ in range(n):
        a, pos = _addr(buf, pos, table)
        out.append(a)
    return out, pos


def _headers(buf, pos, end):
    """HTTP headers: a u8 count, then that many strings."""
    n = buf[pos]
    pos += 1
    out = []
    for _ in range(n):
        h, pos = _str(buf, pos, end)
        out.append(h)
    return out, pos


def _sched(buf, pos):
    """A MIDAR discovery schedule: u32 count, then (timeval, u32 begin, u32 end) each."""
    n = _U32.unpack_from(buf, pos)[0]
    pos += 4
    if n > (len(buf) - pos) // 16:
        raise _Bad(f"schedule of {n} rounds runs past the record")
    out = []
    for _ in range(n):
        s, us, b, e = struct.unpack_from(">IIII", buf, pos)
        out.append(DealiasMidardiscRound(Timeval(s, us), b, e))
        pos += 16
    return out, pos


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

# tracelb (type 8) and dealias (type 9) structures, field by field
_TRACELB_HDR = ["I", "I", "I", "I", "tv", "H", "H", "H", "B", "B", "B", "B", "B", "B", "B", "H",
                "H", "I", "I", "B", "addr", "addr", "I", "B", "saddr", "str"]
_TLB_NODE = ["I", "B", "H", "B", "addr", "str"]
_TLB_LINK = ["H", "H", "B"]
_TLB_SET = ["H"]
_TLB_PROBE = ["tv", "H", "B", "B", "H"]
_TLB_REPLY = ["tv", "H", "B", "B", "tc", "B", "icmpext", "B", "B", "I", "addr"]
_DEALIAS_HDR = ["I", "I", "tv", "B", "B", "I", "I", "str"]
_DL_MERCATOR = ["B", "B"]
_DL_ALLY = ["H", "B", "B", "H", "B"]
_DL_RADARGUN = ["I", "H", "H", "I", "B", "B"]
_DL_PREFIXSCAN = ["addr", "addr", "addr", "xs", "B", "B", "H", "H", "B", "H", "B", "B"]
_DL_BUMP = ["H", "H", "B"]
_DL_MIDAREST = ["H", "B", "I", "I", "I"]
_DL_MIDARDISC = ["I", "I", "sched", "tv"]
_DL_PROBEDEF = ["I", "I", "I", "B", "B", "B", "I", "B", "H", "addr", "addr", "H", "H", "H"]
_DL_PROBE = ["I", "tv", "H", "H", "I"]
_DL_REPLY = ["I", "tv", "H", "B", "tc", "B", "icmpext", "B", "B", "addr", "I", "B", "H"]

_ND_HDR = ["I", "I", "I", "str", "tv", "B", "H", "B", "H", "H", "addr", "addr", "addr", "addr",
           "H", "str"]
_ND_PROBE = ["tv", "H"]
_ND_REPLY = ["tv", "addr"]
_SNIFF_HDR = ["I", "I", "I", "addr", "tv", "tv", "B", "I", "H", "I", "H", "str"]
_SNIFF_PKT = ["tv", "H", "bytes@2"]
_STING_HDR = ["I", "I", "I", "addr", "addr", "H", "H", "H", "H", "H", "B", "B", "B", "B", "H",
              "bytes@15", "tv", "tv", "H", "H", "I", "B", "str"]
_STING_PKT = ["B", "tv", "H", "bytes@3"]
_UP_HDR = ["I", "I", "I", "saddr", "saddr", "H", "H", "tv", "I", "B", "B", "H", "bytes@12", "B",
           "B", "B", "B", "H", "I", "str"]
_UP_PROBE = ["tv", "H", "B"]
_HTTP_HDR = ["I", "I", "I", "saddr", "saddr", "H", "H", "tv", "B", "B", "str", "str", "headers",
             "I", "I", "I", "tv", "str", "B", "str"]
_HTTP_BUF = ["B", "tv", "H", "bytes@3"]
_UP_REPLY = ["tv", "H", "bytes@2", "ifname"]

_SPECS = {"trace": _TRACE_HDR, "trace_text": _TRACE_HDR, "hop": _TRACE_HOP, "ping": _PING_HDR,
          "reply": _PING_REPLY,
          "list": _LIST_OPT, "cycle": _CYCLE_OPT, "pmtud": _PMTUD, "note": _PMTUD_NOTE,
          "tracelb": _TRACELB_HDR, "tlb_node": _TLB_NODE, "tlb_link": _TLB_LINK,
          "tlb_set": _TLB_SET, "tlb_probe": _TLB_PROBE, "tlb_reply": _TLB_REPLY,
          "dealias": _DEALIAS_HDR, "dl_1": _DL_MERCATOR, "dl_2": _DL_ALLY, "dl_3": _DL_RADARGUN,
          "dl_4": _DL_PREFIXSCAN, "dl_5": _DL_BUMP, "dl_6": _DL_MIDAREST, "dl_7": _DL_MIDARDISC,
          "dl_probedef": _DL_PROBEDEF, "dl_probe": _DL_PROBE, "dl_reply": _DL_REPLY,
          "nd": _ND_HDR, "nd_probe": _ND_PROBE, "nd_reply": _ND_REPLY, "sniff": _SNIFF_HDR,
          "sniff_pkt": _SNIFF_PKT, "sting": _STING_HDR, "sting_pkt": _STING_PKT,
          "udpprobe": _UP_HDR, "up_probe": _UP_PROBE, "up_reply": _UP_REPLY,
          "http": _HTTP_HDR, "http_buf": _HTTP_BUF}
#: how many fields of each structure scamper 20211212 reads.  Fields after
#: these come from newer scamper versions: the Debian tools skip them by
#: length, so a malformed one must not spoil the record; they are decoded
#: when they can be and read as absent otherwise.
_KNOWN_2021 = {"trace": 32, "trace_text": 32, "ping": 32, "reply": 17}
#: u32 fields that refer into the deprecated file-wide address table:
#: scamper 20211212 starts that table with one NULL entry and never adds to
#: it (it rejects every address record), so 0 reads as "no address" and
#: anything else is an error.  (Hop field 1: see _compile_hop.)
_GID_FIELDS = {"trace": (3, 4), "trace_text": (3, 4), "ping": (3, 4), "reply": (1,),
               "dtree": (1, 2), "tracelb": (3, 4), "tlb_node": (1,), "tlb_reply": (10,),
               "dl_probedef": (1, 2), "dl_reply": (1,)}

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


def _compile(kind: str, flagbytes: bytes, variant: Optional["_Variant"] = None):
    """Generate the decoder of one ``kind`` structure with these flag bytes.

    Without ``variant``: ``dec(buf, pos, end, table, ctx)`` (``pos`` past
    the u16 length) returns the tuple of field values (None where absent),
    as :func:`_params` hands them out.  With a :class:`_Variant`:
    ``dec(buf, pos, table, ctx)`` (``pos`` just past the flag bytes) reads
    the length itself and runs the variant's tail, which returns
    ``(result, end)``; see :func:`_sub`.
    """
    spec = _SPECS[kind]
    ids = _field_ids(flagbytes)
    # Every field is bounded by the end of the *record*, not by the declared
    # parameter length: scamper's warts_params_read checks each field against
    # the record and then jumps to the declared end, wherever that is.
    if variant is None:
        lines = ["def dec(buf, pos, end, table, ctx):", "    nb = len(buf)"]
    elif flagbytes == b"\x00":
        # no fields and no length: the structure is the one flag byte
        lines = ["def dec(buf, pos, table, ctx):", "    end = pos"]
        if variant.none_msg is not None:
            lines.append(f"    raise _Bad({variant.none_msg!r})")
        ids = []
    else:
        lines = ["def dec(buf, pos, table, ctx):", "    nb = len(buf)",
                 "    end = pos + 2 + _U16.unpack_from(buf, pos)[0]", "    pos += 2"]
    strict = _KNOWN_2021.get(kind, len(spec))
    gids = _GID_FIELDS.get(kind, ())
    ind = "    "
    lenient: list[int] = []
    env = {"_addr": _addr, "_saddr": _saddr, "_str": _str, "_addrlist": _addrlist,
           "_ts14": _ts14, "_icmpext": _icmpext, "_ifname": _ifname, "_Bad": _Bad,
           "_tn": _tuple_new, "Timeval": Timeval, "_SE": struct.error, "_xs": _xs,
           "_sched": _sched, "_headers": _headers, "_U16": _U16,
           "_acache": _addr_key_cache, "_addr_slow": _addr_slow, "_U32": _U32}
    if variant is not None:
        env.update(variant.env)
    if kind == "trace_text":
        # the text fast path: addresses as (text, is_ipv4), no objects
        env["_addr"] = _addr_text
        env["_saddr"] = _saddr_text
        env["_acache"] = _text_addr_cache
        env["_addr_slow"] = _text_addr_slow
    nvals = len(spec)
    present = set()
    run: list[tuple[int, str]] = []
    if variant is not None:
        # a variant's tail reads only some fields: the others are checked
        # (bounds, table references) but not turned into values
        import re
        tail = "\n".join(variant.tail)
        used = set(int(x) for x in re.findall(r"\bv(\d+)\b", tail))
        # a tc field's two bytes may be read as a<i>, b<i> (0 when absent)
        used_ab = set(int(x) for x in re.findall(r"\b[ab](\d+)\b", tail))
    else:
        used = None

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
        lines.append(f"{ind}{', '.join(targets)}, = {sname}.unpack_from(buf, pos)")
        lines.append(f"{ind}pos += {env[sname].size}")
        lines.extend(ind + p[4:] for p in post
                     if used is None or int(p.split("=")[0].strip()[1:]) in used)
        for fid, k in run:
            if fid in gids:
                lines.append(f"{ind}if v{fid}: raise _Bad('reference to the deprecated "
                             f"file-wide address table')")
        run.clear()

    for fid in ids:
        if fid > nvals:
            break  # a field newer than this codec: skip to the end by length
        k = spec[fid - 1]
        present.add(fid)
        if fid > strict and not lenient:
            # newer than 20211212: decode in a try, see _KNOWN_2021
            flush()
            lines.append("    try:")
            ind = "        "
        if fid > strict:
            lenient.append(fid)
        if k in _FIXED:
            run.append((fid, k))
            continue
        flush()
        if k == "addr" and variant is not None:
            # _addr inline: the cache of address field bytes, else the slow path
            lines += [f"{ind}m = buf[pos]",
                      f"{ind}if m:",
                      f"{ind}    v{fid} = _acache.get(buf[pos:pos + 2 + m])",
                      f"{ind}    if v{fid} is None:",
                      f"{ind}        v{fid}, pos = _addr_slow(buf, pos, table)",
                      f"{ind}    else:",
                      f"{ind}        table.append(v{fid})",
                      f"{ind}        pos += 2 + m",
                      f"{ind}else:",
                      f"{ind}    m = _U32.unpack_from(buf, pos + 1)[0]",
                      f"{ind}    if m >= len(table): raise _Bad(f'address reference {{m}} not in "
                      f"the record\\'s table ({{len(table)}} entries)')",
                      f"{ind}    v{fid} = table[m]",
                      f"{ind}    pos += 5"]
        elif k == "addr":
            lines.append(f"{ind}v{fid}, pos = _addr(buf, pos, table)")
        elif k == "saddr":
            lines.append(f"{ind}v{fid}, pos = _saddr(buf, pos)")
        elif k == "str":
            lines.append(f"{ind}v{fid}, pos = _str(buf, pos, nb)")
        elif k == "addrlist":
            lines.append(f"{ind}v{fid}, pos = _addrlist(buf, pos, table)")
        elif k == "ts14":
            lines.append(f"{ind}v{fid}, pos = _ts14(buf, pos, table)")
        elif k == "icmpext":
            lines.append(f"{ind}v{fid}, pos = _icmpext(buf, pos)")
        elif k == "ifname":
            lines.append(f"{ind}v{fid}, pos = _ifname(buf, pos, nb, ctx)")
        elif k.startswith("bytes@"):
            # length from an earlier field (0 if absent); extract_bytes_*
            # wants pos inside the record even for 0 bytes
            lf = int(k[6:])
            ln = f"(v{lf} or 0)" if lf in present else "0"
            lines.append(f"{ind}if pos >= nb or nb - pos < {ln}: "
                         f"raise _Bad('bytes run past the record')")
            lines.append(f"{ind}v{fid} = bytes(buf[pos:pos + {ln}]); pos += {ln}")
        elif k == "headers":
            lines.append(f"{ind}v{fid}, pos = _headers(buf, pos, nb)")
        elif k == "xs":
            lines.append(f"{ind}v{fid}, pos = _xs(buf, pos, table)")
        elif k == "sched":
            lines.append(f"{ind}v{fid}, pos = _sched(buf, pos)")
        elif k == "bytes8":
            # the pattern's length is the previous field (8); scamper's
            # extract_bytes_alloc wants pos inside the record even for 0 bytes
            ln = "v8" if 8 in present else "0"
            lines.append(f"{ind}if pos >= nb or nb - pos < {ln}: "
                         f"raise _Bad('ping pattern runs past the record')")
            lines.append(f"{ind}v{fid} = bytes(buf[pos:pos + {ln}]); pos += {ln}")
        else:  # pragma: no cover - spec tables only use the kinds above
            raise AssertionError(k)
    flush()
    if lenient:
        lines.append("    except (_Bad, _SE, IndexError, ValueError, TypeError, OverflowError):")
        lines.append("        " + " = ".join(f"v{i}" for i in lenient) + " = None")
    if variant is None:
        vals = ", ".join(f"v{i}" if i in present else "None" for i in range(1, nvals + 1))
        lines.append(f"    return ({vals},)")
    else:
        absent = [i for i in range(1, nvals + 1) if i not in present and i in used]
        if absent:
            lines.append("    " + " = ".join(f"v{i}" for i in absent) + " = None")
        for i in sorted(used_ab):
            if i not in present and spec[i - 1] == "tc":
                lines.append(f"    a{i} = b{i} = 0")
        lines.extend("    " + t for t in variant.tail)
    exec("\n".join(lines), env)  # noqa: S102 - source built only from the tables above
    return env["dec"]


@attrs.frozen
class _Variant:
    """What a generated decoder does with a structure's values (see :func:`_sub`).

    ``tail``: code lines run after the fields are decoded, in which field
    ``i`` is ``v<i>`` (None when absent); they end with ``return result,
    end``.  ``none_msg``: the error for a structure without any field (None:
    such a structure runs the tail with every field None).  ``env``: names
    the tail uses.  Only the fixed tables of this module ever reach the
    generated code.
    """

    kind: str
    tail: tuple
    none_msg: Optional[str] = None
    env: dict = attrs.field(factory=dict)


_VARIANTS: dict[str, _Variant] = {}
_vdecs: dict[str, dict] = {}


def _variant(name: str, kind: str, *tail: str, none_msg: Optional[str] = None, **env) -> None:
    _VARIANTS[name] = _Variant(kind, tail, none_msg, env)
    _vdecs[name] = {}


def _vcompile(name: str, fb):
    decs = _vdecs[name]
    if len(decs) >= _DECODERS_MAX:
        decs.clear()
    d = decs[bytes(fb)] = _compile(_VARIANTS[name].kind, bytes(fb), _VARIANTS[name])
    return d


def _sub(name: str, buf, pos: int, table, ctx=None):
    """Decode one structure at ``pos`` with variant ``name``: ``(result, next_pos)``.

    The fast counterpart of :func:`_params`: the generated decoder (one per
    variant and distinct flag bytes) also does what the caller would do
    with the values (defaults, required fields, building the object), so
    no tuple of values is built and unpacked.
    """
    p = pos
    while buf[p] & 0x80:
        p += 1
    p += 1
    d = _vdecs[name].get(buf[pos:p])
    if d is None:
        d = _vcompile(name, buf[pos:p])
    return d(buf, p, table, ctx)


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
    plen = _U16.unpack_from(buf, p)[0]
    p += 2
    # the declared end may lie past the record: scamper does not check, and
    # only fails if something is read from there
    end = p + plen
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
           "_icmpext": _icmpext, "_str": _str, "_V4": _V4, "_V6": _V6, "_Q4": _ICMP_Q4,
           "_Q6": _ICMP_Q6,
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
    # the u16 parameter length is read by the same unpack as the fixed fields
    fmt = "H"
    targets = ["plen"]
    if True:
        for i in fixed:
            if i == 7:
                fmt += "BB"
                targets += ["it", "ic"]
            elif i == 1:  # see "gid" at _FIXED
                fmt += "I"
                targets.append("gid")
            else:
                fmt += _FIXED[_TRACE_HOP[i - 1]]
                targets.append(_HOP_VAR[i])
                vals[_HOP_VAR[i]] = _HOP_VAR[i]
        if 7 in fixed:
            vals["it"], vals["ic"] = "it", "ic"
        st = _struct(fmt)
        # scamper keeps the TCP flags in the same byte as the ICMP type (a
        # union): whichever of fields 7 and 15 comes later wins, and that
        # byte is what both the ICMP and the TCP rendering read.  Only
        # inconsistent hops (ICMP with TCP flags, TCP with an ICMP type) see
        # the difference.
        fl = vals["flags"]
        union = []
        if 15 in ids:
            if 7 in fixed:
                union.append(f"{IND}if not {fl} & 0x60: it = tcpf")
            else:
                union.append(f"{IND}it = 0 if {fl} & 0x60 else tcpf")
                vals["it"] = "it"
        elif 7 in fixed and fl != "0":
            union.append(f"{IND}tcpf = it if {fl} & 0x20 else 0")
            vals["tcpf"] = "tcpf"
        env["S"] = st
        L.append(f"{IND}{', '.join(targets)}, = S.unpack_from(buf, pos)")
        # fields are bounded by the record, and the next hop starts at the
        # declared end wherever it is (see _compile)
        L.append(f"{IND}end = pos + 2 + plen")
        L.append(f"{IND}pos += {st.size}")
        if 1 in fixed:
            L.append(f"{IND}if gid: raise _Bad('reference to the deprecated file-wide "
                     f"address table')")
        L.extend(union)
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
            L += [f"{IND}pos += 8",
                  f"{IND}if pos > nb: raise _Bad('hop transmit time runs past the record')"]
        else:
            L += [f"{IND}tx = _tn(Timeval, _TV.unpack_from(buf, pos))", f"{IND}pos += 8"]
            vals["tx"] = "tx"
    if 20 in ids:
        L.append(f"{IND}name, pos = _str(buf, pos, nb)")
        vals["name"] = "name"
    if 2 not in ids:
        L.append(f"{IND}raise _Bad('hop record with probe TTL 0')")
    else:
        L.append(f"{IND}if not ttl: raise _Bad('hop record with probe TTL 0')")
    if text:
        f, it, ic, tf, rtt = vals["flags"], vals["it"], vals["ic"], vals["tcpf"], vals["rtt"]
        # whole lines; TTLs must rise strictly (gaps become "*" lines), else
        # _Decline sends the trace to the general renderer
        # (type 11 is time exceeded, without a note, for IPv4 only: in ICMPv6
        # it is "!<11,0>")
        L += [f"{IND}if ttl <= last[0]: raise _Decline",
              f"{IND}while last[0] + 1 < ttl:",
              f"{IND}    last[0] += 1",
              f"{IND}    append(_STAR[last[0]])",
              f"{IND}last[0] = ttl",
              f"{IND}q, r = divmod({rtt}, 1000)",
              f"{IND}if {f} & 0x60 or {it} != 11 or not addr[1]:",
              f"{IND}    append(f'{{_P[ttl]}}{{addr[0]}}  {{q}}.{{_MS3[r]}} ms'"
              f" + _note({f}, {it}, {ic}, {tf}, addr[1]))",
              f"{IND}else:",
              f"{IND}    append(f'{{_P[ttl]}}{{addr[0]}}  {{q}}.{{_MS3[r]}} ms')"]
    else:
        # stored minus one, a u8 in scamper: 256 wraps to 0; absent, it stays 0
        vals["att"] = "(att + 1) & 255" if 5 in ids else "0"
        # defaults for replies that quote the probe (see TraceHop.icmp_q_ipl)
        if 13 not in ids or 14 not in ids:
            fl, it = vals["flags"], vals["it"]
            # scamper's SCAMPER_TRACE_HOP_IS_ICMP_Q: IP addresses only
            L.append(f"{IND}ta = type(addr)")
            L.append(f"{IND}q = not {fl} & 0x60 and ({it} in _Q4 if ta is _V4 else "
                     f"({it} in _Q6 if ta is _V6 else False))")
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
    atype, raw, end = _addr_bytes(buf, pos)
    if atype == 1:
        ent = (f"{raw[0]}.{raw[1]}.{raw[2]}.{raw[3]}", True)
    elif atype == 2:
        from ixpscamper.warts.text import addr_str
        ent = (addr_str(_mkaddr(atype, raw)), False)
    else:
        # link-layer hop addresses: rare, and the notes differ; the general
        # renderer handles them
        raise _Decline
    if end - pos == len(raw) + 2:
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


_saddr_text_cache: dict = {}


def _saddr_text(buf, pos):
    if buf[pos] == 0:
        raise _Bad("static address of length 0")
    atype, raw, end = _addr_bytes(buf, pos)
    # (only well-formed fields are cache keys: the value is as long as the type says)
    key = buf[pos:end] if end - pos == len(raw) + 2 else None
    ent = _saddr_text_cache.get(key) if key is not None else None
    if ent is None:
        from ixpscamper.warts.text import addr_str
        ent = (addr_str(_mkaddr(atype, raw)), atype == 1)
        if key is not None:
            if len(_saddr_text_cache) >= _ADDR_CACHE_MAX:
                _saddr_text_cache.clear()
            _saddr_text_cache[bytes(key)] = ent
    return ent, end


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


def _by_ttl(hops: list) -> list:
    """The replies scamper's reader keeps, in TTL order.

    scamper files each *run* of consecutive replies with one TTL under that
    TTL; a later run with the same TTL replaces the earlier one, whose
    replies are lost.  Called only when the TTLs are not already in order.
    """
    runs: dict = {}
    cur = None
    prev = -1
    for h in hops:
        t = h.probe_ttl
        if t != prev:
            cur = runs[t] = []
            prev = t
        cur.append(h)
    return [h for t in sorted(runs) for h in runs[t]]


def _skip_params(buf, pos: int) -> int:
    """Step over a flags+params structure none of whose fields is read."""
    p = pos
    while buf[p] & 0x80:
        p += 1
    if p == pos and buf[p] == 0:
        return p + 1
    return p + 3 + _U16.unpack_from(buf, p + 1)[0]


_DTREE = ["I", "I", "B", "addr", "addr", "str", "B"]
_SPECS["dtree"] = _DTREE


def _pmtud(buf, pos, table) -> TracePmtud:
    # bounded by the record, not by the block's length (as scamper reads it)
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
    return TracePmtud(ifmtu or 0, pmtu or 0, outmtu or 0, 1 if ver is None else ver, hops, notes)


# --------------------------------------------------------------------------
# variants for the text fast paths (see _sub): each returns only what the
# renderer needs, after the same checks as the record decoders below make

# dealias: header (list, cycle, method, result, probe count)
_variant("dl_hdr_t", "dealias", "return (v1, v2, v4, v5, v6 or 0), end")
# the method's options: how many probedefs follow
_variant("dl_1_t", "dl_1", "return 1, end")
_variant("dl_2_t", "dl_2", "return 2, end")
_variant("dl_5_t", "dl_5", "return 2, end")
_variant("dl_4_t", "dl_4", "return (v10 or 0), end")
_variant("dl_3_t", "dl_3", "if not v1: raise _Bad('radargun without probedefs')", "return v1, end")
_variant("dl_6_t", "dl_6", "if not v1: raise _Bad('midarest without probedefs')", "return v1, end")
_variant("dl_7_t", "dl_7", "if not v1: raise _Bad('midardisc without probedefs')",
         "return v1, end")
_variant("dl_pd_t", "dl_probedef",
         "if v10 is None: raise _Bad('dealias probedef without a destination')",
         "if v4 not in _PDM: raise _Bad(f'dealias probedef with unknown method {v4 or 0}')",
         "return v10, end",
         none_msg="dealias probedef without fields", _PDM=frozenset({1, 2, 3, 4, 5, 6}))
_variant("dl_probe_t", "dl_probe", "return (v1 or 0, v3 or 0), end")
_variant("dl_reply_t", "dl_reply",
         "if v10 is None: raise _Bad('dealias reply without a source address')",
         "return None, end",
         none_msg="dealias reply without fields")
# tracelb: header (list, cycle, src, dst, nodec, linkc, probec, confidence)
_variant("tlb_hdr_t", "tracelb",
         "if v22 is None: raise _Bad('tracelb without a destination')",
         "return (v1, v2, v21, v22, v16 or 0, v17 or 0, v18 or 0, v14 or 0), end",
         none_msg="tracelb without header fields")
_variant("tlb_node_t", "tlb_node", "return (v5, v3 or 0), end")
_variant("tlb_link_t", "tlb_link",
         "if v1 is None: raise _Bad('tracelb link without a from node')",
         "return (v1, v2, v3 or 0), end")
_variant("tlb_set_t", "tlb_set", "return (v1 or 0), end")
_variant("tlb_probe_t", "tlb_probe", "return (v2 or 0, v5 or 0), end")
_variant("tlb_reply_t", "tlb_reply",
         "if v11 is None: raise _Bad('tracelb reply without an address')",
         "return v11, end",
         none_msg="tracelb reply without fields")

# the same, building the record's objects (the record decoders below)
_Z = Timeval(0, 0)
_variant("tlb_node_o", "tlb_node",
         "return (TracelbNode(v5, v6, v2 or 0, v4 or 0), v3 or 0), end", TracelbNode=TracelbNode)
_variant("tlb_link_o", "tlb_link",
         "if v1 is None: raise _Bad('tracelb link without a from node')",
         "return (v1, v2, v3 or 0), end")
_variant("tlb_probe_o", "tlb_probe",
         "return (TracelbProbe(v1 if v1 is not None else _Z, v2 or 0, v3 or 0, v4 or 0),"
         " v5 or 0), end", TracelbProbe=TracelbProbe, _Z=_Z)
_variant("tlb_reply_o", "tlb_reply",
         "if v11 is None: raise _Bad('tracelb reply without an address')",
         "return TracelbReply(v11, v1 if v1 is not None else _Z, v2 or 0, v3 or 0, v4 or 0,"
         " a5, b5, v9 or 0, v8 or 0, v7, v6 or 0), end",
         none_msg="tracelb reply without fields", TracelbReply=TracelbReply, _Z=_Z)
_variant("dl_pd_o", "dl_probedef",
         "if v10 is None: raise _Bad('dealias probedef without a destination')",
         "m = v4 or 0",
         "pd = DealiasProbedef(v10, v11, v3 or 0, m, v5 or 0, v6 or 0, v12 or 0, v13 or 0)",
         "if m == 1:",
         "    # older files keep the checksum in the low half of the 4 bytes",
         "    pd.icmp_csum = (v7 & 0xFFFF) if v7 is not None else (v14 or 0)",
         "    pd.icmp_id = v9 or 0",
         "elif m in (2, 3, 4, 5, 6):",
         "    m4 = v7 or 0",
         "    pd.sport, pd.dport = m4 >> 16, m4 & 0xFFFF",
         "    if m in (2, 4, 6):",
         "        pd.tcp_flags = v8 or 0",
         "else:",
         "    raise _Bad(f'dealias probedef with unknown method {m}')",
         "return pd, end",
         none_msg="dealias probedef without fields", DealiasProbedef=DealiasProbedef)
# (ctx: the probedefs)
_variant("dl_probe_o", "dl_probe",
         "m = v1 or 0",
         "if m >= len(ctx): raise _Bad(f'dealias probe refers to probedef {m} of {len(ctx)}')",
         "return (DealiasProbe(ctx[m], v5 or 0, v2 if v2 is not None else _Z, v4 or 0),"
         " v3 or 0), end", DealiasProbe=DealiasProbe, _Z=_Z)
_variant("dl_reply_o", "dl_reply",
         "if v10 is None: raise _Bad('dealias reply without a source address')",
         "return DealiasReply(v10, v2 if v2 is not None else _Z, v3 or 0, v11 or 0, v4 or 0,"
         " v13 or 0, v12 or 0, (1 if type(v10) is _V4 else 58) if v8 is None else v8, a5, b5,"
         " v6 or 0, v9 or 0, v7), end",
         none_msg="dealias reply without fields", DealiasReply=DealiasReply, _Z=_Z, _V4=_V4)
# (ctx: the ping's interface names, and under "_sent" / "_dp" its probe count and
# the default reply protocol)
_variant("reply_o", "reply",
         "if v12 is None: raise _Bad('ping reply without an address')",
         "m = v7 or 0",
         "if m >= ctx['_sent']: raise _Bad(f\"ping reply for probe {m} but only {ctx['_sent']} sent\")",
         "return PingReply(v12, m, v6 or 0, v2 or 0, v3 or 0, v4 or 0,"
         " ctx['_dp'] if v10 is None else v10, a5, b5, v11 or 0, v8 or 0, v9 or 0, v15 or 0,"
         " v16, v13, v14[0] if v14 is not None else None, v14[1] if v14 is not None else None,"
         " v17, v18, v19, v20, v21), end",
         none_msg="ping reply without fields", PingReply=PingReply)

# ping (text): header (list, cycle, src, dst, probe size, probes sent); replies
# (ctx as for "reply_o") as (probe id, RTT, the lines sc_warts2text prints)
_variant("ping_hdr_t", "ping",
         "if v21 is None: raise _Bad('ping without a destination')",
         "return (v1, v2, v20, v21, v11 or 0, v15 or 0), end",
         none_msg="ping without header fields")
_variant("reply_t", "reply",
         "if v12 is None: raise _Bad('ping reply without an address')",
         "m = v7 or 0",
         "if m >= ctx['_sent']: raise _Bad(f\"ping reply for probe {m} but only {ctx['_sent']} sent\")",
         "return (m, v6 or 0, _line(v12, m, v4 or 0, v3 or 0, ctx['_dp'] if v10 is None else v10,"
         " v6 or 0, v17, v11 or 0, v13, v14[0] if v14 is not None else None,"
         " v14[1] if v14 is not None else None)), end",
         none_msg="ping reply without fields", _line=ping_reply_line)

# trace (text): list, cycle, flags, hop count, src, dst, rtr (addresses as
# (text, is IPv4), see _addr_text)
_variant("trace_hdr_t", "trace_text",
         "return (v1, v2, v32 if v32 is not None else (v8 or 0), v19, v26, v27, v30), end",
         none_msg="trace without header fields")

_DEALIAS_METHODS = {1: "mercator", 2: "ally", 3: "radargun", 4: "prefixscan", 5: "bump",
                    6: "midarest", 7: "midardisc"}
_DEALIAS_RESULTS = {0: "none", 1: "aliases", 2: "not aliases"}
_DL_T = {m: f"dl_{m}_t" for m in range(1, 8)}


def _dealias_name(method: int) -> str:
    return f"dealias ({_DEALIAS_METHODS.get(method, f'method {method}')})"


#: record types each Debian tool decodes (and prints) beyond lists, cycles,
#: traces and pings: a file holding one cannot be printed like the tool does
_TOOL_TYPES = {"sc_warts2text": {8: "tracelb", 9: "dealias", 11: "tbit", 12: "sting"},
               "sc_warts2json": {8: "tracelb", 9: "dealias", 11: "tbit"}}


#: record types beyond trace and ping that our renderers print like each tool
#: (10, 16: types 20211212's sc_warts2json skips, printed as 2026's prints them)
#: types decoded here rather than by a codec in :mod:`ixpscamper.warts.registry`
_CORE_TYPES = frozenset({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13, 15, 16})

_RENDERED: dict[str, set] = {"sc_warts2text": {8, 9, 12}, "sc_warts2json": {8, 9, 10, 16}}


class _Resolver:
    """File-wide state: lists and cycles by warts id.

    ``like`` names a Debian tool (``"sc_warts2text"`` / ``"sc_warts2json"``)
    whose reader's extra rules apply: records it would reject, or decode
    where we cannot, are errors.
    """

    def __init__(self, like: Optional[str] = None) -> None:
        self.lists: dict[int, WartsList] = {}
        self.cycles: dict[int, CycleStart] = {}
        self.next_cycle = 1
        if like is not None and like not in _TOOL_TYPES:
            raise ValueError(f"like must be one of {sorted(_TOOL_TYPES)}, not {like!r}")
        self.like = like

    def unknown_like(self, rtype: int, body) -> None:
        """Check a record of a type we do not decode as ``self.like`` would."""
        if rtype == 5:
            # the deprecated address record: 20211212 rejects any it meets
            raise _Bad("deprecated address record")
        name = _TOOL_TYPES[self.like].get(rtype)
        if name is not None:
            raise _Bad(f"{name} records are not supported")
        if not body:
            raise _Bad("empty record")  # scamper's read of 0 bytes fails

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
        # scamper's warts_list_read: at least ids, a name and a flags byte;
        # whatever follows the parameters is ignored
        if len(buf) < 11:
            raise _Bad(f"list record of {len(buf)} bytes (at least 11)")
        wid, hid = struct.unpack_from(">II", buf, 0)
        if wid != len(self.lists) + 1:
            raise _Bad(f"list id {wid} out of sequence (expected {len(self.lists) + 1})")
        name, pos = _str(buf, 8, len(buf))
        v, pos = _params("list", buf, pos, None)
        descr, monitor = v if v is not None else (None, None)
        lst = WartsList(name, hid, descr, monitor)
        self.lists[wid] = lst
        return lst

    def cycle_rec(self, buf, cls):
        if len(buf) < 17:
            raise _Bad(f"cycle record of {len(buf)} bytes (at least 17)")
        wid, lid, hid, start = struct.unpack_from(">IIII", buf, 0)
        if wid != self.next_cycle:
            raise _Bad(f"cycle id {wid} out of sequence (expected {self.next_cycle})")
        lst = self.lists.get(lid)
        if lst is None:  # (scamper cannot make a cycle of its null list 0 either)
            raise _Bad(f"cycle refers to unknown list id {lid}")
        v, pos = _params("cycle", buf, 16, None)
        stop, host = v if v is not None else (None, None)
        c = cls(lst, start, hid, stop or 0, host)
        self.cycles[wid] = c
        self.next_cycle += 1
        return c

    def cycle_stop(self, buf):
        # scamper reads the id and the stop time and nothing else
        if len(buf) < 9:
            raise _Bad(f"cycle stop record of {len(buf)} bytes (at least 9)")
        cid, stop = struct.unpack_from(">II", buf, 0)
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
        lst = self.list_of(lid)
        cyc = self.cycle_of(cid)
        hops, pos = _hops(buf, pos, table)
        maxttl = 0
        for h in hops:
            t = h.probe_ttl
            if t < maxttl:  # out of TTL order: file them as scamper does
                hops = _by_ttl(hops)
                maxttl = hops[-1].probe_ttl
                break
            maxttl = t
        if not hc:
            hc = maxttl
        elif hc < maxttl or hc > 255:
            raise _Bad(f"hop count {hc} inconsistent with hop records (TTL up to {maxttl})")
        tr = Trace(dst, src, rtr, lst, cyc,
                   start if start is not None else Timeval(0, 0), sr or 0, sd or 0, flags,
                   att or 0, hl or 0, meth or 0, psize or 0, sport or 0, dport or 0,
                   1 if fh is None else fh, tos or 0, wait or 0, loops or 0, hc, gl or 0,
                   ga or 0, la or 0, probec or 0, wp or 0, conf or 0, uid or 0, off or 0,
                   1 if sq is None else sq, stophop or 0, errmsg, hops)
        if hops:
            self._blocks(tr, buf, pos, table)
        else:
            # 20211212 stops reading a trace without replies here; newer
            # scamper may put blocks after it, which are kept when intact
            try:
                self._blocks(tr, buf, pos, table)
            except (_Bad, struct.error, IndexError, ValueError, TypeError, OverflowError):
                tr.pmtud, tr.lastditch, tr.other_blocks = None, None, []
        return tr

    @staticmethod
    def _blocks(tr, buf, pos, table):
        """The optional blocks after a trace's hops, up to the 0 end marker.

        As scamper reads them: each block is parsed from its start up to the
        end of the *record*, and the next starts where the block header says.
        """
        while True:
            hdr = _U16.unpack_from(buf, pos)[0]
            pos += 2
            if hdr == 0:
                return
            btype = hdr >> 12
            blen = hdr & 0xFFF
            if btype == 1:
                tr.pmtud = _pmtud(buf, pos, table)
            elif btype == 2:
                p2 = _skip_params(buf, pos)  # no fields scamper reads
                tr.lastditch, _ = _hops(buf, p2, table)
            else:
                if btype == 3:  # doubletree: only checked, as text and JSON ignore it
                    _params("dtree", buf, pos, table)
                tr.other_blocks.append((btype, bytes(buf[pos:pos + blen])))
            pos += blen

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
            (lid, cid, flags, hc, src, dst, rtr), pos = _sub("trace_hdr_t", buf, 0, table)
            if dst is None or (lid and lid not in self.lists) or (cid and cid not in self.cycles):
                return None
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
        if src is None and self.like:
            # scamper's reader requires it; our own API reads such pings
            raise _Bad("ping without a source")
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
        ctx["_sent"] = sent
        ctx["_dp"] = 1 if type(dst) is _V4 else 58
        append = p.replies.append
        D = _vdecs["reply_o"]
        for _ in range(n):
            q = pos
            while buf[q] & 0x80:
                q += 1
            q += 1
            d = D.get(buf[pos:q]) or _vcompile("reply_o", buf[pos:q])
            r, pos = d(buf, q, table, ctx)
            append(r)
        # (bytes after the replies are ignored, as scamper does)
        return p

    # ---- tracelb (type 8), as scamper_file_warts_tracelb_read reads it

    def tracelb(self, buf):
        table: list = []
        v, pos = _params("tracelb", buf, 0, table)
        if v is None:
            raise _Bad("tracelb without header fields")
        (lid, cid, _sg, _dg, start, sport, dport, psize, typ, fh, wt, wp, att, conf, tos, nodec,
         linkc, probec, pmax, gl, src, dst, uid, flags, rtr, errmsg) = v
        if dst is None:
            raise _Bad("tracelb without a destination")
        # scamper allocates the structure zeroed: absent fields read as 0
        t = Tracelb(dst, src, rtr, self.list_of(lid), self.cycle_of(cid), uid or 0,
                    start if start is not None else Timeval(0, 0), sport or 0, dport or 0,
                    psize or 0, typ or 0, fh or 0, att or 0, conf or 0, tos or 0, gl or 0,
                    flags or 0, probec or 0, pmax or 0, wt or 0, wp or 0, errmsg)
        nodec = nodec or 0
        nodes = t.nodes
        declared = []
        sub = _sub
        for _ in range(nodec):
            (node, nl), pos = sub("tlb_node_o", buf, pos, table)
            nodes.append(node)
            declared.append(nl)
        DP = _vdecs["tlb_probe_o"]
        DR = _vdecs["tlb_reply_o"]
        for i in range(linkc or 0):
            (frm, to, hopc), pos = sub("tlb_link_o", buf, pos, table)
            if frm >= nodec:
                raise _Bad(f"tracelb link from node {frm} of {nodec}")
            if to is not None and to >= nodec:
                raise _Bad(f"tracelb link to node {to} of {nodec}")
            link = TracelbLink(frm, to)
            for _ in range(hopc):
                n, pos = sub("tlb_set_t", buf, pos, table)
                ps = TracelbProbeset()
                probes = ps.probes
                for _ in range(n):
                    # (_sub inline: these loops are the whole of the work)
                    p = pos
                    while buf[p] & 0x80:
                        p += 1
                    p += 1
                    d = DP.get(buf[pos:p]) or _vcompile("tlb_probe_o", buf[pos:p])
                    (pr, rxc), pos = d(buf, p, table, None)
                    rxs = pr.rxs
                    for _ in range(rxc):
                        p = pos
                        while buf[p] & 0x80:
                            p += 1
                        p += 1
                        d = DR.get(buf[pos:p]) or _vcompile("tlb_reply_o", buf[pos:p])
                        r, pos = d(buf, p, table, None)
                        rxs.append(r)
                    probes.append(pr)
                link.sets.append(ps)
            t.links.append(link)
            # each node's links are the links from it, in order; there must
            # be exactly as many as the node declares (scamper checks both)
            nl = nodes[frm].links
            if len(nl) == declared[frm]:
                raise _Bad(f"tracelb node {frm} has more links than its {declared[frm]}")
            nl.append(i)
        for i, n in enumerate(nodes):
            if len(n.links) != declared[i]:
                raise _Bad(f"tracelb node {i} declares {declared[i]} links but has "
                           f"{len(n.links)}")
        return t

    # ---- dealias (type 9), as scamper_file_warts_dealias_read reads it

    def dealias(self, buf):
        v, pos = _params("dealias", buf, 0, None)
        lid, cid, start, method, result, probec, uid, errmsg = (
            v if v is not None else (None,) * 8)
        d = Dealias(method or 0, None, self.list_of(lid), self.cycle_of(cid), uid or 0,
                    start if start is not None else Timeval(0, 0), result or 0, errmsg)
        if not method or method > 7:
            return d  # scamper reads a method it does not know as a bare header
        table: list = []
        mv, pos = _params(f"dl_{method}", buf, pos, table)
        data, defs, pos = self._dl_method(method, mv, buf, pos, table)
        d.data = data
        append = d.probes.append
        DP = _vdecs["dl_probe_o"]
        DR = _vdecs["dl_reply_o"]
        for _ in range(probec or 0):
            # (_sub inline: these loops are the whole of the work)
            p = pos
            while buf[p] & 0x80:
                p += 1
            p += 1
            dec = DP.get(buf[pos:p]) or _vcompile("dl_probe_o", buf[pos:p])
            (pr, replyc), pos = dec(buf, p, table, defs)
            rappend = pr.replies.append
            for _ in range(replyc):
                p = pos
                while buf[p] & 0x80:
                    p += 1
                p += 1
                dec = DR.get(buf[pos:p]) or _vcompile("dl_reply_o", buf[pos:p])
                r, pos = dec(buf, p, table, None)
                rappend(r)
            append(pr)
        return d

    def _probedefs(self, n, buf, pos, table):
        out = []
        for _ in range(n):
            pd, pos = _sub("dl_pd_o", buf, pos, table)
            out.append(pd)
        return out, pos

    def _dl_method(self, method, mv, buf, pos, table):
        """The method's options and probedefs: ``(data, probedefs, pos)``."""
        pds = self._probedefs
        if method == 1:
            att, wt = mv if mv is not None else (None,) * 2
            defs, pos = pds(1, buf, pos, table)
            return DealiasMercator(defs[0], att or 0, wt or 0), defs, pos
        if method == 2:
            wp, wt, att, fudge, fl = mv if mv is not None else (None,) * 5
            defs, pos = pds(2, buf, pos, table)
            return DealiasAlly(defs, wp or 0, wt or 0, att or 0, fudge or 0, fl or 0), defs, pos
        if method == 5:
            wp, bl, att = mv if mv is not None else (None,) * 3
            defs, pos = pds(2, buf, pos, table)
            return DealiasBump(defs, wp or 0, bl or 0, att or 0), defs, pos
        if method == 4:
            (a, b, ab, xs, pfx, att, fudge, wp, wt, pdc, fl, rc) = (
                mv if mv is not None else (None,) * 12)
            defs, pos = pds(pdc or 0, buf, pos, table)
            return DealiasPrefixscan(a, b, ab, xs or [], pfx or 0, att or 0, fudge or 0, wp or 0,
                                     wt or 0, fl or 0, 5 if rc is None else rc, defs), defs, pos
        if method == 3:
            pdc, rounds, wp, wr, wt, fl = mv if mv is not None else (None,) * 6
            if not pdc:
                raise _Bad("radargun without probedefs")
            defs, pos = pds(pdc, buf, pos, table)
            return DealiasRadargun(defs, rounds or 0, wp or 0, wr or 0, wt or 0, fl or 0), \
                defs, pos
        if method == 6:
            pdc, rounds, wp, wr, wt = mv if mv is not None else (None,) * 5
            if not pdc:
                raise _Bad("midarest without probedefs")
            defs, pos = pds(pdc, buf, pos, table)
            return DealiasMidarest(defs, rounds or 0, wp or 0, wr or 0, wt or 0), defs, pos
        pdc, wt, sched, startat = mv if mv is not None else (None,) * 4
        if not pdc:
            raise _Bad("midardisc without probedefs")
        defs, pos = pds(pdc, buf, pos, table)
        return DealiasMidardisc(defs, wt or 0, sched or [], startat), defs, pos

    def ping_text(self, buf):
        """What sc_warts2text prints for a ping body, or None to fall back.

        Makes every check :meth:`ping` makes, without building the record.
        """
        try:
            table: list = []
            ctx: dict = {}
            (lid, cid, src, dst, psize, sent), pos = _sub("ping_hdr_t", buf, 0, table)
            if (src is None and self.like) or (lid and lid not in self.lists) or (
                    cid and cid not in self.cycles):
                return None
            n = _U16.unpack_from(buf, pos)[0]
            pos += 2
            ctx["_sent"] = sent
            ctx["_dp"] = 1 if type(dst) is _V4 else 58
            replies = []
            append = replies.append
            D = _vdecs["reply_t"]
            for _ in range(n):
                q = pos
                while buf[q] & 0x80:
                    q += 1
                q += 1
                d = D.get(buf[pos:q]) or _vcompile("reply_t", buf[pos:q])
                r, pos = d(buf, q, table, ctx)
                append(r)
            return ping_text_of(src, dst, psize, sent, replies)
        except (_Bad, struct.error, IndexError, ValueError, TypeError, OverflowError):
            return None

    # ---- text fast paths for dealias and tracelb: the same checks as the
    # decoders above, without building the record

    def dealias_text(self, buf):
        """``(text, method)``: what sc_warts2text prints for a dealias body.

        Makes every check :meth:`dealias` makes but builds no record (the
        tool prints only ally).  None for any fault, so that the caller
        falls back to :meth:`decode`, which raises the proper error.
        """
        try:
            (lid, cid, method, result, probec), pos = _sub("dl_hdr_t", buf, 0, None)
            if (lid and lid not in self.lists) or (cid and cid not in self.cycles):
                return None
            if not method or method > 7:
                return "", method or 0  # a bare header, as scamper reads it
            table: list = []
            ndefs, pos = _sub(_DL_T[method], buf, pos, table)
            dsts = []
            # (_sub inline: these loops are the whole of the work)
            D = _vdecs["dl_pd_t"]
            for _ in range(ndefs):
                p = pos
                while buf[p] & 0x80:
                    p += 1
                p += 1
                d = D.get(buf[pos:p]) or _vcompile("dl_pd_t", buf[pos:p])
                dst, pos = d(buf, p, table, None)
                dsts.append(dst)
            DP = _vdecs["dl_probe_t"]
            DR = _vdecs["dl_reply_t"]
            for _ in range(probec):
                p = pos
                while buf[p] & 0x80:
                    p += 1
                p += 1
                d = DP.get(buf[pos:p]) or _vcompile("dl_probe_t", buf[pos:p])
                (pdid, replyc), pos = d(buf, p, table, None)
                if pdid >= ndefs:
                    return None
                for _ in range(replyc):
                    p = pos
                    while buf[p] & 0x80:
                        p += 1
                    p += 1
                    d = DR.get(buf[pos:p]) or _vcompile("dl_reply_t", buf[pos:p])
                    _, pos = d(buf, p, table, None)
            if method != 2:
                return "", method
            from ixpscamper.warts.text import addr_str
            result = result or 0
            s = (f"{addr_str(dsts[0])} {addr_str(dsts[1])} "
                 f"{_DEALIAS_RESULTS.get(result, str(result))}\n")
            return s[:255], method
        except (_Bad, struct.error, IndexError, ValueError, TypeError, OverflowError):
            return None

    def tracelb_text(self, buf):
        """What sc_warts2text prints for a tracelb body, or None to fall back.

        Makes every check :meth:`tracelb` makes, keeping only what the text
        shows (node addresses, links, each probe's flow and reply sources).
        """
        try:
            table: list = []
            (lid, cid, src, dst, nodec, linkc, probec, conf), pos = _sub(
                "tlb_hdr_t", buf, 0, table)
            if (lid and lid not in self.lists) or (cid and cid not in self.cycles):
                return None
            sub = _sub
            addrs = []
            declared = []
            for _ in range(nodec):
                (a, nl), pos = sub("tlb_node_t", buf, pos, table)
                addrs.append(a)
                declared.append(nl)
            nlinks: list = [[] for _ in range(nodec)]
            links = []
            DP = _vdecs["tlb_probe_t"]
            DR = _vdecs["tlb_reply_t"]
            for i in range(linkc):
                (frm, to, hopc), pos = sub("tlb_link_t", buf, pos, table)
                if frm >= nodec or (to is not None and to >= nodec):
                    return None
                sets = []
                for _ in range(hopc):
                    n, pos = sub("tlb_set_t", buf, pos, table)
                    probes = []
                    for _ in range(n):
                        # (_sub inline: these loops are the whole of the work)
                        p = pos
                        while buf[p] & 0x80:
                            p += 1
                        p += 1
                        d = DP.get(buf[pos:p]) or _vcompile("tlb_probe_t", buf[pos:p])
                        (flowid, rxc), pos = d(buf, p, table, None)
                        rx = []
                        for _ in range(rxc):
                            p = pos
                            while buf[p] & 0x80:
                                p += 1
                            p += 1
                            d = DR.get(buf[pos:p]) or _vcompile("tlb_reply_t", buf[pos:p])
                            a, pos = d(buf, p, table, None)
                            rx.append(a)
                        probes.append((flowid, rx))
                    sets.append(probes)
                links.append((to, sets))
                nl = nlinks[frm]
                if len(nl) == declared[frm]:
                    return None
                nl.append(i)
            for i in range(nodec):
                if len(nlinks[i]) != declared[i]:
                    return None
            from ixpscamper.warts.tracelb_fmt import text_of
            return text_of(src, dst, probec, conf, addrs, nlinks, links)
        except (_Bad, struct.error, IndexError, ValueError, TypeError, OverflowError):
            return None

    # ---- neighbourdisc (10), sniff (13), sting (12): decode only

    def neighbourdisc(self, buf):
        table: list = []
        v, pos = _params("nd", buf, 0, table)
        (lid, cid, uid, ifname, start, meth, wait, flags, att, replyc, sip, smac, dip, dmac,
         probec, errmsg) = v if v is not None else (None,) * 16
        nd = Neighbourdisc(self.list_of(lid), self.cycle_of(cid), uid or 0, ifname,
                           start if start is not None else Timeval(0, 0), meth or 0, wait or 0,
                           flags or 0, att or 0, replyc or 0, sip, smac, dip, dmac, errmsg)
        for _ in range(probec or 0):
            pv, pos = _params("nd_probe", buf, pos, table)
            tx, rxc = pv if pv is not None else (None, None)
            pr = NeighbourdiscProbe(tx if tx is not None else Timeval(0, 0))
            for _ in range(rxc or 0):
                rv, pos = _params("nd_reply", buf, pos, table)
                rx, mac = rv if rv is not None else (None, None)
                if mac is None:
                    # (scamper 20211212 writes probes whose declared length
                    # overruns into their replies: such files fail here, as
                    # they do for scamper's own reader)
                    raise _Bad("neighbourdisc reply without a MAC address")
                pr.rxs.append(NeighbourdiscReply(rx if rx is not None else Timeval(0, 0), mac))
            nd.probes.append(pr)
        return nd

    def sniff(self, buf):
        table: list = []
        v, pos = _params("sniff", buf, 0, table)
        if v is None:
            raise _Bad("sniff without header fields")
        (lid, cid, uid, src, start, finish, sr, lpktc, ltime, pktc, icmpid, errmsg) = v
        if src is None:
            raise _Bad("sniff without a source address")
        z = Timeval(0, 0)
        sn = Sniff(src, self.list_of(lid), self.cycle_of(cid), uid or 0, start or z,
                   finish or z, sr or 0, lpktc or 0, ltime or 0, icmpid or 0, errmsg)
        for _ in range(pktc or 0):
            pv, pos = _params("sniff_pkt", buf, pos, table)
            tv, plen, data = pv if pv is not None else (None,) * 3
            if not plen:
                raise _Bad("sniff packet without data")
            sn.pkts.append(SniffPkt(tv or z, data))
        return sn

    def sting(self, buf):
        table: list = []
        v, pos = _params("sting", buf, 0, table)
        if v is None:
            raise _Bad("sting without header fields")
        (lid, cid, uid, src, dst, sport, dport, count, mean, inter, dist, synretx, dataretx,
         seqskip, datalen, data, start, hsrtt, dataackc, holec, pktc, result, errmsg) = v
        if src is None or dst is None:
            raise _Bad("sting without source and destination addresses")
        z = Timeval(0, 0)
        sg = Sting(src, dst, self.list_of(lid), self.cycle_of(cid), uid or 0, sport or 0,
                   dport or 0, count or 0, mean or 0, inter or 0, dist or 0, synretx or 0,
                   dataretx or 0, seqskip or 0, data or b"", start or z, hsrtt or z,
                   dataackc or 0, holec or 0, result or 0, errmsg)
        for _ in range(pktc or 0):
            pv, pos = _params("sting_pkt", buf, pos, table)
            fl, tv, plen, pdata = pv if pv is not None else (None,) * 4
            if not plen:
                raise _Bad("sting packet without data")
            sg.pkts.append(StingPkt(fl or 0, tv or z, pdata))
        return sg

    def udpprobe(self, buf):
        # as scamper_file_warts_udpprobe_read: probe 0 lives in the header
        # (its sport and reply count; its tx is the start) and its replies
        # follow; then probes 1.. and, after all of them, their replies in order
        ctx: dict = {}
        v, pos = _params("udpprobe", buf, 0, None)
        (lid, cid, uid, src, dst, p0_sport, dport, start, wt, flags, stop, dlen, data,
         p0_replyc, pcount, sent, stopc, sport, wp, errmsg) = v if v is not None else (None,) * 20
        z = Timeval(0, 0)
        start = start if start is not None else z
        up = Udpprobe(src, dst, self.list_of(lid), self.cycle_of(cid), uid or 0, sport or 0,
                      dport or 0, start, wt or 0, wp or 0, flags or 0, data or b"", stop or 0,
                      # scamper leaves out a probe count (and probes sent) of 1
                      stopc or 0, 1 if pcount is None else pcount, errmsg)

        def reply(pos):
            rv, pos = _params("up_reply", buf, pos, None, ctx)
            rx, _ln, d, ifname = rv if rv is not None else (None,) * 4
            return UdpprobeReply(rx if rx is not None else z, d or b"", ifname), pos

        if sent is None:
            sent = 1
        if sent:
            p0 = UdpprobeProbe(start, p0_sport or 0)
            for _ in range(p0_replyc or 0):
                r, pos = reply(pos)
                p0.replies.append(r)
            up.probes.append(p0)
        counts = []
        for _ in range(1, sent):
            pv, pos = _params("up_probe", buf, pos, None)
            tx, ps, rc = pv if pv is not None else (None,) * 3
            up.probes.append(UdpprobeProbe(tx if tx is not None else z, ps or 0))
            counts.append(rc or 0)
        for pr, n in zip(up.probes[1:], counts):
            for _ in range(n):
                r, pos = reply(pos)
                pr.replies.append(r)
        return up

    def http(self, buf):
        v, pos = _params("http", buf, 0, None)
        (lid, cid, uid, src, dst, sport, dport, start, stop, typ, host, file, headers, bufc,
         hsrtt, flags, maxtime, errmsg, ech, sni) = v if v is not None else (None,) * 20
        z = Timeval(0, 0)
        typ = typ or 0
        if dport is None:  # scamper's default by type
            dport = 443 if typ == 0 else (80 if typ == 1 else 0)
        h = Http(src, dst, self.list_of(lid), self.cycle_of(cid), uid or 0, sport or 0, dport,
                 start if start is not None else z, stop or 0, typ, host, file, headers or [],
                 hsrtt or 0, flags or 0, maxtime if maxtime is not None else z, errmsg,
                 ech or 0, sni)
        for _ in range(bufc or 0):
            bv, pos = _params("http_buf", buf, pos, None)
            bt, tv, _ln, data = bv if bv is not None else (None,) * 4
            bt = bt or 0
            h.bufs.append(HttpBuf(bt >> 7, bt & 0x7F, tv if tv is not None else z, data or b""))
        # then (type, u32 length, bytes) attributes; scamper stops quietly at
        # one that does not fit
        n = len(buf)
        while n - pos >= 5:
            at = buf[pos]
            ln = _U32.unpack_from(buf, pos + 1)[0]
            pos += 5
            if n - pos < ln:
                break
            if at == 1:
                h.ech_config_list = bytes(buf[pos:pos + ln])
            elif at == 2:
                h.ech_retry_config = bytes(buf[pos:pos + ln])
            pos += ln
        return h

    def decode(self, rtype: int, body: bytes, offset: int):
        try:
            if rtype == 6:
                return self.trace(body)
            if rtype == 7:
                return self.ping(body)
            if rtype == 8 or rtype == 9:
                if self.like is not None and rtype not in _RENDERED[self.like]:
                    self.unknown_like(rtype, body)
                return self.tracelb(body) if rtype == 8 else self.dealias(body)
            if rtype == 1:
                return self.list_rec(body)
            if rtype == 2:
                return self.cycle_rec(body, CycleStart)
            if rtype == 3:
                return self.cycle_rec(body, CycleDefinition)
            if rtype == 4:
                return self.cycle_stop(body)
            if rtype not in _CORE_TYPES:
                codec = codec_for_type(rtype)
                if codec is not None and (self.like is None or self.like in codec.printed_by):
                    return codec.decode(self, body)
            if self.like is not None:
                if rtype == 12 and 12 in _RENDERED[self.like]:
                    return self.sting(body)
                if rtype == 16 and 16 in _RENDERED[self.like]:
                    return self.udpprobe(body)
                if rtype == 10 and 10 in _RENDERED[self.like]:
                    return self.neighbourdisc(body)
                # types the tool does not print, it steps over undecoded
                self.unknown_like(rtype, body)
                return UnknownRecord(rtype, bytes(body))
            if rtype == 10:
                return self.neighbourdisc(body)
            if rtype == 12:
                return self.sting(body)
            if rtype == 13:
                return self.sniff(body)
            if rtype == 16:
                return self.udpprobe(body)
            if rtype == 15:
                return self.http(body)
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


def _iter_raw(fileobj: BinaryIO, like: Optional[str] = None, start: int = 0,
              stop: Optional[int] = None):
    """Yield ``(type, body, offset)`` per record, checking only the framing.

    With ``like`` (a Debian tool's name), a stream that ends right after a
    whole record header ends cleanly, as it does for scamper's reader (it
    takes the missing body for a read to retry later, then sees the end).
    ``start``: the stream offset ``fileobj`` is at (a record boundary);
    ``stop``: a record boundary to end at.
    """
    offset = start
    read = fileobj.read
    while True:
        if stop is not None and offset >= stop:
            return
        hdr = read(8)
        if not hdr:
            return
        while len(hdr) < 8:
            more = read(8 - len(hdr))
            if not more:
                raise WartsError(f"truncated record header ({len(hdr)} of 8 bytes)", offset)
            hdr += more
        try:
            rtype, length = _check_header(hdr, offset)
        except WartsError as e:
            if like is None or not e.reason.startswith("record length") or read(1):
                raise
            return
        body = read(length) if length else b""
        if like is not None and length and not body:
            return
        while len(body) < length:
            more = read(length - len(body))
            if not more:
                raise WartsError(f"truncated record: {len(body)} of {length} body bytes", offset)
            body += more
        yield rtype, body, offset
        offset += 8 + length


def iter_records(fileobj: BinaryIO, *, skip_unknown: bool = False,
                 like: Optional[str] = None) -> Iterator:
    """Yield the records of a warts stream read from the binary file ``fileobj``.

    Reads one record at a time (never the whole file).  Records of types this
    codec does not decode are yielded as :class:`UnknownRecord` unless
    ``skip_unknown``.  Raises :class:`WartsError` at the first fault, after
    yielding every intact record before it.

    A record is read as scamper 20211212's reader reads it: what that reader
    accepts, this one accepts and decodes to the same values (fields past a
    structure's declared length, a length that overruns, bytes after the
    last field, ...); what it rejects raises.  ``like="sc_warts2text"`` or
    ``"sc_warts2json"`` adds that tool's remaining rules (pings need a
    source; record types it decodes and we do not are errors), so that the
    records yielded are exactly those the tool prints before it stops.
    """
    res = _Resolver(like)
    decode = res.decode
    for rtype, body, offset in _iter_raw(fileobj, like):
        rec = decode(rtype, body, offset)
        if skip_unknown and type(rec) is UnknownRecord:
            continue
        yield rec


def record_name(rec) -> str:
    """A short name of a record's type for messages: ``"dealias (mercator)"``, ``"type 13"``."""
    if type(rec) is UnknownRecord:
        return _RECORD_NAMES.get(rec.type, f"type {rec.type}")
    if type(rec) is Dealias:
        return _dealias_name(rec.method)
    return type(rec).__name__.lower()


def iter_records_at(fileobj: BinaryIO, *, like: Optional[str] = None) -> Iterator:
    """Like :func:`iter_records`, but yield ``(offset, record)`` pairs."""
    res = _Resolver(like)
    decode = res.decode
    for rtype, body, offset in _iter_raw(fileobj, like):
        yield offset, decode(rtype, body, offset)


def iter_text(fileobj: BinaryIO, *, like: Optional[str] = None,
              unprinted=None, unprinted_name=None) -> Iterator[str]:
    """Yield what ``sc_warts2text`` prints for each record of ``fileobj``.

    Equivalent to ``render_text(rec) for rec in iter_records(fileobj,
    like=like)`` (and tested to be), but renders common traces straight
    from their bytes.  ``ixp-warts2text`` passes ``like="sc_warts2text"``.
    Raises :class:`WartsError` like :func:`iter_records`.  ``unprinted``,
    if given, is called with ``(offset, record)`` for each record past the
    list and cycle types that renders as nothing; ``unprinted_name``, if
    given instead, with ``(offset, record_name(record))``, which spares
    building the records the tool does not print (most dealias methods).
    """
    return _text_gen(_Resolver(like), _iter_raw(fileobj, like), unprinted, unprinted_name)


def _text_gen(res: "_Resolver", raw, unprinted=None, unprinted_name=None) -> Iterator[str]:
    """:func:`iter_text` of the records ``raw`` (:func:`_iter_raw`) yields, read with ``res``."""
    from ixpscamper.warts.text import render_text
    decode = res.decode
    fast = res.trace_text
    dl_text = res.dealias_text
    tlb_text = res.tracelb_text
    ping_text = res.ping_text
    for rtype, body, offset in raw:
        if rtype == 6:
            s = fast(body)
            if s is not None:
                yield s
                continue
        elif rtype == 9:
            r = dl_text(body)
            if r is not None:
                if r[0]:
                    yield r[0]
                    continue
                if unprinted_name is not None:
                    unprinted_name(offset, _dealias_name(r[1]))
                    continue
                if unprinted is None:
                    continue
                # (the caller wants the record itself)
        elif rtype == 7:
            s = ping_text(body)
            if s is not None:
                yield s
                continue
        elif rtype == 8:
            s = tlb_text(body)
            if s:
                yield s
                continue
        rec = decode(rtype, body, offset)
        s = render_text(rec)
        if s:
            yield s
        elif rtype >= 5:
            # a measurement (or unknown) record the tool prints nothing for
            if unprinted_name is not None:
                unprinted_name(offset, record_name(rec))
            elif unprinted is not None:
                unprinted(offset, rec)


def split_point(fileobj: BinaryIO, like: Optional[str], target: int):
    """The first record boundary at or past ``target``, for reading a file in two parts.

    Returns ``(offset, resolver)``: the resolver knows the lists and cycles
    the records before ``offset`` define, so that the records from there on
    read as they do in one pass (:func:`iter_part`).  None when there is no
    such boundary or the file is faulty before it (one pass then reports
    the fault).  ``fileobj`` is read from its start.
    """
    res = _Resolver(like)
    try:
        for rtype, body, offset in _iter_raw(fileobj, like):
            if offset >= target:
                return offset, res
            if rtype <= 4:
                res.decode(rtype, body, offset)
    except WartsError:
        return None
    return None


def iter_part(fileobj: BinaryIO, like: Optional[str], res: "_Resolver", start: int,
              stop: Optional[int], text: bool, unprinted_name=None) -> Iterator:
    """The records (``text``: the text) of the part ``[start, stop)`` of a stream.

    ``fileobj`` is at ``start``; ``res`` is the :func:`split_point` state
    for ``start`` (a fresh resolver for 0).  Text as :func:`iter_text`;
    records as ``(offset, record)`` pairs like :func:`iter_records_at`.
    """
    raw = _iter_raw(fileobj, like, start, stop)
    if text:
        return _text_gen(res, raw, None, unprinted_name)
    decode = res.decode
    return ((offset, decode(rtype, body, offset)) for rtype, body, offset in raw)


def read_records(data: bytes, *, skip_unknown: bool = False) -> list:
    """Decode a complete warts byte string into a list of records."""
    dec = WartsDecoder(skip_unknown=skip_unknown)
    out = dec.feed(data)
    out += dec.feed(b"")
    dec.close()
    return out
