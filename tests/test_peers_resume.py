"""ixp-peers as a process against a fake VP on a unix control socket:
killed (SIGKILL) or interrupted (SIGINT) mid-campaign, then run again with
the same command: it continues, and no finished pair is traced twice.
Also the outputs: JSON lines, CSV, warts (read by sc_warts2text) and a
self-contained HTML page."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import requires_tool
from tests.peers_helpers import write_mrt

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "ixpscamper.peers.cli"]
N = 10
_WORLD_VP: list = []  # the fake VP of the running test's world


@pytest.fixture
def world(tmp_path):
    peers = [("192.0.2.1", 65001), ("192.0.2.2", 65002)]
    routes = [(0, "198.51.100.0/24", [65001, 65011, 65020], "192.0.2.1"),
              (1, "198.51.100.0/24", [65002, 65020], "192.0.2.2"),
              (0, "198.18.1.0/24", [65001, 65011], "192.0.2.1"),
              (1, "198.18.2.0/24", [65002, 65012], "192.0.2.2")]
    mrt = write_mrt(tmp_path / "rib.mrt", peers, routes)
    dsts = [f"198.51.100.{i}" for i in range(1, N + 1)]
    paths = {}
    for d in dsts:
        paths[f"192.0.2.1 {d}"] = ["192.0.2.1", "198.18.1.1", d]
        paths[f"192.0.2.2 {d}"] = ["192.0.2.2", "198.18.2.1", None, d]
    (tmp_path / "paths.json").write_text(json.dumps(paths))
    (tmp_path / "dsts").write_text("\n".join(dsts) + "\n")
    sock = tmp_path / "vp.sock"
    log = tmp_path / "started.log"
    vp = subprocess.Popen([sys.executable, "-m", "tests.peers_helpers", str(sock), str(tmp_path / "paths.json"),
                           str(log), "0.25"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        end = time.monotonic() + 20
        while not sock.exists():
            assert vp.poll() is None, vp.stderr.read().decode()
            assert time.monotonic() < end, "fake VP did not start"
            time.sleep(0.05)
        argv = CLI + ["--rib", mrt, "--ixp-lan", "192.0.2.0/24", "--dst-file", str(tmp_path / "dsts"),
                      "-U", str(sock), "--concurrency", "2", "--per-peer", "1",
                      "--json", str(tmp_path / "out.json"), "--csv", str(tmp_path / "out.csv"),
                      "--warts", str(tmp_path / "out.warts"), "--html", str(tmp_path / "out.html")]
        _WORLD_VP.append(vp)
        yield tmp_path, argv, log
    finally:
        vp.kill()
        vp.wait(5)


def state_lines(tmp: Path) -> list[dict]:
    p = tmp / "out.json.state"
    if not p.exists():
        return []
    return [json.loads(x) for x in p.read_text().splitlines() if x.endswith("}")]


def started(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def interrupt_after(tmp, argv, log, n, sig):
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    end = time.monotonic() + 60
    while len(state_lines(tmp)) < n:
        assert p.poll() is None, p.communicate()
        assert time.monotonic() < end
        time.sleep(0.02)
    p.send_signal(sig)
    out, err = p.communicate(timeout=30)
    return p.returncode, out, err


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_interrupted_campaign_resumes_without_retracing(world, sig):
    tmp, argv, log = world
    rc, out, err = interrupt_after(tmp, argv, log, 5, sig)
    done_first = {(r["peer_ip"], r["dst"]) for r in state_lines(tmp)}
    assert 5 <= len(done_first) < 2 * N
    if sig == signal.SIGINT:
        assert rc == 130 and "interrupted" in err and "run the same command again" in err
        assert "Traceback" not in err
        # what was measured is already in the outputs
        assert {(r["peer_ip"], r["dst"]) for r in map(json.loads, (tmp / "out.json").read_text().splitlines())} \
            == done_first
    else:
        assert rc == -signal.SIGKILL
    before = len(started(log))
    p = subprocess.run(argv, capture_output=True, text=True, timeout=90)
    assert p.returncode == 0, p.stderr
    assert f"resuming from {tmp / 'out.json.state'}: {len(done_first)} of {2 * N}" in p.stderr
    second = {tuple(x.split()) for x in started(log)[before:]}
    assert not second & done_first, "a finished pair was traced again"
    rows = [json.loads(x) for x in (tmp / "out.json").read_text().splitlines()]
    keys = [(r["peer_ip"], r["dst"]) for r in rows]
    assert len(keys) == len(set(keys)) == 2 * N
    # a third run sends nothing at all
    before = len(started(log))
    p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and len(started(log)) == before
    assert f"{2 * N} of {2 * N} pair(s) already done" in p.stderr


@requires_tool("sc_warts2text")
def test_outputs(world):
    tmp, argv, log = world
    p = subprocess.run(argv, capture_output=True, text=True, timeout=90)
    assert p.returncode == 0, p.stderr
    rows = [json.loads(x) for x in (tmp / "out.json").read_text().splitlines()]
    assert len(rows) == 2 * N
    ra = next(r for r in rows if r["peer_ip"] == "192.0.2.1" and r["dst"] == "198.51.100.3")
    rb = next(r for r in rows if r["peer_ip"] == "192.0.2.2" and r["dst"] == "198.51.100.3")
    for key in ("peer_ip", "peer_asn", "next_hop", "dst", "prefix", "bgp_path", "trace_hops", "trace_path", "class"):
        assert key in ra
    assert ra["class"] == "match" and ra["trace_path"] == [65001, 65011, 65020]
    assert rb["trace_hops"] == ["192.0.2.2", "198.18.2.1", None, "198.51.100.3"]
    assert rb["class"] == "extra_as" and rb["bgp_path"] == [65002, 65020]
    assert "_warts" not in ra
    # table on stdout: one block per peer, summary counts
    assert "peer 192.0.2.2 AS65002" in p.stdout and f"match {N}, extra_as {N}" in p.stdout
    # CSV
    with open(tmp / "out.csv") as f:
        c = list(csv.DictReader(f))
    assert len(c) == 2 * N and {r["class"] for r in c} == {"match", "extra_as"}
    assert next(r for r in c if r["peer_ip"] == "192.0.2.2")["trace_hops"].split()[2] == "*"
    # warts: the raw traces, as sc_warts2text reads them
    text = subprocess.run(["sc_warts2text", str(tmp / "out.warts")], capture_output=True, text=True, timeout=30)
    assert text.returncode == 0, text.stderr
    assert text.stdout.count("traceroute ") == 2 * N
    assert "to 198.51.100.3 via 192.0.2.2" in text.stdout
    # HTML: one page, nothing fetched from elsewhere, differences marked
    page = (tmp / "out.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    for ref in ("src=", "href=", "@import", "url(", "<script", "<link"):
        assert ref not in page
    assert page.count('<span class="as diff">65012</span>') == N
    assert "extra_as" in page and "<th>total</th><td>20</td>" in page


def test_vp_going_away_stops_cleanly_and_keeps_what_was_measured(world, tmp_path):
    tmp, argv, log = world
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    end = time.monotonic() + 60
    while len(state_lines(tmp)) < 4:
        assert p.poll() is None and time.monotonic() < end
        time.sleep(0.02)
    world_vp = _WORLD_VP[-1]
    world_vp.kill()   # the VP goes away mid-campaign
    out, err = p.communicate(timeout=30)
    assert p.returncode == 1
    lines = err.splitlines()
    assert len(lines) == 1 and "stopped: the VP went away" in lines[0] and "run the same command again" in lines[0]
    measured = {(r["peer_ip"], r["dst"]) for r in state_lines(tmp)}
    in_json = {(r["peer_ip"], r["dst"]) for r in map(json.loads, (tmp / "out.json").read_text().splitlines())}
    assert len(measured) >= 4 and in_json == measured


def test_progress_line_on_a_tty(world):
    import pty

    tmp, argv, log = world
    master, slave = pty.openpty()
    try:
        p = subprocess.run(argv + ["-q"], stdout=subprocess.PIPE, stderr=slave, timeout=90)
        os.close(slave)
        slave = -1
        got = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            got += chunk
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    assert p.returncode == 0 and p.stdout == b""
    text = got.decode()
    assert f"ixp-peers: {2 * N}/{2 * N} done" in text and "\r\x1b[K" in text
    assert "in flight" in text
