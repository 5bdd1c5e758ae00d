"""The Twisted client API (connect_mux: gathered writes, several commands
per mux frame, frames split at MAX_FRAME) against real controllers: the
real scamper 2026 sc_remoted -M and our ixp-remoted -M, each with a real
2026 scamper VP and our ixp-vp.  Every result must be the record of its own
command.  Pings go to 127.0.0.0/8 only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import requires_root
from pipeline_helpers import TWISTD, Procs, free_port, wait_for, wait_port

S26 = Path(__file__).resolve().parents[2] / "shared" / "scamper-2026"
have_2026 = (S26 / "bin" / "sc_remoted").exists() and (S26 / "bin" / "scamper").exists()
requires_2026 = pytest.mark.skipif(not have_2026, reason="../shared/scamper-2026 is absent")

PER_VP = 300   # with the window raised to match: ~6 KB of commands per VP in one flush

CLIENT = r"""
import json, sys
from twisted.internet import defer, reactor
from ixpscamper.client.api import connect_mux
from ixpscamper.client.vps import MAX_FRAME
mux, out, per_vp = sys.argv[1], sys.argv[2], int(sys.argv[3])
res = {}

@defer.inlineCallbacks
def main():
    c = yield connect_mux(reactor, mux)
    for _ in range(200):
        if len(c.vps()) >= 2:
            break
        d = defer.Deferred(); reactor.callLater(0.1, d.callback, None); yield d
    vps = c.vps()
    wants, ds = [], []
    for v in vps:
        c._channel(v).window = per_vp   # everything in one flush: frames must split
    sent = []
    c._core._write = (lambda w: (lambda data: (sent.append(len(data)), w(data))[1]))(c._core._write)
    for i in range(per_vp):
        for v in vps:
            dst = f"127.0.{i // 250}.{i % 250 + 1}"
            wants.append((v.name, dst))
            ds.append(c.ping(v, dst, count=1))
    got = yield defer.DeferredList(ds, consumeErrors=True)
    res["vps"] = sorted(v.name for v in vps)
    res["bad"] = [(w, str(r)) for w, (ok, r) in zip(wants, got)
                  if not ok or type(r).__name__ != "Ping" or str(r.dst) != w[1]][:5]
    res["n"] = sum(1 for ok, _ in got if ok)
    res["first_write"] = sent[0] if sent else 0
    res["max_frame"] = MAX_FRAME
    yield c.close()

def done(_):
    open(out, "w").write(json.dumps(res)); reactor.stop()

def fail(f):
    open(out, "w").write(json.dumps({"error": f.getTraceback()})); reactor.stop()

reactor.callWhenRunning(lambda: main().addCallbacks(done, fail))
reactor.run()
"""


@pytest.fixture
def procs(tmp_path):
    p = Procs(tmp_path)
    yield p
    p.stop_all()


def _controller(procs: Procs, tmp: Path, kind: str, port: int) -> Path:
    mux = tmp / "mux"
    if kind == "sc_remoted26":
        procs.start("sc_remoted26", [str(S26 / "bin" / "sc_remoted"), "-P", f"127.0.0.1:{port}",
                                     "-M", str(mux)])
    else:
        procs.start("ixp-remoted", TWISTD + ["-n", "--pidfile=", "ixp-remoted", "-P",
                                             f"127.0.0.1:{port}", "-M", str(mux)])
    wait_port(port)
    wait_for(mux.exists, 10, "the mux socket")
    return mux


@requires_root
@requires_2026
@pytest.mark.parametrize("kind", ["sc_remoted26", "ixp-remoted"])
def test_gathered_commands_through_a_real_mux(procs, tmp_path, kind):
    port = free_port()
    mux = _controller(procs, tmp_path, kind, port)
    procs.our_vp(port, "ovp", "--pps", "400")
    procs.start("scamper26", [str(S26 / "bin" / "scamper"), "-O", "notls-remote", "-M", "s26",
                              "-R", f"127.0.0.1:{port}", "-p", "400"])
    out = tmp_path / "client.json"
    r = subprocess.run([sys.executable, "-c", CLIENT, str(mux), str(out), str(PER_VP)],
                       capture_output=True, timeout=180, env=dict(os.environ))
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    res = json.loads(out.read_text())
    assert "error" not in res, res["error"]
    assert res["vps"] == ["ovp", "s26"]
    assert res["bad"] == [] and res["n"] == 2 * PER_VP
    # the commands went out gathered: one write far larger than one frame
    assert res["first_write"] > 2 * res["max_frame"]
