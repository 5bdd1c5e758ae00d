"""twistd ixp-vp as a real service: SIGTERM in every link state, TLS mismatches
named within seconds, --status / ixp-status, --metrics, --log-format json,
--config with SIGHUP.  Real processes on loopback only."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from tests.conftest import requires_root, requires_tool
from tests.pipeline_helpers import ATTACH, TWISTD, Procs, free_port, vp_socket, wait_for, wait_port
from tests.test_vp_tls import pki  # noqa: F401 -- the fixture

pytestmark = [requires_root, pytest.mark.timeout(120)]

STATUS = [sys.executable, "-m", "ixpscamper.ops.status"]


@pytest.fixture
def procs(tmp_path):
    p = Procs(tmp_path)
    try:
        yield p
    finally:
        p.stop_all()


def vp(procs, *argv, name="ixp-vp"):
    return procs.start(name, TWISTD + ["-n", "--pidfile=", "ixp-vp", *argv])


def remoted(procs, port, sockdir, *extra, name="ixp-remoted"):
    sockdir.mkdir(exist_ok=True)
    p = procs.start(name, TWISTD + ["-n", "--pidfile=", "ixp-remoted", "-P", f"127.0.0.1:{port}",
                                    "-U", str(sockdir), *extra])
    wait_port(port)
    return p


def status_cli(path) -> dict:
    """What ``ixp-status PATH --json`` prints (a list of one, for a VP)."""
    out = subprocess.run(STATUS + [str(path), "--json"], capture_output=True, timeout=10)
    assert out.returncode == 0, out.stderr
    (entry,) = json.loads(out.stdout)
    return entry


def status(path) -> dict:
    # in-process, so that polling does not start a Python per look
    from ixpscamper.ops.status import entries, fetch
    (entry,) = entries(fetch(str(path)))
    return entry


def wait_link_state(path, state, timeout=20.0):
    def ok():
        try:
            return status(path)["link"]["state"] == state
        except (OSError, ValueError):
            return False
    wait_for(ok, timeout, f"link state {state}")


def sigterm_time(procs, p) -> float:
    t0 = time.monotonic()
    procs.stopped.add(p.pid)
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(5)
        return float("inf")
    return time.monotonic() - t0


class Silent:
    """Accepts connections (or, with ``backlog_full``, lets them hang in SYN_SENT) and says nothing."""

    def __init__(self, backlog_full=False):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.held = []
        if backlog_full:
            self.sock.listen(0)
            # fill the accept queue: further SYNs are dropped, the client keeps retrying
            for _ in range(3):
                c = socket.socket()
                c.setblocking(False)
                try:
                    c.connect(("127.0.0.1", self.port))
                except BlockingIOError:
                    pass
                self.held.append(c)
            time.sleep(0.2)
        else:
            self.sock.listen(16)
            threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(c)

    def close(self):
        for c in self.held:
            c.close()
        self.sock.close()


# -- SIGTERM within 2 s in every state ----------------------------------------------------

def test_sigterm_while_connecting(procs, tmp_path):
    s = Silent(backlog_full=True)
    try:
        st = tmp_path / "st.sock"
        p = vp(procs, "-R", f"127.0.0.1:{s.port}", "-M", "v1", "--no-tls", "--status", str(st))
        wait_for(st.exists, 20, "status socket")
        time.sleep(1.5)
        e = status_cli(st)
        assert e["monitor"] == "v1" and e["state"] == "away"
        assert e["link"]["state"] == "connecting" and e["link"]["connects"] == 0, e
        took = sigterm_time(procs, p)
        assert took < 2.0, procs.log("ixp-vp")
        assert not st.exists()
    finally:
        s.close()


def test_sigterm_while_tls_handshaking(procs, tmp_path, pki):  # noqa: F811
    s = Silent()
    try:
        st = tmp_path / "st.sock"
        p = vp(procs, "-R", f"localhost:{s.port}", "-M", "v1", "--tls-ca", pki["ca"],
               "--status", str(st))
        wait_for(st.exists, 20, "status socket")
        wait_link_state(st, "handshaking")
        took = sigterm_time(procs, p)
        assert took < 2.0, procs.log("ixp-vp")
    finally:
        s.close()


def test_sigterm_while_backing_off(procs, tmp_path):
    st = tmp_path / "st.sock"
    p = vp(procs, "-R", f"127.0.0.1:{free_port()}", "-M", "v1", "--no-tls", "--status", str(st))
    wait_for(st.exists, 20, "status socket")
    wait_link_state(st, "backoff")
    e = status(st)
    assert e["state"] == "away" and e["link"]["failures"].get("refused", 0) >= 1
    took = sigterm_time(procs, p)
    assert took < 2.0, procs.log("ixp-vp")


@requires_tool("sc_remoted")
def test_sigterm_established_with_tasks_running(procs, tmp_path):
    # the Debian sc_remoted as the controller: the oracle, and independent of ours
    port = free_port()
    sockdir = tmp_path / "socks"
    sockdir.mkdir()
    procs.sc_remoted(port, sockdir)
    wait_port(port)
    st = tmp_path / "st.sock"
    mport = free_port()
    try:
        import prometheus_client  # noqa: F401
        have_prom = True
    except ImportError:
        have_prom = False
    p = vp(procs, "-R", f"127.0.0.1:{port}", "-M", "v1", "--no-tls", "--status", str(st),
           *(["--metrics", f"127.0.0.1:{mport}"] if have_prom else []), "--log-format", "json")
    sock = vp_socket(sockdir, "v1", procs=procs)
    attach = subprocess.Popen(ATTACH + ["-R", str(sock), "-i", "-", "-o", str(tmp_path / "out.warts")],
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        attach.stdin.write(b"ping -c 60 127.0.0.1\nping -c 60 127.0.0.2\n")
        attach.stdin.flush()

        def running():
            t = status(st)["tasks"]
            return t["running"] + t["queued"] == 2
        # (polled every 50 ms: in-process, not through the CLI)
        wait_for(running, 20, "two tasks running")
        e = status(st)
        assert e["state"] == "up" and e["link"]["state"] == "established"
        assert e["link"]["channels"] == 1 and e["tasks"]["by_type"]["ping"]["started"] == 2
        assert stat.S_IMODE(os.stat(st).st_mode) == 0o700
        if have_prom:
            body = urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics",
                                          timeout=10).read().decode()
            assert "ixp_vp_link_up 1.0" in body
            assert 'ixp_vp_tasks{state="running",type="ping"} 2.0' in body
            assert "ixp_vp_pps_limit 20.0" in body
        took = sigterm_time(procs, p)
        assert took < 2.0, procs.log("ixp-vp")
    finally:
        attach.kill()
        attach.wait(5)
    lines = procs.log("ixp-vp").splitlines()
    docs = [json.loads(line) for line in lines]  # every line is one JSON object
    assert any(d["logger"] == "ixp-vp.remote" and "new session" in d["message"] for d in docs)
    assert not any("Starting factory" in d["message"] or "starting on" in d["message"] for d in docs)


# -- TLS mismatches: one clear line within seconds ---------------------------------------

def _line_within(procs, name, text, seconds):
    t0 = time.monotonic()
    wait_for(lambda: text in procs.log(name), seconds, repr(text))
    return time.monotonic() - t0


def test_tls_vp_meets_a_plaintext_controller(procs, tmp_path, pki):  # noqa: F811
    port = free_port()
    remoted(procs, port, tmp_path / "socks")
    vp(procs, "-R", f"localhost:{port}", "-M", "v1", "--tls-ca", pki["ca"])
    # the controller reads the ClientHello as a frame header: it closes at once
    # (a sequence number that is not 0) or waits for the rest of a "frame" that
    # never comes; either way the VP says why within TLS_HANDSHAKE_TIME
    wait_for(lambda: "give this VP --no-tls" in procs.log("ixp-vp"), 12, "the diagnosis")
    log = procs.log("ixp-vp")
    assert "probably does not use TLS" in log or "no TLS answer from the controller" in log
    assert "Traceback" not in log


def test_plaintext_vp_meets_a_tls_controller(procs, tmp_path, pki):  # noqa: F811
    port = free_port()
    remoted(procs, port, tmp_path / "socks", "--tls-cert", pki["scert"], "--tls-key", pki["skey"])
    vp(procs, "-R", f"127.0.0.1:{port}", "-M", "v1", "--no-tls")
    _line_within(procs, "ixp-vp", "expects TLS", 10)
    assert "drop --no-tls" in procs.log("ixp-vp")


@requires_tool("sc_remoted")
def test_tls_vp_meets_sc_remoted(procs, tmp_path, pki):  # noqa: F811
    port = free_port()
    sockdir = tmp_path / "socks"
    sockdir.mkdir()
    procs.sc_remoted(port, sockdir)
    wait_port(port)
    vp(procs, "-R", f"localhost:{port}", "-M", "v1", "--tls-ca", pki["ca"])
    _line_within(procs, "ixp-vp", "probably does not use TLS", 12)


# -- --config and SIGHUP -------------------------------------------------------------

def test_config_file_and_sighup_reload(procs, tmp_path):
    conf = tmp_path / "vp.toml"
    st = tmp_path / "st.sock"
    port = free_port()
    conf.write_text(f'remote = "127.0.0.1:{port}"\nmonitor = "v1"\nno-tls = true\npps = 20\n'
                    f'status = "{st}"\n')
    p = vp(procs, "--config", str(conf))
    wait_for(st.exists, 20, "status socket")
    assert status(st)["monitor"] == "v1"
    conf.write_text(f'remote = "127.0.0.1:{port}"\nmonitor = "v1"\nno-tls = true\npps = 150\n'
                    f'status = "{st}"\nlog-level = "warn"\n')
    p.send_signal(signal.SIGHUP)
    _line_within(procs, "ixp-vp", "SIGHUP: reloaded", 10)
    line = [ln for ln in procs.log("ixp-vp").splitlines() if "SIGHUP" in ln][0]
    assert line.endswith(f"SIGHUP: reloaded log level info -> warn, pps 20 -> 150 (from {conf})")
    assert status(st)["probes"]["pps_limit"] == 150
    assert p.poll() is None


def test_bad_config_file_one_line(tmp_path):
    conf = tmp_path / "vp.toml"
    conf.write_text('remote = "127.0.0.1:9"\n\nwindw = 3\n')
    out = subprocess.run(TWISTD + ["-n", "--pidfile=", "ixp-vp", "--config", str(conf)],
                         capture_output=True, timeout=60, cwd=tmp_path)
    assert out.returncode != 0
    text = (out.stdout + out.stderr).decode()
    assert f"{conf}:3: unknown key 'windw' (did you mean 'window'?)" in text
    assert "Traceback" not in text


@pytest.mark.parametrize("what", ["status", "metrics", "unix"])
def test_a_listener_that_cannot_be_opened_is_one_line(tmp_path, what):
    if what == "metrics":
        pytest.importorskip("prometheus_client")
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    arg = {"status": ["--status", str(tmp_path / "missing" / "st.sock")],
           "metrics": ["--metrics", f"127.0.0.1:{busy.getsockname()[1]}"],
           "unix": ["-U", str(tmp_path / "missing" / "c.sock")]}[what]
    try:
        out = subprocess.run(TWISTD + ["-n", "--pidfile=", "ixp-vp", "-R", "127.0.0.1:9", "--no-tls",
                                       "-M", "v1", *arg], capture_output=True, timeout=60, cwd=tmp_path)
    finally:
        busy.close()
    text = (out.stdout + out.stderr).decode()
    assert out.returncode != 0
    assert "Traceback" not in text, text
    assert "ixp-vp: cannot listen on " in text
