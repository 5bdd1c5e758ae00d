"""tbit records (warts type 11): TCP behaviour inference.

A tbit record (``scamper_tbit_t``) is a header (flags+params), its packets
(each a flags+params structure holding the raw IP packet), then typed
structures -- ``(u16 kind, u32 length, flags+params)`` -- until a kind of 0:
kind 1 holds the test type's data (pmtud, null, icw, blind-*), kind 2 the
application's (http, bgp).

Reading follows scamper 20211212, whose tools print tbit: the type data
exists for those four test types whether or not the structure is in the
file (all zero then), a repeated type structure updates the fields it
holds, a repeated application structure replaces the first, and the
2026-only error message (header field 22) is decoded when it can be and
skipped by length otherwise.  The renderers print what 20211212's
``sc_warts2text`` / ``sc_warts2json`` print (``printed_by`` both), including
their quirks (``"tcp_hlen": N`` with a space, ``frag_df`` always 0, a
fast-open option without a cookie left unclosed).  Packets are dissected
as the tools dissect them; bytes past a short packet's end read as zero
where the tools would read past their buffer.
"""

from __future__ import annotations

import builtins
import struct
from typing import Optional, Union

import attrs

from ixpscamper.warts import plugparams as P
from ixpscamper.warts.reader import _Bad
from ixpscamper.warts.records import Address, CycleStart, Timeval, WartsList
from ixpscamper.warts.registry import RecordCodec, register
from ixpscamper.warts.writer import WartsEncodeError, _fp, _s, _Table, _tv

__all__ = ["Tbit", "TbitPkt", "TbitPmtud", "TbitNull", "TbitIcw", "TbitBlind", "TbitAppHttp",
           "TbitAppBgp", "decode_tbit", "encode_tbit", "tbit_text", "tbit_json",
           "TYPE_NAMES", "RESULT_NAMES"]

# test types (scamper_tbit.h)
PMTUD, ECN, NULL, SACK_RCVR, ICW, ABC = 1, 2, 3, 4, 5, 6
BLIND_DATA, BLIND_RST, BLIND_SYN, BLIND_FIN = 7, 8, 9, 10
BLIND_TYPES = frozenset({BLIND_DATA, BLIND_RST, BLIND_SYN, BLIND_FIN})
APP_HTTP, APP_BGP = 1, 5
DIR_TX, DIR_RX = 1, 2
RESULT_ICW_SUCCESS = 60

TYPE_NAMES = {1: "pmtud", 2: "ecn", 3: "null", 4: "sack-rcvr", 5: "icw", 6: "abc",
              7: "blind-data", 8: "blind-rst", 9: "blind-syn", 10: "blind-fin"}
RESULT_NAMES = {
    0: "none", 1: "tcp-noconn", 2: "tcp-rst", 3: "tcp-error", 4: "sys-error", 5: "aborted",
    6: "tcp-noconn-rst", 7: "halted", 8: "tcp-badopt", 9: "tcp-fin", 10: "tcp-zerowin",
    20: "pmtud-noack", 21: "pmtud-nodata", 22: "pmtud-toosmall", 23: "pmtud-nodf",
    24: "pmtud-fail", 25: "pmtud-success", 26: "pmtud-cleardf",
    30: "ecn-success", 31: "ecn-incapable", 32: "ecn-badsynack", 33: "ecn-noece",
    34: "ecn-noack", 35: "ecn-nodata", 40: "null-success", 41: "null-nodata",
    50: "sack-incapable", 51: "sack-rcvr-success", 52: "sack-rcvr-shifted",
    53: "sack-rcvr-timeout", 54: "sack-rcvr-nosack", 60: "icw-success", 61: "icw-tooshort",
    70: "abc-success", 71: "abc-tooshort", 72: "abc-badicw", 80: "blind-accepted",
    81: "blind-challenge", 82: "blind-ignored", 83: "blind-rst", 84: "blind-synnew"}


# --------------------------------------------------------------------------
# records

@attrs.define
class TbitPkt:
    """One packet a tbit test sent (``dir`` 1, TX) or received (2, RX): the raw IP packet."""

    dir: int
    tv: Timeval
    data: bytes


@attrs.define
class TbitPmtud:
    """The pmtud test's data: the MTU its Packet Too Big messages carry."""

    mtu: int = 0
    ptb_retx: int = 0
    options: int = 0
    ptbsrc: Optional[Address] = None


@attrs.define
class TbitNull:
    """The null test's data: options offered and results seen (bit sets)."""

    options: int = 0
    results: int = 0


@attrs.define
class TbitIcw:
    """The icw test's data: the sequence offset the window count starts from."""

    start_seq: int = 0


@attrs.define
class TbitBlind:
    """The blind-* tests' data: the (signed) sequence offset and retransmissions."""

    off: int = 0
    retx: int = 0


@attrs.define
class TbitAppHttp:
    """The http application: ``type`` 0 http, 1 https; host and file of the URL."""

    type: int = 0
    host: Optional[str] = None
    file: Optional[str] = None


@attrs.define
class TbitAppBgp:
    """The bgp application: the ASN the session opens with."""

    asn: int = 0


TbitData = Union[TbitPmtud, TbitNull, TbitIcw, TbitBlind]
TbitApp = Union[TbitAppHttp, TbitAppBgp]
_DATA_CLASS = {PMTUD: TbitPmtud, NULL: TbitNull, ICW: TbitIcw,
               **{t: TbitBlind for t in BLIND_TYPES}}


@attrs.define
class Tbit:
    """A tbit measurement (record type 11, ``scamper_tbit_t``).

    ``type`` is the test (1 pmtud ... 10 blind-fin, :data:`TYPE_NAMES`),
    ``result`` its outcome (:data:`RESULT_NAMES`), ``app_proto`` the
    application (1 http, 5 bgp).  ``data`` / ``app`` are the typed
    structures as the file holds them (None: absent); ``ttl`` is the IP TTL
    the test sends with (255 when the file does not say).
    """

    src: Address
    dst: Address
    list: Optional[WartsList] = None
    cycle: Optional[CycleStart] = None
    userid: int = 0
    sport: int = 0
    dport: int = 0
    start: Timeval = Timeval(0, 0)
    result: int = 0
    type: int = 0
    app_proto: int = 0
    client_mss: int = 0
    server_mss: int = 0
    syn_retx: int = 0
    dat_retx: int = 0
    fo_cookie: bytes = b""
    wscale: int = 0
    options: int = 0
    ttl: int = 255
    errmsg: Optional[str] = None
    pkts: list[TbitPkt] = attrs.field(factory=builtins.list)
    data: Optional[TbitData] = None
    app: Optional[TbitApp] = None


# --------------------------------------------------------------------------
# decoding

def _cookie(buf, pos, nb):
    # extract_cookie: a length byte (at most 16) and that many bytes
    if pos >= nb:
        raise _Bad("fast-open cookie runs past the end of the record")
    n = buf[pos]
    if n > 16 or n > nb - pos - 1:
        raise _Bad(f"fast-open cookie of {n} bytes")
    return bytes(buf[pos + 1:pos + 1 + n]), pos + 1 + n


def _lenient(h):
    # a field newer than 20211212, which skips it by length: a malformed one
    # does not spoil the record (nothing after it in the structure is read)
    def g(buf, pos, nb):
        try:
            return h(buf, pos, nb)
        except (_Bad, IndexError, struct.error, ValueError):
            return None, nb
    return g


_HDR_BASE = [P.u32, P.u32, P.u32, None, None, P.u16, P.u16, P.tv, P.u16, P.u8, P.u8, P.u16,
             P.u16, P.u8, P.u8, P.u16, P.u32, _cookie, P.u8, P.u32, P.u8,
             _lenient(P.string)]


def _pkt_bytes(buf, pos, nb, ctx):
    # extract_bytes_ptr, its length the packet's field 3 (0 when absent)
    n = ctx[0] or 0
    if pos >= nb or nb - pos < n:
        raise _Bad("packet bytes run past the end of the record")
    return bytes(buf[pos:pos + n]), pos + n


def decode_tbit(res, buf) -> Tbit:
    """Decode a tbit record body (``res``: the reader's per-file state)."""
    table: list = []
    hdr = list(_HDR_BASE)
    hdr[3] = hdr[4] = P.addr_in(table)
    v, pos = P.read_params(buf, 0, hdr)
    (lid, cid, uid, src, dst, sport, dport, start, result, typ, app_proto, cmss, smss, synretx,
     datretx, pktc16, pktc32, cookie, wscale, options, ttl, errmsg) = v
    if src is None or dst is None:
        raise _Bad("tbit without source and destination addresses")
    # scamper tests the cookie and TTL flags in the third flag byte whether
    # or not the structure has one (it reads what follows the flags then)
    fb = buf[2] if len(buf) > 2 else 0
    if ttl is None:
        ttl = 0 if fb & 0x40 else 255
    if cookie is None:
        cookie = b""
    t = Tbit(src, dst, res.list_of(lid), res.cycle_of(cid), uid or 0, sport or 0, dport or 0,
             start or Timeval(0, 0), result or 0, typ or 0, app_proto or 0, cmss or 0,
             smss or 0, synretx or 0, datretx or 0, cookie, wscale or 0, options or 0, ttl,
             errmsg)
    pktc = pktc32 or pktc16 or 0
    for _ in range(pktc):
        ctx = [None]
        ph = [P.u8, P.tv, None, lambda b, p, n: _pkt_bytes(b, p, n, ctx)]

        def plen(b, p, n):
            val, p = P.u16(b, p, n)
            ctx[0] = val
            return val, p
        ph[2] = plen
        pv, pos = P.read_params(buf, pos, ph)
        d, tvv, ln, data = pv
        if not ln or not data:
            raise _Bad("tbit packet without data")
        t.pkts.append(TbitPkt(d or 0, tvv or Timeval(0, 0), data))
    nb = len(buf)
    while True:
        kind, pos = P.u16(buf, pos, nb)
        if kind == 0:
            break
        ln, pos = P.u32(buf, pos, nb)
        if nb - pos < ln:
            raise _Bad(f"tbit structure of {ln} bytes runs past the end of the record")
        if kind == 1:
            _type_struct(t, buf, pos, table)
        elif kind == 2:
            _app_struct(t, buf, pos)
        else:
            raise _Bad(f"tbit structure of unknown kind {kind}")
        pos += ln
    return t


def _type_struct(t: Tbit, buf, pos: int, table: list) -> None:
    cls = _DATA_CLASS.get(t.type)
    if cls is None:
        return  # scamper steps over the structure of another test type
    d = t.data if isinstance(t.data, cls) else cls()
    if cls is TbitPmtud:
        v, _ = P.read_params(buf, pos, [P.u16, P.u8, P.u8, P.addr_in(table)])
        names = ("mtu", "ptb_retx", "options", "ptbsrc")
    elif cls is TbitNull:
        v, _ = P.read_params(buf, pos, [P.u16, P.u16])
        names = ("options", "results")
    elif cls is TbitIcw:
        v, _ = P.read_params(buf, pos, [P.u32])
        names = ("start_seq",)
    else:
        v, _ = P.read_params(buf, pos, [P.i32, P.u8])
        names = ("off", "retx")
    # 20211212 reads into the one structure: what a repeat holds replaces
    for name, val in zip(names, v):
        if val is not None:
            setattr(d, name, val)
    t.data = d


def _app_struct(t: Tbit, buf, pos: int) -> None:
    if t.app_proto == APP_HTTP:
        v, _ = P.read_params(buf, pos, [P.string, P.string, P.u8])
        host, file, typ = v
        t.app = TbitAppHttp(typ or 0, host, file)
    elif t.app_proto == APP_BGP:
        v, _ = P.read_params(buf, pos, [P.u32])
        t.app = TbitAppBgp(v[0] or 0)


# --------------------------------------------------------------------------
# encoding (what scamper's warts writer writes)

_B = struct.Struct(">B").pack
_H = struct.Struct(">H").pack
_I = struct.Struct(">I").pack
_i = struct.Struct(">i").pack


def _struct(kind: int, body: bytes) -> bytes:
    return _H(kind) + _I(len(body)) + body


def encode_tbit(t: Tbit, list_id: int, cycle_id: int) -> bytes:
    """The body of a tbit record, as scamper writes it."""
    table = _Table()
    f = []
    if t.list is not None or list_id:
        f.append((1, _I(list_id)))
    if t.cycle is not None or cycle_id:
        f.append((2, _I(cycle_id)))
    if t.userid:
        f.append((3, _I(t.userid)))
    f += [(4, table.enc(t.src)), (5, table.enc(t.dst)), (6, _H(t.sport)), (7, _H(t.dport)),
          (8, _tv(t.start)), (9, _H(t.result)), (10, _B(t.type)), (11, _B(t.app_proto)),
          (12, _H(t.client_mss)), (13, _H(t.server_mss)), (14, _B(t.syn_retx)),
          (15, _B(t.dat_retx)), (17, _I(len(t.pkts)))]
    if t.fo_cookie:
        if len(t.fo_cookie) > 16:
            raise WartsEncodeError("a fast-open cookie is at most 16 bytes")
        f.append((18, _B(len(t.fo_cookie)) + t.fo_cookie))
    if t.wscale:
        f.append((19, _B(t.wscale)))
    if t.options:
        f.append((20, _I(t.options)))
    if t.ttl != 255:
        f.append((21, _B(t.ttl)))
    if t.errmsg is not None:
        f.append((22, _s(t.errmsg)))
    out = [_fp(f)]
    for p in t.pkts:
        if not p.data:
            raise WartsEncodeError("a tbit packet needs at least one byte")
        if len(p.data) > 0xFFFF:
            raise WartsEncodeError("a tbit packet is at most 65535 bytes")
        out.append(_fp([(1, _B(p.dir)), (2, _tv(p.tv)), (3, _H(len(p.data))), (4, p.data)]))
    d = t.data
    if d is not None:
        if not isinstance(d, _DATA_CLASS.get(t.type, ())):
            raise WartsEncodeError(f"{type(d).__name__} data for tbit type {t.type}")
        if isinstance(d, TbitPmtud):
            g = []
            if d.mtu:
                g.append((1, _H(d.mtu)))
            if d.ptb_retx:
                g.append((2, _B(d.ptb_retx)))
            if d.options:
                g.append((3, _B(d.options)))
            if d.ptbsrc is not None:
                g.append((4, table.enc(d.ptbsrc)))
        elif isinstance(d, TbitNull):
            g = [x for x in ((1, d.options), (2, d.results)) if x[1]]
            g = [(i, _H(x)) for i, x in g]
        elif isinstance(d, TbitIcw):
            g = [(1, _I(d.start_seq))] if d.start_seq else []
        else:
            g = []
            if d.off:
                g.append((1, _i(d.off)))
            if d.retx:
                g.append((2, _B(d.retx)))
        out.append(_struct(1, _fp(g)))
    a = t.app
    if a is not None:
        if isinstance(a, TbitAppHttp) and t.app_proto == APP_HTTP:
            g = []
            if a.host is not None:
                g.append((1, _s(a.host)))
            if a.file is not None:
                g.append((2, _s(a.file)))
            if a.type:
                g.append((3, _B(a.type)))
        elif isinstance(a, TbitAppBgp) and t.app_proto == APP_BGP:
            g = [(1, _I(a.asn))] if a.asn else []
        else:
            raise WartsEncodeError(f"{type(a).__name__} application for app_proto {t.app_proto}")
        out.append(_struct(2, _fp(g)))
    out.append(b"\x00\x00")
    return b"".join(out)


# --------------------------------------------------------------------------
# rendering (scamper 20211212's text and JSON)

_M32 = 0xFFFFFFFF
_PAD = bytes(1024)


def _type_str(t: Tbit) -> str:
    return TYPE_NAMES.get(t.type, str(t.type))


def _result_str(t: Tbit) -> str:
    return RESULT_NAMES.get(t.result, str(t.result))


def _data_of(t: Tbit):
    """The type data as 20211212 holds it: present (zero) for its test types."""
    if t.data is not None:
        return t.data
    cls = _DATA_CLASS.get(t.type)
    return cls() if cls is not None else None


def _tvdiff(start: Timeval, tv: Timeval) -> tuple[int, int]:
    sec = tv[0] - start[0]
    usec = tv[1] - start[1]
    if usec < 0:
        sec -= 1
        usec += 1000000
    return sec, usec


def _s32(x: int) -> int:
    x &= _M32
    return x - (1 << 32) if x & 0x80000000 else x


def _be16(d: bytes, i: int) -> int:
    return (d[i] << 8) | d[i + 1]


def _be32(d: bytes, i: int) -> int:
    return (d[i] << 24) | (d[i + 1] << 16) | (d[i + 2] << 8) | d[i + 3]


def _addr(a) -> str:
    from ixpscamper.warts.text import addr_str
    return addr_str(a)


def tbit_text(t: Tbit) -> str:
    """What sc_warts2text prints for a tbit record."""
    out = [f"tbit from {_addr(t.src)} to {_addr(t.dst)}\n"
           f" server-mss {t.server_mss}, result: {_result_str(t)}\n"]
    a = t.app
    if t.app_proto == APP_HTTP and isinstance(a, TbitAppHttp):
        scheme = "https" if a.type == 1 else "http"
        s = " app: http"
        if a.host is not None and a.file is not None:
            s += f", url: {scheme}://{a.host}{a.file}"
        elif a.host is not None:
            s += f", url: {scheme}://{a.host}"
        else:
            s += f", file: {a.file if a.file is not None else '(null)'}"
        out.append(s + "\n")
    client_isn = server_isn = 0
    for p in t.pkts:
        d = p.data + _PAD
        frag = mf = off = 0
        ipid = ""
        v = d[0] >> 4
        if v == 4:
            iphlen = (d[0] & 0xF) * 4
            ln = _be16(d, 2)
            proto = d[9]
            ecn = d[1] & 3
            mf = 1 if d[6] & 0x20 else 0
            ipid = f" {_be16(d, 4):04x}"
            off = (_be16(d, 6) & 0x1FFF) * 8
            frag = 1 if mf or off else 0
        elif v == 6:
            iphlen = 40
            ln = (_be16(d, 4) + 40) & 0xFFFF
            proto = d[6]
            ecn = (d[1] & 0x30) >> 4
            while True:
                if proto in (0, 43, 60):
                    e = d[iphlen + 1]
                    if e == 0 or 255 - iphlen <= e * 8 + 8:
                        break
                    proto = d[iphlen]
                    iphlen += e * 8 + 8
                    continue
                if proto == 44:
                    if 255 - iphlen <= 8:
                        break
                    if d[iphlen + 3] & 1:
                        mf = 1
                    ipid = f"{_be32(d, iphlen + 4):x}"
                    off = _be16(d, iphlen + 2) & 0xFFF8
                    proto = d[iphlen]
                    iphlen += 8
                    frag = 1
                    continue
                break
        else:
            continue
        ds, du = _tvdiff(t.start, p.tv)
        ms = abs(du) // 1000 * (1 if du >= 0 else -1)  # C division truncates
        line = f" [{_s32(ds):3d}.{_s32(ms):03d}] {'TX' if p.dir == DIR_TX else 'RX'} "
        fstr = f":{off}{' MF' if mf else ''}" if frag else ""
        if off != 0:
            line += f"{'':<13s} {ln:4d}F{'':>22s} {ipid}{fstr}"
        elif proto == 6:
            seq = _be32(d, iphlen + 4)
            ack = _be32(d, iphlen + 8)
            fl = d[iphlen + 13]
            tcphlen = ((d[iphlen + 12] & 0xF0) >> 4) * 4
            tf = ""
            if fl & 0x02:
                if fl & 0x10:
                    server_isn = seq
                    tf = "SYN/ACK"
                else:
                    client_isn = seq
                    tf = "SYN"
            elif fl & 0x01:
                tf = "FIN"
            elif fl & 0x04:
                tf = "RST"
            if fl & 0x40:
                tf += ("/" if tf else "") + "ECE"
            if fl & 0x80:
                tf += ("/" if tf else "") + "CWR"
            u = 20
            sack = ""
            while u < tcphlen:
                q = iphlen + u
                if d[q] == 0:
                    break
                if d[q] == 1:
                    u += 1
                    continue
                ol = d[q + 1]
                if ol == 0 or u + ol > tcphlen:
                    break
                if d[q] == 5 and ol in (10, 18, 26, 34):
                    isn = server_isn if p.dir == DIR_TX else client_isn
                    blocks = ",".join(f"{(_be32(d, q + 2 + k * 8) - isn) & _M32}:"
                                      f"{(_be32(d, q + 6 + k * 8) - isn) & _M32}"
                                      for k in range((ol - 2) // 8))
                    sack = (sack + " {" + blocks + "}")[:127]  # a 128-byte buffer
                u += ol
            if p.dir == DIR_TX:
                seq = (seq - client_isn) & _M32
                ack = (ack - server_isn) & _M32
            else:
                seq = (seq - server_isn) & _M32
                ack = (ack - client_isn) & _M32
            datalen = (ln - iphlen - tcphlen) & 0xFFFF
            line += f"{tf:<13s} {ln:4d}{'F' if frag else ' '}"
            tmp = f" seq = {seq}:{ack}"
            if datalen:
                tmp += f"({datalen})"
            tmp = (tmp + sack)[:255]
            line += f"{tmp:<23s}{ipid}"
            if frag:
                line += fstr
            if datalen > 0 and v == 4 and d[6] & 0x40:
                line += " DF"
            if ecn == 3:
                line += " CE"
            elif ecn:
                line += " ECT"
        elif proto == 1:
            if d[iphlen] == 3 and d[iphlen + 1] == 4:
                line += f"{'PTB':<13s} {ln:4d}  mtu = {_be16(d, iphlen + 6)}"
        elif proto == 58:
            if d[iphlen] == 2:
                line += f"{'PTB':<13s} {ln:4d}  mtu = {_s32(_be32(d, iphlen + 4))}"
        out.append(line + "\n")
    return "".join(out)


def _bits(flags: int, nbits: int, names) -> str:
    out = []
    for i in range(nbits):
        b = flags & (1 << i)
        if b:
            out.append(f'"{names[i]}"' if i < len(names) else str(b))
    return ",".join(out)[:127]


_TCPFLAGS = ("fin", "syn", "rst", "psh", "ack", "urg", "ece", "cwr")


def _pkt_json(t: Tbit, p: TbitPkt, st: dict) -> str:
    d = p.data + _PAD
    if p.dir == DIR_TX:
        dirs = '"tx"'
    elif p.dir == DIR_RX:
        dirs = '"rx"'
    else:
        dirs = str(p.dir)
    ds, du = _tvdiff(t.start, p.tv)
    s = (f'{{"dir":{dirs}, "tv_sec":{ds & _M32}, "tv_usec":{du & _M32}, '
         f'"len":{len(p.data)}')
    v = d[0] >> 4
    frag = mf = fid = foff = 0
    if v == 4:
        iphlen = (d[0] & 0xF) * 4
        ln = _be16(d, 2)
        proto = d[9]
        ecn = d[1] & 3
        ttl = d[8]
        mf = 1 if d[6] & 0x20 else 0
        fid = _be16(d, 4)
        foff = (_be16(d, 6) & 0x1FFF) * 8
        frag = 1 if mf or foff else 0
    elif v == 6:
        iphlen = 40
        ln = (_be16(d, 4) + 40) & 0xFFFF
        proto = d[6]
        ecn = (d[1] & 0x30) >> 4
        ttl = d[7]
        # no bounds here in the tool: the header length is a byte and wraps
        # (a chain of headers that never ends would loop it forever; cut off)
        for _ in range(512):
            if proto in (0, 43, 60):
                proto, iphlen = d[iphlen], (iphlen + d[iphlen + 1] * 8 + 8) & 0xFF
                continue
            if proto == 44:
                if d[iphlen + 3] & 1:
                    mf = 1
                foff = _be16(d, iphlen + 2) & 0xFFF8
                fid = _be32(d, iphlen + 4)
                proto = d[iphlen]
                iphlen = (iphlen + 8) & 0xFF
                frag = 1
                continue
            break
    else:
        return (s[:1023] + "}")[:1023]
    s += f', "ip_hlen":{iphlen}, "ip_ecn":{ecn}, "ip_ttl":{ttl}'
    if v == 4 or frag:
        s += f', "frag_id":{fid}, "frag_off":{foff}, "frag_mf":{mf}'
    if v == 4:
        s += ', "frag_df":0'  # (data[6] & 0x40) >> 7 in the tool: always 0
    if foff == 0 and proto == 6:
        seq = _be32(d, iphlen + 4)
        ack = _be32(d, iphlen + 8)
        win = _be16(d, iphlen + 14)
        fl = d[iphlen + 13]
        tcphlen = ((d[iphlen + 12] & 0xF0) >> 4) * 4
        if fl & 0x12 == 0x02 and "cisn" not in st:
            st["cisn"] = seq
        elif fl & 0x12 == 0x12 and "sisn" not in st:
            st["sisn"] = seq
        cisn, sisn = st.get("cisn", 0), st.get("sisn", 0)
        s += f', "tcp_hlen": {tcphlen}, "tcp_flags":[{_bits(fl, 8, _TCPFLAGS)}]'
        s += ', "tcp_options":['
        u = 20
        n = 0
        while u < tcphlen:
            q = iphlen + u
            k = d[q]
            sep = ", " if n > 0 else ""
            if k == 0:
                s += sep + '{"kind":"eol"}'
                break
            if k == 1:
                s += sep + '{"kind":"nop"}'
                n += 1
                u += 1
                continue
            ol = d[q + 1]
            if ol == 0 or u + ol > tcphlen:
                break
            if k == 3 and ol == 3:
                s += f'{sep}{{"kind":"wscale", "shift":{d[q + 2]}}}'
                n += 1
            elif k == 4 and ol == 2:
                s += sep + '{"kind":"sack-ok"}'
                n += 1
            elif k == 5 and ol in (10, 18, 26, 34):
                isn = sisn if p.dir == DIR_TX else cisn
                s += sep + '{"kind":"sack", "blocks":['
                s += ", ".join(f'{{"left":{(_be32(d, q + 2 + j * 8) - isn) & _M32}, '
                               f'"right":{(_be32(d, q + 6 + j * 8) - isn) & _M32}}}'
                               for j in range((ol - 2) // 8))
                s += "]}"
                n += 1
            elif k == 8 and ol == 10:
                s += f'{sep}{{"kind":"ts", "val":{_be32(d, q + 2)}, "ecr":{_be32(d, q + 6)}}}'
                n += 1
            elif k == 34 and ol >= 2:
                s += sep + '{"kind":"fo"'
                if ol > 2:
                    s += ', "cookie":"' + d[q + 2:q + ol].hex() + '"}'
                n += 1
            elif k == 254 and ol >= 4 and d[q + 2] == 0xF9 and d[q + 3] == 0x89:
                s += sep + '{"kind":"fo-exp"'
                if ol > 4:
                    s += ', "cookie":"' + d[q + 4:q + ol].hex() + '"}'
                n += 1
            u += ol
        s += "]"
        if p.dir == DIR_TX:
            seq = (seq - cisn) & _M32
            ack = (ack - sisn) & _M32
        else:
            if not (seq == 0 and fl & 0x04):
                seq = (seq - sisn) & _M32
            ack = (ack - cisn) & _M32
        s += f', "tcp_seq":{seq}'
        if fl & 0x10:
            s += f', "tcp_ack":{ack}'
        s += f', "tcp_datalen":{(ln - iphlen - tcphlen) & _M32}, "tcp_win":{win}'
    # built in a 1024-byte buffer
    return (s[:1023] + "}")[:1023]


def _icw_size(t: Tbit) -> Optional[int]:
    """scamper_tbit_icw_size: bytes the server sent before its first retransmission."""
    d0 = _data_of(t)
    if t.result != RESULT_ICW_SUCCESS or not t.pkts or not isinstance(d0, TbitIcw):
        return None
    pk = t.pkts
    i = 1
    while i < len(pk) and pk[i].dir != DIR_RX:
        i += 1
    if i == len(pk):
        return None
    h = _iph(pk[i].data)
    if h is None:
        return None
    proto, iphlen, _ = h
    d = pk[i].data + _PAD
    if proto != 6 or d[iphlen + 13] & 0x12 != 0x12:
        return None
    start = (_be32(d, iphlen + 4) + d0.start_seq) & _M32
    q: list[tuple[int, int]] = []
    count = 0
    for p in pk[i + 1:]:
        if p.dir != DIR_RX:
            continue
        h = _iph(p.data)
        if h is None or h[0] != 6:
            break
        _, iphlen, iplen = h
        d = p.data + _PAD
        seq = _be32(d, iphlen + 4)
        tcphlen = ((d[iphlen + 12] & 0xF0) >> 4) * 4
        fl = d[iphlen + 13]
        datalen = (iplen - iphlen - tcphlen) & 0xFFFF
        if datalen == 0 and not fl & 0x01:
            continue
        if not _inrange(start, seq, datalen):
            continue
        if seq == start:
            count += 1
            if count == 2:
                rng = 0
                for qs, ql in q:
                    rng = max(rng, ((qs + ql) - start) & _M32)
                return rng  # seqoff(start, start + range) = range
        q.append((seq, datalen))
    return None


def _seq_lt(a: int, b: int) -> bool:
    return _s32(a - b) < 0


def _inrange(rcv_nxt: int, seq: int, ln: int) -> bool:
    top = (rcv_nxt + 65535) & _M32
    last = (seq + ln - 1) & _M32
    return ((not _seq_lt(seq, rcv_nxt) and _seq_lt(seq, top))
            or (not _seq_lt(last, rcv_nxt) and _seq_lt(last, top)))


def _iph(data: bytes):
    """scamper_tbit_pkt_iph: (protocol, header length, IP length) or None."""
    d = data + _PAD
    v = d[0] >> 4
    if v == 4:
        return d[9], (d[0] & 0xF) * 4, _be16(d, 2)
    if v != 6:
        return None
    iphlen = 40
    iplen = (_be16(d, 4) + 40) & 0xFFFF
    proto = d[6]
    while True:
        if proto in (0, 43, 60):
            e = d[iphlen + 1]
            if e == 0 or 255 - iphlen <= e * 8 + 8:
                return None
            proto = d[iphlen]
            iphlen += e * 8 + 8
            continue
        if proto == 44:
            if 255 - iphlen <= 8:
                return None
            proto = d[iphlen]
            if _be16(d, iphlen + 2) & 0xFFF8 or d[iphlen + 3] & 1:
                return None
            iphlen += 8
            continue
        return proto, iphlen, iplen


def tbit_json(t: Tbit) -> str:
    """What sc_warts2json prints for a tbit record (one line)."""
    st: dict = {}
    pkts = [_pkt_json(t, p, st) for p in t.pkts]
    h = (f'{{"type":"tbit", "tbit_type":"{_type_str(t)}", "userid":{t.userid}'
         f', "src":"{_addr(t.src)}", "dst":"{_addr(t.dst)}"'
         f', "sport":{t.sport}, "dport":{t.dport}'
         f', "start":{{"sec":{t.start[0]},"usec":{t.start[1]}}}'
         f', "client_mss":{t.client_mss}, "server_mss":{t.server_mss}, "ttl":{t.ttl}'
         f', "result":"{_result_str(t)}"')
    if t.options:
        h += f', "options":[{_bits(t.options, 16, ("tcpts", "sack"))}]'
    if t.wscale > 0:
        h += f', "wscale":{t.wscale}'
    if t.fo_cookie:
        h += f', "fo_cookie":"{t.fo_cookie.hex()}"'
    if "cisn" in st:
        h += f', "client_isn":{st["cisn"]}'
    if "sisn" in st:
        h += f', "server_isn":{st["sisn"]}'
    d = _data_of(t)
    if t.type == PMTUD and isinstance(d, TbitPmtud):
        h += f', "mtu":{d.mtu}, "ptb_retx":{d.ptb_retx}'
        if d.ptbsrc is not None:
            h += f', "ptbsrc":"{_addr(d.ptbsrc)}"'
        h += f', "pmtud_options":[{_bits(d.options, 8, ("blackhole",))}]'
    elif t.type == NULL and isinstance(d, TbitNull):
        h += f', "null_options":[{_bits(d.options, 16, _NULL_OPTS)}]'
        h += f', "null_results":[{_bits(d.results, 16, ("tcpts-ok", "sack-ok", "fo-ok"))}]'
    elif t.type == ICW:
        n = _icw_size(t)
        if n is not None:
            h += f', "icw_bytes":{n}'
    elif t.type in BLIND_TYPES and isinstance(d, TbitBlind):
        h += f', "blind_off":{d.off}, "blind_retx":{d.retx}'
    a = t.app
    if t.app_proto == APP_HTTP and isinstance(a, TbitAppHttp):
        h += ', "app":"http"'
        scheme = "https" if a.type == 1 else "http"
        if a.host is not None and a.file is not None:
            h += f', "http_url":"{scheme}://{a.host}{a.file}"'
        elif a.host is not None:
            h += f', "http_url":"{scheme}://{a.host}"'
    elif t.app_proto == APP_BGP and isinstance(a, TbitAppBgp):
        h += f', "app":"bgp", "bgp_asn":{a.asn}'
    h = h[:1023]  # a 1024-byte buffer
    return h + ', "pkts":[' + ", ".join(pkts) + "]}\n"


_NULL_OPTS = ("tcpts", "ipts-syn", "iprr-syn", "ipqs-syn", "sack", "fo", "fo-exp")


register(RecordCodec(11, Tbit, decode=decode_tbit, encode=encode_tbit, text=tbit_text,
                     json=tbit_json, printed_by=frozenset({"sc_warts2text", "sc_warts2json"})))
