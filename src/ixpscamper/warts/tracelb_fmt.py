"""Text and JSON renderings of tracelb records, as sc_warts2text / sc_warts2json print them.

Follows scamper's scamper_tracelb_text.c and scamper_tracelb_json.c: the
text is a header line and, per node with links, the links leaving it (one
line per link when there are several; otherwise the whole chain of hops to
the next node, each hop the sorted set of addresses that answered, ``*``
for a flow that got no reply).  Buffer sizes of the C code are kept (text
lines are truncated where scamper's fixed buffers would truncate them).
"""

from __future__ import annotations

import ipaddress
import time
from typing import Optional

from ixpscamper.warts.jsonfmt import _esc, _exts_json
from ixpscamper.warts.records import Tracelb, TracelbProbeset
from ixpscamper.warts.text import addr_str

_V4 = ipaddress.IPv4Address
_MS3 = [f"{i:03d}" for i in range(1000)]

__all__ = ["tracelb_text", "probeset_summary", "text_of"]


def _cap(s: str, size: int) -> str:
    # scamper's string_concat into char buf[size]: at most size - 1 characters
    return s if len(s) < size else s[:size - 1]


_K4: dict = {}


def _akey(a):
    """scamper_addr_cmp's order: by address type, then IPv4 as the native
    (little-endian, on the x86-64 the tools run on) u32 of the network-order
    bytes, IPv6 as two such u64 words, link addresses by memcmp."""
    if type(a) is _V4:
        ip = a._ip
        k = _K4.get(ip)
        if k is None:
            if len(_K4) > 100_000:
                _K4.clear()
            k = _K4[ip] = (1, int.from_bytes(ip.to_bytes(4, "big"), "little"))
        return k
    raw = getattr(a, "packed", None)
    if raw is None:
        return (a.type, a.raw)
    if a.version == 4:
        return (1, int.from_bytes(raw, "little"))
    return (2, int.from_bytes(raw[:8], "little"), int.from_bytes(raw[8:], "little"))


def _summary(probes: list) -> tuple[list, int]:
    """:func:`probeset_summary` of ``(flowid, [reply source, ...])`` pairs."""
    if not probes:
        return [], 0
    seen: dict = {}
    nullc = 0
    flowid = probes[0][0]
    x = 0
    for fid, rx in probes:
        if fid != flowid:
            if x == 0:
                nullc += 1
            flowid = fid
            x = 0
        if rx:
            for a in rx:
                k = _akey(a)
                if k not in seen:
                    seen[k] = a
            x += 1
    if x == 0:
        nullc += 1
    if len(seen) == 1:
        return list(seen.values()), nullc
    return [seen[k] for k in sorted(seen)], nullc


def _light(ps: TracelbProbeset) -> list:
    return [(pr.flowid, [r.reply_from for r in pr.rxs]) for pr in ps.probes]


def probeset_summary(ps: TracelbProbeset) -> tuple[list, int]:
    """scamper_tracelb_probeset_summary_alloc: the distinct reply addresses
    (sorted as scamper sorts them) and how many flows got no reply at all."""
    return _summary(_light(ps))


def _summary_text(probes: list, addr_str) -> Optional[str]:
    addrs, nullc = _summary(probes)
    if nullc > 0 and not addrs:
        return "*"
    if not addrs:
        return None  # scamper would dereference an empty address array
    s = "(" + ", ".join([addr_str(a) for a in addrs])
    return s + (", *)" if nullc else ")")


def tracelb_text(t: Tracelb) -> Optional[str]:
    """What sc_warts2text prints for ``t``; None where scamper fails to print it."""
    return text_of(t.src, t.dst, t.probec, t.confidence, [n.addr for n in t.nodes],
                   [n.links for n in t.nodes],
                   [(ln.to, [_light(ps) for ps in ln.sets]) for ln in t.links])


def text_of(src, dst, probec: int, confidence: int, addrs: list, nlinks: list,
            links: list) -> Optional[str]:
    """:func:`tracelb_text` of a tracelb's bare bones, as the reader's fast path has them.

    ``addrs[i]`` is node ``i``'s address (or None) and ``nlinks[i]`` the
    indices of the links from it; ``links[j]`` is ``(to node or None,
    [probeset, ...])`` with each probeset a list of ``(flowid, [reply
    source, ...])``.
    """
    head = "tracelb"
    if src is not None:
        head += " from " + addr_str(src)
    head += " to " + addr_str(dst) + ","
    # 20211212 prints the probe count with %d: 2**31 and above come out negative
    pc = probec - (1 << 32) if probec & 0x80000000 else probec
    head += f" {len(addrs)} nodes, {len(links)} links, {pc} probes, {confidence}%\n"
    out = [_cap(head, 192)]

    def a_or_star(i):
        a = addrs[i]
        return addr_str(a) if a is not None else "*"

    for i, nl in enumerate(nlinks):
        if not nl:
            continue
        a = addrs[i]
        src = addr_str(a) if a is not None else "*"
        if len(nl) > 1:
            s = ""
            for li in nl:
                to = links[li][0]
                s += src + (" -> " + a_or_star(to) if to is not None else " -> *") + "\n"
        else:
            to, sets = links[nl[0]]
            if not sets:
                return None
            s = src + " -> "
            for ps in sets[:-1]:
                x = _summary_text(ps, addr_str)
                if x is None:
                    return None
                s += x + " -> "
            if to is not None:
                s += a_or_star(to)
            else:
                x = _summary_text(sets[-1], addr_str)
                if x is None:
                    return None
                s += x
            s += "\n"
        out.append(_cap(s, 2048))
    return "".join(out)


# --------------------------------------------------------------------------
# JSON (scamper_tracelb_json.c; 20211212 prints wait_probe in milliseconds
# and reply RTTs in milliseconds with three decimals)

_TYPES = {1: "udp-dport", 2: "icmp-echo", 3: "udp-sport", 4: "tcp-sport", 5: "tcp-ack-sport"}


def _header_json(t: Tracelb) -> str:
    s = [f'"type":"tracelb", "version":"0.1", "userid":{t.userid}, '
         f'"method":"{_TYPES.get(t.type, str(t.type))}"']
    if t.src is not None:
        s.append(f', "src":"{addr_str(t.src)}"')
    s.append(f', "dst":"{addr_str(t.dst)}"')
    if t.rtr is not None:
        s.append(f', "rtr":"{addr_str(t.rtr)}"')
    if t.type in (1, 3, 4, 5):
        s.append(f', "sport":{t.sport}, "dport":{t.dport}')
    sec, usec = t.start[0], t.start[1]
    ftime = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(sec))
    s.append(f', "start":{{"sec":{sec}, "usec":{usec}, "ftime":"{ftime}"}}'
             f', "probe_size":{t.probe_size}, "firsthop":{t.firsthop}'
             f', "attempts":{t.attempts}, "confidence":{t.confidence}, "tos":{t.tos}'
             f', "gaplimit":{t.gaplimit}, "wait_timeout":{t.wait_timeout}'
             f', "wait_probe":{t.wait_probe * 10}, "probec":{t.probec}'
             f', "probec_max":{t.probec_max}, "nodec":{len(t.nodes)}'
             f', "linkc":{len(t.links)}')
    if t.errmsg is not None:
        s.append(f',"errmsg":"{_esc(t.errmsg, 512)}"')
    if t.list is not None and t.list.monitor is not None:
        s.append(f',"monitor":"{_esc(t.list.monitor, 512)}"')
    return "".join(s)[:1023]


def _reply_json(tx, r) -> str:
    rx = r.reply_rx
    us = ((rx[0] - tx[0]) * 1_000_000 + (rx[1] - tx[1])) & 0xFFFFFFFF
    a = r.reply_from
    v = 4 if type(a) is _V4 else getattr(a, "version", 0)
    s = (f'{{"rx":{{"sec":{rx[0]}, "usec":{rx[1]}}}, "ttl":{r.reply_ttl}, '
         f'"rtt":{us // 1000}.{_MS3[us % 1000]}')
    if v == 4:
        s += f', "ipid":{r.reply_ipid}'
    if r.reply_flags & 0x02:
        s += f', "tcp_flags":{r.reply_tcp_flags}'
    else:
        it = r.reply_icmp_type
        s += (f', "icmp_type":{it}, "icmp_code":{r.reply_icmp_code}'
              f', "icmp_q_tos":{r.reply_icmp_q_tos}')
        if (v == 4 and it in (3, 11)) or (v == 6 and it in (1, 3)):
            s += f', "icmp_q_ttl":{r.reply_icmp_q_ttl}'
    if r.reply_icmp_exts is not None:
        s += _exts_json(r.reply_icmp_exts, ",")
    s += "}"
    return s if len(s) < 2048 else s[:2047]


def _keyed(ps) -> list:
    """A probeset's probes, each with its replies' ``(scamper_addr_cmp key, reply)``."""
    return [(pr, [(_akey(r.reply_from), r) for r in pr.rxs]) for pr in ps.probes]


def _summary_k(keyed: list) -> tuple[list, int]:
    """:func:`probeset_summary` of :func:`_keyed` probes."""
    if not keyed:
        return [], 0
    seen: dict = {}
    nullc = 0
    flowid = keyed[0][0].flowid
    x = 0
    for pr, kr in keyed:
        if pr.flowid != flowid:
            if x == 0:
                nullc += 1
            flowid = pr.flowid
            x = 0
        if kr:
            for k, r in kr:
                if k not in seen:
                    seen[k] = r.reply_from
            x += 1
    if x == 0:
        nullc += 1
    return [seen[k] for k in sorted(seen)], nullc


def _probe_json(pr, kr, k) -> str:
    """A probe with its replies from the address of key ``k`` (None: none)."""
    rxs = [r for kk, r in kr if kk == k]
    tx = pr.tx
    s = (f'{{"tx":{{"sec":{tx[0]}, "usec":{tx[1]}}}, "replyc":{len(rxs)}, '
         f'"ttl":{pr.ttl}, "attempt":{pr.attempt}, "flowid":{pr.flowid}')
    if len(s) > 255:
        s = s[:255]
    if rxs:
        s += ', "replies":[' + ",".join([_reply_json(tx, r) for r in rxs]) + "]"
    return s + "}"


def _probes_json(ps, to) -> str:
    """Every probe of ``ps``, each with its replies from address ``to``."""
    k = _akey(to) if to is not None else None
    return ",".join([_probe_json(pr, [(_akey(r.reply_from), r) for r in pr.rxs], k)
                     for pr in ps.probes])


def _summary_json(keyed: list, summary: tuple) -> str:
    addrs, nullc = summary
    if nullc > 0 and not addrs:
        return '{"addr":"*"}'
    out = []
    for i, a in enumerate(addrs):
        out.append(((", " if i else "") + f'{{"addr":"{addr_str(a)}", "probes":[')[:127])
        k = _akey(a)
        out.append(",".join([_probe_json(pr, kr, k) for pr, kr in keyed
                             if any(kk == k for kk, _ in kr)]))
        out.append("]}")
    if nullc:
        out.append(', {"addr":"*"}')
    return "".join(out)


def _node_json(t: Tracelb, n) -> Optional[str]:
    nodes, links = t.nodes, t.links
    s = [f'{{"addr":"{addr_str(n.addr) if n.addr is not None else "*"}"']
    if n.name is not None:
        s.append(f', "name":"{_esc(n.name, 512)}"')
    if n.flags & 0x01:
        s.append(f', "q_ttl":{n.q_ttl}')
    s.append(f', "linkc":{len(n.links)}, "links":[')
    out = ["".join(s)[:2047]]
    if len(n.links) > 1:
        out.append("[")
        for j, li in enumerate(n.links):
            ln = links[li]
            to = nodes[ln.to].addr if ln.to is not None else None
            b = "," if j else ""
            b += "{"
            if to is not None:
                b += f'"addr":"{addr_str(to)}", '
            # 20211212 has a space here (2026 does not)
            out.append(b + '"probes":[ ')
            if ln.sets:
                if to is None:
                    return None  # scamper dereferences the missing node
                out.append(_probes_json(ln.sets[0], to))
            out.append("]}")
        out.append("]")
    else:
        ln = links[n.links[0]]
        if not ln.sets:
            return None
        for j, ps in enumerate(ln.sets[:-1]):
            out.append(("," if j else "") + "[")
            keyed = _keyed(ps)
            summary = _summary_k(keyed)
            if not ps.probes or not summary[0] and not summary[1]:
                return None
            out.append(_summary_json(keyed, summary))
            out.append("]")
        if len(ln.sets) > 1:
            out.append(",")
        if ln.to is not None:
            to = nodes[ln.to].addr
            if to is None:
                return None
            out.append(f'[{{"addr":"{addr_str(to)}", "probes":[')
            out.append(_probes_json(ln.sets[-1], to))
            out.append("]}]")
        else:
            out.append('[{"addr":"*"}]')
    out.append("]}")
    return "".join(out)


def tracelb_json(t: Tracelb) -> Optional[str]:
    """What sc_warts2json prints for ``t`` (one line); None where scamper fails."""
    s = ["{", _header_json(t)]
    nodes = []
    for n in t.nodes:
        if not n.links:
            continue
        x = _node_json(t, n)
        if x is None:
            return None
        nodes.append(x)
    if nodes:
        s.append(', "nodes":[' + ",".join(nodes) + "]")
    s.append("}\n")
    return "".join(s)
