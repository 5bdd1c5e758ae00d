#!/usr/bin/env python3
"""Many VPs from one process: register, mass cut, mass resume, sample users.

One Twisted reactor holds N VP sessions, each the library's sans-IO
`ixpscamper.remote.session.VPSession` over ``reactor.connectTCP`` (a
Twisted transport's ``write`` buffers and never raises, which satisfies the
session's write contract).  Like ``tests/remotestub.py``'s StubVP, every VP
answers a new channel with ``MORE\\n`` and then echoes the channel's bytes.

The run, against one controller (``twistd -n ixp-remoted`` or the Debian
``sc_remoted``):

1. **register**: all N VPs connect at once (at most ``window`` connects
   pending at a time, see below); timed until every VP has its MASTER_ID
   *and* the controller's per-VP socket ``NAME-127.0.0.1:PORT`` exists;
2. **users before the cut**: ``sample`` VPs each get a user on their unix
   socket; once its ``MORE`` arrived, the user writes the first half of its
   ``lines`` lines (not waiting for the echoes, so some are in flight);
3. **cut**: every VP's TCP connection is aborted at once (RST);
4. **resume**: all reconnect at once (same window); timed until every VP
   has its MASTER_OK (MASTER_REJ and errors are counted, never retried) and
   a socket for it exists again (ixp-remoted keeps the registration name;
   sc_remoted re-creates it under the new source port -- both are looked
   for, and counted separately);
5. **users after the resume**: the first users write their second half;
   ``sample`` fresh users connect to the VPs' current sockets and write all
   their lines; every user must read back ``MORE\\n`` + its lines exactly
   once, in order.

The window: the controller's accept queue (ixp-remoted: listen backlog
1024; sc_remoted 20211212: 4096, capped by ``net.core.somaxconn``) drops
connections beyond its length and the client then waits for SYN
retransmits (1 s, 3 s, ...), which would measure the kernel, not the
controller.  A VP counts as pending from its connect until MASTER_ID / OK /
REJ or failure, so ``window`` below the backlog can never overflow it.
``/proc/net/netstat`` ListenOverflows / ListenDrops are reported to show it.

Run: ``python3 bench/manyvps.py --port P --sockdir DIR -n 9000 [--pid PID]``
prints one JSON object.  The driver raises its own RLIMIT_NOFILE soft limit
to the hard limit (it needs N + 2*sample + a few fds).  The reactor runs
once per process, so benchmarks and tests run this as a subprocess
(`run_driver`); `launch_controller` starts either controller with its fd
limit raised.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from typing import Any, Optional

__all__ = ["Controller", "launch_controller", "run_driver", "Driver", "free_port",
           "raise_nofile", "proc_cpu", "proc_rss_kb", "proc_alive", "listen_backlog", "fs_type",
           "default_base"]


# ---------------------------------------------------------------------------
# process helpers (no Twisted import: the bench and the test import these)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_nofile() -> int:
    """Raise this process's RLIMIT_NOFILE soft limit to the hard limit; return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def proc_cpu(pid: int) -> float:
    """utime + stime of ``pid`` in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def proc_alive(pid: int) -> bool:
    """False once ``pid`` has exited (a zombie waiting for its parent counts as exited)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def proc_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def listen_backlog(port: int) -> Optional[int]:
    """The accept-queue length of the TCP listener on ``port`` (``ss``'s
    Send-Q for a listening socket), or None if it cannot be read."""
    try:
        out = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True,
                             text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "LISTEN":
            return int(parts[2])
    return None


def fs_type(path: str) -> str:
    """The type of the filesystem holding ``path`` (longest mount-point prefix
    in /proc/mounts), e.g. ``tmpfs`` or ``ext4``; ``?`` if unknown."""
    path = os.path.realpath(path)
    best, kind = "", "?"
    try:
        with open("/proc/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) < 3:
                    continue
                mnt = parts[1].replace("\\040", " ")
                if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                    best, kind = mnt, parts[2]
    except OSError:
        pass
    return kind


def default_base() -> str:
    """Where benchmarks put controller socket directories: a tmpfs if there
    is one (as /run is on a normal host), because creating a unix socket on
    a journaling filesystem costs about 0.25-0.6 ms of kernel time (measured
    on ext4 here; 10 us on tmpfs), which would swamp the controllers' own
    work per registration."""
    for cand in ("/dev/shm", "/run"):
        if os.path.isdir(cand) and os.access(cand, os.W_OK) and fs_type(cand) == "tmpfs":
            return cand
    return "/tmp"


def netstat_counters() -> dict[str, int]:
    """TcpExt ListenOverflows / ListenDrops (this network namespace)."""
    want = ("ListenOverflows", "ListenDrops")
    try:
        with open("/proc/net/netstat") as f:
            lines = f.read().splitlines()
    except OSError:
        return {}
    for head, vals in zip(lines[::2], lines[1::2]):
        if head.startswith("TcpExt:"):
            d = dict(zip(head.split()[1:], vals.split()[1:]))
            return {k: int(d[k]) for k in want if k in d}
    return {}


def _raise_child_nofile() -> None:  # preexec_fn: runs in the child before exec
    raise_nofile()


class Controller:
    """A controller under test in a subprocess, its fd limit at the hard limit.

    ``kind``: ``"ours"`` (``twistd -n ixp-remoted``) or ``"sc_remoted"``.
    Until ixp-remoted raises its own RLIMIT_NOFILE, the raised limit comes
    from here (``preexec_fn``), so the benchmark works either way.
    """

    def __init__(self, kind: str, workdir: str, extra: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self.dir = workdir
        self.sockdir = os.path.join(workdir, "s")
        os.makedirs(self.sockdir, exist_ok=True)
        self.log = os.path.join(workdir, "log")
        self.port = free_port()
        if kind == "ours":
            cmd = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
                   "--pidfile=", "-n", "-l", self.log, "ixp-remoted",
                   "-P", f"127.0.0.1:{self.port}", "-U", self.sockdir, *extra]
        elif kind == "sc_remoted":
            cmd = ["sc_remoted", "-P", f"127.0.0.1:{self.port}", "-U", self.sockdir, *extra]
        else:
            raise ValueError(f"unknown controller kind {kind!r}")
        self.cmd = cmd
        self._logf = open(self.log + ".out", "wb")
        self.proc = subprocess.Popen(cmd, stdout=self._logf, stderr=subprocess.STDOUT,
                                     preexec_fn=_raise_child_nofile, cwd=workdir)
        self._wait_listening()
        self.nofile = self.nofile_limit()  # (soft, hard) as started

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _wait_listening(self) -> None:
        # Wait for the listener without connecting to it: a probe connection
        # would be a VP that never sends MASTER_NEW (noise in the counts).
        end = time.monotonic() + 30
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited with {self.proc.returncode}: "
                                   f"{self.output()[-2000:]}")
            if listen_backlog(self.port) is not None:
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.kind} did not listen on port {self.port} within 30 s")

    def output(self) -> str:
        out = ""
        for p in (self.log + ".out", self.log):
            try:
                with open(p, errors="replace") as f:
                    out += f.read()
            except OSError:
                pass
        return out

    def nofile_limit(self) -> Optional[tuple[int, int]]:
        try:
            with open(f"/proc/{self.pid}/limits") as f:
                for line in f:
                    if line.startswith("Max open files"):
                        p = line.split()
                        return int(p[3]), int(p[4])
        except (OSError, ValueError):
            pass
        return None

    def stop(self) -> Optional[int]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # sc_remoted cleans its sockets on SIGINT
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._logf.close()
        return self.proc.returncode


def launch_controller(kind: str, workdir: str, extra: tuple[str, ...] = ()) -> Controller:
    return Controller(kind, workdir, extra)


def run_driver(port: int, sockdir: str, n: int, *, pid: Optional[int] = None,
               window: int = 512, sample: int = 50, lines: int = 20,
               phase_timeout: float = 300.0, timeout: Optional[float] = None) -> dict:
    """Run this file as a subprocess against a controller; return its JSON result."""
    cmd = [sys.executable, os.path.abspath(__file__), "--port", str(port), "--sockdir", sockdir,
           "-n", str(n), "--window", str(window), "--sample", str(sample),
           "--lines", str(lines), "--phase-timeout", str(phase_timeout)]
    if pid is not None:
        cmd += ["--pid", str(pid)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"manyvps driver failed ({p.returncode}): {p.stderr[-3000:]}")
    return json.loads(p.stdout)


# ---------------------------------------------------------------------------
# the driver (Twisted is imported only here, when run as a program)


def _build_driver_classes():
    from twisted.internet import defer
    from twisted.internet.error import ConnectionAborted, ConnectionDone
    from twisted.internet.protocol import ClientFactory, Protocol

    from ixpscamper.remote.session import VPSession

    class VPProto(Protocol):
        """Thin adapter: one TCP connection of one VP."""

        def __init__(self, vp: "VP") -> None:
            self.vp = vp

        def connectionMade(self) -> None:
            self.transport.setTcpNoDelay(True)
            self.vp.attached(self)

        def dataReceived(self, data: bytes) -> None:
            if self.vp.proto is self:
                self.vp.session.data_received(data)

        def connectionLost(self, reason=None) -> None:
            self.vp.lost(self, reason)

    class VPFactory(ClientFactory):
        noisy = False

        def __init__(self, vp: "VP") -> None:
            self.vp = vp

        def buildProtocol(self, addr):
            return VPProto(self.vp)

        def clientConnectionFailed(self, connector, reason) -> None:
            self.vp.connect_failed(reason)

    class VP:
        """One VP: VPSession events, echo, and its phase bookkeeping."""

        def __init__(self, drv: "Driver", idx: int) -> None:
            self.drv = drv
            self.idx = idx
            self.name = f"v{idx}"
            self.session = VPSession(drv.reactor, self, name=self.name.encode())
            self.proto: Optional[VPProto] = None
            self.ports: list[int] = []        # local port of each connection
            self.pending = False              # counted in the driver's window
            self.cutting = False
            self.done_at: Optional[float] = None
            self.outcome: Optional[str] = None  # "ok" or a failure reason (this phase)

        # -- transport --
        def connect(self) -> None:
            self.pending = True
            self.done_at = None
            self.outcome = None
            self.drv.reactor.connectTCP(self.drv.host, self.drv.port, VPFactory(self),
                                        timeout=60)

        def attached(self, proto: VPProto) -> None:
            self.proto = proto
            self.ports.append(proto.transport.getHost().port)
            self.session.connection_made(proto.transport.write, self._close)

        def _close(self, reason: Optional[str]) -> None:
            # the session dropped the link (protocol error, silence, REJ)
            self.drv.note_error(f"session closed the link: {reason}")
            p = self.proto
            if p is not None:
                p.transport.loseConnection()

        def lost(self, proto: VPProto, reason) -> None:
            if self.proto is not proto:
                return
            self.proto = None
            self.session.connection_lost()
            if self.cutting:
                self.cutting = False
                self.drv.cut_done(self)
                return
            why = "connection closed" if reason is None or reason.check(ConnectionDone) \
                else f"connection lost: {reason.getErrorMessage()}"
            if reason is not None and reason.check(ConnectionAborted):
                why = "connection aborted"
            self.finish(why)
            if self.outcome != why and self.drv.phase != "end":  # lost after its phase ended
                self.drv.note_error(f"after {self.drv.phase}: {why}")

        def connect_failed(self, reason) -> None:
            self.finish(f"connect failed: {reason.getErrorMessage()}")

        def cut(self) -> bool:
            if self.proto is None:
                return False
            self.cutting = True
            self.proto.transport.abortConnection()
            return True

        def finish(self, outcome: str) -> None:
            if self.pending:
                self.pending = False
                self.outcome = outcome
                self.done_at = self.drv.reactor.seconds()
                self.drv.vp_done(self)

        # -- VPEvents --
        def established(self, master_id, resumed: bool) -> None:
            self.finish("ok")

        def rejected(self) -> None:
            self.finish("MASTER_REJ")

        def channel_opened(self, ch: int) -> None:
            self.session.send_data(ch, b"MORE\n")

        def channel_data(self, ch: int, data: bytes) -> None:
            self.session.send_data(ch, data)

        def channel_closed(self, ch: int) -> None:
            self.session.send_fin(ch)

        def socket_names(self) -> list[str]:
            """Names this VP's socket may have: the current source port's
            first (sc_remoted), then the registration port's (ixp-remoted)."""
            out = []
            for p in (self.ports[-1:] + self.ports[:1]):
                nm = f"{self.name}-127.0.0.1:{p}"
                if nm not in out:
                    out.append(nm)
            return out

    class UserProto(Protocol):
        def __init__(self, user: "User") -> None:
            self.user = user

        def connectionMade(self) -> None:
            self.user.connected(self)

        def dataReceived(self, data: bytes) -> None:
            self.user.received(data)

        def connectionLost(self, reason=None) -> None:
            self.user.closed(reason)

    class UserFactory(ClientFactory):
        noisy = False

        def __init__(self, user: "User") -> None:
            self.user = user

        def buildProtocol(self, addr):
            return UserProto(self.user)

        def clientConnectionFailed(self, connector, reason) -> None:
            self.user.failed(f"connect failed: {reason.getErrorMessage()}")

    class User:
        """A user on a VP's unix socket, writing numbered lines."""

        def __init__(self, drv: "Driver", vp: VP, tag: str, nlines: int) -> None:
            self.drv = drv
            self.vp = vp
            self.lines = [f"{tag} vp {vp.idx} line {k} ping -c 1 127.0.0.1\n".encode()
                          for k in range(nlines)]
            self.expect = b"MORE\n" + b"".join(self.lines)
            self.buf = bytearray()
            self.proto: Optional[UserProto] = None
            self.problem: Optional[str] = None
            self.eof = False
            self.path: Optional[str] = None
            self.greeted = defer.Deferred()
            self.complete = defer.Deferred()
            for d in (self.greeted, self.complete):  # a timed-out wait cancels them
                d.addErrback(lambda f: None)

        def connect(self, path: str) -> None:
            self.path = path
            self.drv.reactor.connectUNIX(path, UserFactory(self), timeout=30)

        def connected(self, proto: UserProto) -> None:
            self.proto = proto

        def send(self, lo: int, hi: int) -> None:
            if self.proto is not None:
                self.proto.transport.write(b"".join(self.lines[lo:hi]))

        def received(self, data: bytes) -> None:
            self.buf += data
            if not self.greeted.called and len(self.buf) >= 5:
                self.greeted.callback(None)
            if not self.complete.called and len(self.buf) >= len(self.expect):
                self.complete.callback(None)

        def failed(self, why: str) -> None:
            self.problem = self.problem or why
            for d in (self.greeted, self.complete):
                if not d.called:
                    d.callback(None)

        def closed(self, reason) -> None:
            self.eof = True
            self.failed("EOF from the controller")

        def verdict(self) -> Optional[str]:
            """None when every line arrived exactly once and in order."""
            got = bytes(self.buf)
            if got == self.expect:
                return None
            if got.startswith(b"MORE\n"):
                rl = got[5:].splitlines(keepends=True)
                want = set(self.lines)
                seen: dict[bytes, int] = {}
                for ln in rl:
                    seen[ln] = seen.get(ln, 0) + 1
                missing = sum(1 for ln in self.lines if ln not in seen)
                dup = sum(c - 1 for c in seen.values() if c > 1)
                alien = sum(1 for ln in seen if ln not in want)
                order = "in order" if [ln for ln in rl if ln in want] == [
                    ln for ln in self.lines if ln in seen] else "out of order"
                why = f"{missing} missing, {dup} duplicated, {alien} unexpected, {order}"
            else:
                why = f"no MORE greeting (got {got[:40]!r})"
            return f"{why}{'; ' + self.problem if self.problem else ''}"

        def close(self) -> None:
            if self.proto is not None:
                self.proto.transport.loseConnection()

    return VP, User


class Driver:
    """The phases of the module docstring over one reactor; `run` -> result dict."""

    def __init__(self, reactor, host: str, port: int, sockdir: str, n: int,
                 window: int = 512, sample: int = 50, lines: int = 20,
                 phase_timeout: float = 300.0, controller_pid: Optional[int] = None) -> None:
        self.reactor = reactor
        self.host = host
        self.port = port
        self.sockdir = sockdir
        self.n = n
        self.window = window if window > 0 else n
        self.sample = min(sample, n)
        self.lines = max(2, lines)
        self.phase_timeout = phase_timeout
        self.cpid = controller_pid
        VP, self._User = _build_driver_classes()
        self.vps = [VP(self, i) for i in range(n)]
        self.phase = "init"
        self.errors: dict[str, int] = {}
        self._queue: list = []
        self._inflight = 0
        self._left = 0
        self._phase_d = None
        self._cut_left = 0
        self._cut_d = None

    # ---- bookkeeping called by VPs ---------------------------------------

    def note_error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    def vp_done(self, vp) -> None:
        self._inflight -= 1
        self._left -= 1
        self._pump()
        if self._left == 0 and self._phase_d is not None and not self._phase_d.called:
            self._phase_d.callback(None)

    def cut_done(self, vp) -> None:
        self._cut_left -= 1
        if self._cut_left == 0 and self._cut_d is not None and not self._cut_d.called:
            self._cut_d.callback(None)

    def _pump(self) -> None:
        while self._queue and self._inflight < self.window:
            vp = self._queue.pop()
            self._inflight += 1
            vp.connect()

    # ---- helpers ----------------------------------------------------------

    def _sleep(self, secs: float):
        from twisted.internet import task
        return task.deferLater(self.reactor, secs, lambda: None)

    def _with_timeout(self, d, secs: float):
        d.addTimeout(secs, self.reactor, onTimeoutCancel=lambda *_: "timeout")
        return d

    def _ctl_sample(self) -> dict:
        if self.cpid is None:
            return {}
        try:
            if not proc_alive(self.cpid):
                return {"gone": True}
            return {"cpu": proc_cpu(self.cpid), "rss_kb": proc_rss_kb(self.cpid),
                    "fds": proc_fds(self.cpid)}
        except OSError:
            return {"gone": True}

    def _connect_all(self):
        """Connect every VP (window-bounded); Deferred fires when all are done."""
        from twisted.internet import defer
        self._phase_d = defer.Deferred()
        self._queue = list(reversed(self.vps))
        self._left = len(self.vps)
        self._inflight = 0
        self._pump()
        return self._with_timeout(self._phase_d, self.phase_timeout)

    def _present(self) -> tuple[int, int, int]:
        """Answered VPs whose socket exists: (any name, current-port name,
        first-port name)."""
        names = set(os.listdir(self.sockdir))
        anyn = cur = first = 0
        for vp in self.vps:
            if not vp.ports or vp.outcome != "ok":
                continue
            c = f"{vp.name}-127.0.0.1:{vp.ports[-1]}" in names
            f = f"{vp.name}-127.0.0.1:{vp.ports[0]}" in names
            anyn += c or f
            cur += c
            first += f
        return anyn, cur, first

    def _ok(self) -> int:
        return sum(vp.outcome == "ok" for vp in self.vps)

    def _wait_sockets(self, want: int, secs: float):
        from twisted.internet import defer

        @defer.inlineCallbacks
        def loop():
            end = self.reactor.seconds() + secs
            while True:
                got = self._present()
                if got[0] >= want or self.reactor.seconds() > end:
                    return got
                yield self._sleep(0.05)
        return loop()

    def _phase_summary(self, t0: float, t_done: float, t_sock: float, present) -> dict:
        outcomes: dict[str, int] = {}
        for vp in self.vps:
            o = vp.outcome or "no answer within the phase timeout"
            outcomes[o] = outcomes.get(o, 0) + 1
        ok = outcomes.pop("ok", 0)
        times = sorted(vp.done_at - t0 for vp in self.vps if vp.outcome == "ok")
        return {
            "ok": ok, "failures": self.n - ok, "failure_reasons": outcomes,
            "all_answered_s": t_done - t0, "all_sockets_s": t_sock - t0,
            "median_vp_s": times[len(times) // 2] if times else None,
            "sockets_present": present[0], "sockets_current_port_name": present[1],
            "sockets_first_port_name": present[2],
            # VPs that happened to reconnect from their first source port: their
            # socket counts under both names
            "same_source_port": sum(1 for vp in self.vps if vp.outcome == "ok"
                                    and len(vp.ports) > 1 and vp.ports[-1] == vp.ports[0]),
        }

    def _open_users(self, picks: list, tag: str, nlines: int):
        from twisted.internet import defer
        users = []
        for vp in picks:
            u = self._User(self, vp, tag, nlines)
            names = set(os.listdir(self.sockdir))
            path = next((os.path.join(self.sockdir, nm) for nm in vp.socket_names()
                         if nm in names), None)
            if path is None:
                u.failed("no socket for this VP in the directory")
            else:
                u.connect(path)
            users.append(u)
        d = defer.DeferredList([u.greeted for u in users])
        return self._with_timeout(d, 60).addCallback(lambda _: users)

    # ---- the run ----------------------------------------------------------

    def run(self):
        from twisted.internet import defer

        @defer.inlineCallbacks
        def go():
            res: dict[str, Any] = {"n": self.n, "window": self.window, "sample": self.sample,
                                   "lines": self.lines}
            res["listen_backlog"] = listen_backlog(self.port)
            ns0 = netstat_counters()
            cpu0 = os.times()
            c0 = self._ctl_sample()
            now = self.reactor.seconds

            # 1. register
            self.phase = "register"
            t0 = now()
            yield self._connect_all()
            t1 = now()
            present = yield self._wait_sockets(self._ok(), 60)
            t2 = now()
            c1 = self._ctl_sample()
            res["register"] = self._phase_summary(t0, t1, t2, present)
            res["register"]["registered_s"] = max(t1, t2) - t0

            # 2. users before the cut: greeted, then the first half in flight
            step = max(1, self.n // max(1, self.sample))
            picks = [self.vps[i] for i in range(0, self.n, step)][:self.sample]
            picks = [vp for vp in picks if vp.outcome == "ok"]
            half = self.lines // 2
            users1 = yield self._open_users(picks, "pre", self.lines)
            for u in users1:
                u.send(0, half)
            yield self._sleep(0)  # hand the writes to the kernel before the cut

            # 3. cut every connection at once
            self.phase = "cut"
            self._cut_d = defer.Deferred()
            self._cut_left = 0
            tc = now()
            for vp in self.vps:
                if vp.cut():
                    self._cut_left += 1
            res["cut"] = {"connections": self._cut_left}
            if self._cut_left:
                yield self._with_timeout(self._cut_d, 60)
            res["cut"]["local_s"] = now() - tc
            yield self._sleep(0.2)  # let the controller see the resets
            c2 = self._ctl_sample()

            # 4. resume
            self.phase = "resume"
            t3 = now()
            yield self._connect_all()
            t4 = now()
            present = yield self._wait_sockets(self._ok(), 60)
            t5 = now()
            c3 = self._ctl_sample()
            res["resume"] = self._phase_summary(t3, t4, t5, present)
            res["resume"]["resumed_s"] = max(t4, t5) - t3

            # 5. users: the first ones finish, fresh ones on the current sockets
            self.phase = "users"
            for u in users1:
                u.send(half, self.lines)
            fresh = [vp for vp in picks if vp.outcome == "ok"]
            users2 = yield self._open_users(fresh, "post", self.lines)
            for u in users2:
                u.send(0, self.lines)
            allu = users1 + users2
            yield self._with_timeout(defer.DeferredList([u.complete for u in allu]), 60)
            yield self._sleep(0.5)  # room for duplicates to show up
            for name, us in (("users_across_cut", users1), ("users_after_resume", users2)):
                bad = {f"{u.vp.name} ({u.path})": v for u in us if (v := u.verdict())}
                res[name] = {"users": len(us), "exactly_once": len(us) - len(bad),
                             "problems": dict(list(bad.items())[:10])}
            res["users_sampled"] = len(picks)
            for u in allu:
                u.close()

            c4 = self._ctl_sample()
            self.phase = "end"
            if self.cpid is not None:
                # a controller that died (sc_remoted 20211212 can segfault on a
                # mass disconnect): after which phase was it last seen alive?
                res["controller_alive"] = {ph: "gone" not in c for ph, c in (
                    ("start", c0), ("registered", c1), ("cut", c2), ("resumed", c3),
                    ("users_done", c4))}
            cpu1 = os.times()
            ns1 = netstat_counters()
            res["listen_overflows"] = {k: ns1[k] - ns0.get(k, 0) for k in ns1}
            res["driver_cpu_s"] = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
            res["errors"] = self.errors
            if c0 and "cpu" in c0:
                # figures from a controller that died on the way are None
                def diff(a: dict, b: dict):
                    return b["cpu"] - a["cpu"] if "cpu" in a and "cpu" in b else None
                res["controller"] = {
                    "register_cpu_s": diff(c0, c1), "resume_cpu_s": diff(c2, c3),
                    "total_cpu_s": diff(c0, c4),
                    "rss_kb_start": c0["rss_kb"], "rss_kb_registered": c1.get("rss_kb"),
                    "rss_kb_resumed": c3.get("rss_kb"), "fds_registered": c1.get("fds"),
                    "fds_resumed": c3.get("fds"),
                }
            return res

        return go()


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description="Many VPs against one controller (see the docstring).")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--sockdir", required=True, help="the controller's -U directory")
    ap.add_argument("-n", type=int, default=1000, help="VPs")
    ap.add_argument("--window", type=int, default=512,
                    help="connects pending at once (0 = all N at once)")
    ap.add_argument("--sample", type=int, default=50, help="VPs that get users")
    ap.add_argument("--lines", type=int, default=20, help="lines each user writes")
    ap.add_argument("--phase-timeout", type=float, default=300.0)
    ap.add_argument("--pid", type=int, help="the controller's pid (for CPU/RSS/fds)")
    args = ap.parse_args(argv)
    limit = raise_nofile()
    need = args.n + 2 * args.sample + 64
    if need > limit:
        print(f"manyvps: {args.n} VPs need about {need} fds, the hard limit is {limit}",
              file=sys.stderr)
        return 2

    from twisted.internet import epollreactor
    epollreactor.install()
    from twisted.internet import reactor

    drv = Driver(reactor, args.host, args.port, args.sockdir, args.n, window=args.window,
                 sample=args.sample, lines=args.lines, phase_timeout=args.phase_timeout,
                 controller_pid=args.pid)
    out: dict = {}

    def done(r):
        out["result"] = r
        reactor.stop()

    def fail(f):
        out["error"] = f.getTraceback()
        reactor.stop()

    reactor.callWhenRunning(lambda: drv.run().addCallbacks(done, fail))
    reactor.run()
    if "error" in out:
        print(out["error"], file=sys.stderr)
        return 1
    out["result"]["fd_limit"] = limit
    json.dump(out["result"], sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
