"""OWAMP (RFC 4656 one-way active measurement) records: warts type 17 (0x11).

scamper 2026 measures one-way delay against an OWAMP server and writes the
result as record type 17 (``SCAMPER_FILE_OBJ_OWAMP``; its reader's table of
record types is indexed by it).  Some notes give 0x20 (32): that is wrong,
scamper 2026's tools step over a type-32 record unread.

This module holds the record classes, the warts decoder and encoder, and
the JSON renderer, and registers them with :mod:`ixpscamper.warts.registry`:

- the layout is scamper's ``scamper_file_warts_owamp_{read,write}``: a
  header (flags + parameters), then ``schedc`` schedule entries, then
  ``txc`` transmitted packets, each followed by its ``rxc`` receptions;
- the JSON is what scamper 2026's ``sc_warts2json`` prints
  (``scamper_owamp_tojson``);
- neither version's ``sc_warts2text`` prints owamp records (20211212 does not
  know the type), so there is no text renderer: ``ixp-warts2text`` names
  such a record on stderr and exits 3.

Fields scamper leaves out when they hold its defaults are read back as
those defaults (``dport`` 861, ``wait_timeout`` 2 s, one schedule entry,
``attempts`` 10, ``pktsize`` 42, ``ttl`` 255), exactly as scamper's reader
does, including its way of testing for a field: it looks at the bit the
field would have in the header's flag bytes even where the flags are
shorter than that, so the bit may come from the bytes that follow.
"""

from __future__ import annotations

import builtins
import struct
from typing import Optional

import attrs

# the reader's internal error type (the reader reports it as a bad owamp
# record with its offset) and its address and string field readers
from ixpscamper.warts.reader import _Bad, _saddr as _static_addr, _str
from ixpscamper.warts.records import CycleStart, Timeval, WartsList
from ixpscamper.warts.registry import RecordCodec, register
from ixpscamper.warts.writer import WartsEncodeError, _B, _H, _I, _atype, _fp, _s, _static, _tv

__all__ = ["Owamp", "OwampSched", "OwampTx", "OwampRx", "OwampResult", "OwampDir",
           "OWAMP_RECORD_TYPE", "decode_owamp", "encode_owamp", "owamp_json"]

OWAMP_RECORD_TYPE = 17

Address = object  # an ipaddress address or a LinkAddress, as elsewhere in records


class OwampResult:
    """``Owamp.result`` values (``SCAMPER_OWAMP_RESULT_*``)."""

    NONE, DONE, HALTED, ERROR, NOCONN, NOTACCEPTED, NOMODE, TIMEOUT = range(8)


class OwampDir:
    """``Owamp.dir`` values: scamper sends (``TX``) or the server sends (``RX``)."""

    TX, RX = 0, 1


#: ``OwampTx.flags``: the packet was not sent; ``errest`` is meaningful
OWAMP_TX_NOTSENT = 0x01
OWAMP_TX_ERREST = 0x02
#: ``OwampRx.flags``: which of dscp / ttl / errest the reception carries
OWAMP_RX_DSCP = 0x01
OWAMP_RX_TTL = 0x02
OWAMP_RX_ERREST = 0x04


@attrs.define
class OwampSched:
    """One entry of the send schedule (``scamper_owamp_sched_t``): ``type`` 0
    fixed interval ``tv``, 1 exponentially distributed with mean ``tv``."""

    tv: Timeval = Timeval(0, 0)
    type: int = 0


@attrs.define
class OwampRx:
    """A reception of a test packet (``scamper_owamp_rx_t``): ``stamp`` when it
    arrived, ``errest`` the receiver's RFC 4656 error estimate."""

    stamp: Timeval = Timeval(0, 0)
    errest: int = 0
    flags: int = 0
    dscp: int = 0
    ttl: int = 0


@attrs.define
class OwampTx:
    """A test packet (``scamper_owamp_tx_t``): ``sched`` when it was due,
    ``stamp`` when it was sent, its sequence number and receptions."""

    sched: Timeval = Timeval(0, 0)
    stamp: Timeval = Timeval(0, 0)
    seq: int = 0
    errest: int = 0
    flags: int = 0
    rxs: list[OwampRx] = attrs.field(factory=builtins.list)


@attrs.define
class Owamp:
    """An OWAMP measurement (record type 17, 2026, ``scamper_owamp_t``).

    ``dport`` is the control connection's TCP port and ``udp_sport`` /
    ``udp_dport`` the test session's UDP ports; ``start`` / ``startat`` /
    ``wait_timeout`` are Timevals; ``hsrtt`` (the control connection's
    handshake RTT) is in microseconds, as warts stores it; ``pktsize`` is
    the test packets' IP size; ``dir`` see :class:`OwampDir`, ``result``
    :class:`OwampResult`.  The defaults are the values scamper leaves out
    of the record.
    """

    list: Optional[WartsList] = None
    cycle: Optional[CycleStart] = None
    userid: int = 0
    src: Optional[Address] = None
    dst: Optional[Address] = None
    dport: int = 861
    flags: int = 0
    start: Timeval = Timeval(0, 0)
    startat: Timeval = Timeval(0, 0)
    wait_timeout: Timeval = Timeval(2, 0)
    sched: list[OwampSched] = attrs.field(factory=builtins.list)
    attempts: int = 10
    pktsize: int = 42
    dir: int = 0
    dscp: int = 0
    ttl: int = 255
    hsrtt: int = 0
    result: int = 0
    errmsg: Optional[str] = None
    udp_sport: int = 0
    udp_dport: int = 0
    txs: list[OwampTx] = attrs.field(factory=builtins.list)


# --------------------------------------------------------------------------
# decoding

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_TV = struct.Struct(">II")


def _u8(buf, pos):
    if pos >= len(buf):
        raise _Bad("record body ends in the middle of a field")
    return buf[pos], pos + 1


def _u16(buf, pos):
    if len(buf) - pos < 2:
        raise _Bad("record body ends in the middle of a field")
    return _U16.unpack_from(buf, pos)[0], pos + 2


def _u32(buf, pos):
    if len(buf) - pos < 4:
        raise _Bad("record body ends in the middle of a field")
    return _U32.unpack_from(buf, pos)[0], pos + 4


def _tvr(buf, pos):
    if len(buf) - pos < 8:
        raise _Bad("record body ends in the middle of a field")
    return Timeval(*_TV.unpack_from(buf, pos)), pos + 8


def _saddr(buf, pos):
    if len(buf) - pos < 2:
        raise _Bad("record body ends in the middle of an address")
    return _static_addr(buf, pos)


def _string(buf, pos):
    return _str(buf, pos, len(buf))


_KIND = {"B": _u8, "H": _u16, "I": _u32, "tv": _tvr, "saddr": _saddr, "str": _string}

_HDR = ("I", "I", "I", "saddr", "saddr", "H", "H", "tv", "tv", "tv", "I", "I", "H", "B", "B",
        "B", "I", "B", "str", "H", "H", "I")
_SCHED = ("tv", "B")
_RX = ("tv", "H", "B", "B", "B")
_TX = ("tv", "tv", "I", "H", "B", "B")


def _params(buf, pos: int, spec: tuple):
    """One flags + parameters structure, read as scamper's warts_params_read does.

    Returns ``(values, next_pos)``, ``values`` a list with None for absent
    fields.  Each field is bounded by the end of the record, not by the
    declared parameter length; fields past ``spec`` are skipped by length;
    and the next structure starts at the declared end, wherever that is.
    """
    n = len(buf)
    vals: list = [None] * len(spec)
    if pos >= n:
        raise _Bad("structure starts past the end of the record")
    if buf[pos] == 0:
        return vals, pos + 1
    p = pos
    while p < n and buf[p] & 0x80:
        p += 1
    fb = buf[pos:p + 1]
    p += 1
    if p > n:
        raise _Bad("flag bytes run past the end of the record")
    plen, p = _u16(buf, p)
    end = p + plen
    for i, b in enumerate(fb):
        for bit in range(7):
            if not b & (1 << bit):
                continue
            fid = i * 7 + bit
            if fid >= len(spec):
                return vals, end
            vals[fid], p = _KIND[spec[fid]](buf, p)
    return vals, end


def _flag_isset(buf, pos: int, fid: int) -> bool:
    # scamper's flag_isset: the bit in byte (fid-1)//7 from the structure's
    # start, whether or not the flag bytes reach that far (beyond the
    # record, where scamper would read past its buffer, it counts as unset)
    i = pos + (fid - 1) // 7
    return i < len(buf) and bool(buf[i] & (1 << ((fid - 1) % 7)))


def decode_owamp(resolver, buf) -> Owamp:
    """Decode an owamp record body; ``resolver`` resolves list/cycle ids.

    Raises the reader's internal error type (or struct.error / IndexError /
    ValueError) for malformed input; :mod:`ixpscamper.warts.reader` turns
    those into a :class:`~ixpscamper.warts.reader.WartsError`.
    """
    if not buf:
        raise _Bad("empty record")
    v, pos = _params(buf, 0, _HDR)
    (lid, cid, uid, src, dst, dport, flags, start, startat, wt, schedc, attempts, pktsize,
     dr, dscp, ttl, hsrtt, result, errmsg, usport, udport, txc) = v
    z = Timeval(0, 0)
    # the defaults scamper's reader fills in for fields it does not see
    if not _flag_isset(buf, 0, 6):
        dport = 861
    if not _flag_isset(buf, 0, 10):
        wt = Timeval(2, 0)
    if not _flag_isset(buf, 0, 11):
        schedc = 1
    if not _flag_isset(buf, 0, 12):
        attempts = 10
    if not _flag_isset(buf, 0, 13):
        pktsize = 42
    if not _flag_isset(buf, 0, 16):
        ttl = 255
    o = Owamp(resolver.list_of(lid), resolver.cycle_of(cid), uid or 0, src, dst, dport or 0,
              flags or 0, start or z, startat or z, wt or z, [], attempts or 0, pktsize or 0,
              dr or 0, dscp or 0, ttl or 0, hsrtt or 0, result or 0, errmsg, usport or 0,
              udport or 0)
    # every structure is at least one byte, so a count from the input cannot
    # loop longer than the record is long
    for _ in range(schedc or 0):
        sv, pos = _params(buf, pos, _SCHED)
        o.sched.append(OwampSched(sv[0] or z, sv[1] or 0))
    for _ in range(txc or 0):
        tv, pos = _params(buf, pos, _TX)
        tx = OwampTx(tv[0] or z, tv[1] or z, tv[2] or 0, tv[3] or 0, tv[4] or 0)
        for _ in range(tv[5] or 0):
            rv, pos = _params(buf, pos, _RX)
            tx.rxs.append(OwampRx(rv[0] or z, rv[1] or 0, rv[2] or 0, rv[3] or 0, rv[4] or 0))
        o.txs.append(tx)
    return o


# --------------------------------------------------------------------------
# encoding

def _nz(t) -> bool:
    return t[0] != 0 or t[1] != 0


def _sa(a) -> bytes:
    _atype(a)  # a WartsEncodeError for what is not an address, before its bytes are asked for
    return _static(a)


def encode_owamp(o: Owamp, list_id: int = 0, cycle_id: int = 0) -> bytes:
    """The body of an owamp record, as scamper 2026 writes it.

    Raises :class:`~ixpscamper.warts.writer.WartsEncodeError` for values
    that do not fit (struct.error, which ``encode_record`` turns into one,
    for numbers out of their field's range).
    """
    f = []
    if list_id:
        f.append((1, _I(list_id)))
    if cycle_id:
        f.append((2, _I(cycle_id)))
    if o.userid:
        f.append((3, _I(o.userid)))
    if o.src is not None:
        f.append((4, _sa(o.src)))
    if o.dst is not None:
        f.append((5, _sa(o.dst)))
    if o.dport != 861:
        f.append((6, _H(o.dport)))
    if o.flags:
        f.append((7, _H(o.flags)))
    if _nz(o.start):
        f.append((8, _tv(o.start)))
    if _nz(o.startat):
        f.append((9, _tv(o.startat)))
    if tuple(o.wait_timeout) != (2, 0):
        f.append((10, _tv(o.wait_timeout)))
    if len(o.sched) != 1:
        f.append((11, _I(len(o.sched))))
    if o.attempts != 10:
        f.append((12, _I(o.attempts)))
    if o.pktsize != 42:
        f.append((13, _H(o.pktsize)))
    if o.dir:
        f.append((14, _B(o.dir)))
    if o.dscp:
        f.append((15, _B(o.dscp)))
    if o.ttl != 255:
        f.append((16, _B(o.ttl)))
    if o.hsrtt:
        f.append((17, _I(o.hsrtt)))
    if o.result:
        f.append((18, _B(o.result)))
    if o.errmsg is not None:
        f.append((19, _s(o.errmsg)))
    if o.udp_sport:
        f.append((20, _H(o.udp_sport)))
    if o.udp_dport:
        f.append((21, _H(o.udp_dport)))
    if o.txs:
        f.append((22, _I(len(o.txs))))
    out = [_fp(f)]
    for s in o.sched:
        sf = []
        if _nz(s.tv):
            sf.append((1, _tv(s.tv)))
        if s.type:
            sf.append((2, _B(s.type)))
        out.append(_fp(sf))
    for t in o.txs:
        if len(t.rxs) > 0xFF:
            raise WartsEncodeError("more than 255 receptions of one owamp packet")
        tf = []
        if _nz(t.sched):
            tf.append((1, _tv(t.sched)))
        if _nz(t.stamp):
            tf.append((2, _tv(t.stamp)))
        if t.seq:
            tf.append((3, _I(t.seq)))
        if t.errest:
            tf.append((4, _H(t.errest)))
        if t.flags:
            tf.append((5, _B(t.flags)))
        if t.rxs:
            tf.append((6, _B(len(t.rxs))))
        out.append(_fp(tf))
        for r in t.rxs:
            rf = []
            if _nz(r.stamp):
                rf.append((1, _tv(r.stamp)))
            if r.errest:
                rf.append((2, _H(r.errest)))
            if r.flags:
                rf.append((3, _B(r.flags)))
            if r.dscp:
                rf.append((4, _B(r.dscp)))
            if r.ttl:
                rf.append((5, _B(r.ttl)))
            out.append(_fp(rf))
    return b"".join(out)


# --------------------------------------------------------------------------
# JSON, as scamper 2026's scamper_owamp_tojson

_RESULTS = ("none", "done", "halted", "error", "noconn", "notaccepted", "nomode", "timeout")
_DIRS = ("tx", "rx")
_SCHED_TYPES = ("fixed", "exponential")


def _name(names: tuple, v: int) -> str:
    return names[v] if v < len(names) else str(v)


def _tvj(key: str, t) -> str:
    return f'"{key}":{{"sec":{t[0] & 0xFFFFFFFF},"usec":{t[1] & 0xFFFFFFFF}}}'


def _rx_json(r: OwampRx) -> str:
    s = "{" + _tvj("stamp", r.stamp)
    if r.flags & OWAMP_RX_ERREST:
        s += f',"errest":{r.errest}'
    if r.flags & OWAMP_RX_DSCP:
        s += f',"dscp":{r.dscp}'
    if r.flags & OWAMP_RX_TTL:
        s += f',"ttl":{r.ttl}'
    return s + "}"


def _tx_json(t: OwampTx) -> str:
    s = "{" + _tvj("stamp", t.stamp) + f',"seq":{t.seq}'
    if t.flags & OWAMP_TX_ERREST:
        s += f',"errest":{t.errest}'
    sent = 0 if t.flags & OWAMP_TX_NOTSENT else 1
    s += f',"rxc":{len(t.rxs)},"sent":{sent},"rxs":['
    return s + ",".join(_rx_json(r) for r in t.rxs) + "]}"


def owamp_json(o: Owamp) -> str:
    """What scamper 2026's ``sc_warts2json`` prints for ``o`` (one line)."""
    from ixpscamper.warts.jsonfmt import _esc
    from ixpscamper.warts.text import addr_str
    h = ['{"type":"owamp","dir":"', _name(_DIRS, o.dir), '"']
    if o.src is not None:
        h.append(f',"src":"{addr_str(o.src)}"')
    if o.dst is not None:
        h.append(f',"dst":"{addr_str(o.dst)}"')
    hs, hu = divmod(o.hsrtt, 1_000_000)
    h.append(f',"dport":{o.dport},{_tvj("start", o.start)},{_tvj("startat", o.startat)}'
             f',{_tvj("wait_timeout", o.wait_timeout)},"hsrtt":{{"sec":{hs},"usec":{hu}}}'
             f',"userid":{o.userid},"attempts":{o.attempts},"pktsize":{o.pktsize}'
             f',"dscp":{o.dscp},"udp_sport":{o.udp_sport},"udp_dport":{o.udp_dport}'
             f',"result":"{_name(_RESULTS, o.result)}"')
    if o.errmsg is not None:
        h.append(f',"errmsg":"{_esc(o.errmsg, 512)}"')
    if o.list is not None and o.list.monitor is not None:
        h.append(f',"monitor":"{_esc(o.list.monitor, 512)}"')
    head = "".join(h)
    if o.sched:
        # scamper builds the header in a 1024-byte buffer (truncating), and
        # appends the schedule after it unbounded
        head = (head + ',"sched":[')[:1023]
        head += ",".join('{"value":{' + f'"sec":{s.tv[0]},"usec":{s.tv[1]}' + '},"type":"'
                         + _name(_SCHED_TYPES, s.type) + '"}' for s in o.sched) + "]"
    else:
        head = head[:1023]
    return head + ',"txs":[' + ",".join(_tx_json(t) for t in o.txs) + "]}\n"


register(RecordCodec(OWAMP_RECORD_TYPE, Owamp, decode=decode_owamp, encode=encode_owamp,
                     json=owamp_json, printed_by=frozenset({"sc_warts2json"})))
