"""Sans-IO server side of scamper's text control protocol.

One :class:`ControlServer` serves one connection to a local control
socket (starting *interactive*, protocol doc A.2) or one channel of the
remote protocol (starting *attached*, A.4).  Bytes from the client go in
through :meth:`ControlServer.receive`, which returns the events the
application must act on (:class:`Command`, :class:`Halt`, ...); replies
the protocol fixes by itself (``ERR`` for a bad line, ``OK`` for
``done``, the interactive ``get`` answers) are queued by the core, and
the application queues its own with :meth:`ControlServer.accept`,
:meth:`ControlServer.result`, ...  Everything queued comes out, in order,
from :meth:`ControlServer.data_to_send`.

Two dialects of the result header: ``"current"`` writes ``DATA <n> id-N``
for task results (scamper since 2023; the scamper Python module needs
the id) and ``"2021"`` writes a bare ``DATA <n>`` (what the Debian
20211212 ``sc_attach`` can parse).
"""

from __future__ import annotations

import os
import shlex
from typing import Union

import attrs

from ixpscamper.control.lines import is_printable_line  # noqa: F401  (part of this module's API)

from ixpscamper.control import uu

__all__ = [
    "DIALECTS", "ServerInfo", "Attached", "Command", "Halt", "Done", "InputError",
    "Eof", "Event", "ControlServer", "is_printable_line",
]

DIALECTS = ("current", "2021")
#: longest command line accepted (without its line end).  scamper has no
#: limit: its linepoll grows the buffer with every read until a newline
#: comes.  A daemon needs one, and the buffer is bounded by it however the
#: input arrives (see ControlServer.feed).
MAX_LINE = 16384



@attrs.define
class ServerInfo:
    """What ``get ...`` answers in interactive mode."""
    version: str = "20211212"
    pid: int = attrs.field(factory=os.getpid)
    pps: int = 20
    window: int = 0
    monitorname: str | None = None


@attrs.frozen
class Attached:
    """The client attached (``attach``); the app sends list/cycle-start next."""
    format: str
    priority: int


@attrs.frozen
class Command:
    """A measurement command; answer with ``accept()`` or ``reject()``."""
    text: str


@attrs.frozen
class Halt:
    """``halt N``; answer with ``halted(N)`` or ``no_task(N)``."""
    task_id: int


@attrs.frozen
class Done:
    """``done``: no more commands (``OK`` already queued)."""


@attrs.frozen
class InputError:
    """The client broke the protocol; an ``ERR`` is queued, input is over."""
    message: str


@attrs.frozen
class Eof:
    """The client closed its side."""


Event = Union[Attached, Command, Halt, Done, InputError, Eof]

_ATTACH_USAGE = "command attach param '{}' failed"


class ControlServer:
    """State machine of one control-protocol session, server side."""

    def __init__(self, *, attached: bool = False, dialect: str = "current",
                 fmt: str = "warts", info: ServerInfo | None = None) -> None:
        if dialect not in DIALECTS:
            raise ValueError(f"unknown dialect {dialect!r}")
        if fmt not in ("warts", "json"):
            raise ValueError(f"unknown format {fmt!r}")
        self.dialect = dialect
        self.format = fmt
        self.priority = 1
        self.info = info or ServerInfo()
        #: "interactive", "attached", "done" (after ``done``) or "closed"
        self.state = "attached" if attached else "interactive"
        self._inbuf = bytearray()
        self._pos = 0
        # where the line still waiting for its newline starts in _inbuf, and
        # whether it already proved too long (the rest of it is not kept)
        self._tail = 0
        self._overlong = False
        self._out: list[bytes] = []
        self._next_id = 1
        self.closing = False  # true once the client asked to exit

    # -- input ---------------------------------------------------------------

    def receive(self, data: bytes) -> list[Event]:
        """Feed client bytes; return all events they complete.

        Replies the core makes by itself are queued while the lines are
        read, i.e. *before* the application answers the events returned
        here.  An application that must keep replies in line order (any
        real server) uses :meth:`feed` and :meth:`next_event` instead.
        """
        self.feed(data)
        events: list[Event] = []
        while (ev := self.next_event()) is not None:
            events.append(ev)
        return events

    def feed(self, data: bytes) -> None:
        """Buffer client bytes; read them with :meth:`next_event`.

        Complete lines are kept until read; of a line without its newline
        no more than shows it is too long is kept (it ends the session when
        :meth:`next_event` reaches it), so a client that never sends a
        newline costs at most ``MAX_LINE + 2`` bytes, even while the
        application is not reading events.
        """
        if self.state == "closed" or self._overlong:
            return
        start = len(self._inbuf)
        self._inbuf += data
        nl = data.rfind(b"\n")
        if nl >= 0:
            self._tail = start + nl + 1
        keep = self._tail + MAX_LINE + 2  # the line, a CR, one byte to tell
        if len(self._inbuf) > keep:
            del self._inbuf[keep:]
            self._overlong = True

    def next_event(self) -> Event | None:
        """Read lines until one needs the application; None when out of input.

        Call it again only after answering the event it returned, so every
        reply goes out in the order of the lines that asked for it.
        """
        buf = self._inbuf
        while self.state != "closed":
            nl = buf.find(b"\n", self._pos)
            if nl < 0:
                # MAX_LINE bytes and a CR may still be a line whose LF is late
                if len(buf) - self._pos > MAX_LINE + 1:
                    return self._fail("line too long")
                break
            raw = bytes(buf[self._pos:nl])
            self._pos = nl + 1
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            if not raw:
                continue
            if len(raw) > MAX_LINE:
                return self._fail("line too long")
            if not is_printable_line(raw):
                return self._fail("invalid character in line")
            events: list[Event] = []
            self._line(raw.decode("ascii"), events)
            if events:
                return events[0]
        if self.state == "closed":
            buf.clear()
            self._pos = self._tail = 0
        elif self._pos:
            del buf[:self._pos]
            self._tail -= self._pos
            self._pos = 0
        return None

    def eof(self) -> list[Event]:
        """The client closed (or half-closed) its side."""
        if self.state == "closed":
            return []
        self.state = "closed"
        return [Eof()]

    def _fail(self, message: str) -> InputError:
        self._queue(f"ERR {message}\n")
        self.state = "closed"
        self._inbuf.clear()
        self._pos = self._tail = 0
        return InputError(message)

    def _line(self, line: str, events: list[Event]) -> None:
        if self.state == "interactive":
            self._interactive(line, events)
            return
        word, _, rest = line.strip().partition(" ")
        key = word.lower()
        if key == "halt":
            arg = rest.strip()
            # scamper 20211212 takes the bare number only ("halt id-1" is a usage error)
            if not arg.isdigit():
                self._queue("ERR usage: halt [id]\n")
            else:
                events.append(Halt(int(arg)))
        elif key == "done" and not rest.strip():
            if self.state == "attached":
                self.state = "done"
                self._queue("OK\n")
                events.append(Done())
            else:
                self._queue("ERR done already received\n")
        elif self.state == "done":
            # scamper runs such commands but then omits the cycle-stop
            # record; refusing them keeps the output file well formed
            self._queue("ERR command not accepted: done already received\n")
        else:
            events.append(Command(line.strip()))

    def _interactive(self, line: str, events: list[Event]) -> None:
        try:
            words = shlex.split(line)
        except ValueError:
            words = line.split()
        if not words:
            return
        key = words[0].lower()
        if key == "attach":
            self._attach(words[1:], events)
        elif key == "get":
            self._get(words[1:])
        elif key == "exit":
            self.closing = True
            self.state = "closed"
            events.append(Eof())
        elif key == "help":
            self._queue("ERR XXX: todo\n")
        else:
            self._queue(f"ERR unhandled command '{words[0]}'\n")

    def _get(self, args: list[str]) -> None:
        if len(args) != 1:
            self._queue("ERR usage: get [command | monitorname | pid | pps | version | window]\n")
            return
        what = args[0].lower()
        info = self.info
        if what == "version":
            self._queue(f"OK version {info.version}\n")
        elif what == "pid":
            self._queue(f"OK pid {info.pid}\n")
        elif what == "pps":
            self._queue(f"OK pps {info.pps}\n")
        elif what == "window":
            self._queue(f"OK window 0/{info.window}\n")
        elif what == "monitorname":
            if info.monitorname:
                self._queue(f"OK monitorname {info.monitorname}\n")
            else:
                self._queue("OK null monitorname\n")
        elif what == "command":
            self._queue("OK command trace\n")
        else:
            self._queue(f"ERR unhandled get command '{args[0]}'\n")

    def _attach(self, args: list[str], events: list[Event]) -> None:
        fmt, priority = "warts", 1
        seen: set[str] = set()
        i = 0
        while i < len(args):
            key = args[i].lower()
            if key not in ("format", "priority") or key in seen or i + 1 >= len(args):
                self._queue("ERR " + _ATTACH_USAGE.format(args[i]) + "\n")
                return
            seen.add(key)
            value = args[i + 1]
            if key == "format":
                if value.lower() not in ("warts", "json"):
                    self._queue("ERR format must be warts or json\n")
                    return
                fmt = value.lower()
            else:
                if not value.isdigit() or not 1 <= int(value) <= 100000:
                    self._queue("ERR invalid priority\n")
                    return
                priority = int(value)
            i += 2
        self.format = fmt
        self.priority = priority
        self.state = "attached"
        self._queue("OK\n")
        self._queue("MORE\n")
        events.append(Attached(fmt, priority))

    # -- replies -------------------------------------------------------------

    def _queue(self, line: str) -> None:
        self._out.append(line.encode("ascii"))

    def accept(self) -> int:
        """Accept the last :class:`Command`: queue ``OK id-N``; return N."""
        task_id = self._next_id
        self._next_id += 1
        self._queue(f"OK id-{task_id}\n")
        return task_id

    def reject(self, reason: str = "") -> None:
        """Refuse the last :class:`Command` (no ``MORE`` follows, as in scamper)."""
        reason = " ".join(reason.split())
        self._queue("ERR command not accepted" + (f": {reason}" if reason else "") + "\n")

    def more(self) -> None:
        """Queue ``MORE``: ready for another command."""
        self._queue("MORE\n")

    def halted(self, task_id: int) -> None:
        self._queue(f"OK halted {task_id}\n")

    def no_task(self, task_id: int) -> None:
        self._queue(f"ERR no task id-{task_id}\n")

    def result(self, payload: bytes, task_id: int | None = None, inprog: bool = False) -> None:
        """Queue a result block.

        ``payload`` is one warts record (warts format) or one JSON object
        (json format; a trailing newline is added if missing).  ``task_id``
        is written (current dialect only) for task results, never for list
        and cycle records.
        """
        if self.format == "json":
            block = payload if payload.endswith(b"\n") else payload + b"\n"
        else:
            block = uu.encode(payload)
        header = f"DATA {len(block)}"
        if task_id is not None and self.dialect == "current":
            header += f" id-{task_id}"
            if inprog:
                header += " inprog"
        self._out.append(header.encode("ascii") + b"\n")
        self._out.append(block)

    def data_to_send(self) -> bytes:
        """Everything queued since the last call, in order."""
        out = b"".join(self._out)
        self._out.clear()
        return out

    def data_chunks(self) -> list[bytes]:
        """Like :meth:`data_to_send` but one item per line / block.

        A remote-channel VP sends every reply line as its own frame.
        """
        out = self._out
        self._out = []
        return out
