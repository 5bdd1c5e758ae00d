"""``ixp-scamper``: run ping/trace commands once, like ``scamper -I``/``-i``/``-f``.

Usage (as root, or with CAP_NET_RAW and CAP_NET_ADMIN)::

    ixp-scamper [-p PPS] [-w WINDOW] [-O text|warts|json] [-o FILE]
                (-I CMD [-I CMD ...] | [-c CMD] -i ADDR [ADDR ...] | [-c CMD] -f FILE)

The flags are scamper's: ``-I`` complete commands (repeatable); ``-i``
addresses on the command line and ``-f`` a file of addresses (one a line,
``#`` comments and blank lines skipped), each probed with ``-c`` (default
``trace``); ``-p`` packets per second (1..10000, default 20); ``-w`` tasks at
once (0 = no limit); ``-O`` output format (default text); ``-o`` output file
(default standard output).

Every command is parsed (and checked against what the prober can do) before
anything is sent; a bad one ends the run with one line
``ixp-scamper: bad command 'X': reason`` and exit status 1.  Results are
written as each measurement finishes: warts as ``scamper -O warts`` writes
it (list, cycle start, records, cycle stop), text as ``sc_warts2text`` and
JSON as ``sc_warts2json`` print it.  A measurement that could not run is
reported on stderr (``ixp-scamper: 'CMD': reason``) and the exit status is 1;
the others still run.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from collections.abc import Sequence
from typing import IO, Any

import attrs

from ixpscamper.cli_support import EXIT_USAGE, guarded
from ixpscamper.commands import CommandError, Options, parse_command

__all__ = ["main", "Config", "UsageError", "parse_args", "load_commands", "build_parser"]

PROG = "ixp-scamper"
PPS_MIN, PPS_MAX = 1, 10000
WINDOW_MIN, WINDOW_MAX = 0, 65535
FORMATS = ("text", "warts", "json")


class UsageError(Exception):
    """A bad command line; the message is one line for the user."""


@attrs.frozen
class Config:
    """What the command line asks for."""

    commands: tuple[str, ...]
    pps: int = 20
    window: int = 0
    fmt: str = "text"
    outfile: str | None = None


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def build_parser() -> _Parser:
    """The command line of ``ixp-scamper`` (also what ``ixpscamper.manpages`` documents)."""
    p = _Parser(prog=PROG, add_help=False,
                usage=f"{PROG} [-p pps] [-w window] [-O text|warts|json] [-o outfile]\n"
                      "       (-I cmd ... | [-c cmd] -i addr ... | [-c cmd] -f file)",
                description="Run ping and trace measurements once, like scamper -I / -i / -f.")
    p.add_argument("-?", "-h", "--help", action="store_true", dest="help",
                   help="show this help and exit")
    p.add_argument("-I", action="append", dest="cmds", default=[], metavar="CMD",
                   help="a complete ping or trace command (repeatable)")
    p.add_argument("-i", action="store_true", dest="addrs_on_cmdline",
                   help="the arguments are addresses, each probed with -c")
    p.add_argument("-f", dest="infile", metavar="FILE",
                   help="a file of addresses, one a line ('#' comments), each probed with -c")
    p.add_argument("-c", dest="command", metavar="CMD",
                   help="the command for -i and -f addresses (default: trace)")
    p.add_argument("-p", dest="pps", metavar="PPS",
                   help=f"probe packets per second, {PPS_MIN}..{PPS_MAX} (default: 20)")
    p.add_argument("-w", dest="window", metavar="WINDOW",
                   help=f"most measurements at once, {WINDOW_MIN}..{WINDOW_MAX} (default: 0, no limit)")
    p.add_argument("-O", dest="fmt", action="append", default=[], metavar="OPTION",
                   help="output format: text, warts or json (default: text)")
    p.add_argument("-o", dest="outfile", metavar="FILE",
                   help="write the results to FILE (default: standard output)")
    p.add_argument("addresses", nargs="*", metavar="ADDR", help="addresses to probe (with -i)")
    return p


_parser = build_parser


def _int_option(name: str, value: str | None, lo: int, hi: int, default: int) -> int:
    if value is None:
        return default
    try:
        v = int(value, 10)
    except ValueError:
        raise UsageError(f"-{name} {value!r}: expected a number ({lo} <= {name} <= {hi})") from None
    if not lo <= v <= hi:
        raise UsageError(f"-{name} {v}: out of range ({lo} <= {name} <= {hi})")
    return v


def load_commands(lines: Sequence[str], command: str) -> list[str]:
    """Commands for an address file's lines: ``command ADDR`` per address."""
    out = []
    for line in lines:
        addr = line.strip()
        if not addr or addr.startswith("#"):
            continue
        out.append(f"{command} {addr}")
    return out


def parse_args(argv: Sequence[str]) -> Config | None:
    """The configuration for ``argv``; None when only help was asked for.

    Raises UsageError.  Reads the ``-f`` file (not the network).
    """
    args = _parser().parse_args(list(argv))
    if args.help:
        return None
    if args.addresses and not args.addrs_on_cmdline:
        raise UsageError(f"unexpected argument {args.addresses[0]!r} (addresses need -i)")
    modes = sum(bool(x) for x in (args.cmds, args.addrs_on_cmdline, args.infile))
    if modes == 0:
        raise UsageError("nothing to do: give -I CMD, -i ADDR ..., or -f FILE")
    if modes > 1:
        raise UsageError("use only one of -I, -i and -f")
    if args.cmds and args.command:
        raise UsageError("-c applies to -i and -f, not to -I (put the whole command in -I)")
    fmt = "text"
    for option in args.fmt:
        if option.lower() not in FORMATS:
            raise UsageError(f"-O {option}: unsupported option (use text, warts or json)")
        fmt = option.lower()
    command = args.command or "trace"
    if args.cmds:
        commands = list(args.cmds)
    elif args.addrs_on_cmdline:
        if not args.addresses:
            raise UsageError("-i needs at least one address")
        commands = [f"{command} {a}" for a in args.addresses]
    else:
        try:
            with open(args.infile, encoding="utf-8", errors="surrogateescape") as f:
                commands = load_commands(f.read().splitlines(), command)
        except OSError as exc:
            raise UsageError(f"cannot read {args.infile}: {exc.strerror or exc}") from None
        if not commands:
            raise UsageError(f"no addresses in {args.infile}")
    return Config(
        commands=tuple(commands),
        pps=_int_option("p", args.pps, PPS_MIN, PPS_MAX, 20),
        window=_int_option("w", args.window, WINDOW_MIN, WINDOW_MAX, 0),
        fmt=fmt,
        outfile=args.outfile,
    )


def _show(cmd: str) -> str:
    shown = "".join(c if c.isprintable() else "?" for c in cmd)
    return shown if len(shown) <= 200 else shown[:200] + "..."


def parse_all(commands: Sequence[str]) -> list[Options]:
    """Parse every command and check the prober can run it; raises UsageError on the first bad one."""
    try:
        from ixpscamper.prober.specs import unsupported
    except ImportError:  # an older prober without the check: it will refuse at submit
        def unsupported(_options: Any) -> str | None:
            return None
    parsed = []
    for cmd in commands:
        try:
            opts = parse_command(cmd)
        except CommandError as exc:
            raise UsageError(f"bad command '{_show(cmd)}': {exc}") from None
        reason = unsupported(opts)
        if reason:
            raise UsageError(f"bad command '{_show(cmd)}': {reason}")
        parsed.append(opts)
    return parsed


class _Output:
    """Writes the stream in one of the three formats."""

    def __init__(self, fmt: str, fileobj: IO[bytes]):
        from ixpscamper.warts import CycleStart, WartsList, WartsWriter

        self.fmt = fmt
        self.f = fileobj
        self.list = WartsList()
        self.cycle = CycleStart(list=self.list, start_time=int(time.time()), id=0,
                                hostname=socket.gethostname())
        self.writer = WartsWriter(fileobj) if fmt == "warts" else None

    def _emit(self, rec: Any) -> None:
        from ixpscamper.warts import render_json, render_text

        if self.writer is not None:
            self.writer.write(rec)
        else:
            text = render_text(rec) if self.fmt == "text" else render_json(rec)
            if text:
                self.f.write(text.encode("utf-8", "surrogateescape"))
        self.f.flush()

    def start(self) -> None:
        if self.writer is not None:
            self._emit(self.list)
        self._emit(self.cycle)

    def result(self, rec: Any) -> None:
        rec.list = self.list
        rec.cycle = self.cycle
        self._emit(rec)

    def stop(self) -> None:
        from ixpscamper.warts import CycleStop

        self._emit(CycleStop(cycle=self.cycle, stop_time=int(time.time())))


def _err(message: str) -> None:
    sys.stderr.write(f"{PROG}: {message}\n")
    sys.stderr.flush()


def run(config: Config, reactor: Any = None) -> int:
    """Probe and write results; returns the exit status."""
    try:
        options = parse_all(config.commands)
    except UsageError as exc:
        _err(str(exc))
        return 1

    if reactor is None:
        from twisted.internet import reactor as default_reactor
        reactor = default_reactor
    from ixpscamper.prober import Prober, ProberError

    try:
        prober = Prober(reactor, pps=config.pps, window=config.window)
        prober.check()
    except PermissionError:
        _err("no permission to open raw sockets: run as root or grant CAP_NET_RAW (and CAP_NET_ADMIN)")
        return 1
    except ProberError as exc:
        _err(str(exc))
        return 1

    if config.outfile is not None and config.outfile != "-":
        try:
            out: IO[bytes] = open(config.outfile, "wb")
        except OSError as exc:
            prober.close()
            _err(f"cannot write {config.outfile}: {exc.strerror or exc}")
            return 1
    else:
        if config.fmt == "warts" and os.isatty(sys.stdout.fileno()):
            prober.close()
            _err("not writing binary warts to a terminal (use -o FILE or a pipe)")
            return 1
        out = sys.stdout.buffer

    output = _Output(config.fmt, out)
    status = {"rc": 0, "left": len(options)}

    def finished(_: object = None) -> None:
        status["left"] -= 1
        if status["left"] == 0:
            reactor.callLater(0, reactor.stop)

    def got(rec: Any, cmd: str, task: Any) -> None:
        try:
            output.result(rec)
        except BrokenPipeError:
            raise
        except OSError as exc:
            _err(f"write failed: {exc.strerror or exc}")
            status["rc"] = 1
        task_error = getattr(task, "error", None)
        if task_error:
            _err(f"'{_show(cmd)}': {task_error}")
            status["rc"] = 1

    def failed(failure: Any, cmd: str) -> None:
        if failure.check(ProberError):
            _err(f"'{_show(cmd)}': {failure.getErrorMessage()}")
        else:
            _err(f"'{_show(cmd)}': internal error: {failure.type.__name__}: {failure.getErrorMessage()}")
        status["rc"] = 1

    def go() -> None:
        try:
            output.start()
        except OSError as exc:
            _err(f"write failed: {exc.strerror or exc}")
            status["rc"] = 1
            reactor.stop()
            return
        for cmd, opts in zip(config.commands, options):
            try:
                task = prober.submit(opts)
            except Exception as exc:  # one line per command, and the run goes on
                reason = str(exc) if isinstance(exc, ProberError) else f"internal error: {type(exc).__name__}: {exc}"
                _err(f"'{_show(cmd)}': {reason}")
                status["rc"] = 1
                finished()
                continue
            d = task.deferred
            d.addCallback(got, cmd, task)
            d.addErrback(failed, cmd)
            d.addBoth(finished)

    reactor.callWhenRunning(go)
    reactor.run()
    prober.close()
    try:
        output.stop()
    except OSError:
        pass
    if out is not sys.stdout.buffer:
        out.close()
    return status["rc"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``ixp-scamper``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        config = parse_args(argv)
    except UsageError as exc:
        _err(str(exc))
        return EXIT_USAGE
    if config is None:
        sys.stdout.write(build_parser().format_help())
        return 0
    return guarded(PROG, lambda: run(config))


if __name__ == "__main__":
    sys.exit(main())
