"""A TLS VP meeting a plaintext controller, and a plaintext VP meeting a TLS
controller: one clear line on both sides within seconds (real twistd ixp-vp
and twistd ixp-remoted on loopback)."""

from __future__ import annotations

import time

import pytest

from tests.conftest import requires_root
from tests.pipeline_helpers import free_port, wait_for
from tests.test_vp_ops_daemon import procs, remoted, vp  # noqa: F401 -- fixture and helpers
from tests.test_vp_tls import pki  # noqa: F401 -- the fixture

pytestmark = [requires_root, pytest.mark.timeout(120)]


def _within(procs, name, text, seconds):  # noqa: F811
    t0 = time.monotonic()
    wait_for(lambda: text in procs.log(name), seconds, f"{name}: {text!r}")
    return time.monotonic() - t0


def test_tls_vp_meets_a_plaintext_controller_both_sides(procs, tmp_path, pki):  # noqa: F811
    port = free_port()
    remoted(procs, port, tmp_path / "socks")
    vp(procs, "-R", f"localhost:{port}", "-M", "v1", "--tls-ca", pki["ca"])
    # the controller names it from the ClientHello at once (no 30 s handshake timer)
    assert _within(procs, "ixp-remoted", "refused: a TLS VP on the plaintext port", 8) < 8
    assert _within(procs, "ixp-vp", "give this VP --no-tls", 8) < 8
    first = [ln for ln in procs.log("ixp-remoted").splitlines() if "refused" in ln][0]
    assert "--tls-cert" in first and "--no-tls" in first
    for name in ("ixp-remoted", "ixp-vp"):
        assert "Traceback" not in procs.log(name)


def test_plaintext_vp_meets_a_tls_controller_both_sides(procs, tmp_path, pki):  # noqa: F811
    port = free_port()
    remoted(procs, port, tmp_path / "socks", "--tls-cert", pki["scert"], "--tls-key", pki["skey"])
    vp(procs, "-R", f"127.0.0.1:{port}", "-M", "v1", "--no-tls")
    assert _within(procs, "ixp-remoted", "plaintext on the TLS port: a plaintext VP", 8) < 8
    # the controller answered with a TLS alert: the VP names it precisely
    assert _within(procs, "ixp-vp", "answered MASTER_NEW with a TLS alert", 8) < 8
    assert "drop --no-tls" in procs.log("ixp-vp")
    for name in ("ixp-remoted", "ixp-vp"):
        assert "Traceback" not in procs.log(name)
