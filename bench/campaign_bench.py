#!/usr/bin/env python3
"""ixp-peers campaign benchmark in the BGP lab: wall time against the traces' own durations.

Run as root:  python3 bench/campaign_bench.py [--dsts 6] [--trace-opts '-q 1 -w 1'] [--per-peer 2]

Builds ``lab(bgp=True)`` (BIRD on the collector and the two members; the
collector's RIB dumped as MRT), starts ``twistd ixp-vp --unix`` in the
collector, and runs one ``ixp-peers`` campaign through it: every member's
route to each destination (addresses of 198.51.100.0/24 and 2001:db8:d::/64:
hosts that answer, routers, and addresses that do not exist, so some traces
run to their gap limit), plus a member that left the LAN (its next hop never
answers ARP).  Each row's ``start`` (the VP's clock) and ``received`` (when
ixp-peers got the result; the same host, so the same clock) give the trace's
own duration.  Figures:

* the process wall time of ``ixp-peers`` (RIB load to the last row written);
* the campaign's span (first trace start to last result);
* the sum of the traces' durations, and the longest one;
* sum / span: how many traces ran at once on average (with ``--per-peer 1
  --concurrency 1`` it is close to 1: the traces run one after the other);
* span - the bound the caps set (the longest peer's traces over its
  --per-peer slots, or all traces over --concurrency): what the scheduling
  itself costs.

The VP paces at --vp-pps (default 200) like a collector would.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from ixpscamper.bgp.mrt import Peer  # noqa: E402
from ixpscamper.lab import Lab  # noqa: E402

TWISTD = [sys.executable, "-c",
          "import sys; from twisted.scripts.twistd import run; sys.argv[0]='twistd'; run()"]


def ghost_rib(path: str) -> str:
    """A member that has left the LAN: announced, but its next hop never answers."""
    import ipaddress
    from ixpscamper.bgp.mrtwrite import MrtWriter, encode_attributes
    ip = ipaddress.ip_address
    with open(path, "wb") as f:
        w = MrtWriter(f)
        w.write_peers([Peer(index=0, bgp_id=ip("10.255.0.99"), ip=ip("192.0.2.99"), asn=65099)])
        w.write_rib(ipaddress.ip_network("198.51.100.0/24"),
                    [(0, encode_attributes([(65099, 65020)], ip("192.0.2.99"), version=4))])
    return path


def destinations(n: int) -> list[str]:
    """``n`` v4 and ``n`` v6 destinations inside the members' announcements:
    the host (.66), t1's address on the destination LAN (.1), then
    addresses nobody holds (the trace runs to its gap limit)."""
    v4 = ["198.51.100.66", "198.51.100.1"] + [f"198.51.100.{100 + i}" for i in range(max(0, n - 2))]
    v6 = ["2001:db8:d::66", "2001:db8:d::1"] + [f"2001:db8:d::{100 + i:x}" for i in range(max(0, n - 2))]
    return v4[:n] + v6[:n]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dsts", type=int, default=6, help="destinations per address family (default 6)")
    ap.add_argument("--trace-opts", default="-q 1 -w 1", help="passed to ixp-peers (default '-q 1 -w 1')")
    ap.add_argument("--per-peer", type=int, default=2, help="ixp-peers --per-peer (default 2)")
    ap.add_argument("--concurrency", type=int, default=8, help="ixp-peers --concurrency (default 8)")
    ap.add_argument("--rows", action="store_true", help="print each row's duration")
    ap.add_argument("--vp-pps", type=int, default=200, help="ixp-vp --pps (default 200)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("campaign_bench: needs root (network namespaces)", file=sys.stderr)
        return 2
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, load average "
          f"{os.getloadavg()[0]:.2f} (other work on the machine inflates all figures)")
    tmp = Path(tempfile.mkdtemp(prefix="campaign-bench-"))
    L = Lab.create(bgp=True)
    vp = None
    try:
        ribs = L.bgp.bgp_rib_files() + [ghost_rib(str(tmp / "ghost.mrt"))]
        sock = tmp / "vp.sock"
        vplog = open(tmp / "vp.log", "wb")
        vp = L.popen("coll", TWISTD + ["-n", "--pidfile=", "ixp-vp", "--unix", str(sock),
                                       "--pps", str(args.vp_pps)], stdout=vplog, stderr=subprocess.STDOUT)
        end = time.monotonic() + 20
        while not sock.exists():
            if time.monotonic() > end or vp.poll() is not None:
                print("ixp-vp did not start:\n" + (tmp / "vp.log").read_text(), file=sys.stderr)
                return 1
            time.sleep(0.05)
        dsts = destinations(args.dsts)
        out = tmp / "rows.json"
        argv = [sys.executable, "-m", "ixpscamper.peers.cli", *sum((["--rib", r] for r in ribs), []),
                "--ixp-lan", "192.0.2.0/24", "--ixp-lan", "2001:db8:1::/64",
                *sum((["--dst", d] for d in dsts), []), "-U", str(sock),
                "--trace-opts", args.trace_opts, "--per-peer", str(args.per_peer),
                "--concurrency", str(args.concurrency), "--json", str(out), "-q"]
        t0 = time.time()
        p = L.run("coll", argv, check=False, timeout=600)
        wall = time.time() - t0
        if p.returncode != 0:
            print(f"ixp-peers exited {p.returncode}:\n{p.stderr}", file=sys.stderr)
            return 1
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        timed = [r for r in rows if r.get("start") is not None and r.get("received") is not None]
        durs = [r["received"] - r["start"] for r in timed]
        if not durs:
            print("no timed rows", file=sys.stderr)
            return 1
        span = max(r["received"] for r in timed) - min(r["start"] for r in timed)
        # the per-peer cap serialises each peer's traces: the longest such chain
        # (its traces' durations summed over per-peer slots) bounds the span from below
        by_peer: dict = {}
        for r, d in zip(timed, durs):
            by_peer.setdefault((r["peer_ip"], r["peer_asn"]), []).append(d)
        chain = max(max(sum(v) / min(args.per_peer, len(v)) for v in by_peer.values()),
                    sum(durs) / args.concurrency)
        if args.rows:
            for r, d in sorted(zip(timed, durs), key=lambda x: x[0]["start"]):
                print(f"  {r['start'] - min(x['start'] for x in timed):6.2f} +{d:5.2f} s  "
                      f"{r['peer_ip']:>14} {r['dst']:>16} {r['class']:12} {r['stop_reason']}")
        classes: dict = {}
        for r in rows:
            classes[r["class"]] = classes.get(r["class"], 0) + 1
        print(f"{len(rows)} rows ({len(timed)} traced) over {len(by_peer)} peers, "
              f"{len(dsts)} destinations, trace opts {args.trace_opts!r}, per-peer {args.per_peer}, "
              f"concurrency {args.concurrency}; classes {classes}")
        print(f"ixp-peers wall time (process)     : {wall:7.2f} s")
        print(f"campaign span (first start..last) : {span:7.2f} s")
        print(f"sum of the traces' own durations  : {sum(durs):7.2f} s  (median {statistics.median(durs):.2f} s, "
              f"longest {max(durs):.2f} s)")
        print(f"sum / span (traces at once)       : {sum(durs) / span:7.2f}")
        print(f"span / wall                       : {span / wall:7.2f}  (the rest: start-up, RIB load, output)")
        print(f"bound from the caps               : {chain:7.2f} s; span - bound = {span - chain:.2f} s")
        print(f"load average at the end {os.getloadavg()[0]:.2f}")
        return 0
    finally:
        if vp is not None and vp.poll() is None:
            vp.terminate()
            try:
                vp.wait(5)
            except subprocess.TimeoutExpired:
                vp.kill()
        L.teardown()


if __name__ == "__main__":
    sys.exit(main())
