"""JSON rendering of udpprobe records (2026's record type 16), as scamper
2026's sc_warts2json prints them (scamper_udpprobe_json.c); 20211212 does not
know the type, and neither version's sc_warts2text prints it."""

from __future__ import annotations

from ixpscamper.warts.records import Udpprobe

__all__ = ["udpprobe_json"]

_STOPS = ["none", "done", "halted", "error"]


def _tv_diff(a, b) -> tuple[int, int]:
    us = (b[0] - a[0]) * 1_000_000 + (b[1] - a[1])
    q, r = divmod(us, 1_000_000)
    return q & 0xFFFFFFFF, r


def udpprobe_json(u: Udpprobe) -> str:
    """What scamper 2026's sc_warts2json prints for ``u`` (one line)."""
    from ixpscamper.warts.jsonfmt import _esc
    from ixpscamper.warts.text import addr_str
    h = ['{"type":"udpprobe", "version":"0.1"']
    if u.src is not None:
        h.append(f', "src":"{addr_str(u.src)}"')
    if u.dst is not None:
        h.append(f', "dst":"{addr_str(u.dst)}"')
    wt = divmod(u.wait_timeout, 1_000_000)
    h.append(f', "userid":{u.userid}, "start":{{"sec":{u.start[0]}, "usec":{u.start[1]}}}'
             f', "sport":{u.sport}, "dport":{u.dport}'
             f', "wait_timeout":{{"sec":{wt[0]}, "usec":{wt[1]}}}')
    if u.flags & 0x01:
        h.append(', "flags":["exitfirst"]')
    stop = _STOPS[u.stop] if u.stop < len(_STOPS) else str(u.stop)
    h.append(f', "stop_reason":"{stop}"')
    if u.errmsg is not None:
        h.append(f',"errmsg":"{_esc(u.errmsg, 512)}"')
    if u.data:
        h.append(f', "data":"{u.data.hex()}"')
    h.append(f', "len":{len(u.data)}, "probe_count":{u.probe_count}'
             f', "probe_sent":{len(u.probes)}, "stop_count":{u.stop_count}')
    if u.list is not None and u.list.monitor is not None:
        h.append(f',"monitor":"{_esc(u.list.monitor, 512)}"')
    probes = []
    for p in u.probes:
        reps = []
        for r in p.replies:
            rs, ru = _tv_diff(p.tx, r.rx)
            s = (f'{{"rx":{{"sec":{r.rx[0]}, "usec":{r.rx[1]}}}, "rtt":{{"sec":{rs}, '
                 f'"usec":{ru}}}, "len":{len(r.data)}')
            if r.data:
                s += f', "data":"{r.data.hex()}"'
            if r.ifname is not None:
                s += f', "ifname":"{r.ifname}"'
            reps.append(s + "}")
        probes.append((f'{{"tx":{{"sec":{p.tx[0]}, "usec":{p.tx[1]}}}, "sport":{p.sport}'
                       f', "replyc":{len(p.replies)}, "replies":[')[:255]
                      + ", ".join(reps) + "]}")
    return "".join(h)[:4095] + ', "probes":[' + ",".join(probes) + "]}\n"
