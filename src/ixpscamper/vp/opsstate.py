"""What the VP knows about itself for ``--status`` and ``--metrics`` (sans-IO).

- :class:`LinkStats`: the controller link -- state (connecting,
  handshaking, established, backoff, stopped) and since when, connections,
  sessions, resumes and their latency, failures by reason, bytes.
- :class:`CountingBackend`: wraps a measurement backend and counts tasks
  by type (queued / running now, started, done, failed) and the replies
  in their results, without changing what the backend does.
- :class:`PpsMeter`: the achieved probe rate over the last seconds.

Time comes from an injected ``IReactorTime``.
"""

from __future__ import annotations

import collections
from typing import Any, Hashable

__all__ = ["LinkStats", "CountingBackend", "PpsMeter", "RESUME_BUCKETS"]

#: upper bounds (seconds) of the resume-latency histogram
RESUME_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, float("inf"))


class LinkStats:
    """The controller link as seen by the VP."""

    def __init__(self, clock) -> None:
        self.clock = clock
        self.started_at = clock.seconds()
        self.connects = 0
        self.sessions = 0           # new sessions (MASTER_ID)
        self.resumes = 0            # resumed sessions (MASTER_OK)
        self.rejected = 0           # MASTER_REJ
        self.failures: dict[str, int] = collections.Counter()
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.bytes_in = 0
        self.bytes_out = 0
        self.transport_up = False
        self.established = False
        self.connected_at: float | None = None
        self.established_at: float | None = None
        self.lost_at: float | None = None          # the established link went away
        self.backoff_since: float | None = None
        self.backoff_until: float | None = None
        self.stopped = False
        self.failure_streak = 0
        self._hist = [0] * len(RESUME_BUCKETS)
        self._hist_sum = 0.0
        self.last_resume_seconds: float | None = None

    # -- events ----------------------------------------------------------------

    def transport_made(self) -> None:
        self.connects += 1
        self.transport_up = True
        self.established = False
        self.connected_at = self.clock.seconds()
        self.backoff_until = None

    def session_up(self, resumed: bool) -> None:
        now = self.clock.seconds()
        self.established = True
        self.established_at = now
        self.failure_streak = 0
        if resumed:
            self.resumes += 1
            if self.lost_at is not None:
                took = max(0.0, now - self.lost_at)
                self.last_resume_seconds = took
                self._hist_sum += took
                for i, bound in enumerate(RESUME_BUCKETS):
                    if took <= bound:
                        self._hist[i] += 1
                        break
        else:
            self.sessions += 1
        self.lost_at = None

    def session_rejected(self) -> None:
        self.rejected += 1

    def transport_lost(self) -> None:
        if self.established:
            self.lost_at = self.clock.seconds()
        self.transport_up = False
        self.established = False

    def failure(self, kind: str, message: str) -> None:
        """A connection attempt or connection that ended before a session."""
        self.failures[kind] += 1
        self.failure_streak += 1
        self.last_error = message
        self.last_error_at = self.clock.seconds()

    def backoff(self, delay: float) -> None:
        now = self.clock.seconds()
        self.backoff_since = now
        self.backoff_until = now + delay

    def stop(self) -> None:
        self.stopped = True

    # -- reading ---------------------------------------------------------------

    def state(self) -> tuple[str, float]:
        """(state, since) now."""
        now = self.clock.seconds()
        if self.stopped:
            return "stopped", now
        def given(t: float | None) -> float:
            return now if t is None else t  # 0.0 is a time (task.Clock starts there)
        if self.transport_up:
            if self.established:
                return "established", given(self.established_at)
            return "handshaking", given(self.connected_at)
        if self.backoff_until is not None and self.backoff_until > now:
            return "backoff", given(self.backoff_since)
        return "connecting", self.backoff_until if self.backoff_until is not None else self.started_at

    def histogram(self) -> dict:
        """Cumulative buckets ``[(le, count)]`` and the sum, as Prometheus wants them."""
        acc, out = 0, []
        for bound, n in zip(RESUME_BUCKETS, self._hist):
            acc += n
            out.append((bound, acc))
        return {"buckets": out, "sum": self._hist_sum, "count": acc}


def _task_type(options: Any) -> str:
    kind = getattr(options, "kind", None)
    return kind if isinstance(kind, str) and kind else "other"


def _replies(record: Any) -> int:
    hops = getattr(record, "hops", None)
    if isinstance(hops, list):
        return len(hops)
    replies = getattr(record, "replies", None)
    if isinstance(replies, list):
        return len(replies)
    n = getattr(record, "reply_count", 0)
    return n if isinstance(n, int) else 0


class CountingBackend:
    """A measurement backend that counts what goes through ``inner``.

    ``parse`` / ``start`` / ``start_for`` / ``source_ready`` / ``close`` behave as the inner
    backend's (``start_for`` falls back to ``start`` when the inner one
    has none, which is what :class:`~ixpscamper.vp.source.AttachedSource`
    would do itself); tasks are the inner backend's own objects.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.live: dict[int, tuple[str, Any]] = {}
        self.counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)

    @property
    def prober(self):
        return getattr(self.inner, "prober", None)

    def parse(self, command: str) -> Any:
        return self.inner.parse(command)

    def start(self, options: Any):
        return self._track(options, self.inner.start(options))

    def start_for(self, options: Any, group: Hashable, weight: int = 1):
        start_for = getattr(self.inner, "start_for", None)
        if start_for is None:
            return self.start(options)
        return self._track(options, start_for(options, group, weight))

    def source_ready(self) -> None:
        ready = getattr(self.inner, "source_ready", None)
        if ready is not None:
            ready()

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()

    def _track(self, options: Any, task: Any):
        kind = _task_type(options)
        key = id(task)
        self.live[key] = (kind, task)
        self.counts[kind]["started"] += 1

        def ok(record):
            self.live.pop(key, None)
            c = self.counts[kind]
            c["done"] += 1
            c["replies"] += _replies(record)
            return record

        def failed(f):
            self.live.pop(key, None)
            c = self.counts[kind]
            c["done"] += 1
            c["failed"] += 1
            return f

        task.deferred.addCallbacks(ok, failed)
        return task

    def summary(self) -> dict:
        """``{"queued", "running", "done", "by_type": {type: {...}}}`` now."""
        by: dict[str, dict] = {}
        for kind, c in self.counts.items():
            by[kind] = {"queued": 0, "running": 0, "started": c["started"], "done": c["done"],
                        "failed": c["failed"], "replies": c["replies"]}
        for kind, task in self.live.values():
            st = getattr(task, "state", "running")
            by[kind]["queued" if st in ("waiting", "resolving") else "running"] += 1
        return {"queued": sum(v["queued"] for v in by.values()),
                "running": sum(v["running"] for v in by.values()),
                "done": sum(v["done"] for v in by.values()),
                "by_type": by}


class PpsMeter:
    """Probes per second over the last ``span`` seconds, from ``sample(sent)`` calls."""

    def __init__(self, clock, span: float = 10.0) -> None:
        self.clock = clock
        self.span = span
        self.samples: collections.deque[tuple[float, int]] = collections.deque()

    def sample(self, sent: int) -> None:
        now = self.clock.seconds()
        self.samples.append((now, sent))
        while len(self.samples) > 2 and now - self.samples[1][0] >= self.span:
            self.samples.popleft()

    def rate(self, sent: int | None = None) -> float:
        if sent is not None:
            self.sample(sent)
        if len(self.samples) < 2:
            return 0.0
        (t0, s0), (t1, s1) = self.samples[0], self.samples[-1]
        return (s1 - s0) / (t1 - t0) if t1 > t0 else 0.0
