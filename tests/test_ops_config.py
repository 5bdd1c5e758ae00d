"""ixpscamper.ops.config: TOML config files driven by usage.Options, and the shipped examples."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from twisted.python import usage

from ixpscamper.ops import config
from ixpscamper.remoted import tap as remoted_tap
from ixpscamper.vp import tap as vp_tap

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path, text, name="c.toml"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def vp_opts(*argv):
    o = vp_tap.Options()
    o.parseOptions(list(argv))
    return o


def test_load_types_follow_the_options(tmp_path):
    p = write(tmp_path, 'remote = "h:1"\npps = 100\nno-tls = true\nmonitor = "m1"\n')
    assert config.load(p, vp_tap.Options) == {"remote": "h:1", "pps": "100", "no-tls": True,
                                              "monitor": "m1"}


@pytest.mark.parametrize("text, line, what", [
    ('remote = "h:1"\n\nremot = "x"\n', 3, "unknown key 'remot' (did you mean 'remote'?)"),
    ('remote = "h:1"\npps = 0\n', 2, "pps = 0: --pps must be 1..10000"),
    ('remote = "h:1"\n# c\n  no-tls = "yes"\n', 3, "no-tls: expected true or false"),
    ('pps = true\n', 1, "pps: expected a string or number"),
    ('remote = ["a:1", "b:2"]\n', 1, "remote: expected a string or number"),
    ('log-level = "loud"\n', 1, "not a log level"),
    ('remote = "h:1"\n[vp]\npps = 3\n', 2, "unknown table [vp]"),
])
def test_bad_keys_and_values_name_file_and_line(tmp_path, text, line, what):
    p = write(tmp_path, text)
    with pytest.raises(config.ConfigFileError) as e:
        config.load(p, vp_tap.Options)
    assert str(e.value).startswith(f"{p}:{line}: ")
    assert what in str(e.value)


def test_syntax_error_and_missing_file(tmp_path):
    p = write(tmp_path, 'remote = "h:1\n')
    with pytest.raises(config.ConfigFileError, match=re.escape(p) + r": .*line 1"):
        config.load(p, vp_tap.Options)
    with pytest.raises(config.ConfigFileError, match="No such file"):
        config.load(str(tmp_path / "nope.toml"), vp_tap.Options)


def test_key_line_ignores_comments_and_tables():
    text = '# pps = 1\n"pps" = 2\n[t]\nremote = "x"\n'
    assert config.key_line(text, "pps") == 2
    assert config.key_line(text, "remote") is None


def test_command_line_overrides_the_file(tmp_path):
    p = write(tmp_path, 'remote = "file.example:1"\nmonitor = "filevp"\npps = 50\nno-tls = true\n')
    o = vp_opts("--config", p, "--pps", "70", "-M", "cli")
    cfg = o.config()
    assert (cfg.remote, cfg.monitor, cfg.pps, cfg.tls) == ("file.example:1", "cli", 70, False)
    assert o["config"] == p and cfg.config == p
    # --config=FILE, and anywhere on the line
    o = vp_opts("--pps=80", f"--config={p}")
    assert o.config().pps == 80 and o.config().monitor == "filevp"


def test_without_config_nothing_changes():
    o = vp_opts("-R", "h:1")
    assert o["config"] is None and o.config().pps == 20


def test_every_vp_option_is_a_key(tmp_path):
    specs = config.option_specs(vp_tap.Options)
    long_opts = {e[0] for e in vp_tap.Options.optParameters} | {e[0] for e in vp_tap.Options.optFlags}
    assert set(specs) == long_opts - {"config"}


def test_errors_found_after_parsing_are_attributed_to_the_file(tmp_path):
    p = write(tmp_path, 'monitor = "ok"\nremote = "nohostport"\n')
    with pytest.raises(usage.UsageError) as e:
        vp_opts("--config", p)
    assert str(e.value).startswith(f"{p}:2: --remote")


def test_repeatable_options_replace_not_add(tmp_path):
    d = tmp_path / "socks"
    d.mkdir()
    p = write(tmp_path, f'port = ["127.0.0.1:31001", "127.0.0.1:31002"]\nsocket-dir = "{d}"\n'
                        'allow = "group"\nzombie = 60\n')
    assert config.load(p, remoted_tap.Options)["port"] == ["127.0.0.1:31001", "127.0.0.1:31002"]
    assert config.load(p, remoted_tap.Options)["allow"] == ["group"]

    # ixp-remoted's Options has the mixin itself now (ConfigFileMixin first)
    RemotedWithConfig = remoted_tap.Options  # noqa: N806
    assert issubclass(RemotedWithConfig, config.ConfigFileMixin)

    o = RemotedWithConfig()
    o.parseOptions(["--config", p])
    assert o["port"] == ["127.0.0.1:31001", "127.0.0.1:31002"] and o["zombie"] == 60
    o = RemotedWithConfig()
    o.parseOptions(["--config", p, "-P", "127.0.0.1:31003"])
    assert o["port"] == ["127.0.0.1:31003"]


def test_a_bad_repeatable_value_names_its_line(tmp_path):
    p = write(tmp_path, '\nport = ["31337", "notaport"]\n')
    with pytest.raises(config.ConfigFileError, match=re.escape(f"{p}:2: port = 'notaport'")):
        config.load(p, remoted_tap.Options)


# -- the shipped examples -----------------------------------------------------------

def _keys_mentioned(path: Path) -> set[str]:
    return {m.group(1) for m in re.finditer(r"^#? ?([a-z][a-z-]*) = ", path.read_text(), re.M)}


def test_shipped_vp_example_is_complete_and_valid():
    path = ROOT / "etc" / "ixp-vp.toml"
    specs = config.option_specs(vp_tap.Options)
    assert _keys_mentioned(path) == set(specs)
    o = vp_opts("--config", str(path))
    cfg = o.config()
    assert cfg.remote.endswith(":31337") and cfg.tls and cfg.monitor


def test_shipped_remoted_example_is_valid_and_agrees_with_the_vp(tmp_path):
    path = ROOT / "etc" / "ixp-remoted.toml"
    values = config.load(str(path), remoted_tap.Options)
    vp = config.load(str(ROOT / "etc" / "ixp-vp.toml"), vp_tap.Options)
    assert [p.rpartition(":")[2] for p in values["port"]] == [vp["remote"].rpartition(":")[2]]
    # every controller option is there (set or commented out); the ops keys too
    mentioned = _keys_mentioned(path)
    assert set(config.option_specs(remoted_tap.Options)) - {"sc-option"} <= mentioned
    assert {"status", "metrics", "log-format", "log-level"} <= mentioned
    # uncommented, the commented-out settings parse too (ops keys once wired)
    text = re.sub(r"^# ((?!status|metrics|log-)[a-z][a-z-]* = )", r"\1", path.read_text(), flags=re.M)
    p = write(tmp_path, text, "all.toml")
    assert "tls-cert" in config.load(p, remoted_tap.Options)


def test_hup_reloader_logs_one_line_and_survives_errors():
    from twisted.internet import task
    from twisted.logger import globalLogPublisher

    seen = []
    calls = iter(["SIGHUP: reloaded pps 1 -> 2"])

    def reload():
        try:
            return next(calls)
        except StopIteration:
            raise ValueError("bad file") from None
    r = config.HupReloader(task.Clock(), reload, "ixp-vp")
    globalLogPublisher.addObserver(seen.append)
    try:
        assert r.run() == "SIGHUP: reloaded pps 1 -> 2"
        assert r.run() == "SIGHUP: reload failed, keeping the old settings: bad file"
    finally:
        globalLogPublisher.removeObserver(seen.append)
    ours = [e for e in seen if e.get("log_namespace") == "ixp-vp.config"]
    assert [e["line"] for e in ours] == ["SIGHUP: reloaded pps 1 -> 2",
                                         "SIGHUP: reload failed, keeping the old settings: bad file"]
