"""Test helpers for the controller: a stub VP (our sans-IO VPSession over a
blocking socket, in a thread, echoing every channel), a daemon launcher and
a user-socket client.  Shared by tests/test_remoted_*.py."""

from __future__ import annotations

import os
import queue
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


class _Conn:
    """One TCP (or TLS) connection of a `StubVP`: the ``write`` / ``close``
    pair it hands to ``VPSession.connection_made``.

    Each connection is its own object so that a late ``close`` from the
    session can only ever close the socket it was given, never a newer one.
    """

    __slots__ = ("vp", "sock", "closed")

    def __init__(self, vp: StubVP, sock: socket.socket) -> None:
        self.vp = vp
        self.sock = sock
        self.closed = False

    def write(self, data: bytes) -> None:
        # The session's write contract (remote/session.py): a write may
        # raise.  ``sendall`` raises on a reset or closed connection, and
        # the socket's timeout bounds how long it can block on a peer that
        # stopped reading; the session then drops the link and resumes.
        self.sock.sendall(data)

    def close(self, reason: Optional[str]) -> None:
        self.vp._session_closed(self, reason)


class StubVP:
    """A VP built on VPSession: echoes channel bytes back (after ``MORE``).

    Like a real VP, it acknowledges each frame as it reads it and answers
    later: the bytes of one read are echoed together once the whole read
    has been handled (a channel's echo always precedes its FIN).  So most
    writes are ACKs, as on a real VP, whose results follow their commands
    by a task's run time.

    Runs in its own thread, and every call into the session, and every
    socket operation after ``start()``, happens on that thread: the reading
    loop, the session's ``close`` callback and ``cut()``/``stop()`` cannot
    race.  ``cut()`` drops the TCP connection (the stub reconnects after
    ``reconnect_delay`` when ``auto_reconnect``); ``call(fn)`` runs ``fn``
    on the stub's thread (to send from a test).  ``errors`` lists
    exceptions that escaped the session (its contract says none should).
    """

    def __init__(self, port: int, name: Optional[bytes] = b"stub", host: str = "127.0.0.1",
                 magic: Optional[bytes] = None, tls: Optional[ssl.SSLContext] = None,
                 server_hostname: Optional[str] = None, auto_reconnect: bool = True,
                 reconnect_delay: float = 0.3, greet: bool = True,
                 write_timeout: float = 10.0, session_factory=None) -> None:
        self.addr = (host, port)
        self.tls = tls
        self.server_hostname = server_hostname
        self.clock = Clock()
        # looked up at call time, so a test may swap the module's VPSession
        self.session = (session_factory or VPSession)(self.clock, self, name=name, magic=magic)
        self.auto_reconnect = auto_reconnect
        self.reconnect_delay = reconnect_delay
        self.write_timeout = write_timeout
        self.greet = greet
        self.sock: Optional[socket.socket] = None
        self._conn: Optional[_Conn] = None
        self.log: list = []
        self.closes: list[str] = []
        self.errors: list[str] = []
        self.opened: list[int] = []
        self._echo: dict[int, bytearray] = {}   # channel -> bytes read, not yet echoed
        self.connects = 0
        self._stop = False
        self._want_cut = False
        self._down_since = 0.0
        self._calls: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="stubvp", daemon=True)

    # VPEvents
    def established(self, master_id, resumed):
        self.log.append(("established", master_id, resumed))

    def rejected(self):
        self.log.append(("rejected",))
        self._echo.clear()  # every channel is gone

    def channel_opened(self, ch):
        self.opened.append(ch)
        if self.greet:
            self.session.send_data(ch, b"MORE\n")

    def channel_data(self, ch, data):
        self._echo.setdefault(ch, bytearray()).extend(data)

    def channel_closed(self, ch):
        self._flush_echo(ch)
        self.session.send_fin(ch)

    def _flush_echo(self, only: Optional[int] = None) -> None:
        for ch in ([only] if only is not None else list(self._echo)):
            data = self._echo.pop(ch, None)
            if data and ch in self.session.channels:
                self.session.send_data(ch, bytes(data))

    # ---- transport ---------------------------------------------------------

    def _session_closed(self, conn: _Conn, reason: Optional[str]) -> None:
        """The session dropped the link (error, silence, MASTER_REJ, failed
        write).  It has detached itself already: close only this socket and
        do not call ``connection_lost`` (a newer transport may be attached)."""
        if conn.closed:
            return
        conn.closed = True
        self.closes.append(reason or "closed by the session")
        if self._conn is conn:
            self._conn = None
            self.sock = None
            self._down_since = time.monotonic()
        try:
            conn.sock.close()
        except OSError:
            pass

    def _drop(self, why: Optional[str] = None) -> None:
        """Our side ended the transport (cut, EOF, read error, stop)."""
        conn, self._conn = self._conn, None
        self.sock = None
        self._down_since = time.monotonic()
        if conn is None:
            return
        if why is not None:
            self.closes.append(why)
        conn.closed = True
        try:
            conn.sock.close()
        except OSError:
            pass
        self.session.connection_lost()

    def _connect(self) -> None:
        s = socket.create_connection(self.addr, timeout=5)
        try:
            if self.tls is not None:
                s = self.tls.wrap_socket(s, server_hostname=self.server_hostname)
                # read here, in the connecting thread: asking another thread's
                # SSL object mid-read (TLS 1.3 tickets) can see it "in init"
                self.tls_version = s.version()
                self.peer_cert = s.getpeercert()
            s.settimeout(self.write_timeout)
        except BaseException:
            s.close()
            raise
        conn = _Conn(self, s)
        self._conn = conn
        self.sock = s
        self.connects += 1
        self.session.connection_made(conn.write, conn.close)

    def start(self) -> StubVP:
        self._connect()  # before the thread exists: nothing to race with
        self._thread.start()
        return self

    def call(self, fn) -> None:
        """Run ``fn()`` on the stub's thread (soon, not before this returns)."""
        self._calls.put(fn)

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            self._drop()

    def _loop(self) -> None:
        last = time.monotonic()
        while not self._stop:
            now = time.monotonic()
            self.clock.advance(now - last)
            last = now
            while True:
                try:
                    fn = self._calls.get_nowait()
                except queue.Empty:
                    break
                try:
                    fn()
                except Exception as e:  # noqa: BLE001 -- a test's call; keep the stub alive
                    self.errors.append(f"call {fn!r}: {e!r}")
            if self._want_cut:
                self._want_cut = False
                self._drop()
            conn = self._conn
            if conn is None:
                if self.auto_reconnect and now - self._down_since >= self.reconnect_delay:
                    try:
                        self._connect()
                    except OSError:
                        self._down_since = time.monotonic()
                else:
                    time.sleep(0.02)
                continue
            s = conn.sock
            try:
                pending = isinstance(s, ssl.SSLSocket) and s.pending()
                r, _, _ = select.select([s], [], [], 0 if pending else 0.02)
                if not (r or pending):
                    continue
                data = s.recv(65536)
            except (OSError, ValueError) as e:
                self._drop(f"error {e}")
                continue
            if not data:
                self._drop("EOF")
                continue
            try:
                self.session.data_received(data)
                # what was delivered is answered, even if the link broke
                # meanwhile (send_data holds it for the resume)
                self._flush_echo()
            except Exception as e:  # noqa: BLE001
                # The session must not raise (its write contract); if it
                # does, the link is in an unknown state: drop it.
                self.errors.append(repr(e))
                if self._conn is conn:
                    self._drop(f"session raised {e!r}")
                self._echo.clear()

    def cut(self) -> None:
        """Drop the current connection (from the stub's thread, soon)."""
        self._want_cut = True

    def stop(self) -> None:
        self._stop = True
        if self._thread.is_alive():
            self._thread.join(self.write_timeout + 5)
        elif self._thread.ident is None:  # never started
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
