"""``ixp-attach``: feed commands to a scamper-compatible VP, stream the results.

Same interface as scamper's ``sc_attach``: ``-R SOCKET`` (a controller's
per-VP socket; already attached, so no ``attach`` is sent), ``-U SOCKET``
(a local ``scamper -U`` or ``ixp-vp --unix``) or ``-p [ip:]PORT``; ``-i``
and ``-o`` take a file or ``-``; ``-c CMD`` prefixes every input line;
``-O random`` shuffles the input, ``-O impatient`` sends without waiting
for ``MORE``; ``-P N`` asks for mixing priority N; ``-D`` goes to the
background once connected; ``-?`` (or ``-h``) prints the options.
``--format json`` writes JSON objects (one a line) instead of warts.

Input is split on ``\\n`` only (one ``\\r`` before it is dropped), the same
for a file and a pipe.  A line with a byte that is not printable ASCII is
not sent (scamper would abandon the whole run on it): it is reported,
escaped, and counted as failed.  Nothing from outside reaches stderr
unescaped.

Results are written as they arrive.  ``-o FILE`` is opened before anything
is sent but emptied only when the first record arrives, so a run that
fails earlier leaves an existing file alone.  Binary warts is not written
to a terminal (exit 2); when stdout's reader goes away the run ends
quietly with status 141, like the warts tools.

A command the VP refuses is reported on stderr with its ``ERR`` and the
run goes on.  Every command is accounted for (see :class:`AttachDriver`):
if the connection ends with accepted commands unanswered, commands sent
but not acknowledged or never sent, or without the cycle-stop record, one
line says so, e.g. ``ixp-attach: connection ended with 234 of 300
accepted commands unanswered``.  The exit status is 1 if any command
failed or anything was lost, 2 for a usage error, else 0.  The session
ends as the protocol asks (doc A.7): ``done`` once every command was
answered, then read until the VP closes.  On a terminal a progress line
shows the counts and, when nothing came from the VP for a while with
commands outstanding, for how long.

The session logic (:class:`AttachDriver`) is sans-IO like the rest of the
project, but its adapter is a small ``selectors`` loop (:class:`Loop`)
rather than Twisted: ixp-attach is started once per batch of commands,
often in a shell pipeline, and importing Twisted and installing a reactor
was about 150 ms of every run, most of its start-up (the C ``sc_attach``
takes about 1 ms).  :class:`Loop` is an ``IReactorTime`` (``seconds``,
``callLater``), so the driver and the progress line are tested with a
``twisted.internet.task.Clock`` as before.  For the same reason it
connects before importing the control package (:func:`_control`): a VP's
pacing schedule starts when a user attaches, as scamper's does, so what
the client does between connecting and sending is not lost to probing.
The ``ixp-attach`` command goes further: its entry point
(`ixpscamper.attach_start`) connects to a ``-R``/``-U`` socket before
even this module is imported, and `main` takes that socket over.
"""

from __future__ import annotations

import argparse
import collections
import gc
import heapq
import itertools
import os
import selectors
import signal
import socket
import stat
import sys
import time
from typing import TYPE_CHECKING, Callable, Iterable

from ixpscamper.cli_support import guarded

PROG = "ixp-attach"
VERSION = "ixpscamper ixp-attach 0.1"

# warts record types that frame results rather than being results
_FRAMING_TYPES = {1, 2, 3, 4}
_FRAMING_JSON = {"list", "cycle-start", "cycle-def", "cycle-stop"}
_CYCLE_STOP = 4

if TYPE_CHECKING:  # not imported at run time: see the module docstring
    from twisted.internet.interfaces import IReactorTime

    from ixpscamper.control import client as C


def _control():
    """:mod:`ixpscamper.control.client`, imported on first use.

    The control package (attrs and all) is about a third of ixp-attach's
    start-up; :func:`_session` connects first and only then makes the
    driver, so the VP's pacing schedule, which starts when a user attaches
    (as scamper's does), runs while this is imported.
    """
    from ixpscamper.control import client
    return client


def is_printable_line(line: bytes) -> bool:
    """True when every byte is printable ASCII (the control protocol's rule)."""
    from ixpscamper.control.lines import is_printable_line as check
    return check(line)


class AttachError(Exception):
    """An expected failure; the message is printed after ``ixp-attach: ``."""


# -- input ----------------------------------------------------------------------

def escape(text: str | bytes) -> str:
    """``text`` with every control or unprintable character as ``\\xNN``.

    Anything that reaches stderr from outside (an input line, a VP's ERR
    text) goes through here, so no control byte ever reaches a terminal raw.
    A backslash is left alone, which makes the function idempotent.
    """
    if isinstance(text, (bytes, bytearray)):
        return "".join(chr(b) if 0x20 <= b < 0x7F else f"\\x{b:02x}" for b in text)
    out = []
    for ch in text:
        if ch.isprintable():  # False for C0, DEL, C1, line/paragraph separators
            out.append(ch)
        else:
            o = ord(ch)
            out.append(f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}")
    return "".join(out)


def split_lines(data: bytes) -> list[bytes]:
    """Split on ``\\n`` only, dropping one ``\\r`` before it (as scamper reads lines).

    ``str.splitlines`` would also split on ``\\v``, ``\\f``, ``\\x1c``-``\\x1e``
    and U+0085, which a pipe read line by line never does: a file and a
    pipe must give the same commands.
    """
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [line[:-1] if line.endswith(b"\r") else line for line in lines]


def clean_lines(lines: Iterable[bytes | str], prefix: str | None,
                on_bad: Callable[[int, str], None] | None = None, first: int = 1) -> list[str]:
    """Commands from input lines: blank and ``#`` lines dropped, ``-c`` prefix applied.

    A line with a byte that is not printable ASCII is not sent: scamper
    (and ixp-vp) answer it with ``ERR invalid character in line`` and then
    abandon the whole source, losing every command after it.  Such a line
    is passed to ``on_bad(line_number, escaped_text)`` instead.
    """
    out = []
    for n, raw in enumerate(lines, first):
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        line = raw.strip(b" \t")
        if not line or line.startswith(b"#"):
            continue
        if not is_printable_line(line):
            if on_bad is not None:
                on_bad(n, escape(line))
            continue
        text = line.decode("ascii")
        out.append(f"{prefix} {text}" if prefix else text)
    return out


class CommandSource:
    """Commands to send, in order; ``exhausted`` once nothing more will come.

    ``rejected`` counts input lines refused before sending (see
    :func:`clean_lines`); they count as failed commands.
    """

    def __init__(self) -> None:
        self.queue: collections.deque[str] = collections.deque()
        self.exhausted = False
        self.rejected = 0
        self.on_ready: Callable[[], None] = lambda: None

    def extend(self, lines: Iterable[str]) -> None:
        self.queue.extend(lines)
        self.on_ready()

    def finish(self) -> None:
        self.exhausted = True
        self.on_ready()


class _StdinReader:
    """Non-blocking line reader for a pipe or terminal on stdin."""

    def __init__(self, loop: "Loop", fd: int, source: CommandSource, prefix: str | None,
                 on_bad: Callable[[int, str], None]) -> None:
        self.loop = loop
        self.fd = fd
        self.source = source
        self.prefix = prefix
        self.on_bad = on_bad
        self._partial = b""
        self._lineno = 1
        self._open = True
        os.set_blocking(fd, False)
        loop.watch(fd, read=self._readable)

    def close(self) -> None:
        """Stop reading and put the descriptor back in blocking mode.

        A terminal's or a pipe's open file is shared with the shell that
        started us: left non-blocking, the next program to read it would
        get EAGAIN.
        """
        if self._open:
            self._open = False
            self.loop.unwatch(self.fd)
            try:
                os.set_blocking(self.fd, True)
            except OSError:
                pass

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, 65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # a terminal that went away (EIO): the end of the input
            data = b""
        if data:
            self._got(data)
        else:
            self._eof()

    def _take(self, lines: list[bytes]) -> None:
        first = self._lineno
        self._lineno += len(lines)
        self.source.extend(clean_lines(split_lines(b"\n".join(lines) + b"\n"), self.prefix,
                                       self.on_bad, first))

    def _got(self, data: bytes) -> None:
        *lines, self._partial = (self._partial + data).split(b"\n")
        if lines:
            self._take(lines)

    def _eof(self) -> None:
        self.close()
        if self._partial:
            self._take([self._partial])
            self._partial = b""
        self.source.finish()


# -- the session logic (no I/O) -------------------------------------------------

#: seconds without a byte from the VP, while something is outstanding,
#: before the progress line says so
QUIET_AFTER = 5.0


def _n(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


class AttachDriver:
    """Drives one attach session: what to send when, what to write out.

    ``send`` writes bytes to the VP, ``emit`` writes one result record to
    the output, ``report`` prints a line on stderr (control bytes escaped
    here).  The Twisted adapter feeds received bytes to :meth:`receive`
    and calls :meth:`closed`; ``clock`` (an ``IReactorTime``) dates them.

    Every command is accounted for until the end: sent but not yet
    acknowledged (``pending``), accepted with ``OK id-N`` but not yet
    answered by a ``DATA`` result (``unanswered``), answered (``results``)
    or refused (``failed``).  A result carrying ``id-N`` answers that task;
    a bare ``DATA <n>`` (scamper 20211212) answers the oldest accepted one.
    The session only ended cleanly if, when the connection closes, nothing
    is outstanding and the cycle-stop record arrived; otherwise
    :meth:`closed` reports one line saying what was lost and
    :attr:`exit_status` is non-zero.

    Whether the VP is away cannot be seen from here: a controller hides an
    outage from its users (the per-VP socket just goes quiet, and at the
    end of the zombie time it closes).  So the driver says only what it
    knows: :meth:`quiet_for` is how long nothing at all came from the peer
    while something is outstanding, and :meth:`progress_text` adds
    ``waiting: nothing from the VP for N s`` once that reaches
    ``quiet_after`` seconds.  A long traceroute is quiet too, which is why
    it says "nothing for N s" and not "the VP is down".
    """

    def __init__(self, source: CommandSource, *, send: Callable[[bytes], None],
                 emit: Callable[[bytes], None], report: Callable[[str], None],
                 attach_line: str | None, fmt: str = "warts", impatient: bool = False,
                 debug: bool = False, clock: IReactorTime | None = None,
                 quiet_after: float = QUIET_AFTER) -> None:
        self.source = source
        self.send = send
        self.emit = emit
        self._report_line = report
        self.attach_line = attach_line
        self.fmt = fmt
        self.impatient = impatient
        self.debug = debug
        # without a clock, time stands still (and nothing is ever "quiet")
        self.clock: IReactorTime = clock if clock is not None else _StillClock()
        self.quiet_after = quiet_after
        self.parser = _control().ReplyParser("auto")
        self.state = "connecting"
        #: commands sent and not yet acknowledged, oldest first
        self.pending: collections.deque[str] = collections.deque()
        #: accepted with ``OK id-N``, no result yet
        self.awaiting: dict[int, str] = {}
        #: accepted with a bare ``OK``, no result yet
        self.awaiting_anon: collections.deque[str] = collections.deque()
        # results that arrived before their OK (never from scamper, cheap to allow)
        self._early: set[int] = set()
        self.ready = False
        self.started = False
        self.sent = 0
        self.accepted = 0
        self.results = 0
        self.failed = 0
        self.fatal: str | None = None
        self.records = 0
        self.cycle_stopped = False
        #: the output's reader went away (EPIPE): stop, quietly
        self.output_gone = False
        self.last_heard = self.clock.seconds()
        self.on_progress: Callable[[], None] = lambda: None
        self.want_close = False
        self._interrupted = False
        self._fatal_reported = False
        source.on_ready = self._pump

    # what is known
    @property
    def unanswered(self) -> int:
        """Commands the VP accepted whose result has not arrived."""
        return len(self.awaiting) + len(self.awaiting_anon)

    @property
    def failures(self) -> int:
        """Commands refused by the VP plus input lines refused before sending."""
        return self.failed + self.source.rejected

    @property
    def exit_status(self) -> int:
        return 1 if (self.failures or self.fatal) else 0

    def expecting(self) -> bool:
        """True while something should still come from the VP."""
        if self.state == "attaching":
            return True
        if self.state not in ("running", "done-sent"):
            return False
        if not self.started or self.pending or self.unanswered:
            return True
        if self.state == "done-sent":
            return not self.cycle_stopped
        return bool(self.source.queue) and not self.ready and not self.impatient

    def quiet_for(self) -> float | None:
        """Seconds since the last byte from the VP, if something is outstanding."""
        if not self.expecting():
            return None
        return self.clock.seconds() - self.last_heard

    def progress_text(self) -> str:
        """The progress line (without program name or terminal codes)."""
        text = f"sent {self.sent}, done {self.results}, failed {self.failures}"
        quiet = self.quiet_for()
        if quiet is not None and quiet >= self.quiet_after:
            text += f", waiting: nothing from the VP for {int(quiet)} s"
        return text

    def loss(self) -> str:
        """What an end of the connection now would lose, or ``""``."""
        parts = []
        if self.unanswered:
            parts.append(f"{self.unanswered} of {_n(self.accepted, 'accepted command')} unanswered")
        if self.pending:
            parts.append(f"{len(self.pending)} sent but never acknowledged")
        if self.source.queue:
            parts.append(f"{len(self.source.queue)} never sent")
        if not self.source.exhausted:
            parts.append("input not read to the end")
        if parts:
            return "with " + ", ".join(parts)
        if not self.cycle_stopped:
            return f"before the cycle-stop record (all {_n(self.accepted, 'accepted command')} answered)"
        return ""

    # events from the adapter
    def connected(self) -> None:
        self.last_heard = self.clock.seconds()
        if self.attach_line is not None:
            self.state = "attaching"
            self._send_line(self.attach_line)
        else:
            self.state = "running"

    def receive(self, data: bytes) -> None:
        if self.want_close:
            return
        self.last_heard = self.clock.seconds()
        C = _control()
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

    def interrupted(self) -> None:
        """Ctrl-C / SIGTERM: the connection is about to drop on our side."""
        if self.state != "finished":
            self._interrupted = True

    def closed(self) -> None:
        if self.state != "finished" and not self.output_gone and self.fatal is None:
            if self.state in ("attaching", "connecting"):
                self.fatal = "connection closed before attach completed"
            else:
                loss = self.loss()
                if self._interrupted:
                    self.fatal = f"interrupted {loss}" if loss else "interrupted"
                elif loss:
                    self.fatal = f"connection ended {loss}"
        self.state = "finished"
        if self.fatal is not None and not self._fatal_reported:
            self._fatal_reported = True
            self._report(self.fatal)

    # internals
    def _report(self, line: str) -> None:
        self._report_line(escape(line))

    def _fail(self, message: str) -> None:
        if self.fatal is None:
            loss = self.loss() if self.state in ("running", "done-sent") else ""
            self.fatal = f"{message}; connection ended {loss}" if loss else message
            self._fatal_reported = True
            self._report(self.fatal)
        self.want_close = True
        self.state = "finished"

    def _send_line(self, line: str) -> None:
        if self.debug:
            self._report(f"sending: {line}")
        self.send(line.encode("ascii", "replace") + b"\n")

    def _reply(self, r: C.Reply) -> None:
        C = _control()
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
                if r.text.startswith("halted"):
                    pass  # "halt N": the halted task's own result answers it
                elif r.task_id is None:
                    self.accepted += 1
                    self.awaiting_anon.append(cmd)
                else:
                    self.accepted += 1
                    if r.task_id in self._early:
                        self._early.discard(r.task_id)
                    else:
                        self.awaiting[r.task_id] = cmd
            # else: the OK for done, or for something we did not ask: nothing to do
        elif isinstance(r, C.Err):
            if self.state == "attaching":
                self._fail(f"attach refused: ERR {r.message}")
            elif self.pending:
                cmd = self.pending.popleft()
                self.failed += 1
                self._report(f"ERR {r.message} (command: {cmd})")
                # scamper sends no MORE after an ERR: it is the go-ahead itself
                self.ready = True
            else:
                self.failed += 1
                self._report(f"ERR {r.message}")
        elif isinstance(r, C.Info):
            pass
        else:
            self._fail(f"unexpected reply from the VP: {r.line[:80]!r}")

    def _answered(self, task_id: int | None) -> None:
        if task_id is not None:
            if self.awaiting.pop(task_id, None) is None:
                self._early.add(task_id)
        elif self.awaiting_anon:
            self.awaiting_anon.popleft()
        elif self.awaiting:
            # the 2021 dialect names no task: any accepted one is answered
            del self.awaiting[next(iter(self.awaiting))]

    def _data(self, r: C.Data) -> None:
        payload = r.payload
        if payload[:1] == b"{":
            try:
                import json  # only a VP attached with "format json" sends these
                kind = json.loads(payload).get("type")
            except (ValueError, AttributeError):
                kind = None
            is_result = kind not in _FRAMING_JSON
            is_stop = kind == "cycle-stop"
        else:
            kind = int.from_bytes(payload[2:4], "big") if len(payload) >= 8 else -1
            is_result = kind not in _FRAMING_TYPES
            is_stop = kind == _CYCLE_STOP
        try:
            self.emit(payload)
        except BrokenPipeError:
            # the reader of our output went away (| head): nothing left to do it for
            self.output_gone = True
            self.want_close = True
            self.state = "finished"
            return
        except OSError as e:
            self._fail(f"cannot write output: {e.strerror or e}")
            return
        self.records += 1
        if is_stop:
            self.cycle_stopped = True
        if is_result and not r.inprog:  # a partial result is followed by the final one
            self.results += 1
            self._answered(r.task_id)

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


class _StillClock:
    """A clock whose time never moves (a driver made without one)."""

    @staticmethod
    def seconds() -> float:
        return 0.0


class _DelayedCall:
    """What :meth:`Loop.callLater` returns: ``cancel()``, ``active()``, ``getTime()``."""

    __slots__ = ("time", "func", "args", "_done")

    def __init__(self, when: float, func: Callable, args: tuple) -> None:
        self.time = when
        self.func = func
        self.args = args
        self._done = False

    def getTime(self) -> float:
        return self.time

    def active(self) -> bool:
        return not self._done

    def cancel(self) -> None:
        self._done = True


class Loop:
    """The little of a reactor ixp-attach needs, on :mod:`selectors`.

    ``seconds()`` and ``callLater()`` (an ``IReactorTime``, monotonic),
    ``watch(fd, read=, write=)`` / ``unwatch(fd)`` for readiness callbacks,
    :meth:`run` until :meth:`stop`.  SIGINT and SIGTERM, while
    :meth:`run` runs, call ``on_signal`` from the loop (not from inside
    whatever the signal interrupted).
    """

    def __init__(self) -> None:
        self._sel = selectors.DefaultSelector()
        self._calls: list[tuple[float, int, _DelayedCall]] = []
        self._seq = itertools.count()
        self._watched: dict[int, list] = {}
        self._running = False
        self.on_signal: Callable[[int], None] = lambda signum: None

    def seconds(self) -> float:
        return time.monotonic()

    def callLater(self, delay: float, func: Callable, *args) -> _DelayedCall:
        call = _DelayedCall(self.seconds() + max(0.0, delay), func, args)
        heapq.heappush(self._calls, (call.time, next(self._seq), call))
        return call

    def watch(self, fd: int, read: Callable[[], None] | None = None,
              write: Callable[[], None] | None = None) -> None:
        """Call ``read()`` / ``write()`` while ``fd`` is readable / writable (None: stop)."""
        events = (selectors.EVENT_READ if read else 0) | (selectors.EVENT_WRITE if write else 0)
        known = fd in self._watched
        if not events:
            self.unwatch(fd)
            return
        self._watched[fd] = [read, write]
        if known:
            self._sel.modify(fd, events)
        else:
            self._sel.register(fd, events)

    def unwatch(self, fd: int) -> None:
        if self._watched.pop(fd, None) is not None:
            self._sel.unregister(fd)

    def stop(self) -> None:
        self._running = False

    def run(self) -> None:
        self._running = True
        rfd, wfd = os.pipe()
        for fd in (rfd, wfd):
            os.set_blocking(fd, False)
        old_wakeup = signal.set_wakeup_fd(wfd)
        pending: list[int] = []
        old = {sig: signal.signal(sig, lambda signum, frame: pending.append(signum))
               for sig in (signal.SIGINT, signal.SIGTERM)}
        self._sel.register(rfd, selectors.EVENT_READ)
        try:
            while self._running:
                self._run_due()
                if not self._running:
                    break
                timeout = None
                if self._calls:
                    timeout = max(0.0, self._calls[0][0] - self.seconds())
                for key, mask in self._sel.select(timeout):
                    if key.fd == rfd:
                        try:
                            os.read(rfd, 512)
                        except OSError:
                            pass
                        continue
                    cbs = self._watched.get(key.fd)
                    if cbs is None:
                        continue
                    if mask & selectors.EVENT_READ and cbs[0] is not None:
                        cbs[0]()
                    cbs = self._watched.get(key.fd)  # the read may have closed it
                    if cbs is not None and mask & selectors.EVENT_WRITE and cbs[1] is not None:
                        cbs[1]()
                    if not self._running:
                        break
                while pending:
                    self.on_signal(pending.pop(0))
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)
            signal.set_wakeup_fd(old_wakeup)
            self._sel.unregister(rfd)
            os.close(rfd)
            os.close(wfd)

    def _run_due(self) -> None:
        now = self.seconds()
        while self._calls and self._calls[0][0] <= now:
            _, _, call = heapq.heappop(self._calls)
            if call.active():
                call._done = True
                call.func(*call.args)


class _Connection:
    """Thin adapter between a connected, non-blocking socket and :class:`AttachDriver`.

    Bytes to send are buffered and written as the socket takes them; the
    end of the connection (EOF, an error, or the driver's ``want_close``)
    calls ``driver.closed()`` once and then ``on_finished()``.
    """

    def __init__(self, loop: Loop, sock: socket.socket,
                 make_driver: Callable[[Callable[[bytes], None]], AttachDriver],
                 on_finished: Callable[[], None]) -> None:
        self.loop = loop
        self.sock = sock
        self.fd = sock.fileno()
        self._out = bytearray()
        self._open = True
        self._on_finished = on_finished
        loop.watch(self.fd, read=self._readable)
        self.driver = make_driver(self.write)
        self.driver.connected()

    def write(self, data: bytes) -> None:
        if not self._open:
            return
        # Written when the loop next finds the socket writable, which is at
        # once: what one event makes (1000 commands after the first MORE in
        # impatient mode) leaves in one send, not one per line.
        if not self._out:
            self.loop.watch(self.fd, read=self._readable, write=self._writable)
        self._out += data

    def _writable(self) -> None:
        try:
            n = self.sock.send(self._out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            # the peer is gone: what it sent before is still to be read
            self._out.clear()
            n = 0
        del self._out[:n]
        if not self._out and self._open:
            self.loop.watch(self.fd, read=self._readable)

    def _readable(self) -> None:
        try:
            data = self.sock.recv(1 << 16)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.close()
            return
        self.driver.receive(data)
        if self.driver.want_close:
            self.close()

    def close(self) -> None:
        """End the connection now (unsent bytes are dropped, as an abort)."""
        if not self._open:
            return
        self._open = False
        self.loop.unwatch(self.fd)
        self.sock.close()
        self.driver.closed()
        self._on_finished()


# -- command line ---------------------------------------------------------------

class UsageError(AttachError):
    """A mistake on the command line: exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{PROG}: {escape(message)}\n")

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        ns, extras = self.parse_known_args(args, namespace)
        if extras:
            x = extras[0]
            self.error(f"unknown option {x}" if x.startswith("-") and x != "-"
                       else f"unexpected argument {x!r}")
        return ns


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, add_help=False,
                description="Feed commands to a scamper-compatible VP and write its results.")
    # sc_attach's help flag is -?; -h and --help as everywhere else
    p.add_argument("-?", "-h", "--help", action="help", help="show this help and exit")
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
    p.add_argument("-D", dest="daemon", action="store_true",
                   help="run in the background once connected (needs -i FILE and -o FILE, no -d)")
    p.add_argument("-v", dest="version", action="store_true", help="print the version and exit")
    return p


#: seconds a connect may take (a TCP peer that does not answer)
CONNECT_TIMEOUT = 10.0


def parse_endpoint(args) -> tuple[tuple, str]:
    """``(family, address)`` to connect to, and how to name it in messages."""
    if args.remote:
        return (socket.AF_UNIX, args.remote), args.remote
    if args.unix:
        return (socket.AF_UNIX, args.unix), args.unix
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
    fam = socket.AF_INET6 if addr.version == 6 else socket.AF_INET
    return (fam, (host, int(port))), args.port


def _connect(endpoint: tuple, where: str) -> socket.socket:
    fam, addr = endpoint
    sock = socket.socket(fam, socket.SOCK_STREAM)
    sock.settimeout(CONNECT_TIMEOUT)
    try:
        sock.connect(addr)
    except socket.timeout:
        sock.close()
        raise AttachError(f"cannot connect to {where}: timed out after {CONNECT_TIMEOUT:g} s") from None
    except OSError as e:
        sock.close()
        msg = os.strerror(e.errno) if e.errno else str(e)
        raise AttachError(f"cannot connect to {where}: {msg}") from None
    sock.setblocking(False)
    return sock


class OutputFile:
    """``-o FILE``, opened before anything is sent but emptied only at the first write.

    Opening up front makes a bad path fail before the VP sees a command;
    not truncating until results arrive means a run that fails before its
    first record (no such socket, attach refused, Ctrl-C) leaves an
    existing file as it was.  A file this run created and never wrote to
    is removed again on :meth:`close`.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        flags = os.O_WRONLY | os.O_CLOEXEC
        try:
            fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o644)  # sc_attach's mode
            self.created = True
        except FileExistsError:
            fd = os.open(path, flags | os.O_CREAT, 0o644)
            self.created = False
        # a FIFO or device cannot be (and need not be) truncated
        self._truncate = not self.created and stat.S_ISREG(os.fstat(fd).st_mode)
        self._f = os.fdopen(fd, "wb")
        self.written = False

    def write(self, data: bytes) -> None:
        if not self.written:
            self.written = True
            if self._truncate:
                os.ftruncate(self._f.fileno(), 0)
        self._f.write(data)

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        try:
            self._f.close()
        finally:
            if self.created and not self.written:
                try:
                    os.unlink(self.path)
                except OSError:
                    pass


def _open_output(path: str | None, fmt: str):
    if path in (None, "-"):
        if fmt == "warts" and os.isatty(sys.stdout.fileno()):
            raise UsageError("not writing binary warts to a terminal (use -o FILE, a pipe, or --format json)")
        return sys.stdout.buffer
    try:
        return OutputFile(path)
    except OSError as e:
        raise AttachError(f"cannot open output file {path}: {e.strerror}") from None


def _load_input(loop: Loop, args, source: CommandSource,
                on_bad: Callable[[int, str], None]) -> tuple[_StdinReader | None, bytes | None]:
    """Read the commands: a file (or redirected stdin) at once, or a pipe or terminal as it comes.

    Returns the reader of a pipe or terminal, or the bytes read, for
    :func:`_take_input` (once connected).
    """
    if args.infile in (None, "-"):
        fd = sys.stdin.fileno()
        st_mode = os.fstat(fd).st_mode
        if "random" in args.options or stat.S_ISREG(st_mode):
            return None, sys.stdin.buffer.read()
        return _StdinReader(loop, fd, source, args.command, on_bad), None
    try:
        with open(args.infile, "rb") as f:
            return None, f.read()
    except OSError as e:
        raise AttachError(f"cannot read input file {args.infile}: {e.strerror}") from None


def _take_input(data: bytes, args, source: CommandSource, on_bad: Callable[[int, str], None]) -> None:
    lines = clean_lines(split_lines(data), args.command, on_bad)
    if "random" in args.options:
        import random  # -O random only: not every run's start-up
        random.shuffle(lines)
    source.extend(lines)
    source.finish()


class _Progress:
    """The ``sent / done / failed`` line on a terminal.

    Redrawn on every event (at most 5 times a second) and once a second by
    ``clock``, so that a silent VP shows as a growing "nothing from the VP
    for N s" (see :class:`AttachDriver`).
    """

    def __init__(self, driver: AttachDriver, stream, clock: IReactorTime) -> None:
        self.driver = driver
        self.stream = stream
        self.clock = clock
        self.last = float("-inf")
        self.shown = False
        self._call = None

    def start(self) -> None:
        self._call = self.clock.callLater(1.0, self._tick)

    def _tick(self) -> None:
        self.update(True)
        self._call = self.clock.callLater(1.0, self._tick)

    def stop(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def update(self, force: bool = False) -> None:
        now = self.clock.seconds()
        if not force and now - self.last < 0.2:
            return
        self.last = now
        self.stream.write(f"\r{PROG}: {self.driver.progress_text()}\x1b[K")
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False


def _daemonize() -> None:
    """Go to the background as ``sc_attach -D`` does (``daemon(1, 0)``).

    One fork; the parent exits 0; the child starts a new session, keeps
    the working directory and points stdin, stdout and stderr at
    /dev/null.  Unlike sc_attach, which detaches before it connects, this
    runs once the input was read, the output opened and the connection
    made, so those failures are still seen on the terminal.  The parent
    leaves with ``os._exit`` so that it touches nothing it shares with the
    child (the loop's poller, the socket, the output file).
    """
    sys.stdout.flush()
    sys.stderr.flush()
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    fd = os.open(os.devnull, os.O_RDWR)
    for n in (0, 1, 2):
        os.dup2(fd, n)
    if fd > 2:
        os.close(fd)


def _make_emitter(out, fmt: str, native_json: bool) -> Callable[[bytes], None]:
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


def _run(loop: Loop, args, early=None) -> int:
    bad = [o for o in args.options if o not in ("random", "impatient")]
    if bad:
        raise UsageError(f"-O: unknown option {bad[0]!r} (random or impatient)")
    if not (args.remote or args.unix or args.port):
        raise UsageError("one of -R SOCKET, -U SOCKET or -p [IP:]PORT is required")
    if args.priority is not None and not 1 <= args.priority <= 100000:
        raise UsageError("-P: priority must be 1-100000")
    if args.remote and args.priority is not None:
        raise UsageError("-P cannot be used with -R (the channel is already attached)")
    if args.daemon and (args.infile in (None, "-") or args.outfile in (None, "-") or args.debug):
        # as sc_attach: a daemon has no stdin, stdout or stderr to use
        raise UsageError("-D needs -i FILE and -o FILE (not '-') and cannot be used with -d")
    # printable ASCII, the control protocol's rule (is_printable_line), without importing it yet
    if args.command is not None and not (args.command.isascii() and args.command.isprintable()):
        raise UsageError(f"-c: not printable ASCII: {args.command}")
    endpoint, where = parse_endpoint(args)
    out = _open_output(args.outfile, args.format)  # before anything is sent
    try:
        return _session(loop, args, endpoint, where, out, early)
    finally:
        if out is not sys.stdout.buffer:
            try:
                out.close()
            except OSError as e:
                raise AttachError(f"cannot write output: {e.strerror}") from None


def _session(loop: Loop, args, endpoint: tuple, where: str, out, early=None) -> int:
    progress: _Progress | None = None

    def report(line: str) -> None:
        if progress is not None:
            progress.clear()
        sys.stderr.write(f"{PROG}: {escape(line)}\n")
        sys.stderr.flush()

    source = CommandSource()

    def bad_line(n: int, shown: str) -> None:
        source.rejected += 1
        report(f"input line {n} not sent (not printable ASCII): {shown}")

    reader, data = _load_input(loop, args, source, bad_line)
    try:
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

        emit = _make_emitter(out, args.format, native_json)
        drivers: list[AttachDriver] = []

        def make_driver(send):
            d = AttachDriver(source, send=send, emit=emit, report=report, attach_line=attach_line,
                             fmt="json" if native_json else "warts",
                             impatient="impatient" in args.options, debug=args.debug, clock=loop)
            drivers.append(d)
            return d

        # connected already by the entry point (attach_start) if it is this socket
        sock = early.take(endpoint[1]) if early is not None and endpoint[0] == socket.AF_UNIX else None
        if sock is not None:
            sock.setblocking(False)
        else:
            sock = _connect(endpoint, where)  # connection refused, no such socket, timeout...
        # what is not needed to connect comes after it (see _control)
        conn = _Connection(loop, sock, make_driver, loop.stop)
        driver = drivers[0]
        if data is not None:
            _take_input(data, args, source, bad_line)
        if args.daemon:
            _daemonize()
        tty = sys.stderr.isatty()

        def on_signal(signum: int) -> None:
            # Ctrl-C / SIGTERM: the connection drops now; say why, not "connection ended"
            driver.interrupted()
            conn.close()
        loop.on_signal = on_signal
        if tty:
            progress = _Progress(driver, sys.stderr, loop)
            driver.on_progress = progress.update
            progress.start()
        loop.run()
        if progress is not None:
            progress.stop()
            if driver.output_gone:
                progress.clear()
            else:
                progress.update(force=True)
                sys.stderr.write("\n")
        if driver.output_gone:
            raise BrokenPipeError
        if driver.failures:
            sys.stderr.write(f"{PROG}: {driver.failures} of {driver.sent + source.rejected} command(s) failed\n")
        return driver.exit_status
    finally:
        if reader is not None:
            reader.close()


def _main(argv: list[str], early=None) -> int:
    try:
        return _main_connected(argv, early)
    finally:
        if early is not None:
            early.close()   # not used: a usage error, another endpoint, ...


def _main_connected(argv: list[str], early=None) -> int:
    args = build_parser().parse_args(argv)
    if args.version:
        print(VERSION)
        return 0
    # Everything imported so far lives until exit: keep it out of the
    # collector's way, which also spares the interpreter a full collection
    # at shutdown.
    gc.freeze()
    try:
        return _run(Loop(), args, early)
    except UsageError as e:
        sys.stderr.write(f"{PROG}: {escape(str(e))}\n")
        return 2
    except AttachError as e:
        sys.stderr.write(f"{PROG}: {escape(str(e))}\n")
        return 1
    except BrokenPipeError:
        raise  # guarded: quiet, exit 141
    except Exception as e:  # a bug of ours: one line, status 1, as the session always said
        sys.stderr.write(f"{PROG}: internal error: {escape(f'{type(e).__name__}: {e}')}\n")
        return 1


def main(argv: list[str] | None = None, early=None) -> None:
    """Console entry point; ``early``: the socket `ixpscamper.attach_start`
    connected before the imports, if any."""
    argv = sys.argv[1:] if argv is None else argv
    sys.exit(guarded(PROG, lambda: _main(argv, early)))


if __name__ == "__main__":
    main()
