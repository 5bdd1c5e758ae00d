"""JSON rendering of neighbourdisc records, as scamper 2026's sc_warts2json
prints them (scamper_neighbourdisc_json.c).  20211212's tools print nothing
for the type (and its scamper writes files no reader can decode)."""

from __future__ import annotations

from ixpscamper.warts.records import Neighbourdisc

__all__ = ["neighbourdisc_json"]

_METHODS = {1: "arp", 2: "nd-nsol"}


def neighbourdisc_json(nd: Neighbourdisc) -> str:
    """What scamper 2026's sc_warts2json prints for ``nd`` (one line)."""
    from ixpscamper.warts.jsonfmt import _esc
    from ixpscamper.warts.text import addr_str
    h = [f'{{"type":"neighbourdisc", "version":"0.1", '
         f'"method":"{_METHODS.get(nd.method, nd.method)}"']
    for key in ("src_ip", "src_mac", "dst_ip", "dst_mac"):
        a = getattr(nd, key)
        if a is not None:
            h.append(f', "{key}":"{addr_str(a)}"')
    if nd.ifname is not None:
        h.append(f', "ifname":"{nd.ifname}"')
    wt = divmod(nd.wait_timeout * 1000, 1_000_000)
    h.append(f', "userid":{nd.userid}, "attempts":{nd.attempts}, "stop_count":{nd.replyc}'
             f', "start":{{"sec":{nd.start[0]}, "usec":{nd.start[1]}}}'
             f', "wait_timeout":{{"sec":{wt[0]}, "usec":{wt[1]}}}')
    if nd.errmsg is not None:
        h.append(f',"errmsg":"{_esc(nd.errmsg, 512)}"')
    if nd.flags:
        fl = [n for b, n in ((1, '"allattempts"'), (2, '"firstresponse"')) if nd.flags & b]
        h.append(', "flags":[' + ",".join(fl) + "]")
    if nd.list is not None and nd.list.monitor is not None:
        h.append(f',"monitor":"{_esc(nd.list.monitor, 512)}"')
    probes = []
    for p in nd.probes:
        reps = []
        for r in p.rxs:
            s = f'{{"rx":{{"sec":{r.rx[0]}, "usec":{r.rx[1]}}}'
            if r.mac is not None:
                s += f', "mac":"{addr_str(r.mac)}"'
            reps.append(s + "}")
        probes.append((f'{{"tx":{{"sec":{p.tx[0]}, "usec":{p.tx[1]}}}, '
                       f'"replyc":{len(p.rxs)}, "replies":[')[:127] + ",".join(reps) + "]}")
    return "".join(h)[:1023] + ', "probes":[' + ",".join(probes) + "]}\n"
