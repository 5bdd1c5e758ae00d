"""Tasks over one attached control-protocol channel, sans-IO.

A `TaskChannel` is the client end of one channel to a VP: a mux channel, a
controller's per-VP socket, or a VP's own control socket after ``attach``.
It turns commands into tasks and the VP's replies into results:

* commands are queued and sent while fewer than ``window`` of them are in
  flight (sent and not yet done) -- per-VP flow control, so any number of
  tasks may be submitted at once without flooding the VP.  With
  ``window=0`` they are paced by the VP's own ``MORE`` instead, one command
  per MORE (slower: one round trip per command; libscamperctrl does not
  wait for MORE either);
* ``OK id-N`` gives the oldest sent command its VP-side id; ``ERR ...``
  refuses it (`CommandRefused` carries the command and the message) and
  counts as a ``MORE``, since scamper signals MORE only when it takes a
  task;
* ``DATA <n> id-N`` blocks are warts records; list and cycle records are
  consumed, a ping/trace record completes the task with that id.  A VP of
  the 20211212 dialect writes bare ``DATA <n>``: such a result is matched
  to the only accepted task when there is exactly one, otherwise to the
  accepted task whose command carried the record's ``userid`` (with
  ``tag_userids`` the channel adds a ``-U`` of its own to commands that
  have none), otherwise the channel fails: a guess could hand a result to
  the wrong task;
* `close` sends ``done``; when the channel ends (`connection_lost`) every
  task still open fails with `ChannelGone`.

Nothing here does I/O: bytes go out through ``write``; each task reports
through its ``on_done`` callable, called exactly once with the record or
an exception.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable, Optional

from ixpscamper.control.client import (
    ControlProtocolError, Data, Err, Info, More, Ok, ReplyParser, Unknown,
)
from ixpscamper.warts import WartsDecoder, WartsError
from ixpscamper.warts.records import CycleStart, CycleStop, Ping, Trace, WartsList

__all__ = ["ClientTask", "TaskChannel", "CommandRefused", "ChannelGone", "TaskHalted"]


#: commands in flight per channel (per VP) by default
DEFAULT_WINDOW = 128


class CommandRefused(Exception):
    """The VP answered ``ERR``: ``command`` and the VP's ``message``."""

    def __init__(self, command: str, message: str) -> None:
        super().__init__(f"{command!r}: {message}")
        self.command = command
        self.message = message


class ChannelGone(Exception):
    """The channel (or its VP) ended before the task's result arrived."""


class TaskHalted(Exception):
    """The task was halted before it was sent to the VP."""


class ClientTask:
    """One command on a channel.  ``vp_id`` is the VP-side ``id-N`` once
    accepted; ``state`` is queued, sent, accepted or done."""

    __slots__ = ("command", "on_done", "state", "vp_id", "userid", "channel", "halt_wanted",
                 "_halt_sent")

    def __init__(self, command: str, on_done: Callable[[Any], None], userid: int | None) -> None:
        self.command = command
        self.on_done = on_done
        self.state = "queued"
        self.vp_id: int | None = None
        self.userid = userid
        self.channel: Optional[TaskChannel] = None
        self.halt_wanted = False
        self._halt_sent = False

    def halt(self) -> None:
        """Stop the task: unsent, it fails with `TaskHalted`; running, the VP
        is asked to halt it and its (partial) record is the result."""
        if self.channel is not None:
            self.channel.halt(self)

    def _finished(self, outcome: Any) -> None:
        """The task ended with ``outcome`` (called once); a subclass that
        reports otherwise than through ``on_done`` overrides this."""
        self.on_done(outcome)


def _command_userid(command: str) -> int | None:
    """The ``-U`` value of a ping/trace command, if it has one."""
    if "-U" not in command:
        return None   # the usual case, without splitting the command
    words = command.split()
    for i, w in enumerate(words[:-1]):
        if w == "-U" and words[i + 1].isdigit():
            return int(words[i + 1])
    return None


class TaskChannel:
    """The client side of one attached channel; see the module docstring."""

    def __init__(self, write: Callable[[bytes], None], *, name: str = "channel",
                 on_closed: Callable[[Optional[str]], None] | None = None,
                 tag_userids: bool = False, window: int = DEFAULT_WINDOW) -> None:
        if window < 0:
            raise ValueError("window must be 0 (MORE-paced) or more")
        self.window = window
        self._write = write
        self.name = name
        self._on_closed = on_closed
        self._parser = ReplyParser("warts")
        self._warts = WartsDecoder(skip_unknown=False)
        self._queue: deque[ClientTask] = deque()      # not yet sent
        # every line sent that the VP answers with one OK/ERR, in order: a
        # task's command, or the word 'halt' / 'done'
        self._sent: deque[ClientTask | str] = deque()
        self._sent_tasks = 0      # the ClientTasks in _sent (the rest are words)
        self._accepted: dict[int, ClientTask] = {}    # vp id -> task
        self._credit = 0          # MOREs not yet used
        self._done_sent = False
        self._closing = False
        self.closed = False
        self.lists: list[WartsList] = []
        self.cycles: list = []
        self.results = 0
        self._next_userid = 0x7F000000
        # A VP of the 20211212 dialect writes DATA without id-N: with
        # tag_userids, commands without -U get one of ours so that results
        # can be told apart (set it for such VPs; it shows in the records).
        self._bare_data = tag_userids

    # ---- submitting ------------------------------------------------------

    @property
    def outstanding(self) -> int:
        """Tasks submitted and not yet done."""
        return len(self._queue) + self._sent_tasks + len(self._accepted)

    def submit(self, command: str, on_done: Callable[[Any], None]) -> ClientTask:
        """Queue ``command`` (one ping/trace line, without newline)."""
        if "\n" in command or "\r" in command:
            raise ValueError("a command is one line")
        return self.submit_task(ClientTask(command.strip(), on_done, _command_userid(command)))

    def submit_task(self, task: ClientTask) -> ClientTask:
        """Queue a task made by the caller (a `ClientTask`, or a subclass
        that reports through `ClientTask._finished`): one object per task
        rather than a task and a callback."""
        if "\n" in task.command or "\r" in task.command:
            raise ValueError("a command is one line")
        task.channel = self
        if self.closed or self._closing:
            self._finish(task, ChannelGone(f"{self.name} is closed"))
            return task
        self._queue.append(task)
        self._pump()
        return task

    def expect_reply(self, what: str) -> None:
        """A line the owner sends itself (``attach`` on a VP's control socket)
        is answered by one OK/ERR in order: that reply is not a task's."""
        self._sent.append(what)

    def halt(self, task: ClientTask) -> None:
        if task.state == "queued":
            try:
                self._queue.remove(task)
            except ValueError:
                return
            self._finish(task, TaskHalted(task.command))
        elif task.state == "sent":
            task.halt_wanted = True   # halted as soon as the VP names its id
        elif task.state == "accepted" and not task._halt_sent and not self.closed \
                and task.vp_id is not None and task.vp_id >= 0:
            task._halt_sent = True
            self._sent.append("halt")
            self._write(f"halt {task.vp_id}\n".encode())

    def close(self) -> None:
        """Send ``done`` once every queued command has been sent."""
        self._closing = True
        self._pump()

    def _can_send(self) -> bool:
        if self.window:
            return self._sent_tasks + len(self._accepted) < self.window
        return self._credit > 0

    def _pump(self) -> None:
        queue = self._queue
        while queue and not self.closed and (
                self._sent_tasks + len(self._accepted) < self.window if self.window
                else self._credit > 0):
            task = queue.popleft()
            if self._credit > 0:
                self._credit -= 1
            task.state = "sent"
            cmd = task.command
            if self._bare_data and task.userid is None:
                # a VP without id-N: a userid of our own tells results apart
                self._next_userid += 1
                task.userid = self._next_userid
                cmd = _with_userid(cmd, task.userid)
            self._sent.append(task)
            self._sent_tasks += 1
            self._write(cmd.encode() + b"\n")
        if self._closing and not self._queue and not self._done_sent and not self.closed:
            self._done_sent = True
            self._sent.append("done")
            self._write(b"done\n")

    # ---- receiving -------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            replies = self._parser.feed(data)
        except ControlProtocolError as e:
            self._fail(f"{self.name}: {e}")
            return
        for r in replies:
            if self.closed:
                return
            t = type(r)
            if t is More:
                if not self.window:
                    self._credit += 1
                    self._pump()
            elif t is Ok:
                self._ok(r)
            elif t is Err:
                self._err(r)
            elif t is Data:
                self._data(r)
            elif t is Info or t is Unknown:
                pass  # nothing a task waits for

    def _ok(self, r: Ok) -> None:
        if not self._sent:
            return
        task = self._sent.popleft()
        if isinstance(task, str):
            return  # the answer to a halt or done
        self._sent_tasks -= 1
        if r.task_id is None:
            task.state = "accepted"
            task.vp_id = -id(task)  # no id from the VP: matched by userid
        else:
            task.state = "accepted"
            task.vp_id = r.task_id
        self._accepted[task.vp_id] = task
        if task.halt_wanted:
            self.halt(task)

    def _err(self, r: Err) -> None:
        if not self._sent:
            return
        task = self._sent.popleft()
        if isinstance(task, str):
            return  # a halt for a task that had just finished
        self._sent_tasks -= 1
        self._finish(task, CommandRefused(task.command, r.message.strip()))
        # scamper asks for more only when it takes a task, so a refused
        # command is an implicit MORE (libscamperctrl counts it so too)
        if not self.window:
            self._credit += 1
        self._pump()

    def _data(self, r: Data) -> None:
        try:
            records = self._warts.feed(r.payload)
        except WartsError as e:
            self._fail(f"{self.name}: bad warts record from the VP: {e}")
            return
        for rec in records:
            if isinstance(rec, WartsList):
                self.lists.append(rec)
            elif isinstance(rec, (CycleStart, CycleStop)):
                self.cycles.append(rec)
            else:
                self._result(r.task_id, rec)

    def _result(self, task_id: Optional[int], rec) -> None:
        task = None
        if task_id is not None:
            task = self._accepted.pop(task_id, None)
        else:
            if len(self._accepted) == 1:
                task = self._accepted.pop(next(iter(self._accepted)))
            elif isinstance(rec, (Ping, Trace)):
                for k, t in self._accepted.items():
                    if t.userid is not None and t.userid == rec.userid:
                        task = self._accepted.pop(k)
                        break
        if task is None:
            self._fail(f"{self.name}: a result matches no task (id {task_id})")
            return
        self.results += 1
        self._finish(task, rec)
        self._pump()

    def _finish(self, task: ClientTask, outcome) -> None:
        task.state = "done"
        task.channel = None
        task._finished(outcome)

    def _fail(self, reason: str) -> None:
        self.connection_lost(reason)

    def connection_lost(self, reason: Optional[str] = None,
                        error: type[ChannelGone] = None) -> None:  # type: ignore[assignment]
        """The channel ended: every open task fails with ``error``
        (`ChannelGone` unless a subclass is given)."""
        if self.closed:
            return
        self.closed = True
        error = error or ChannelGone
        why = reason or f"{self.name} ended"
        tasks = (list(self._queue) + [t for t in self._sent if not isinstance(t, str)]
                 + list(self._accepted.values()))
        self._queue.clear()
        self._sent.clear()
        self._sent_tasks = 0
        self._accepted.clear()
        for t in tasks:
            self._finish(t, error(why))
        if self._on_closed is not None:
            self._on_closed(reason)


def _with_userid(command: str, userid: int) -> str:
    words = command.split()
    if len(words) >= 2 and words[0] in ("ping", "trace"):
        return " ".join([words[0], "-U", str(userid), *words[1:]])
    return command
