#!/usr/bin/env python3
"""tracelb benchmark through the lab's load-balanced segment, ours against the Debian scamper.

Run as root:  python3 bench/tracelb_bench.py [--wait-probe 25] [--quick | --all]

For each configuration (method x confidence) both programs run the same
``tracelb -W WAIT ...`` to 203.0.113.66 in a lab built with ``ecmp=True``
(t1 balances over m1 and m2), scamper first, then ours with ``-s`` set to
the source port scamper's record names (scamper 20211212 ignores
``tracelb -s``: its flows start at a port derived from its pid).  Both then
send the same flows, so the kernel hashes them onto the same next hops:
the probe counts must be equal.  Figures per run: wall time of
the process, measurement time (first probe sent to the last probe sent, from
the record), probes sent, and whether nodes and links agree.

Targets: the same probe count for the same confidence; wall time <= 1.2x.
The MDA paces itself (one probe per -W), so the measurement time is almost
probes x wait-probe for both; the process wall time adds start-up (Python's
is about 0.5-0.9 s more than scamper's C on a loaded 2-core box), which is
why the ratio exceeds 1.2 for the shortest runs with -W 15.  Defaults: -W 25
(scamper's), four configurations, about 50 s (--quick: two, 30 s; --all
adds tcp-sport).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from ixpscamper.lab import ECMP_ADDRS, Lab  # noqa: E402

CONFIGS = [("udp-dport", 95), ("udp-dport", 99), ("udp-sport", 95), ("icmp-echo", 95)]
EXTRA = [("tcp-sport", 95)]


def _record(path: Path) -> dict:
    """The tracelb record as sc_warts2json prints it, with ``_sport`` added
    (sc_warts2json prints no source port for ICMP)."""
    from ixpscamper.warts import Tracelb, iter_records
    out = subprocess.run(["sc_warts2json", str(path)], capture_output=True, text=True, check=True).stdout
    (rec,) = [r for r in map(json.loads, out.splitlines()) if r["type"] == "tracelb"]
    with path.open("rb") as f:
        (rec["_sport"],) = [r.sport for r in iter_records(f) if isinstance(r, Tracelb)]
    return rec


def _graph(rec: dict) -> set:
    return {(n["addr"], lk["addr"]) for n in rec["nodes"] for g in n.get("links", []) for lk in g}


def _span(rec: dict) -> float:
    txs = [p["tx"]["sec"] + p["tx"]["usec"] / 1e6
           for n in rec["nodes"] for g in n.get("links", []) for lk in g for p in lk["probes"]]
    return max(txs) - min(txs) if txs else 0.0


def run_one(lab: Lab, who: str, cmd: str, tmp: Path) -> tuple[float, dict]:
    out = tmp / f"{who}-{time.monotonic_ns()}.warts"
    if who == "ours":
        argv = [sys.executable, "-m", "ixpscamper.prober", "-o", str(out), cmd]
    else:
        argv = ["scamper", "-O", "warts", "-o", str(out), "-I", cmd]
    t0 = time.monotonic()
    lab.run("coll", argv, timeout=300)
    return time.monotonic() - t0, _record(out)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--wait-probe", type=int, default=25, help="tracelb -W, centiseconds (15-200)")
    ap.add_argument("--quick", action="store_true", help="two configurations only")
    ap.add_argument("--all", action="store_true", help="also tcp-sport")
    args = ap.parse_args()
    configs = CONFIGS[:2] if args.quick else CONFIGS + (EXTRA if args.all else [])
    lab = Lab.create(ecmp=True)
    worst = 0.0
    same_probes = True
    try:
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            print(f"{'method':<14}{'conf':>5}{'probes ours/sc':>16}{'wall ours/sc s':>18}"
                  f"{'meas ours/sc s':>18}{'ratio':>7}  graph")
            for method, conf in configs:
                opts = f"tracelb -P {method} -c {conf} -W {args.wait_probe}"
                w_s, r_s = run_one(lab, "scamper", f"{opts} {ECMP_ADDRS['dst']}", tmp)
                w_o, r_o = run_one(lab, "ours", f"{opts} -s {r_s['_sport']} {ECMP_ADDRS['dst']}", tmp)
                ratio = w_o / w_s
                worst = max(worst, ratio)
                same_probes &= r_o["probec"] == r_s["probec"]
                graph = "same" if _graph(r_o) == _graph(r_s) else "DIFFERENT"
                print(f"{method:<14}{conf:>5}{r_o['probec']:>9}/{r_s['probec']:<6}"
                      f"{w_o:>10.2f}/{w_s:<7.2f}{_span(r_o):>10.2f}/{_span(r_s):<7.2f}"
                      f"{ratio:>7.2f}  {graph}")
    finally:
        lab.teardown()
    print(f"worst wall ratio ours/scamper: {worst:.2f} (target <= 1.2); "
          f"probe counts {'equal' if same_probes else 'NOT equal'}")
    return 0 if worst <= 1.2 and same_probes else 1


if __name__ == "__main__":
    sys.exit(main())
