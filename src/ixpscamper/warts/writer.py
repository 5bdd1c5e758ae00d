"""Warts encoder and writer, byte-identical to scamper 20211212.

Every trace and ping record scamper 20211212 writes re-encodes here to the
same bytes: the same fields under the same conditions (docs/warts.md
section 6), a per-record address table numbered by first appearance, ``-r``
routers in the static form, the trace's ``00 00`` terminator, and ping
header field 14 always present.

:func:`encode_record` encodes one record given the warts ids of its list and
cycle (what a VP sends as one DATA block).  :class:`WartsWriter` assigns
those ids itself and emits list/cycle records a measurement needs before
the measurement.
"""

from __future__ import annotations

import struct
from typing import BinaryIO, Optional

from ixpscamper.warts.registry import codec_for_class
from ixpscamper.warts.records import (
    CycleDefinition, CycleStart, CycleStop, Dealias, DealiasAlly, DealiasBump, DealiasMercator,
    DealiasMidardisc, DealiasMidarest, DealiasPrefixscan, DealiasRadargun, Ping, Trace, TraceHop,
    Tracelb, UnknownRecord, WartsList,
)

__all__ = ["encode_record", "encode_list", "encode_cycle", "encode_cycle_stop", "WartsWriter",
           "WartsEncodeError"]

_HDR = struct.Struct(">HHI")
_B = struct.Struct(">B").pack
_H = struct.Struct(">H").pack
_I = struct.Struct(">I").pack
_II = struct.Struct(">II").pack
_BB = struct.Struct(">BB").pack


class WartsEncodeError(ValueError):
    """A record cannot be encoded (a value out of range, a missing address, ...)."""


def _rec(rtype: int, body: bytes) -> bytes:
    return _HDR.pack(0x1205, rtype, len(body)) + body


def _fp(fields: list) -> bytes:
    """flags + param_length + params from ``[(field_id, bytes), ...]`` in id order."""
    if not fields:
        return b"\x00"
    maxid = fields[-1][0]
    nb = (maxid - 1) // 7 + 1
    fl = bytearray(nb)
    for fid, _ in fields:
        fl[(fid - 1) // 7] |= 1 << ((fid - 1) % 7)
    for i in range(nb - 1):
        fl[i] |= 0x80
    params = b"".join([b for _, b in fields])
    if len(params) > 0xFFFF:
        raise WartsEncodeError("more than 65535 bytes of parameters in one structure")
    return bytes(fl) + _H(len(params)) + params


def _s(text: str) -> bytes:
    b = text.encode("utf-8", "surrogateescape")
    if b"\x00" in b:
        raise WartsEncodeError("string contains a NUL byte")
    return b + b"\x00"


def _atype(a) -> int:
    v = getattr(a, "version", None)
    if v == 4:
        return 1
    if v == 6:
        return 2
    t = getattr(a, "type", None)
    if t in (3, 4):
        return t
    raise WartsEncodeError(f"not an address: {a!r}")


def _raw(a) -> bytes:
    p = getattr(a, "packed", None)
    return p if p is not None else a.raw


class _Table:
    """The per-record address table: define on first use, reference after."""

    __slots__ = ("ids",)

    def __init__(self) -> None:
        self.ids: dict = {}

    def enc(self, a) -> bytes:
        i = self.ids.get(a)
        if i is not None:
            return b"\x00" + _I(i)
        self.ids[a] = len(self.ids)
        raw = _raw(a)
        return _BB(len(raw), _atype(a)) + raw


def _static(a) -> bytes:
    raw = _raw(a)
    return _BB(len(raw), _atype(a)) + raw


def _tv(t) -> bytes:
    return _II(t[0], t[1])


def _is_quoting(h: TraceHop) -> bool:
    if h.flags & 0x60:
        return False
    if h.addr.version == 4:
        return h.icmp_type in (3, 11)
    return h.icmp_type in (1, 2, 3)


def _is_ptb(h: TraceHop) -> bool:
    if h.flags & 0x60:
        return False
    if h.addr.version == 4:
        return h.icmp_type == 3 and h.icmp_code == 4
    return h.icmp_type == 2


def _icmpext(exts) -> bytes:
    body = b"".join(_H(len(e.data)) + _BB(e.class_num, e.class_type) + e.data for e in exts)
    if not body or len(body) > 0xFFFF:
        raise WartsEncodeError("ICMP extensions must be 1..65535 bytes")
    return _H(len(body)) + body


def _hop(h: TraceHop, trace_psize: int, table: _Table) -> bytes:
    f = [(2, _B(h.probe_ttl)), (3, _B(h.reply_ttl)), (4, _B(h.flags)), (5, _B((h.probe_id - 1) & 0xFF)),
         (6, _I(h.rtt & 0xFFFFFFFF))]
    tcp = h.flags & 0x20
    icmp = not (h.flags & 0x60)
    if icmp:
        f.append((7, _BB(h.icmp_type, h.icmp_code)))
    f.append((8, _H(h.probe_size)))
    f.append((9, _H(h.reply_size)))
    if h.reply_ipid:
        f.append((10, _H(h.reply_ipid)))
    f.append((11, _B(h.reply_tos)))
    if _is_ptb(h):
        f.append((12, _H(h.icmp_nhmtu)))
    q = _is_quoting(h)
    if q:
        ipl = h.probe_size if h.icmp_q_ipl is None else h.icmp_q_ipl
        if ipl != trace_psize:
            f.append((13, _H(ipl)))
        if h.icmp_q_ttl != 1:
            f.append((14, _B(h.icmp_q_ttl)))
    if tcp:
        f.append((15, _B(h.tcp_flags)))
    if q and h.addr.version == 4:
        f.append((16, _B(h.icmp_q_tos)))
    if h.icmpext:
        f.append((17, _icmpext(h.icmpext)))
    f.append((18, table.enc(h.addr)))
    if h.tx is not None and h.tx[0] != 0:
        f.append((19, _tv(h.tx)))
    if h.name is not None:
        f.append((20, _s(h.name)))
    return _fp(f)


def _in_order(items, key) -> bool:
    prev = -1
    for x in items:
        k = key(x)
        if k < prev:
            return False
        prev = k
    return True


def _ttl(h) -> int:
    return h.probe_ttl


def _seq(r) -> int:
    return r.probe_id


def _hops(hops, psize: int, table: _Table) -> bytes:
    if len(hops) > 0xFFFF:
        raise WartsEncodeError("more than 65535 hop records")

    return _H(len(hops)) + b"".join([_hop(h, psize, table) for h in hops])


def _block(btype: int, body: bytes) -> bytes:
    if len(body) > 0xFFF:
        raise WartsEncodeError(f"optional block of {len(body)} bytes (limit 4095)")
    return _H((btype << 12) | len(body)) + body


def _trace_body(t: Trace, list_id: int, cycle_id: int) -> bytes:
    table = _Table()
    flags = t.flags
    f = [(1, _I(list_id)), (2, _I(cycle_id)), (5, _tv(t.start)), (6, _B(t.stop_reason)),
         (7, _B(t.stop_data))]
    if flags & 0xFF:
        f.append((8, _B(flags & 0xFF)))
    f += [(9, _B(t.attempts)), (10, _B(t.hoplimit)), (11, _B(t.method)), (12, _H(t.probe_size)),
          (13, _H(t.sport)), (14, _H(t.dport)), (15, _B(t.firsthop)), (16, _B(t.tos)),
          (17, _B(t.wait)), (18, _B(t.loops)), (19, _H(t.hop_count)), (20, _B(t.gaplimit)),
          (21, _B(t.gapaction)), (22, _B(t.loopaction)), (23, _H(t.probec)),
          (24, _B(t.wait_probe)), (25, _B(t.confidence))]
    if t.src is not None:
        f.append((26, table.enc(t.src)))
    f.append((27, table.enc(t.dst)))
    if t.userid:
        f.append((28, _I(t.userid)))
    if t.offset:
        f.append((29, _H(t.offset)))
    if t.rtr is not None:
        f.append((30, _static(t.rtr)))
    if t.squeries >= 2:
        f.append((31, _B(t.squeries)))
    if flags & ~0xFF:
        f.append((32, _I(flags)))
    if t.stop_hop:
        f.append((33, _B(t.stop_hop)))
    if t.errmsg is not None:
        f.append((34, _s(t.errmsg)))
    hops = t.hops
    if not _in_order(hops, _ttl):
        # scamper writes hops by TTL (arrival order within one), and the 2026
        # reader requires it: sort, stably.  (PMTUD hops are left alone:
        # their notes refer to them by index.)
        hops = sorted(hops, key=_ttl)
    parts = [_fp(f), _hops(hops, t.probe_size, table)]
    if t.pmtud is not None:
        p = t.pmtud
        pf = []
        if p.ifmtu:
            pf.append((1, _H(p.ifmtu)))
        if p.pmtu:
            pf.append((2, _H(p.pmtu)))
        if p.outmtu:
            pf.append((3, _H(p.outmtu)))
        pf.append((4, _B(p.ver)))
        if p.notes:
            pf.append((5, _B(len(p.notes))))
        body = [_fp(pf), _hops(p.hops, t.probe_size, table)]
        for n in p.notes:
            nf = []
            if n.type:
                nf.append((1, _B(n.type)))
            if n.nhmtu:
                nf.append((2, _H(n.nhmtu)))
            if n.reply is not None:
                nf.append((3, _H(n.reply)))
            body.append(_fp(nf))
        parts.append(_block(1, b"".join(body)))
    if t.lastditch is not None:
        parts.append(_block(2, b"\x00" + _hops(t.lastditch, t.probe_size, table)))
    for btype, data in t.other_blocks:
        parts.append(_block(btype, data))
    parts.append(b"\x00\x00")
    return b"".join(parts)


_ICMP_PING_METHODS = (0, 5)


def _reply(r, v4dst: bool, icmp_method: bool, table: _Table) -> bytes:
    fl = r.flags
    f = []
    if fl:
        f.append((2, _B(fl)))
    if fl & 0x01:
        f.append((3, _B(r.reply_ttl)))
    f.append((4, _H(r.reply_size)))
    if r.reply_proto == (1 if r.addr.version == 4 else 58):
        f.append((5, _BB(r.icmp_type, r.icmp_code)))
    f.append((6, _I(r.rtt & 0xFFFFFFFF)))
    f.append((7, _H(r.probe_id)))
    if not (v4dst and not fl & 0x02):
        f.append((8, _H(r.reply_ipid)))
    if not (v4dst and not fl & 0x04):
        f.append((9, _H(r.probe_ipid)))
    if not icmp_method:
        f.append((10, _B(r.reply_proto)))
    if r.reply_proto == 6:
        f.append((11, _B(r.tcp_flags)))
    f.append((12, table.enc(r.addr)))
    if r.rr:  # scamper cannot read an empty record-route list: leave it out
        f.append((13, _B(len(r.rr)) + b"".join([table.enc(a) for a in r.rr])))
    if r.ts_times is not None:
        addrs = r.ts_addrs or []
        f.append((14, _BB(len(r.ts_times), len(addrs))
                  + b"".join([_I(x & 0xFFFFFFFF) for x in r.ts_times])
                  + b"".join([table.enc(a) for a in addrs])))
    if not (not v4dst and not fl & 0x02):
        f.append((15, _I(r.reply_ipid32)))
    if r.tx is not None and r.tx[0] != 0:
        f.append((16, _tv(r.tx)))
    if r.tsreply is not None:
        f.append((17, struct.pack(">III", *r.tsreply)))
    if r.probe_sport is not None:
        f.append((18, _H(r.probe_sport)))
    if r.reply_tos is not None:
        f.append((19, _B(r.reply_tos)))
    if r.ifname is not None:
        f.append((20, b"\x00" + _s(r.ifname)))  # id 0: not entered in the name table
    if r.nhmtu is not None:
        f.append((21, _H(r.nhmtu)))
    return _fp(f)


def _ping_body(p: Ping, list_id: int, cycle_id: int) -> bytes:
    table = _Table()
    flags = p.flags
    f = []
    if list_id:
        f.append((1, _I(list_id)))
    if cycle_id:
        f.append((2, _I(cycle_id)))
    f += [(5, _tv(p.start)), (6, _B(p.stop_reason)), (7, _B(p.stop_data))]
    if p.pattern:
        f.append((8, _H(len(p.pattern))))
        f.append((9, bytes(p.pattern)))
    f += [(10, _H(p.probe_count)), (11, _H(p.probe_size)), (12, _B(p.wait)), (13, _B(p.ttl)),
          (14, _H(p.reply_count)), (15, _H(p.ping_sent))]
    if p.method:
        f.append((16, _B(p.method)))
    if p.sport:
        f.append((17, _H(p.sport)))
    if p.dport:
        f.append((18, _H(p.dport)))
    if p.userid:
        f.append((19, _I(p.userid)))
    if p.src is not None:
        f.append((20, table.enc(p.src)))
    f.append((21, table.enc(p.dst)))
    if flags & 0xFF:
        f.append((22, _B(flags & 0xFF)))
    if p.tos:
        f.append((23, _B(p.tos)))
    if p.probe_tsps:  # scamper cannot read an empty list: leave it out
        f.append((24, _B(len(p.probe_tsps)) + b"".join([table.enc(a) for a in p.probe_tsps])))
    if flags & 0x20 and p.icmp_csum:
        f.append((25, _H(p.icmp_csum)))
    if p.pmtu:
        f.append((26, _H(p.pmtu)))
    if p.timeout != p.wait:
        f.append((27, _B(p.timeout)))
    if p.wait_us:
        f.append((28, _I(p.wait_us)))
    if p.tcp_ack:
        f.append((29, _I(p.tcp_ack)))
    if flags & ~0xFF:
        f.append((30, _I(flags)))
    if p.tcp_seq:
        f.append((31, _I(p.tcp_seq)))
    if p.rtr is not None:
        f.append((32, _static(p.rtr)))
    if p.timeout_us:
        f.append((33, _I(p.timeout_us)))
    if p.errmsg is not None:
        f.append((34, _s(p.errmsg)))
    v4 = p.dst.version == 4
    icmp_method = p.method in _ICMP_PING_METHODS
    replies = p.replies
    if len(replies) > 0xFFFF:
        raise WartsEncodeError("more than 65535 ping replies")
    if not _in_order(replies, _seq):
        replies = sorted(replies, key=_seq)  # by probe, arrival order within one
    return b"".join([_fp(f), _H(len(replies))]
                    + [_reply(r, v4, icmp_method, table) for r in replies])


# --------------------------------------------------------------------------
# tracelb (type 8): the fields scamper_file_warts_tracelb_write writes

def _tracelb_body(t: Tracelb, list_id: int, cycle_id: int) -> bytes:
    table = _Table()
    f = [(1, _I(list_id)), (2, _I(cycle_id)), (5, _tv(t.start)), (6, _H(t.sport)),
         (7, _H(t.dport)), (8, _H(t.probe_size)), (9, _B(t.type)), (10, _B(t.firsthop)),
         (11, _B(t.wait_timeout)), (12, _B(t.wait_probe)), (13, _B(t.attempts)),
         (14, _B(t.confidence)), (15, _B(t.tos)), (16, _H(len(t.nodes))),
         (17, _H(len(t.links))), (18, _I(t.probec)), (19, _I(t.probec_max)),
         (20, _B(t.gaplimit))]
    if t.src is not None:
        f.append((21, table.enc(t.src)))
    f.append((22, table.enc(t.dst)))
    if t.userid:
        f.append((23, _I(t.userid)))
    if t.flags:
        f.append((24, _B(t.flags)))
    if t.rtr is not None:
        f.append((25, _static(t.rtr)))
    if t.errmsg is not None:
        f.append((26, _s(t.errmsg)))
    out = [_fp(f)]
    nodec = len(t.nodes)
    linkc = [0] * nodec
    for ln in t.links:
        if not 0 <= ln.from_ < nodec or (ln.to is not None and not 0 <= ln.to < nodec):
            raise WartsEncodeError("tracelb link refers to a node that is not in nodes")
        linkc[ln.from_] += 1
    for i, n in enumerate(t.nodes):
        nf = [(2, _B(n.flags)), (3, _H(linkc[i]))]
        if n.flags & 0x01:
            nf.append((4, _B(n.q_ttl)))
        if n.addr is not None:
            nf.append((5, table.enc(n.addr)))
        if n.name is not None:
            nf.append((6, _s(n.name)))
        out.append(_fp(nf))
    for ln in t.links:
        lf = [(1, _H(ln.from_))]
        if ln.to is not None:
            lf.append((2, _H(ln.to)))
        lf.append((3, _B(len(ln.sets))))
        out.append(_fp(lf))
        for ps in ln.sets:
            out.append(_fp([(1, _H(len(ps.probes)))]))
            for pr in ps.probes:
                out.append(_fp([(1, _tv(pr.tx)), (2, _H(pr.flowid)), (3, _B(pr.ttl)),
                                (4, _B(pr.attempt)), (5, _H(len(pr.rxs)))]))
                for r in pr.rxs:
                    tcp = r.reply_flags & 0x02
                    rf = [(1, _tv(r.reply_rx)), (2, _H(r.reply_ipid))]
                    if r.reply_flags & 0x01:
                        rf.append((3, _B(r.reply_ttl)))
                    rf.append((4, _B(r.reply_flags)))
                    if tcp:
                        rf.append((6, _B(r.reply_tcp_flags)))
                    else:
                        rf.append((5, _BB(r.reply_icmp_type, r.reply_icmp_code)))
                        if r.reply_icmp_exts:
                            rf.append((7, _icmpext(r.reply_icmp_exts)))
                        rf += [(8, _B(r.reply_icmp_q_ttl)), (9, _B(r.reply_icmp_q_tos))]
                    rf.append((11, table.enc(r.reply_from)))
                    out.append(_fp(rf))
    return b"".join(out)


# --------------------------------------------------------------------------
# dealias (type 9): the fields scamper_file_warts_dealias_write writes

_DEALIAS_CLASS = {1: DealiasMercator, 2: DealiasAlly, 3: DealiasRadargun, 4: DealiasPrefixscan,
                  5: DealiasBump, 6: DealiasMidarest, 7: DealiasMidardisc}


def _probedef(p, table: _Table) -> bytes:
    icmp = p.method == 1
    tcp = p.method in (2, 4, 6)
    udp = p.method in (3, 5)
    if not (icmp or tcp or udp):
        raise WartsEncodeError(f"dealias probedef method {p.method} unknown")
    f = []
    if p.id:
        f.append((3, _I(p.id)))
    f += [(4, _B(p.method)), (5, _B(p.ttl))]
    if p.tos:
        f.append((6, _B(p.tos)))
    if tcp or udp:
        f.append((7, _H(p.sport) + _H(p.dport)))
    if tcp:
        f.append((8, _B(p.tcp_flags)))
    if icmp:
        f.append((9, _H(p.icmp_id)))
    f.append((10, table.enc(p.dst)))
    if p.src is not None:
        f.append((11, table.enc(p.src)))
    if p.size:
        f.append((12, _H(p.size)))
    if p.mtu:
        f.append((13, _H(p.mtu)))
    if icmp and p.icmp_csum:
        f.append((14, _H(p.icmp_csum)))
    return _fp(f)


def _dealias_data(d, table: _Table) -> tuple[bytes, list]:
    m = d.method
    x = d.data
    cls = _DEALIAS_CLASS.get(m)
    if cls is None:
        raise WartsEncodeError(f"dealias method {m} unknown")
    if not isinstance(x, cls):
        raise WartsEncodeError(f"dealias method {m} needs a {cls.__name__}, not "
                               f"{type(x).__name__}")
    if m == 1:
        defs = [x.probedef]
        f = [(1, _B(x.attempts)), (2, _B(x.wait_timeout))]
    elif m in (2, 5):
        defs = list(x.probedefs)
        if len(defs) != 2:
            raise WartsEncodeError(f"{cls.__name__} needs exactly 2 probedefs")
        if m == 2:
            f = [(1, _H(x.wait_probe)), (2, _B(x.wait_timeout)), (3, _B(x.attempts))]
            if x.fudge:
                f.append((4, _H(x.fudge)))
            if x.flags:
                f.append((5, _B(x.flags)))
        else:
            f = [(1, _H(x.wait_probe)), (2, _H(x.bump_limit)), (3, _B(x.attempts))]
    elif m == 3:
        defs = list(x.probedefs)
        f = [(1, _I(len(defs))), (2, _H(x.rounds)), (3, _H(x.wait_probe)),
             (4, _I(x.wait_round)), (5, _B(x.wait_timeout))]
        if x.flags:
            f.append((6, _B(x.flags)))
    elif m == 4:
        defs = list(x.probedefs)
        f = []
        for fid, a in ((1, x.a), (2, x.b), (3, x.ab)):
            if a is not None:
                f.append((fid, table.enc(a)))
        if x.xs:
            f.append((4, _H(len(x.xs)) + b"".join(table.enc(a) for a in x.xs)))
        f += [(5, _B(x.prefix)), (6, _B(x.attempts)), (7, _H(x.fudge)), (8, _H(x.wait_probe)),
              (9, _B(x.wait_timeout))]
        if defs:
            f.append((10, _H(len(defs))))
        if x.flags:
            f.append((11, _B(x.flags)))
        if x.replyc != 5:
            f.append((12, _B(x.replyc)))
    elif m == 6:
        defs = list(x.probedefs)
        f = [(1, _H(len(defs))), (2, _B(x.rounds)), (3, _I(x.wait_probe)),
             (4, _I(x.wait_round)), (5, _I(x.wait_timeout))]
    else:
        defs = list(x.probedefs)
        f = [(1, _I(len(defs))), (2, _I(x.wait_timeout))]
        if x.sched:
            f.append((3, _I(len(x.sched)) + b"".join(
                _tv(r.start) + _II(r.begin, r.end) for r in x.sched)))
        if x.startat is not None:
            f.append((4, _tv(x.startat)))
    if m in (3, 6, 7) and not defs:
        raise WartsEncodeError(f"{cls.__name__} needs at least one probedef")
    # the method's addresses enter the table before the probedefs'
    head = _fp(f)
    return head + b"".join(_probedef(p, table) for p in defs), defs


def _dealias_body(d: Dealias, list_id: int, cycle_id: int) -> bytes:
    f = [(1, _I(list_id)), (2, _I(cycle_id)), (3, _tv(d.start)), (4, _B(d.method))]
    if d.result:
        f.append((5, _B(d.result)))
    if d.probes:
        f.append((6, _I(len(d.probes))))
    if d.userid:
        f.append((7, _I(d.userid)))
    if d.errmsg is not None:
        f.append((8, _s(d.errmsg)))
    out = [_fp(f)]
    if d.data is None:
        if d.probes or (d.method and d.method <= 7):
            raise WartsEncodeError("dealias without method options (data)")
        return out[0]
    table = _Table()
    body, defs = _dealias_data(d, table)
    out.append(body)
    for pr in d.probes:
        pd = pr.probedef
        if not 0 <= pd.id < len(defs) or defs[pd.id] is not pd and defs[pd.id] != pd:
            raise WartsEncodeError("dealias probe's probedef is not its method's probedef "
                                   "with that id")
        pf = []
        if pd.id:
            pf.append((1, _I(pd.id)))
        pf.append((2, _tv(pr.tx)))
        if pr.replies:
            pf.append((3, _H(len(pr.replies))))
        if pd.dst.version == 4:
            pf.append((4, _H(pr.ipid)))
        if pr.seq:
            pf.append((5, _I(pr.seq)))
        out.append(_fp(pf))
        for r in pr.replies:
            icmp = r.proto in (1, 58)
            rf = [(2, _tv(r.rx))]
            v = r.src.version
            if v == 4 and r.ipid:
                rf.append((3, _H(r.ipid)))
            rf.append((4, _B(r.ttl)))
            if icmp:
                rf += [(5, _BB(r.icmp_type, r.icmp_code)), (6, _B(r.icmp_q_ttl))]
                if r.icmp_exts:
                    rf.append((7, _icmpext(r.icmp_exts)))
            else:
                rf.append((8, _B(r.proto)))
            if r.proto == 6:
                rf.append((9, _B(r.tcp_flags)))
            rf.append((10, table.enc(r.src)))
            if v == 6 and r.ipid32:
                rf.append((11, _I(r.ipid32)))
            if r.flags:
                rf.append((12, _B(r.flags)))
            if r.size:
                rf.append((13, _H(r.size)))
            out.append(_fp(rf))
    return b"".join(out)


def encode_list(lst: WartsList, list_id: int) -> bytes:
    """The list record (type 1) for ``lst`` with warts id ``list_id``."""
    f = []
    if lst.description is not None:
        f.append((1, _s(lst.description)))
    if lst.monitor is not None:
        f.append((2, _s(lst.monitor)))
    return _rec(1, _II(list_id, lst.id) + _s(lst.name) + _fp(f))


def encode_cycle(c: CycleStart, cycle_id: int, list_id: int) -> bytes:
    """A cycle start (or, for :class:`CycleDefinition`, definition) record."""
    f = []
    if c.stop_time:
        f.append((1, _I(c.stop_time)))
    if c.hostname is not None:
        f.append((2, _s(c.hostname)))
    rtype = 3 if isinstance(c, CycleDefinition) else 2
    return _rec(rtype, struct.pack(">IIII", cycle_id, list_id, c.id, c.start_time) + _fp(f))


def encode_cycle_stop(stop: CycleStop, cycle_id: int) -> bytes:
    """The cycle stop record (type 4) closing warts cycle ``cycle_id``."""
    return _rec(4, _II(cycle_id, stop.stop_time) + b"\x00")


def encode_record(rec, list_id: int = 0, cycle_id: int = 0) -> bytes:
    """Encode a :class:`Trace`, :class:`Ping`, :class:`Tracelb`, :class:`Dealias` or
    :class:`UnknownRecord` as one
    complete warts record (8-byte header included).

    ``list_id`` / ``cycle_id`` are the warts ids (from 1; 0 = none) the
    record refers to; the matching list/cycle records must precede it in the
    stream.  Raises :class:`WartsEncodeError` (a ValueError) for values that
    do not fit.  Note that scamper 20211212's reader refuses a ping without
    a source address (2026 accepts it); empty record-route and timestamp
    address lists, which neither can read, are left out.
    """
    try:
        if isinstance(rec, Trace):
            return _rec(6, _trace_body(rec, list_id, cycle_id))
        if isinstance(rec, Ping):
            return _rec(7, _ping_body(rec, list_id, cycle_id))
        if isinstance(rec, Tracelb):
            return _rec(8, _tracelb_body(rec, list_id, cycle_id))
        if isinstance(rec, Dealias):
            return _rec(9, _dealias_body(rec, list_id, cycle_id))
    except struct.error as e:
        raise WartsEncodeError(f"value out of range: {e}") from None
    if isinstance(rec, UnknownRecord):
        return _rec(rec.type, rec.data)
    codec = codec_for_class(type(rec))
    if codec is not None and codec.encode is not None:
        try:
            return _rec(codec.rtype, codec.encode(rec, list_id, cycle_id))
        except struct.error as e:
            raise WartsEncodeError(f"value out of range: {e}") from None
    raise TypeError(f"cannot encode {type(rec).__name__} with encode_record")


class WartsWriter:
    """Write records to a binary file object, assigning warts list/cycle ids.

    Pass lists, cycle starts, traces, pings and cycle stops to :meth:`write`
    in stream order.  A measurement whose list or cycle has not been written
    yet gets it written first (a list record; a cycle *definition* for a
    cycle whose start is not in this stream), as scamper does.
    :meth:`encode` returns the bytes instead of writing them.
    """

    def __init__(self, fileobj: Optional[BinaryIO] = None) -> None:
        self._f = fileobj
        self._lists: dict[int, tuple[int, WartsList]] = {}
        self._cycles: dict[int, tuple[int, CycleStart]] = {}
        self._next_cycle = 1

    def _list_id(self, lst: Optional[WartsList], out: list) -> int:
        if lst is None:
            return 0
        ent = self._lists.get(id(lst))
        if ent is None:
            wid = len(self._lists) + 1
            self._lists[id(lst)] = (wid, lst)  # the object is kept so id() stays unique
            out.append(encode_list(lst, wid))
            return wid
        return ent[0]

    def _cycle_id(self, c: Optional[CycleStart], out: list, start: bool = False) -> int:
        if c is None:
            return 0
        ent = self._cycles.get(id(c))
        if ent is not None and not start:
            return ent[0]
        lid = self._list_id(c.list, out)
        wid = self._next_cycle
        self._next_cycle += 1
        self._cycles[id(c)] = (wid, c)
        if start or isinstance(c, CycleDefinition):
            out.append(encode_cycle(c, wid, lid))
        else:
            out.append(encode_cycle(CycleDefinition(c.list, c.start_time, c.id, c.stop_time,
                                                    c.hostname), wid, lid))
        return wid

    def encode(self, rec) -> bytes:
        """The bytes :meth:`write` would write for ``rec`` (and update ids)."""
        out: list[bytes] = []
        if isinstance(rec, (Trace, Ping, Tracelb, Dealias)):
            lid = self._list_id(rec.list, out)
            cid = self._cycle_id(rec.cycle, out)
            out.append(encode_record(rec, lid, cid))
        elif isinstance(rec, WartsList):
            if id(rec) not in self._lists:
                self._list_id(rec, out)
        elif isinstance(rec, CycleStart):
            self._cycle_id(rec, out, start=True)
        elif isinstance(rec, CycleStop):
            cid = self._cycle_id(rec.cycle, out)
            out.append(encode_cycle_stop(rec, cid))
            del self._cycles[id(rec.cycle)]
        elif isinstance(rec, UnknownRecord):
            out.append(encode_record(rec))
        elif (codec := codec_for_class(type(rec))) is not None and codec.encode is not None:
            lid = self._list_id(getattr(rec, "list", None), out)
            cid = self._cycle_id(getattr(rec, "cycle", None), out)
            out.append(encode_record(rec, lid, cid))
        else:
            raise TypeError(f"cannot write {type(rec).__name__}")
        return b"".join(out)

    def write(self, rec) -> None:
        """Encode ``rec`` (with any list/cycle it needs first) and write it."""
        data = self.encode(rec)
        if self._f is None:
            raise ValueError("WartsWriter has no file; use encode()")
        self._f.write(data)
