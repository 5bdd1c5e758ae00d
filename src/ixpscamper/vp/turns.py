"""How much input the VP acts on per reactor turn, shared by all its sources.

An impatient user sends thousands of commands in one read.  Starting them
all before returning to the reactor holds back every write and every probe
of the process meanwhile, so a source acts on at most a batch of input
lines per reactor turn and leaves the rest for the next turn.

The batch is per *process* (per reactor), not per source: with a batch per
source, a hundred busy sources -- a hundred users on one VP, or a hundred
VPs in one process -- made one turn start 6,400 tasks, and no result left
the process for a quarter of a second.  A `TurnBudget` hands out the
turn's allowance: a source that receives input takes what is left of it;
once it is spent, sources queue and are resumed in order at the next turn,
each with an equal share, so no source waits more than a few turns however
many there are.
"""

from __future__ import annotations

import weakref
from collections import deque
from typing import Callable

__all__ = ["TurnBudget", "budget_for", "COMMANDS_PER_TURN"]

#: input lines acted on per reactor turn, across every source of a process
COMMANDS_PER_TURN = 64


class TurnBudget:
    """The allowance of one reactor turn; ``clock`` is an `IReactorTime`."""

    def __init__(self, clock, per_turn: int = COMMANDS_PER_TURN) -> None:
        if per_turn < 1:
            raise ValueError("per_turn must be at least 1")
        self.clock = clock
        self.per_turn = per_turn
        self.left = per_turn
        self._turn_call = None
        self._queue: deque[Callable[[int], None]] = deque()

    def take(self) -> int:
        """How many lines a source that has just received input may act on now.

        Zero while others are queued: they were first."""
        return 0 if self._queue else max(0, self.left)

    def spend(self, n: int) -> None:
        """``n`` lines of what `take` allowed were acted on."""
        if n:
            self.left -= n
            self._arm()

    def wait(self, resume: Callable[[int], None]) -> None:
        """Queue ``resume(allowance)`` for a following turn."""
        self._queue.append(resume)
        self._arm()

    def _arm(self) -> None:
        # the allowance is renewed at the start of the next turn (delayed
        # calls run before the reactor's I/O)
        if self._turn_call is None:
            self._turn_call = self.clock.callLater(0, self._next_turn)

    def _next_turn(self) -> None:
        self._turn_call = None
        self.left = self.per_turn
        queue, self._queue = self._queue, deque()
        n = len(queue)
        skipped = []
        for i, resume in enumerate(queue):
            if self.left <= 0:
                skipped.append(resume)
                continue
            # what is left, spread over those still to go (a source that
            # needs less leaves the rest to them)
            resume(-(-self.left // (n - i)))
        if skipped:
            # they go first next turn, ahead of those served now
            self._queue.extendleft(reversed(skipped))
            self._arm()


_budgets: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def budget_for(clock) -> TurnBudget:
    """The one `TurnBudget` of ``clock`` (a reactor or a ``task.Clock``)."""
    b = _budgets.get(clock)
    if b is None:
        b = _budgets[clock] = TurnBudget(clock)
    return b
