"""Rows and the files made from them: table, JSON lines, CSV, warts, HTML.

A *row* is one plain dict per (peer, destination) -- the JSON line, and
what the journal keeps -- so every output can be rebuilt from the journal
after an interrupted run.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import os
from collections import Counter
from typing import IO, Iterable, Optional, Sequence

from ixpscamper.peers.compare import CLASSES, Comparison

__all__ = [
    "make_row", "dry_row", "error_row", "write_json", "write_csv", "write_warts", "write_html",
    "render_table", "summary_counts", "atomic_write",
]

_STOP_NAMES = {0: "none", 1: "completed", 2: "unreach", 3: "icmp", 4: "loop", 5: "gaplimit",
               6: "error", 7: "hoplimit", 8: "gss", 9: "halted", 10: "inprogress"}


def _base(target) -> dict:
    r = target.route
    return {
        "peer_ip": str(target.peer.ip),
        "peer_asn": int(target.peer.asn),
        "next_hop": None if r.next_hop is None else str(r.next_hop),
        "dst": str(target.dst),
        "prefix": str(r.prefix),
        "bgp_path": list(r.flat_path()),
        "bgp_collapsed": list(r.collapsed()),
        "origins": sorted(int(a) for a in r.origin_asns),
    }


def dry_row(target) -> dict:
    """The ``--dry-run`` row: what would be traced (or why not)."""
    row = _base(target)
    row["on_lan"] = bool(target.on_lan)
    if target.excluded is not None:
        row["excluded"] = target.excluded
    return row


def make_row(target, trace, cmp: Comparison, vp: Optional[str] = None, warts: bytes = b"",
             received: Optional[float] = None) -> dict:
    """The row of a measured pair.  ``received`` is when the result reached
    ixp-peers (UNIX time); with ``start`` (the VP's clock) it gives the
    trace's duration when both run on one host."""
    row = _base(target)
    row.update({
        "trace_hops": [h.addr for h in cmp.hops],
        "trace_hop_asns": [list(h.asns) for h in cmp.hops],
        "trace_path": list(cmp.trace_path),
        "class": cmp.cls,
        "detail": cmp.detail,
        "reached": cmp.reached,
        "stop_reason": _STOP_NAMES.get(int(trace.stop_reason), str(int(trace.stop_reason))),
        "moas": [{"addr": h.addr, "asns": list(h.asns)} for h in cmp.moas],
        "unmapped": cmp.unmapped,
        "lan_hops": [h.addr for h in cmp.hops if h.how == "lan"],
        "start": float(trace.start.sec) + trace.start.usec / 1e6 if getattr(trace, "start", None) else None,
        "received": received,
        "vp": vp,
        "on_lan": True,
    })
    if warts:
        row["_warts"] = base64.b64encode(warts).decode("ascii")
    return row


def error_row(target, message: str, vp: Optional[str] = None) -> dict:
    """A pair the VP refused to trace (its ERR), kept so it is not retried."""
    row = _base(target)
    row.update({"trace_hops": [], "trace_hop_asns": [], "trace_path": [], "class": "error",
                "detail": message, "reached": False, "stop_reason": None, "moas": [],
                "unmapped": [], "lan_hops": [], "start": None, "received": None, "vp": vp, "on_lan": True})
    return row


def public(row: dict) -> dict:
    """The row without internal fields (the raw warts bytes)."""
    return {k: v for k, v in row.items() if not k.startswith("_")}


def atomic_write(path: str, data: bytes) -> None:
    """Replace ``path`` with ``data`` at once (a crash leaves old or new, never half)."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_json(path: str, rows: Iterable[dict]) -> None:
    """One JSON object per line."""
    atomic_write(path, "".join(json.dumps(public(r), sort_keys=False) + "\n" for r in rows).encode())


_CSV_FIELDS = ("peer_ip", "peer_asn", "next_hop", "dst", "prefix", "class", "bgp_path", "trace_path",
               "trace_hops", "reached", "detail")


def write_csv(path: str, rows: Iterable[dict]) -> None:
    """One line per pair; paths space-separated, silent hops as ``*``."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(_CSV_FIELDS)
    for r in rows:
        w.writerow([
            r.get("peer_ip"), r.get("peer_asn"), r.get("next_hop"), r.get("dst"), r.get("prefix"),
            r.get("class", ""), " ".join(map(str, r.get("bgp_path", []))),
            " ".join(map(str, r.get("trace_path", []))),
            " ".join(h or "*" for h in r.get("trace_hops", [])),
            "" if "reached" not in r else str(bool(r["reached"])).lower(), r.get("detail", ""),
        ])
    atomic_write(path, buf.getvalue().encode())


def write_warts(path: str, rows: Iterable[dict]) -> None:
    """The raw traces, as the VP returned them, in one warts file."""
    atomic_write(path, b"".join(base64.b64decode(r["_warts"]) for r in rows if r.get("_warts")))


def summary_counts(rows: Iterable[dict]) -> Counter:
    """Pairs per class (measured rows only)."""
    return Counter(r["class"] for r in rows if "class" in r)


def _by_peer(rows: Iterable[dict]) -> dict[tuple, list[dict]]:
    # A member's IPv4 and IPv6 sessions next to each other.
    out: dict[tuple, list[dict]] = {}
    for r in rows:
        out.setdefault((r["peer_asn"], r["peer_ip"]), []).append(r)
    return dict(sorted(out.items(), key=lambda kv: (kv[0][0], ":" in kv[0][1], kv[0][1])))


def _path(p: Sequence[int]) -> str:
    return " ".join(str(a) for a in p) or "-"


def render_table(rows: Sequence[dict]) -> str:
    """The per-peer congruence table printed on stdout."""
    out: list[str] = []
    by_peer = _by_peer(rows)
    for (asn, ip), prs in by_peer.items():
        nhs = sorted({r["next_hop"] or "-" for r in prs})
        out.append(f"peer {ip} AS{asn} (next hop {', '.join(nhs)})")
        w_dst = max(len("dst"), *(len(r["dst"]) for r in prs))
        w_cls = max(len("class"), *(len(r.get("class", "")) for r in prs))
        w_bgp = max(len("BGP path"), *(len(_path(r["bgp_path"])) for r in prs))
        out.append(f"  {'dst':<{w_dst}}  {'class':<{w_cls}}  {'BGP path':<{w_bgp}}  data path")
        for r in prs:
            line = (f"  {r['dst']:<{w_dst}}  {r.get('class', ''):<{w_cls}}  {_path(r['bgp_path']):<{w_bgp}}"
                    f"  {_path(r.get('trace_path', []))}")
            if r.get("detail"):
                line += f"   ({r['detail']})"
            out.append(line.rstrip())
    counts = summary_counts(rows)
    peers = len(by_peer)
    total = sum(counts.values())
    parts = [f"{c} {counts[c]}" for c in CLASSES if counts.get(c)]
    out.append(f"{peers} peer(s), {total} pair(s): " + (", ".join(parts) if parts else "nothing measured"))
    return "\n".join(out) + "\n"


_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.3em}h2{font-size:1.05em;margin-top:1.5em}
table{border-collapse:collapse;margin:.4em 0}td,th{border:1px solid #ccc;padding:.25em .5em;vertical-align:top}
th{background:#f3f3f3;text-align:left}.as{display:inline-block;padding:0 .3em;margin:0 .1em;border-radius:3px;background:#eef}
.diff{background:#fbb;font-weight:bold}.c-match{color:#080}.c-other{color:#b00;font-weight:bold}
.hops{font-family:monospace;font-size:.85em;color:#555}.summary td{text-align:right}
"""


def _as_spans(path: Sequence[int], other: Sequence[int]) -> str:
    # An AS the other side does not have is what the reader has to see.
    return " ".join(
        f'<span class="as{" diff" if a not in other else ""}">{a}</span>' for a in path) or "&ndash;"


def render_html(rows: Sequence[dict], title: str = "ixp-peers: BGP path against data path") -> str:
    """One self-contained page (inline CSS, no scripts, no external resource)."""
    e = html.escape
    counts = summary_counts(rows)
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{e(title)}</title>",
             f"<style>{_CSS}</style></head><body><h1>{e(title)}</h1>"]
    parts.append("<table class='summary'><tr><th>class</th><th>pairs</th></tr>")
    for c in CLASSES:
        if counts.get(c):
            parts.append(f"<tr><th>{e(c)}</th><td>{counts[c]}</td></tr>")
    parts.append(f"<tr><th>total</th><td>{sum(counts.values())}</td></tr></table>")
    for (asn, ip), prs in _by_peer(rows).items():
        parts.append(f"<h2>peer {e(ip)} AS{asn}</h2><table><tr><th>destination</th><th>prefix</th>"
                     "<th>next hop</th><th>class</th><th>BGP path</th><th>data path</th><th>hops</th></tr>")
        for r in prs:
            cls = r.get("class", "")
            bgp = r.get("bgp_collapsed") or r["bgp_path"]
            data = r.get("trace_path", [])
            hops = " ".join(
                f"{e(h)}" + (f"&nbsp;[{'/'.join(map(str, a))}]" if a else "") if h else "*"
                for h, a in zip(r.get("trace_hops", []), r.get("trace_hop_asns", [])))
            parts.append(
                f"<tr><td>{e(r['dst'])}</td><td>{e(r['prefix'])}</td><td>{e(r['next_hop'] or '-')}</td>"
                f"<td class='{'c-match' if cls == 'match' else 'c-other'}'>{e(cls)}"
                f"{('<br><small>' + e(r['detail']) + '</small>') if r.get('detail') else ''}</td>"
                f"<td>{_as_spans(r['bgp_path'], data)}</td><td>{_as_spans(data, bgp)}</td>"
                f"<td class='hops'>{hops}</td></tr>")
        parts.append("</table>")
    parts.append("</body></html>\n")
    return "".join(parts)


def write_html(path: str, rows: Sequence[dict]) -> None:
    atomic_write(path, render_html(rows).encode())


def print_table(rows: Sequence[dict], out: IO[str]) -> None:
    out.write(render_table(rows))
