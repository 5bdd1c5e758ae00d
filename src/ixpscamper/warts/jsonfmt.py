"""JSON rendering, byte-identical to scamper 20211212's ``sc_warts2json``.

scamper builds these lines with printf, not a JSON library, so the spacing
is irregular (``"type":"trace","version"`` but ``", "`` elsewhere, a stray
colon in ``"icmp_nhmtu:"``, ...); it is copied exactly.  The trace
``ftime`` is the start time in the *local* time zone, as the C tool does.
"""

from __future__ import annotations

import ipaddress
import struct
import time

from ixpscamper.warts.registry import codec_for_class
from ixpscamper.warts.records import (CycleStart, CycleStop, Dealias, Neighbourdisc, Ping,
                                      Trace, Tracelb, Udpprobe)
from ixpscamper.warts.text import _MS3, _v4strs, addr_str, ping_stats, rtt_str

__all__ = ["render_json"]

_V4 = ipaddress.IPv4Address
_V6 = ipaddress.IPv6Address

_TRACE_METHODS = {1: "icmp-echo", 2: "udp", 3: "tcp", 4: "icmp-echo-paris", 5: "udp-paris",
                  6: "tcp-ack"}
_TRACE_STOPS = ["NONE", "COMPLETED", "UNREACH", "ICMP", "LOOP", "GAPLIMIT", "ERROR",
                "HOPLIMIT", "GSS", "HALTED"]
_PING_METHODS = ["icmp-echo", "tcp-ack", "tcp-ack-sport", "udp", "udp-dport", "icmp-time",
                 "tcp-syn", "tcp-synack", "tcp-rst"]
_PING_FLAGS = ["v4rr", "spoof", "payload", "tsonly", "tsandaddr", "icmpsum", "dl", "tbt", "nosrc"]


def _esc(s: str, size: int = 128) -> str:
    """scamper's json_esc: stop at the first unprintable byte, escape " and \\."""
    out = []
    room = size - 1
    for ch in s:
        if not (" " <= ch <= "~"):
            break
        if ch in "\"\\":
            if room < 2:
                break
            out.append("\\" + ch)
            room -= 2
        else:
            if room < 1:
                break
            out.append(ch)
            room -= 1
    return "".join(out)


def _cycle(kind: str, c: CycleStart, tkey: str, tval: int) -> str:
    s = f'{{"type":"{kind}", "list_name":"{c.list.name}", "id":{c.id}'
    if c.hostname is not None:
        s += f', "hostname":"{c.hostname}"'
    return s + f', "{tkey}":{tval}}}\n'


def _is_quoting(h) -> bool:
    v = h.addr.version
    if v == 4:
        return h.icmp_type in (3, 11)
    return v == 6 and h.icmp_type in (1, 2, 3)


def _is_ptb(h) -> bool:
    v = h.addr.version
    if v == 4:
        return h.icmp_type == 3 and h.icmp_code == 4
    return v == 6 and h.icmp_type == 2


def _exts_json(exts, sep: str = ", ") -> str:
    """The ``icmpext`` member; ``sep`` before it (a trace hop's JSON has a
    space after the comma, a tracelb reply's has none)."""
    out = []
    for e in exts:
        x = f'{{"ie_cn":{e.class_num},"ie_ct":{e.class_type},"ie_dl":{len(e.data)}'
        if e.is_mpls:
            x += ',"mpls_labels":[' + ",".join(
                f'{{"mpls_ttl":{m.ttl},"mpls_s":{m.s},"mpls_exp":{m.exp},'
                f'"mpls_label":{m.label}}}' for m in e.mpls_labels) + "]"
        out.append(x + "}")
    return sep + '"icmpext":[' + ",".join(out) + "]"


def _hop(h, rxerr: int) -> str:
    us = h.rtt & 0xFFFFFFFF
    a = h.addr
    ta = type(a)
    if ta is _V4:
        v = 4
        s = _v4strs.get(a._ip) or addr_str(a)
    else:
        v = 6 if ta is _V6 else a.version
        s = addr_str(a)
    s = f'{{"addr":"{s}"'
    if h.name is not None:
        s += f', "name":"{_esc(h.name)}"'
    s += (f', "probe_ttl":{h.probe_ttl}, "probe_id":{h.probe_id}, '
          f'"probe_size":{h.probe_size}')
    tx = h.tx
    if tx is not None and tx[0] != 0:
        s += f', "tx":{{"sec":{tx[0]}, "usec":{tx[1]}}}'
    s += (f', "rtt":{us // 1000}.{_MS3[us % 1000]}, "reply_ttl":{h.reply_ttl}, '
          f'"reply_tos":{h.reply_tos}')
    if not rxerr:
        s += f', "reply_ipid":{h.reply_ipid}, "reply_size":{h.reply_size}'
    fl = h.flags
    if not fl & 0x60:
        it = h.icmp_type
        s += f', "icmp_type":{it}, "icmp_code":{h.icmp_code}'
        if v == 4:
            if not rxerr and (it == 3 or it == 11):  # quoting the probe
                ipl = h.probe_size if h.icmp_q_ipl is None else h.icmp_q_ipl
                s += (f', "icmp_q_ttl":{h.icmp_q_ttl}, "icmp_q_ipl":{ipl}'
                      f', "icmp_q_tos":{h.icmp_q_tos}')
            if it == 3 and h.icmp_code == 4:  # packet too big
                s += f', "icmp_nhmtu:":{h.icmp_nhmtu}'
        elif v == 6:
            if not rxerr and (it == 1 or it == 2 or it == 3):
                ipl = h.probe_size if h.icmp_q_ipl is None else h.icmp_q_ipl
                s += f', "icmp_q_ttl":{h.icmp_q_ttl}, "icmp_q_ipl":{ipl}'
            if it == 2:
                s += f', "icmp_nhmtu:":{h.icmp_nhmtu}'
    elif fl & 0x20:
        s += f', "tcp_flags":{h.tcp_flags}'
    if h.icmpext:
        s += _exts_json(h.icmpext)
    s += "}"
    return s if len(s) < 1024 else s[:1023]  # scamper's 1024-byte buffer


def _trace(t: Trace) -> str:
    m = t.method
    method = _TRACE_METHODS.get(m, str(m))
    s = [f'"type":"trace","version":"0.1", "userid":{t.userid}, "method":"{method}"']
    if t.src is not None:
        s.append(f', "src":"{addr_str(t.src)}"')
    s.append(f', "dst":"{addr_str(t.dst)}"')
    if t.rtr is not None:
        s.append(f', "rtr":"{addr_str(t.rtr)}"')
    if m in (2, 5, 3, 6):
        s.append(f', "sport":{t.sport}, "dport":{t.dport}')
    elif t.flags & 0x20:
        s.append(f', "icmp_sum":{t.dport}')
    # a hop count of 0 means "up to the last reply", as scamper's reader has it
    hc = t.hop_count or max((h.probe_ttl for h in t.hops), default=0)
    # scamper's reader turns a first hop of 0 into 1
    firsthop = t.firsthop or 1
    sr = t.stop_reason
    stop = _TRACE_STOPS[sr] if 0 <= sr < len(_TRACE_STOPS) else str(sr)
    sec, usec = t.start[0], t.start[1]
    ftime = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(sec))
    s.append(f', "stop_reason":"{stop}", "stop_data":{t.stop_data}'
             f', "start":{{"sec":{sec}, "usec":{usec}, "ftime":"{ftime}"}}'
             f', "hop_count":{hc}, "attempts":{t.attempts}, "hoplimit":{t.hoplimit}'
             f', "firsthop":{firsthop}, "wait":{t.wait}, "wait_probe":{t.wait_probe}'
             f', "tos":{t.tos}, "probe_size":{t.probe_size}, "probe_count":{t.probec}')
    s = ["{" + "".join(s)[:511]]  # the header is built in a 512-byte buffer
    lo = firsthop - 1
    hops = t.hops
    sel = [h for h in hops if lo <= h.probe_ttl - 1 < hc]
    if sel:
        if any(sel[i].probe_ttl > sel[i + 1].probe_ttl for i in range(len(sel) - 1)):
            sel = sorted(sel, key=lambda h: h.probe_ttl)  # stable: arrival order within a TTL
        rxerr = t.flags & 0x80
        s.append(', "hops":[' + ",".join([_hop(h, rxerr) for h in sel]) + "]")
    s.append("}\n")
    return "".join(s)


_PROTO_JSON = {1: '"icmp"', 58: '"icmp"', 6: '"tcp"', 17: '"udp"'}


def _reply(p: Ping, r) -> str:
    ra = r.addr
    if type(ra) is _V4:
        v = 4
        a = _v4strs.get(ra._ip) or addr_str(ra)
    else:
        v = ra.version
        a = addr_str(ra)
    proto = r.reply_proto
    pstr = _PROTO_JSON.get(proto)
    if pstr is None:
        pstr = str(proto)
    s = (f'{{"from":"{a}", "seq":{r.probe_id}, "reply_size":{r.reply_size}, '
         f'"reply_ttl":{r.reply_ttl}, "reply_proto":{pstr}')
    us = r.rtt & 0xFFFFFFFF
    tx = r.tx
    if tx is not None and tx[0] != 0:
        rsec = tx[0] + us // 1000000
        rusec = tx[1] + us % 1000000
        if rusec >= 1000000:
            rsec += 1
            rusec -= 1000000
        s += (f', "tx":{{"sec":{tx[0]}, "usec":{tx[1]}}}, "rx":{{"sec":{rsec & 0xFFFFFFFF}, '
              f'"usec":{rusec}}}')
    s += f', "rtt":{us // 1000}.{_MS3[us % 1000]}'
    if v == 4:
        s += f', "probe_ipid":{r.probe_ipid}, "reply_ipid":{r.reply_ipid}'
    elif v == 6 and r.flags & 0x02:
        s += f', "reply_ipid":{r.reply_ipid32}'
    if (proto == 1) if v == 4 else (v == 6 and proto == 58):  # SCAMPER_PING_REPLY_IS_ICMP
        s += f', "icmp_type":{r.icmp_type}, "icmp_code":{r.icmp_code}'
    elif proto == 6:
        s += f', "tcp_flags":{r.tcp_flags}'
    if r.rr is not None:
        s += ', "RR":[' + ",".join([f'"{addr_str(x)}"' for x in r.rr]) + "]"
    if r.ts_times is not None:
        if not p.flags & 0x08:
            ips = r.ts_addrs or []
            s += ', "tsandaddr":[' + ",".join([
                f'{{"ip":"{addr_str(ips[i]) if i < len(ips) else "(null)"}","ts":{x & 0xFFFFFFFF}}}'
                for i, x in enumerate(r.ts_times)]) + "]"
        else:
            s += ', "tsonly":[' + ",".join([str(x & 0xFFFFFFFF) for x in r.ts_times]) + "]"
    s += "}"
    return s if len(s) < 512 else s[:511]  # scamper's 512-byte buffer


def _ping(p: Ping) -> str:
    m = p.method
    method = _PING_METHODS[m] if 0 <= m < len(_PING_METHODS) else str(m)
    s = [f'{{"type":"ping", "version":"0.4", "method":"{method}"']
    if p.src is not None:
        s.append(f', "src":"{addr_str(p.src)}"')
    s.append(f', "dst":"{addr_str(p.dst)}"')
    if p.rtr is not None:
        s.append(f', "rtr":"{addr_str(p.rtr)}"')
    s.append(f', "start":{{"sec":{p.start[0]},"usec":{p.start[1]}}}'
             f', "ping_sent":{p.ping_sent}, "probe_size":{p.probe_size}'
             f', "userid":{p.userid}, "ttl":{p.ttl}, "wait":{p.wait}')
    if p.wait_us:
        s.append(f', "wait_us":{p.wait_us}')
    s.append(f', "timeout":{p.timeout}')
    is_tcp = m in (1, 2, 6, 7, 8)
    if is_tcp or m in (3, 4):
        s.append(f', "sport":{p.sport}, "dport":{p.dport}')
    if is_tcp:
        s.append(f', "tcp_seq":{p.tcp_seq}, "tcp_ack":{p.tcp_ack}')
    if p.pattern:
        key = "payload" if p.flags & 0x04 else "pattern"
        s.append(f', "{key}":"{bytes(p.pattern).hex()[:511]}"')
    if p.flags:
        names = [_PING_FLAGS[i] for i in range(9) if p.flags & (1 << i)]
        s.append(', "flags":[' + ",".join(f'"{n}"' for n in names) + "]")
    if m in (0, 5) and p.flags & 0x20:
        s.append(f', "icmp_csum": {p.icmp_csum}')
    if p.probe_tsps is not None:
        s.append(', "probe_tsps":[' + ",".join(f'"{addr_str(a)}"' for a in p.probe_tsps) + "]")
    s = ["".join(s)[:1023]]  # the header is built in a 1024-byte buffer
    sent = p.ping_sent
    replies = p.replies
    if any(replies[i].probe_id > replies[i + 1].probe_id for i in range(len(replies) - 1)):
        replies = sorted(replies, key=lambda r: r.probe_id)
    s.append(', "responses":[' + ",".join([_reply(p, r) for r in replies if r.probe_id < sent])
             + "],")
    nrep, ndups, mn, avg, mx, sd = ping_stats(p)
    st = f'"statistics":{{"replies":{nrep}'
    if sent:
        if nrep == 0:
            st += ', "loss":1'
        elif nrep == sent:
            st += ', "loss":0'
        else:
            f32 = struct.unpack("f", struct.pack("f", (sent - nrep) / sent))[0]
            st += f', "loss":{f32:.2f}'
    if nrep > 0:
        st += (f', "min":{rtt_str(mn)}, "max":{rtt_str(mx)}, "avg":{rtt_str(avg)}'
               f', "stddev":{rtt_str(sd)}')
    s.append((st + "}")[:511] + "}\n")
    return "".join(s)


def render_json(rec) -> str:
    """What ``sc_warts2json`` prints for ``rec``: one line, or "" if it prints nothing."""
    t = type(rec)
    if t is Trace:
        return _trace(rec)
    if t is Ping:
        return _ping(rec)
    if t is Tracelb:
        from ixpscamper.warts.tracelb_fmt import tracelb_json
        return tracelb_json(rec) or ""
    if t is Dealias:
        from ixpscamper.warts.dealias_fmt import dealias_json
        return dealias_json(rec) or ""
    if t is Neighbourdisc:
        from ixpscamper.warts.neighbourdisc_fmt import neighbourdisc_json
        return neighbourdisc_json(rec)
    if t is Udpprobe:
        from ixpscamper.warts.udpprobe_fmt import udpprobe_json
        return udpprobe_json(rec)
    if t is CycleStart:
        return _cycle("cycle-start", rec, "start_time", rec.start_time)
    if t is CycleStop:
        return _cycle("cycle-stop", rec.cycle, "stop_time", rec.stop_time)
    codec = codec_for_class(t)
    if codec is not None and codec.json is not None:
        return codec.json(rec)
    return ""
