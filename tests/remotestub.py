"""Test helpers for the controller: a stub VP (our sans-IO VPSession over a
blocking socket, in a thread, echoing every channel), a daemon launcher and
a user-socket client.  Shared by tests/test_remoted_*.py."""

from __future__ import annotations

import os
import select
import socket
import ssl
import subprocess
import sys
import threading
import time
from typing import Optional

from twisted.internet.task import Clock

from ixpscamper.remote.session import VPSession


def free_port(host: str = "127.0.0.1") -> int:
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for(pred, timeout: float = 10.0, what: str = "condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class Daemon:
    """``twistd -n ixp-remoted`` in a subprocess, log to a file."""

    def __init__(self, tmp, *args: str, env: Optional[dict] = None) -> None:
        self.sockdir = os.path.join(str(tmp), "sockets")
        os.makedirs(self.sockdir, exist_ok=True)
        self.log = os.path.join(str(tmp), "remoted.log")
        self.port = free_port()
        self.args = list(args)
        e = dict(os.environ)
        e.update(env or {})
        cmd = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
               "--pidfile=", "-n", "-l", self.log, "ixp-remoted",
               "-U", self.sockdir]
        if not any(a in ("-P", "--port") or a.startswith("--port=") for a in args):
            cmd += ["-P", f"127.0.0.1:{self.port}"]
        self.proc = subprocess.Popen(cmd + self.args, env=e, cwd=str(tmp),
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        wait_for(lambda: "listening for VPs" in self.logtext() or self.proc.poll() is not None,
                 20, "ixp-remoted to listen")
        if self.proc.poll() is not None:
            raise AssertionError(f"ixp-remoted exited: {self.proc.stdout.read()!r} {self.logtext()}")

    def logtext(self) -> str:
        try:
            with open(self.log) as f:
                return f.read()
        except OSError:
            return ""

    def sockets(self) -> list[str]:
        return sorted(os.listdir(self.sockdir))

    def stop(self, sig=None) -> int:
        if self.proc.poll() is None:
            self.proc.terminate() if sig is None else self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        return self.proc.returncode


class StubVP:
    """A VP built on VPSession: echoes channel bytes back (after ``MORE``).

    Runs in its own thread; ``cut()`` drops the TCP connection (the stub
    reconnects after ``reconnect_delay`` when ``auto_reconnect``).
    """

    def __init__(self, port: int, name: Optional[bytes] = b"stub", host: str = "127.0.0.1",
                 magic: Optional[bytes] = None, tls: Optional[ssl.SSLContext] = None,
                 server_hostname: Optional[str] = None, auto_reconnect: bool = True,
                 reconnect_delay: float = 0.3, greet: bool = True) -> None:
        self.addr = (host, port)
        self.tls = tls
        self.server_hostname = server_hostname
        self.clock = Clock()
        self.session = VPSession(self.clock, self, name=name, magic=magic)
        self.auto_reconnect = auto_reconnect
        self.reconnect_delay = reconnect_delay
        self.greet = greet
        self.sock: Optional[socket.socket] = None
        self.log: list = []
        self.closes: list[str] = []
        self.opened: list[int] = []
        self.connects = 0
        self._stop = False
        self._want_cut = False
        self._thread = threading.Thread(target=self._run, daemon=True)

    # VPEvents
    def established(self, master_id, resumed):
        self.log.append(("established", master_id, resumed))

    def rejected(self):
        self.log.append(("rejected",))

    def channel_opened(self, ch):
        self.opened.append(ch)
        if self.greet:
            self.session.send_data(ch, b"MORE\n")

    def channel_data(self, ch, data):
        self.session.send_data(ch, data)

    def channel_closed(self, ch):
        self.session.send_fin(ch)

    def _close(self, reason):
        self.closes.append(reason)
        self._drop()

    def _drop(self):
        s, self.sock = self.sock, None
        if s is not None:
            try:
                s.close()
            except OSError:
                pass
            self.session.connection_lost()

    def _connect(self) -> None:
        s = socket.create_connection(self.addr, timeout=5)
        if self.tls is not None:
            s = self.tls.wrap_socket(s, server_hostname=self.server_hostname)
            # read here, in the connecting thread: asking another thread's
            # SSL object mid-read (TLS 1.3 tickets) can see it "in init"
            self.tls_version = s.version()
            self.peer_cert = s.getpeercert()
        s.setblocking(True)
        self.sock = s
        self.connects += 1
        self.session.connection_made(s.sendall, self._close)

    def start(self) -> StubVP:
        self._connect()
        self._thread.start()
        return self

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop:
            now = time.monotonic()
            self.clock.advance(now - last)
            last = now
            if self._want_cut:
                self._want_cut = False
                self._drop()
                self._down_since = now
            if self.sock is None:
                if self.auto_reconnect and now - getattr(self, "_down_since", 0) >= self.reconnect_delay:
                    try:
                        self._connect()
                    except OSError:
                        self._down_since = now
                else:
                    time.sleep(0.02)
                continue
            s = self.sock
            try:
                pending = isinstance(s, ssl.SSLSocket) and s.pending()
                r, _, _ = select.select([s], [], [], 0 if pending else 0.05)
                if r or pending:
                    data = s.recv(65536)
                    if not data:
                        self.closes.append("EOF")
                        self._drop()
                        self._down_since = now
                        continue
                    self.session.data_received(data)
            except (OSError, ValueError) as e:
                self.closes.append(f"error {e}")
                self._drop()
                self._down_since = now

    def cut(self) -> None:
        self._want_cut = True

    def stop(self) -> None:
        self._stop = True
        if self._thread.is_alive():
            self._thread.join(5)
        self._drop()


class User:
    """A user on a VP's unix socket."""

    def __init__(self, path: str) -> None:
        # The socket file exists from bind(), a moment before listen():
        # retry a refused connect briefly (sc_remoted has the same window).
        end = time.monotonic() + 3
        while True:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                self.sock.connect(path)
                break
            except ConnectionRefusedError:
                self.sock.close()
                if time.monotonic() > end:
                    raise
                time.sleep(0.02)
        self.buf = bytearray()
        self.eof = False

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_until(self, n: int, timeout: float = 10.0) -> bytes:
        """Read until at least ``n`` bytes have arrived in total (or EOF)."""
        end = time.monotonic() + timeout
        while len(self.buf) < n and not self.eof:
            left = end - time.monotonic()
            if left <= 0:
                break
            r, _, _ = select.select([self.sock], [], [], left)
            if r:
                d = self.sock.recv(65536)
                if not d:
                    self.eof = True
                else:
                    self.buf += d
        return bytes(self.buf)

    def wait_eof(self, timeout: float = 10.0) -> bool:
        end = time.monotonic() + timeout
        while not self.eof and time.monotonic() < end:
            r, _, _ = select.select([self.sock], [], [], 0.1)
            if r:
                d = self.sock.recv(65536)
                if not d:
                    self.eof = True
                else:
                    self.buf += d
        return self.eof

    def close(self) -> None:
        self.sock.close()
