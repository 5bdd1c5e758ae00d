#!/usr/bin/env python3
"""Fairness benchmark (issue 8): how long one user waits behind another.

Run as root (the VPs open raw sockets), from the repository root::

    python3 bench/fairness_bench.py [--queue 200] [--pps 20] [--repeat 1]

Behind one ``twistd ixp-remoted``, first ``twistd ixp-vp`` and then the
real ``scamper -R ... -O notls-remote`` (Debian 20211212), both at
``--pps`` packets per second: user A (``ixp-attach -R``) queues ``--queue``
``ping`` commands (4 probes each, 1 s apart; to 127.1.x.y, one address per
ping, since scamper runs one task per destination at a time), and two
seconds later user B sends one ``ping 127.2.0.1`` on its own session.
Printed for each VP: B's latency (command to result) and how many of A's
pings had finished by then.  A fair VP answers B in about the 4 s its ping
takes by itself; a first-come-first-served one only once A's backlog has
drained (about ``4 * queue / pps`` seconds).  Everything probed is in
127.0.0.0/8.  About 30 s with the defaults.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "src"))

from tests.fairness_helpers import two_users  # noqa: E402
from tests.pipeline_helpers import Procs, free_port, vp_socket, wait_port  # noqa: E402


def measure(kind: str, queue: int, pps: int, repeat: int) -> list:
    tmp = Path(tempfile.mkdtemp(prefix=f"fairness-{kind}-"))
    procs = Procs(tmp)
    try:
        port = free_port()
        sockdir = tmp / "sockets"
        sockdir.mkdir()
        procs.our_remoted(port, sockdir)
        wait_port(port)
        runs = []
        for i in range(repeat):
            name = f"{kind}{i}"
            if kind == "ixp-vp":
                vp = procs.our_vp(port, name, "--pps", str(pps), name=name)
            else:
                vp = procs.start(name, ["scamper", "-O", "notls-remote", "-M", name,
                                        "-R", f"127.0.0.1:{port}", "-p", str(pps)])
            sock = vp_socket(sockdir, name, procs=procs)
            runs.append(two_users(sock, n_a=queue))
            procs.stop(vp)  # A's queue is abandoned with it
        return runs
    finally:
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queue", type=int, default=200, help="user A's pings (default 200)")
    ap.add_argument("--pps", type=int, default=20, help="the VPs' packets per second (default 20)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per VP (default 1)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("fairness_bench: needs root (the VPs open raw sockets)", file=sys.stderr)
        return 1
    kinds = ["ixp-vp"] + (["scamper"] if shutil.which("scamper") else [])
    if len(kinds) == 1:
        print("fairness_bench: scamper not installed; measuring ixp-vp only", file=sys.stderr)
    print(f"user A: {args.queue} x 'ping 127.1.x.y' queued; user B: 1 x 'ping 127.2.0.1'; "
          f"pps {args.pps}; FIFO would make B wait about {4 * args.queue / args.pps:.0f} s")
    print(f"{'VP':10} {'B latency (s)':>14} {'A done when B was':>18}  B's ping")
    for kind in kinds:
        runs = measure(kind, args.queue, args.pps, args.repeat)
        for r in runs:
            b = r.b_ping
            what = (f"{len(b.replies)}/{b.ping_sent} replies" if b is not None
                    else f"no result: {r.b_stderr.strip()[:60]}")
            print(f"{kind:10} {r.b_latency:14.2f} {r.a_done:>10} of {r.a_queued:<5}  {what}")
        if len(runs) > 1:
            print(f"{kind:10} {statistics.median(r.b_latency for r in runs):14.2f}  (median)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
