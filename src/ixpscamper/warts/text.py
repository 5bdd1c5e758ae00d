"""Text rendering, byte-identical to scamper 20211212's ``sc_warts2text``.

:func:`render_text` returns the block of lines ``sc_warts2text`` prints for a
trace or ping record, and ``""`` for records it does not print (lists,
cycles, unknown types).  Quirks of the C tool are reproduced on purpose and
noted where they happen (see docs/warts.md section 7).
"""

from __future__ import annotations

import ipaddress
import math

from ixpscamper.warts.registry import codec_for_class
from ixpscamper.warts.records import Dealias, Ping, Sting, Trace, Tracelb

__all__ = ["render_text", "addr_str", "rtt_str"]

_addr_strs: dict = {}


def _ntop6(a: ipaddress.IPv6Address) -> str:
    # glibc's inet_ntop prints a dotted quad for IPv4-compatible and
    # IPv4-mapped addresses; Python's str() does not.
    p = a.packed
    if p[:10] == b"\x00" * 10 and (p[10:12] == b"\xff\xff" or
                                    (p[10:12] == b"\x00\x00" and p[12:14] != b"\x00\x00")):
        # ::a.b.c.d (but not ::1-style short ones) or ::ffff:a.b.c.d
        q = ".".join(str(b) for b in p[12:])
        return ("::ffff:" if p[10] else "::") + q
    return str(a)


def addr_str(a) -> str:
    """An address as scamper prints it (inet_ntop forms; MACs as aa:bb:...)."""
    if type(a) is ipaddress.IPv4Address:
        s = _v4strs.get(a._ip)
        if s is None:
            if len(_v4strs) > 200_000:
                _v4strs.clear()
            s = _v4strs[a._ip] = str(a)
        return s
    s = _addr_strs.get(a)
    if s is None:
        if getattr(a, "version", None) == 6:
            s = _ntop6(a)
        else:
            s = str(a)
        if len(_addr_strs) > 200_000:
            _addr_strs.clear()
        _addr_strs[a] = s
    return s


def rtt_str(us: int) -> str:
    """Microseconds as scamper prints an RTT: ``ms.uuu``, truncated."""
    us &= 0xFFFFFFFF
    return f"{us // 1000}.{us % 1000:03d}"


# --------------------------------------------------------------------------
# traceroute

_UNREACH4 = {0: " !N", 1: " !H", 2: " !P", 3: "", 4: " !F", 5: " !S", 13: " !X"}
_UNREACH6 = {0: " !N", 1: " !P", 2: " !S", 3: " !A", 4: ""}


def _tcp_note(f: int) -> str:
    if f & 0x04:
        return " [closed]"
    if f & 0x12 == 0x12:
        return " [open, ecn]" if f & 0x40 else " [open]"
    if f == 0:
        return " [unknown, no flags]"
    names = ((0x04, " RST"), (0x02, " SYN"), (0x10, " ACK"), (0x08, " PSH"), (0x01, " FIN"),
             (0x20, " URG"), (0x80, " CWR"), (0x40, " ECE"))
    return " [unknown," + "".join(n for bit, n in names if f & bit) + "]"


def _icmp_note(t: int, code: int, v4: bool) -> str:
    if v4:
        if t == 11 or t == 0:
            return ""
        if t == 3:
            s = _UNREACH4.get(code)
            return s if s is not None else f" !<{code}>"
        return f" !<{t},{code}>"
    if t == 3 or t == 129:
        return ""
    if t == 1:
        s = _UNREACH6.get(code)
        return s if s is not None else f" !<{code}>"
    if t == 2:
        return " !F"
    return f" !<{t},{code}>"


def _hop_note(h) -> str:
    fl = h.flags
    if fl & 0x20:
        return _tcp_note(h.tcp_flags)
    if fl & 0x40:
        # 20211212 leaves the buffer unset for UDP replies (garbage); print nothing
        return ""
    return _icmp_note(h.icmp_type, h.icmp_code, h.addr.version == 4)


def _is_ptb(h) -> bool:
    if h.flags & 0x60:
        return False
    v = h.addr.version
    if v == 4:
        return h.icmp_type == 3 and h.icmp_code == 4
    return v == 6 and h.icmp_type == 2


def _mtu_str(mtu: int, size: int) -> str:
    if mtu != size:
        return f" [*mtu: {size}]"
    return f" [mtu: {mtu}]"


def _prefix_len(a, b) -> int:
    """Length of the common prefix of two same-family addresses, in bits."""
    if a.version != b.version:
        return 0
    bits = a.max_prefixlen
    x = int(a) ^ int(b)
    return bits - x.bit_length()


def _pmtud_v1(t: Trace, byttl: list, mtus: dict) -> None:
    p = t.pmtud
    phops = p.hops
    hi = 0
    if not phops:
        mtu = size = p.pmtu
    else:
        mtu = size = p.ifmtu
        if p.outmtu:
            size = p.outmtu
    for i in range(len(byttl)):
        if not byttl[i]:
            mtus.pop(i, None)
            continue
        if hi >= len(phops):
            continue
        hop = phops[hi]
        if hop.addr == byttl[i][0].addr:
            mtus[i] = _mtu_str(mtu, size)
            if _is_ptb(hop):
                mtu = hop.icmp_nhmtu
            hi += 1
            size = p.pmtu if hi >= len(phops) else phops[hi].probe_size
            continue
        if i >= hop.probe_ttl - hop.icmp_q_ttl:
            if _is_ptb(hop):
                size = mtu = hop.icmp_nhmtu
            mtus[i] = _mtu_str(mtu, size)
            hi += 1
            size = p.pmtu if hi >= len(phops) else phops[hi].probe_size
            continue
        mtus[i] = _mtu_str(mtu, size)


def _pmtud_v2(t: Trace, byttl: list, mtus: dict) -> None:
    p = t.pmtud
    hc = len(byttl)
    mtu = size = p.ifmtu
    n = 0
    h = 0
    notes = p.notes
    if p.outmtu:
        size = p.outmtu
        n = 1
    if n >= len(notes):
        for i in range(hc):
            if byttl[i]:
                mtus[i] = _mtu_str(mtu, size)
        return
    while n < len(notes):
        note = notes[n]
        n += 1
        if note.reply is None or note.reply >= len(p.hops):
            size = note.nhmtu
            continue
        hop = p.hops[note.reply]
        if note.type == 3:  # silence
            i = hop.probe_ttl - 1
        else:
            ha = hop.addr
            i = h
            while i < hc:
                if byttl[i] and byttl[i][0].addr == ha:
                    break
                i += 1
            if i == hc:
                i = hop.probe_ttl - hop.icmp_q_ttl
                if 0 <= i < hc and byttl[i] and _prefix_len(byttl[i][0].addr, ha) >= (
                        30 if ha.version == 4 else 126):
                    i -= 1
                if i >= hc - 1:
                    i = hc - 2
                if i < 0:
                    i = 0
        while h <= i:
            if h < hc and byttl[h]:
                mtus[h] = _mtu_str(mtu, size)
            h += 1
        if _is_ptb(hop):
            if i < hc:
                if not byttl[i]:
                    mtus[i] = _mtu_str(mtu, size)
                if not byttl[i] or byttl[i][0].addr != hop.addr:
                    addr = addr_str(hop.addr)
                else:
                    addr = ""
                if addr or note.nhmtu != hop.icmp_nhmtu:
                    s = mtus.get(i, "")
                    if addr:
                        s += f" ptb {addr}"
                    if note.nhmtu != hop.icmp_nhmtu:
                        s += f" nhmtu {hop.icmp_nhmtu}!"
                    mtus[i] = s
            mtu = hop.icmp_nhmtu
        size = note.nhmtu
    while h < hc:
        if byttl[h]:
            mtus[h] = _mtu_str(mtu, size)
        h += 1


_TTL_PREFIX = [f"{i:2d}  " for i in range(0, 257)]
_STAR_LINE = [f"{i:2d}  *" for i in range(0, 257)]
_MS3 = [f"{i:03d}" for i in range(1000)]
_V4 = ipaddress.IPv4Address
_v4strs: dict = {}
_notes: dict = {}


def _note_of_values(flags: int, it: int, ic: int, tcpf: int, v4: bool) -> str:
    """The annotation after ``ms`` for a reply, memoised on what it depends on."""
    if flags & 0x20:
        key = 0x20000 | tcpf
    elif flags & 0x40:
        return ""  # 20211212 prints an unset buffer here; see _hop_note
    else:
        key = (it << 8) | ic | (0 if v4 else 0x10000)
    s = _notes.get(key)
    if s is None:
        if flags & 0x20:
            s = _tcp_note(tcpf)
        else:
            s = _icmp_note(it, ic, v4)
        _notes[key] = s
    return s


def _note_of(h) -> str:
    a = h.addr
    if a.version == 0 and not h.flags & 0x60:
        # an ICMP reply from a link-layer address: scamper's icmp_tostr
        # writes nothing (its buffer is left as it was, in practice empty)
        return ""
    return _note_of_values(h.flags, h.icmp_type, h.icmp_code, h.tcp_flags, type(a) is _V4)


def _trace_lines_fast(hops, hc: int):
    """Hop lines for the common shape: at most one reply per TTL, in TTL order.

    Returns None when the trace has another shape (the general path handles it).
    """
    out = []
    append = out.append
    v4get = _v4strs.get
    ms3 = _MS3
    pfx = _TTL_PREFIX
    nxt = 1
    for h in hops:
        ttl = h.probe_ttl
        if ttl < nxt or ttl > hc:
            return None
        while nxt < ttl:
            append(f"\n{pfx[nxt]}*")
            nxt += 1
        nxt = ttl + 1
        a = h.addr
        q, r = divmod(h.rtt & 0xFFFFFFFF, 1000)
        if type(a) is _V4:
            s = v4get(a._ip)
            if s is None:
                s = addr_str(a)
            # type 11 (time exceeded) has no note; in ICMPv6 it is " !<11,0>"
            if h.flags & 0x60 or h.icmp_type != 11:
                append(f"\n{pfx[ttl]}{s}  {q}.{ms3[r]} ms{_note_of(h)}")
            else:
                append(f"\n{pfx[ttl]}{s}  {q}.{ms3[r]} ms")
        else:
            append(f"\n{pfx[ttl]}{addr_str(a)}  {q}.{ms3[r]} ms{_note_of(h)}")
    while nxt <= hc:
        append(f"\n{pfx[nxt]}*")
        nxt += 1
    append("\n")
    return "".join(out)


def _trace_text(t: Trace) -> str:
    head = "traceroute"
    if t.src is not None:
        head += " from " + addr_str(t.src)
    head += " to " + addr_str(t.dst)
    if t.rtr is not None:
        head += " via " + addr_str(t.rtr)
    # a hop count of 0 means "up to the last reply", as scamper's reader has it
    hc = t.hop_count or max((h.probe_ttl for h in t.hops), default=0)
    if hc <= 0:
        return head + "\n"
    if t.pmtud is None and not t.flags & 0x01:
        fast = _trace_lines_fast(t.hops, hc)
        if fast is not None:
            return head + fast
    out = [head]
    byttl: list = [None] * hc
    for h in t.hops:
        i = h.probe_ttl - 1
        if i < hc:
            lst = byttl[i]
            if lst is None:
                byttl[i] = [h]
            else:
                lst.append(h)
    mtus: dict = {}
    # scamper 20211212 stops reading a trace without replies before its
    # PMTUD block, so such a trace prints no MTUs
    if t.pmtud is not None and t.pmtud.ver in (1, 2) and t.hops:
        (_pmtud_v1 if t.pmtud.ver == 1 else _pmtud_v2)(t, byttl, mtus)
    allatt = t.flags & 0x01
    v4get = _v4strs.get
    ms3 = _MS3
    append = out.append
    for i in range(hc):
        lst = byttl[i]
        ttl = i + 1
        if lst is None:
            if not allatt:
                line = f"{ttl:2d}  *"
            elif t.attempts == 0:
                line = f"{ttl:2d}  "[:3]
            else:
                line = f"{ttl:2d}  "[:4] + ("* " * t.attempts)[:-1]
        elif len(lst) == 1:
            h = lst[0]
            a = h.addr
            if type(a) is _V4:
                s = v4get(a._ip)
                if s is None:
                    s = _v4strs[a._ip] = str(a)
            else:
                s = addr_str(a)
            q, r = divmod(h.rtt & 0xFFFFFFFF, 1000)
            line = f"{_TTL_PREFIX[ttl]}{s}  {q}.{ms3[r]} ms{_note_of(h)}"
        else:
            parts = [_TTL_PREFIX[ttl]]
            last = None
            for h in lst:
                a = addr_str(h.addr)
                q, r = divmod(h.rtt & 0xFFFFFFFF, 1000)
                rs = f"{q}.{ms3[r]} ms{_note_of(h)}"
                if last is not None and a == last:
                    parts.append(rs + "  ")
                else:
                    last = a
                    parts.append(a + "  " + rs + "  ")
            line = "".join(parts).rstrip(" ")
        if mtus:
            m = mtus.get(i)
            if m is not None:
                line += m
        append(line)
    append("")
    return "\n".join(out)


# --------------------------------------------------------------------------
# ping

def _tsreply(v: int) -> str:
    ms = v % 1000
    ss = v // 1000
    hh = ss // 3600
    ss -= hh * 3600
    mm = ss // 60
    ss -= mm * 60
    return f"{hh:02d}:{mm:02d}:{ss:02d}.{ms:03d}"


def _signed32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def ping_stats(p: Ping):
    """scamper's ping statistics: (nreplies, ndups, min, avg, max, stddev) in us.

    ``nreplies`` counts probes with at least one reply of any kind; min..stddev
    are None when nothing came back.
    """
    sent = p.ping_sent
    seen = set()
    rtts = []
    for r in p.replies:
        if r.probe_id < sent:
            seen.add(r.probe_id)
            rtts.append(r.rtt & 0xFFFFFFFF)
    return _stats_of(rtts, len(seen))


def _stats_of(rtts: list, nrep: int):
    """:func:`ping_stats` of the RTTs (us, masked to u32) of replies to ``nrep`` probes."""
    ndups = len(rtts) - nrep
    if not rtts:
        return nrep, ndups, None, None, None, None
    n = len(rtts)
    total = float(sum(rtts))
    mean = total / n
    avg = int(mean) & 0xFFFFFFFF
    var = 0.0
    for x in rtts:
        d = x - mean
        var += d * d
    sd = int(math.sqrt(var / n)) & 0xFFFFFFFF
    return nrep, ndups, min(rtts), avg, max(rtts), sd


def ping_reply_line(a, pid: int, rsize: int, rttl: int, proto: int, rtt: int, tsreply,
                    tcpf: int, rr, ts_times, ts_addrs) -> str:
    """The lines sc_warts2text prints for one ping reply (capped as scamper caps them)."""
    us = rtt & 0xFFFFFFFF
    rtt = f"{us // 1000}.{_MS3[us % 1000]}"
    if type(a) is _V4:
        s = _v4strs.get(a._ip) or addr_str(a)
        icmp = proto == 1
    else:
        s = addr_str(a)
        # (0 for a link-layer address: never ICMP to scamper)
        icmp = a.version == 6 and proto == 58
    s = f"{rsize} bytes from {s}, seq={pid} "
    if icmp or proto == 17:
        s += f"ttl={rttl} time={rtt} ms"
    if icmp and tsreply is not None:
        o, rx, tx = tsreply
        s += f" tso={_tsreply(o)} tsr={_tsreply(rx)} tst={_tsreply(tx)}"
    elif proto == 6:
        f = tcpf
        if f & 0x04:
            tcp = "closed"
        elif f & 0x12 == 0x12:
            tcp = "open,ecn" if f & 0x40 else "open"
        else:
            tcp = f"{f:x}02x"  # 20211212's "%0x02x" format bug, reproduced
        s += f"tcp={tcp} ttl={rttl} time={rtt} ms"
    s += "\n"
    if rr or ts_times:
        block = [s]
        if rr:
            block.append(f" RR: {addr_str(rr[0])}\n")
            for x in rr[1:]:
                block.append(f"     {addr_str(x)}\n")
        if ts_times:
            ips = ts_addrs
            for k, ts in enumerate(ts_times):
                line = " TS: " if k == 0 else "     "
                if ips:
                    line += f"{addr_str(ips[k]) if k < len(ips) else '(null)':<15} "
                block.append(f"{line}{_signed32(ts)}\n")
        s = "".join(block)
    return s if len(s) < 256 else s[:255]


def ping_text_of(src, dst, probe_size: int, sent: int, replies: list) -> str:
    """sc_warts2text's text of a ping from its bare bones.

    ``replies``: ``(probe id, RTT, lines)`` in the order of the record, the
    lines from :func:`ping_reply_line`; only replies to probes below
    ``sent`` are shown.
    """
    dst = addr_str(dst)
    src = addr_str(src) if src is not None else "(null)"
    # scamper formats into fixed buffers (192 / 256 / 512 bytes) and
    # truncates silently; the [:N] caps below reproduce that
    out = [f"ping {src} to {dst}: {probe_size} byte packets\n"[:191]]
    seen = set()
    rtts = []
    prev = -1
    ordered = True
    for pid, rtt, _ in replies:
        if pid < sent:
            seen.add(pid)
            rtts.append(rtt & 0xFFFFFFFF)
        if pid < prev:
            ordered = False
        prev = pid
    if not ordered:
        replies = sorted(replies, key=lambda r: r[0])
    for pid, _, lines in replies:
        if pid < sent:
            out.append(lines)
    nrep = len(seen)
    ndups = len(rtts) - nrep
    loss = ((sent - nrep) * 100) // sent if sent else 0
    st = f"--- {dst} ping statistics ---\n{sent} packets transmitted, {nrep} packets received, "
    if ndups > 0:
        st += f"+{ndups} duplicates, "
    st += f"{loss}% packet loss\n"
    if nrep > 0:
        _, _, mn, avg, mx, sd = _stats_of(rtts, nrep)
        st += (f"round-trip min/avg/max/stddev = {rtt_str(mn)}/{rtt_str(avg)}/{rtt_str(mx)}/"
               f"{rtt_str(sd)} ms\n")
    out.append(st[:511])
    return "".join(out)


def _ping_text(p: Ping) -> str:
    sent = p.ping_sent
    return ping_text_of(p.src, p.dst, p.probe_size, sent, [
        (r.probe_id, r.rtt,
         ping_reply_line(r.addr, r.probe_id, r.reply_size, r.reply_ttl, r.reply_proto, r.rtt,
                         r.tsreply, r.tcp_flags, r.rr, r.ts_times, r.ts_addrs)
         if r.probe_id < sent else "") for r in p.replies])


def render_text(rec) -> str:
    """What ``sc_warts2text`` prints for ``rec`` ("" for records it skips)."""
    if type(rec) is Trace:
        return _trace_text(rec)
    if type(rec) is Ping:
        return _ping_text(rec)
    if type(rec) is Tracelb:
        from ixpscamper.warts.tracelb_fmt import tracelb_text
        return tracelb_text(rec) or ""
    if type(rec) is Dealias:
        from ixpscamper.warts.dealias_fmt import dealias_text
        return dealias_text(rec) or ""
    if type(rec) is Sting:
        from ixpscamper.warts.sting_fmt import sting_text
        return sting_text(rec)
    codec = codec_for_class(type(rec))
    if codec is not None and codec.text is not None:
        return codec.text(rec)
    return ""
