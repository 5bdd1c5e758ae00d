"""Process helpers for the end-to-end pipeline tests: start the real scamper
tools and our daemons as subprocesses, find their sockets, stop them."""

from __future__ import annotations

import io
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from ixpscamper.warts import iter_records
from ixpscamper.warts.records import CycleStart, CycleStop, Ping, Trace, WartsList

TWISTD = [sys.executable, "-c", "import sys; from twisted.scripts.twistd import run; sys.argv[0]='twistd'; run()"]
ATTACH = [sys.executable, "-m", "ixpscamper.attach"]


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Procs:
    """Processes started by one test; all stopped (by pid) in ``stop_all``."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.stopped: set[int] = set()  # pids stopped on purpose

    def start(self, name: str, argv: list[str], **kw) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "wb")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             cwd=self.tmp, **kw)
        self.procs.append((name, p))
        return p

    def log(self, name: str) -> str:
        try:
            return (self.tmp / f"{name}.log").read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, p: subprocess.Popen, sig=signal.SIGTERM) -> None:
        self.stopped.add(p.pid)
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)

    def stop_all(self) -> None:
        for _, p in reversed(self.procs):
            self.stop(p)

    # -- the daemons -----------------------------------------------------------

    def sc_remoted(self, port: int, sockdir: Path) -> subprocess.Popen:
        return self.start("sc_remoted", ["sc_remoted", "-P", f"127.0.0.1:{port}", "-U", str(sockdir)])

    def our_remoted(self, port: int, sockdir: Path, zombie: int = 900) -> subprocess.Popen:
        return self.start("ixp-remoted", TWISTD + ["-n", "--pidfile=", "ixp-remoted", "-P", f"127.0.0.1:{port}",
                                                   "-U", str(sockdir), "-Z", str(zombie)])

    def our_vp(self, port: int, monitor: str, *extra: str, name: str = "ixp-vp") -> subprocess.Popen:
        return self.start(name, TWISTD + ["-n", "--pidfile=", "ixp-vp", "-R", f"127.0.0.1:{port}",
                                          "-M", monitor, "--no-tls", *extra])

    def scamper_vp(self, port: int, monitor: str) -> subprocess.Popen:
        return self.start("scamper", ["scamper", "-O", "notls-remote", "-M", monitor,
                                      "-R", f"127.0.0.1:{port}", "-p", "200"])


def wait_for(cond, timeout: float = 15.0, what: str = "condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def wait_port(port: int, timeout: float = 15.0) -> None:
    def up():
        s = socket.socket()
        try:
            s.connect(("127.0.0.1", port))
            return True
        except OSError:
            return False
        finally:
            s.close()
    wait_for(up, timeout, f"port {port}")


def vp_socket(sockdir: Path, monitor: str, timeout: float = 15.0, procs: "Procs | None" = None) -> Path:
    """The per-VP socket of ``monitor`` (``<monitor>-<addr>``) once it exists.

    With ``procs``, fails at once (showing the log) if one of them died.
    """
    def find():
        for p in sockdir.iterdir():
            if p.name.startswith(monitor + "-"):
                return p
        if procs is not None:
            for name, proc in procs.procs:
                if proc.poll() is not None and proc.pid not in procs.stopped:
                    raise AssertionError(f"{name} exited with {proc.returncode}:\n{procs.log(name)[-2000:]}")
        return None
    try:
        return wait_for(find, timeout, f"VP socket of {monitor} in {sockdir}")
    except AssertionError as e:
        if procs is None:
            raise
        logs = "\n".join(f"--- {name} ---\n{procs.log(name)[-1500:]}" for name, _ in procs.procs)
        raise AssertionError(f"{e}\n{logs}") from None


def run_attach(argv: list[str], commands: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    return subprocess.run(argv, input=commands.encode(), capture_output=True, timeout=timeout)


def records(data: bytes):
    return list(iter_records(io.BytesIO(data)))


def shape(recs) -> list[str]:
    """Record kinds in order, results sorted (tasks finish in any order)."""
    names = {WartsList: "list", CycleStart: "cycle-start", CycleStop: "cycle-stop", Ping: "ping",
             Trace: "trace"}
    kinds = [names.get(type(r), type(r).__name__) for r in recs]
    head = [k for k in kinds if k in ("list", "cycle-start")]
    tail = [k for k in kinds if k == "cycle-stop"]
    mid = sorted(k for k in kinds if k not in ("list", "cycle-start", "cycle-stop"))
    return head + mid + tail


def have(*tools: str) -> bool:
    return all(shutil.which(t) for t in tools)
