"""What every ixpscamper command-line tool does at its outer edge.

A pipeline reader going away (``| head``), Ctrl-C and our own bugs all end
the process with a status and at most one line on stderr, never a
traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable


def guarded(prog: str, body: Callable[[], int]) -> int:
    """Run ``body`` and turn the ways a CLI ends abnormally into exit statuses.

    141 when stdout's reader went away (as a shell reports SIGPIPE), 130 on
    Ctrl-C, 2 with one ``PROG: internal error: ...`` line for anything else.
    """
    try:
        return body()
    except BrokenPipeError:
        # point stdout at /dev/null so the interpreter's final flush of the
        # buffered remainder does not raise again at exit
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except OSError:
            pass
        return 141
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug of ours: still one line, never a traceback
        sys.stderr.write(f"{prog}: internal error: {type(exc).__name__}: {exc}\n")
        return 2


#: The exit statuses every ixpscamper command uses (documented in each man page).
EXIT_OK = 0          # everything asked for was done
EXIT_FAILED = 1      # ran, but something failed (a measurement, a command, input)
EXIT_USAGE = 2       # a mistake on the command line, or an internal error; nothing done
EXIT_UNPRINTED = 3   # ixp-warts2text/json: records the tool does not print were named
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the project's conventions: ``-?`` with ``-h``/``--help``
    (scamper's tools take ``-?``), a usage error is one line ``PROG:
    message`` and exit status 2, and an unknown option is named as such
    rather than reported as some other missing argument."""

    def __init__(self, *args, **kw) -> None:
        add_help = kw.pop("add_help", True)
        kw.setdefault("allow_abbrev", False)
        super().__init__(*args, add_help=False, **kw)
        if add_help:
            self.add_argument("-?", "-h", "--help", action="help", help="show this help and exit")

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: {message}\n")

    def _has_subparsers(self) -> bool:
        return any(isinstance(a, argparse._SubParsersAction) for a in self._actions)

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        argv = list(sys.argv[1:] if args is None else args)
        for tok in argv:
            if tok == "--":
                break
            if not tok.startswith("-") or tok == "-" or _is_number(tok):
                if self._has_subparsers():
                    break  # the subcommand's own parser checks the rest
                continue
            if tok.split("=", 1)[0] not in self._option_string_actions:
                self.error(f"unknown option {tok.split('=', 1)[0]}")
        return super().parse_known_args(argv, namespace)

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        ns, extras = self.parse_known_args(args, namespace)
        if extras:
            self.error(f"unexpected argument {extras[0]!r}")
        return ns


def _is_number(tok: str) -> bool:
    try:
        float(tok)
        return True
    except ValueError:
        return False
