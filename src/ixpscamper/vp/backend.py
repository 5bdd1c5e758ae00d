"""The VP's measurement backend: scamper's command language on the prober.

Every attached source's tasks run on one shared prober; the source is the
prober's *group*, so transmit slots (and, with a window, task starts) are
shared fairly between users, weighted by their ``attach priority``.
"""

from __future__ import annotations

from typing import Any, Hashable

from ixpscamper.vp.source import CommandRejected, RunningTask

__all__ = ["ProberBackend"]


class ProberBackend:
    """Parses commands with :func:`ixpscamper.commands.parse_command` and
    runs them on one shared :class:`ixpscamper.prober.Prober`."""

    def __init__(self, reactor, pps: int = 20, window: int = 0, prober: Any = None) -> None:
        from ixpscamper.prober import Prober
        # ``prober``: an existing one (tests hand in a simulated network's)
        self.prober = prober if prober is not None else Prober(reactor, pps=pps, window=window)
        # fail at start, in one line naming CAP_NET_RAW, not at the first command
        check = getattr(self.prober.network, "check_privileges", None)
        if check is not None:
            check()

    def parse(self, command: str) -> Any:
        from ixpscamper.commands import CommandError, parse_command
        try:
            return parse_command(command)
        except CommandError as e:
            raise CommandRejected(str(e)) from None

    def start(self, options: Any) -> RunningTask:
        """Start a measurement for nobody in particular (the common group)."""
        return self.start_for(options, None, 1)

    def start_for(self, options: Any, group: Hashable, weight: int = 1) -> RunningTask:
        """Start a measurement for ``group`` (an attached source) of ``weight``."""
        from ixpscamper.prober import ProberError
        try:
            return self.prober.submit(options, group=group, weight=weight)
        except (ProberError, OSError, ValueError) as e:
            raise CommandRejected(str(e)) from None

    def close(self) -> None:
        close = getattr(self.prober, "close", None)
        if close is not None:
            close()
