"""The fault-injecting proxy used by the remote-protocol tests (tests/faultproxy.py)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from faultproxy import FaultProxy


@pytest.fixture
def echo():
    """A TCP echo server on 127.0.0.1; yields its port."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)
    stop = threading.Event()

    def serve(c):
        with c:
            while True:
                try:
                    d = c.recv(65536)
                except OSError:
                    return
                if not d:
                    return
                c.sendall(d)

    def accept():
        ls.settimeout(0.2)
        while not stop.is_set():
            try:
                c, _ = ls.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=serve, args=(c,), daemon=True).start()
    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield ls.getsockname()[1]
    stop.set()
    t.join(2)
    ls.close()


def _client(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    return s


def _recv_exact(s, n):
    out = b""
    while len(out) < n:
        d = s.recv(n - len(out))
        if not d:
            break
        out += d
    return out


def test_forwards_both_ways(echo):
    with FaultProxy() as p:
        port = p.start(0, "127.0.0.1", echo)
        s = _client(port)
        blob = bytes(range(256)) * 400
        s.sendall(blob)
        assert _recv_exact(s, len(blob)) == blob
        assert p.accepted == 1 and p.bytes_up == len(blob)
        s.close()


@pytest.mark.parametrize("reset", [False, True])
def test_cut_ends_the_connection(echo, reset):
    with FaultProxy() as p:
        port = p.start(0, "127.0.0.1", echo)
        s = _client(port)
        s.sendall(b"x")
        assert _recv_exact(s, 1) == b"x"
        p.cut(reset=reset)
        try:
            assert s.recv(10) == b""
        except ConnectionResetError:
            assert reset
        assert p.cuts == 1
        s2 = _client(port)  # new connections still work
        s2.sendall(b"y")
        assert _recv_exact(s2, 1) == b"y"
        s2.close()


def test_freeze_holds_bytes_until_thaw(echo):
    with FaultProxy() as p:
        port = p.start(0, "127.0.0.1", echo)
        s = _client(port)
        s.sendall(b"a")
        assert _recv_exact(s, 1) == b"a"
        p.freeze()
        time.sleep(0.1)
        s.sendall(b"held")
        s.settimeout(0.5)
        with pytest.raises(socket.timeout):
            s.recv(10)
        p.thaw()
        s.settimeout(5)
        assert _recv_exact(s, 4) == b"held"
        s.close()


def test_cut_every_and_max_cuts(echo):
    with FaultProxy() as p:
        port = p.start(0, "127.0.0.1", echo)
        p.cut_every(0.2, max_cuts=2)
        for _ in range(2):
            s = _client(port)
            s.settimeout(3)
            try:
                s.recv(10)
            except OSError:
                pass
            s.close()
        assert p.cuts == 2 and p.accepted == 2
        # after max_cuts the third connection lives on
        s = _client(port)
        time.sleep(0.4)
        s.sendall(b"z")
        assert _recv_exact(s, 1) == b"z"
        assert p.cuts == 2 and p.accepted == 3
        s.close()


def test_bytes_before_eof_are_delivered():
    """The target writes then closes (a MASTER_REJ, say): the client gets the bytes."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)

    def serve():
        c, _ = ls.accept()
        c.sendall(b"REJ" * 10000)
        c.close()
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    with FaultProxy() as p:
        port = p.start(0, "127.0.0.1", ls.getsockname()[1])
        s = _client(port)
        assert _recv_exact(s, 30000) == b"REJ" * 10000
        assert s.recv(10) == b""
        s.close()
    t.join(2)
    ls.close()
