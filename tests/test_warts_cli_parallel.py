"""ixp-warts2text / ixp-warts2json print a large file in two processes (issue 12).

The second half of a large regular file is rendered by a forked child; what
comes out (stdout, stderr, their order when they are one file, the exit
status) must be exactly what one process prints, whatever the damage and
wherever it lies.  The CLI runs in a subprocess here, with the size
threshold lowered so that a small file takes the two-process path.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"

_RUN = ("import sys; import ixpscamper.warts.cli as c; c.PARALLEL_MIN = 1000; "
        "sys.exit(c.main_{kind}(sys.argv[1:]))")


def _big(tmp_path: Path) -> bytes:
    """Many copies of the measurements of the repertoire's mixed file, after its
    list and cycle (so that the second half refers to a cycle the first defines)."""
    from ixpscamper.warts import (CycleStart, CycleStop, WartsList, encode_cycle, encode_list,
                                  read_records)
    from ixpscamper.warts.writer import encode_cycle_stop, encode_record
    recs = read_records((FIXTURES / "scamper-repertoire" / "mixed.warts").read_bytes())
    lst = WartsList("big", 1, monitor="vp1")
    cyc = CycleStart(lst, 1795760000, hostname="big")
    body = b"".join(encode_record(r, 1, 1) for r in recs
                    if not isinstance(r, (WartsList, CycleStart, CycleStop)))
    return (encode_list(lst, 1) + encode_cycle(cyc, 1, 1) + body * 60
            + encode_cycle_stop(CycleStop(cyc, 1795763600), 1))


def _run(kind: str, path: Path, jobs: str, merged: bool):
    env = dict(os.environ, IXP_WARTS_JOBS=jobs, TZ="UTC")
    argv = [sys.executable, "-c", _RUN.format(kind=kind), str(path)]
    if merged:
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                           timeout=120)
        return r.returncode, r.stdout, b""
    r = subprocess.run(argv, capture_output=True, env=env, timeout=120)
    return r.returncode, r.stdout, r.stderr


def _damage(data: bytes, where: float) -> bytes:
    b = bytearray(data)
    i = int(len(b) * where)
    b[i:i + 6] = b"\xff\x00\x13\x37\x00\xff"
    return bytes(b)


@pytest.mark.parametrize("kind", ["text", "json"])
@pytest.mark.parametrize("case", ["clean", "first-half", "second-half", "truncated",
                                  "near-split"])
def test_two_processes_print_what_one_prints(tmp_path, kind, case):
    data = _big(tmp_path)
    if case == "first-half":
        data = _damage(data, 0.3)
    elif case == "second-half":
        data = _damage(data, 0.8)
    elif case == "near-split":
        data = _damage(data, 0.5)
    elif case == "truncated":
        data = data[:-5]
    path = tmp_path / "big.warts"
    path.write_bytes(data)
    for merged in (False, True):
        one = _run(kind, path, "1", merged)
        two = _run(kind, path, "", merged)
        assert two == one, (case, merged, one[0], two[0])
    assert one[1]  # something was printed


def test_two_processes_are_used(tmp_path, monkeypatch):
    """The large file does take the two-process path (a child is forked)."""
    import ixpscamper.warts.cli as cli
    path = tmp_path / "big.warts"
    path.write_bytes(_big(tmp_path))
    code = ("import os, sys; import ixpscamper.warts.cli as c; c.PARALLEL_MIN = 1000\n"
            "forks = []\n_fork = os.fork\n"
            "def fork():\n    pid = _fork()\n    if pid: forks.append(pid)\n    return pid\n"
            "os.fork = fork\nrc = c.main_text(sys.argv[1:])\n"
            "sys.stderr.write(f'forks {len(forks)}\\n'); sys.exit(rc)")
    r = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                       env=dict(os.environ, IXP_WARTS_JOBS=""), timeout=120)
    assert r.stderr.decode().splitlines()[-1] == ("forks 1" if (os.cpu_count() or 1) > 1
                                                 else "forks 0")
    assert cli.PARALLEL_MIN > 1000  # (the subprocess changed its own copy only)


def _state(pid: int):
    """A process's state letter, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


@pytest.mark.skipif((os.cpu_count() or 1) < 2 or not Path("/proc/self/task").exists(),
                    reason="the two-process path needs two cores (and /proc to watch it)")
def test_the_child_dies_with_its_parent(tmp_path):
    """Killed (SIGTERM: no handler runs), the printer leaves no child rendering on."""
    import signal
    import time
    data = _big(tmp_path)
    path = tmp_path / "big.warts"
    head, tail = data[:-17], data[-17:]   # the cycle stop stays last
    assert tail[:4] == b"\x12\x05\x00\x04"
    # 150 times _big's measurements: the child has seconds of work left
    path.write_bytes(head + head[_body_start(head):] * 150 + tail)
    p = subprocess.Popen([sys.executable, "-c", _RUN.format(kind="text"), str(path)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env=dict(os.environ, IXP_WARTS_JOBS="", TZ="UTC"))
    try:
        child = None
        end = time.monotonic() + 30
        while child is None and time.monotonic() < end and p.poll() is None:
            try:
                kids = Path(f"/proc/{p.pid}/task/{p.pid}/children").read_text().split()
            except OSError:
                kids = []
            child = int(kids[0]) if kids else None
            time.sleep(0.005)
        assert child is not None, "no child was forked"
        p.send_signal(signal.SIGTERM)
        p.wait(10)
        end = time.monotonic() + 0.5  # (it has seconds of work left)
        while _state(child) not in (None, "Z") and time.monotonic() < end:
            time.sleep(0.01)
        assert _state(child) in (None, "Z"), "the child went on rendering after its parent died"
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def _body_start(data: bytes) -> int:
    """Offset of the first record after the list and the cycle start."""
    import struct
    pos = 0
    for _ in range(2):
        pos += 8 + struct.unpack_from(">I", data, pos + 4)[0]
    return pos
