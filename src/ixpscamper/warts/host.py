"""host records (warts type 14): DNS queries and their answers.

A host record (``scamper_host_t``) is a header (flags+params) followed by
``qcount`` queries, each a flags+params structure followed by its answer,
authority and additional resource records (as many as the query's
ancount / nscount / arcount say).  A resource record's data is a u16 data
type and then an address, a name, or a nested flags+params structure (SOA,
MX, TXT, OPT, SVCB), and must be the data type its class and type call for.

scamper 20211212's tools skip host records, and 2026's ``sc_warts2text``
does too; 2026's ``sc_warts2json`` prints them.  So ``printed_by`` is
``sc_warts2json`` only: reading follows 2026's reader and the JSON is
2026's, byte for byte (its quirks included: ``ecs`` is printed unescaped,
rcode 19 reads ``BADMODEBADNAME``, OPT and SVCB data are not printed);
``ixp-warts2text`` names each host record as not printed.
"""

from __future__ import annotations

import builtins
import struct
from typing import Optional, Union

import attrs

from ixpscamper.warts import plugparams as P
from ixpscamper.warts.jsonfmt import _esc
from ixpscamper.warts.reader import _Bad
from ixpscamper.warts.records import Address, CycleStart, Timeval, WartsList
from ixpscamper.warts.registry import RecordCodec, register
from ixpscamper.warts.writer import WartsEncodeError, _fp, _s, _Table, _tv

__all__ = ["Host", "HostQuery", "HostRr", "HostRrSoa", "HostRrMx", "HostRrTxt", "HostRrOpt",
           "HostRrOptElem", "HostRrSvcb", "HostRrSvcbParam", "decode_host", "encode_host",
           "host_json", "rr_data_type"]

CLASS_IN, CLASS_CH = 1, 3
T_A, T_NS, T_CNAME, T_SOA, T_PTR, T_MX, T_TXT, T_AAAA = 1, 2, 5, 6, 12, 15, 16, 28
T_OPT, T_SVCB, T_HTTPS = 41, 64, 65
D_ADDR, D_STR, D_SOA, D_MX, D_TXT, D_OPT, D_SVCB = 1, 2, 3, 4, 5, 6, 7

_QTYPES = {1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT", 28: "AAAA",
           43: "DS", 44: "SSHFP", 46: "RRSIG", 47: "NSEC", 48: "DNSKEY", 41: "OPT", 64: "SVCB",
           65: "HTTPS"}
# scamper's table lacks a comma after "BADMODE", so 19 is two names run
# together and 23 is past the end (printed as a number); 12-15 are NULL
_RCODES = ["NoError", "FormErr", "ServFail", "NXDomain", "NotImp", "Refused", "YXDomain",
           "YXRRSet", "NXRRSet", "NotAuth", "NotZone", "DSOTYPENI", "(null)", "(null)",
           "(null)", "(null)", "BADVERS", "BADKEY", "BADTIME", "BADMODEBADNAME", "BADALG",
           "BADTRUNC", "BADCOOKIE"]
_STOPS = ["NONE", "DONE", "TIMEOUT", "HALTED", "ERROR"]
_QFLAGS = ("CD", "AD", "Z", "RA", "RD", "TC", "AA", "0x80")


# --------------------------------------------------------------------------
# records

@attrs.define
class HostRrSoa:
    """SOA data."""

    mname: str
    rname: str
    serial: int = 0
    refresh: int = 0
    retry: int = 0
    expire: int = 0
    minimum: int = 0


@attrs.define
class HostRrMx:
    """MX data."""

    preference: int
    exchange: str


@attrs.define
class HostRrTxt:
    """TXT data: ``strc`` strings (``strs`` None when the file gives the count only)."""

    strc: int = 0
    strs: Optional[list[str]] = attrs.field(factory=builtins.list)


@attrs.define
class HostRrOptElem:
    """One EDNS option of an OPT record."""

    code: int
    data: bytes = b""


@attrs.define
class HostRrOpt:
    """OPT (EDNS) data: ``elemc`` options (``elems`` None when only counted)."""

    elemc: int = 0
    elems: Optional[list[HostRrOptElem]] = attrs.field(factory=builtins.list)


@attrs.define
class HostRrSvcbParam:
    """One SvcParam of an SVCB / HTTPS record."""

    key: int
    val: bytes = b""


@attrs.define
class HostRrSvcb:
    """SVCB / HTTPS data (``params`` None when only counted)."""

    priority: int = 0
    target: Optional[str] = None
    paramc: int = 0
    params: Optional[list[HostRrSvcbParam]] = attrs.field(factory=builtins.list)


RrData = Union[Address, str, HostRrSoa, HostRrMx, HostRrTxt, HostRrOpt, HostRrSvcb, None]


@attrs.define
class HostRr:
    """A resource record: owner ``name``, DNS class and type, TTL and typed ``data``."""

    name: str
    rclass: int = CLASS_IN
    type: int = T_A
    ttl: int = 0
    data: RrData = None


@attrs.define
class HostQuery:
    """One query sent and what came back (``rx`` (0, 0): no reply)."""

    tx: Timeval = Timeval(0, 0)
    rx: Timeval = Timeval(0, 0)
    id: int = 0
    rcode: int = 0
    flags: int = 0
    an: list[HostRr] = attrs.field(factory=builtins.list)
    ns: list[HostRr] = attrs.field(factory=builtins.list)
    ar: list[HostRr] = attrs.field(factory=builtins.list)


@attrs.define
class Host:
    """A host (DNS) measurement (record type 14, ``scamper_host_t``).

    ``dst`` is the name server asked; ``wait`` the timeout in milliseconds;
    ``flags`` 1 norecurse, 2 tcp, 4 nsid; ``stop`` 0 none, 1 done,
    2 timeout, 3 halted, 4 error.
    """

    dst: Address
    src: Optional[Address] = None
    list: Optional[WartsList] = None
    cycle: Optional[CycleStart] = None
    userid: int = 0
    start: Timeval = Timeval(0, 0)
    flags: int = 0
    wait: int = 0
    stop: int = 0
    retries: int = 0
    qtype: int = 0
    qclass: int = 0
    qname: Optional[str] = None
    ecs: Optional[str] = None
    errmsg: Optional[str] = None
    queries: list[HostQuery] = attrs.field(factory=builtins.list)


def rr_data_type(rclass: int, rtype: int) -> Optional[int]:
    """scamper_host_rr_data_type: the data a record of this class and type holds."""
    if rclass == CLASS_IN:
        if rtype in (T_NS, T_CNAME, T_PTR):
            return D_STR
        if rtype in (T_A, T_AAAA):
            return D_ADDR
        if rtype == T_SOA:
            return D_SOA
        if rtype == T_MX:
            return D_MX
        if rtype == T_TXT:
            return D_TXT
        if rtype in (T_SVCB, T_HTTPS):
            return D_SVCB
    elif rclass == CLASS_CH and rtype == T_TXT:
        return D_TXT
    if rtype == T_OPT:
        return D_OPT
    return None


# --------------------------------------------------------------------------
# decoding

def _counted(kind: str, item):
    """A handler for ``count`` items after a count field (state in ``cell``)."""
    def make(cell):
        def h(buf, pos, nb):
            if pos >= nb:
                raise _Bad(f"{kind} run past the end of the record")
            out = []
            for _ in range(cell[0] or 0):
                x, pos = item(buf, pos, nb)
                out.append(x)
            return out, pos
        return h
    return make


def _count(cell):
    def h(buf, pos, nb):
        v, pos = P.u16(buf, pos, nb)
        cell[0] = v
        return v, pos
    return h


def _txt_str(buf, pos, nb):
    if nb - pos < 1:
        raise _Bad("TXT string runs past the end of the record")
    n = buf[pos]
    if nb - pos - 1 < n:
        raise _Bad("TXT string runs past the end of the record")
    raw = bytes(buf[pos + 1:pos + 1 + n])
    # scamper keeps it as a C string: it ends at a NUL
    raw = raw.split(b"\x00", 1)[0]
    return raw.decode("utf-8", "surrogateescape"), pos + 1 + n


def _kv(cls, what):
    def h(buf, pos, nb):
        code, pos = P.u16(buf, pos, nb)
        ln, pos = P.u16(buf, pos, nb)
        if nb - pos < ln:
            raise _Bad(f"{what} runs past the end of the record")
        return cls(code, bytes(buf[pos:pos + ln])), pos + ln
    return h


_strs = _counted("TXT strings", _txt_str)
_elems = _counted("EDNS options", _kv(HostRrOptElem, "EDNS option"))
_sparams = _counted("SVCB parameters", _kv(HostRrSvcbParam, "SVCB parameter"))


def _items(count, items):
    # no count, no items: an empty list (what scamper writes for none); a
    # count without its items stays None (scamper keeps a NULL array)
    if items is None and not count:
        return []
    return items


def _rrdata(table):
    def h(buf, pos, nb):
        dt, pos = P.u16(buf, pos, nb)
        if dt == D_ADDR:
            a, pos = P.addr_in(table)(buf, pos, nb)
            return (dt, a), pos
        if dt == D_STR:
            s, pos = P.string(buf, pos, nb)
            return (dt, s), pos
        if dt == D_SOA:
            v, pos = P.read_params(buf, pos, [P.string, P.string] + [P.u32] * 5)
            if v[0] is None or v[1] is None:
                raise _Bad("SOA record without mname and rname")
            return (dt, HostRrSoa(v[0], v[1], *[x or 0 for x in v[2:]])), pos
        if dt == D_MX:
            v, pos = P.read_params(buf, pos, [P.u16, P.string])
            if v[1] is None:
                raise _Bad("MX record without an exchange")
            return (dt, HostRrMx(v[0] or 0, v[1])), pos
        if dt == D_TXT:
            cell = [0]
            v, pos = P.read_params(buf, pos, [_count(cell), _strs(cell)])
            return (dt, HostRrTxt(v[0] or 0, _items(v[0], v[1]))), pos
        if dt == D_OPT:
            cell = [0]
            v, pos = P.read_params(buf, pos, [_count(cell), _elems(cell)])
            return (dt, HostRrOpt(v[0] or 0, _items(v[0], v[1]))), pos
        if dt == D_SVCB:
            cell = [0]
            v, pos = P.read_params(buf, pos, [P.u16, P.string, _count(cell), _sparams(cell)])
            return (dt, HostRrSvcb(v[0] or 0, v[1], v[2] or 0, _items(v[2], v[3]))), pos
        raise _Bad(f"resource record data of unknown type {dt}")
    return h


def _rr(buf, pos, table):
    v, pos = P.read_params(buf, pos, [P.u16, P.u16, P.string, P.u32, _rrdata(table)])
    rclass, rtype, name, ttl, data = v
    if name is None:
        raise _Bad("resource record without a name")
    rclass, rtype = rclass or 0, rtype or 0
    value = None
    if data is not None:
        dt, value = data
        if dt != rr_data_type(rclass, rtype):
            raise _Bad(f"resource record data of type {dt} for class {rclass} type {rtype}")
    return HostRr(name, rclass, rtype, ttl or 0, value), pos


def decode_host(res, buf) -> Host:
    """Decode a host record body (``res``: the reader's per-file state)."""
    table: list = []
    a = P.addr_in(table)
    v, pos = P.read_params(buf, 0, [P.u32, P.u32, P.u32, a, a, P.tv, P.u16, P.u16, P.u8, P.u8,
                                    P.u16, P.u16, P.string, P.u8, P.string, P.string])
    (lid, cid, uid, src, dst, start, flags, wait, stop, retries, qtype, qclass, qname, qcount,
     ecs, errmsg) = v
    if dst is None:
        raise _Bad("host without a destination (name server) address")
    h = Host(dst, src, res.list_of(lid), res.cycle_of(cid), uid or 0, start or Timeval(0, 0),
             flags or 0, wait or 0, stop or 0, retries or 0, qtype or 0, qclass or 0, qname,
             ecs, errmsg)
    for _ in range(qcount or 0):
        qv, pos = P.read_params(buf, pos, [P.tv, P.tv, P.u16, P.u16, P.u16, P.u16, P.u8, P.u8])
        tx, rx, qid, anc, nsc, arc, rcode, qflags = qv
        q = HostQuery(tx or Timeval(0, 0), rx or Timeval(0, 0), qid or 0, rcode or 0,
                      qflags or 0)
        for lst, n in ((q.an, anc), (q.ns, nsc), (q.ar, arc)):
            for _ in range(n or 0):
                rr, pos = _rr(buf, pos, table)
                lst.append(rr)
        h.queries.append(q)
    return h


# --------------------------------------------------------------------------
# encoding

_B = struct.Struct(">B").pack
_H = struct.Struct(">H").pack
_I = struct.Struct(">I").pack


def _cstr(s: str, what: str) -> bytes:
    b = s.encode("utf-8", "surrogateescape")
    if b"\x00" in b:
        raise WartsEncodeError(f"{what} contains a NUL byte")
    return b


def _rrdata_enc(rr: HostRr, table: _Table) -> bytes:
    dt = rr_data_type(rr.rclass, rr.type)
    d = rr.data
    want = {D_ADDR: None, D_STR: str, D_SOA: HostRrSoa, D_MX: HostRrMx, D_TXT: HostRrTxt,
            D_OPT: HostRrOpt, D_SVCB: HostRrSvcb}
    if dt is None:
        raise WartsEncodeError(f"class {rr.rclass} type {rr.type} records hold no data")
    cls = want[dt]
    if (cls is None and not hasattr(d, "version") and not hasattr(d, "raw")) or \
            (cls is not None and not isinstance(d, cls)):
        raise WartsEncodeError(f"{type(d).__name__} data for class {rr.rclass} type {rr.type}")
    out = _H(dt)
    if dt == D_ADDR:
        return out + table.enc(d)
    if dt == D_STR:
        return out + _s(d)
    if dt == D_SOA:
        f = [(1, _s(d.mname)), (2, _s(d.rname))]
        f += [(i, _I(x)) for i, x in ((3, d.serial), (4, d.refresh), (5, d.retry),
                                      (6, d.expire), (7, d.minimum)) if x]
        return out + _fp(f)
    if dt == D_MX:
        f = [(1, _H(d.preference))] if d.preference else []
        return out + _fp(f + [(2, _s(d.exchange))])
    if dt == D_TXT:
        if not d.strc:
            return out + _fp([])
        if d.strs is None or len(d.strs) != d.strc:
            raise WartsEncodeError("TXT data whose strc is not its number of strings")
        parts = []
        for s in d.strs:
            b = _cstr(s, "a TXT string")
            if len(b) > 255:
                raise WartsEncodeError("a TXT string is at most 255 bytes")
            parts.append(_B(len(b)) + b)
        return out + _fp([(1, _H(d.strc)), (2, b"".join(parts))])
    if dt == D_OPT:
        if not d.elemc:
            return out + _fp([])
        if d.elems is None or len(d.elems) != d.elemc:
            raise WartsEncodeError("OPT data whose elemc is not its number of options")
        body = b"".join(_H(e.code) + _H(len(e.data)) + e.data for e in d.elems)
        return out + _fp([(1, _H(d.elemc)), (2, body)])
    f = []
    if d.priority:
        f.append((1, _H(d.priority)))
    if d.target is not None:
        f.append((2, _s(d.target)))
    if d.paramc:
        if d.params is None or len(d.params) != d.paramc:
            raise WartsEncodeError("SVCB data whose paramc is not its number of parameters")
        f.append((3, _H(d.paramc)))
        f.append((4, b"".join(_H(p.key) + _H(len(p.val)) + p.val for p in d.params)))
    return out + _fp(f)


def _rr_enc(rr: HostRr, table: _Table) -> bytes:
    f = []
    if rr.rclass:
        f.append((1, _H(rr.rclass)))
    if rr.type:
        f.append((2, _H(rr.type)))
    f.append((3, _s(rr.name)))
    if rr.ttl:
        f.append((4, _I(rr.ttl)))
    if rr.data is not None:
        f.append((5, _rrdata_enc(rr, table)))
    return _fp(f)


def encode_host(h: Host, list_id: int, cycle_id: int) -> bytes:
    """The body of a host record, as scamper writes it."""
    table = _Table()
    f = []
    if h.list is not None or list_id:
        f.append((1, _I(list_id)))
    if h.cycle is not None or cycle_id:
        f.append((2, _I(cycle_id)))
    if h.userid:
        f.append((3, _I(h.userid)))
    if h.src is not None:
        f.append((4, table.enc(h.src)))
    f.append((5, table.enc(h.dst)))
    f.append((6, _tv(h.start)))
    for fid, val, pack in ((7, h.flags, _H), (8, h.wait, _H), (9, h.stop, _B),
                           (10, h.retries, _B), (11, h.qtype, _H), (12, h.qclass, _H)):
        if val:
            f.append((fid, pack(val)))
    if h.qname is not None:
        f.append((13, _s(h.qname)))
    if h.queries:
        if len(h.queries) > 255:
            raise WartsEncodeError("a host record holds at most 255 queries")
        f.append((14, _B(len(h.queries))))
    if h.ecs is not None:
        f.append((15, _s(h.ecs)))
    if h.errmsg is not None:
        f.append((16, _s(h.errmsg)))
    out = [_fp(f)]
    for q in h.queries:
        g = []
        if q.tx != (0, 0):
            g.append((1, _tv(q.tx)))
        if q.rx != (0, 0):
            g.append((2, _tv(q.rx)))
        for fid, val, pack in ((3, q.id, _H), (4, len(q.an), _H), (5, len(q.ns), _H),
                               (6, len(q.ar), _H), (7, q.rcode, _B), (8, q.flags, _B)):
            if val:
                g.append((fid, pack(val)))
        out.append(_fp(g))
        for rr in q.an + q.ns + q.ar:
            out.append(_rr_enc(rr, table))
    return b"".join(out)


# --------------------------------------------------------------------------
# JSON (scamper 2026's sc_warts2json)

def _addr(a) -> str:
    from ixpscamper.warts.text import addr_str
    return addr_str(a)


def _qclass(c: int) -> str:
    return "IN" if c == CLASS_IN else ("CH" if c == CLASS_CH else str(c))


def _rr_json(rr: HostRr) -> str:
    s = (f'{{"class":"{_qclass(rr.rclass)}", "type":"{_QTYPES.get(rr.type, str(rr.type))}"'
         f', "ttl":{rr.ttl}')
    s += f', "name":"{_esc(rr.name, 512)}"'
    dt = rr_data_type(rr.rclass, rr.type)
    d = rr.data
    if d is not None:
        if dt == D_ADDR:
            s += f', "address":"{_addr(d)}"'
        elif dt == D_STR:
            key = {T_NS: "nsdname", T_CNAME: "cname", T_PTR: "ptrdname"}[rr.type]
            s += f', "{key}":"{_esc(d, 512)}"'
        elif dt == D_MX:
            s += f', "preference":{d.preference}, "exchange":"{_esc(d.exchange, 512)}"'
        elif dt == D_SOA:
            s += (f', "mname":"{_esc(d.mname, 512)}", "rname":"{_esc(d.rname, 512)}"'
                  f', "serial":{d.serial}, "refresh":{d.refresh}, "retry":{d.retry}'
                  f', "expire":{d.expire}, "minimum":{d.minimum}')
        elif dt == D_TXT:
            s = (s + f', "strc":{d.strc}, "strs":[')[:1023]  # built in a 1024-byte buffer
            if d.strc and d.strs is not None:
                s += ", ".join(f'"{_esc(x, 1 << 20)}"' for x in d.strs)
            return s + "]}"
    return s[:1023] + "}" if len(s) < 1023 else s[:1023]


def _query_json(q: HostQuery) -> str:
    s = (f'{{"id":{q.id}, "ancount":{len(q.an)}, "nscount":{len(q.ns)}'
         f', "arcount":{len(q.ar)}, "tx":{{"sec":{q.tx[0]},"usec":{q.tx[1]}}}')
    if q.rx != (0, 0):
        rc = _RCODES[q.rcode] if q.rcode < len(_RCODES) else str(q.rcode)
        fl = ",".join(f'"{_QFLAGS[i]}"' for i in range(8) if q.flags & (1 << i))
        s += (f', "rx":{{"sec":{q.rx[0]},"usec":{q.rx[1]}}}, "rcode":"{rc}"'
              f', "flags":[{fl}]')
    s = s[:255]  # a 256-byte buffer
    for key, rrs in (("an", q.an), ("ns", q.ns), ("ar", q.ar)):
        if rrs:
            s += f', "{key}":[' + ",".join(_rr_json(r) for r in rrs) + "]"
    return s + "}"


def host_json(h: Host) -> str:
    """What scamper 2026's sc_warts2json prints for a host record (one line)."""
    s = '{"type":"host", "version":"0.1"'
    if h.src is not None:
        s += f', "src":"{_addr(h.src)}"'
    s += (f', "dst":"{_addr(h.dst)}", "userid":{h.userid}'
          f', "start":{{"sec":{h.start[0]},"usec":{h.start[1]}}}')
    if h.errmsg is not None:
        s += f',"errmsg":"{_esc(h.errmsg, 512)}"'
    if h.flags:
        fl = [n for b, n in ((1, '"norecurse"'), (2, '"tcp"'), (4, '"nsid"')) if h.flags & b]
        if fl:
            s += f', "flags":[{", ".join(fl)}]'
    s += f', "wait":{h.wait}, "retries":{h.retries}'
    s += f', "stop":"{_STOPS[h.stop] if h.stop < len(_STOPS) else h.stop}"'
    if h.qname is not None:
        s += f', "qname":"{_esc(h.qname, 512)}"'
    s += (f', "qclass":"{_qclass(h.qclass)}", "qtype":"{_QTYPES.get(h.qtype, str(h.qtype))}"'
          f', "qcount":{len(h.queries)}')
    if h.ecs is not None:
        s += f', "ecs":"{h.ecs}"'
    if h.list is not None and h.list.monitor is not None:
        s += f',"monitor":"{_esc(h.list.monitor, 512)}"'
    s = s[:1023]  # a 1024-byte buffer
    return s + ', "queries":[' + ",".join(_query_json(q) for q in h.queries) + "]}\n"


register(RecordCodec(14, Host, decode=decode_host, encode=encode_host, json=host_json,
                     printed_by=frozenset({"sc_warts2json"})))
