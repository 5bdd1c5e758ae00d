"""The man pages in man/: generated from the programs' option definitions, never drifting.

Each page is regenerated and compared with the committed one; every option
of each program must appear in its page and in its ``--help``; every page
renders with groff and man without a warning.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ixpscamper import manpages
from ixpscamper.manpages import PAGES, Page, esc

ROOT = Path(__file__).resolve().parent.parent
MAN = ROOT / "man"
IDS = [p.name for p in PAGES]

_PY = sys.executable
#: how to run each program without relying on PATH (the venv's or pyenv's scripts)
RUN = {
    "ixp-attach": [_PY, "-m", "ixpscamper.attach"],
    "ixp-scamper": [_PY, "-m", "ixpscamper.scamper_cli"],
    "ixp-warts2text": [_PY, "-c", "import sys; from ixpscamper.warts.cli import main_text; sys.exit(main_text())"],
    "ixp-warts2json": [_PY, "-c", "import sys; from ixpscamper.warts.cli import main_json; sys.exit(main_json())"],
    "ixp-peers": [_PY, "-m", "ixpscamper.peers.cli"],
    "ixp-status": [_PY, "-m", "ixpscamper.ops.status"],
    "ixp-lab": [_PY, "-m", "ixpscamper.lab"],
    "ixp-remoted": [_PY, "-c", "from twisted.scripts.twistd import run; run()", "ixp-remoted"],
    "ixp-vp": [_PY, "-c", "from twisted.scripts.twistd import run; run()", "ixp-vp"],
}

#: options whose program gives no meaning in --help (reported; the page's note explains them)
NO_HELP_YET: set[tuple[str, str]] = set()


def _all_options(page: Page):
    s = page.options()
    yield from ((None, o) for o in s.options + s.positionals)
    for name, _, sub in s.subcommands:
        yield from ((name, o) for o in sub.options)


def test_every_program_has_a_page_and_a_runner():
    assert set(RUN) == set(IDS)
    assert len({p.filename for p in PAGES}) == len(PAGES)


@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_committed_page_is_current(page: Page):
    committed = MAN / page.filename
    assert committed.exists(), f"{committed} missing: run python3 -m ixpscamper.manpages --out man/"
    assert committed.read_text(encoding="utf-8") == manpages.render(page), (
        f"{committed} differs from what the program's options give: "
        "run python3 -m ixpscamper.manpages --out man/ and commit man/")


@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_every_option_and_default_is_in_the_page(page: Page):
    text = manpages.render(page)
    for _, opt in _all_options(page):
        for name in opt.names:
            assert r"\fB" + esc(name) + r"\fR" in text, f"{page.name}: {name} not in its page"
        if opt.default is not None:
            assert esc(manpages._default_text(opt.default)) in text, \
                f"{page.name}: default {opt.default!r} of {opt.key} not in its page"
        if not opt.names:
            assert r"\fI" + esc(opt.metavar) + r"\fR" in text


@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_every_option_is_in_help_output(page: Page):
    out = ""
    for argv in page.help_argv:
        res = subprocess.run(RUN[page.name] + list(argv), capture_output=True, text=True,
                             cwd=ROOT, timeout=60)
        assert res.returncode == 0, f"{page.name} {' '.join(argv)}: {res.returncode} {res.stderr}"
        out += res.stdout
    for sub, opt in _all_options(page):
        for name in opt.names or (opt.metavar,):
            assert name in out, f"{page.name}{' ' + sub if sub else ''}: {name} missing from --help"


@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_every_option_has_a_meaning(page: Page):
    missing = {(page.name, o.key) for _, o in _all_options(page) if not o.help.strip()}
    assert missing <= NO_HELP_YET, f"options without a help string: {sorted(missing - NO_HELP_YET)}"


def _render_env():
    env = dict(os.environ, LC_ALL="C.UTF-8", MANWIDTH="80")
    env.pop("MAN_KEEP_FORMATTING", None)
    return env


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff not installed (apt-get install groff-base)")
@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_groff_renders_without_warnings(page: Page):
    res = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", str(MAN / page.filename)],
                         capture_output=True, text=True, env=_render_env(), timeout=60)
    assert res.returncode == 0 and res.stderr == "", res.stderr


@pytest.mark.skipif(shutil.which("man") is None or shutil.which("groff") is None,
                    reason="man-db / groff not installed")
@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_man_renders_without_warnings(page: Page):
    res = subprocess.run(["man", "--warnings=w", "-l", str(MAN / page.filename)],
                         capture_output=True, text=True, env=_render_env(), timeout=60)
    assert res.returncode == 0 and res.stderr == "", res.stderr
    shown = re.sub(".\b", "", res.stdout)  # overstrike, should a pager setting ask for it
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXAMPLES", "SEE ALSO"):
        assert f"\n{section}\n" in shown, f"{page.name}: no {section} section"
    if page.daemon:
        assert "\nSIGNALS\n" in shown and "\nFILES\n" in shown
    for _, opt in _all_options(page):
        for name in opt.names:
            assert name in shown, f"{page.name}: {name} not shown by man"


def test_note_for_an_option_the_program_lacks_is_refused(monkeypatch):
    from ixpscamper.mantext import status
    monkeypatch.setattr(status, "OPTION_NOTES", {"--no-such-option": "x"}, raising=False)
    with pytest.raises(ValueError, match="--no-such-option"):
        manpages.render(next(p for p in PAGES if p.name == "ixp-status"))


def test_roff_escaping():
    assert esc(".TH x") == r"\&.TH x"
    assert esc("a\\b -x") == r"a\eb \-x"
    lines = manpages.blocks("one `-R` ~file~\n\n    .literal\n\n- item\nT :: d")
    assert r"one \fB\-R\fR \fIfile\fR" in lines
    assert r"\&.literal" in lines
    assert ".TP" in lines and r".IP \(bu 2" in lines


def test_main_writes_the_pages(tmp_path):
    assert manpages.main(["--out", str(tmp_path), "ixp-status"]) == 0
    assert (tmp_path / "ixp-status.1").read_text() == manpages.render(
        next(p for p in PAGES if p.name == "ixp-status"))
    assert manpages.main(["--out", str(tmp_path), "nope"]) == 2


def test_twisted_flag_states_no_default():
    """A flag's 0 in usage.Options.defaults means 'not given', not a default to print."""
    from twisted.python import usage

    class Opts(usage.Options):
        optFlags = [["quiet", "q", "say less"]]
        optParameters = [["count", "c", 0, "how many"]]

    opts = {o.key: o for o in manpages.from_twisted(Opts, "x").options}
    assert opts["--quiet"].default is None and opts["--quiet"].metavar is None
    assert opts["--count"].default == 0


def test_command_language_covers_every_option_letter(monkeypatch):
    """ixp-scamper(1) documents each trace/ping letter the parser accepts, with its range."""
    from ixpscamper import commands as C
    page = next(p for p in PAGES if p.name == "ixp-scamper")
    text = manpages.render(page)
    for spec in (C._TRACE_SPEC, C._PING_SPEC):
        for letter in spec:
            assert "\n" + r"\fB\-" + esc(letter) + r"\fR" in text
    for letter, (*_, lo, hi) in C._TRACE_INTS.items():
        assert f"Range {lo} to {hi}." in text
    for method in C.TRACE_METHODS:
        assert r"\fB" + esc(method) + r"\fR" in text
    # a letter the parser learns without prose here stops the build
    monkeypatch.setitem(C._TRACE_SPEC, "y", "num")
    with pytest.raises(ValueError, match="'y'"):
        manpages.render(page)
