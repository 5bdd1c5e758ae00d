"""bench/mux_bench.py, short: a few VPs, a few hundred pings, every pairing it can run.

The bench's figures are read on an idle machine, not here; this checks that
it runs: the forked VP farm starts and answers, every pairing gets every
result, and no farm process or controller outlives the run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
S26 = ROOT.parent / "shared" / "scamper-2026"


def _bench_pids() -> set[int]:
    """The bench's farm processes and controllers (their mux socket is in its
    muxbench* directory)."""
    pids = set()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if (any(c.endswith(b"mux_bench.py") for c in cmd) and b"--farm" in cmd) \
                or any(b"/muxbench" in c for c in cmd):
            pids.add(int(d.name))
    return pids


def test_mux_bench_runs_every_pairing_and_leaves_nothing_running():
    before = _bench_pids()
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "mux_bench.py"),
                           "--vps", "5", "--pings", "300"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "5 VPs (instant answers) in 5 farm process(es), 300 pings" in out, out
    rows = {}
    for line in out.splitlines():
        m = re.match(r"(\S+)\s+(\S+)\s+(\d+)\s+([\d.]+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)\s", line)
        if m:
            rows[(m.group(1), m.group(2))] = (int(m.group(3)), int(m.group(8)))
    want = {("ours", "ours")}
    if (S26 / "bin" / "sc_remoted").exists() and (S26 / "python" / "scamper.so").exists():
        want |= {("scamperctrl", "sc_remoted26"), ("ours", "sc_remoted26"), ("scamperctrl", "ours")}
    assert set(rows) == want, out
    for pair, (vps, errors) in rows.items():
        assert (vps, errors) == (5, 0), (pair, out)
    assert re.search(r"our client: [\d.]+ KiB per outstanding task", out), out
    assert _bench_pids() - before == set()
