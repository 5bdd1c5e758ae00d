"""Warts encoders for neighbourdisc (10), sting (12), sniff (13), http (15)
and udpprobe (16).

These record types are decoded in :mod:`ixpscamper.warts.reader`; this
module adds the other direction and registers encode-only codecs with
:mod:`ixpscamper.warts.registry`, so :func:`ixpscamper.warts.writer.encode_record`
writes them.  Each encoder writes the fields scamper 2026's
``scamper_file_warts_<type>_write`` writes, under the same conditions and
in the same order, so a record scamper wrote re-encodes to the same bytes
(tests/test_warts_misc_writers.py checks the repertoire fixtures).

Where scamper's writer would crash or write something no reader can take
back (a reply without a MAC address, a packet without data, more than 255
of a thing counted in a byte), :class:`~ixpscamper.warts.writer.WartsEncodeError`
is raised instead.
"""

from __future__ import annotations

from ixpscamper.warts.records import (
    Http, Neighbourdisc, Sniff, Sting, Udpprobe,
)
from ixpscamper.warts.registry import RecordCodec, register
from ixpscamper.warts.writer import (
    WartsEncodeError, _B, _H, _I, _Table, _atype, _fp, _s, _static, _tv,
)

__all__ = ["encode_neighbourdisc", "encode_sting", "encode_sniff", "encode_http",
           "encode_udpprobe"]


def _nonzero_tv(t) -> bool:
    return t[0] != 0 or t[1] != 0


def _a(a):
    _atype(a)  # a WartsEncodeError for what is not an address, before its bytes are asked for
    return a


def _count8(n: int, what: str) -> int:
    if n > 0xFF:
        raise WartsEncodeError(f"more than 255 {what}")
    return n


def _count16(n: int, what: str) -> int:
    if n > 0xFFFF:
        raise WartsEncodeError(f"more than 65535 {what}")
    return n


def _head(list_id: int, cycle_id: int, userid: int) -> list:
    # every one of these types starts with list, cycle and userid, each
    # written only when set
    f = []
    if list_id:
        f.append((1, _I(list_id)))
    if cycle_id:
        f.append((2, _I(cycle_id)))
    if userid:
        f.append((3, _I(userid)))
    return f


# --------------------------------------------------------------------------
# neighbourdisc (type 10)

def encode_neighbourdisc(nd: Neighbourdisc, list_id: int = 0, cycle_id: int = 0) -> bytes:
    """The body of a neighbourdisc record, as scamper 2026 writes it.

    (scamper 20211212's writer gets each probe's parameter length wrong, so
    its records are unreadable; this writes the layout every reader takes.)
    """
    table = _Table()
    f = _head(list_id, cycle_id, nd.userid)
    if nd.ifname is not None:
        f.append((4, _s(nd.ifname)))
    f += [(5, _tv(nd.start)), (6, _B(nd.method)), (7, _H(nd.wait_timeout)),
          (8, _B(nd.flags)), (9, _H(nd.attempts)), (10, _H(nd.replyc))]
    for fid, a in ((11, nd.src_ip), (12, nd.src_mac), (13, nd.dst_ip), (14, nd.dst_mac)):
        if a is not None:
            f.append((fid, table.enc(_a(a))))
    if nd.probes:
        f.append((15, _H(_count16(len(nd.probes), "neighbourdisc probes"))))
    if nd.errmsg is not None:
        f.append((16, _s(nd.errmsg)))
    out = [_fp(f)]
    for pr in nd.probes:
        pf = [(1, _tv(pr.tx))]
        if pr.rxs:
            pf.append((2, _H(_count16(len(pr.rxs), "replies to one neighbourdisc probe"))))
        out.append(_fp(pf))
        for r in pr.rxs:
            if r.mac is None:
                raise WartsEncodeError("neighbourdisc reply without a MAC address")
            out.append(_fp([(1, _tv(r.rx)), (2, table.enc(_a(r.mac)))]))
    return b"".join(out)


# --------------------------------------------------------------------------
# sting (type 12)

def encode_sting(sg: Sting, list_id: int = 0, cycle_id: int = 0) -> bytes:
    """The body of a sting record, as scamper writes it (20211212 and 2026 alike).

    ``data`` is written as given.  (scamper's writer copies the bytes of its
    data *pointer* rather than the data, so real sting records carry that
    in ``data``; it re-encodes unchanged.)
    """
    table = _Table()
    f = _head(list_id, cycle_id, sg.userid)
    if sg.src is not None:
        f.append((4, table.enc(_a(sg.src))))
    if sg.dst is not None:
        f.append((5, table.enc(_a(sg.dst))))
    dl = len(sg.data)
    f += [(6, _H(sg.sport)), (7, _H(sg.dport)), (8, _H(sg.count)), (9, _H(sg.mean)),
          (10, _H(sg.inter)), (11, _B(sg.dist)), (12, _B(sg.synretx)), (13, _B(sg.dataretx)),
          (14, _B(sg.seqskip)), (15, _H(_count16(dl, "bytes of sting data")))]
    if dl:
        f.append((16, bytes(sg.data)))
    f += [(17, _tv(sg.start)), (18, _tv(sg.hsrtt)), (19, _H(sg.dataackc)), (20, _H(sg.holec)),
          (21, _I(len(sg.pkts)))]
    if sg.result:
        f.append((22, _B(sg.result)))
    if sg.errmsg is not None:
        # (scamper's writer has no handler for its own errmsg field and would
        # fail an assertion; the readers decode it as a string)
        f.append((23, _s(sg.errmsg)))
    out = [_fp(f)]
    for p in sg.pkts:
        if not p.data:
            raise WartsEncodeError("sting packet without data (no reader takes it)")
        out.append(_fp([(1, _B(p.flags)), (2, _tv(p.tv)),
                        (3, _H(_count16(len(p.data), "bytes in one sting packet"))),
                        (4, bytes(p.data))]))
    return b"".join(out)


# --------------------------------------------------------------------------
# sniff (type 13)

def encode_sniff(sn: Sniff, list_id: int = 0, cycle_id: int = 0) -> bytes:
    """The body of a sniff record, as scamper writes it."""
    if sn.src is None:
        raise WartsEncodeError("sniff without a source address (no reader takes it)")
    table = _Table()
    f = _head(list_id, cycle_id, sn.userid)
    f += [(4, table.enc(_a(sn.src))), (5, _tv(sn.start)), (6, _tv(sn.finish)),
          (7, _B(sn.stop_reason)), (8, _I(sn.limit_pktc)), (9, _H(sn.limit_time)),
          (10, _I(len(sn.pkts))), (11, _H(sn.icmpid))]
    if sn.errmsg is not None:
        f.append((12, _s(sn.errmsg)))
    out = [_fp(f)]
    for p in sn.pkts:
        if not p.data:
            raise WartsEncodeError("sniff packet without data (no reader takes it)")
        out.append(_fp([(1, _tv(p.tv)),
                        (2, _H(_count16(len(p.data), "bytes in one sniff packet"))),
                        (3, bytes(p.data))]))
    return b"".join(out)


# --------------------------------------------------------------------------
# http (type 15)

def _http_buf(b) -> bytes:
    f = []
    if b.dir or b.type:
        if not 0 <= b.dir <= 1 or not 0 <= b.type <= 0x7F:
            raise WartsEncodeError(f"http buf direction {b.dir} / type {b.type} do not fit "
                                   "(0..1 / 0..127)")
        f.append((1, _B((b.dir << 7) | b.type)))
    if _nonzero_tv(b.tv):
        f.append((2, _tv(b.tv)))
    if b.data:
        f += [(3, _H(_count16(len(b.data), "bytes in one http buf"))), (4, bytes(b.data))]
    return _fp(f)


def encode_http(h: Http, list_id: int = 0, cycle_id: int = 0) -> bytes:
    """The body of an http record, as scamper 2026 writes it.

    ``dport`` is left out when it is the type's default (80 for HTTP, 443 for
    HTTPS), and the ECH configuration lists follow the bufs as (type, u32
    length, bytes) attributes when they are non-empty.
    """
    f = _head(list_id, cycle_id, h.userid)
    if h.src is not None:
        f.append((4, _static(_a(h.src))))
    if h.dst is not None:
        f.append((5, _static(_a(h.dst))))
    if h.sport:
        f.append((6, _H(h.sport)))
    if not ((h.type == 1 and h.dport == 80) or (h.type == 0 and h.dport == 443)):
        f.append((7, _H(h.dport)))
    if _nonzero_tv(h.start):
        f.append((8, _tv(h.start)))
    if h.stop:
        f.append((9, _B(h.stop)))
    if h.type:
        f.append((10, _B(h.type)))
    if h.host is not None:
        f.append((11, _s(h.host)))
    if h.file is not None:
        f.append((12, _s(h.file)))
    if h.headers:
        n = _count8(len(h.headers), "http headers")
        f.append((13, _B(n) + b"".join(_s(x) for x in h.headers)))
    if h.bufs:
        f.append((14, _I(len(h.bufs))))
    if h.hsrtt:
        f.append((15, _I(h.hsrtt)))
    if h.flags:
        f.append((16, _I(h.flags)))
    if _nonzero_tv(h.maxtime):
        f.append((17, _tv(h.maxtime)))
    if h.errmsg is not None:
        f.append((18, _s(h.errmsg)))
    if h.ech_status:
        f.append((19, _B(h.ech_status)))
    if h.ech_outer_sni is not None:
        f.append((20, _s(h.ech_outer_sni)))
    out = [_fp(f)]
    out += [_http_buf(b) for b in h.bufs]
    for at, data in ((1, h.ech_config_list), (2, h.ech_retry_config)):
        if data:
            out.append(_B(at) + _I(len(data)) + bytes(data))
    return b"".join(out)


# --------------------------------------------------------------------------
# udpprobe (type 16)

class _Ifnames:
    """scamper's interface-name table: ids 1..254 by first use, 0 once full."""

    __slots__ = ("ids", "written")

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.written: set[str] = set()

    def enc(self, name: str) -> bytes:
        i = self.ids.get(name)
        if i is None and len(self.ids) < 254:
            i = self.ids[name] = len(self.ids) + 1
        if i is not None and name in self.written:
            return _B(i)
        if i is not None:
            self.written.add(name)
        return _B(i or 0) + _s(name)


def _up_reply(r, names: _Ifnames) -> bytes:
    f = []
    if _nonzero_tv(r.rx):
        f.append((1, _tv(r.rx)))
    if r.data:
        f += [(2, _H(_count16(len(r.data), "bytes in one udpprobe reply"))), (3, bytes(r.data))]
    if r.ifname is not None:
        f.append((4, names.enc(r.ifname)))
    return _fp(f)


def encode_udpprobe(u: Udpprobe, list_id: int = 0, cycle_id: int = 0) -> bytes:
    """The body of a udpprobe record, as scamper 2026 writes it.

    For compatibility with older readers scamper keeps the first probe in
    the header: its source port and reply count are header fields, its
    transmit time is the record's ``start``, and its replies follow the
    header; then come probes 1.. and, after all of them, their replies.
    So ``probes[0].tx`` must equal ``start``.
    """
    probes = u.probes
    sent = _count8(len(probes), "udpprobe probes")
    if probes and probes[0].tx != u.start:
        raise WartsEncodeError("udpprobe's first probe must be sent at the record's start "
                               "(warts stores one time for both)")
    f = _head(list_id, cycle_id, u.userid)
    if u.src is not None:
        f.append((4, _static(_a(u.src))))
    if u.dst is not None:
        f.append((5, _static(_a(u.dst))))
    if probes:
        f.append((6, _H(probes[0].sport)))
    if u.dport:
        f.append((7, _H(u.dport)))
    if _nonzero_tv(u.start):
        f.append((8, _tv(u.start)))
    if u.wait_timeout:
        f.append((9, _I(u.wait_timeout)))
    if u.flags:
        f.append((10, _B(u.flags)))
    if u.stop:
        f.append((11, _B(u.stop)))
    if u.data:
        f += [(12, _H(_count16(len(u.data), "bytes of udpprobe payload"))), (13, bytes(u.data))]
    if probes and probes[0].replies:
        f.append((14, _B(_count8(len(probes[0].replies), "replies to one udpprobe probe"))))
    if u.probe_count != 1:
        f.append((15, _B(u.probe_count)))
    if sent != 1:
        f.append((16, _B(sent)))
    if u.stop_count:
        f.append((17, _B(u.stop_count)))
    if u.sport:
        f.append((18, _H(u.sport)))
    if u.wait_probe:
        f.append((19, _I(u.wait_probe)))
    if u.errmsg is not None:
        f.append((20, _s(u.errmsg)))
    names = _Ifnames()
    out = [_fp(f)]
    if probes:
        out += [_up_reply(r, names) for r in probes[0].replies]
    for p in probes[1:]:
        pf = [(1, _tv(p.tx)), (2, _H(p.sport))]
        if p.replies:
            pf.append((3, _B(_count8(len(p.replies), "replies to one udpprobe probe"))))
        out.append(_fp(pf))
    for p in probes[1:]:
        out += [_up_reply(r, names) for r in p.replies]
    return b"".join(out)


def _register() -> None:
    for rtype, cls, enc in ((10, Neighbourdisc, encode_neighbourdisc), (12, Sting, encode_sting),
                            (13, Sniff, encode_sniff), (15, Http, encode_http),
                            (16, Udpprobe, encode_udpprobe)):
        # encode only: these types are decoded (and printed) by the core
        register(RecordCodec(rtype, cls, encode=enc))


_register()
