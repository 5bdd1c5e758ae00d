"""A small blocking facade over the client cores, for scripts and notebooks.

No reactor and no threads: a plain socket and ``select`` drive the same
sans-IO cores the Twisted API uses (`MuxClientCore`, `TaskChannel`)::

    from ixpscamper.client.blocking import Mux

    with Mux("/run/ixp-remoted/mux") as mux:
        for vp in mux.vps():
            print(vp.name, vp.cc, vp.asn4)
        rec = mux.ping("rc1", "192.0.2.1", count=3)           # waits for the record
        tasks = [mux.submit(vp, "trace 198.51.100.66") for vp in mux.vps()]
        for task, outcome in mux.results(tasks, timeout=120):  # as they complete
            ...

``outcome`` is the warts record, or the exception the Twisted API would
have failed with (`CommandRefused`, `VPGone`, `ChannelGone`).
"""

from __future__ import annotations

import select
import socket
import time
from typing import Any, Iterable, Iterator, Optional

from .api import VPRef, build_command
from .channel import ChannelGone, ClientTask
from .vps import VP, MuxClientCore

__all__ = ["Mux", "BlockingTask"]


class BlockingTask:
    """A submitted command; ``outcome`` is set when it is done."""

    def __init__(self, vp: VP, command: str) -> None:
        self.vp = vp
        self.command = command
        self.done = False
        self.outcome: Any = None
        self._task: Optional[ClientTask] = None

    def _set(self, outcome: Any) -> None:
        self.done = True
        self.outcome = outcome

    def halt(self) -> None:
        if self._task is not None:
            self._task.halt()


class Mux:
    """Every VP behind a controller's mux socket, driven by blocking calls."""

    def __init__(self, path: str, timeout: float = 30.0) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        self._sock.connect(path)
        self._sock.setblocking(False)
        self._out = bytearray()
        self._core = MuxClientCore(self._out.extend)
        self._wait(lambda: self._core.ready, timeout, "the controller's VP list (GO)")

    # ---- plumbing --------------------------------------------------------

    def _io(self, timeout: float) -> None:
        w = [self._sock] if self._out else []
        r, wr, _ = select.select([self._sock], w, [], max(0.0, timeout))
        if wr:
            try:
                n = self._sock.send(self._out)
                del self._out[:n]
            except BlockingIOError:
                pass
            except OSError as e:
                self._core.connection_lost(f"mux connection lost: {e}")
        if r:
            try:
                data = self._sock.recv(262144)
            except BlockingIOError:
                return
            except OSError as e:
                self._core.connection_lost(f"mux connection lost: {e}")
                return
            if not data:
                self._core.connection_lost("mux connection closed by the controller")
            else:
                self._core.data_received(data)

    def _wait(self, pred, timeout: Optional[float], what: str) -> None:
        end = None if timeout is None else time.monotonic() + timeout
        while not pred():
            if self._core.lost is not None:
                raise ChannelGone(self._core.lost)
            left = 1.0 if end is None else end - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"timed out waiting for {what}")
            self._io(min(left, 1.0))

    # ---- API -------------------------------------------------------------

    def vps(self) -> list[VP]:
        """The VPs known now (reads whatever the controller has sent)."""
        self._io(0)
        return sorted(self._core.vps.values(), key=lambda v: v.id)

    def vp(self, ref: VPRef) -> VP:
        if isinstance(ref, VP):
            return ref
        for v in self._core.vps.values():
            if ref in (v.id, v.name):
                return v
        raise KeyError(f"no VP {ref!r}")

    def submit(self, vp: VPRef, command: str) -> BlockingTask:
        v = self.vp(vp)
        t = BlockingTask(v, command)
        t._task = self._core.submit(v.id, command, t._set)
        self._io(0)
        return t

    def results(self, tasks: Iterable[BlockingTask], timeout: Optional[float] = None
                ) -> Iterator[tuple[BlockingTask, Any]]:
        """Yield ``(task, outcome)`` as tasks complete."""
        left = list(tasks)
        end = None if timeout is None else time.monotonic() + timeout
        while left:
            done = [t for t in left if t.done]
            for t in done:
                left.remove(t)
                yield t, t.outcome
            if not left:
                return
            rem = 1.0 if end is None else end - time.monotonic()
            if rem <= 0:
                raise TimeoutError(f"{len(left)} tasks still running")
            self._io(min(rem, 1.0))

    def run(self, vp: VPRef, command: str, timeout: Optional[float] = 300.0) -> Any:
        """Send one command and wait for its record (raises its exception)."""
        t = self.submit(vp, command)
        self._wait(lambda: t.done, timeout, f"the result of {command!r}")
        if isinstance(t.outcome, BaseException):
            raise t.outcome
        return t.outcome

    def ping(self, vp: VPRef, dst: str, timeout: Optional[float] = 300.0, **options: Any) -> Any:
        return self.run(vp, build_command("ping", dst, **options), timeout)

    def trace(self, vp: VPRef, dst: str, timeout: Optional[float] = 300.0, **options: Any) -> Any:
        return self.run(vp, build_command("trace", dst, **options), timeout)

    def close(self) -> None:
        for vp_id in list(self._core._by_vp):
            self._core.finish(vp_id)
        end = time.monotonic() + 2
        while self._out and time.monotonic() < end and self._core.lost is None:
            self._io(0.1)
        self._sock.close()

    def __enter__(self) -> "Mux":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
