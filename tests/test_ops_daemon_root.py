"""ixpscamper.ops.daemon.DaemonRoot: what ixp-remoted's tap wires in (status, metrics, logs, SIGHUP)."""

from __future__ import annotations

import io

import pytest
from twisted.application import service
from twisted.internet import error
from twisted.internet.testing import MemoryReactor
from twisted.logger import ILogObserver

from ixpscamper.ops import daemon, metrics, status


class Opts(dict):
    parent = None


def root_for(reactor, tmp_path, **extra):
    o = Opts({"status": str(tmp_path / "st.sock"), "metrics": "127.0.0.1:9478",
              "log-format": "json", "log-level": "info", **extra})
    r = daemon.DaemonRoot(reactor, "ixp-remoted", o, reparse=lambda: {"log-level": "debug"})
    r.log_setup.stream = r.log_setup.writer.stream = io.StringIO()
    return r


def test_status_metrics_logs_and_reload(tmp_path):
    pytest.importorskip("prometheus_client")
    mr = MemoryReactor()
    r = root_for(mr, tmp_path)
    service.Service().setServiceParent(r)  # the daemon's own service
    r.add_status(status.controller_document(lambda: [{"monitor": "a", "state": "up"}]))
    r.add_metrics(lambda reg: metrics.RemotedMetrics(reg, gauges=lambda: {"connected": 1}))
    app = service.Application("ixp-remoted")
    r.setServiceParent(app)
    assert app.getComponent(ILogObserver) is r.log_setup.observer
    r.privilegedStartService()
    r.startService()
    try:
        assert [u[0] for u in mr.unixServers] == [str(tmp_path / "st.sock")]
        assert mr.unixServers[0][3] == 0o700
        assert [(t[0], t[3]) for t in mr.tcpServers] == [(9478, "127.0.0.1")]
        r.on_reload(lambda new: "metadata for 3 monitors")
        r.on_reload(lambda new: None)
        assert r.reload() == "SIGHUP: reloaded log level info -> debug, metadata for 3 monitors"
    finally:
        r.stopService()


def test_without_the_options_nothing_is_added(tmp_path):
    r = daemon.DaemonRoot(MemoryReactor(), "ixp-remoted", Opts({}))
    r.add_status(dict)
    r.add_metrics(lambda reg: None)
    assert list(r) == [] and r.registry is None


def test_a_port_in_use_is_one_line(tmp_path):
    pytest.importorskip("prometheus_client")
    class Busy(MemoryReactor):
        def listenTCP(self, port, factory, backlog=50, interface=""):
            raise error.CannotListenError(interface, port, OSError(98, "Address already in use"))
    r = root_for(Busy(), tmp_path, status=None)
    r.add_metrics(lambda reg: None)
    with pytest.raises(SystemExit, match="^ixp-remoted: cannot listen on 127.0.0.1:9478: "
                                         "Address already in use$"):
        r.privilegedStartService()


def test_options_rows_parse():
    from twisted.python import usage
    from ixpscamper.ops.config import ConfigFileMixin

    class O(ConfigFileMixin, usage.Options):
        optParameters = daemon.OPT_PARAMETERS
    o = O()
    o.parseOptions(["--status", "/run/x.sock", "--metrics", "9478", "--log-level", "warning"])
    assert o["status"] == "/run/x.sock" and o["metrics"] == "9478" and o["log-level"] == "warn"
    with pytest.raises(usage.UsageError):
        O().parseOptions(["--metrics", "nowhere:1"])
