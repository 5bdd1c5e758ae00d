"""Back-pressure in ``twistd ixp-remoted`` (a subprocess), end to end: a user
who pauses reading still gets EOF, and a user writing into a VP that is away
or not reading is paused instead of filling the controller's memory."""

from __future__ import annotations

import hashlib
import os
import threading
import time

import pytest

from remoted_bp_vp import BackPressureVP
from remotestub import Daemon, User, wait_for


def vp_socket(d: Daemon, prefix: str = "stub-") -> str:
    name = wait_for(lambda: [n for n in d.sockets() if n.startswith(prefix)], 10, "VP socket")[0]
    return os.path.join(d.sockdir, name)


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_user_who_pauses_reading_still_gets_eof(tmp_path):
    """Issue: results all written, user paused a while, then never an EOF."""
    d = Daemon(tmp_path)
    vp = BackPressureVP(d.port).start()
    try:
        u = User(vp_socket(d))
        blob = bytes(range(256)) * (3 * 4096)  # 3 MiB echoed back, user not reading
        wait_for(lambda: vp.opened, 5, "channel")
        ch = vp.opened[0]
        vp.fin_after[ch] = len(blob)  # the VP is done once it echoed everything
        u.send(blob)
        wait_for(lambda: vp.got.get(ch) == len(blob) and not vp.session.channels, 20, "the VP's FIN")
        time.sleep(2.0)  # the user still does not read: its transport is paused meanwhile
        got = u.read_until(len(blob) + 5, timeout=20)
        assert got == b"MORE\n" + blob
        assert u.wait_eof(10), "no EOF after the last result"
    finally:
        vp.stop()
        d.stop()


def _pattern(i: int, size: int) -> bytes:
    return (b"%012d|" % i) * (size // 13) + b"#" * (size % 13)


@pytest.mark.timeout(240)
@pytest.mark.parametrize("away", ["stopped", "zombie"])
def test_user_writing_into_an_absent_vp_is_paused_and_memory_stays_bounded(tmp_path, away):
    total_mb = 300 if away == "stopped" else 100
    d = Daemon(tmp_path)
    vp = BackPressureVP(d.port, echo=False).start()
    try:
        u = User(vp_socket(d))
        assert u.read_until(5) == b"MORE\n"
        ch = vp.opened[0]
        if away == "stopped":
            vp.paused = True      # connected, reads nothing, ACKs nothing
        else:
            vp.online = False     # away: the controller holds a zombie
            wait_for(lambda: " away from " in d.logtext(), 10, "the zombie")
        time.sleep(0.3)
        base = rss_kb(d.proc.pid)
        chunk = 1 << 20
        want = hashlib.sha256()
        sent = [0]
        err: list = []

        def writer():
            try:
                for i in range(total_mb):
                    b = _pattern(i, chunk)
                    u.sock.sendall(b)
                    sent[0] += len(b)
            except OSError as e:  # pragma: no cover - reported below
                err.append(e)
        for i in range(total_mb):
            want.update(_pattern(i, chunk))
        t = threading.Thread(target=writer, daemon=True)
        t.start()
        peak = base
        end = time.monotonic() + 4.0
        while time.monotonic() < end:
            peak = max(peak, rss_kb(d.proc.pid))
            time.sleep(0.05)
        grown_mb = (peak - base) / 1024
        print(f"VP {away}: controller RSS +{grown_mb:.1f} MB while the user offered "
              f"{total_mb} MB ({sent[0] / 2**20:.1f} MB accepted)")
        assert grown_mb < 50, f"controller grew by {grown_mb:.0f} MB with the VP {away}"
        assert sent[0] < total_mb * chunk // 2, "the user was never paused"
        # the VP comes back: everything arrives, exactly once, in order
        if away == "stopped":
            vp.paused = False
        else:
            vp.online = True      # reconnects: MASTER_RES, replay
        t.join(200)
        assert not t.is_alive() and not err
        wait_for(lambda: vp.got.get(ch, 0) >= total_mb * chunk, 200, "all bytes at the VP")
        time.sleep(0.2)
        assert vp.got[ch] == total_mb * chunk
        assert vp.digest[ch].hexdigest() == want.hexdigest()
        if away == "zombie":
            assert ("established", vp.log[0][1], True) in vp.log  # a resume, not a new session
        assert "Traceback" not in d.logtext()
    finally:
        vp.stop()
        d.stop()


def test_a_user_who_does_not_read_never_delays_another_user(tmp_path):
    """VP -> user: results for a user who does not read are buffered (up to
    USER_BACKLOG), never waited for; the VP's other users are served at once."""
    d = Daemon(tmp_path)
    vp = BackPressureVP(d.port).start()
    try:
        path = vp_socket(d)
        lazy, busy = User(path), User(path)
        busy.read_until(5)
        blob = b"z" * (8 << 20)  # echoed to a user who reads nothing
        lazy.send(blob)
        wait_for(lambda: sum(vp.got.values()) >= len(blob), 30, "the lazy user's bytes at the VP")
        for i in range(5):
            line = b"busy %d\n" % i
            busy.send(line)
            want = 5 + sum(len(b"busy %d\n" % j) for j in range(i + 1))
            assert len(busy.read_until(want, timeout=10)) == want
        assert "is not reading" not in d.logtext()  # buffered, not (yet) cut
        got = lazy.read_until(5 + len(blob), timeout=30)  # and it is all still there
        assert got == b"MORE\n" + blob
    finally:
        vp.stop()
        d.stop()
