"""End to end: attach client -> controller -> VP, in every pairing of ours
and the real scamper tools (issue 5 item 5).  Probes 127.0.0.0/8 only."""

from __future__ import annotations

import os
import time

import pytest

from tests.conftest import requires_root, requires_tool
from tests.faultproxy import FaultProxy
from tests.pipeline_helpers import (
    ATTACH, Procs, free_port, records, run_attach, shape, vp_socket, wait_for, wait_port,
)
from ixpscamper.warts.records import CycleStop, Ping

pytestmark = [requires_root, pytest.mark.interop, pytest.mark.timeout(120)]

COMMANDS = "ping -c 2 127.0.0.1\ntrace -q 1 -m 2 127.0.0.1\nping -c 1 127.0.0.2\n"
EXPECTED = ["list", "cycle-start", "ping", "ping", "trace", "cycle-stop"]


@pytest.fixture
def procs(tmp_path):
    p = Procs(tmp_path)
    try:
        yield p
    finally:
        p.stop_all()


def _sockdir(tmp_path):
    d = tmp_path / "sockets"
    d.mkdir()
    return d


def _check_run(res, procs, expected=EXPECTED):
    assert res.returncode == 0, (res.stderr.decode(), procs.log("ixp-vp"))
    recs = records(res.stdout)
    assert shape(recs) == expected, res.stderr.decode()
    return recs


@requires_tool("sc_remoted")
@requires_tool("sc_attach")
def test_our_vp_real_sc_remoted_sc_attach_and_ixp_attach(tmp_path, procs):
    port = free_port()
    sockdir = _sockdir(tmp_path)
    procs.sc_remoted(port, sockdir)
    wait_port(port)
    procs.our_vp(port, "ourvp", "--attach-dialect", "2021", "--pps", "200")
    sock = vp_socket(sockdir, "ourvp", procs=procs)
    # the Debian sc_attach needs the 2021 dialect (bare DATA <n>)
    ref = run_attach(["sc_attach", "-R", str(sock), "-i", "-", "-o", "-"], COMMANDS)
    recs = _check_run(ref, procs)
    assert recs[0].monitor == "ourvp" and recs[0].name.endswith("_0")
    # ixp-attach reads it too
    ours = run_attach(ATTACH + ["-R", str(sock), "-i", "-", "-o", "-"], COMMANDS)
    recs = _check_run(ours, procs)
    assert recs[0].name.endswith("_1")
    # same VP through sc_remoted with the current dialect: ixp-attach only
    procs.stop(procs.procs[-1][1])
    procs.our_vp(port, "ourvp2", "--pps", "200", name="ixp-vp2")
    sock2 = vp_socket(sockdir, "ourvp2", procs=procs)
    res = run_attach(ATTACH + ["-R", str(sock2), "-i", "-", "-o", "-"], COMMANDS)
    _check_run(res, procs)


@requires_tool("scamper")
def test_real_scamper_vp_our_controller_ixp_attach(tmp_path, procs):
    port = free_port()
    sockdir = _sockdir(tmp_path)
    procs.our_remoted(port, sockdir)
    wait_port(port)
    procs.scamper_vp(port, "realvp")
    sock = vp_socket(sockdir, "realvp", procs=procs)
    res = run_attach(ATTACH + ["-R", str(sock), "-i", "-", "-o", "-"], COMMANDS)
    recs = _check_run(res, procs)
    assert recs[0].monitor == "realvp"
    # a refused command is reported with its ERR, the rest still runs, exit 1
    res = run_attach(ATTACH + ["-R", str(sock), "-i", "-", "-o", "-"],
                     "ping -c 1 127.0.0.1\nbogus 1\nping -c 1 127.0.0.3\n")
    assert res.returncode == 1
    assert b"ERR command not accepted (command: bogus 1)" in res.stderr
    assert shape(records(res.stdout)) == ["list", "cycle-start", "ping", "ping", "cycle-stop"]


@requires_tool("sc_attach")
def test_our_vp_our_controller_both_attach_clients(tmp_path, procs):
    port = free_port()
    sockdir = _sockdir(tmp_path)
    procs.our_remoted(port, sockdir)
    wait_port(port)
    procs.our_vp(port, "vpa", "--attach-dialect", "2021", "--pps", "200")
    sock = vp_socket(sockdir, "vpa", procs=procs)
    _check_run(run_attach(["sc_attach", "-R", str(sock), "-i", "-", "-o", "-"], COMMANDS), procs)
    _check_run(run_attach(ATTACH + ["-R", str(sock), "-i", "-", "-o", "-", "-O", "impatient"], COMMANDS),
               procs)
    # a command the prober refuses: ERR with the reason, the VP goes on
    res = run_attach(ATTACH + ["-R", str(sock), "-i", "-", "-o", "-"],
                     "trace -q 99 127.0.0.1\nping -c 1 127.0.0.1\n")
    assert res.returncode == 1
    err = res.stderr.decode()
    assert "ERR command not accepted: " in err and "(command: trace -q 99 127.0.0.1)" in err
    assert shape(records(res.stdout)) == ["list", "cycle-start", "ping", "cycle-stop"]


def _cut_run(tmp_path, procs, controller: str, n: int = 200, client: str = "ixp-attach"):
    port = free_port()
    sockdir = _sockdir(tmp_path)
    if controller == "ours":
        procs.our_remoted(port, sockdir)
    else:
        procs.sc_remoted(port, sockdir)
    wait_port(port)
    proxy = FaultProxy()
    pport = proxy.start(0, "127.0.0.1", port)
    try:
        # 40 pps: the 200 pings take about 5 s, long enough for several cuts
        procs.our_vp(pport, "cutvp", "--pps", "40", "--attach-dialect", "2021")
        sock = vp_socket(sockdir, "cutvp", procs=procs)
        cmds = "".join(f"ping -c 1 127.0.{i // 200}.{i % 200 + 1}\n" for i in range(n))
        proxy.cut_every(1.0)
        t0 = time.monotonic()
        argv = ATTACH if client == "ixp-attach" else ["sc_attach"]
        res = run_attach(argv + ["-R", str(sock), "-i", "-", "-o", "-", "-O", "impatient"], cmds,
                         timeout=90)
        elapsed = time.monotonic() - t0
        proxy.cut_every(None)
    finally:
        proxy.stop()
    assert res.returncode == 0, (res.stderr.decode(), procs.log("ixp-vp")[-3000:])
    assert res.stderr == b""  # nothing on the attach side but a delay
    recs = records(res.stdout)
    pings = [r for r in recs if isinstance(r, Ping)]
    dsts = sorted(str(p.dst) for p in pings)
    assert dsts == sorted(f"127.0.{i // 200}.{i % 200 + 1}" for i in range(n))  # each exactly once
    assert isinstance(recs[-1], CycleStop)
    assert proxy.cuts >= 2, f"the proxy cut only {proxy.cuts} time(s)"
    assert "resumed the session" in procs.log("ixp-vp")
    return proxy.cuts, elapsed


@pytest.mark.parametrize("client", [
    "ixp-attach", pytest.param("sc_attach", marks=requires_tool("sc_attach"))])
def test_cuts_our_vp_our_controller_200_commands(tmp_path, procs, client):
    cuts, elapsed = _cut_run(tmp_path, procs, "ours", client=client)
    print(f"ours->ours->{client}: {cuts} cuts, 200 results in {elapsed:.1f}s")


@requires_tool("sc_remoted")
@requires_tool("sc_attach")
@pytest.mark.parametrize("client", ["ixp-attach", "sc_attach"])
def test_cuts_our_vp_real_sc_remoted_200_commands(tmp_path, procs, client):
    cuts, elapsed = _cut_run(tmp_path, procs, "sc_remoted", client=client)
    print(f"ours->sc_remoted->{client}: {cuts} cuts, 200 results in {elapsed:.1f}s")


@pytest.mark.parametrize("controller", ["ours", "sc_remoted"])
def test_controller_restart_vp_starts_a_new_session(tmp_path, procs, controller):
    """The restarted controller rejects the resume; the VP registers anew, quickly."""
    if controller == "sc_remoted" and not os.path.exists("/usr/bin/sc_remoted"):
        pytest.skip("sc_remoted not installed")
    port = free_port()
    sockdir = _sockdir(tmp_path)
    start = procs.our_remoted if controller == "ours" else procs.sc_remoted
    first = start(port, sockdir)
    wait_port(port)
    procs.our_vp(port, "rvp", "--pps", "200")
    vp_socket(sockdir, "rvp", procs=procs)  # registered with the first controller
    procs.stop(first)
    for p in sockdir.iterdir():  # sc_remoted 20211212 leaves its socket behind on SIGTERM
        p.unlink()
    t0 = time.monotonic()
    start(port, sockdir)
    new = vp_socket(sockdir, "rvp", timeout=30, procs=procs)
    took = time.monotonic() - t0
    # the controller makes the socket just before it answers MASTER_ID
    log = wait_for(lambda: (lambda t: t if t.count("new session with the controller") == 2 else None)(
        procs.log("ixp-vp")), 10, "the VP's log of its new session")
    assert "rejected the resume" in log and "starting a new session" in log
    assert took < 10, f"re-registered only after {took:.1f} s"
    res = run_attach(ATTACH + ["-R", str(new), "-i", "-", "-o", "-"], "ping -c 1 127.0.0.1\n")
    assert res.returncode == 0 and shape(records(res.stdout)) == ["list", "cycle-start", "ping", "cycle-stop"]
