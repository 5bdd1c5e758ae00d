"""One attached measurement source: the control protocol served on a prober.

An :class:`AttachedSource` is what scamper calls a control source: one
remote channel, or one connection to the local control socket.  It reads
commands through the sans-IO :class:`~ixpscamper.control.server.ControlServer`,
runs every accepted command on the measurement backend at once (the
prober keeps concurrent tasks apart), and writes each result as a ``DATA`` block the moment it is
ready, framed by the list, cycle-start and cycle-stop records scamper's
remote mode writes.

The source never touches a socket: bytes go out through ``write``, and
``finish`` is called once after the last byte (the channel's FIN, or
closing the connection).

Sources share the VP fairly: a backend with ``start_for`` is told which
source each task is for, and with what weight (the source's ``attach
priority``, 1 for a remote channel, as in scamper), and shares transmit
slots between sources by weighted fair queueing; within a source its
tasks still run concurrently.  scamper instead hands out task *starts*
round-robin, ``priority`` tasks per source per turn, whenever no running
task has a probe due.
"""

from __future__ import annotations

import socket
from typing import Any, Callable, Protocol

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from ixpscamper.control import server as S
from ixpscamper.vp.turns import COMMANDS_PER_TURN, budget_for  # noqa: F401 (re-exported)
from ixpscamper.warts import render_json
from ixpscamper.warts.records import CycleStart, CycleStop, WartsList
from ixpscamper.warts.writer import encode_cycle, encode_cycle_stop, encode_list, encode_record

__all__ = ["Backend", "RunningTask", "CommandRejected", "AttachedSource", "sanitize_name"]

log = Logger()


class CommandRejected(Exception):
    """The backend refused a command; the message is the reason the user sees."""


class RunningTask(Protocol):
    """What the backend returns for a started command."""

    deferred: Deferred

    def halt(self) -> None: ...


class Backend(Protocol):
    """Measurements: parse a command, run it, give back a warts record."""

    def parse(self, command: str) -> Any:
        """Options for ``command``; raise :class:`CommandRejected` if invalid."""

    def start(self, options: Any) -> RunningTask:
        """Start a measurement; its ``deferred`` fires with a Trace/Ping record."""

    # Optional: ``start_for(options, group, weight) -> RunningTask`` starts
    # a measurement on behalf of ``group`` (the AttachedSource) with
    # ``weight`` (its priority); a backend that has it shares its resources
    # fairly between groups, and AttachedSource then uses it instead of start.


def sanitize_name(text: str, limit: int = 255) -> str:
    """Printable ASCII only (names from the network end up in files and logs)."""
    return "".join(c if 0x20 <= ord(c) < 0x7F else "?" for c in text)[:limit]


class AttachedSource:
    """The VP side of one attach session; see the module docstring.

    ``attached`` is true for a remote channel (already attached, always
    warts) and false for a local control connection (starts interactive).
    ``list_name`` is the list record's name (``<MASTER_ID>_<k>`` for a
    channel); ``monitor`` the ``-M`` name; ``abandon_on_eof`` is true for a
    local connection, whose EOF abandons running tasks as scamper's does.
    """

    def __init__(self, backend: Backend, clock, write: Callable[[bytes], None],
                 finish: Callable[[], None], *, attached: bool, list_name: str,
                 monitor: str | None = None, dialect: str = "current",
                 hostname: str | None = None, info: S.ServerInfo | None = None,
                 abandon_on_eof: bool = False, label: str = "") -> None:
        self.backend = backend
        self.clock = clock
        self._write = write
        self._finish = finish
        self.core = S.ControlServer(attached=attached, dialect=dialect, info=info)
        self.list_name = sanitize_name(list_name)
        self.monitor = monitor
        self.hostname = hostname if hostname is not None else socket.gethostname()
        self.abandon_on_eof = abandon_on_eof
        self.label = label or self.list_name
        self.running: dict[int, RunningTask] = {}
        self.input_over = False
        self.finished = False
        self.attached = False
        self.results_sent = 0
        self._cycle = None
        self._local = not attached
        # input is acted on in batches per reactor turn, shared by every
        # source of the process (see ixpscamper.vp.turns)
        self._turns = budget_for(clock)
        # while queued for a following turn's batch: the callable queued
        self._resume: Callable[[int], None] | None = None
        if attached:
            self._attached()
            self._flush()

    @property
    def priority(self) -> int:
        """This source's share of the VP: ``attach priority N``, else 1."""
        return self.core.priority

    # -- input ---------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.finished:
            return
        self.core.feed(data)
        if self._resume is None:
            self._drain(self._turns.take())

    def _drain(self, allowance: int | None) -> None:
        """Act on buffered input: at most ``allowance`` events (None: all).

        An impatient client sends hundreds of commands in one read; starting
        them all before returning to the reactor would hold back the first
        probes (and the pps credit lost meanwhile is not recovered), and
        every other source's replies.  What the allowance leaves waits for
        a following turn's (`TurnBudget`).
        """
        self._resume = None
        if self.finished:
            return
        handled = 0
        next_event = self.core.next_event
        while allowance is None or handled < allowance:
            ev = next_event()
            if ev is None:
                break
            self._event(ev)
            handled += 1
            if self.finished:
                break
        else:
            if not self.finished:
                self._wait_turn()
        self._turns.spend(handled)
        self._flush()
        self._maybe_finish()

    def _wait_turn(self) -> None:
        def resume(allowance: int) -> None:
            if self._resume is resume:   # not cancelled, nor queued anew since
                self._drain(allowance)
        self._resume = resume
        self._turns.wait(resume)

    def _cancel_drain(self) -> None:
        self._resume = None

    def eof(self) -> None:
        """The user went away (connection EOF or the controller's FIN)."""
        if self.finished:
            return
        if self._resume is not None:
            # lines that arrived before the EOF still count, in order
            self._cancel_drain()
            self._drain(None)
            if self.finished:
                return
        for ev in self.core.eof():
            self._event(ev)
        self._flush()
        self._maybe_finish()

    def abandon(self) -> None:
        """Drop everything at once (the session was lost): halt tasks, write nothing."""
        self.finished = True
        self._cancel_drain()
        tasks = list(self.running.values())
        self.running.clear()
        for t in tasks:
            _halt_quietly(t)

    # -- events --------------------------------------------------------------

    def _event(self, ev: S.Event) -> None:
        if isinstance(ev, S.Command):
            self._command(ev.text)
        elif isinstance(ev, S.Halt):
            task = self.running.get(ev.task_id)
            if task is None:
                self.core.no_task(ev.task_id)
            else:
                self.core.halted(ev.task_id)
                _halt_quietly(task)
        elif isinstance(ev, S.Attached):
            self._attached()
        elif isinstance(ev, S.Done):
            self.input_over = True
        elif isinstance(ev, S.InputError):
            log.info("{label}: {msg}; abandoning the source", label=self.label, msg=ev.message)
            self.input_over = True
            self._abandon_tasks()
        elif isinstance(ev, S.Eof):
            self.input_over = True
            if self.abandon_on_eof or not self.attached:
                self._abandon_tasks()

    def _abandon_tasks(self) -> None:
        tasks = list(self.running.values())
        self.running.clear()
        for t in tasks:
            _halt_quietly(t)

    def _attached(self) -> None:
        remote_channel = not self.attached and self.core.state == "attached" and not self._local
        self.attached = True
        # scamper's source is ready from its attach on: an idle prober's
        # schedule starts now, not when the first command has been parsed
        ready = getattr(self.backend, "source_ready", None)
        if ready is not None:
            ready()
        lst = WartsList(name=self.list_name, id=0, description=None, monitor=self.monitor)
        self._cycle = CycleStart(list=lst, start_time=int(self.clock.seconds()), id=1,
                                 hostname=self.hostname)
        if remote_channel:
            # a channel starts with MORE; a local attach queued OK and MORE itself
            self.core.more()
        if self.core.format == "json":
            self.core.result(self._json_cycle("cycle-start"))
        else:
            self.core.result(encode_list(lst, 1))
            self.core.result(encode_cycle(self._cycle, 1, 1))

    def _json_cycle(self, kind: str) -> bytes:
        rec = self._cycle if kind == "cycle-start" else CycleStop(
            cycle=self._cycle, stop_time=int(self.clock.seconds()))
        return render_json(rec).rstrip("\n").encode()

    def _command(self, text: str) -> None:
        try:
            options = self.backend.parse(text)
        except CommandRejected as e:
            self.core.reject(str(e))
            return
        except Exception as e:  # a backend bug must not take the VP down
            log.failure("{label}: parsing {cmd!r} failed", label=self.label, cmd=text)
            self.core.reject(f"internal error: {type(e).__name__}")
            return
        try:
            start_for = getattr(self.backend, "start_for", None)
            if start_for is not None:
                task = start_for(options, self, self.priority)
            else:
                task = self.backend.start(options)
        except CommandRejected as e:
            self.core.reject(str(e))
            return
        except Exception as e:
            log.failure("{label}: starting {cmd!r} failed", label=self.label, cmd=text)
            self.core.reject(f"cannot start: {e}")
            return
        task_id = self.core.accept()
        self.core.more()
        self.running[task_id] = task
        task.deferred.addCallbacks(self._result, self._task_failed,
                                   callbackArgs=(task_id, task),
                                   errbackArgs=(task_id, task, text, options))

    def _result(self, record, task_id: int, task) -> None:
        if self.running.get(task_id) is not task:
            return  # abandoned
        del self.running[task_id]
        if not self.finished:
            try:
                payload = self._encode(record)
            except Exception as e:
                log.error("{label}: result of task {tid} cannot be encoded: {err}",
                          label=self.label, tid=task_id, err=e)
            else:
                self.core.result(payload, task_id=task_id)
                self.results_sent += 1
            self._flush()
            self._maybe_finish()

    def _task_failed(self, failure: Failure, task_id: int, task, text: str, options=None) -> None:
        if self.running.get(task_id) is not task:
            return  # abandoned
        log.warn("{label}: task {tid} ({cmd}) failed: {err}", label=self.label, tid=task_id,
                 cmd=text, err=failure.getErrorMessage())
        # An accepted command always gets a result: a record of the failure
        # (stop reason ERROR) where the backend can make one.
        make = getattr(self.backend, "error_record", None)
        record = None
        if make is not None and options is not None:
            try:
                record = make(options, failure.getErrorMessage())
            except Exception:  # a backend bug must not take the VP down
                log.failure("{label}: no error record for task {tid}", label=self.label, tid=task_id)
        if record is not None:
            self._result(record, task_id, task)
            return
        del self.running[task_id]
        if not self.finished:
            self._flush()
            self._maybe_finish()

    def _encode(self, record) -> bytes:
        record.list = self._cycle.list
        record.cycle = self._cycle
        if self.core.format == "json":
            text = render_json(record)
            return text.rstrip("\n").encode() if isinstance(text, str) else text.rstrip(b"\n")
        return encode_record(record, 1, 1)

    # -- output --------------------------------------------------------------

    def _flush(self) -> None:
        for chunk in self.core.data_chunks():
            self._write(chunk)

    def _maybe_finish(self) -> None:
        if self.finished or not self.input_over or self.running:
            return
        self.finished = True
        if self.attached and self._cycle is not None:
            if self.core.format == "json":
                self.core.result(self._json_cycle("cycle-stop"))
            else:
                stop = CycleStop(cycle=self._cycle, stop_time=int(self.clock.seconds()))
                self.core.result(encode_cycle_stop(stop, 1))
        self._flush()
        self._finish()


def _halt_quietly(task) -> None:
    try:
        task.halt()
    except Exception:
        log.failure("halting a task failed")
