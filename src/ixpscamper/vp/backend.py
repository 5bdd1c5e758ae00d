"""The VP's measurement backend: scamper's command language on the prober."""

from __future__ import annotations

from typing import Any

from ixpscamper.vp.source import CommandRejected, RunningTask

__all__ = ["ProberBackend"]


class ProberBackend:
    """Parses commands with :func:`ixpscamper.commands.parse_command` and
    runs them on one shared :class:`ixpscamper.prober.Prober`."""

    def __init__(self, reactor, pps: int = 20, window: int = 0) -> None:
        from ixpscamper.prober import Prober
        self.prober = Prober(reactor, pps=pps, window=window)
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
        from ixpscamper.prober import ProberError
        try:
            return self.prober.submit(options)
        except (ProberError, OSError, ValueError) as e:
            raise CommandRejected(str(e)) from None

    def close(self) -> None:
        close = getattr(self.prober, "close", None)
        if close is not None:
            close()
