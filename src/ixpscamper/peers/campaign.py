"""Running the plan through a VP: journal (resume), rate, per-peer cap.

:class:`Journal` is the state file: one JSON line per finished pair,
flushed and fsynced as each trace arrives, read back on the next run so
the same command continues where the last one stopped and no pair is traced
twice.  A line cut by a crash is dropped (one warning) and the file
truncated to the last whole line.

:class:`Campaign` is the scheduler: a plain class driven by the reactor's
time (``callLater``), sending ``trace OPTS -r NEXT_HOP DST`` through a
:class:`ixpscamper.client.api.Client`.  It keeps at most ``concurrency``
traces in flight, at most ``per_peer`` per peer, and a probe budget of
``pps``: a trace may start while the budget is not overdrawn, and is charged
the probes it sent (``probec``) when it ends, the budget refilling at
``pps`` per second -- so over the run the VP is asked for about ``pps``
probes a second by this campaign, whatever the trace lengths.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Iterable, Optional

from twisted.internet import defer

from ixpscamper.client.channel import ChannelGone, CommandRefused, TaskHalted
from ixpscamper.commands import CommandError, parse_command
from ixpscamper.peers.compare import Mapper, compare
from ixpscamper.peers.output import error_row, make_row
from ixpscamper.peers.plan import Target

__all__ = ["Journal", "Campaign", "build_trace_command", "CampaignStopped"]


class CampaignStopped(Exception):
    """The campaign could not go on (the VP went away); the message says why."""


def build_trace_command(opts: str, next_hop, dst) -> str:
    """``trace OPTS -r NEXT_HOP DST``, checked by the VP's own parser
    (CommandError before anything is sent)."""
    words = opts.split()
    if "-r" in words:
        raise CommandError("--trace-opts must not set -r (the next hop comes from BGP)")
    text = " ".join(["trace", *words, "-r", str(next_hop), str(dst)])
    parse_command(text)
    return text


def _key(row: dict) -> tuple[str, int, str]:
    return (str(row["peer_ip"]), int(row["peer_asn"]), str(row["dst"]))


class Journal:
    """Finished pairs, one JSON line each (see the module docstring)."""

    def __init__(self, path: Optional[str], warn: Callable[[str], None] = lambda m: None) -> None:
        self.path = path
        self.rows: dict[tuple[str, int, str], dict] = {}
        self._f = None
        if path is None:
            return
        good = 0
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            data = b""
        pos = 0
        while pos < len(data):
            nl = data.find(b"\n", pos)
            if nl < 0:
                warn(f"{path}: last line cut short (an interrupted write); dropped, that pair is traced again")
                break
            line = data[pos:nl]
            try:
                row = json.loads(line)
                self.rows[_key(row)] = row
            except (ValueError, KeyError, TypeError):
                warn(f"{path}: byte {pos}: not a journal line; ignored")
            pos = nl + 1
            good = pos
        if good != len(data):
            with open(path, "r+b") as f:
                f.truncate(good)
        self._f = open(path, "ab")

    def __contains__(self, key: tuple[str, int, str]) -> bool:
        return key in self.rows

    def add(self, row: dict) -> None:
        """Record a finished pair durably before it counts as done."""
        self.rows[_key(row)] = row
        if self._f is not None:
            self._f.write(json.dumps(row).encode() + b"\n")
            self._f.flush()
            os.fsync(self._f.fileno())

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


class Campaign:
    """Trace every target not yet in the journal (see the module docstring).

    ``run()`` returns a Deferred that fires with None when every target is
    done, or fails with :class:`CampaignStopped`.  ``stop()`` halts the
    traces in flight (they are not recorded: the next run traces them) and
    fires the Deferred."""

    def __init__(self, reactor, client, vp, targets: Iterable[Target], journal: Journal, mapper: Mapper,
                 trace_opts: str = "", pps: float = 0, concurrency: int = 8, per_peer: int = 2,
                 on_row: Callable[[dict], None] = lambda r: None,
                 warn: Callable[[str], None] = lambda m: None,
                 warts_of: Callable[[Any], bytes] = lambda t: b"") -> None:
        self.reactor = reactor
        self.client = client
        self.vp = vp
        self.journal = journal
        self.mapper = mapper
        self.trace_opts = trace_opts
        self.pps = float(pps)
        self.concurrency = max(1, int(concurrency))
        self.per_peer = max(1, int(per_peer))
        self.on_row = on_row
        self.warn = warn
        self.warts_of = warts_of
        all_targets = [t for t in targets if t.probe]
        self.total = len(all_targets)
        self.pending: list[Target] = [t for t in all_targets if t.key not in journal]
        self.skipped = self.total - len(self.pending)
        # Every command is built (and checked) before the first is sent.
        self.commands = {t.key: build_trace_command(trace_opts, t.next_hop, t.dst) for t in self.pending}
        self.in_flight: dict[tuple, Any] = {}
        self.per_peer_now: dict[tuple, int] = {}
        self.done = 0
        self.budget = self.pps  # probes we may still spend now (may go negative)
        self._last_refill = reactor.seconds()
        self._timer = None
        self._stopping: Optional[BaseException] = None
        self._silent_next_hops: set[str] = set()
        self.finished: defer.Deferred = defer.Deferred()

    @property
    def vp_name(self) -> Optional[str]:
        return getattr(self.vp, "name", None) or getattr(self.vp, "socket", None)

    def run(self) -> defer.Deferred:
        self._pump()
        return self.finished

    def stop(self, reason: Optional[BaseException] = None) -> None:
        """Halt what is in flight; the run ends (with ``reason`` as its failure)."""
        if self._stopping is not None or self.finished.called:
            return
        self._stopping = reason or TaskHalted("stopped")
        self.pending = []
        for d in list(self.in_flight.values()):
            d.cancel()
        self._maybe_finish()

    # -- scheduling -----------------------------------------------------

    def _refill(self) -> None:
        if self.pps <= 0:
            return
        now = self.reactor.seconds()
        self.budget = min(self.pps, self.budget + (now - self._last_refill) * self.pps)
        self._last_refill = now

    def _peer_key(self, t: Target) -> tuple:
        return (str(t.peer.ip), int(t.peer.asn))

    def _pump(self) -> None:
        self._timer = None
        if self._stopping is not None:
            return
        self._refill()
        i = 0
        while i < len(self.pending) and len(self.in_flight) < self.concurrency:
            if self.pps > 0 and self.budget < 0:
                break
            t = self.pending[i]
            pk = self._peer_key(t)
            if self.per_peer_now.get(pk, 0) >= self.per_peer:
                i += 1
                continue
            self.pending.pop(i)
            self._start(t)
        if self.pending and self._timer is None and self.pps > 0 and self.budget < 0 \
                and len(self.in_flight) < self.concurrency:
            self._timer = self.reactor.callLater(-self.budget / self.pps + 0.001, self._pump)
        self._maybe_finish()

    def _start(self, t: Target) -> None:
        pk = self._peer_key(t)
        self.per_peer_now[pk] = self.per_peer_now.get(pk, 0) + 1
        d = self.client.command(self.vp, self.commands[t.key])
        self.in_flight[t.key] = d
        d.addCallbacks(self._traced, self._failed, callbackArgs=(t,), errbackArgs=(t,))
        d.addBoth(self._after, t)

    def _traced(self, trace, t: Target) -> None:
        try:
            self._record(trace, t)
        except Exception as exc:  # a bug of ours: stop, keep what is recorded
            self.stop(CampaignStopped(f"internal error on the trace of {t.dst} via {t.next_hop}: {exc!r}"))

    def _record(self, trace, t: Target) -> None:
        cmp = compare(t.route, trace, self.mapper)
        row = make_row(t, trace, cmp, vp=self.vp_name, warts=self.warts_of(trace),
                       received=self.reactor.seconds())
        if not trace.hops and str(t.next_hop) not in self._silent_next_hops:
            self._silent_next_hops.add(str(t.next_hop))
            self.warn(f"next hop {t.next_hop} (peer {t.peer.ip} AS{t.peer.asn}) did not answer "
                      f"(no ARP/ND reply?): trace of {t.dst} has no hop")
        self.journal.add(row)
        self.done += 1
        if self.pps > 0:
            self.budget -= max(1, int(getattr(trace, "probec", 0) or len(trace.hops) or 1))
        self.on_row(row)

    def _failed(self, failure, t: Target) -> None:
        exc = failure.value
        if isinstance(exc, (defer.CancelledError, TaskHalted)) and self._stopping is not None:
            return None
        if isinstance(exc, CommandRefused):
            row = error_row(t, f"the VP refused the trace: {exc}", vp=self.vp_name)
            self.journal.add(row)
            self.done += 1
            self.warn(f"{t.dst} via {t.next_hop}: the VP refused the trace: {exc}")
            self.on_row(row)
            return None
        if isinstance(exc, ChannelGone):
            self.stop(CampaignStopped(f"the VP went away ({exc})"))
            return None
        self.stop(CampaignStopped(f"trace of {t.dst} via {t.next_hop} failed: {exc!r}"))
        return None

    def _after(self, _res, t: Target) -> None:
        self.in_flight.pop(t.key, None)
        pk = self._peer_key(t)
        self.per_peer_now[pk] -= 1
        if self._stopping is None:
            self.reactor.callLater(0, self._pump)
        else:
            self._maybe_finish()

    def _maybe_finish(self) -> None:
        if self.finished.called or self.in_flight:
            return
        if self._stopping is not None or not self.pending:
            if self._timer is not None and self._timer.active():
                self._timer.cancel()
            if isinstance(self._stopping, CampaignStopped):
                self.finished.errback(self._stopping)
            else:
                self.finished.callback(None)
