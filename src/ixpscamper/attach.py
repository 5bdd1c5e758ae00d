"""``ixp-attach``: feed commands to a scamper-compatible VP, stream the results.

Same interface as scamper's ``sc_attach``: ``-R SOCKET`` (a controller's
per-VP socket; already attached, so no ``attach`` is sent), ``-U SOCKET``
(a local ``scamper -U`` or ``ixp-vp --unix``) or ``-p [ip:]PORT``; ``-i``
and ``-o`` take a file or ``-``; ``-c CMD`` prefixes every input line;
``-O random`` shuffles the input, ``-O impatient`` sends without waiting
for ``MORE``; ``-P N`` asks for mixing priority N.  ``--format json``
writes JSON objects (one a line) instead of warts.

Results are written as they arrive.  A command the VP refuses is
reported on stderr with its ``ERR`` and the run goes on; the exit status
is 1 if any command failed or the session broke, else 0.  The session
ends as the protocol asks (doc A.7): ``done`` once every command was
answered, then read until the VP closes.
"""

from __future__ import annotations

import argparse
import collections
import gc
import json
import os
import random
import stat
import sys
import time
from typing import BinaryIO, Callable, Iterable

from twisted.internet import defer, endpoints, protocol, task
from twisted.internet.abstract import FileDescriptor
from twisted.internet import fdesc

from ixpscamper.control import client as C

PROG = "ixp-attach"
VERSION = "ixpscamper ixp-attach 0.1"

# warts record types that frame results rather than being results
_FRAMING_TYPES = {1, 2, 3, 4}
_FRAMING_JSON = {"list", "cycle-start", "cycle-def", "cycle-stop"}


class AttachError(Exception):
    """An expected failure; the message is printed after ``ixp-attach: ``."""


# -- input ----------------------------------------------------------------------

def clean_lines(lines: Iterable[str], prefix: str | None) -> list[str]:
    """Drop blank and ``#`` lines and apply the ``-c`` prefix."""
    out = []
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if prefix:
            line = f"{prefix} {line}"
        out.append(line)
    return out


class CommandSource:
    """Commands to send, in order; ``exhausted`` once nothing more will come."""

    def __init__(self) -> None:
        self.queue: collections.deque[str] = collections.deque()
        self.exhausted = False
        self.on_ready: Callable[[], None] = lambda: None

    def extend(self, lines: Iterable[str]) -> None:
        self.queue.extend(lines)
        self.on_ready()

    def finish(self) -> None:
        self.exhausted = True
        self.on_ready()


class _StdinReader(FileDescriptor):
    """Non-blocking line reader for a pipe or terminal on stdin."""

    def __init__(self, reactor, fd: int, source: CommandSource, prefix: str | None) -> None:
        super().__init__(reactor)
        self.fd = fd
        self.source = source
        self.prefix = prefix
        self._partial = b""
        fdesc.setNonBlocking(fd)
        self.connected = 1
        self.startReading()

    def fileno(self) -> int:
        return self.fd

    def doRead(self):
        return fdesc.readFromFD(self.fd, self._got)

    def _got(self, data: bytes) -> None:
        data = self._partial + data
        *lines, self._partial = data.split(b"\n")
        if lines:
            self.source.extend(clean_lines((l.decode("utf-8", "replace") for l in lines), self.prefix))

    def connectionLost(self, reason):
        self.stopReading()
        if self._partial:
            self.source.extend(clean_lines([self._partial.decode("utf-8", "replace")], self.prefix))
            self._partial = b""
        self.source.finish()


# -- the session logic (no I/O) -------------------------------------------------

class AttachDriver:
    """Drives one attach session: what to send when, what to write out.

    ``send`` writes bytes to the VP, ``emit`` writes one result record to
    the output, ``report`` prints a line on stderr.  The Twisted adapter
    feeds received bytes to :meth:`receive` and calls :meth:`closed`.
    """

    def __init__(self, source: CommandSource, *, send: Callable[[bytes], None],
                 emit: Callable[[bytes], None], report: Callable[[str], None],
                 attach_line: str | None, fmt: str = "warts", impatient: bool = False,
                 debug: bool = False) -> None:
        self.source = source
        self.send = send
        self.emit = emit
        self.report = report
        self.attach_line = attach_line
        self.fmt = fmt
        self.impatient = impatient
        self.debug = debug
        self.parser = C.ReplyParser("auto")
        self.state = "connecting"
        self.pending: collections.deque[str] = collections.deque()
        self.task_commands: dict[int, str] = {}
        self.ready = False
        self.started = False
        self.sent = 0
        self.results = 0
        self.failed = 0
        self.fatal: str | None = None
        self.records = 0
        self.on_progress: Callable[[], None] = lambda: None
        self.want_close = False
        source.on_ready = self._pump

    # events from the adapter
    def connected(self) -> None:
        if self.attach_line is not None:
            self.state = "attaching"
            self._send_line(self.attach_line)
        else:
            self.state = "running"

    def receive(self, data: bytes) -> None:
        if self.want_close:
            return
        try:
            replies = self.parser.feed(data)
        except C.ControlProtocolError as e:
            self._fail(f"protocol error from the VP: {e}")
            return
        for r in replies:
            self._reply(r)
            if self.want_close:
                return
        self._pump()
        self.on_progress()

    def closed(self) -> None:
        if self.fatal is None and self.state != "finished":
            if self.state == "attaching" or self.state == "connecting":
                self.fatal = "connection closed before attach completed"
            elif self.state != "done-sent" or self.pending:
                lost = len(self.pending) + len(self.source.queue)
                self.fatal = f"connection closed by the VP with {lost} command(s) unanswered or unsent"
            self.state = "finished"
        if self.fatal is not None and not self._fatal_reported:
            self._fatal_reported = True
            self.report(self.fatal)

    _fatal_reported = False

    @property
    def exit_status(self) -> int:
        return 1 if (self.failed or self.fatal) else 0

    # internals
    def _fail(self, message: str) -> None:
        if self.fatal is None:
            self.fatal = message
            self._fatal_reported = True
            self.report(message)
        self.want_close = True
        self.state = "finished"

    def _send_line(self, line: str) -> None:
        if self.debug:
            self.report(f"sending: {line}")
        self.send(line.encode("ascii", "replace") + b"\n")

    def _reply(self, r: C.Reply) -> None:
        if isinstance(r, C.Data):
            self._data(r)
        elif isinstance(r, C.More):
            self.started = True
            self.ready = True
        elif isinstance(r, C.Ok):
            if self.state == "attaching":
                self.state = "running"
            elif self.pending:
                cmd = self.pending.popleft()
                if r.task_id is not None:
                    self.task_commands[r.task_id] = cmd
            # else: the OK for done, or for something we did not ask: nothing to do
        elif isinstance(r, C.Err):
            if self.state == "attaching":
                self._fail(f"attach refused: ERR {r.message}")
            elif self.pending:
                cmd = self.pending.popleft()
                self.failed += 1
                self.report(f"ERR {r.message} (command: {cmd})")
                # scamper sends no MORE after an ERR: it is the go-ahead itself
                self.ready = True
            else:
                self.failed += 1
                self.report(f"ERR {r.message}")
        elif isinstance(r, C.Info):
            pass
        else:
            self._fail(f"unexpected reply from the VP: {r.line[:80]!r}")

    def _data(self, r: C.Data) -> None:
        payload = r.payload
        if payload[:1] == b"{":
            try:
                kind = json.loads(payload).get("type")
            except (ValueError, AttributeError):
                kind = None
            is_result = kind not in _FRAMING_JSON
        else:
            kind = int.from_bytes(payload[2:4], "big") if len(payload) >= 8 else -1
            is_result = kind not in _FRAMING_TYPES
        try:
            self.emit(payload)
        except OSError as e:
            self._fail(f"cannot write output: {e.strerror or e}")
            return
        self.records += 1
        if is_result and not r.inprog:  # a partial result is followed by the final one
            self.results += 1

    def _pump(self) -> None:
        if self.state not in ("running",) or self.want_close:
            return
        q = self.source.queue
        if self.impatient:
            if self.started:
                while q:
                    self._send_command(q.popleft())
        elif self.ready and q:
            self.ready = False
            self._send_command(q.popleft())
        if (self.source.exhausted and not q and not self.pending and self.started
                and (self.impatient or self.ready)):
            self.state = "done-sent"
            self._send_line("done")
        self.on_progress()

    def _send_command(self, cmd: str) -> None:
        self.pending.append(cmd)
        self.sent += 1
        self._send_line(cmd)


class AttachProtocol(protocol.Protocol):
    """Thin adapter between a stream transport and :class:`AttachDriver`."""

    def __init__(self, make_driver: Callable[[Callable[[bytes], None]], AttachDriver]) -> None:
        self._make_driver = make_driver
        self.driver: AttachDriver | None = None
        self.finished: defer.Deferred[None] = defer.Deferred()

    def connectionMade(self) -> None:
        self.driver = self._make_driver(self.transport.write)
        self.driver.connected()

    def dataReceived(self, data: bytes) -> None:
        self.driver.receive(data)
        if self.driver.want_close:
            self.transport.abortConnection()

    def connectionLost(self, reason) -> None:
        if self.driver is not None:
            self.driver.closed()
        self.finished.callback(None)


# -- command line ---------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{PROG}: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Feed commands to a scamper-compatible VP and write its results.")
    where = p.add_mutually_exclusive_group()
    where.add_argument("-R", metavar="SOCKET", dest="remote", help="a controller's per-VP unix socket")
    where.add_argument("-U", metavar="SOCKET", dest="unix", help="a local VP's / scamper's control socket")
    where.add_argument("-p", metavar="[IP:]PORT", dest="port", help="a VP's / scamper's control port")
    p.add_argument("-i", metavar="FILE", dest="infile", help="commands, one a line ('-' = stdin)")
    p.add_argument("-o", metavar="FILE", dest="outfile", help="output file ('-' = stdout)")
    p.add_argument("-c", metavar="CMD", dest="command", help="command to put before every input line")
    p.add_argument("-O", metavar="OPTION", dest="options", action="append", default=[],
                   help="random (shuffle the input) or impatient (do not wait for MORE)")
    p.add_argument("-P", metavar="N", dest="priority", type=int, help="mixing priority (1-100000)")
    p.add_argument("--format", choices=("warts", "json"), default="warts", help="output format")
    p.add_argument("-d", dest="debug", action="store_true", help="print each command sent on stderr")
    p.add_argument("-v", dest="version", action="store_true", help="print the version and exit")
    return p


def parse_endpoint(reactor, args) -> tuple[object, str]:
    if args.remote:
        return endpoints.UNIXClientEndpoint(reactor, args.remote, timeout=10), args.remote
    if args.unix:
        return endpoints.UNIXClientEndpoint(reactor, args.unix, timeout=10), args.unix
    host, port = "127.0.0.1", args.port
    if args.port.startswith("["):
        host, _, port = args.port[1:].partition("]:")
    elif ":" in args.port:
        host, _, port = args.port.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise AttachError(f"-p: invalid port in {args.port!r}")
    import ipaddress
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        raise AttachError(f"-p: invalid address {host!r}") from None
    cls = endpoints.TCP6ClientEndpoint if addr.version == 6 else endpoints.TCP4ClientEndpoint
    return cls(reactor, host, int(port), timeout=10), args.port


def _open_output(path: str | None) -> BinaryIO:
    if path in (None, "-"):
        return sys.stdout.buffer
    try:
        return open(path, "wb")
    except OSError as e:
        raise AttachError(f"cannot open output file {path}: {e.strerror}") from None


def _load_input(reactor, args, source: CommandSource) -> None:
    opts = set(args.options)
    if args.infile in (None, "-"):
        fd = sys.stdin.fileno()
        st_mode = os.fstat(fd).st_mode
        if "random" in opts or stat.S_ISREG(st_mode):
            lines = clean_lines(sys.stdin.buffer.read().decode("utf-8", "replace").splitlines(), args.command)
            if "random" in opts:
                random.shuffle(lines)
            source.extend(lines)
            source.finish()
        else:
            _StdinReader(reactor, fd, source, args.command)
        return
    try:
        with open(args.infile, "rb") as f:
            text = f.read().decode("utf-8", "replace")
    except OSError as e:
        raise AttachError(f"cannot read input file {args.infile}: {e.strerror}") from None
    lines = clean_lines(text.splitlines(), args.command)
    if "random" in opts:
        random.shuffle(lines)
    source.extend(lines)
    source.finish()


class _Progress:
    """The ``sent / done / failed`` line on a terminal, redrawn at most 5 times a second."""

    def __init__(self, driver: AttachDriver, stream) -> None:
        self.driver = driver
        self.stream = stream
        self.last = 0.0
        self.shown = False

    def update(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < 0.2:
            return
        self.last = now
        d = self.driver
        self.stream.write(f"\r{PROG}: sent {d.sent}, done {d.results}, failed {d.failed}\x1b[K")
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False


def _make_emitter(out: BinaryIO, fmt: str, native_json: bool) -> Callable[[bytes], None]:
    if fmt == "json" and not native_json:
        # a controller's channel is always warts: render JSON here
        from ixpscamper.warts import WartsDecoder, render_json  # type: ignore[attr-defined]
        decoder = WartsDecoder()

        def emit(payload: bytes) -> None:
            for rec in decoder.feed(payload):
                text = render_json(rec)
                if text:
                    out.write(text.encode() if isinstance(text, str) else text)
            out.flush()
        return emit

    def emit(payload: bytes) -> None:
        out.write(payload)
        out.flush()
    return emit


async def _run(reactor, args) -> int:
    bad = [o for o in args.options if o not in ("random", "impatient")]
    if bad:
        raise AttachError(f"-O: unknown option {bad[0]!r} (random or impatient)")
    if not (args.remote or args.unix or args.port):
        raise AttachError("one of -R SOCKET, -U SOCKET or -p [IP:]PORT is required")
    if args.priority is not None and not 1 <= args.priority <= 100000:
        raise AttachError("-P: priority must be 1-100000")
    if args.remote and args.priority is not None:
        raise AttachError("-P cannot be used with -R (the channel is already attached)")
    endpoint, where = parse_endpoint(reactor, args)
    out = _open_output(args.outfile)  # before anything is sent
    source = CommandSource()
    _load_input(reactor, args, source)

    attach_line = None
    native_json = False
    if not args.remote:
        attach_line = "attach"
        # scamper 20211212 refuses two attach parameters ("could not
        # params_get"), so with -P the JSON is rendered here instead
        if args.format == "json" and args.priority is None:
            attach_line += " format json"
            native_json = True
        if args.priority is not None:
            attach_line += f" priority {args.priority}"

    tty = sys.stderr.isatty()
    progress: _Progress | None = None
    emit = _make_emitter(out, args.format, native_json)

    def report(line: str) -> None:
        if progress is not None:
            progress.clear()
        sys.stderr.write(f"{PROG}: {line}\n")
        sys.stderr.flush()

    drivers: list[AttachDriver] = []

    def make_driver(send):
        d = AttachDriver(source, send=send, emit=emit, report=report, attach_line=attach_line,
                         fmt="json" if native_json else "warts",
                         impatient="impatient" in args.options, debug=args.debug)
        drivers.append(d)
        return d

    proto = AttachProtocol(make_driver)
    try:
        await endpoint.connect(protocol.Factory.forProtocol(lambda: proto))
    except Exception as e:  # connection refused, no such socket, timeout...
        err = getattr(e, "osError", None)
        if isinstance(err, int):
            msg = os.strerror(err)
        elif getattr(e, "__doc__", None) and not str(e).strip(": ."):
            msg = e.__doc__.strip().rstrip(".")
        else:
            msg = str(e).strip()
        raise AttachError(f"cannot connect to {where}: {msg}") from None
    driver = drivers[0]

    def interrupted() -> None:
        # Ctrl-C / SIGTERM: the connection is about to drop; say why, not "closed by the VP"
        if driver.fatal is None and driver.state != "finished":
            driver.fatal = "interrupted"
    reactor.addSystemEventTrigger("before", "shutdown", interrupted)
    if tty:
        progress = _Progress(driver, sys.stderr)
        driver.on_progress = progress.update
    await proto.finished
    if progress is not None:
        progress.update(force=True)
        sys.stderr.write("\n")
    if out is not sys.stdout.buffer:
        try:
            out.close()
        except OSError as e:
            raise AttachError(f"cannot write output: {e.strerror}") from None
    if driver.failed:
        sys.stderr.write(f"{PROG}: {driver.failed} of {driver.sent} command(s) failed\n")
    return driver.exit_status


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    if args.version:
        print(VERSION)
        sys.exit(0)
    status = {"code": 1}

    def go(reactor):
        d = defer.ensureDeferred(_run(reactor, args))

        def ok(code):
            status["code"] = code

        def bad(f):
            if f.check(AttachError):
                sys.stderr.write(f"{PROG}: {f.value}\n")
            else:
                sys.stderr.write(f"{PROG}: internal error: {f.getErrorMessage()}\n")
            status["code"] = 1
        d.addCallbacks(ok, bad)
        return d

    # Everything imported so far lives until exit: keep it out of the
    # collector's way, which also spares the interpreter a full collection
    # of Twisted's objects at shutdown (about 50 ms of every run).
    gc.freeze()
    try:
        task.react(go)
    except SystemExit as e:
        if e.code not in (0, None):
            sys.exit(e.code)
    sys.exit(status["code"])


if __name__ == "__main__":
    main()
