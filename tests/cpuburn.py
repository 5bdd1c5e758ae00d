"""CPU burner processes for tests and soaks that must hold "under load".

    from cpuburn import Burners          # (or tests.cpuburn from the repo root)
    with Burners(2, seconds=40):         # two busy-looping processes
        ...                              # the measured work

Each burner is a child process that spins until its own deadline, so even
a burner whose parent is killed stops by itself after ``seconds``; leaving
the ``with`` block (normally or by an exception) kills them at once, by
pid.  ``nice`` lowers their priority (0 = compete as equals, the default).
"""

from __future__ import annotations

import subprocess
import sys
from typing import Optional

__all__ = ["Burners"]

_SPIN = ("import os, time\n"
         "os.nice({nice})\n"
         "end = time.monotonic() + {seconds}\n"
         "while time.monotonic() < end:\n"
         "    sum(range(1000))\n")


class Burners:
    """``n`` busy-looping processes, each bounded to ``seconds``."""

    def __init__(self, n: int = 2, seconds: float = 30.0, nice: int = 0) -> None:
        if n < 0 or seconds <= 0:
            raise ValueError("Burners: n >= 0 and seconds > 0")
        self.n = n
        self.seconds = seconds
        self.nice = nice
        self.procs: list[subprocess.Popen] = []

    def start(self) -> Burners:
        code = _SPIN.format(seconds=float(self.seconds), nice=int(self.nice))
        for _ in range(self.n):
            self.procs.append(subprocess.Popen([sys.executable, "-c", code],
                                               stdin=subprocess.DEVNULL,
                                               stdout=subprocess.DEVNULL,
                                               stderr=subprocess.DEVNULL))
        return self

    @property
    def running(self) -> int:
        return sum(1 for p in self.procs if p.poll() is None)

    def stop(self) -> None:
        """Kill every burner still running (idempotent)."""
        for p in self.procs:
            if p.poll() is None:
                p.kill()
        for p in self.procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:  # pragma: no cover -- SIGKILL ignored?
                pass
        self.procs = []

    def __enter__(self) -> Burners:
        return self.start()

    def __exit__(self, *exc: Optional[object]) -> None:
        self.stop()
