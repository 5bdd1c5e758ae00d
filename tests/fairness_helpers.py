"""Two users on one VP (issue 8): user A queues many pings, then user B sends
one; how long B waits, and how much of A's queue was done by then.

Used by tests/test_vp_fairness.py and bench/fairness_bench.py, for our VP
and for the real scamper VP behind the same controller.  Every probe goes
to 127.0.0.0/8: A's to distinct addresses 127.1.x.y (scamper runs one task
per destination at a time, which would serialise A's queue and hide the
sharing), B's to 127.2.0.1.
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import attrs

from ixpscamper.warts import WartsDecoder
from ixpscamper.warts.records import Ping

from tests.pipeline_helpers import ATTACH

B_DST = "127.2.0.1"


def a_commands(n: int) -> bytes:
    return b"".join(b"ping 127.1.%d.%d\n" % (i // 250, i % 250 + 1) for i in range(n))


class _Counter(threading.Thread):
    """Reads a warts stream as it arrives, counting Ping records."""

    def __init__(self, stream) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.lock = threading.Lock()
        self.pings: list[Ping] = []
        self.error: str | None = None

    def run(self) -> None:
        dec = WartsDecoder()
        try:
            while chunk := self.stream.read1(65536):
                for rec in dec.feed(chunk):
                    if isinstance(rec, Ping):
                        with self.lock:
                            self.pings.append(rec)
        except Exception as e:  # reported by the caller, not lost in a thread
            self.error = f"{type(e).__name__}: {e}"

    def count(self) -> int:
        with self.lock:
            return len(self.pings)


@attrs.frozen
class TwoUsers:
    """What :func:`two_users` measured."""

    b_latency: float  # seconds from B's command to B's result (B's attach exit)
    a_done: int  # A's pings whose results had arrived when B's did
    a_queued: int
    b_ping: Ping | None
    b_stderr: str


def two_users(sock: Path, n_a: int = 200, settle: float = 2.0, timeout: float = 120.0) -> TwoUsers:
    """A queues ``n_a`` pings through ``ixp-attach -R sock``; ``settle``
    seconds later B sends ``ping 127.2.0.1`` on another attach session."""
    a = subprocess.Popen(ATTACH + ["-R", str(sock), "-i", "-", "-o", "-"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    counter = _Counter(a.stdout)
    counter.start()
    try:
        # A's input stays open (its session stays attached) while B runs
        a.stdin.write(a_commands(n_a))
        a.stdin.flush()
        time.sleep(settle)
        t0 = time.monotonic()
        b = subprocess.run(ATTACH + ["-R", str(sock), "-i", "-", "-o", "-"],
                           input=f"ping {B_DST}\n".encode(), capture_output=True, timeout=timeout)
        latency = time.monotonic() - t0
        a_done = counter.count()
        dec = WartsDecoder()
        pings = [r for r in dec.feed(b.stdout) if isinstance(r, Ping)]
        return TwoUsers(latency, a_done, n_a, pings[0] if pings else None, b.stderr.decode(errors="replace"))
    finally:
        if a.poll() is None:
            a.kill()
        a.wait(10)
        counter.join(5)
