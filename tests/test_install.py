"""Installing on Debian as Debian expects: the virtual environment made by
scripts/setup.sh from /usr/bin/python3 (PEP 668: no pip on the system
interpreter), .ci/run, the operator install scripts/install.sh with DESTDIR,
and the systemd units, sysusers.d and tmpfiles.d snippets it installs."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from conftest import IS_ROOT, have_tool, requires_root, requires_tool

REPO = Path(__file__).resolve().parent.parent
SYSTEMD = REPO / "systemd"
UNITS = ("ixp-remoted.service", "ixp-vp.service")
DEFAULT_PREFIX = "/opt/ixpscamper"
DEBIAN_PYTHON = Path("/usr/bin/python3")
APT_PACKAGES = ("python3", "python3-venv", "scamper", "iproute2", "procps")

# What a checkout needs for setup, .ci/run and install (tests/ is left out:
# the copy gets an empty one, so .ci/run's pytest collects nothing).
CHECKOUT_PARTS = ("pyproject.toml", "README.md", "LICENSE", "src", "twisted", "systemd", "etc",
                  "docs", "man", "scripts", ".ci")
IGNORE = shutil.ignore_patterns(".venv", "__pycache__", "*.egg-info", "dropin.cache", "build")

# Stands in for Debian's python3 with PEP 668 in force, whether or not this
# machine's /usr/bin/python3 has its EXTERNALLY-MANAGED marker: pip on it
# fails as Debian's does; every call is logged.
PEP668_PYTHON = """#!/bin/sh
echo "$*" >> {log}
case " $* " in
  *" -m pip "*|*" -mpip "*)
    echo "error: externally-managed-environment" >&2; exit 1 ;;
esac
exec {python} "$@"
"""


def unit_settings(text: str) -> list[tuple[str, str]]:
    """(key, value) of a unit file in order, continuation lines joined."""
    out: list[tuple[str, str]] = []
    logical = re.sub(r"\\\n", " ", text)
    for line in logical.splitlines():
        line = line.strip()
        if not line or line[0] in "#;[" or "=" not in line:
            continue
        key, _, value = line.partition("=")
        out.append((key.strip(), value.strip()))
    return out


def values(settings: list[tuple[str, str]], key: str) -> list[str]:
    return [v for k, v in settings if k == key]


def exec_start(unit: Path) -> list[str]:
    (line,) = values(unit_settings(unit.read_text()), "ExecStart")
    return shlex.split(line)


# -- the units, snippets and LICENSE as files --------------------------------


@pytest.mark.parametrize("unit", UNITS)
def test_units_start_the_venvs_twistd_by_absolute_path(unit):
    # systemd's PATH holds no venv: /usr/bin/env twistd exits 127 there.
    argv = exec_start(SYSTEMD / unit)
    assert argv[0] == f"{DEFAULT_PREFIX}/venv/bin/twistd"
    assert argv[1:4] == ["--nodaemon", "--pidfile=", "--logfile=-"]
    assert argv[4] == unit.removesuffix(".service")
    assert int(values(unit_settings((SYSTEMD / unit).read_text()), "LimitNOFILE")[0]) >= 65536


def test_vp_unit_hands_its_tls_files_over_as_credentials():
    # A DynamicUser= cannot read root-owned keys; LoadCredential= copies them
    # into the service's credentials directory (%d) readable by it alone.
    settings = unit_settings((SYSTEMD / "ixp-vp.service").read_text())
    assert values(settings, "DynamicUser") == ["yes"]
    creds = dict(v.split(":", 1) for v in values(settings, "LoadCredential"))
    argv = exec_start(SYSTEMD / "ixp-vp.service")
    for opt in ("--tls-ca", "--tls-cert", "--tls-key"):
        arg = argv[argv.index(opt) + 1]
        assert arg.startswith("%d/"), (opt, arg)
        name = arg[3:]
        assert name in creds, (opt, name, creds)
        assert creds[name].startswith("/etc/ixpscamper/tls/")
    assert "$IXP_VP_TLS" not in argv


def test_sysusers_and_tmpfiles_match_the_controller_unit():
    settings = unit_settings((SYSTEMD / "ixp-remoted.service").read_text())
    user, group = values(settings, "User")[0], values(settings, "Group")[0]
    sysusers = [line.split() for line in (SYSTEMD / "ixpscamper.sysusers").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    assert ["u", user] == sysusers[0][:2] and user == group == "ixpscamper"
    tmpfiles = [line.split() for line in (SYSTEMD / "ixpscamper.tmpfiles").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    assert ["d", "/run/ixp-remoted", "0750", user, group, "-"] in tmpfiles
    # RuntimeDirectory= must not fight tmpfiles over the mode.
    assert values(settings, "RuntimeDirectory") == ["ixp-remoted"]
    assert values(settings, "RuntimeDirectoryMode") == ["0750"]


def test_license_is_the_gpl2_text_pyproject_names():
    text = (REPO / "LICENSE").read_text()
    assert text.split("\n", 2)[:2] == ["                    GNU GENERAL PUBLIC LICENSE",
                                       "                       Version 2, June 1991"]
    debian = Path("/usr/share/common-licenses/GPL-2")
    if debian.exists():
        assert text == debian.read_text()
    pyproject = (REPO / "pyproject.toml").read_text()
    assert re.search(r'^license = "GPL-2\.0-or-later"$', pyproject, re.M)
    assert re.search(r'^license-files = \["LICENSE"\]$', pyproject, re.M)


def test_readme_test_command_is_what_ci_runs():
    section = (REPO / "README.md").read_text().split("## The two commands", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]
    assert commands[0] == "bash scripts/demo.sh"
    assert commands[1] == "bash scripts/test.sh"
    assert re.search(r"^bash scripts/test\.sh \"\$@\"$", (REPO / ".ci" / "run").read_text(), re.M)


@requires_tool("systemd-analyze")
def test_units_verify_without_a_message_and_expose_little(tmp_path):
    twistd = Path(sys.executable).parent / "twistd"
    if not twistd.exists():
        pytest.skip(f"no twistd next to {sys.executable}")
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    (tmp_path / "venv" / "bin" / "twistd").symlink_to(twistd)
    for unit in UNITS:
        text = (SYSTEMD / unit).read_text().replace(f"{DEFAULT_PREFIX}/", f"{tmp_path}/")
        (tmp_path / unit).write_text(text)
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", *(str(tmp_path / u) for u in UNITS)],
                       capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout + r.stderr) == (0, "")
    for unit in UNITS:
        r = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(tmp_path / unit)],
                           capture_output=True, text=True, timeout=60)
        m = re.search(r"Overall exposure level for \S+: (\d+\.\d)", r.stdout)
        assert m, r.stdout[-500:] + r.stderr
        assert float(m.group(1)) <= 2.0, (unit, m.group(1))


# -- setup.sh and .ci/run on a copy of the checkout ----------------------------


def _apt_ready() -> bool:
    def installed(pkg: str) -> bool:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True)
        return r.stdout == "install ok installed"
    return have_tool("dpkg-query") and all(installed(p) for p in APT_PACKAGES)


needs_debian = pytest.mark.skipif(
    not DEBIAN_PYTHON.exists() or not (IS_ROOT or _apt_ready()),
    reason="needs Debian's /usr/bin/python3 and either root or the packages " + " ".join(APT_PACKAGES))


class Checkout:
    """A private copy of the checkout with a fake PEP 668 python3 first on PATH."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / "checkout"
        self.dir.mkdir()
        for part in CHECKOUT_PARTS:
            src = REPO / part
            if not src.exists():
                continue  # (a part missing is for the scripts to notice)
            if src.is_dir():
                shutil.copytree(src, self.dir / part, symlinks=True, ignore=IGNORE)
            else:
                shutil.copy2(src, self.dir / part)
        (self.dir / "tests").mkdir()
        self.bin = root / "bin"
        self.bin.mkdir()
        self.log = root / "python3.log"
        self.python = self.bin / "python3"
        self.python.write_text(PEP668_PYTHON.format(log=shlex.quote(str(self.log)),
                                                    python=shlex.quote(str(DEBIAN_PYTHON))))
        self.python.chmod(0o755)
        self.home = root / "home"
        self.home.mkdir()
        self.tmp = root / "tmp"
        self.tmp.mkdir()

    def env(self, **extra: str) -> dict[str, str]:
        # No pyenv on PATH: the `python3` found there is Debian's (the fake).
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYENV", "VIRTUAL_ENV", "PYTHON"))}
        env.update(PATH=f"{self.bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                   HOME=str(self.home), TMPDIR=str(self.tmp), IXP_PYTHON=str(self.python))
        env.update(extra)
        return env

    def run(self, *argv: str, timeout: float = 600, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(argv), cwd=self.dir, env=self.env(**env), capture_output=True,
                              text=True, timeout=timeout)

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    co = Checkout(tmp_path_factory.mktemp("install"))
    co.first_setup = co.run("bash", "scripts/setup.sh")
    return co


@needs_debian
@pytest.mark.slow
def test_setup_makes_the_venv_from_debians_python_and_never_runs_pip_on_it(checkout):
    r = checkout.first_setup
    assert r.returncode == 0, r.stderr[-3000:]
    calls = checkout.calls()
    assert any(re.search(r"-m venv\b", c) for c in calls), calls
    assert not [c for c in calls if "pip" in c], calls
    venv_python = checkout.dir / ".venv" / "bin" / "python"
    probe = subprocess.run(
        [str(venv_python), "-c",
         "import sys, ixpscamper; print(sys.base_prefix); print(sys.prefix); print(ixpscamper.__file__)"],
        capture_output=True, text=True, check=True, env=checkout.env())
    base, prefix, module = probe.stdout.splitlines()
    assert base == "/usr" and Path(prefix) == checkout.dir / ".venv"
    assert Path(module).resolve().is_relative_to(checkout.dir.resolve())
    # The editable "compat" install exposes src/twisted/plugins to twistd.
    helptext = subprocess.run([str(checkout.dir / ".venv" / "bin" / "twistd"), "--help"],
                              capture_output=True, text=True, env=checkout.env()).stdout
    assert re.search(r"^\s+ixp-remoted\s", helptext, re.M) and re.search(r"^\s+ixp-vp\s", helptext, re.M)


@needs_debian
@pytest.mark.slow
def test_setup_a_second_time_does_nothing(checkout):
    assert checkout.first_setup.returncode == 0, checkout.first_setup.stderr[-3000:]
    before = len(checkout.calls())
    r = checkout.run("bash", "scripts/setup.sh")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert not [c for c in checkout.calls()[before:] if "venv" in c or "pip" in c]


@needs_debian
@pytest.mark.slow
def test_ci_run_fails_when_pytest_collects_no_tests(checkout):
    assert checkout.first_setup.returncode == 0, checkout.first_setup.stderr[-3000:]
    r = checkout.run("bash", ".ci/run")
    assert r.returncode == 1, (r.stdout[-2000:], r.stderr[-2000:])
    assert "ci: FAIL: pytest collected no tests" in r.stderr
    assert "ci: python 3." in r.stdout


# -- install.sh with DESTDIR -----------------------------------------------------


def _system_state(paths: list[Path]) -> dict[str, tuple[bool, float]]:
    return {str(p): (p.exists(), p.stat().st_mtime if p.exists() else 0.0) for p in paths}


def _tree(root: Path) -> dict[str, float]:
    return {str(p.relative_to(root)): p.lstat().st_mtime for p in root.rglob("*")
            if ".venv" not in p.relative_to(root).parts}


class Installed:
    """One run of install.sh with DESTDIR and a prefix of its own, and what it touched."""

    def __init__(self, checkout: Checkout) -> None:
        self.prefix = f"/opt/ixpscamper-test-{uuid.uuid4().hex[:8]}"
        self.dest = checkout.root / "destdir"
        watched = [Path(self.prefix), Path("/etc/ixpscamper"), Path("/usr/share/doc/ixpscamper"),
                   Path("/usr/lib/sysusers.d/ixpscamper.conf"), Path("/usr/lib/tmpfiles.d/ixpscamper.conf"),
                   *(Path("/usr/lib/systemd/system") / u for u in UNITS)]
        trees = (checkout.dir, checkout.home, checkout.tmp)
        self.before = (_system_state(watched), *map(_tree, trees))
        calls = len(checkout.calls())
        self.result = checkout.run("bash", "scripts/install.sh", "--prefix", self.prefix, DESTDIR=str(self.dest))
        self.after = (_system_state(watched), *map(_tree, trees))
        self.calls = checkout.calls()[calls:]


@pytest.fixture(scope="module")
def installed(checkout):
    return Installed(checkout)


@needs_debian
@pytest.mark.slow
def test_install_with_destdir_lays_out_a_debian_install_and_writes_nothing_else(installed):
    r, prefix, dest = installed.result, installed.prefix, installed.dest
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-3000:])
    # Nothing outside DESTDIR: not the system, the checkout, HOME or TMPDIR;
    # and no pip on the base interpreter.
    assert installed.after == installed.before
    assert not [c for c in installed.calls if "pip" in c], installed.calls

    def mode(rel: str) -> int:
        return stat.S_IMODE((dest / rel.lstrip("/")).stat().st_mode)

    for unit in UNITS:
        assert mode(f"/usr/lib/systemd/system/{unit}") == 0o644
        argv = exec_start(dest / "usr/lib/systemd/system" / unit)
        assert argv[0] == f"{prefix}/venv/bin/twistd"
        assert DEFAULT_PREFIX + "/" not in (dest / "usr/lib/systemd/system" / unit).read_text()
    assert mode("/usr/lib/sysusers.d/ixpscamper.conf") == 0o644
    assert mode("/usr/lib/tmpfiles.d/ixpscamper.conf") == 0o644
    for conf in ("ixp-remoted.toml", "ixp-vp.toml"):
        assert (dest / "etc/ixpscamper" / conf).read_bytes() == (REPO / "etc" / conf).read_bytes()
        assert mode(f"/etc/ixpscamper/{conf}") == 0o644
    assert not list((dest / "etc/ixpscamper").glob("*.conf"))  # the old EnvironmentFiles
    assert ((dest / "usr/share/doc/ixpscamper/grafana-ixpscamper.json").read_bytes()
            == (REPO / "etc/grafana-ixpscamper.json").read_bytes())
    assert mode("/etc/ixpscamper/tls") == 0o700
    for doc in ("README.md", "architecture.md", "operators-guide.md", "LICENSE"):
        assert (dest / "usr/share/doc/ixpscamper" / doc).is_file()
    for page in ("man1/ixp-attach.1.gz", "man1/ixp-peers.1.gz", "man8/ixp-vp.8.gz",
                 "man8/ixp-remoted.8.gz"):
        assert mode(f"/usr/share/man/{page}") == 0o644, page
    venv = dest / prefix.lstrip("/") / "venv"
    for prog in ("twistd", "ixp-attach", "ixp-warts2text", "ixp-warts2json", "ixp-scamper", "ixp-lab",
                 "ixp-peers", "ixp-status"):
        script = venv / "bin" / prog
        assert os.access(script, os.X_OK), prog
        assert script.read_text().splitlines()[0] == f"#!{prefix}/venv/bin/python"
    # The daemons cannot write below PREFIX: byte code and twistd's plugin
    # cache are there already.
    site = next((venv / "lib").glob("python3.*/site-packages"))
    assert (site / "twisted/plugins/dropin.cache").is_file()
    assert list((site / "ixpscamper/__pycache__").glob("attach.cpython-*.pyc"))
    # Not one file names the staging directory.
    named = [str(p) for p in dest.rglob("*") if p.is_file() and not p.is_symlink()
             and str(dest).encode() in p.read_bytes()]
    assert named == []


@needs_debian
@requires_root
@requires_tool("unshare")
@requires_tool("systemd-analyze")
@pytest.mark.slow
def test_installed_tree_works_in_its_final_place(installed, tmp_path):
    """In a private mount namespace the DESTDIR tree is put where it belongs:
    the installed twistd lists both plugins, systemd-analyze verify is silent
    on the installed units, and sysusers/tmpfiles make the socket directory."""
    r, prefix, dest = installed.result, installed.prefix, installed.dest
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-3000:])
    units = " ".join(shlex.quote(str(dest / "usr/lib/systemd/system" / u)) for u in UNITS)
    script = f"""set -e
mount -t tmpfs tmpfs /opt
mkdir -p {prefix}
mount --bind {shlex.quote(str(dest / prefix.lstrip('/')))} {prefix}
{prefix}/venv/bin/twistd --help
echo '--- verify'
systemd-analyze verify --man=no {units} 2>&1
"""
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    helptext, verify = r.stdout.split("--- verify\n")
    assert re.search(r"^\s+ixp-remoted\s", helptext, re.M) and re.search(r"^\s+ixp-vp\s", helptext, re.M)
    assert verify == ""
    assert not Path(prefix).exists()

    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "run").mkdir()
    subprocess.run(["systemd-sysusers", f"--root={root}", str(dest / "usr/lib/sysusers.d/ixpscamper.conf")],
                   check=True, capture_output=True, timeout=60)
    subprocess.run(["systemd-tmpfiles", f"--root={root}", "--create",
                    str(dest / "usr/lib/tmpfiles.d/ixpscamper.conf")], check=True, capture_output=True, timeout=60)
    passwd = {f[0]: f for f in (line.split(":") for line in (root / "etc/passwd").read_text().splitlines())}
    group = {f[0]: f for f in (line.split(":") for line in (root / "etc/group").read_text().splitlines())}
    st = (root / "run/ixp-remoted").stat()
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o750
    assert (st.st_uid, st.st_gid) == (int(passwd["ixpscamper"][2]), int(group["ixpscamper"][2]))
    assert passwd["ixpscamper"][6] in ("/usr/sbin/nologin", "/sbin/nologin")
