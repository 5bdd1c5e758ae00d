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
        """Options for ``command``; `CommandRejected` for anything the prober
        would not run, so that no command is accepted and then dropped."""
        from ixpscamper.commands import CommandError, parse_command
        from ixpscamper.prober.specs import unsupported
        try:
            options = parse_command(command)
        except CommandError as e:
            raise CommandRejected(str(e)) from None
        reason = unsupported(options)
        if reason:
            raise CommandRejected(reason)
        return options

    def error_record(self, options: Any, message: str):
        """The record of a task that failed before it could probe (no route,
        an unreachable -r router, ...): stop reason ERROR, as scamper's own
        records of failed tasks have, so an accepted command still gets a result."""
        import time

        from ixpscamper.warts.records import Ping, PingStop, Timeval, Trace, TraceStop
        now = time.time()
        start = Timeval(int(now), int((now % 1) * 1e6))
        o = options
        if o.kind == "trace":
            return Trace(dst=o.dst, src=o.src, rtr=o.rtr, start=start,
                         stop_reason=int(TraceStop.ERROR), method=o.type_code,
                         attempts=o.attempts, hoplimit=o.hoplimit, probe_size=o.probe_size,
                         firsthop=o.firsthop, tos=o.tos, wait=o.wait, loops=o.loops,
                         gaplimit=o.gaplimit, gapaction=o.gapaction, wait_probe=o.wait_probe,
                         userid=o.userid, squeries=o.squeries, flags=o.flags, errmsg=message)
        if o.kind == "tracelb":
            from ixpscamper.warts.records import Tracelb
            return Tracelb(dst=o.dst, rtr=o.rtr, start=start, type=o.type_code, userid=o.userid,
                           errmsg=message)
        if o.kind == "dealias":
            import ipaddress

            from ixpscamper.prober.dealias import DealiasRun
            from ixpscamper.warts.records import DealiasResult
            # the run builds the method's record (probedefs and all) from the options
            src = o.src or ipaddress.ip_address("0.0.0.0" if o.dst.version == 4 else "::")
            rec = DealiasRun(o, src, io=None).record
            rec.start, rec.result, rec.errmsg = start, int(DealiasResult.ERROR), message
            return rec
        return Ping(dst=o.dst, src=o.src, rtr=o.rtr, start=start, stop_reason=int(PingStop.ERROR),
                    probe_count=o.count, method=o.method_code, userid=o.userid, tos=o.tos)

    def source_ready(self) -> None:
        """A user attached: the prober's pacing schedule starts now if it was idle (as scamper's)."""
        ready = getattr(self.prober, "source_ready", None)
        if ready is not None:
            ready()

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
