"""Man pages for every ixpscamper program, generated from the programs' own option definitions.

``python3 -m ixpscamper.manpages --out man/`` writes ``man/ixp-attach.1``
... ``man/ixp-vp.8``.  The options come from the objects the programs parse
their command lines with (argparse parsers, Twisted ``usage.Options``
classes), so a page cannot list an option the program lacks or miss one it
has; the hand-written prose (description, exit status, files, signals,
examples, notes on single options) lives in :mod:`ixpscamper.mantext`.
``tests/test_manpages.py`` regenerates the pages and fails when the
committed ones differ.

Programs whose parser is built inside ``main()`` (``ixp-lab``, its demo,
``ixp-status``) are asked for it by calling ``main(["--help"])`` with
argparse's ``parse_known_args`` intercepted: the parser is captured at the
moment it would parse, before it prints or does anything else.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from typing import Any, Callable, Iterable, Sequence

import attrs

__all__ = ["Option", "OptionSet", "Page", "PAGES", "options_of", "render", "write_pages", "main"]


# -- the option model -------------------------------------------------------------


@attrs.frozen
class Option:
    """One option (or positional argument) as a page shows it."""

    names: tuple[str, ...]          # ("-P", "--port"); () for a positional
    metavar: str | None             # None: a flag that takes no value
    help: str                       # the program's own help text ("" if it has none)
    default: Any = None             # None: no default worth stating
    repeatable: bool = False
    choices: tuple[str, ...] | None = None

    @property
    def key(self) -> str:
        """The name mantext notes use: the first long name, else the first name, else the metavar."""
        for n in self.names:
            if n.startswith("--"):
                return n
        return self.names[0] if self.names else (self.metavar or "")


@attrs.frozen
class OptionSet:
    """The options of a program, or of one of its subcommands."""

    prog: str
    options: tuple[Option, ...]
    positionals: tuple[Option, ...] = ()
    exclusive: tuple[tuple[str, ...], ...] = ()      # groups of Option.key, one of each at most
    subcommands: tuple[tuple[str, str, "OptionSet"], ...] = ()   # (name, help, options)
    description: str = ""


# -- reading argparse parsers -------------------------------------------------------


class _Captured(Exception):
    def __init__(self, parser: argparse.ArgumentParser) -> None:
        super().__init__("parser captured")
        self.parser = parser


def capture_parser(main: Callable[[list[str]], Any], argv: Sequence[str] = ("--help",)) -> argparse.ArgumentParser:
    """The parser ``main(argv)`` builds, taken when it starts parsing (nothing else runs)."""
    real = argparse.ArgumentParser.parse_known_args

    def grab(self, args=None, namespace=None):
        raise _Captured(self)
    argparse.ArgumentParser.parse_known_args = grab  # type: ignore[method-assign]
    try:
        main(list(argv))
    except _Captured as c:
        return c.parser
    finally:
        argparse.ArgumentParser.parse_known_args = real  # type: ignore[method-assign]
    raise RuntimeError(f"{main!r} returned without parsing a command line")


def _argparse_default(action: argparse.Action) -> Any:
    d = action.default
    if d is None or d is False or d == [] or d == "" or d is argparse.SUPPRESS:
        return None
    if isinstance(action, (argparse._StoreTrueAction, argparse._HelpAction, argparse._VersionAction)):
        return None
    return d


def from_argparse(parser: argparse.ArgumentParser) -> OptionSet:
    """The options of an argparse parser (subparsers become subcommands)."""
    options: list[Option] = []
    positionals: list[Option] = []
    subcommands: list[tuple[str, str, OptionSet]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                subcommands.append((name, helps.get(name, ""), from_argparse(sub)))
            continue
        takes_value = action.nargs != 0
        metavar = None
        if takes_value:
            # argparse's own choice: the dest for a positional, DEST for an option
            mv = action.metavar if action.metavar is not None else (
                action.dest.upper() if action.option_strings else action.dest)
            metavar = "|".join(mv) if isinstance(mv, tuple) else str(mv)
        opt = Option(
            names=tuple(action.option_strings), metavar=metavar,
            help=(action.help or "") if action.help is not argparse.SUPPRESS else "",
            default=_argparse_default(action),
            repeatable=isinstance(action, (argparse._AppendAction, argparse._CountAction))
            or (not action.option_strings and action.nargs in ("*", "+")),
            choices=tuple(str(c) for c in action.choices) if action.choices and not isinstance(
                action, argparse._SubParsersAction) else None)
        (options if action.option_strings else positionals).append(opt)
    exclusive = []
    for group in parser._mutually_exclusive_groups:
        keys = tuple(Option(tuple(a.option_strings), None, "").key for a in group._group_actions)
        exclusive.append(keys)
    return OptionSet(prog=parser.prog, options=tuple(options), positionals=tuple(positionals),
                     exclusive=tuple(exclusive), subcommands=tuple(subcommands),
                     description=parser.description or "")


# -- reading Twisted usage.Options ------------------------------------------------------


def _clean_doc(doc: str | None) -> str:
    return " ".join((doc or "").split())


def from_twisted(options_class: type, prog: str) -> OptionSet:
    """The options of a ``twisted.python.usage.Options`` subclass (its ``opt_*`` methods too)."""
    o = options_class()
    takes_value = {n.rstrip("="): n.endswith("=") for n in o.longOpt}
    shorts: dict[str, list[str]] = {}
    for name, long in o.synonyms.items():
        if len(name) == 1:
            shorts.setdefault(long, []).append(name)
    repeatable = set()
    for long in takes_value:
        method = getattr(o, "opt_" + long.replace("-", "_"), None)
        # an opt_ method that accumulates (ours do: --port, --allow) says so in its doc
        if method is not None and "repeatable" in (method.__doc__ or ""):
            repeatable.add(long)
    order = [n.rstrip("=") for n in o.longOpt]
    # help and version are Twisted's own: last, as in twistd's usage
    order = [n for n in order if n not in ("help", "version")] + [n for n in ("help", "version") if n in order]
    out = []
    for long in order:
        default = o.defaults.get(long)
        out.append(Option(
            names=tuple(f"-{s}" for s in sorted(shorts.get(long, []))) + (f"--{long}",),
            metavar=long.upper() if takes_value[long] else None,
            help=_clean_doc(o.docs.get(long)),
            # a flag's "default" is Twisted's 0 for "not given": nothing to state
            default=None if not takes_value[long] or default is None or default == "" else default,
            repeatable=long in repeatable))
    return OptionSet(prog=prog, options=tuple(out), description=_clean_doc(getattr(o, "longdesc", "")))


# -- where each program's options come from -----------------------------------------------


def _attach() -> OptionSet:
    from ixpscamper.attach import build_parser
    return from_argparse(build_parser())


def _scamper() -> OptionSet:
    from ixpscamper.scamper_cli import build_parser
    return from_argparse(build_parser())


def _warts(prog: str) -> Callable[[], OptionSet]:
    def get() -> OptionSet:
        from ixpscamper.warts.cli import build_parser
        return from_argparse(build_parser(prog))
    return get


def _lab() -> OptionSet:
    from ixpscamper import demo, lab
    top = from_argparse(capture_parser(lab.main))
    demo_set = from_argparse(capture_parser(demo.main))
    subs = tuple((n, h, demo_set if n == "demo" else s) for n, h, s in top.subcommands)
    return attrs.evolve(top, subcommands=subs)


def _peers() -> OptionSet:
    from ixpscamper.peers import cli
    builder = getattr(cli, "build_parser", None) or cli._parser
    return from_argparse(builder())


def _status() -> OptionSet:
    from ixpscamper.ops import status
    return from_argparse(capture_parser(status.main))


def _twisted(module: str, prog: str) -> Callable[[], OptionSet]:
    def get() -> OptionSet:
        return from_twisted(importlib.import_module(module).Options, prog)
    return get


@attrs.frozen
class Page:
    """One man page: the program, its section, where its options come from, its prose."""

    name: str
    section: int
    options: Callable[[], OptionSet]
    text: str                     # module in ixpscamper.mantext
    daemon: bool = False          # run under twistd: the synopsis says so, SIGNALS is required
    command_language: bool = False  # add the trace/ping command language (ixpscamper.commands)
    help_argv: tuple[tuple[str, ...], ...] = (("--help",),)

    @property
    def filename(self) -> str:
        return f"{self.name}.{self.section}"


PAGES: tuple[Page, ...] = (
    Page("ixp-attach", 1, _attach, "attach"),
    Page("ixp-scamper", 1, _scamper, "scamper", command_language=True),
    Page("ixp-warts2text", 1, _warts("ixp-warts2text"), "warts2text"),
    Page("ixp-warts2json", 1, _warts("ixp-warts2json"), "warts2json"),
    Page("ixp-peers", 1, _peers, "peers"),
    Page("ixp-status", 1, _status, "status"),
    Page("ixp-lab", 8, _lab, "lab",
         help_argv=(("--help",), ("up", "--help"), ("down", "--help"), ("clean", "--help"),
                    ("demo", "--help"))),
    Page("ixp-remoted", 8, _twisted("ixpscamper.remoted.tap", "ixp-remoted"), "remoted", daemon=True),
    Page("ixp-vp", 8, _twisted("ixpscamper.vp.tap", "ixp-vp"), "vp", daemon=True),
)


def options_of(name: str) -> OptionSet:
    """The option set of the program ``name`` (e.g. ``"ixp-vp"``)."""
    return _page(name).options()


def _page(name: str) -> Page:
    for p in PAGES:
        if p.name == name:
            return p
    raise KeyError(name)


# -- roff ----------------------------------------------------------------------------


def esc(text: str) -> str:
    """Text made safe for roff: backslashes, hyphen-minus as ``\\-`` (so options copy and
    paste as typed), no control character at the start of a line."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return re.sub(r"(?m)^([.'])", r"\\&\1", text)


_INLINE = re.compile(r"`([^`]+)`|~([^~]+)~")


def inline(text: str) -> str:
    """Escape ``text``; `` `x` `` is bold (commands, options, literals), ``~x~`` italic (arguments)."""
    out, pos = [], 0
    for m in _INLINE.finditer(text):
        out.append(esc(text[pos:m.start()]))
        if m.group(1) is not None:
            out.append(r"\fB" + esc(m.group(1)) + r"\fR")
        else:
            out.append(r"\fI" + esc(m.group(2)) + r"\fR")
        pos = m.end()
    out.append(esc(text[pos:]))
    s = "".join(out)
    return re.sub(r"(?m)^([.'])", r"\\&\1", s)


def blocks(text: str) -> list[str]:
    """mantext markup to roff lines.

    Paragraphs are separated by blank lines; a line indented by four spaces
    is literal (an example, shown unfilled); ``- item`` lines are a bullet
    list; ``TERM :: text`` starts a tagged paragraph (continuation lines
    indented by two spaces or more).
    """
    lines = text.strip("\n").splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        if line.startswith("    "):
            lit = []
            while i < len(lines) and (lines[i].startswith("    ") or not lines[i].strip()):
                lit.append(lines[i][4:])
                i += 1
            while lit and not lit[-1].strip():
                lit.pop()
            out += [".PP", ".RS 4", ".nf"] + [esc(x) if x else r"\&" for x in lit] + [".fi", ".RE"]
        elif line.startswith("- "):
            while i < len(lines) and lines[i].startswith("- "):
                item = [lines[i][2:]]
                i += 1
                while i < len(lines) and lines[i].startswith("  ") and not lines[i].startswith("    ") and lines[i].strip():
                    item.append(lines[i].strip())
                    i += 1
                out += [r".IP \(bu 2", inline(" ".join(item))]
        elif " :: " in line and not line.startswith(" "):
            term, _, rest = line.partition(" :: ")
            body = [rest]
            i += 1
            while i < len(lines) and lines[i].startswith("  ") and not lines[i].startswith("    ") and lines[i].strip():
                body.append(lines[i].strip())
                i += 1
            out += [".TP", inline(term), inline("\n".join(body))]
        else:
            para = []
            while i < len(lines) and lines[i].strip() and not lines[i].startswith("    ") \
                    and not lines[i].startswith("- ") and " :: " not in lines[i]:
                para.append(lines[i].strip())
                i += 1
            out += [".PP", inline("\n".join(para))]
    return out


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return text
    first = text.split(None, 1)[0]
    if first.isalpha() and first.islower():  # not "sc_remoted's", "group|other:", "[ip:]port"
        text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


def _option_head(opt: Option) -> str:
    names = ", ".join(r"\fB" + esc(n) + r"\fR" for n in opt.names)
    if opt.metavar is None:
        return names
    mv = r"\fI" + esc(opt.metavar) + r"\fR"
    return f"{names} {mv}" if opt.names else mv


def _default_text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    return str(value)


def option_lines(opt: Option, note: str | None) -> list[str]:
    """The tagged paragraph of one option: its help, the page's note, its default."""
    out = [".TP", _option_head(opt)]
    body = []
    if opt.help:
        body.append(inline(_sentence(opt.help)))
    extra = []
    if opt.choices:
        extra.append("One of " + ", ".join(r"\fB" + esc(c) + r"\fR" for c in opt.choices) + ".")
    if opt.default is not None and "default" not in opt.help.lower():
        extra.append("Default: " + r"\fB" + esc(_default_text(opt.default)) + r"\fR" + ".")
    if opt.repeatable and "repeatable" not in opt.help.lower() and opt.names:
        extra.append("May be given more than once.")
    if extra:
        body.append(" ".join(extra))
    out += body
    if note:
        nb = blocks(note)
        # the note continues the option's paragraph: indented, not a new top-level one
        out += [".IP" if ln == ".PP" else ln for ln in nb]
    return out


def _synopsis_item(opt: Option) -> str:
    name = opt.names[0] if opt.names else ""
    if opt.metavar is None:
        return r"\fB" + esc(name) + r"\fR"
    mv = r"\fI" + esc(opt.metavar) + r"\fR"
    # an unbreakable space: an option and its argument stay on one line
    return (r"\fB" + esc(name) + "\\fR\\ " + mv) if name else mv


def synopsis(page: Page, s: OptionSet, mantext: Any) -> list[str]:
    """SYNOPSIS lines: the page's own when mantext gives one, else built from the options."""
    given = getattr(mantext, "SYNOPSIS", None)
    if given:
        return [".nf"] + [inline(x) for x in given.strip("\n").splitlines()] + [".fi"]
    if page.daemon:
        lead = r"\fBtwistd\fR [\fItwistd\-options\fR] \fB" + esc(page.name) + r"\fR"
    else:
        lead = r"\fB" + esc(page.name) + r"\fR"
    parts = []
    done_groups = set()
    for opt in s.options:
        if opt.key in ("--help", "--version") or "-h" in opt.names:
            continue
        group = next((g for g in s.exclusive if opt.key in g), None)
        if group is not None:
            if group not in done_groups:
                done_groups.add(group)
                members = [o for o in s.options if o.key in group]
                parts.append("[" + " | ".join(_synopsis_item(o) for o in members) + "]")
            continue
        parts.append("[" + _synopsis_item(opt) + "]")
    for pos in s.positionals:
        item = r"\fI" + esc(pos.metavar or "") + r"\fR"
        parts.append(f"[{item}\\ ...]" if pos.repeatable else item)
    if s.subcommands:
        parts.append(r"\fICOMMAND\fR [\fIARGS\fR]")
    return [lead] + parts


def render(page: Page) -> str:
    """The roff source of ``page``."""
    from ixpscamper import mantext as mt
    text = importlib.import_module(f"ixpscamper.mantext.{page.text}")
    s = page.options()
    metavars: dict[str, str] = getattr(text, "METAVARS", {})
    if set(metavars) - {o.key for o in s.options}:
        raise ValueError(f"{page.name}: METAVARS for options the program does not have: "
                         f"{sorted(set(metavars) - {o.key for o in s.options})}")
    s = attrs.evolve(s, options=tuple(
        attrs.evolve(o, metavar=metavars[o.key]) if o.key in metavars and o.metavar else o
        for o in s.options))
    notes: dict[str, str] = getattr(text, "OPTION_NOTES", {})
    unknown = set(notes) - {o.key for o in s.options + s.positionals} - {
        f"{n} {o.key}" for n, _, sub in s.subcommands for o in sub.options}
    if unknown:
        raise ValueError(f"{page.name}: notes for options the program does not have: {sorted(unknown)}")
    out = [
        r'.\" Generated by "python3 -m ixpscamper.manpages" from the program\'s option',
        r'.\" definitions and src/ixpscamper/mantext/' + page.text + ".py; do not edit.",
        f'.TH {esc(page.name.upper())} {page.section} "{mt.DATE}" "ixpscamper {mt.VERSION}" "{mt.MANUAL[page.section]}"',
        # no hyphenation (an option split across lines cannot be copied), ragged right
        ".nh",
        ".ad l",
        ".SH NAME",
        esc(page.name) + r" \- " + esc(text.SUMMARY),
        ".SH SYNOPSIS",
    ]
    out += synopsis(page, s, text)
    out += [".SH DESCRIPTION"] + blocks(text.DESCRIPTION)
    if s.subcommands:
        out += [".SH COMMANDS"]
        for name, help_, sub in s.subcommands:
            head = r"\fB" + esc(name) + r"\fR"
            for o in sub.options:
                if "-h" in o.names:
                    continue
                head += " [" + _synopsis_item(o) + "]"
            out += [".TP", head]
            if help_:
                out.append(inline(_sentence(help_)))
            cmd_note = getattr(text, "COMMAND_NOTES", {}).get(name)
            if cmd_note:
                out += [".IP" if ln == ".PP" else ln for ln in blocks(cmd_note)]
            shown = [o for o in sub.options if "-h" not in o.names]
            if shown:
                out += [".RS"]
                for o in shown:
                    out += option_lines(o, notes.get(f"{name} {o.key}"))
                out += [".RE"]
    out += [".SH OPTIONS"]
    if page.daemon:
        out += blocks(mt.TWISTD_NOTE.format(prog=page.name))
    elif getattr(text, "OPTIONS_INTRO", None):
        out += blocks(text.OPTIONS_INTRO)
    for o in s.options:
        out += option_lines(o, notes.get(o.key))
    for o in s.positionals:
        out += option_lines(o, notes.get(o.key))
    if page.command_language:
        out += command_lines(text)
    for title, attr in (("EXIT STATUS", "EXIT_STATUS"), ("ENVIRONMENT", "ENVIRONMENT"),
                        ("FILES", "FILES"), ("SIGNALS", "SIGNALS")):
        value = getattr(text, attr, None)
        if attr == "SIGNALS" and page.daemon and not value:
            raise ValueError(f"{page.name}: a daemon's page needs SIGNALS")
        if value:
            out += [f".SH {title}"] + blocks(value)
    for title, value in getattr(text, "EXTRA_SECTIONS", ()):
        out += [f".SH {esc(title.upper())}"] + blocks(value)
    out += [".SH EXAMPLES"] + blocks(text.EXAMPLES)
    if getattr(text, "COMPATIBILITY", None):
        out += [".SH COMPATIBILITY"] + blocks(text.COMPATIBILITY)
    refs = list(text.SEE_ALSO)
    out += [".SH SEE ALSO"] + [_ref(r, last=i == len(refs) - 1) for i, r in enumerate(refs)]
    return "\n".join(out) + "\n"


def command_language() -> list[tuple[str, list[tuple[str, str | None, str, Any, str]]]]:
    """The trace and ping options, from ``ixpscamper.commands``' own tables.

    ``[(command, [(letter, argument, text, default, extra), ...]), ...]``;
    raises ValueError when a letter the parser accepts has no prose in
    :mod:`ixpscamper.mantext.commands`, or the prose names a letter it lacks.
    """
    from ixpscamper import commands as C
    from ixpscamper.mantext import commands as T
    out = []
    for kind, spec, ints, methods, cls, prose in (
            ("trace", C._TRACE_SPEC, C._TRACE_INTS, C.TRACE_METHODS, C.TraceOptions, T.TRACE),
            ("ping", C._PING_SPEC, C._PING_INTS, C.PING_METHODS, C.PingOptions, T.PING)):
        if set(spec) != set(prose):
            raise ValueError(f"{kind}: option letters without prose {sorted(set(spec) - set(prose))}, "
                             f"prose without an option {sorted(set(prose) - set(spec))}")
        defaults = {f.name: f.default for f in attrs.fields(cls) if f.default is not attrs.NOTHING}
        rows = []
        for letter in sorted(spec, key=lambda x: (x.lower(), x.isupper())):
            arg, field, text = prose[letter]
            if (arg is None) != (spec[letter] is None):
                raise ValueError(f"{kind} -{letter}: the parser says it "
                                 f"{'takes no' if spec[letter] is None else 'takes a'} value")
            extra = []
            if letter in ints:
                lo, hi = ints[letter][-2:]
                extra.append(f"range {lo} to {hi}")
            if letter == "P":
                extra.append("one of " + ", ".join(f"`{m}`" for m in methods))
            default = defaults.get(field) if field else None
            if isinstance(default, (bool, bytes, tuple)) or (default is None):
                default = None
            rows.append((letter, arg, text, default, "; ".join(extra)))
        out.append((kind, rows))
    return out


def command_lines(mantext_mod: Any) -> list[str]:
    """The COMMANDS section of a page that documents the command language."""
    from ixpscamper.mantext import commands as T
    out = [".SH COMMANDS"]
    for kind, rows in command_language():
        out += [".SS " + kind]
        out += blocks(getattr(T, f"{kind.upper()}_INTRO"))
        for letter, arg, text, default, extra in rows:
            head = r"\fB\-" + esc(letter) + r"\fR" + (r" \fI" + esc(arg) + r"\fR" if arg else "")
            body = _sentence(text)
            if extra:
                body += " " + _sentence(extra[0].upper() + extra[1:])
            if default is not None and "default" not in text:
                body += f" Default: `{default}`."
            out += [".TP", head, inline(body)]
    return out


def _ref(ref: str, last: bool) -> str:
    m = re.fullmatch(r"([^()]+)\((\w+)\)", ref)
    if not m:
        raise ValueError(f"SEE ALSO entries are name(section), not {ref!r}")
    return ".BR " + esc(m.group(1)) + " (" + m.group(2) + ")" + ("" if last else " ,")


def write_pages(outdir: str, pages: Iterable[Page] = PAGES) -> list[str]:
    """Write every page into ``outdir``; the paths written."""
    os.makedirs(outdir, exist_ok=True)
    written = []
    for page in pages:
        path = os.path.join(outdir, page.filename)
        data = render(page)
        with open(path, "w", encoding="utf-8") as f:
            f.write(data)
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """``python3 -m ixpscamper.manpages [--out DIR] [PROGRAM ...]``."""
    ap = argparse.ArgumentParser(prog="python3 -m ixpscamper.manpages",
                                 description="Write the ixpscamper man pages.")
    ap.add_argument("--out", default="man", help="directory to write the pages into (default: man)")
    ap.add_argument("programs", nargs="*", metavar="PROGRAM", help="only these pages (default: all)")
    args = ap.parse_args(argv)
    pages = PAGES
    if args.programs:
        try:
            pages = tuple(_page(p) for p in args.programs)
        except KeyError as e:
            print(f"manpages: no page for {e.args[0]!r}", file=sys.stderr)
            return 2
    for path in write_pages(args.out, pages):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
