"""The real scamper 2026 Python module driving our VP through the real 2026 sc_remoted.

``ScamperCtrl(mux=...)``'s ``do_ping`` / ``do_trace`` write their timing
arguments as ``-i 0.25s``, ``-W 2.0s``, ``-w 1.0s`` (2026 syntax); before
ixpscamper read it, our VP answered ``ERR command not accepted: could not
parse ping command: -W needs a number, got '1.0s'``.  A real scamper 2026 VP
on the same sc_remoted runs the same calls and is the oracle for the values
recorded.  Everything probes 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import requires_root
from pipeline_helpers import Procs, free_port, wait_for, wait_port

S26 = Path(__file__).resolve().parents[2] / "shared" / "scamper-2026"
have_2026 = all((S26 / p).exists() for p in ("bin/sc_remoted", "bin/scamper", "python/scamper.so"))
requires_2026 = pytest.mark.skipif(not have_2026, reason="../shared/scamper-2026 is absent")

# userid -> (method, keyword arguments); the values are Python literals in the script
CALLS = {
    1: ("do_ping", "attempts=2, wait_probe=0.25, wait_timeout=2"),
    2: ("do_ping", "attempts=1, wait_probe=datetime.timedelta(milliseconds=500)"),
    3: ("do_ping", "attempts=1, wait_timeout=datetime.timedelta(seconds=1.5)"),
    4: ("do_ping", "attempts=1, wait_probe=1, wait_timeout=1, ttl=64, tos=0"),
    5: ("do_trace", "attempts=1, wait_timeout=1, wait_probe=0.05"),
    6: ("do_trace", "attempts=1, wait_timeout=datetime.timedelta(seconds=2), "
                    "wait_probe=datetime.timedelta(milliseconds=100)"),
}

SCRIPT = """
import datetime, json, sys
import scamper
ctrl = scamper.ScamperCtrl(mux=sys.argv[1])
ctrl.add_vps(ctrl.vps())
calls = json.loads(sys.argv[3])
for inst in ctrl.instances():
    for userid, (method, kwargs) in calls.items():
        eval(f"ctrl.{method}('127.0.0.1', inst=inst, userid={userid}, {kwargs})")
want = len(calls) * len(ctrl.instances())
out = {"results": [], "errors": []}
for o in ctrl.responses(timeout=90):
    r = dict(vp=o.inst.name, kind=type(o).__name__, userid=o.userid, attempts=o.attempts,
             wait_probe=o.wait_probe.total_seconds(), wait_timeout=o.wait_timeout.total_seconds(),
             probe_size=o.probe_size)
    if r["kind"] == "ScamperPing":
        r.update(probe_count=o.probe_count, ttl=o.probe_ttl, tos=o.probe_tos, replies=o.nreplies)
    out["results"].append(r)
    if len(out["results"]) == want:
        break
out["errors"] = [str(e) for e in ctrl.exceptions()]
open(sys.argv[2], "w").write(json.dumps(out))
"""


@pytest.fixture
def procs(tmp_path):
    p = Procs(tmp_path)
    try:
        yield p
    finally:
        p.stop_all()  # by pid, each process this test started


@requires_root
@requires_2026
def test_scamperctrl_timing_arguments_reach_our_vp(procs: Procs, tmp_path: Path) -> None:
    port = free_port()
    sockdir = tmp_path / "sock"
    sockdir.mkdir()
    mux = sockdir / "mux"
    procs.start("sc_remoted26", [str(S26 / "bin" / "sc_remoted"), "-P", f"127.0.0.1:{port}",
                                 "-U", str(sockdir), "-M", str(mux)])
    wait_port(port)
    procs.our_vp(port, "ovp", "--pps", "200")
    procs.start("scamper26", [str(S26 / "bin" / "scamper"), "-O", "notls-remote", "-M", "s26",
                              "-R", f"127.0.0.1:{port}", "-p", "200"])
    wait_for(mux.exists, 10, "the mux socket")
    # both VPs registered: sc_remoted makes one socket per VP
    wait_for(lambda: sum(1 for p in sockdir.iterdir() if p.name != "mux") >= 2, 20, "two VP sockets")

    out = tmp_path / "ctrl.json"
    r = subprocess.run([sys.executable, "-c", SCRIPT, str(mux), str(out),
                        json.dumps({str(k): v for k, v in CALLS.items()})],
                       capture_output=True, timeout=150, env={**os.environ, "PYTHONPATH": str(S26 / "python")})
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-2000:]
    res = json.loads(out.read_text())
    assert res["errors"] == []
    got = {(x["vp"], x["userid"]): x for x in res["results"]}
    assert sorted(got) == sorted((vp, u) for vp in ("ovp", "s26") for u in CALLS), res

    for u in CALLS:
        ours, theirs = dict(got[("ovp", u)]), dict(got[("s26", u)])
        ours.pop("vp"), theirs.pop("vp")
        assert ours == theirs, (u, CALLS[u])

    # and they are the values asked for
    assert (got[("ovp", 1)]["wait_probe"], got[("ovp", 1)]["wait_timeout"]) == (0.25, 2.0)
    assert (got[("ovp", 2)]["wait_probe"], got[("ovp", 2)]["wait_timeout"]) == (0.5, 1.0)
    assert (got[("ovp", 5)]["wait_probe"], got[("ovp", 5)]["wait_timeout"]) == (0.05, 1.0)
    assert (got[("ovp", 6)]["wait_probe"], got[("ovp", 6)]["wait_timeout"]) == (0.1, 2.0)
    assert all(got[("ovp", u)]["replies"] >= 1 for u in (1, 2, 3, 4))
