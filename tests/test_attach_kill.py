"""End to end: ixp-attach -> ixp-remoted -> ixp-vp pinging 127.0.0.0/8, and
one of the daemons is killed with SIGKILL mid-run.  ixp-attach must say how
many accepted commands went unanswered and exit non-zero; with its stderr on
a terminal, the progress line must show the silence before that.  Probes
127.0.0.0/8 only."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import time

import pytest

from ixpscamper.warts import WartsDecoder
from ixpscamper.warts.records import CycleStop, Ping

from tests.conftest import requires_root, requires_tool
from tests.pipeline_helpers import ATTACH, Procs, free_port, vp_socket, wait_for, wait_port

pytestmark = [requires_root, pytest.mark.interop, pytest.mark.timeout(120)]

N = 300
LOST = re.compile(r"ixp-attach: connection ended with (\d+) of (\d+) accepted commands? unanswered"
                  r"(?:, (\d+) sent but never acknowledged)?(?:, (\d+) never sent)?$")


@pytest.fixture
def procs(tmp_path):
    p = Procs(tmp_path)
    try:
        yield p
    finally:
        p.stop_all()


def _results(path) -> tuple[int, bool]:
    """Pings in a (possibly still growing) warts file, and whether it ends in a cycle-stop."""
    try:
        raw = path.read_bytes()
    except OSError:
        return 0, False
    recs = WartsDecoder().feed(raw)  # a partial last record is just not returned
    return sum(isinstance(r, Ping) for r in recs), any(isinstance(r, CycleStop) for r in recs)


VPS = ["ixp-vp", pytest.param("scamper", marks=requires_tool("scamper"))]


def _start(tmp_path, procs, zombie: int, vp_kind: str = "ixp-vp"):
    port = free_port()
    sockdir = tmp_path / "sockets"
    sockdir.mkdir()
    remoted = procs.our_remoted(port, sockdir, zombie=zombie)
    wait_port(port)
    # 20 pps: the 300 pings take 15 s, so a kill after the first 20 results is mid-run
    if vp_kind == "ixp-vp":
        vp = procs.our_vp(port, "killvp", "--pps", "20")
    else:  # the Debian scamper: bare DATA <n>, results matched by count
        vp = procs.start("scamper", ["scamper", "-O", "notls-remote", "-M", "killvp",
                                     "-R", f"127.0.0.1:{port}", "-p", "20"])
    sock = vp_socket(sockdir, "killvp", procs=procs)
    inp = tmp_path / "cmds.txt"
    inp.write_text("".join(f"ping -c 1 127.0.{i // 200}.{i % 200 + 1}\n" for i in range(N)))
    return remoted, vp, sock, inp


def _check_truth(err_line: str, out, rc: int) -> tuple[int, int]:
    assert rc == 1, err_line
    m = LOST.match(err_line)
    assert m, f"not the loss line: {err_line!r}"
    unanswered, accepted = int(m.group(1)), int(m.group(2))
    unacked, unsent = int(m.group(3) or 0), int(m.group(4) or 0)
    got, stopped = _results(out)
    assert not stopped
    assert 0 < got < N
    # the numbers add up: every command is answered, lost after OK, lost before OK, or unsent
    assert got + unanswered == accepted, (got, unanswered, accepted)
    assert accepted + unacked + unsent == N
    return got, unanswered


def _read_pty(master: int, p: subprocess.Popen, timeout: float) -> bytes:
    got = b""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r, _, _ = select.select([master], [], [], 0.5)
        if r:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the slave side closed: the process ended
                break
            if not chunk:
                break
            got += chunk
        elif p.poll() is not None:
            break
    return got


@pytest.mark.parametrize("vp_kind", VPS)
def test_vp_killed_mid_run_loss_reported_and_silence_shown(tmp_path, procs, vp_kind):
    # zombie time 9 s: long enough for the 5 s "nothing from the VP" notice
    remoted, vp, sock, inp = _start(tmp_path, procs, zombie=9, vp_kind=vp_kind)
    out = tmp_path / "out.warts"
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen(ATTACH + ["-R", str(sock), "-i", str(inp), "-o", str(out)],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave)
        os.close(slave)
        wait_for(lambda: _results(out)[0] >= 20, 30, "20 results")
        procs.stop(vp, signal.SIGKILL)
        t_kill = time.monotonic()
        got = _read_pty(master, p, 60)
        rc = p.wait(30)
        took = time.monotonic() - t_kill
    finally:
        os.close(master)
        if p.poll() is None:
            p.kill()
    text = got.decode(errors="replace")
    assert "waiting: nothing from the VP for " in text, text[-500:]
    # the last line on the terminal is the loss line (after the progress line is cleared)
    last = text.replace("\r\n", "\n").split("\n")
    lines = [l.split("\r")[-1].replace("\x1b[K", "") for l in last if l.strip("\r\x1b[K")]
    loss = [l for l in lines if "connection ended" in l]
    assert len(loss) == 1, lines
    got_results, unanswered = _check_truth(loss[0], out, rc)
    assert unanswered > 0 or vp_kind == "scamper"  # scamper takes one command at a time
    assert took >= 8, f"EOF came {took:.1f} s after the kill, before the 9 s zombie time"
    print(f"{vp_kind} killed: {got_results} results, {unanswered} unanswered, EOF after {took:.1f} s")


@pytest.mark.parametrize("vp_kind", VPS)
def test_controller_killed_mid_run_loss_reported(tmp_path, procs, vp_kind):
    remoted, vp, sock, inp = _start(tmp_path, procs, zombie=900, vp_kind=vp_kind)
    out = tmp_path / "out.warts"
    p = subprocess.Popen(ATTACH + ["-R", str(sock), "-i", str(inp), "-o", str(out)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: _results(out)[0] >= 20, 30, "20 results")
        procs.stop(remoted, signal.SIGKILL)
        _, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)
    lines = err.decode().splitlines()
    assert len(lines) == 1, lines
    got_results, unanswered = _check_truth(lines[0], out, p.returncode)
    print(f"controller killed ({vp_kind}): {got_results} results, {unanswered} unanswered")
