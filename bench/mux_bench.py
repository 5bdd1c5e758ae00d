#!/usr/bin/env python3
"""Many VPs behind one mux socket, driven from one client: ours against
scamper 2026's, in the same run.

* A VP farm: N VPs, each our own VP code (`ixpscamper.vp.remote.RemoteVP`:
  the remote protocol, the attached source, MORE / OK id-N / DATA id-N)
  over ``reactor.connectTCP``, with an instant backend -- a ping is
  answered at once with a one-reply record -- so the figures measure the
  controller and the client, not the network.  By default each VP is a
  process of its own, as real VPs are (forked from one launcher after the
  imports); ``--farm-procs N`` puts them in N processes instead, whose VPs
  then share a reactor and a turn (see `Farm`).
* Controllers: ``twistd ixp-remoted -M`` and scamper 2026's ``sc_remoted -M``.
* Clients: ours (`ixpscamper.client.api`, Twisted) and ScamperCtrl
  (``scamper`` Python module, 2026), each issuing ``--pings`` pings spread
  over every VP, all submitted at once.  Ours keeps up to 128 commands in
  flight per VP (its window) and writes what a reactor turn gathered in one
  write; ScamperCtrl (libscamperctrl) writes each command as its own mux
  frame as soon as the socket takes it, with no limit of its own (the VP's
  MORE only reaches an optional callback).

Reported per (client, controller): wall time, results/s, median and p99
latency (ours: from each task's submit to its result; ScamperCtrl: from the
start of the submit loop, as its results do not say which call they
answer), errors, and for ours the memory per outstanding task (client RSS
growth with every task submitted and none answered yet is not measurable
with an instant backend, so it is measured separately: tasks submitted to
a VP farm that never answers).

Also per row: the CPU seconds the client, the controller and the farm
spent during the run (on a 2-core machine they compete, so a client's CPU
shows in everyone's wall time) and how long the client's submit loop took
(ScamperCtrl only queues there; its I/O starts in ``responses()``).

Run as root or not: ``python3 bench/mux_bench.py [--vps 100] [--pings 10000]``;
``--repeat N`` runs the pairings in turn N times and keeps each one's best
wall (the machine is shared), ``--baseline REV`` adds a row for our client
as of git revision REV, ``--profile FILE`` runs only ours -> ours with the
client under cProfile and prints its top functions.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
S26 = REPO.parent / "shared" / "scamper-2026"
TWISTD = [sys.executable, "-c",
          "import sys; from twisted.scripts.twistd import run; sys.argv[0]='twistd'; run()"]


def free_port() -> int:
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def die_with_parent() -> None:
    """SIGTERM this process when its parent dies (Linux): a farm or a
    controller left behind by a bench that was killed would go on running."""
    import ctypes
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


# ---------------------------------------------------------------------------
# the VP farm


def farm_main(port: int, n: int, silent: bool, procs: int = 1) -> None:
    """``n`` VPs in ``procs`` processes forked from this one after the imports
    (a hundred processes start in a second or two, not a minute): each child
    installs a reactor of its own.  The children's pids go to stdout as one
    JSON line; SIGTERM stops them all."""
    import ipaddress
    import json as _json

    from twisted.internet import defer

    from ixpscamper.commands import CommandError, parse_command
    from ixpscamper.vp.remote import RemoteFactory, RemoteVP
    from ixpscamper.vp.source import CommandRejected
    from ixpscamper.warts.records import Ping, PingReply, Timeval
    from twisted.internet.endpoints import TCP4ClientEndpoint

    def run_vps(first: int, m: int) -> None:
        from twisted.internet import reactor

        class Instant:
            def __init__(self, options):
                self.deferred = defer.Deferred()
                if silent:
                    return
                now = time.time()
                tv = Timeval(int(now), int(now % 1 * 1e6))
                rec = Ping(dst=options.dst, src=ipaddress.ip_address("127.0.0.1"), start=tv,
                           probe_count=1, ping_sent=1,
                           replies=[PingReply(addr=options.dst, probe_id=0, rtt=50, reply_ttl=64,
                                              reply_size=84, tx=tv)])
                reactor.callLater(0, self.deferred.callback, rec)

            def halt(self):
                pass

        class Backend:
            def parse(self, command):
                try:
                    return parse_command(command)
                except CommandError as e:
                    raise CommandRejected(str(e)) from None

            def start(self, options):
                return Instant(options)

        class OwnClock:
            """The reactor, as a clock of this VP's own: a VP process acts on a
            batch of input per reactor turn shared by its sources
            (ixpscamper.vp.turns); each farm VP stands for a process of its
            own, so each has a batch of its own."""

            def __init__(self, r):
                self._r = r

            def __getattr__(self, name):
                return getattr(self._r, name)

        for i in range(first, first + m):
            vp = RemoteVP(OwnClock(reactor), Backend(), monitor=f"farm{i}")
            TCP4ClientEndpoint(reactor, "127.0.0.1", port).connect(RemoteFactory(vp))
        signal.signal(signal.SIGTERM, lambda *a: reactor.callFromThread(reactor.stop))
        reactor.run()

    die_with_parent()
    procs = max(1, min(procs, n))
    kids = []
    first = 0
    for k in range(procs):
        m = n // procs + (1 if k < n % procs else 0)
        pid = os.fork()
        if pid == 0:
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                die_with_parent()
                run_vps(first, m)
            finally:
                os._exit(0)
        kids.append(pid)
        first += m
    print(_json.dumps(kids), flush=True)

    def stop(*_):
        for pid in kids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    signal.signal(signal.SIGTERM, stop)
    for pid in kids:
        # (an interrupted wait is resumed by Python itself: PEP 475)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


class Farm:
    """``n`` VPs in ``procs`` processes (VPs split evenly).

    One process per VP (the default) is what a hundred VPs are.  Fewer
    processes share reactors: a read for each VP of a process is acted on
    before any of them writes, which no VP of its own process would do, and
    a process's turn then carries the work of all its VPs."""

    def __init__(self, port: int, n: int, silent: bool = False, procs: int = 1) -> None:
        self.launcher = subprocess.Popen(
            [sys.executable, __file__, "--farm", str(port), "--vps", str(n),
             "--farm-procs", str(procs)] + (["--silent"] if silent else []),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert self.launcher.stdout is not None
        line = self.launcher.stdout.readline()
        try:
            self.pids = json.loads(line)
        except ValueError:
            raise SystemExit("the VP farm did not start") from None

    def cpu(self) -> float:
        return sum(cpu_s(pid) for pid in self.pids)

    def stop(self) -> None:
        self.launcher.terminate()
        self.launcher.wait()


def start_farm(port: int, n: int, silent: bool = False, procs: int = 1) -> Farm:
    return Farm(port, n, silent, procs)


# ---------------------------------------------------------------------------
# controllers


class Ctl:
    def __init__(self, kind: str, work: Path) -> None:
        self.kind = kind
        self.port = free_port()
        self.mux = work / f"{kind}.mux"
        self.log = open(work / f"{kind}.log", "wb")
        if kind == "ours":
            prof = os.environ.get("MUX_BENCH_CTL_PROFILE")
            # our controller under cProfile (twistd's own option), stats to that file
            prof_args = ["--profile", prof, "--profiler", "cprofile", "--savestats"] if prof else []
            argv = TWISTD + ["-n", "--pidfile=", "-l", "-", *prof_args, "ixp-remoted", "-P",
                             f"127.0.0.1:{self.port}", "-M", str(self.mux)]
        else:
            argv = [str(S26 / "bin" / "sc_remoted"), "-P", f"127.0.0.1:{self.port}",
                    "-M", str(self.mux)]
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     preexec_fn=die_with_parent)
        end = time.monotonic() + 20
        while not self.mux.exists():
            if time.monotonic() > end or self.proc.poll() is not None:
                raise SystemExit(f"{kind} controller did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ---------------------------------------------------------------------------
# clients (each in its own process: a reactor runs once per process)


OURS_CLIENT = r"""
import json, sys, time
from twisted.internet import reactor, defer
from ixpscamper.client.api import connect_mux
mux, nvps, pings = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
out = {}
@defer.inlineCallbacks
def main():
    c = yield connect_mux(reactor, mux)
    end = time.monotonic() + 30
    while len(c.vps()) < nvps and time.monotonic() < end:
        d = defer.Deferred(); reactor.callLater(0.1, d.callback, None); yield d
    vps = c.vps()
    lat, errs = [], 0
    t0 = time.monotonic()
    c0 = time.process_time()
    ds = []
    for i in range(pings):
        start = time.monotonic()
        d = c.ping(vps[i % len(vps)], f"127.0.0.{i % 250 + 1}", count=1)
        d.addCallback(lambda r, s=start: lat.append(time.monotonic() - s))
        ds.append(d)
    submitted = time.monotonic() - t0
    res = yield defer.DeferredList(ds, consumeErrors=True)
    wall = time.monotonic() - t0
    cpu = time.process_time() - c0
    errs = sum(1 for ok, _ in res if not ok)
    lat.sort()
    out.update(vps=len(vps), wall=wall, cpu=cpu, submit=submitted, errors=errs, median=lat[len(lat) // 2] if lat else None,
               p99=lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat else None)
def done(_):
    print(json.dumps(out)); reactor.stop()
def fail(f):
    print(json.dumps({"error": f.getErrorMessage()})); reactor.stop()
reactor.callWhenRunning(lambda: main().addCallbacks(done, fail))
reactor.run()
"""

CTRL_CLIENT = r"""
import json, sys, time
sys.path.insert(0, sys.argv[4])
import scamper
mux, nvps, pings = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ctrl = scamper.ScamperCtrl(mux=mux)
end = time.monotonic() + 30
while len(ctrl.vps()) < nvps and time.monotonic() < end:
    time.sleep(0.1)
    ctrl = scamper.ScamperCtrl(mux=mux)
ctrl.add_vps(ctrl.vps())
insts = ctrl.instances()
t0 = time.monotonic()
c0 = time.process_time()
starts = {}
for i in range(pings):
    t = ctrl.do_ping(f"127.0.0.{i % 250 + 1}", inst=insts[i % len(insts)], attempts=1)
    starts[i] = time.monotonic()
submitted = time.monotonic() - t0
lat, n = [], 0
first = t0
for o in ctrl.responses(timeout=120):
    n += 1
    lat.append(time.monotonic() - t0)
    if n == pings:
        break
wall = time.monotonic() - t0
cpu = time.process_time() - c0
lat.sort()
print(json.dumps(dict(vps=len(insts), wall=wall, cpu=cpu, submit=submitted, errors=pings - n + len(list(ctrl.exceptions())),
                      median=lat[len(lat) // 2] if lat else None,
                      p99=lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat else None)))
"""


def run_client(kind: str, mux: Path, nvps: int, pings: int, profile: str | None = None,
               src: Path | None = None) -> dict:
    env = dict(os.environ)
    if src is not None:
        # an older client (--baseline): its package ahead of the checkout's
        env["PYTHONPATH"] = os.pathsep.join([str(src)] + [p for p in [env.get("PYTHONPATH")] if p])
    if kind == "ours":
        code = OURS_CLIENT
        if profile:
            # the client's own CPU under cProfile, written to ``profile``
            code = ("import cProfile, atexit; _p = cProfile.Profile(); _p.enable(); "
                    f"atexit.register(lambda: (_p.disable(), _p.dump_stats({profile!r})))\n"
                    + OURS_CLIENT)
        argv = [sys.executable, "-c", code, str(mux), str(nvps), str(pings)]
    else:
        argv = [sys.executable, "-c", CTRL_CLIENT, str(mux), str(nvps), str(pings), str(S26 / "python")]
        env["PYTHONPATH"] = str(S26 / "python")
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    peak = 0
    while p.poll() is None:
        try:
            peak = max(peak, rss_kb(p.pid))
        except OSError:
            pass
        time.sleep(0.05)
        if time.monotonic() - t0 > 300:
            p.kill()
    out, err = p.communicate()
    try:
        r = json.loads(out.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        r = {"error": err.decode()[-500:]}
    r["peak_rss_kb"] = peak
    return r


def outstanding_memory(nvps: int, tasks: int, work: Path, procs: int = 1) -> float:
    """KiB per outstanding task in our client (a farm that never answers)."""
    ctl = Ctl("ours", work)
    farm = start_farm(ctl.port, nvps, silent=True, procs=procs)
    try:
        time.sleep(2 + nvps / 200 + 0.05 * procs)
        code = r"""
import sys, time, os
from twisted.internet import reactor, defer
from ixpscamper.client.api import connect_mux
def rss():
    for l in open('/proc/self/status'):
        if l.startswith('VmRSS'): return int(l.split()[1])
@defer.inlineCallbacks
def main():
    c = yield connect_mux(reactor, sys.argv[1])
    d = defer.Deferred(); reactor.callLater(1, d.callback, None); yield d
    vps = c.vps(); base = rss(); ds = []
    for i in range(int(sys.argv[2])):
        ds.append(c.ping(vps[i % len(vps)], '127.0.0.1', count=1))
    d = defer.Deferred(); reactor.callLater(2, d.callback, None); yield d
    print((rss() - base) / len(ds))
def fail(f):
    print(f.getErrorMessage(), file=sys.stderr)
reactor.callWhenRunning(lambda: main().addErrback(fail).addBoth(lambda _: reactor.stop()))
reactor.run()
"""
        r = subprocess.run([sys.executable, "-c", code, str(ctl.mux), str(tasks)],
                           capture_output=True, timeout=120)
        try:
            return float(r.stdout.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            print("memory probe failed:", r.stderr.decode()[-500:], file=sys.stderr)
            return float("nan")
    finally:
        farm.stop()
        ctl.stop()


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vps", type=int, default=100)
    ap.add_argument("--pings", type=int, default=10000)
    ap.add_argument("--farm", type=int, metavar="PORT", help=argparse.SUPPRESS)
    ap.add_argument("--farm-procs", type=int, default=0, metavar="N",
                    help="run the VP farm as N processes (default: one per VP; see Farm)")
    ap.add_argument("--silent", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--profile", metavar="FILE",
                    help="only ours -> ours, our client under cProfile (stats to FILE)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run every pairing this many times, report the best wall")
    ap.add_argument("--baseline", metavar="REV",
                    help="add a row: our client as of git revision REV, against our controller")
    a = ap.parse_args()
    if a.farm:
        farm_main(a.farm, a.vps, a.silent, a.farm_procs or a.vps)
        return 0
    a.farm_procs = max(1, min(a.farm_procs or a.vps, a.vps))
    have26 = (S26 / "bin" / "sc_remoted").exists() and (S26 / "python" / "scamper.so").exists()
    work = Path(tempfile.mkdtemp(prefix="muxbench"))
    pairs = [("ours", "ours")]
    srcs: dict = {}
    if a.baseline:
        # the old client from git, run by the same bench (its controller: today's)
        old = work / "baseline"
        old.mkdir()
        tar = subprocess.run(["git", "-C", str(REPO), "archive", a.baseline, "src"],
                             capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(old)], input=tar, check=True)
        label = f"ours@{a.baseline[:7]}"
        pairs.append((label, "ours"))
        srcs[label] = old / "src"
    if have26 and not a.profile:
        pairs += [("scamperctrl", "sc_remoted26"), ("ours", "sc_remoted26"), ("scamperctrl", "ours")]
    # the machine is shared: with --repeat the pairings take turns (a burst
    # of load elsewhere hits them alike) and each keeps its best wall time
    best: dict = {}
    walls: dict = {}      # every run's wall, for the medians
    for _ in range(max(1, a.repeat)):
        for client, ctl_kind in pairs:
            ctl = Ctl("ours" if ctl_kind == "ours" else "26", work)
            farm = start_farm(ctl.port, a.vps, procs=a.farm_procs)
            try:
                time.sleep(2 + a.vps / 200 + 0.05 * a.farm_procs)
                ctl0, farm0 = cpu_s(ctl.proc.pid), farm.cpu()
                r = run_client("ours" if client in srcs else client, ctl.mux, a.vps, a.pings,
                               profile=a.profile if client == "ours" else None,
                               src=srcs.get(client))
                # where the CPU went: on 2 shared cores the three processes
                # compete, so the client's CPU shows in everyone's wall time
                r.update(client=client, controller=ctl_kind, ctl_rss_kb=rss_kb(ctl.proc.pid),
                         ctl_cpu=cpu_s(ctl.proc.pid) - ctl0, farm_cpu=farm.cpu() - farm0)
            finally:
                farm.stop()
                ctl.stop()
            if "error" not in r:
                walls.setdefault((client, ctl_kind), []).append(r["wall"])
            old = best.get((client, ctl_kind))
            if old is None or "error" in old or ("error" not in r and r["wall"] < old["wall"]):
                best[(client, ctl_kind)] = r
    rows = [best[p] for p in pairs]
    if a.profile:
        import pstats
        print(f"ours -> ours: wall {rows[0].get('wall', float('nan')):.2f} s under cProfile")
        pstats.Stats(a.profile).sort_stats("tottime").print_stats(25)
        return 0
    mem = outstanding_memory(a.vps, a.pings, work, a.farm_procs)
    print(f"{a.vps} VPs (instant answers) in {a.farm_procs} farm process(es), {a.pings} pings "
          f"from one client, load {os.getloadavg()[0]:.2f}"
          + (f", best of {a.repeat}" if a.repeat > 1 else ""))
    print(f"{'client':12} {'controller':13} {'VPs':>4} {'wall s':>7} {'results/s':>10} "
          f"{'median ms':>10} {'p99 ms':>8} {'errors':>6} {'client MiB':>10} "
          f"{'CPU s: client':>13} {'ctl':>5} {'farm':>5} {'submit ms':>9}")
    for r in rows:
        if "error" in r:
            print(f"{r['client']:12} {r['controller']:13} failed: {r['error']}")
            continue
        # the child's stdout is a pipe we read only at its end: it sends a
        # summary, not 10,000 latencies (those filled the pipe and hung it)
        print(f"{r['client']:12} {r['controller']:13} {r['vps']:>4} {r['wall']:>7.2f} "
              f"{a.pings / r['wall']:>10.0f} {r['median'] * 1e3:>10.1f} "
              f"{r['p99'] * 1e3:>8.1f} {r['errors']:>6} {r['peak_rss_kb'] / 1024:>10.1f} "
              f"{r.get('cpu', float('nan')):>13.2f} {r['ctl_cpu']:>5.2f} {r['farm_cpu']:>5.2f} "
              f"{r.get('submit', float('nan')) * 1e3:>9.0f}")
    if a.repeat > 1:
        # best-of-N favours whichever pairing met the quietest moment; the
        # median says what a run usually gives
        print("median wall s over the runs: " + ", ".join(
            f"{c} -> {k} {statistics.median(walls[(c, k)]):.2f}" for c, k in pairs if walls.get((c, k))))
    print(f"our client: {mem:.2f} KiB per outstanding task")
    if a.json:
        Path(a.json).write_text(json.dumps({"rows": rows, "kib_per_task": mem}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
