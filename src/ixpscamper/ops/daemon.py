"""The ops options and services of a daemon in one place, for a tap.py to wire in.

``OPT_PARAMETERS`` (``--status``, ``--metrics``, ``--log-format``,
``--log-level``) go into the Options class next to
:class:`~ixpscamper.ops.config.ConfigFileMixin` (``--config``);
:class:`DaemonRoot` is the top service ``makeService`` returns: the
daemon's own service under it, plus the status socket and the metrics
endpoint, the log observer offered to twistd, SIGHUP, and one line (no
traceback) for a listener that cannot be opened.  ``ixp-vp`` does the same
inside its ``VPService``; ``ixp-remoted`` can use this as it is::

    class Options(ConfigFileMixin, usage.Options):
        optParameters = [...] + ops.daemon.OPT_PARAMETERS

    def makeService(options):
        svc = RemotedService(...)
        root = DaemonRoot(reactor, "ixp-remoted", options)
        svc.setServiceParent(root)
        root.add_status(controller_document(svc.status_vps))
        root.add_metrics(lambda registry: RemotedMetrics(registry, gauges=svc.gauges))
        root.on_reload(svc.reload_live)   # returns "what it reloaded" or None
        return root
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.application import service
from twisted.internet import error

from ixpscamper.ops import logs as _logs
from ixpscamper.ops import metrics as _metrics
from ixpscamper.ops.config import HupReloader

__all__ = ["OPT_PARAMETERS", "STATUS_PARAMETER", "DaemonRoot"]

STATUS_PARAMETER = ["status", None, None, "serve a JSON status document on this unix socket "
                                          "(mode 0700); read it with ixp-status PATH"]

#: optParameters rows of the ops options (``--config`` comes from ConfigFileMixin)
OPT_PARAMETERS = [STATUS_PARAMETER, _metrics.OPT_PARAMETER] + _logs.OPT_PARAMETERS


class DaemonRoot(service.MultiService):
    """Top service of a daemon: its own service(s) plus status, metrics, logs, SIGHUP.

    ``options`` is the parsed Options (with the rows of :data:`OPT_PARAMETERS`;
    and ``reparse`` / ``--config`` if SIGHUP should re-read the log level).
    """

    def __init__(self, reactor, daemon: str, options: Any,
                 reparse: Callable[[], Any] | None = None) -> None:
        super().__init__()
        self.reactor = reactor
        self.daemon = daemon
        self.options = options
        self.reparse = reparse
        self.log_setup = _logs.LogSetup.for_twistd(daemon, options)
        self.registry = None
        self._reloaders: list[Callable[[Any], str | None]] = []
        self.hup = HupReloader(reactor, self.reload, daemon)

    def add_status(self, document: Callable[[], Any], mode: int = 0o700) -> None:
        """Serve ``document()`` on ``--status`` (nothing without the option)."""
        path = self.options.get("status")
        if not path:
            return
        from ixpscamper.ops.status import StatusSocketError, status_service
        try:
            status_service(self.reactor, path, document, daemon=self.daemon,
                           mode=mode).setServiceParent(self)
        except StatusSocketError as e:
            raise SystemExit(f"{self.daemon}: --status {e}") from None

    def add_metrics(self, register: Callable[[Any], Any]) -> None:
        """``register(registry)`` puts the daemon's metrics in a fresh registry served on ``--metrics``."""
        spec = self.options.get("metrics")
        if not spec:
            return
        try:
            self.registry = _metrics.new_registry()
        except _metrics.MetricsUnavailable as e:
            raise SystemExit(f"{self.daemon}: {e}") from None
        register(self.registry)
        _metrics.metrics_service(self.reactor, spec, self.registry).setServiceParent(self)

    def on_reload(self, fn: Callable[[Any], str | None]) -> None:
        """``fn(new_options_or_None)`` applies what it can live and says what (None: nothing)."""
        self._reloaders.append(fn)

    def reload(self) -> str:
        new = self.reparse() if self.reparse is not None else None
        done: list[str] = []
        if new is not None and self.log_setup is not None:
            change = self.log_setup.set_level(new.get("log-level") or "info")
            if change:
                done.append(change)
        for fn in self._reloaders:
            what = fn(new)
            if what:
                done.append(what)
        return "SIGHUP: reloaded " + (", ".join(done) if done else "nothing changed")

    # -- twistd ------------------------------------------------------------------

    def setServiceParent(self, parent) -> None:  # noqa: N802
        if self.log_setup is not None:
            _logs.offer_observer(parent, self.log_setup.observer)
        super().setServiceParent(parent)

    def privilegedStartService(self) -> None:  # noqa: N802
        try:
            super().privilegedStartService()
        except error.CannotListenError as e:
            where = e.port if not e.interface else f"{e.interface}:{e.port}"
            if isinstance(where, bytes):
                where = where.decode("utf-8", "replace")
            why = getattr(e.socketError, "strerror", None) or e.socketError
            raise SystemExit(f"{self.daemon}: cannot listen on {where}: {why}") from None

    def startService(self) -> None:  # noqa: N802
        self.hup.install()
        super().startService()

    def stopService(self):  # noqa: N802
        self.hup.uninstall()
        return super().stopService()
