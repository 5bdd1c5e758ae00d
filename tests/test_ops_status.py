"""ixpscamper.ops.status (socket protocol, ixp-status) and ixpscamper.ops.metrics."""

from __future__ import annotations

import json
import os
import socket
import threading

import pytest
from twisted.internet import task
from twisted.internet.testing import StringTransport
from twisted.web.test.requesthelper import DummyRequest

from ixpscamper.ops import metrics, status


def test_status_protocol_answers_one_json_line_then_closes():
    f = status.StatusFactory(lambda: {"daemon": "ixp-vp", "state": "up"}, daemon="ixp-vp")
    p = f.buildProtocol(None)
    t = StringTransport()
    p.makeConnection(t)
    assert json.loads(t.value()) == {"daemon": "ixp-vp", "state": "up"}
    assert t.value().endswith(b"\n") and t.disconnecting


def test_status_protocol_survives_a_broken_provider():
    def boom():
        raise RuntimeError("bug")
    p = status.StatusFactory(boom).buildProtocol(None)
    t = StringTransport()
    p.makeConnection(t)
    assert json.loads(t.value()) == {"error": "status unavailable: RuntimeError"}


def test_controller_document_wraps_the_vp_list():
    clock = task.Clock()
    clock.advance(100)
    doc = status.controller_document(lambda: [{"monitor": "a", "state": "up"}], clock=clock)()
    assert doc["daemon"] == "ixp-remoted" and doc["time"] == 100 and doc["vps"][0]["monitor"] == "a"


def test_status_service_refuses_a_foreign_file(tmp_path):
    f = tmp_path / "x"
    f.write_text("keep")
    with pytest.raises(status.StatusSocketError, match="not a socket"):
        status.status_service(task.Clock(), str(f), dict)
    assert f.read_text() == "keep"


def _serve_once(path, doc):
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen(1)

    def run():
        c, _ = srv.accept()
        c.sendall(json.dumps(doc).encode() + b"\n")
        c.close()
        srv.close()
    threading.Thread(target=run, daemon=True).start()


CONTROLLER = {"daemon": "ixp-remoted", "pid": 7, "time": 1000.0, "vps": [
    {"monitor": "rc1", "address": "192.0.2.9:4000", "connected_since": 400.0, "state": "up",
     "resumes": 2, "channels": 1, "users": 1, "bytes_in": 2048, "bytes_out": 10},
    {"monitor": "rc2", "address": "192.0.2.10:4001", "connected_since": 100.0, "state": "away",
     "away_since": 880.0, "resumes": 0, "channels": 0, "users": 0, "bytes_in": 0, "bytes_out": 0},
]}


def test_ixp_status_controller_table_and_json(tmp_path, capsys):
    path = str(tmp_path / "st.sock")
    _serve_once(path, CONTROLLER)
    assert status.main([path]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "2 VP(s)" in lines[0] and lines[1].split()[:2] == ["MONITOR", "ADDRESS"]
    assert "rc1" in lines[2] and " up " in lines[2] and "2.0KiB" in lines[2]
    assert "rc2" in lines[3] and "away 2m00s" in lines[3]
    os.unlink(path)
    _serve_once(path, CONTROLLER)
    assert status.main([path, "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert [(v["monitor"], v["state"]) for v in got] == [("rc1", "up"), ("rc2", "away")]


def test_ixp_status_vp_json_is_a_list_of_one(tmp_path, capsys):
    path = str(tmp_path / "st.sock")
    _serve_once(path, {"daemon": "ixp-vp", "pid": 1, "time": 5.0, "monitor": "m", "state": "away",
                       "link": {"state": "backoff"}})
    assert status.main([path, "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert entry["monitor"] == "m" and entry["state"] == "away" and entry["link"]["state"] == "backoff"


def test_ixp_status_one_line_errors(tmp_path, capsys):
    assert status.main([str(tmp_path / "none")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ixp-status: ") and "no such socket" in err
    path = str(tmp_path / "dead.sock")
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.close()  # bound, nobody listening
    assert status.main([path]) == 1
    assert "is the daemon running" in capsys.readouterr().err


# -- metrics -------------------------------------------------------------------------

VP_DOC = {
    "daemon": "ixp-vp", "time": 110.0, "monitor": "m1", "state": "up",
    "link": {"remote": "c:1", "tls": True, "state": "established", "state_since": 100.0,
             "connects": 3, "sessions": 1, "resumes": 2, "rejected": 0,
             "failures": {"refused": 4}, "channels": 2, "bytes_in": 10, "bytes_out": 20,
             "resume_histogram": {"buckets": [(1.0, 1), (float("inf"), 2)], "sum": 3.5, "count": 2}},
    "tasks": {"by_type": {"ping": {"queued": 1, "running": 2, "started": 9, "done": 6, "failed": 1,
                                   "replies": 30}}},
    "probes": {"sent": 77, "pps_limit": 100, "pps_achieved": 42.5, "window": 0},
    "local": {"connections": 1},
}


def _scrape(registry):
    parser = pytest.importorskip("prometheus_client.parser")
    text_string_to_metric_families = parser.text_string_to_metric_families
    req = DummyRequest([b"metrics"])
    body = metrics.MetricsResource(registry).render_GET(req)
    assert req.responseHeaders.getRawHeaders(b"content-type")[0].startswith(b"text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(body.decode()) for s in fam.samples}


def test_vp_collector_from_the_status_document():
    pytest.importorskip("prometheus_client")
    reg = metrics.new_registry()
    reg.register(metrics.VPCollector(lambda: VP_DOC))
    m = _scrape(reg)
    assert m[("ixp_vp_link_up", ())] == 1
    assert m[("ixp_vp_link_state", (("state", "established"),))] == 1
    assert m[("ixp_vp_link_state", (("state", "backoff"),))] == 0
    assert m[("ixp_vp_link_state_seconds", ())] == 10
    assert m[("ixp_vp_reconnects_total", ())] == 2
    assert m[("ixp_vp_sessions_total", (("kind", "resumed"),))] == 2
    assert m[("ixp_vp_connection_failures_total", (("reason", "refused"),))] == 4
    assert m[("ixp_vp_resume_seconds_bucket", (("le", "1.0"),))] == 1
    assert m[("ixp_vp_resume_seconds_count", ())] == 2
    assert m[("ixp_vp_tasks", (("state", "running"), ("type", "ping")))] == 2
    assert m[("ixp_vp_tasks_done_total", (("outcome", "ok"), ("type", "ping")))] == 5
    assert m[("ixp_vp_replies_total", (("type", "ping"),))] == 30
    assert m[("ixp_vp_probes_sent_total", ())] == 77
    assert m[("ixp_vp_pps_achieved", ())] == 42.5 and m[("ixp_vp_pps_limit", ())] == 100
    assert m[("ixp_vp_info", (("monitor", "m1"), ("remote", "c:1"), ("tls", "1")))] == 1
    names = {n for n, _ in m}
    documented = set(metrics.VP_METRICS)
    assert {n.removesuffix("_bucket").removesuffix("_count").removesuffix("_sum")
            for n in names} <= documented


def test_remoted_metrics_names_and_calls():
    pytest.importorskip("prometheus_client")
    reg = metrics.new_registry()
    m = metrics.RemotedMetrics(reg, gauges=lambda: {"connected": 3, "zombie": 1, "users": 5,
                                                     "channels": 6}, version="1", tls=True)
    m.registered()
    m.registration_refused("rate")
    m.resumed()
    m.resume_rejected()
    m.protocol_error("bad_frame")
    m.departed("zombie_expired")
    m.relayed("from_vps", 100)
    s = _scrape(reg)
    assert s[("ixp_remoted_vps", (("state", "connected"),))] == 3
    assert s[("ixp_remoted_users", ())] == 5 and s[("ixp_remoted_channels", ())] == 6
    assert s[("ixp_remoted_registrations_total", (("result", "refused"),))] == 1
    assert s[("ixp_remoted_rejects_total", (("reason", "rate"),))] == 1
    assert s[("ixp_remoted_resumes_total", (("result", "rejected"),))] == 1
    assert s[("ixp_remoted_protocol_errors_total", (("kind", "bad_frame"),))] == 1
    assert s[("ixp_remoted_bytes_total", (("direction", "from_vps"),))] == 100
    names = {n for n, _ in s if not n.endswith("_created")}
    assert names <= set(metrics.REMOTED_METRICS)


@pytest.mark.parametrize("text, want", [("9477", ("127.0.0.1", 9477)),
                                        ("0.0.0.0:9477", ("0.0.0.0", 9477)),
                                        ("[::1]:9477", ("::1", 9477))])
def test_metrics_address(text, want):
    assert metrics.parse_metrics_address(text) == want


@pytest.mark.parametrize("text", ["x:1", "99999", "::1:9", "host.example:80"])
def test_bad_metrics_address(text):
    with pytest.raises(ValueError):
        metrics.parse_metrics_address(text)


def test_grafana_dashboard_uses_only_defined_metrics():
    import re
    from pathlib import Path
    dash = json.loads((Path(__file__).resolve().parent.parent / "etc" /
                       "grafana-ixpscamper.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    assert exprs
    used = {m for e in exprs for m in re.findall(r"\b(ixp_(?:vp|remoted)_[a-z_]+)", e)}
    known = set(metrics.VP_METRICS) | set(metrics.REMOTED_METRICS)
    known |= {n + s for n in known for s in ("_bucket", "_sum", "_count")}
    assert used <= known, used - known
    assert any(u.startswith("ixp_vp_") for u in used) and any(u.startswith("ixp_remoted_") for u in used)
