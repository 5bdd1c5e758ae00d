"""``twistd -n ixp-remoted`` with the ops options, for real: a stub VP, a user,
the status listing (``ixp-status``) and a metrics scrape, the log lines at
the default level, SIGHUP with --config, and the TLS / plaintext mismatch
named from the first bytes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from ixpscamper.ops import status as ops_status
from ixpscamper.ops.tlsdiag import PLAINTEXT_VP_HINT, TLS_ON_PLAINTEXT_HINT
from ixpscamper.remote.frames import MasterNew, encode_frame

from remotestub import Daemon, StubVP, User, free_port, wait_for
from test_remoted_tls import pki  # noqa: F401 -- the fixture

prom = pytest.importorskip("prometheus_client")


def vp_socket(d: Daemon, prefix: str = "stub-") -> str:
    name = wait_for(lambda: [n for n in d.sockets() if n.startswith(prefix)], 10, "VP socket")[0]
    return os.path.join(d.sockdir, name)


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        return r.read().decode()


def sample(text: str, name: str, labels: str = "") -> float:
    """The value of ``name{labels}`` in a scrape (labels as written, e.g. 'state="zombie"')."""
    want = f"{name}{{{labels}}}" if labels else name
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        if key == want:
            return float(value)
    raise AssertionError(f"{want} not in the scrape:\n{text}")


def status_cli(path: str, *args: str) -> str:
    r = subprocess.run([sys.executable, "-m", "ixpscamper.ops.status", path, *args],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.fixture
def opsd(tmp_path):
    mport = free_port()
    st = str(tmp_path / "status.sock")
    d = Daemon(tmp_path, "--status", st, "--metrics", f"127.0.0.1:{mport}", "-Z", "30")
    d.status, d.mport = st, mport
    yield d
    d.stop()


def test_status_listing_and_metrics_scrape_from_a_real_run(opsd, capsys):
    vp = StubVP(opsd.port).start()
    try:
        path = vp_socket(opsd)
        u = User(path)
        assert u.read_until(5) == b"MORE\n"
        u.send(b"ping -c 1 127.0.0.1\n")
        assert u.read_until(25) == b"MORE\nping -c 1 127.0.0.1\n"
        lport = vp.sock.getsockname()[1]

        doc = ops_status.fetch(opsd.status)
        assert doc["daemon"] == "ixp-remoted" and len(doc["vps"]) == 1
        e = doc["vps"][0]
        assert (e["monitor"], e["address"], e["state"], e["socket"]) == (
            "stub", f"127.0.0.1:{lport}", "up", path)
        assert (e["channels"], e["users"], e["resumes"], e["away_since"]) == (1, 1, 0, None)
        assert e["bytes_out"] == len(b"ping -c 1 127.0.0.1\n")
        assert e["bytes_in"] == len(b"MORE\nping -c 1 127.0.0.1\n")
        assert abs(e["connected_since"] - time.time()) < 120
        listing = status_cli(opsd.status)
        assert "stub" in listing and f"127.0.0.1:{lport}" in listing and " up " in listing
        listing_json = json.loads(status_cli(opsd.status, "--json"))
        assert listing_json[0]["monitor"] == "stub"

        text = scrape(opsd.mport)
        assert sample(text, "ixp_remoted_vps", 'state="connected"') == 1
        assert sample(text, "ixp_remoted_vps", 'state="zombie"') == 0
        assert sample(text, "ixp_remoted_users") == 1
        assert sample(text, "ixp_remoted_channels") == 1
        assert sample(text, "ixp_remoted_registrations_total", 'result="accepted"') == 1
        assert sample(text, "ixp_remoted_bytes_total", 'direction="to_vps"') == e["bytes_out"]
        assert sample(text, "ixp_remoted_bytes_total", 'direction="from_vps"') == e["bytes_in"]

        # the VP goes away and comes back: away, then a resume
        vp.auto_reconnect = False
        vp.cut()
        wait_for(lambda: ops_status.fetch(opsd.status)["vps"][0]["state"] == "away", 10, "away")
        away = ops_status.fetch(opsd.status)["vps"][0]
        assert isinstance(away["away_since"], float)
        assert sample(scrape(opsd.mport), "ixp_remoted_vps", 'state="zombie"') == 1
        vp.auto_reconnect = True  # the stub reconnects (and resumes) on its thread
        wait_for(lambda: ops_status.fetch(opsd.status)["vps"][0]["state"] == "up", 10, "resumed")
        back = ops_status.fetch(opsd.status)["vps"][0]
        assert back["resumes"] == 1 and back["away_since"] is None
        text = scrape(opsd.mport)
        assert sample(text, "ixp_remoted_resumes_total", 'result="ok"') == 1
        # what the lead shows in the closing note
        with capsys.disabled():
            print("\n--- ixp-status", opsd.status)
            print(status_cli(opsd.status), end="")
            print("--- metrics scrape (ixp_remoted_*)")
            print("\n".join(ln for ln in scrape(opsd.mport).splitlines()
                            if ln.startswith("ixp_remoted_")))
        u.close()
        wait_for(lambda: ops_status.fetch(opsd.status)["vps"][0]["users"] == 0, 10, "user gone")
    finally:
        vp.stop()
    log = opsd.logtext()
    assert "[ixp-remoted.user#info] user attached to VP stub-" in log
    assert "[ixp-remoted.user#info] user left VP stub-" in log
    assert "[ixp-remoted.vp#info] VP stub-" in log


def test_default_level_has_no_twisted_factory_noise(opsd):
    vp = StubVP(opsd.port).start()
    try:
        u = User(vp_socket(opsd))
        u.read_until(5)
        u.close()
        wait_for(lambda: "user left" in opsd.logtext(), 10, "user line")
    finally:
        vp.stop()
    log = opsd.logtext()
    for noise in ("starting on", "Starting factory", "Stopping factory", "VPFactory",
                  "MuxFactory", "UserFactory", "_QuietSite", "Site starting"):
        assert noise not in log, (noise, log)


def test_sighup_rereads_registration_limits_from_the_config(tmp_path):
    conf = tmp_path / "remoted.toml"
    conf.write_text('registration-rate = "0"\nlog-level = "info"\n')
    d = Daemon(tmp_path, "--config", str(conf))
    try:
        conf.write_text('registration-rate = "5/s"\nregistration-burst = 7\nlog-level = "debug"\n')
        d.proc.send_signal(signal.SIGHUP)
        line = wait_for(lambda: [ln for ln in d.logtext().splitlines() if "SIGHUP: reloaded" in ln],
                        10, "reload line")[0]
        assert "log level info -> debug" in line
        assert "registration rate 0/s (burst 3) -> 5/s (burst 7)" in line
        conf.write_text('registration-rate = "soon"\n')
        d.proc.send_signal(signal.SIGHUP)
        line = wait_for(lambda: [ln for ln in d.logtext().splitlines() if "reload failed" in ln],
                        10, "failed reload line")[0]
        assert "registration-rate" in line and "Traceback" not in d.logtext()
        assert d.proc.poll() is None
    finally:
        d.stop()


def test_tls_vp_on_the_plaintext_port_is_named_at_once(opsd):
    import ssl
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", opsd.port), timeout=10) as s:
        with pytest.raises((ssl.SSLError, OSError)):
            ctx.wrap_socket(s, server_hostname="x")
    # well before the 30 s handshake timer
    assert time.monotonic() - t0 < 10
    wait_for(lambda: TLS_ON_PLAINTEXT_HINT in opsd.logtext(), 10, "the mismatch line")
    assert opsd.logtext().count("refused: ") == 1
    assert sample(scrape(opsd.mport), "ixp_remoted_rejects_total",
                  'reason="tls_on_plaintext"') == 1


def test_plaintext_vp_on_the_tls_port_is_named_at_once(tmp_path, pki):  # noqa: F811
    mport = free_port()
    d = Daemon(tmp_path, "-c", str(pki / "server.pem"), "-p", str(pki / "server.key"),
               "--metrics", f"127.0.0.1:{mport}")
    try:
        t0 = time.monotonic()
        with socket.create_connection(("127.0.0.1", d.port), timeout=10) as s:
            s.sendall(encode_frame(0, 0, MasterNew(b"plainvp!", b"plain").encode()))
            got = b""
            try:
                while True:
                    b = s.recv(4096)
                    if not b:
                        break
                    got += b
            except OSError:
                pass
        assert time.monotonic() - t0 < 10  # not the 30 s handshake timer
        # what the VP reads back is a TLS alert: it can name the mismatch itself
        from ixpscamper.ops.tlsdiag import first_bytes_mismatch
        assert first_bytes_mismatch(got, expect_tls=False) is not None, got
        wait_for(lambda: PLAINTEXT_VP_HINT in d.logtext(), 10, "the mismatch line")
        time.sleep(0.3)
        assert d.logtext().count("refused") == 1, d.logtext()
        assert sample(scrape(mport), "ixp_remoted_rejects_total",
                      'reason="plaintext_on_tls"') == 1
    finally:
        d.stop()
