"""``ixp-warts2text`` and ``ixp-warts2json``: print warts files like scamper's tools.

Usage: ``ixp-warts2text [FILE ...]`` (standard input when no FILE or ``-``).
Every intact record before a fault is printed; then one line
``PROG: FILE: offset N: reason`` goes to stderr and the exit status is 1.

A measurement record the tool prints nothing for (sc_warts2text prints only
ally among the dealias methods; records of types neither scamper version
prints) is not dropped silently: one line ``PROG: FILE: offset N: TYPE
record not printed`` goes to stderr, the rest of the file is printed, and
the exit status is 3 (unless a fault makes it 1).

A regular file of :data:`PARALLEL_MIN` bytes or more is printed by two
processes where the machine has two cores (the second half rendered by a
forked child into a temporary file, copied out after the first half):
what is printed, in what order, and the exit status are those of one
pass.  ``IXP_WARTS_JOBS=1`` in the environment keeps to one process.
"""

from __future__ import annotations

import argparse
import gc
import io
import os
import stat
import sys
from typing import Callable, Optional, Sequence

from ixpscamper.cli_support import guarded

from ixpscamper.warts.jsonfmt import render_json
from ixpscamper.warts.records import CycleStart, CycleStop, WartsList
from ixpscamper.warts.reader import (WartsError, _Resolver, iter_part, iter_records_at, iter_text,
                                     record_name, split_point)

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


def _text_lines(f, unprinted=None, part=None):
    """sc_warts2text's output for the records of ``f``; ``unprinted(offset,
    name)`` for each record it prints nothing for.  ``part``: ``(resolver,
    start, stop)`` to read only that part of a file (see :func:`_dump_two`)."""
    if part is not None:
        return iter_part(f, "sc_warts2text", *part, True, unprinted)
    return iter_text(f, like="sc_warts2text", unprinted_name=unprinted)


def _json_lines(f, unprinted=None, part=None):
    """sc_warts2json's output for the records of ``f`` (arguments as above)."""
    recs = (iter_part(f, "sc_warts2json", *part, False) if part is not None
            else iter_records_at(f, like="sc_warts2json"))
    for off, rec in recs:
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


_AUTO = object()


def _dump(prog: str, name: str, f, render: Callable, out, err=None, same=_AUTO,
          part=None) -> int:
    buf: list[str] = []
    size = 0
    skipped = []
    if err is None:
        err = sys.stderr
    # The notes come in order with the output where a reader sees both in
    # one file (a terminal, 2>&1): there they join the output's own buffer,
    # which writes the same bytes in the same order as a flush of the
    # output before each note.  Where the two differ, the notes go out in
    # blocks; where it cannot be told, each note flushes the output.
    if same is _AUTO:
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
        for s in (render(f, unprinted) if part is None else render(f, unprinted, part)):
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


#: a regular file at least this large is printed by two processes where the
#: machine has two cores or more: this one prints the first half while a
#: forked child renders the second into a temporary file, which is copied
#: out after it.  ``IXP_WARTS_JOBS=1`` in the environment keeps one process.
PARALLEL_MIN = 2 << 20


def _die_with(parent: int) -> None:
    """Have the kernel kill this process when ``parent`` dies (Linux's
    PR_SET_PDEATHSIG; elsewhere nothing), and exit if it already has."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # it died before the request took effect
        os._exit(2)


def _dump_two(prog: str, name: str, f, render: Callable, out, size: int) -> Optional[int]:
    """:func:`_dump` of a large regular file in two halves at once; None where it cannot be."""
    threading = sys.modules.get("threading")  # (not imported: no other thread)
    if (os.environ.get("IXP_WARTS_JOBS") == "1" or (os.cpu_count() or 1) < 2
            or not hasattr(os, "fork")
            or (threading is not None and threading.active_count() > 1)):
        return None
    import shutil
    import signal
    import tempfile
    same = _same_file(out, sys.stderr)
    if same is None or not hasattr(sys.stderr, "buffer"):
        return None
    like = "sc_warts2json" if render is _json_lines else "sc_warts2text"
    sp = split_point(f, like, size // 2)
    f.seek(0)
    if sp is None:
        return None
    split, res = sp
    out.flush()
    sys.stderr.flush()
    parent = os.getpid()
    try:
        cout = tempfile.TemporaryFile()
        cerr = tempfile.TemporaryFile()
        pid = os.fork()
    except OSError:  # no room for the temporary files, no process: one pass
        return None
    if pid == 0:  # the child: the second half, into the temporary files
        code = 2
        try:
            # a parent killed outright (SIGTERM, SIGKILL) runs no cleanup:
            # the kernel ends this half with it rather than let it render on
            _die_with(parent)
            # a file of its own: the parent's shares its offset with this one
            try:
                f = open(f"/proc/self/fd/{f.fileno()}", "rb")
            except OSError:
                f = open(name, "rb")
            f.seek(split)
            eout = io.TextIOWrapper(cerr, encoding=sys.stderr.encoding or "utf-8",
                                    errors=sys.stderr.errors or "strict", write_through=True)
            code = _dump(prog, name, f, render, cout, err=eout, same=same,
                         part=(res, split, None))
            cout.flush()
            eout.flush()
        except BaseException:  # noqa: B036 - the parent prints this half itself then
            code = 2
        finally:
            os._exit(code)
    try:
        f.seek(0)
        rc = _dump(prog, name, f, render, out, same=same, part=(_Resolver(like), 0, split))
    except BaseException:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    if rc == 1:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        return 1
    crc = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    if crc not in (0, 1, EXIT_UNPRINTED):
        # the child failed (it cannot for bad input): print its half here
        f.seek(split)
        crc = _dump(prog, name, f, render, out, same=same, part=(res, split, None))
    else:
        cout.seek(0)
        shutil.copyfileobj(cout, out, 1 << 20)
        cerr.seek(0)
        notes = cerr.read()
        if notes:
            out.flush()
            sys.stderr.flush()
            sys.stderr.buffer.write(notes)
            sys.stderr.flush()
    cout.close()
    cerr.close()
    if crc == 1:
        return 1
    return EXIT_UNPRINTED if EXIT_UNPRINTED in (rc, crc) else 0


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
                rc = None
                if stat.S_ISREG(st.st_mode) and st.st_size >= PARALLEL_MIN:
                    rc = _dump_two(prog, name, f, render, out, st.st_size)
                if rc is None:
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
