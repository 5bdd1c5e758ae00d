#!/usr/bin/env python3
"""Prober benchmarks, ours (ixp-scamper) side by side with the Debian scamper, in the lab.

Run as root:  python3 bench/prober_bench.py [--seconds 10] [--pps 1000]

(a) rate:  ping tasks to 100 (125) lab addresses offering 1.0 (1.25) x --pps in total,
    under ``-p PPS``, for about --seconds: achieved probe rate (probes sent /
    time from the first to the last probe) and CPU used (user+sys of the
    process / its wall time).  Target: ours holds PPS within 2 % on one core.
(b) RTT fidelity: ``ping -c N -i 0.01 198.51.100.66`` with each tool, one after
    the other on the same path: median and p99 RTT.  Target: median within 50 us.
(c) trace wall time: the lab's traces (both members, every method, IPv4 and
    IPv6, plus the gap-limit and unreachable cases) in one run of each tool:
    wall time of the process and of the measurements themselves.
    Target: within 1.2x of scamper's.

Prints one line per figure and the ratios ours/scamper.  Tears the lab down.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from ixpscamper.lab import Lab  # noqa: E402

OURS = [sys.executable, "-m", "ixpscamper.scamper_cli"]
SCAMPER = ["scamper"]

# scamper runs one task per destination at a time, and its 20211212 ping
# cannot wait less than 0.1 s between probes (it reads "-i 0.01" as 0.1 s: a
# leading zero in the fraction is parsed as octal), so offering 1.25 x 1000 pps
# takes 125 destinations at 10 pps each.  The benchmark adds them to dst's
# loopback (198.51.100.100-249, never 198.51.100.99, which must not exist).
RATE_TARGETS = [f"198.51.100.{n}" for n in range(100, 250)]

TRACES = [
    "trace 198.51.100.66",
    "trace -r 192.0.2.2 198.51.100.66",
    "trace -P icmp-paris 198.51.100.66",
    "trace -P icmp-paris -r 192.0.2.2 198.51.100.66",
    "trace -P udp 198.51.100.66",
    "trace -P icmp 198.51.100.66",
    "trace -P tcp 198.51.100.66",
    "trace -P tcp -r 192.0.2.2 198.51.100.66",
    "trace -P icmp-paris 2001:db8:d::66",
    "trace -P icmp-paris -r 2001:db8:1::2 2001:db8:d::66",
    "trace -P udp 2001:db8:d::66",
    "trace -w 1 -q 1 -g 2 192.0.2.99",  # -g 3 races the 3 s ARP failure (local !H)
    "trace -w 1 198.51.100.99",
]


def run_tool(lab: Lab, tool: list[str], argv: list[str], timeout: float = 300) -> tuple[list[dict], float, float]:
    """Run a tool in coll; returns (JSON records, wall seconds, CPU seconds of the tool)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    proc = subprocess.run(lab.exec_argv("coll", [*tool, "-O", "json", *argv]), capture_output=True, text=True,
                          timeout=timeout)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"prober_bench: {tool[0]} failed ({proc.returncode}): {proc.stderr.strip()}")
    recs = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    return [r for r in recs if r["type"] in ("ping", "trace")], wall, cpu


def _t(tv: dict) -> float:
    return tv["sec"] + tv["usec"] / 1e6


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def bench_rate(lab: Lab, tool: list[str], pps: int, seconds: float, offered: float) -> dict:
    targets = RATE_TARGETS[: max(1, min(len(RATE_TARGETS), int(pps * offered) // 10))]
    per_target = int(pps * seconds / len(targets))
    # 10 pps per destination ("-i 0.1"); offered > 1: -p is what paces
    argv = ["-p", str(pps), "-c", f"ping -c {per_target} -i 0.1", "-i", *targets]
    recs, wall, cpu = run_tool(lab, tool, argv, timeout=seconds * 6 + 60)
    sent = sum(r["ping_sent"] for r in recs)
    first = min(_t(r["start"]) for r in recs)
    last = max(_t(x["tx"]) for r in recs for x in r["responses"])
    replies = sum(len(r["responses"]) for r in recs)
    span = last - first
    return {"sent": sent, "replies": replies, "span": span, "rate": (sent - 1) / span if span > 0 else 0.0,
            "wall": wall, "cpu": cpu, "cpu_share": cpu / wall}


def bench_rtt(lab: Lab, tool: list[str], count: int) -> dict:
    recs, _wall, _cpu = run_tool(lab, tool, ["-p", "200", "-I", f"ping -c {count} -i 0.01 198.51.100.66"],
                                 timeout=count * 0.05 + 60)
    rtts = [x["rtt"] * 1000 for r in recs for x in r["responses"]]  # microseconds
    return {"n": len(rtts), "median": statistics.median(rtts), "p99": pct(rtts, 99)}


def bench_traces(lab: Lab, tool: list[str]) -> dict:
    argv = ["-p", "20"]
    for t in TRACES:
        argv += ["-I", t]
    recs, wall, cpu = run_tool(lab, tool, argv)
    start = min(_t(r["start"]) for r in recs)
    ends = []
    for r in recs:
        tx = [_t(h["tx"]) + h["rtt"] / 1000 for h in r.get("hops", [])]
        ends.append(max(tx) if tx else _t(r["start"]))
    return {"n": len(recs), "wall": wall, "cpu": cpu, "span": max(ends) - start,
            "paths": sorted((r["dst"], r.get("rtr", "-"), r["method"], r["stop_reason"],
                             tuple(h["addr"] for h in r.get("hops", []))) for r in recs)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--pps", type=int, default=1000)
    ap.add_argument("--rtt-count", type=int, default=500)
    ap.add_argument("--skip", action="append", default=[], choices=["rate", "rtt", "traces"])
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("prober_bench: needs root (network namespaces, raw sockets)", file=sys.stderr)
        return 1

    with Lab.create() as lab:
        print(f"lab {lab.prefix}; tools: ours={' '.join(OURS)}  scamper={' '.join(SCAMPER)}")
        if "rate" not in args.skip:
            for addr in RATE_TARGETS:
                lab.run("dst", ["ip", "addr", "add", f"{addr}/32", "dev", "lo"])
            # warm the neighbour caches so neither tool pays for ARP/ND
            run_tool(lab, SCAMPER, ["-p", "1000", "-c", "ping -c 1", "-i", *RATE_TARGETS])
            for offered in (1.0, 1.25):
                res = {name: bench_rate(lab, tool, args.pps, args.seconds, offered) for name, tool in
                       (("scamper", SCAMPER), ("ours", OURS))}
                for name, r in res.items():
                    print(f"(a) {name:7} -p {args.pps}, offered {offered:.2f}x: sent {r['sent']} in {r['span']:.2f}s"
                          f" = {r['rate']:.1f} pps ({100 * r['rate'] / args.pps:.1f}% of target), replies "
                          f"{r['replies']}, CPU {r['cpu']:.2f}s / wall {r['wall']:.2f}s = "
                          f"{100 * r['cpu_share']:.0f}% of a core")
                print(f"(a) ratio ours/scamper at {offered:.2f}x: rate {res['ours']['rate'] / res['scamper']['rate']:.3f},"
                      f" CPU {res['ours']['cpu'] / max(res['scamper']['cpu'], 1e-6):.1f}x; "
                      f"ours within 2% of {args.pps}: {abs(res['ours']['rate'] - args.pps) <= 0.02 * args.pps}")
        if "rtt" not in args.skip:
            res = {name: bench_rtt(lab, tool, args.rtt_count) for name, tool in
                   (("scamper", SCAMPER), ("ours", OURS))}
            for name, r in res.items():
                print(f"(b) {name:7} RTT over {r['n']} pings: median {r['median']:.1f} us, p99 {r['p99']:.1f} us")
            d = res["ours"]["median"] - res["scamper"]["median"]
            print(f"(b) ratio ours/scamper: median {res['ours']['median'] / res['scamper']['median']:.2f}, "
                  f"p99 {res['ours']['p99'] / res['scamper']['p99']:.2f}; median difference {d:+.1f} us "
                  f"(target |d| <= 50 us: {abs(d) <= 50})")
        if "traces" not in args.skip:
            res = {name: bench_traces(lab, tool) for name, tool in (("scamper", SCAMPER), ("ours", OURS))}
            for name, r in res.items():
                print(f"(c) {name:7} {r['n']} traces: process wall {r['wall']:.2f}s (CPU {r['cpu']:.2f}s), "
                      f"measurements {r['span']:.2f}s")
            same = res["ours"]["paths"] == res["scamper"]["paths"]
            print(f"(c) ratio ours/scamper: wall {res['ours']['wall'] / res['scamper']['wall']:.2f}, "
                  f"measurements {res['ours']['span'] / res['scamper']['span']:.2f}; same hops and stop reasons: "
                  f"{same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
