"""The shipped units and TOML files: ``--config``, ``ExecReload`` = SIGHUP, and
the files parse with the plugins' options (what the units run)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def exec_line(unit: str, key: str) -> list[str]:
    text = (ROOT / "systemd" / unit).read_text()
    (line,) = re.findall(rf"^{key}=(.*?)(?<!\\)$", text, re.M | re.S)
    return shlex.split(line.replace("\\\n", " "))


@pytest.mark.parametrize("daemon", ["ixp-remoted", "ixp-vp"])
def test_units_use_the_toml_file_and_reload_with_sighup(daemon):
    unit = f"{daemon}.service"
    argv = exec_line(unit, "ExecStart")
    assert argv[argv.index("--config") + 1] == f"/etc/ixpscamper/{daemon}.toml"
    assert exec_line(unit, "ExecReload") == ["/bin/kill", "-HUP", "$MAINPID"]
    text = (ROOT / "systemd" / unit).read_text()
    assert not re.search(r"^EnvironmentFile=", text, re.M) and "${IXP_" not in text
    assert (ROOT / "etc" / f"{daemon}.toml").is_file()
    assert not (ROOT / "etc" / f"{daemon}.conf").exists()  # the old EnvironmentFile


def test_vp_unit_command_line_parses_with_the_shipped_toml():
    from ixpscamper.vp import tap
    argv = exec_line("ixp-vp.service", "ExecStart")
    args = argv[argv.index("ixp-vp") + 1:]
    args = [str(ROOT / "etc" / "ixp-vp.toml") if a == "/etc/ixpscamper/ixp-vp.toml" else a
            for a in args]
    o = tap.Options()
    o.parseOptions(args)
    cfg = o.config()
    assert cfg.remote and cfg.monitor and cfg.tls and cfg.unix
    # the credentials directory wins over the file's tls-* paths
    assert cfg.tls_ca == "%d/controller-ca.pem" and cfg.tls_key == "%d/vp.key"


def test_remoted_unit_command_line_parses_with_the_shipped_toml(tmp_path):
    from ixpscamper.remoted import tap
    argv = exec_line("ixp-remoted.service", "ExecStart")
    args = argv[argv.index("ixp-remoted") + 1:]
    copy = tmp_path / "ixp-remoted.toml"
    copy.write_text((ROOT / "etc" / "ixp-remoted.toml").read_text()
                    .replace("/run/ixp-remoted", str(tmp_path)))
    args = [str(copy) if a == "/etc/ixpscamper/ixp-remoted.toml" else a for a in args]
    o = tap.Options()
    o.parseOptions(args)
    assert o["config"] == str(copy) and o["socket-dir"] == str(tmp_path)
    assert o["status"] == str(tmp_path / "status.sock")
