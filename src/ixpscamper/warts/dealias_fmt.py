"""Text and JSON renderings of dealias records, as sc_warts2text / sc_warts2json print them.

sc_warts2text (20211212 and 2026 alike: scamper_dealias_text.c) prints one
line for an ally measurement and nothing for the other methods.
"""

from __future__ import annotations

import ipaddress
from typing import Optional

from ixpscamper.warts.jsonfmt import _esc
from ixpscamper.warts.records import Dealias
from ixpscamper.warts.text import addr_str

_V4 = ipaddress.IPv4Address

__all__ = ["dealias_text"]

_RESULTS = {0: "none", 1: "aliases", 2: "not aliases"}


def dealias_text(d: Dealias) -> Optional[str]:
    """What sc_warts2text prints for ``d`` ("" for methods other than ally)."""
    if d.method != 2 or d.data is None:
        return ""
    pds = d.data.probedefs
    s = f"{addr_str(pds[0].dst)} {addr_str(pds[1].dst)} {_RESULTS.get(d.result, str(d.result))}\n"
    return s[:255]


# --------------------------------------------------------------------------
# JSON (scamper_dealias_json.c with 20211212's spacing; 20211212 and 2026
# alike print nothing for midarest and midardisc)

_METHODS = {1: "mercator", 2: "ally", 3: "radargun", 4: "prefixscan", 5: "bump",
            6: "midarest", 7: "midardisc"}
_RESULT_NAMES = ["none", "aliases", "not-aliases", "halted", "ipid-echo", "error"]
_PD_METHODS = {1: "icmp-echo", 2: "tcp-ack", 3: "udp", 4: "tcp-ack-sport", 5: "udp-dport",
               6: "tcp-syn-sport"}


def _flags(flags: int, names: list) -> str:
    out = []
    for i in range(8):
        b = flags & (1 << i)
        if b:
            out.append(f'"{names[i]}"' if i < len(names) else str(b))
    return ', "flags":[' + ",".join(out) + "]"


def _prefixhosts(a, b) -> int:
    """scamper_addr_prefixhosts: the prefix of ``a`` and ``b`` in which neither
    is the network or broadcast address (IPv4 only; -1 otherwise)."""
    if a.version != 4 or b.version != 4:
        return -1
    x, y = int(a), int(b)
    d = x ^ y
    i = 32 - d.bit_length()
    if i >= 31:
        return i
    while i > 0:
        hm = (1 << (32 - i)) - 1
        if (x & hm) in (0, hm) or (y & hm) in (0, hm):
            i -= 1
            continue
        break
    return i


def _header_json(d: Dealias) -> str:
    r = d.result
    res = _RESULT_NAMES[r] if 0 <= r < len(_RESULT_NAMES) else str(r)
    s = [f'{{"type":"dealias","version":"0.2","method":"{_METHODS.get(d.method, d.method)}"'
         f', "userid":{d.userid}, "result":"{res}", "start":{{"sec":{d.start[0]}, '
         f'"usec":{d.start[1]}}}']
    if d.errmsg is not None:
        s.append(f',"errmsg":"{_esc(d.errmsg, 512)}"')
    x = d.data
    m = d.method
    if m == 1:
        s.append(f', "attempts":{x.attempts}, "wait_timeout":{x.wait_timeout}')
    elif m == 2:
        s.append(f', "wait_probe":{x.wait_probe}, "wait_timeout":{x.wait_timeout}'
                 f', "attempts":{x.attempts}, "fudge":{x.fudge}')
        if x.flags:
            s.append(_flags(x.flags, ["nobs"]))
    elif m == 3:
        s.append(f', "attempts":{x.rounds}, "wait_probe":{x.wait_probe}'
                 f', "wait_round":{x.wait_round & 0xFFFF}, "wait_timeout":{x.wait_timeout}')
        if x.flags:
            s.append(_flags(x.flags, ["nobs"]))  # sic: scamper names radargun's bit 1 so
    elif m == 4:
        if x.a is not None:
            s.append(f', "a":"{addr_str(x.a)}"')
        if x.b is not None:
            s.append(f', "b":"{addr_str(x.b)}/{x.prefix}"')
            if x.ab is not None:
                n = _prefixhosts(x.b, x.ab)
                if n >= 0:
                    s.append(f', "ab":"{addr_str(x.ab)}/{n}"')
        if x.xs:
            s.append(', "xs":[' + ",".join(f'"{addr_str(a)}"' for a in x.xs) + "]")
        s.append(f', "attempts":{x.attempts}, "replyc":{x.replyc}, "fudge":{x.fudge}'
                 f', "wait_probe":{x.wait_probe}, "wait_timeout":{x.wait_timeout}')
        if x.flags:
            s.append(_flags(x.flags, ["nobs", "csa"]))
    elif m == 5:
        s.append(f', "wait_probe":{x.wait_probe}, "bump_limit":{x.bump_limit}'
                 f', "attempts":{x.attempts}')
    if d.list is not None and d.list.monitor is not None:
        s.append(f',"monitor":"{_esc(d.list.monitor, 512)}"')
    return "".join(s)[:4095]


def _probedef_json(p) -> str:
    s = f'{{"id":{p.id}'
    if p.src is not None:
        s += f', "src":"{addr_str(p.src)}"'
    m = p.method
    s += (f', "dst":"{addr_str(p.dst)}", "ttl":{p.ttl}, "size":{p.size}'
          f', "method":"{_PD_METHODS.get(m, m)}"')
    if m == 1:
        s += f', "icmp_id":{p.icmp_id}, "icmp_csum":{p.icmp_csum}'
    elif m == 3 or m == 5:
        s += f', "udp_sport":{p.sport}, "udp_dport":{p.dport}'
    elif m == 2 or m == 4 or m == 6:
        s += f', "tcp_sport":{p.sport}, "tcp_dport":{p.dport}, "tcp_flags":{p.tcp_flags}'
    if p.mtu > 0:
        s += f', "mtu":{p.mtu}'
    return s[:254] + "}"


def _reply_json(r) -> str:
    a = r.src
    v = 4 if type(a) is _V4 else a.version
    s = f'{{"src":"{addr_str(a)}", "rx":{{"sec":{r.rx[0]}, "usec":{r.rx[1]}}}, "ttl":{r.ttl}'
    if r.size:
        s += f', "size":{r.size}'
    if v == 4:
        s += f', "ipid": {r.ipid}'
    elif r.flags & 0x01:
        s += f', "ipid": {r.ipid32}'
    proto = r.proto
    s += f', "proto":{proto}'
    if proto == 1 or proto == 58:
        it = r.icmp_type
        s += f', "icmp_type":{it}, "icmp_code":{r.icmp_code}'
        if (v == 4 and it in (3, 11)) or (v == 6 and it in (1, 3)):
            s += f', "icmp_q_ttl":{r.icmp_q_ttl}'
    elif proto == 6:
        s += f', "tcp_flags":{r.tcp_flags}'
    return s[:254] + "}"


def _probe_json(pr) -> str:
    pd = pr.probedef
    tx = pr.tx
    s = f'{{"probedef_id":{pd.id}, "seq":{pr.seq}, "tx":{{"sec":{tx[0]}, "usec":{tx[1]}}}'
    dst = pd.dst
    if type(dst) is _V4 or dst.version == 4:
        s += f', "ipid":{pr.ipid}'
    s = (s + ', "replies":[')[:255]
    return s + ", ".join([_reply_json(r) for r in pr.replies]) + "]}"


def dealias_json(d: Dealias) -> Optional[str]:
    """What sc_warts2json prints for ``d`` (one line); "" for the MIDAR methods
    and methods without options, which scamper's JSON writer does not print."""
    if d.data is None or d.method not in (1, 2, 3, 4, 5):
        return ""
    return (_header_json(d) + ', "probedefs":['
            + ", ".join([_probedef_json(p) for p in d.data.probedefs])
            + '], "probes":[' + ", ".join([_probe_json(p) for p in d.probes]) + "]}\n")
