"""twistd ixp-vp: options, the service tree, and the shipped config/unit files."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from twisted.internet import task
from twisted.python import usage

from ixpscamper.vp import tap
from ixpscamper.vp.service import VPService

from tests.vp_helpers import FakeBackend

ROOT = Path(__file__).resolve().parent.parent


def opts(*argv):
    o = tap.Options()
    o.parseOptions(list(argv))
    return o


def test_defaults_and_letters():
    o = opts("-R", "ctl.example.net:31337", "-M", "vp-1.example")
    cfg = o.config()
    assert cfg.remote == "ctl.example.net:31337" and cfg.monitor == "vp-1.example"
    assert cfg.tls is True and cfg.dialect == "current" and cfg.pps == 20 and cfg.window == 0
    cfg = opts("--remote", "[::1]:9", "--no-tls", "--attach-dialect", "2021", "--pps", "500",
               "-U", "/tmp/x.sock").config()
    assert not cfg.tls and cfg.dialect == "2021" and cfg.pps == 500 and cfg.unix == "/tmp/x.sock"


@pytest.mark.parametrize("argv, msg", [
    ([], "give --remote"),
    (["-R", "host"], "expected HOST:PORT"),
    (["-R", "h:99999"], "invalid port"),
    (["-R", "h:1", "-M", "../etc"], "--monitor"),
    (["-R", "h:1", "-M", "a b"], "--monitor"),
    (["-R", "h:1", "--attach-dialect", "2019"], "--attach-dialect"),
    (["-R", "h:1", "--pps", "0"], "pps"),
    (["-R", "h:1", "--tls-cert", "x.pem"], "go together"),
])
def test_bad_options(argv, msg):
    with pytest.raises(usage.UsageError, match=re.escape(msg)):
        opts(*argv)


def test_make_service_tree(tmp_path):
    clock = task.Clock()
    o = opts("-R", "127.0.0.1:9", "--no-tls", "-M", "vp", "-U", str(tmp_path / "c.sock"), "-P", "127.0.0.1:31999")
    svc = tap.makeService(o, reactor=clock, backend=FakeBackend(clock))
    assert isinstance(svc, VPService)
    kinds = sorted(type(s).__name__ for s in svc)
    assert kinds == ["ClientService", "StreamServerEndpointService", "StreamServerEndpointService"]


def test_make_service_refuses_a_foreign_file(tmp_path):
    f = tmp_path / "notasocket"
    f.write_text("keep me")
    o = opts("-U", str(f))
    with pytest.raises(SystemExit, match="exists and is not a socket"):
        tap.makeService(o, reactor=task.Clock(), backend=FakeBackend(task.Clock()))
    assert f.read_text() == "keep me"


def test_tls_needs_readable_ca(tmp_path):
    o = opts("-R", "ctl.example.net:1", "--tls-ca", str(tmp_path / "missing.pem"))
    with pytest.raises(SystemExit, match="--tls-ca"):
        tap.makeService(o, reactor=task.Clock(), backend=FakeBackend(task.Clock()))


def test_shipped_config_and_unit_give_valid_options():
    """The unit's ExecStart with etc/ixp-vp.toml in place of /etc/ixpscamper/ixp-vp.toml."""
    unit = (ROOT / "systemd" / "ixp-vp.service").read_text()
    assert "Restart=always" in unit
    assert re.search(r"^AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN$", unit, re.M)
    assert "User=root" not in unit
    exec_start = re.search(r"^ExecStart=(.*?)(?<!\\)$", unit, re.M | re.S).group(1).replace("\\\n", " ")
    argv = [str(ROOT / "etc" / "ixp-vp.toml") if w == "/etc/ixpscamper/ixp-vp.toml" else w
            for w in shlex.split(exec_start)]
    cfg = opts(*argv[argv.index("ixp-vp") + 1:]).config()
    assert cfg.remote == "controller.example.net:31337" and cfg.monitor == "rc1-ixp-example"
    assert cfg.tls and cfg.tls_ca and cfg.unix
