#!/usr/bin/env python3
"""Pipeline benchmark: attach client -> controller -> VP, ours vs scamper's trio.

Run as root (the VPs open raw sockets), from the repository root::

    python3 bench/pipeline_bench.py [--count 1000] [--pps 1000] [--skip-cut]
        [--impatient-only [--repeat N]] [--timeline] [--pycache]

``--timeline`` says where each throughput run's time went: the client's
start-up (first task), the probing (first to last probe, the probe rate,
the most probes in any 100 ms / 1 s), the results (last ping out, how
long after its timeout each came) and the client's exit and CPU time.
``--pycache`` lets our programs keep their compiled bytecode, as an
installed package does, when the environment sets PYTHONDONTWRITEBYTECODE.

Our programs run on the interpreter that runs this script: run it with the
one ``scripts/setup.sh`` makes (``.venv/bin/python``, Debian's CPython)
and ``--pycache`` to time them as installed.  An interpreter that is slow
to start shows in every figure: the impatient run ends about 2 s after the
client connects (the VP's schedule credits the time between the attach
and the first command, as scamper's does), so the client's start-up up to
its connect is most of what separates the two pipelines there.

Every probe goes to 127.0.0.0/8 (distinct destinations 127.1.x.y, since
scamper runs one task per destination at a time).  In one run it measures:

1. throughput: ``--count`` ``ping -c 1`` commands through
   ``sc_attach -R`` / ``sc_remoted`` / ``scamper -R`` and through
   ``ixp-attach -R`` / ``twistd ixp-remoted`` / ``twistd ixp-vp``:
   wall time, commands/s, and the ratio ours / trio (target <= 1.2);
2. latency: one ``trace -q 1 -m 2`` to a loopback address at a time (send,
   wait for its result), the same small client on both pipelines: median
   and p95 of command -> result;
3. outage recovery (unless ``--skip-cut``): a fault proxy between VP and
   controller cuts the link once while commands keep flowing; time from
   the cut to the first result after it.  (scamper waits 30-61 s before it
   reconnects, so this part takes about a minute.)
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "src"))

from ixpscamper.control import client as C  # noqa: E402
from tests.faultproxy import FaultProxy  # noqa: E402

TWISTD = [sys.executable, "-c", "import sys; from twisted.scripts.twistd import run; sys.argv[0]='twistd'; run()"]
# the installed command (its entry point connects before the imports:
# ixpscamper.attach_start), else the module
_INSTALLED = Path(sys.executable).with_name("ixp-attach")
ATTACH = [str(_INSTALLED)] if _INSTALLED.exists() else [sys.executable, "-m", "ixpscamper.attach"]


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port: int, timeout: float = 20) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"pipeline_bench: port {port} never opened")


def wait_sock(d: Path, monitor: str, timeout: float = 90) -> Path:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for p in d.iterdir():
            if p.name.startswith(monitor + "-"):
                return p
        time.sleep(0.05)
    raise SystemExit(f"pipeline_bench: VP {monitor} never registered")


class Pipeline:
    """One controller + one VP (ours or scamper's), optionally through a fault proxy."""

    def __init__(self, kind: str, tmp: Path, pps: int, proxy: bool = False) -> None:
        self.kind = kind
        self.tmp = tmp
        self.procs: list[subprocess.Popen] = []
        self.sockdir = Path(tempfile.mkdtemp(prefix=f"{kind}-sockets-", dir=tmp))
        port = free_port()
        self.monitor = f"bench-{kind}"
        if kind == "ours":
            self._start(TWISTD + ["-n", "--pidfile=", "ixp-remoted", "-P", f"127.0.0.1:{port}",
                                  "-U", str(self.sockdir)], "remoted")
        else:
            self._start(["sc_remoted", "-P", f"127.0.0.1:{port}", "-U", str(self.sockdir)], "remoted")
        wait_port(port)
        self.proxy = None
        vport = port
        if proxy:
            self.proxy = FaultProxy()
            vport = self.proxy.start(0, "127.0.0.1", port)
        if kind == "ours":
            self._start(TWISTD + ["-n", "--pidfile=", "ixp-vp", "-R", f"127.0.0.1:{vport}", "-M", self.monitor,
                                  "--no-tls", "--pps", str(pps)], "vp")
        else:
            self._start(["scamper", "-O", "notls-remote", "-M", self.monitor, "-R", f"127.0.0.1:{vport}",
                         "-p", str(pps)], "vp")
        self.sock = wait_sock(self.sockdir, self.monitor)

    def _start(self, argv, name):
        log = open(self.tmp / f"{self.kind}-{name}.log", "wb")
        self.procs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))

    def current_sock(self) -> Path:
        """sc_remoted renames the socket on every resume; find the live one."""
        return wait_sock(self.sockdir, self.monitor)

    def close(self) -> None:
        if self.proxy is not None:
            self.proxy.stop()
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def commands(n: int, offset: int = 0) -> str:
    return "".join(f"ping -c 1 127.1.{(i + offset) // 250 % 250}.{(i + offset) % 250 + 1}\n" for i in range(n))


def throughput(pl: Pipeline, n: int, impatient: bool = False, offset: int = 0,
               timeline: bool = False) -> tuple[float, int]:
    client = ["sc_attach"] if pl.kind == "scamper" else ATTACH
    if impatient:
        client = client + ["-O", "impatient"]
    data = commands(n, offset).encode()
    chunks: list[tuple[float, bytes]] = []  # (wall time a stdout chunk arrived, the bytes)
    out = bytearray()
    import resource
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    w0 = time.time()
    t0 = time.monotonic()
    proc = subprocess.Popen(client + ["-R", str(pl.sock), "-i", "-", "-o", "-"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def feed():
        try:
            proc.stdin.write(data)
            proc.stdin.close()
        except OSError:
            pass
    err = bytearray()
    threads = [threading.Thread(target=feed, daemon=True),
               threading.Thread(target=lambda: err.extend(proc.stderr.read()), daemon=True)]
    for th in threads:
        th.start()
    while True:
        b = os.read(proc.stdout.fileno(), 1 << 16)
        if not b:
            break
        chunks.append((time.time(), b))
        out += b
    rc = proc.wait(600)
    wall = time.monotonic() - t0
    w_end = time.time()
    # the daemons are not reaped yet: the children's CPU time so far is the client's
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime
    for th in threads:
        th.join(5)
    if rc != 0:
        raise SystemExit(f"pipeline_bench: {client[0]} failed: {err.decode()[:300]}")
    from ixpscamper.warts import iter_records
    import io
    pings = [r for r in iter_records(io.BytesIO(bytes(out))) if type(r).__name__ == "Ping"]
    if timeline:
        _timeline(pl.kind, "impatient" if impatient else "paced", w0, w_end, chunks, pings, cpu)
    return wall, len(pings)


def _tv(t) -> float:
    return t.sec + t.usec / 1e6


def _timeline(kind: str, mode: str, w0: float, w_end: float, chunks, pings, cpu: float) -> None:
    """Where the wall time went: spawn -> first probe -> last probe -> last result -> exit."""
    tx = sorted(_tv(r.tx) for p in pings for r in p.replies if r.tx is not None)
    # when each ping's record came out, against when its timeout ended (tx + -W)
    from ixpscamper.warts import WartsDecoder
    dec = WartsDecoder()
    late = []
    last_ping_at = float("nan")
    for at, b in chunks:
        for r in dec.feed(b):
            if type(r).__name__ == "Ping":
                last_ping_at = at
            if type(r).__name__ == "Ping" and r.replies and r.replies[0].tx is not None:
                late.append(at - (_tv(r.replies[0].tx) + r.timeout + r.timeout_us / 1e6))
    starts = sorted(_tv(p.start) for p in pings)
    if not tx:
        print(f"  {kind} {mode}: no probe times in the results")
        return
    span = tx[-1] - tx[0]
    gaps = [b - a for a, b in zip(tx, tx[1:])]
    # the largest number of probes in any sliding 1-second / 100 ms window (the rate promise)
    def most_in(width: float) -> int:
        best = j = 0
        for i in range(len(tx)):
            while tx[i] - tx[j] >= width:
                j += 1
            best = max(best, i - j + 1)
        return best
    first_chunk = chunks[0][0] if chunks else float("nan")
    last_chunk = chunks[-1][0] if chunks else float("nan")
    print(f"  {kind:7s} {mode:9s}: first task start +{(starts[0] - w0) * 1000:7.1f} ms, "
          f"first probe +{(tx[0] - w0) * 1000:7.1f} ms, last probe +{(tx[-1] - w0) * 1000:7.1f} ms "
          f"(span {span * 1000:7.1f} ms, {(len(tx) - 1) / span if span else 0:6.1f} pps, "
          f"max gap {max(gaps, default=0) * 1000:5.1f} ms, max in 100 ms {most_in(0.1)}, in 1 s {most_in(1.0)}), "
          f"first output +{(first_chunk - w0) * 1000:7.1f} ms, last ping out +{(last_ping_at - w0) * 1000:7.1f} ms, "
          f"last output +{(last_chunk - w0) * 1000:7.1f} ms, "
          f"exit +{(w_end - w0) * 1000:7.1f} ms; result after its timeout: median "
          f"{statistics.median(late) * 1000 if late else float('nan'):5.1f} ms, max "
          f"{max(late, default=float('nan')) * 1000:5.1f} ms; client CPU {cpu * 1000:5.1f} ms", flush=True)


class StepClient:
    """Blocking control-protocol client on a per-VP socket (both dialects)."""

    def __init__(self, path: Path) -> None:
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(str(path))
        self.p = C.ReplyParser()
        self.q: list = []

    def next(self, timeout: float = 120):
        self.s.settimeout(timeout)
        while not self.q:
            data = self.s.recv(65536)
            if not data:
                raise EOFError
            self.q.extend(self.p.feed(data))
        return self.q.pop(0)

    def result(self):
        while True:
            r = self.next()
            if isinstance(r, C.Data) and r.payload[2:4] in (b"\x00\x06", b"\x00\x07"):
                return r
            if isinstance(r, C.Err):
                raise SystemExit(f"pipeline_bench: ERR {r.message}")

    def send(self, line: str) -> None:
        self.s.sendall(line.encode() + b"\n")

    def close(self) -> None:
        try:
            self.send("done")
            self.s.settimeout(10)
            while self.s.recv(65536):
                pass
        except OSError:
            pass
        self.s.close()


def latency(pl: Pipeline, n: int) -> list[float]:
    c = StepClient(pl.sock)
    out = []
    for i in range(n):
        t0 = time.monotonic()
        # a one-hop trace ends with the reply (a ping waits out its 1 s)
        c.send(f"trace -q 1 -m 2 127.2.0.{i % 250 + 1}")
        c.result()
        out.append(time.monotonic() - t0)
    c.close()
    return out


def cut_recovery(pl: Pipeline) -> float:
    """Keep commands flowing, cut once, return seconds from the cut to the next result."""
    c = StepClient(pl.sock)
    results: list[float] = []
    stop = threading.Event()

    def reader():
        try:
            while not stop.is_set():
                r = c.next(timeout=150)
                if isinstance(r, C.Data) and r.payload[2:4] == b"\x00\x07":
                    results.append(time.monotonic())
        except (EOFError, OSError):
            pass
    th = threading.Thread(target=reader, daemon=True)
    th.start()
    for i in range(10):
        c.send(f"ping -c 1 127.3.0.{i + 1}")
        time.sleep(0.1)
    time.sleep(1)
    cut_at = time.monotonic()
    pl.proxy.cut()
    # commands written during the outage are held and run after the resume
    for i in range(20):
        c.send(f"ping -c 1 127.3.1.{i + 1}")
        time.sleep(0.05)
    end = time.monotonic() + 120
    while time.monotonic() < end and not any(t > cut_at for t in results):
        time.sleep(0.05)
    stop.set()
    after = [t for t in results if t > cut_at]
    try:
        c.s.close()
    except OSError:
        pass
    return (after[0] - cut_at) if after else float("inf")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--pps", type=int, default=1000)
    ap.add_argument("--latency-count", type=int, default=50)
    ap.add_argument("--skip-cut", action="store_true")
    ap.add_argument("--impatient-only", action="store_true",
                    help="only the -O impatient throughput run (no paced run, latency or cut)")
    ap.add_argument("--repeat", type=int, default=1, help="with --impatient-only: runs per pipeline")
    ap.add_argument("--pycache", action="store_true",
                    help="let our programs keep compiled bytecode (in the run's temporary folder) as an "
                         "installed package does, even when PYTHONDONTWRITEBYTECODE is set")
    ap.add_argument("--timeline", action="store_true",
                    help="also print when the first and last probes went and the results came (throughput runs)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("pipeline_bench: needs root (raw sockets)", file=sys.stderr)
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="pipeline-bench-"))
    if args.pycache:
        # With PYTHONDONTWRITEBYTECODE every start compiles the modules from
        # source (about 15 ms of ixp-attach's start-up); an installed package
        # has its .pyc files.  Keep them out of the work tree, and compile once.
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        os.environ["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
        subprocess.run(ATTACH + ["-v"], stdout=subprocess.DEVNULL, check=True)
        print("pipeline_bench: bytecode cached (--pycache)", flush=True)
    try:
        return _bench(args, tmp)
    finally:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)


def _impatient_only(args, tmp: Path) -> int:
    """``--impatient-only``: the -O impatient throughput run, ``--repeat`` times per pipeline."""
    walls: dict[str, list[float]] = {}
    for kind in ("scamper", "ours"):
        pl = Pipeline(kind, tmp, args.pps)
        try:
            for i in range(args.repeat):
                iwall, igot = throughput(pl, args.count, impatient=True, offset=(i + 1) * args.count,
                                         timeline=args.timeline)
                walls.setdefault(kind, []).append(iwall)
                print(f"{kind:8s} {args.count} pings -O impatient: {iwall:6.2f} s  {igot / iwall:7.1f} cmd/s  "
                      f"results {igot}", flush=True)
        finally:
            pl.close()
    mo, ms = statistics.median(walls["ours"]), statistics.median(walls["scamper"])
    print(f"wall time ours / scamper trio, impatient (medians {mo * 1e3:.1f} / {ms * 1e3:.1f} ms): "
          f"{mo / ms:.3f}")
    return 0


def _bench(args, tmp: Path) -> int:
    if args.impatient_only:
        return _impatient_only(args, tmp)
    rows = {}
    for kind in ("scamper", "ours"):
        pl = Pipeline(kind, tmp, args.pps)
        try:
            wall, got = throughput(pl, args.count, timeline=args.timeline)
            iwall, igot = throughput(pl, args.count, impatient=True, offset=args.count, timeline=args.timeline)
            lat = latency(pl, args.latency_count)
        finally:
            pl.close()
        rows[kind] = (wall, got, lat, iwall)
        print(f"{kind:8s} {args.count} pings paced on MORE: {wall:6.2f} s  {got / wall:7.1f} cmd/s  "
              f"results {got}; -O impatient: {iwall:6.2f} s  {igot / iwall:7.1f} cmd/s  results {igot}; "
              f"latency median {statistics.median(lat) * 1000:6.2f} ms  "
              f"p95 {sorted(lat)[int(len(lat) * 0.95) - 1] * 1000:6.2f} ms", flush=True)
    ratio = rows["ours"][0] / rows["scamper"][0]
    print(f"wall time ours / scamper trio, paced: {ratio:.2f}  (target <= 1.2)")
    print(f"wall time ours / scamper trio, impatient: {rows['ours'][3] / rows['scamper'][3]:.2f}")
    lr = statistics.median(rows["ours"][2]) / statistics.median(rows["scamper"][2])
    print(f"median latency ours / scamper trio: {lr:.2f}")
    if not args.skip_cut:
        for kind in ("ours", "scamper"):
            pl = Pipeline(kind, tmp, args.pps, proxy=True)
            try:
                rec = cut_recovery(pl)
            finally:
                pl.close()
            print(f"{kind:8s} cut -> first result after it: {rec:6.2f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
