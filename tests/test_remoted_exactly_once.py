"""Exactly once, under cuts and load (the reliability issue's reproduction).

A user sends 3,000 lines through ``twistd ixp-remoted`` to the stub VP
(tests/remotestub.py: the library's VPSession over a blocking socket, which
echoes every line), while the fault proxy cuts the VP's connection every
0.25 s and two CPU burners compete for the machine.  Every line must come
back exactly once and in order.

Before the fix the session advanced ``rcv_nxt`` and wrote the ACK before
the frame reached the owner; the stub's write is ``socket.sendall``, which
raises on a reset connection, so a frame could count as received and never
be delivered: runs lost 14 and 56 lines.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time

import pytest

from cpuburn import Burners
from faultproxy import FaultProxy
from remotestub import Daemon, StubVP, User, wait_for

LINES = 3000
CUT_EVERY = 0.25


def line(i: int) -> bytes:
    # varying lengths, so frames end at varying places inside lines
    return b"line %05d %s\n" % (i, b"x" * (i * 37 % 180))


class Reader(threading.Thread):
    """Reads a user's socket into ``buf`` until ``want`` bytes, EOF or stop."""

    def __init__(self, sock: socket.socket, want: int) -> None:
        super().__init__(name="user-reader", daemon=True)
        self.sock, self.want = sock, want
        self.buf = bytearray()
        self.eof = False
        self.stopping = False

    def run(self) -> None:
        self.sock.settimeout(0.2)
        while len(self.buf) < self.want and not self.stopping:
            try:
                d = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            if not d:
                self.eof = True
                break
            self.buf += d


def check_stream(data: bytes, n: int) -> tuple[list[int], list[int], bool, list[bytes]]:
    """(lost, duplicated, in order, unexpected lines) of the echoed stream."""
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the stream ends in a newline
    junk = [tail] if tail else []
    seen: list[int] = []
    for ln in lines:
        if ln == b"MORE":
            continue
        m = re.fullmatch(rb"line (\d{5}) x*", ln)
        if m is None or line(int(m.group(1))) != ln + b"\n":
            junk.append(ln[:60])
            continue
        seen.append(int(m.group(1)))
    counts: dict[int, int] = {}
    for i in seen:
        counts[i] = counts.get(i, 0) + 1
    lost = [i for i in range(n) if i not in counts]
    dup = sorted(i for i, c in counts.items() if c > 1)
    in_order = seen == sorted(seen) and not dup
    return lost, dup, in_order, junk


def test_stub_close_from_an_old_connection_leaves_the_new_one_alone():
    """The session's ``close`` for a transport it has left (a late callback)
    must not close the stub's newer connection."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(4)
    vp = StubVP(ls.getsockname()[1], auto_reconnect=False)
    try:
        vp._connect()
        old = vp._conn
        vp._drop("test")
        vp._connect()
        new = vp._conn
        old.close("late close of the old transport")
        assert vp._conn is new and vp.sock is new.sock and new.sock.fileno() != -1
        assert vp.session.state == vp.session.NEW_SENT  # still talking on the new one
        new.close("now this one")
        assert vp._conn is None and new.sock.fileno() == -1
    finally:
        vp.stop()
        ls.close()


def test_stub_call_sends_from_the_stub_thread(tmp_path):
    d = Daemon(tmp_path)
    vp = StubVP(d.port).start()
    try:
        name = wait_for(lambda: [n for n in d.sockets() if n.startswith("stub-")], 20, "VP socket")[0]
        u = User(os.path.join(d.sockdir, name))
        assert u.read_until(5) == b"MORE\n"
        ch = vp.opened[0]
        vp.call(lambda: vp.session.send_data(ch, b"from the stub\n"))
        assert u.read_until(19) == b"MORE\nfrom the stub\n"
        vp.call(lambda: vp.session.send_fin(ch))
        assert u.wait_eof(5)
        assert vp.errors == []
    finally:
        vp.stop()
        d.stop()


@pytest.mark.slow
def test_3000_lines_exactly_once_under_cuts_and_load(tmp_path):
    d = Daemon(tmp_path, "-Z", "120")
    proxy = FaultProxy()
    pport = proxy.start(0, "127.0.0.1", d.port)
    vp = None
    user = None
    reader = None
    burners = Burners(2, seconds=55)
    try:
        vp = StubVP(pport, reconnect_delay=0.05).start()
        name = wait_for(lambda: [n for n in d.sockets() if n.startswith("stub-")], 20, "VP socket")[0]
        user = socket.socket(socket.AF_UNIX)
        wait_for(lambda: user.connect_ex(os.path.join(d.sockdir, name)) == 0, 5, "user connect")
        payload = [line(i) for i in range(LINES)]
        want = len(b"MORE\n") + sum(map(len, payload))
        reader = Reader(user, want)
        reader.start()
        burners.start()
        # each cut is due 0.25 s into a connection and lands right after the proxy
        # forwarded bytes to the VP: frames in flight, ACKs about to be written
        proxy.cut_every(CUT_EVERY, after="down")
        t0 = time.monotonic()
        # ~15 s of sending in small bursts: many frames, each cut lands
        # while frames and ACKs are in flight in both directions
        for i in range(0, LINES, 10):
            user.sendall(b"".join(payload[i:i + 10]))
            time.sleep(0.05)
        reader.join(timeout=max(5.0, 50 - (time.monotonic() - t0)))
        reader.stopping = True
        reader.join(2)
        proxy.cut_every(None)
        cuts = proxy.cuts
        resumes = sum(1 for ev in vp.log if ev[0] == "established" and ev[2])  # MASTER_OK
        news = sum(1 for ev in vp.log if ev[0] == "established" and not ev[2])
        lost, dup, in_order, junk = check_stream(bytes(reader.buf), LINES)
        summary = (f"{len(lost)} lost (first {lost[:10]}), {len(dup)} duplicated (first {dup[:10]}), "
                   f"in order: {in_order}, junk {junk[:3]}, {cuts} cuts, {resumes} resumes, "
                   f"{len(reader.buf)}/{want} bytes, stub errors {vp.errors[:3]}")
        print(summary)
        assert bytes(reader.buf).startswith(b"MORE\n"), summary
        assert not lost and not dup and in_order and not junk, summary
        assert bytes(reader.buf) == b"MORE\n" + b"".join(payload), summary
        # the test is only worth something if the cuts really happened
        assert cuts >= 10 and resumes >= 10, summary
        assert news == 1 and ("rejected",) not in vp.log, summary  # one session throughout
        assert vp.errors == [], summary
        assert "Traceback" not in d.logtext()
    finally:
        burners.stop()
        if reader is not None:
            reader.stopping = True
        if user is not None:
            user.close()
        if vp is not None:
            vp.stop()
        proxy.stop()
        d.stop()
