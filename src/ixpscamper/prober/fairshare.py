"""Fair sharing of one resource (transmit slots, task starts) between groups.

A :class:`FairShare` holds one FIFO queue per *group* (for the VP: one
attached source, i.e. a remote channel or a control connection) and
decides which group's head item goes next.  Within a group items keep
their order; between groups the policy is weighted fair queueing with
start tags (Goyal, Vin and Cheng's start-time fair queueing, SFQ, for
unit-sized items):

* every backlogged group has a tag, the virtual time at which its head
  item "starts"; the next item comes from the group with the smallest tag
  (ties: the group that got its tag first);
* serving a group advances its tag by ``1 / weight``, so over any stretch
  in which groups ``i`` and ``j`` stay backlogged their normalised service
  differs by at most one item each: ``|n_i/w_i - n_j/w_j| <= 1/w_i + 1/w_j``;
* the virtual time is the tag of the item served last.  A group that
  becomes backlogged again gets ``max(virtual time, its own finish tag)``:
  it cannot get ahead of the others by having been idle (no credit is
  saved up), nor shed the debt of what it was just given by emptying its
  queue for a moment (a trace that asks for its next probe after each
  reply would otherwise take every slot);
* a group seen for the first time starts at the virtual time, so it is
  served after at most one item of each other group already waiting
  there: well within one round (a round being the sum of the backlogged
  groups' weights).

Weights are scamper's source priorities (``attach priority N``, 1 by
default): a group of weight 3 gets three items for every one of a group of
weight 1, interleaved rather than in bursts.

The class is sans-IO and knows nothing about time or tasks: ``push`` an
item when it becomes ready, ``pop`` when there is a slot, ``remove`` an
item that is no longer wanted.  All three are O(log groups) but for
``remove``, which is O(items of that group).
"""

from __future__ import annotations

import collections
import heapq
import itertools
from fractions import Fraction
from typing import Generic, Hashable, Iterator, Optional, TypeVar

import attrs

__all__ = ["FairShare"]

T = TypeVar("T")

_ZERO = Fraction(0)


@attrs.define(eq=False)
class _Group(Generic[T]):
    key: Hashable
    weight: int
    tag: Fraction
    seq: int  # order of the current tag; ties go to the older one
    items: collections.deque = attrs.field(factory=collections.deque)


class FairShare(Generic[T]):
    """Weighted fair queueing of items between groups; see the module docstring."""

    def __init__(self) -> None:
        self._groups: dict[Hashable, _Group[T]] = {}
        # (tag, seq, group); seq is unique, so tuples never compare groups.
        # An entry is stale once its group's seq moved on (lazy deletion).
        self._heap: list[tuple[Fraction, int, _Group[T]]] = []
        self._seq = itertools.count()
        self._vtime = _ZERO
        # finish tags of idle groups that are still ahead of the virtual time
        self._finish: dict[Hashable, Fraction] = {}
        self._len = 0

    # -- queries -------------------------------------------------------------

    def __len__(self) -> int:
        return self._len

    def __bool__(self) -> bool:
        return self._len > 0

    def __iter__(self) -> Iterator[T]:
        """Every queued item (groups in no particular order)."""
        for g in list(self._groups.values()):
            yield from list(g.items)

    def groups(self) -> list[Hashable]:
        """The groups that have items queued."""
        return list(self._groups)

    def queued(self, group: Hashable) -> int:
        """How many items ``group`` has queued."""
        g = self._groups.get(group)
        return len(g.items) if g is not None else 0

    @property
    def virtual_time(self) -> Fraction:
        """The tag of the item served last (for tests and diagnostics)."""
        return self._vtime

    # -- changes ---------------------------------------------------------------

    def push(self, group: Hashable, item: T, weight: int = 1) -> None:
        """Queue ``item`` at the end of ``group``'s queue.

        ``weight`` (>= 1) is the group's share; the latest one given counts
        from the group's next item on.
        """
        if weight < 1:
            raise ValueError("weight must be at least 1")
        g = self._groups.get(group)
        if g is None:
            start = max(self._vtime, self._finish.pop(group, _ZERO))
            g = _Group(group, weight, start, next(self._seq))
            self._groups[group] = g
            heapq.heappush(self._heap, (g.tag, g.seq, g))
        g.weight = weight
        g.items.append(item)
        self._len += 1

    def pop(self) -> Optional[T]:
        """The next item by the policy, or None when nothing is queued."""
        while self._heap:
            tag, seq, g = heapq.heappop(self._heap)
            if g.seq != seq or self._groups.get(g.key) is not g:
                continue  # stale
            item = g.items.popleft()
            self._len -= 1
            self._vtime = tag
            g.tag = tag + Fraction(1, g.weight)
            if g.items:
                g.seq = next(self._seq)
                heapq.heappush(self._heap, (g.tag, g.seq, g))
            else:
                self._retire(g)
            return item
        return None

    def remove(self, group: Hashable, item: T) -> bool:
        """Take ``item`` out of ``group``'s queue; False if it was not there."""
        g = self._groups.get(group)
        if g is None:
            return False
        try:
            g.items.remove(item)
        except ValueError:
            return False
        self._len -= 1
        if not g.items:
            self._retire(g)
        return True

    def clear(self) -> None:
        """Forget every item and group."""
        self.__init__()

    # -- internals -------------------------------------------------------------

    def _retire(self, g: _Group[T]) -> None:
        """``g`` has no more items: drop it, keeping its finish tag while it matters."""
        del self._groups[g.key]
        g.seq = -1  # its heap entry, if any, is now stale
        if g.tag > self._vtime:
            self._finish[g.key] = g.tag
        if len(self._heap) > 2 * len(self._groups) + 16:
            # items removed from outside leave stale entries behind
            self._heap = [e for e in self._heap if e[2].seq == e[1]]
            heapq.heapify(self._heap)
        if len(self._finish) > 2 * len(self._groups) + 16:
            # a finish tag at or behind the virtual time changes nothing
            v = self._vtime
            self._finish = {k: t for k, t in self._finish.items() if t > v}
