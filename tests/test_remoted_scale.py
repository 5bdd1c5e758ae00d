"""Scale, short version of ``bench/remoted_bench.py scale``: a few hundred VPs
from one process register at once, all are cut at once, all resume at once,
and users of a sample of them see each of their lines exactly once.

The driver (bench/manyvps.py) runs in a subprocess (one reactor per
process) and reports counts; nothing here depends on wall-clock speed.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import requires_tool

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import manyvps  # noqa: E402

N = 500
SAMPLE = 20
LINES = 20


@pytest.fixture
def workdir():
    # short, so that DIR/s/v499-127.0.0.1:65535 stays far below 107 bytes
    d = tempfile.mkdtemp(prefix="rsc-", dir="/tmp")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _run(kind: str, workdir: str, n: int, extra: tuple[str, ...] = ()) -> dict:
    ctl = manyvps.launch_controller(kind, workdir, extra)
    try:
        r = manyvps.run_driver(ctl.port, ctl.sockdir, n, pid=ctl.pid, sample=SAMPLE,
                               lines=LINES, phase_timeout=60, timeout=240)
        r["_log"] = ctl.output()[-3000:]
        return r
    finally:
        ctl.stop()


def _assert_all_good(r: dict, n: int) -> None:
    ctx = {k: r[k] for k in ("register", "resume", "errors", "users_across_cut",
                             "users_after_resume", "listen_overflows")}
    assert all(r["controller_alive"].values()), (r["controller_alive"], r["_log"])
    assert r["register"]["ok"] == n and r["register"]["sockets_present"] == n, ctx
    assert r["cut"]["connections"] == n, ctx
    assert r["resume"]["ok"] == n and r["resume"]["sockets_present"] == n, ctx
    assert r["errors"] == {}, ctx
    assert r["users_sampled"] == SAMPLE, ctx
    for key in ("users_across_cut", "users_after_resume"):
        u = r[key]
        assert u["users"] == SAMPLE and u["exactly_once"] == SAMPLE, ctx


def test_ours_mass_register_cut_resume(workdir):
    r = _run("ours", workdir, N)
    _assert_all_good(r, N)
    # ixp-remoted keeps each VP's socket under its registration name
    assert r["resume"]["sockets_first_port_name"] == N


@requires_tool("sc_remoted")
def test_sc_remoted_mass_register_cut_resume(workdir):
    r = _run("sc_remoted", workdir, N)
    if not all(r["controller_alive"].values()):
        # Seen in about 1 run in 3 on this machine: the Debian sc_remoted
        # 20211212 segfaults when many VPs with connected users drop at
        # once (never seen with no users).  Its crash says nothing of ours.
        pytest.xfail(f"sc_remoted 20211212 died during the run (alive after each phase: "
                     f"{r['controller_alive']})")
    _assert_all_good(r, N)
    # sc_remoted re-creates each socket under the VP's new source port
    assert r["resume"]["sockets_current_port_name"] == N


def test_driver_counts_refused_resumes(workdir):
    """With -Z 0 the controller frees a VP at its disconnect: every resume
    must be reported as a MASTER_REJ failure (the check above can fail)."""
    n = 40
    r = _run("ours", workdir, n, ("-Z", "0"))
    assert r["register"]["ok"] == n
    assert r["resume"]["ok"] == 0
    assert r["resume"]["failure_reasons"] == {"MASTER_REJ": n}
    # users of a freed VP get EOF: none of them sees all its lines
    assert r["users_across_cut"]["exactly_once"] == 0


def test_user_verdict_detects_duplicates_losses_and_reordering():
    _vp_cls, user_cls = manyvps._build_driver_classes()

    class FakeVP:
        idx = 7
        name = "v7"

    u = user_cls(None, FakeVP(), "t", 4)
    lines = u.lines

    def verdict(body: bytes):
        u.buf = bytearray(b"MORE\n" + body)
        return u.verdict()

    assert verdict(b"".join(lines)) is None
    assert "1 duplicated" in verdict(b"".join(lines + lines[3:]))
    assert "1 missing" in verdict(b"".join(lines[:1] + lines[2:]))
    assert "out of order" in verdict(b"".join([lines[1], lines[0], *lines[2:]]))
    u.buf = bytearray(b"".join(lines))
    assert "no MORE greeting" in u.verdict()
