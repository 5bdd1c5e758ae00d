"""ixpscamper.ops.logs: text/JSON lines, a live level, program namespaces, no Twisted noise."""

from __future__ import annotations

import io
import json

import pytest
from twisted.application import service
from twisted.logger import ILogObserver, LogLevel, Logger, LogPublisher
from twisted.python.failure import Failure

from ixpscamper.ops import logs


def setup(fmt="text", level="info"):
    out = io.StringIO()
    s = logs.LogSetup("ixp-vp", fmt=fmt, level=level, stream=out)
    pub = LogPublisher(s.observer)
    return s, out, pub


def test_json_one_object_per_line_with_program_namespace():
    s, out, pub = setup("json")
    Logger(namespace="ixpscamper.vp.source", observer=pub).info("channel {ch} opened\nnext", ch=3)
    Logger(namespace="ixp-vp.remote", observer=pub).warn("the controller {what}", what="left")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    a, b = (json.loads(x) for x in lines)
    assert a["logger"] == "ixp-vp.source" and a["level"] == "info"
    assert a["message"] == "channel 3 opened\nnext" and a["fields"] == {"ch": 3}
    assert b["logger"] == "ixp-vp.remote" and b["level"] == "warn" and b["time"].endswith("Z")


def test_text_line_and_traceback_stay_together():
    s, out, pub = setup("text")
    try:
        1 / 0
    except ZeroDivisionError:
        Logger(namespace="ixpscamper.remoted.service", observer=pub).failure("oops", Failure())
    text = out.getvalue()
    first, *rest = text.splitlines()
    assert "[ixp-remoted.service#critical] oops" in first
    assert rest and all(line.startswith("\t") for line in rest) and "ZeroDivisionError" in text


def test_failure_in_json_is_one_line():
    s, out, pub = setup("json")
    try:
        raise KeyError("k")
    except KeyError:
        Logger(namespace="ixp-vp", observer=pub).failure("bad", Failure())
    (line,) = out.getvalue().splitlines()
    assert "KeyError" in json.loads(line)["traceback"]


def test_level_filters_and_changes_live():
    s, out, pub = setup("text", "warn")
    log = Logger(namespace="ixp-vp.x", observer=pub)
    log.info("hidden")
    log.warn("shown")
    assert s.set_level("debug") == "log level warn -> debug"
    assert s.set_level("debug") is None
    log.debug("now shown")
    assert [ln.split("] ", 1)[1] for ln in out.getvalue().splitlines()] == ["shown", "now shown"]
    with pytest.raises(ValueError, match="not a log level"):
        s.set_level("loud")


def test_twisted_noise_only_at_debug():
    s, out, pub = setup("text", "info")
    Logger(namespace="twisted.internet.protocol.Factory", observer=pub).info(
        "Starting factory {f!r}", f="<F>")
    Logger(namespace="log_legacy", observer=pub).info("{log_text}", log_text="Site starting on 9477")
    Logger(namespace="log_legacy", observer=pub).info("{log_text}",
                                                      log_text="(TCP Port 9477 Closed)")
    Logger(namespace="twisted.internet.base", observer=pub).info("Received SIGTERM, shutting down.")
    Logger(namespace="twisted.internet.tcp", observer=pub).warn("a real problem")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert "[twistd#info] Received SIGTERM" in lines[0] and "a real problem" in lines[1]
    s.set_level("debug")
    Logger(namespace="twisted.internet.protocol.Factory", observer=pub).info("Starting factory x")
    assert "Starting factory x" in out.getvalue()


def test_offered_to_the_application_unless_it_has_one():
    s, _out, _pub = setup()
    app = service.Application("ixp-vp")
    assert logs.offer_observer(app, s.observer)
    assert app.getComponent(ILogObserver) is s.observer
    assert not logs.offer_observer(app, object())
    assert not logs.offer_observer(service.MultiService(), s.observer)


class _Parent(dict):
    pass


def test_for_twistd_follows_twistds_own_choices(tmp_path):
    class O(dict):
        pass
    o = O({"log-format": "json", "log-level": "warn"})
    o.parent = _Parent(logfile=str(tmp_path / "vp.log"), nodaemon=True)
    s = logs.LogSetup.for_twistd("ixp-vp", o)
    assert s.fmt == "json" and s.level is LogLevel.warn
    Logger(namespace="ixp-vp", observer=LogPublisher(s.observer)).error("to the file")
    s.stream.flush()
    assert json.loads((tmp_path / "vp.log").read_text())["message"] == "to the file"
    o.parent = _Parent(syslog=True)
    assert logs.LogSetup.for_twistd("ixp-vp", o) is None


def test_display_namespaces():
    d = logs.display_namespace
    assert d("ixpscamper.vp.remote", "ixp-vp") == "ixp-vp.remote"
    assert d("ixpscamper.prober.scheduler", "ixp-vp") == "ixp-vp.prober.scheduler"
    assert d("ixpscamper.remoted.service", "ixp-remoted") == "ixp-remoted.service"
    assert d("ixpscamper.mux.hub", "ixp-remoted") == "ixp-remoted.mux.hub"
    assert d("ixp-remoted", "ixp-remoted") == "ixp-remoted"
    assert d("twisted.scripts._twistd_unix.UnixAppLogger", "ixp-vp") == "twistd"


def test_fast_message_formatting_equals_formatevent():
    """Our own events are rendered with str.format_map; it must say exactly
    what Twisted's formatEvent says."""
    from twisted.logger import formatEvent

    from ixpscamper.ops.logs import _message

    class Obj:
        attr = "x"

        def __repr__(self):
            return "<obj>"
    for fmt, fields in [
        ("VP {label} registered (socket {path})", {"label": "a-1.2.3.4:5", "path": "/run/x"}),
        ("{n} bytes, {f:g} s, {o!r}, {o.attr}", {"n": 3, "f": 1.5, "o": Obj()}),
        ("braces {{literal}} and {x}", {"x": 1}),
    ]:
        ev = dict(fields, log_format=fmt, log_namespace="ixp-remoted.vp")
        assert _message(ev) == formatEvent(ev)
    # what str.format cannot do falls back to formatEvent
    ev = {"log_format": "{missing}", "log_namespace": "ixp-vp"}
    assert _message(ev) == formatEvent(ev)
