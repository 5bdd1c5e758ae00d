"""``ixp-warts2text`` and ``ixp-warts2json``: print warts files like scamper's tools.

Usage: ``ixp-warts2text [FILE ...]`` (standard input when no FILE or ``-``).
Every intact record before a fault is printed; then one line
``PROG: FILE: offset N: reason`` goes to stderr and the exit status is 1.

A measurement record the tool prints nothing for (sc_warts2text prints only
ally among the dealias methods; records of types neither scamper version
prints) is not dropped silently: one line ``PROG: FILE: offset N: TYPE
record not printed`` goes to stderr, the rest of the file is printed, and
the exit status is 3 (unless a fault makes it 1).
"""

from __future__ import annotations

import argparse
import gc
import os
import stat
import sys
from typing import Callable, Optional, Sequence

from ixpscamper.cli_support import guarded

from ixpscamper.warts.jsonfmt import render_json
from ixpscamper.warts.records import CycleStart, CycleStop, WartsList
from ixpscamper.warts.reader import WartsError, iter_records_at, iter_text, record_name

__all__ = ["main_text", "main_json", "run", "build_parser"]

_USAGE = ("usage: {prog} [FILE ...]   (reads standard input when no FILE or '-')\n"
          "exit status: 0 all printed; 1 a fault (named on stderr); 3 records that are "
          "not printed (each named on stderr)\n")
#: exit status when some records were read but cannot be printed
EXIT_UNPRINTED = 3
_CHUNK = 1 << 16


_WHAT = {
    "ixp-warts2text": "Print the records of warts files as text, as sc_warts2text does.",
    "ixp-warts2json": "Print the records of warts files as JSON objects, one a line, as sc_warts2json does.",
}


def build_parser(prog: str) -> argparse.ArgumentParser:
    """The command line of ``prog`` (``ixp-warts2text`` or ``ixp-warts2json``).

    Used for ``--help`` and by ``ixpscamper.manpages``; :func:`run` itself
    only needs to know help from file names, so a file named like an
    option is refused as scamper's tools refuse it.
    """
    p = argparse.ArgumentParser(prog=prog, add_help=False, description=_WHAT.get(prog))
    p.add_argument("-h", "--help", action="help", help="show this help and exit")
    p.add_argument("files", nargs="*", metavar="FILE",
                   help="warts files, read in turn ('-' or none: standard input)")
    return p


def _text_lines(f, unprinted=None):
    """sc_warts2text's output for the records of ``f``; ``unprinted(offset,
    name)`` for each record it prints nothing for."""
    return iter_text(f, like="sc_warts2text", unprinted_name=unprinted)


def _json_lines(f, unprinted=None):
    """sc_warts2json's output for the records of ``f`` (``unprinted`` as above)."""
    for off, rec in iter_records_at(f, like="sc_warts2json"):
        s = render_json(rec)
        if s:
            yield s
        elif unprinted is not None and not isinstance(
                rec, (WartsList, CycleStart, CycleStop)):
            unprinted(off, record_name(rec))


def _same_file(a, b) -> Optional[bool]:
    """Whether file objects ``a`` and ``b`` write to the same file (None if unknown)."""
    try:
        sa, sb = os.fstat(a.fileno()), os.fstat(b.fileno())
    except (OSError, ValueError, AttributeError):
        return None
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _dump(prog: str, name: str, f, render: Callable, out) -> int:
    buf: list[str] = []
    size = 0
    skipped = []
    err = sys.stderr
    # The notes come in order with the output where a reader sees both in
    # one file (a terminal, 2>&1): there they join the output's own buffer,
    # which writes the same bytes in the same order as a flush of the
    # output before each note.  Where the two differ, the notes go out in
    # blocks; where it cannot be told, each note flushes the output.
    same = _same_file(out, err)
    notes: list[str] = []

    def unprinted(off, what):
        nonlocal size
        note = f"{prog}: {name}: offset {off}: {what} record not printed\n"
        skipped.append(off)
        if same and note.isascii():  # (else stderr's own encoding rules, below)
            buf.append(note)
            size += len(note)
        elif same is not False:
            out.write("".join(buf).encode("utf-8", "surrogateescape"))
            out.flush()
            buf.clear()
            err.write(note)
        else:
            notes.append(note)
            if len(notes) >= 1024:
                err.write("".join(notes))
                notes.clear()

    def finish(line: Optional[str] = None):
        out.write("".join(buf).encode("utf-8", "surrogateescape"))
        if notes or line:
            out.flush()
            err.write("".join(notes) + (line or ""))
            notes.clear()

    try:
        for s in render(f, unprinted):
            buf.append(s)
            size += len(s)
            if size >= _CHUNK:
                out.write("".join(buf).encode("utf-8", "surrogateescape"))
                buf.clear()
                size = 0
    except WartsError as e:
        finish(f"{prog}: {name}: offset {e.offset}: {e.reason}\n")
        return 1
    except OSError as e:
        finish(f"{prog}: {name}: read error: {e.strerror or e}\n")
        return 1
    finish()
    return EXIT_UNPRINTED if skipped else 0


def run(prog: str, render: Callable, argv: Sequence[str]) -> int:
    """Render every record of each file in ``argv`` to stdout; return the exit status."""
    if any(a in ("-h", "--help") for a in argv):
        sys.stdout.write(build_parser(prog).format_help())
        return 0
    bad = [a for a in argv if a.startswith("-") and a != "-"]
    if bad:
        sys.stderr.write(f"{prog}: unknown option {bad[0]}\n" + _USAGE.format(prog=prog))
        return 2
    out = sys.stdout.buffer
    status = 0
    for name in (list(argv) or ["-"]):
        if name == "-":
            rc = _dump(prog, name, sys.stdin.buffer, render, out)
        else:
            try:
                f = open(name, "rb")
            except OSError as e:
                out.flush()
                sys.stderr.write(f"{prog}: {name}: {e.strerror or e}\n")
                return 1
            with f:
                st = os.fstat(f.fileno())
                if stat.S_ISREG(st.st_mode) and st.st_size == 0:
                    # scamper's tools cannot tell an empty file's type and refuse it
                    out.flush()
                    sys.stderr.write(f"{prog}: {name}: empty file, not a warts file\n")
                    return 1
                rc = _dump(prog, name, f, render, out)
        if rc == 1:
            return rc
        status = status or rc
    out.flush()
    return status


def _main(prog: str, render: Callable, argv: Optional[Sequence[str]]) -> int:
    if argv is None:
        argv = sys.argv[1:]
    # records are acyclic and short-lived: collecting them in every young
    # generation pass only costs time in this short-lived process
    gc.set_threshold(50_000, 20, 20)
    return guarded(prog, lambda: run(prog, render, argv))


def main_text(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``ixp-warts2text``."""
    return _main("ixp-warts2text", _text_lines, argv)


def main_json(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``ixp-warts2json``."""
    return _main("ixp-warts2json", _json_lines, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main_text())
