#!/usr/bin/env python3
"""Soak: exactly once and flat memory, under cuts and CPU load, for a long time.

Two configurations, each a real ``twistd ixp-vp`` behind the fault proxy
(tests/faultproxy.py), which cuts the VP's connection every 0.25-2 s at
random (half of the cuts with a FIN, half with an RST):

  ours        twistd ixp-vp  <-> proxy <-> twistd ixp-remoted
  sc_remoted  twistd ixp-vp  <-> proxy <-> Debian sc_remoted

On each VP's per-VP unix socket, ``--users`` raw clients run one user
session after another: each sends 20-200 ``ping -c 1 -U <userid>
127.0.0.1`` commands (a unique userid per command; at most ``--window``
outstanding), then ``done``, and reads until EOF.  Every ``OK id-N`` maps
the id to its userid; every result (``DATA <n> id-N``, a warts ping record)
is counted by its userid and checked against its id.  Two CPU burner
processes (``--burners``) run for the whole soak.

At the end of ``--minutes`` the cuts stop, the users finish their sessions
(at most ``--drain`` s), and the soak reports per configuration: commands
sent / accepted / refused / unanswered, results, lost (accepted, no
result), duplicated (a userid's result more than once, or a result
nobody asked for), cuts, resumes, and the RSS of the controller and the
VP (at start, after warm-up, at the end, the max).

Exit status 1 if, in any configuration: a result was lost or duplicated,
a command went unanswered, an ``id-N`` named another userid, a user session
ended early, a resume was refused (MASTER_REJ), a daemon logged a
traceback, no cut happened, or a process's RSS grew by more than the bound
between the end of the warm-up and the end of the run.  The bound is
``max(--rss-mib, --rss-pct % of the warm RSS)`` (default 16 MiB or 20 %):
after warm-up (min(60 s, a quarter of the run)) every heap is at its
working size, so a leak of a few hundred bytes per command (tens of
thousands of commands in 20 minutes) shows up as many MiB.

The two configurations run **in parallel** by default (same burners;
wall time = ``--minutes`` + drain): each VP then also competes with the
other pair for the two cores, a harsher load, and RSS is per process so
the numbers stay apart.  ``--serial`` runs them one after the other
(wall time doubles; the numbers of one are then undisturbed by the other).

Usage (as root: the VP pings with raw sockets; only 127.0.0.1 is probed):

  python3 bench/soak.py                      # 20 minutes, both, in parallel
  python3 bench/soak.py --minutes 1 --configs ours
  python3 bench/soak.py --minutes 60 --serial --keep

``run_soak()`` is the library entry point (tests/test_soak_short.py).
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional

import attrs

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ixpscamper.control.client import ControlProtocolError, Data, Err, Ok, ReplyParser  # noqa: E402
from ixpscamper.warts import WartsDecoder, WartsError  # noqa: E402
from ixpscamper.warts.records import CycleStop, Ping  # noqa: E402
from tests.cpuburn import Burners  # noqa: E402
from tests.faultproxy import FaultProxy  # noqa: E402

__all__ = ["CONFIGS", "SoakOptions", "ConfigResult", "run_soak", "summary_table", "main"]

CONFIGS = ("ours", "sc_remoted", "sc_remoted26")
MONITORS = {"ours": "soak-ours", "sc_remoted": "soak-sc", "sc_remoted26": "soak-sc26"}
#: scamper 20260420's sc_remoted (the 20211212 one segfaults within minutes
#: of cuts with users attached: seen in this soak and in bench/remoted_bench.py)
SC_REMOTED_2026 = Path(__file__).resolve().parents[2] / "shared" / "scamper-2026" / "bin" / "sc_remoted"
SUN_PATH_MAX = 107   # sockaddr_un.sun_path less its NUL
TWISTD = [sys.executable, "-c",
          "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"]
MIB = 1024


@attrs.define
class SoakOptions:
    """Everything a soak run can be told (the command line's options)."""

    minutes: float = 20.0
    configs: tuple[str, ...] = ("ours", "sc_remoted")
    parallel: bool = True
    users: int = 2
    window: int = 10
    session_min: int = 20
    session_max: int = 200
    cut_min: float = 0.25
    cut_max: float = 2.0
    burners: int = 2
    pps: int = 100
    drain: float = 120.0
    rss_mib: float = 16.0
    rss_pct: float = 20.0
    sample_every: float = 2.0
    seed: Optional[int] = None
    workdir: Optional[str] = None
    keep: bool = False
    log: object = print

    @property
    def seconds(self) -> float:
        return self.minutes * 60.0

    @property
    def warmup(self) -> float:
        return min(60.0, self.seconds / 4)


# ---------------------------------------------------------------- accounting


class Tally:
    """Every command and result of one configuration, by userid (thread-safe).

    Problems are counted by kind (``counts``) with the first few kept as
    examples (``examples``), so a soak of hours cannot grow our own memory.
    """

    KINDS = ("refused", "id mismatch", "unexpected", "early end")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._next_uid = 1
        self.sent = 0
        self.accepted: set[int] = set()
        self.unanswered = 0          # commands with no OK/ERR by their session's end
        self.results: collections.Counter[int] = collections.Counter()
        self.counts: collections.Counter[str] = collections.Counter()
        self.examples: dict[str, list[str]] = {k: [] for k in self.KINDS}
        self.sessions = 0
        self.sessions_done = 0

    def new_uid(self) -> int:
        with self.lock:
            uid = self._next_uid
            self._next_uid += 1
            self.sent += 1
            return uid

    def note(self, kind: str, text: str) -> None:
        with self.lock:
            self.counts[kind] += 1
            if len(self.examples[kind]) < 10:
                self.examples[kind].append(text)

    def lost(self) -> list[int]:
        with self.lock:
            return sorted(u for u in self.accepted if self.results[u] == 0)

    def duplicated(self) -> int:
        """Results beyond the first for a userid, plus results nobody was told about."""
        with self.lock:
            extra = sum(c - 1 for c in self.results.values() if c > 1)
            foreign = sum(1 for u in self.results if u not in self.accepted)
            return extra + foreign


class User(threading.Thread):
    """One user of a per-VP socket: sessions of ping commands, one after another."""

    def __init__(self, name: str, sockdir: Path, monitor: str, tally: Tally, opts: SoakOptions,
                 stop_sending: threading.Event, rng: random.Random) -> None:
        super().__init__(name=name, daemon=True)
        self.sockdir = sockdir
        self.monitor = monitor
        self.tally = tally
        self.opts = opts
        self.stop_sending = stop_sending
        self.abort = threading.Event()   # the drain timed out: give up now
        self.rng = rng
        self.failure: Optional[str] = None

    # -- finding the VP's socket (sc_remoted renames it on every resume) -----------

    def _socket_path(self) -> Optional[Path]:
        try:
            found = [p for p in self.sockdir.iterdir() if p.name.startswith(self.monitor + "-")]
        except OSError:
            return None
        if not found:
            return None
        def mtime(p: Path) -> float:
            try:
                return p.stat().st_mtime
            except OSError:  # unlinked since the listing
                return 0.0
        return max(found, key=mtime)

    def _connect(self) -> Optional[socket.socket]:
        while not self.stop_sending.is_set() and not self.abort.is_set():
            path = self._socket_path()
            if path is not None:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    s.connect(str(path))
                    return s
                except OSError:  # unlinked meanwhile (VP away), or not listening yet
                    s.close()
            time.sleep(0.05)
        return None

    def run(self) -> None:
        try:
            while not self.stop_sending.is_set() and not self.abort.is_set():
                s = self._connect()
                if s is None:
                    break
                try:
                    self._session(s)
                finally:
                    s.close()
        except Exception as e:  # noqa: BLE001 -- a soak bug must show, not hang the run
            self.failure = f"{self.name}: {type(e).__name__}: {e}"
            self.tally.note("early end", self.failure)

    def _session(self, s: socket.socket) -> None:
        t = self.tally
        with t.lock:
            t.sessions += 1
        todo = self.rng.randint(self.opts.session_min, self.opts.session_max)
        parser = ReplyParser("warts")
        warts = WartsDecoder(skip_unknown=True)
        awaiting: collections.deque = collections.deque()  # uid per command, None for done
        id2uid: dict[int, int] = {}
        outstanding: set[int] = set()   # accepted, no result yet
        sent_done = done_ok = cycle_stop = False
        out = bytearray()
        s.setblocking(False)
        last_rx = time.monotonic()
        while True:
            if self.abort.is_set():
                t.note("early end", f"{self.name}: gave up at the drain deadline "
                                     f"({len(outstanding)} results outstanding)")
                break
            # send while the window has room
            while (not sent_done and todo > 0 and not self.stop_sending.is_set()
                   and len(awaiting) + len(outstanding) < self.opts.window):
                uid = t.new_uid()
                awaiting.append(uid)
                out += b"ping -c 1 -U %d 127.0.0.1\n" % uid
                todo -= 1
            if (not sent_done and not awaiting and not outstanding
                    and (todo == 0 or self.stop_sending.is_set())):
                awaiting.append(None)
                out += b"done\n"
                sent_done = True
            r, w, _ = select.select([s], [s] if out else [], [], 0.5)
            if w:
                try:
                    n = s.send(out)
                    del out[:n]
                except BlockingIOError:
                    pass
                except OSError as e:
                    t.note("early end", f"{self.name}: send failed: {e}")
                    break
            if not r:
                if time.monotonic() - last_rx > max(120.0, self.opts.drain):
                    t.note("early end", f"{self.name}: nothing received for "
                                         f"{time.monotonic() - last_rx:.0f} s")
                    break
                continue
            try:
                data = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError as e:
                t.note("early end", f"{self.name}: recv failed: {e}")
                break
            last_rx = time.monotonic()
            if not data:
                if not (done_ok and cycle_stop):
                    t.note("early end", f"{self.name}: EOF before the session's end "
                                         f"(done ok {done_ok}, cycle-stop {cycle_stop}, "
                                         f"{len(outstanding)} results outstanding)")
                else:
                    with t.lock:
                        t.sessions_done += 1
                break
            try:
                replies = parser.feed(data)
            except ControlProtocolError as e:
                t.note("unexpected", f"{self.name}: bad reply stream: {e}")
                break
            for rep in replies:
                if isinstance(rep, Data):
                    try:
                        recs = warts.feed(rep.payload)
                    except WartsError as e:
                        t.note("unexpected", f"{self.name}: bad warts record: {e}")
                        continue
                    for rec in recs:
                        if isinstance(rec, Ping):
                            uid = rec.userid
                            with t.lock:
                                t.results[uid] += 1
                            outstanding.discard(uid)
                            want = id2uid.get(rep.task_id) if rep.task_id is not None else uid
                            if want != uid:
                                t.note("id mismatch", f"{self.name}: id-{rep.task_id} is userid "
                                                      f"{want}, result has {uid}")
                        elif isinstance(rec, CycleStop):
                            cycle_stop = True
                elif isinstance(rep, Ok):
                    if not awaiting:
                        t.note("unexpected", f"{self.name}: OK {rep.text!r} answers nothing")
                        continue
                    uid = awaiting.popleft()
                    if uid is None:
                        done_ok = True
                    elif rep.task_id is None:
                        t.note("unexpected", f"{self.name}: {rep.text!r} for a command")
                    else:
                        if rep.task_id in id2uid:
                            t.note("unexpected", f"{self.name}: id-{rep.task_id} given twice")
                        id2uid[rep.task_id] = uid
                        with t.lock:
                            t.accepted.add(uid)
                            got = t.results[uid]
                        if not got:  # a result may overtake nothing, but be safe
                            outstanding.add(uid)
                elif isinstance(rep, Err):
                    if not awaiting:
                        t.note("unexpected", f"{self.name}: ERR {rep.message!r} answers nothing")
                        continue
                    uid = awaiting.popleft()
                    t.note("refused", f"{'done' if uid is None else uid}: ERR {rep.message}")
                # MORE: flow control by our window instead; nothing to do
        with t.lock:
            t.unanswered += sum(1 for u in awaiting if u is not None)


# ------------------------------------------------------------------ processes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid: int) -> Optional[int]:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class Proc:
    """A child process with its log file; stopped by its own pid."""

    def __init__(self, name: str, argv: list[str], logdir: Path, stop_signal=signal.SIGTERM) -> None:
        self.name = name
        self.logpath = logdir / f"{name}.log"
        self.stop_signal = stop_signal
        self._log = open(self.logpath, "wb")
        self.popen = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, cwd=logdir)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def logtext(self) -> str:
        try:
            return self.logpath.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(self.stop_signal)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        self._log.close()


@attrs.define
class RssSeries:
    samples: list[tuple[float, int]] = attrs.Factory(list)

    def add(self, t: float, kib: Optional[int]) -> None:
        if kib is not None:
            self.samples.append((t, kib))

    def at(self, t: float) -> Optional[int]:
        """The first sample at or after ``t``."""
        for ts, k in self.samples:
            if ts >= t:
                return k
        return self.samples[-1][1] if self.samples else None

    @property
    def start(self) -> Optional[int]:
        return self.samples[0][1] if self.samples else None

    @property
    def end(self) -> Optional[int]:
        return self.samples[-1][1] if self.samples else None

    @property
    def max(self) -> Optional[int]:
        return max(k for _, k in self.samples) if self.samples else None

    def growth_since(self, t: float) -> Optional[int]:
        """End minus the sample at ``t``: a flat process shows about 0."""
        at = self.at(t)
        return None if at is None or self.end is None else self.end - at


@attrs.define
class ConfigResult:
    """What one configuration did; ``problems`` empty means it passed."""

    name: str
    seconds: float = 0.0
    sent: int = 0
    accepted: int = 0
    refused: int = 0
    unanswered: int = 0
    results: int = 0
    lost: int = 0
    duplicated: int = 0
    id_mismatch: int = 0
    sessions: int = 0
    sessions_done: int = 0
    early_ends: int = 0
    cuts: int = 0
    resets: int = 0
    resumes: int = 0
    rejects: int = 0
    rss: dict[str, dict[str, Optional[int]]] = attrs.Factory(dict)
    problems: list[str] = attrs.Factory(list)
    samples: list[str] = attrs.Factory(list)   # examples behind the problems
    workdir: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems


class Soak:
    """One configuration: controller, proxy, VP, users, RSS sampler."""

    def __init__(self, name: str, opts: SoakOptions, workdir: Path, rng: random.Random) -> None:
        if name not in CONFIGS:
            raise ValueError(f"unknown configuration {name!r} (choose from {', '.join(CONFIGS)})")
        self.name = name
        self.opts = opts
        self.dir = workdir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.sockdir = self.dir / "s"
        self.sockdir.mkdir(exist_ok=True)
        self.rng = rng
        self.monitor = MONITORS[name]
        longest = len(str(self.sockdir)) + len(f"/{self.monitor}-127.0.0.1:65535")
        if longest > SUN_PATH_MAX:
            # both controllers refuse a VP whose socket path does not fit
            raise ValueError(f"the VP sockets under {self.sockdir} would be {longest} bytes long, "
                             f"more than a unix socket path holds ({SUN_PATH_MAX}): use a shorter --workdir")
        self.tally = Tally()
        self.stop_sending = threading.Event()
        self.cancelled = threading.Event()   # Ctrl-C / SIGTERM: stop now, clean up
        self.users: list[User] = []
        self.procs: list[Proc] = []
        self.proxy: Optional[FaultProxy] = None
        self.controller: Optional[Proc] = None
        self.vp: Optional[Proc] = None
        self.rss = {"controller": RssSeries(), "vp": RssSeries()}
        self._sampling = threading.Event()
        self._sampler: Optional[threading.Thread] = None
        self.t0 = 0.0

    def _start(self, name: str, argv: list[str], sig=signal.SIGTERM) -> Proc:
        p = Proc(name, argv, self.dir, sig)
        self.procs.append(p)
        return p

    def start(self) -> None:
        port = _free_port()
        if self.name == "ours":
            self.controller = self._start("ixp-remoted", TWISTD + [
                "-n", "--pidfile=", "ixp-remoted", "-P", f"127.0.0.1:{port}",
                "-U", str(self.sockdir), "-Z", "900"])
        else:
            # SIGINT: 20211212 sc_remoted leaves its sockets behind on SIGTERM
            binary = str(SC_REMOTED_2026) if self.name == "sc_remoted26" else "sc_remoted"
            self.controller = self._start(self.name, [
                binary, "-P", f"127.0.0.1:{port}", "-U", str(self.sockdir), "-Z", "900"],
                signal.SIGINT)
        self._wait(lambda: self._listening(port), 30, f"{self.controller.name} to listen")
        self.proxy = FaultProxy()
        pport = self.proxy.start(0, "127.0.0.1", port)
        self.vp = self._start("ixp-vp", TWISTD + [
            "-n", "--pidfile=", "ixp-vp", "-R", f"127.0.0.1:{pport}", "-M", self.monitor,
            "--no-tls", "--pps", str(self.opts.pps)])
        self._wait(lambda: any(p.name.startswith(self.monitor + "-") for p in self.sockdir.iterdir()),
                   30, "the VP to register")
        self.t0 = time.monotonic()
        self._sampler = threading.Thread(target=self._sample, name=f"rss-{self.name}", daemon=True)
        self._sampler.start()
        self.proxy.cut_every(self.opts.cut_min, upto=self.opts.cut_max, reset="mixed",
                             seed=self.rng.randrange(1 << 30))
        for i in range(self.opts.users):
            u = User(f"{self.name}/user{i}", self.sockdir, self.monitor, self.tally, self.opts,
                     self.stop_sending, random.Random(self.rng.randrange(1 << 30)))
            self.users.append(u)
            u.start()

    def _listening(self, port: int) -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    def _wait(self, cond, timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for p in self.procs:
                if not p.alive():
                    raise RuntimeError(f"{p.name} exited with {p.popen.returncode}: "
                                       f"{p.logtext()[-1500:]}")
            if cond():
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name}: timed out waiting for {what}")

    def _sample(self) -> None:
        # also to rss.csv, for a look at the curve (flat, steps, or a slope)
        with open(self.dir / "rss.csv", "w") as f:
            f.write("seconds,commands,controller_kib,vp_kib\n")
            while not self._sampling.is_set():
                t = time.monotonic() - self.t0
                c, v = rss_kib(self.controller.pid), rss_kib(self.vp.pid)
                self.rss["controller"].add(t, c)
                self.rss["vp"].add(t, v)
                f.write(f"{t:.1f},{self.tally.sent},{c},{v}\n")
                f.flush()
                self._sampling.wait(self.opts.sample_every)

    def run(self) -> ConfigResult:
        """Start, soak for ``opts.minutes``, drain, stop; never raises for a failed soak."""
        res = ConfigResult(self.name, workdir=str(self.dir))
        try:
            self.start()
            self._soak(res)
        except Exception as e:  # noqa: BLE001 -- reported as a problem of this configuration
            res.problems.append(f"did not run to the end: {type(e).__name__}: {e}")
        finally:
            self.stop()
        self._account(res)
        return res

    def _soak(self, res: ConfigResult) -> None:
        log = self.opts.log
        end = self.t0 + self.opts.seconds
        next_note = self.t0 + 60
        while time.monotonic() < end:
            if self.cancelled.wait(min(1.0, max(0.0, end - time.monotonic()))):
                raise RuntimeError("cancelled")
            for p in (self.controller, self.vp):
                if not p.alive():
                    raise RuntimeError(f"{p.name} died (exit {p.popen.returncode})")
            if time.monotonic() >= next_note:
                next_note += 60
                t = self.tally
                log(f"soak {self.name}: {(time.monotonic() - self.t0) / 60:.0f} min, "
                    f"{t.sent} commands, {sum(t.results.values())} results, {self.proxy.cuts} cuts")
        # the end: no more cuts, no new commands; every session finishes
        self.proxy.cut_every(None)
        self.stop_sending.set()
        deadline = time.monotonic() + self.opts.drain
        for u in self.users:
            while u.is_alive() and time.monotonic() < deadline and not self.cancelled.is_set():
                u.join(min(1.0, max(0.0, deadline - time.monotonic())))
        stuck = [u for u in self.users if u.is_alive()]
        if stuck:
            res.problems.append(f"{len(stuck)} user(s) still waiting after the {self.opts.drain:g} s drain")
            for u in stuck:
                u.abort.set()
            for u in stuck:
                u.join(5)
        res.seconds = time.monotonic() - self.t0

    def stop(self) -> None:
        self.stop_sending.set()
        for u in self.users:
            u.abort.set()
        self._sampling.set()
        if self._sampler is not None:
            self._sampler.join(5)
        if self.proxy is not None:
            self.proxy.stop()
        for p in reversed(self.procs):
            p.stop()

    def _account(self, res: ConfigResult) -> None:
        t = self.tally
        lost = t.lost()
        res.sent, res.accepted, res.refused = t.sent, len(t.accepted), t.counts["refused"]
        res.unanswered = t.unanswered
        res.results = sum(t.results.values())
        res.lost = len(lost)
        res.duplicated = t.duplicated()
        res.id_mismatch = t.counts["id mismatch"]
        res.sessions, res.sessions_done = t.sessions, t.sessions_done
        res.early_ends = t.counts["early end"]
        if self.proxy is not None:
            res.cuts, res.resets = self.proxy.cuts, self.proxy.resets
        vplog = self.vp.logtext() if self.vp else ""
        res.resumes = vplog.count("resumed the session")
        res.rejects = vplog.count("rejected the resume")
        if res.lost:
            res.problems.append(f"{res.lost} result(s) lost")
            res.samples.append(f"lost userids (first 10): {lost[:10]}")
        if res.duplicated:
            res.problems.append(f"{res.duplicated} result(s) duplicated or unasked for")
        if res.unanswered:
            res.problems.append(f"{res.unanswered} command(s) got no OK/ERR")
        for kind in Tally.KINDS:
            if t.counts[kind]:
                if kind != "refused":  # an ERR is the VP's right: reported, not a failure
                    res.problems.append(f"{t.counts[kind]} {kind}(s)")
                res.samples += [f"{kind}: {x}" for x in t.examples[kind][:5]]
        if res.rejects:
            res.problems.append(f"{res.rejects} resume(s) refused (MASTER_REJ): channels were lost")
        if res.sent and res.cuts == 0:
            res.problems.append("no cut happened: nothing was tested")
        if res.sent == 0:
            res.problems.append("no command was sent")
        for p in self.procs:
            if "Traceback" in p.logtext():
                res.problems.append(f"{p.name} logged a traceback (see {p.logpath})")
        warm_t = self.opts.warmup
        for key, series in self.rss.items():
            warm = series.at(warm_t)
            res.rss[key] = {"start": series.start, "warm": warm, "end": series.end, "max": series.max,
                            "2nd half": series.growth_since(res.seconds / 2)}
            if warm is not None and series.end is not None:
                bound = max(self.opts.rss_mib * MIB, warm * self.opts.rss_pct / 100)
                if series.end - warm > bound:
                    res.problems.append(
                        f"{key} RSS grew {(series.end - warm) / MIB:.1f} MiB after warm-up "
                        f"(bound {bound / MIB:.1f} MiB)")


# ---------------------------------------------------------------- orchestration


def _preflight(opts: SoakOptions) -> list[str]:
    problems = []
    if os.geteuid() != 0:
        problems.append("needs root (the VP pings 127.0.0.1 with raw sockets)")
    if "sc_remoted26" in opts.configs and not SC_REMOTED_2026.exists():
        problems.append(f"{SC_REMOTED_2026} is absent, drop sc_remoted26 from --configs")
    if "sc_remoted" in opts.configs and not shutil.which("sc_remoted"):
        problems.append("sc_remoted not installed (apt-get install scamper), or drop it from --configs")
    for c in opts.configs:
        if c not in CONFIGS:
            problems.append(f"unknown configuration {c!r} (choose from {', '.join(CONFIGS)})")
    if opts.minutes <= 0 or opts.users < 1 or opts.window < 1:
        problems.append("--minutes, --users and --window must be positive")
    if not 0 < opts.cut_min <= opts.cut_max:
        problems.append("need 0 < --cut-min <= --cut-max")
    if not 1 <= opts.session_min <= opts.session_max:
        problems.append("need 1 <= session min <= session max")
    return problems


def run_soak(opts: SoakOptions) -> list[ConfigResult]:
    """Run the configurations (in parallel or one after the other); see the module doc.

    Raises ValueError for options that cannot work (not root, no sc_remoted ...).
    """
    problems = _preflight(opts)
    if problems:
        raise ValueError("; ".join(problems))
    seed = opts.seed if opts.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    workdir = Path(opts.workdir or tempfile.mkdtemp(prefix="ixp-soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    opts.log(f"soak: {opts.minutes:g} min per configuration, {', '.join(opts.configs)}, "
             f"{'in parallel' if opts.parallel else 'one after the other'}, seed {seed}, in {workdir}")
    try:
        soaks = [Soak(c, opts, workdir, random.Random(rng.randrange(1 << 30))) for c in opts.configs]
    except ValueError:
        if opts.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
        raise
    rounds = 1 if opts.parallel else len(soaks)
    # bounded even if we are killed: each burner ends by itself after this
    burn = rounds * (opts.seconds + opts.drain + 120)
    results: list[ConfigResult] = []
    out: dict[str, ConfigResult] = {}
    with Burners(opts.burners, seconds=burn):
        try:
            if opts.parallel:
                threads = [threading.Thread(target=lambda s=s: out.__setitem__(s.name, s.run()),
                                            name=f"soak-{s.name}") for s in soaks]
                for th in threads:
                    th.start()
                for th in threads:
                    while th.is_alive():
                        th.join(1.0)
            else:
                for s in soaks:
                    out[s.name] = s.run()
        except BaseException:
            # Ctrl-C or SIGTERM: every configuration stops and stops its processes
            for s in soaks:
                s.cancelled.set()
            if opts.parallel:
                for th in threads:
                    th.join(60)
            raise
    results = [out[s.name] for s in soaks]
    if all(r.ok for r in results) and not opts.keep and opts.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def _mib(kib: Optional[int]) -> str:
    return "-" if kib is None else f"{kib / MIB:.1f}"


def summary_table(results: list[ConfigResult]) -> str:
    """The per-configuration summary, one column per configuration."""
    rows = [
        ("minutes", lambda r: f"{r.seconds / 60:.1f}"),
        ("commands sent", lambda r: str(r.sent)),
        ("  accepted (OK id-N)", lambda r: str(r.accepted)),
        ("  refused (ERR)", lambda r: str(r.refused)),
        ("  unanswered", lambda r: str(r.unanswered)),
        ("results", lambda r: str(r.results)),
        ("  lost", lambda r: str(r.lost)),
        ("  duplicated", lambda r: str(r.duplicated)),
        ("  id-N mismatches", lambda r: str(r.id_mismatch)),
        ("user sessions (done)", lambda r: f"{r.sessions} ({r.sessions_done})"),
        ("  ended early", lambda r: str(r.early_ends)),
        ("cuts (with RST)", lambda r: f"{r.cuts} ({r.resets})"),
        ("VP resumes", lambda r: str(r.resumes)),
        ("resumes refused", lambda r: str(r.rejects)),
    ]
    for who in ("controller", "vp"):
        for k in ("start", "warm", "end", "max", "2nd half"):
            label = f"RSS {who} {k} MiB" if k != "2nd half" else f"RSS {who} growth, 2nd half MiB"
            rows.append((label, lambda r, w=who, k=k: _mib(r.rss.get(w, {}).get(k))))
    rows.append(("verdict", lambda r: "ok" if r.ok else "FAIL"))
    head = ["", *[r.name for r in results]]
    body = [[label, *[fn(r) for r in results]] for label, fn in rows]
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
    fmt = lambda row: "  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i])  # noqa: E731
                                for i, c in enumerate(row))
    lines = [fmt(head), "  ".join("-" * w for w in widths), *[fmt(r) for r in body]]
    for r in results:
        for p in r.problems:
            lines.append(f"{r.name}: {p}")
        for s in r.samples[:10]:
            lines.append(f"{r.name}:   {s}")
        if not r.ok:
            lines.append(f"{r.name}: logs in {r.workdir}")
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="soak.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=20.0, help="per configuration (default 20)")
    ap.add_argument("--configs", default="ours,sc_remoted",
                    help=f"comma-separated, from {', '.join(CONFIGS)} (default ours,sc_remoted)")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--parallel", dest="parallel", action="store_true", default=True,
                      help="run the configurations at the same time (default)")
    mode.add_argument("--serial", dest="parallel", action="store_false",
                      help="run them one after the other")
    ap.add_argument("--users", type=int, default=2, help="concurrent users per VP (default 2)")
    ap.add_argument("--window", type=int, default=10, help="outstanding commands per user (default 10)")
    ap.add_argument("--session", default="20:200", help="commands per user session, MIN:MAX")
    ap.add_argument("--cut-min", type=float, default=0.25, help="shortest connection life, s")
    ap.add_argument("--cut-max", type=float, default=2.0, help="longest connection life, s")
    ap.add_argument("--burners", type=int, default=2, help="CPU burner processes (default 2)")
    ap.add_argument("--pps", type=int, default=100, help="the VPs' probe rate (default 100)")
    ap.add_argument("--drain", type=float, default=120.0, help="seconds allowed to finish at the end")
    ap.add_argument("--rss-mib", type=float, default=16.0, help="RSS growth bound, MiB (default 16)")
    ap.add_argument("--rss-pct", type=float, default=20.0, help="... or %% of the warm RSS if larger")
    ap.add_argument("--seed", type=int, default=None, help="repeat a run's cut and session draws")
    ap.add_argument("--workdir", default=None, help="keep logs here (default: a temp dir, removed if ok)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir even if all went well")
    a = ap.parse_args(argv)
    try:
        lo, hi = (int(x) for x in a.session.split(":"))
    except ValueError:
        print(f"soak.py: --session must be MIN:MAX, not {a.session!r}", file=sys.stderr)
        return 2
    opts = SoakOptions(minutes=a.minutes, configs=tuple(c for c in a.configs.split(",") if c),
                       parallel=a.parallel, users=a.users, window=a.window, session_min=lo,
                       session_max=hi, cut_min=a.cut_min, cut_max=a.cut_max, burners=a.burners,
                       pps=a.pps, drain=a.drain, rss_mib=a.rss_mib, rss_pct=a.rss_pct, seed=a.seed,
                       workdir=a.workdir, keep=a.keep,
                       log=lambda m: print(m, file=sys.stderr, flush=True))
    def terminated(signum, frame):
        raise SystemExit(128 + signum)
    old = signal.signal(signal.SIGTERM, terminated)  # clean up children as for Ctrl-C
    try:
        results = run_soak(opts)
    except ValueError as e:
        print(f"soak.py: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("soak.py: interrupted; processes stopped", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, old)
    print(summary_table(results))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
