"""ixp-attach's own small event loop (it does not import Twisted, for start-up time):
timers, buffered writes larger than a socket takes at once, signals.  No root."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

from ixpscamper import attach as A

from tests.pipeline_helpers import ATTACH, records, shape
from tests.test_attach import scripted  # noqa: F401  (fixture)


def test_loop_runs_timers_in_order_and_skips_cancelled_ones():
    loop = A.Loop()
    got = []
    loop.callLater(0.03, got.append, "c")
    loop.callLater(0.01, got.append, "a")
    dropped = loop.callLater(0.02, got.append, "never")
    loop.callLater(0.02, got.append, "b")
    dropped.cancel()
    assert not dropped.active()
    loop.callLater(0.05, loop.stop)
    t0 = time.monotonic()
    loop.run()
    assert got == ["a", "b", "c"]
    assert time.monotonic() - t0 >= 0.05


def test_connection_buffers_what_the_socket_does_not_take_at_once():
    """4 MiB sent in one write arrive whole and in order while the peer reads slowly."""
    loop = A.Loop()
    ours, peer = socket.socketpair()
    ours.setblocking(False)
    sent = bytes(range(256)) * (4 * 4096)

    class Driver:
        want_close = False

        def connected(self):
            pass

        def receive(self, data):
            pass

        def closed(self):
            loop.stop()
    conn = A._Connection(loop, ours, lambda send: Driver(), lambda: None)
    conn.write(sent)
    received = bytearray()

    def reader():
        while len(received) < len(sent):
            chunk = peer.recv(65536)
            if not chunk:
                break
            received.extend(chunk)
            time.sleep(0.001)
        peer.close()  # EOF: the connection ends, the loop stops
    th = threading.Thread(target=reader)
    th.start()
    loop.callLater(30, loop.stop)
    loop.run()
    th.join(5)
    assert bytes(received) == sent


def test_cli_impatient_input_larger_than_the_socket_buffer(scripted):
    srv = scripted(attached=True)
    cmds = [f"ping 127.{i // 62500}.{i // 250 % 250}.{i % 250 + 1}" for i in range(20000)]
    res = subprocess.run(ATTACH + ["-O", "impatient", "-R", srv.path, "-i", "-", "-o", "-"],
                         input="".join(c + "\n" for c in cmds).encode(), capture_output=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert srv.received.decode().splitlines() == cmds + ["done"]
    assert shape(records(res.stdout)).count("ping") == 20000


class SilentVP:
    """A per-VP socket that accepts every command and never answers one."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(1)
        self.commands: list[str] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        conn.sendall(b"MORE\n")
        buf = b""
        n = 0
        while chunk := conn.recv(4096):
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                if line == b"done":
                    conn.sendall(b"OK\n")
                    continue
                n += 1
                self.commands.append(line.decode())
                conn.sendall(b"OK id-%d\nMORE\n" % n)


def test_cli_sigterm_and_sigint_mid_run_say_what_was_lost(tmp_path):
    for sig in (signal.SIGTERM, signal.SIGINT):
        path = str(tmp_path / f"vp-{int(sig)}.sock")
        vp = SilentVP(path)
        p = subprocess.Popen(ATTACH + ["-R", path, "-i", "-", "-o", os.devnull], stdin=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        p.stdin.write(b"ping 127.0.0.1\nping 127.0.0.2\nping 127.0.0.3\n")
        p.stdin.close()
        deadline = time.monotonic() + 20
        while len(vp.commands) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)
        p.send_signal(sig)
        err = p.stderr.read().decode()
        assert p.wait(20) == 1
        assert err == "ixp-attach: interrupted with 3 of 3 accepted commands unanswered\n", err
        vp.sock.close()


def test_cli_connect_refused_is_one_line(tmp_path):
    path = str(tmp_path / "stale.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()  # a socket file nobody listens on
    res = subprocess.run(ATTACH + ["-R", path, "-i", "-", "-o", "-"], input=b"ping 127.0.0.1\n",
                         capture_output=True, timeout=30)
    assert res.returncode == 1
    assert res.stderr.decode() == f"ixp-attach: cannot connect to {path}: Connection refused\n"


def test_attach_module_imports_neither_twisted_nor_the_control_package():
    """Start-up: Twisted is not used at all, the control package only once connected."""
    code = ("import sys, ixpscamper.attach; "
            "print(sorted(m for m in sys.modules if m.startswith(('twisted', 'ixpscamper.control'))))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30, check=True)
    assert res.stdout.decode().strip() == "[]"


def test_stdin_left_blocking_for_the_next_reader(scripted):
    """A pipe's (or terminal's) open file is shared with the shell: it must not stay O_NONBLOCK."""
    srv = scripted(attached=True)
    r, w = os.pipe()
    try:
        p = subprocess.Popen(ATTACH + ["-R", srv.path, "-i", "-", "-o", os.devnull], stdin=r,
                             stderr=subprocess.PIPE)
        os.write(w, b"ping 127.0.0.1\n")
        os.close(w)
        w = -1
        assert p.wait(30) == 0, p.stderr.read()
        assert os.get_blocking(r)
    finally:
        os.close(r)
        if w != -1:
            os.close(w)


def test_cli_prefix_must_be_printable_ascii_checked_before_connecting(tmp_path):
    for prefix in ("ping\x07 -c 1", "p\u00efng"):
        res = subprocess.run(ATTACH + ["-U", str(tmp_path / "nosuch.sock"), "-c", prefix, "-i", "-", "-o", "-"],
                             input=b"127.0.0.1\n", capture_output=True, timeout=30)
        assert res.returncode == 2
        err = res.stderr.decode()
        assert err.startswith("ixp-attach: -c: not printable ASCII: ") and err.count("\n") == 1, err
        assert "\x07" not in err
