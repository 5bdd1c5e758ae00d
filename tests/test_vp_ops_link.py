"""The VP's link diagnostics, status, metrics state and SIGHUP reload, in memory (task.Clock)."""

from __future__ import annotations

import contextlib

import pytest
from OpenSSL import SSL
from twisted.internet import address, error, task
from twisted.internet.testing import StringTransport
from twisted.logger import globalLogPublisher
from twisted.python.failure import Failure

from ixpscamper.ops import logs
from ixpscamper.remote.frames import MasterId, encode_frame
from ixpscamper.vp import remote as R
from ixpscamper.vp import tap
from ixpscamper.vp.opsstate import CountingBackend, LinkStats, PpsMeter

from tests.vp_helpers import FakeBackend, Wire


@contextlib.contextmanager
def captured():
    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        yield events
    finally:
        globalLogPublisher.removeObserver(events.append)


def warnings_of(events):
    from twisted.logger import LogLevel, formatEvent
    return [formatEvent(e) for e in events
            if e.get("log_level") is LogLevel.warn and str(e.get("log_namespace", "")).startswith("ixp-vp")]


def connect(tls, clock=None):
    clock = clock or task.Clock()
    vp = R.RemoteVP(clock, FakeBackend(clock), monitor="m1", tls=tls)
    proto = R.RemoteFactory(vp).buildProtocol(None)
    t = StringTransport(peerAddress=address.IPv4Address("TCP", "127.0.0.1", 31337))
    proto.makeConnection(t)
    return clock, vp, proto, t


def test_plaintext_vp_answered_by_a_tls_alert_says_so():
    with captured() as ev:
        clock, vp, proto, t = connect(tls=False)
        assert t.value()  # MASTER_NEW went out
        proto.dataReceived(b"\x15\x03\x01\x00\x02\x02\x46")
    (line,) = warnings_of(ev)
    assert "answered MASTER_NEW with a TLS alert (15 03 01 ...)" in line and "drop --no-tls" in line
    assert t.disconnected
    proto.connectionLost(Failure(error.ConnectionAborted()))
    assert vp.stats.failures == {"tls_mismatch": 1}


def test_plaintext_vp_closed_without_an_answer_names_tls_as_a_cause():
    with captured() as ev:
        clock, vp, proto, t = connect(tls=False)
        proto.connectionLost(Failure(error.ConnectionDone()))
    (line,) = warnings_of(ev)
    assert "closed the connection without answering MASTER_NEW" in line and "--no-tls" in line


def test_tls_vp_meeting_eof_in_the_handshake_names_a_plaintext_controller():
    with captured() as ev:
        clock, vp, proto, t = connect(tls=True)
        proto.connectionLost(Failure(error.ConnectionDone()))
    (line,) = warnings_of(ev)
    assert "during the TLS handshake" in line and "give this VP --no-tls" in line
    assert vp.stats.failures == {"tls_mismatch": 1}


def test_tls_vp_meeting_bytes_that_are_not_tls():
    with captured() as ev:
        clock, vp, proto, t = connect(tls=True)
        err = SSL.Error([("SSL routines", "", "wrong version number")])
        proto.connectionLost(Failure(err))
    (line,) = warnings_of(ev)
    assert "is not TLS" in line and "wrong version number" in line and "--no-tls" in line


def test_tls_vp_meeting_silence_gives_up_with_a_reason_within_seconds():
    with captured() as ev:
        clock, vp, proto, t = connect(tls=True)
        clock.advance(R.TLS_HANDSHAKE_TIME - 0.1)
        assert not warnings_of(ev) and not t.disconnected
        clock.advance(0.2)
    (line,) = warnings_of(ev)
    assert "no TLS answer from the controller" in line and t.disconnected
    assert R.TLS_HANDSHAKE_TIME <= 10


def test_a_completed_handshake_then_a_refusal_is_not_called_a_tls_mismatch():
    with captured() as ev:
        clock, vp, proto, t = connect(tls=True)
        proto.handshakeCompleted()
        clock.advance(R.TLS_HANDSHAKE_TIME + 1)  # no watchdog after the handshake
        assert not t.disconnected and not warnings_of(ev)
        proto.connectionLost(Failure(error.ConnectionDone()))
    (line,) = warnings_of(ev)
    assert "without answering MASTER_NEW: it refused this VP" in line and "--no-tls" not in line
    assert vp.stats.failures == {"closed": 1}


def test_tls_alert_after_the_client_hello_is_about_certificates():
    kind, line = __import__("ixpscamper.ops.tlsdiag", fromlist=["x"]).classify_tls_failure(
        "Error: [('SSL routines', '', 'tlsv13 alert certificate required')]")
    assert kind == "tls" and "--tls-cert" in line


def test_a_normal_session_has_no_diagnosis_and_counts_bytes():
    with captured() as ev:
        clock, vp, proto, t = connect(tls=False)
        proto.dataReceived(encode_frame(0, 0, MasterId(b"127.0.0.1:4000").encode()))
    assert vp.session.established and not warnings_of(ev)
    assert vp.stats.bytes_in > 0 and vp.stats.bytes_out == len(t.value())
    assert vp.stats.state()[0] == "established"


# -- LinkStats, CountingBackend, PpsMeter ----------------------------------------------

def test_link_states_and_resume_latency():
    clock = task.Clock()
    st = LinkStats(clock)
    assert st.state() == ("connecting", 0)
    st.failure("refused", "x")
    st.backoff(2.0)
    clock.advance(1)
    assert st.state() == ("backoff", 0)
    clock.advance(1.5)
    assert st.state()[0] == "connecting"
    st.transport_made()
    assert st.state() == ("handshaking", 2.5)
    st.session_up(resumed=False)
    clock.advance(10)
    st.transport_lost()
    clock.advance(0.4)
    st.transport_made()
    st.session_up(resumed=True)
    assert st.last_resume_seconds == pytest.approx(0.4)
    h = st.histogram()
    assert h["count"] == 1 and dict(h["buckets"])[0.5] == 1 and dict(h["buckets"])[0.25] == 0
    st.stop()
    assert st.state()[0] == "stopped"


def test_resume_through_the_in_memory_controller_is_timed():
    clock = task.Clock()
    w = Wire(clock, FakeBackend(clock))
    w.connect()
    assert w.vp.stats.sessions == 1
    w.cut()
    clock.advance(1.5)
    w.connect()
    assert w.vp.stats.resumes == 1 and w.vp.stats.last_resume_seconds == pytest.approx(1.5)


def test_counting_backend_counts_by_type_and_passes_results_through():
    clock = task.Clock()
    b = CountingBackend(FakeBackend(clock, delay=2))
    got = []
    t1 = b.start_for(b.parse("ping -c 3 127.0.0.1"), "g", 1)
    t1.deferred.addCallback(got.append)
    s = b.summary()
    assert s["running"] == 1 and s["by_type"]["other"]["started"] == 1
    clock.advance(2)
    s = b.summary()
    assert s["running"] == 0 and s["done"] == 1 and s["by_type"]["other"]["replies"] == 3
    assert got and got[0].reply_count == 3


def test_pps_meter():
    clock = task.Clock()
    m = PpsMeter(clock, span=10)
    for i in range(30):
        m.sample(i * 50)
        clock.advance(1)
    assert m.rate(30 * 50) == pytest.approx(50)


# -- the service: status document, reload ----------------------------------------------

def make(argv, clock=None, log_setup=None):
    clock = clock or task.Clock()
    o = tap.Options()
    o.parseOptions(argv)
    svc = tap.makeService(o, reactor=clock, backend=FakeBackend(clock))
    if log_setup is not None:
        svc.log_setup = log_setup
    return clock, o, svc


def test_status_document_of_a_vp(tmp_path):
    clock, o, svc = make(["-R", "127.0.0.1:9", "--no-tls", "-M", "vp1", "--status",
                          str(tmp_path / "st.sock")])
    doc = svc.status()
    assert doc["daemon"] == "ixp-vp" and doc["monitor"] == "vp1" and doc["state"] == "away"
    assert doc["link"]["state"] == "connecting" and doc["link"]["tls"] is False
    assert doc["tasks"] == {"queued": 0, "running": 0, "done": 0, "by_type": {}}
    kinds = sorted(type(s).__name__ for s in svc)
    assert kinds == ["ClientService", "_Service"]


def test_sighup_reloads_pps_and_log_level_from_the_file(tmp_path):
    conf = tmp_path / "vp.toml"
    conf.write_text('remote = "127.0.0.1:9"\nno-tls = true\nmonitor = "vp1"\npps = 20\n')
    ls = logs.LogSetup("ixp-vp", stream=__import__("io").StringIO())
    clock, o, svc = make(["--config", str(conf)], log_setup=ls)
    conf.write_text('remote = "127.0.0.1:9"\nno-tls = true\nmonitor = "vp2"\npps = 100\n'
                    'log-level = "debug"\n')
    line = svc.reload()
    assert line == (f"SIGHUP: reloaded log level info -> debug, pps 20 -> 100 (from {conf}); "
                    "changed but needing a restart: monitor")
    assert svc.cfg.pps == 100 and svc.cfg.monitor == "vp1" and ls.level_name == "debug"
    assert svc.reload().startswith("SIGHUP: reloaded nothing changed")


def test_sighup_with_a_broken_file_keeps_everything(tmp_path):
    conf = tmp_path / "vp.toml"
    conf.write_text('remote = "127.0.0.1:9"\nno-tls = true\npps = 20\n')
    clock, o, svc = make(["--config", str(conf)])
    conf.write_text('remote = "127.0.0.1:9"\nno-tls = true\npps = 0\n')
    line = svc.hup.run()
    assert line.startswith("SIGHUP: reload failed, keeping the old settings: ")
    assert f"{conf}:3: pps = 0" in line and svc.cfg.pps == 20


def test_sighup_rereads_the_tls_files(tmp_path):
    from tests.test_vp_tls import make_ca, write_pem
    _k, ca = make_ca()
    ca_path = write_pem(tmp_path / "ca.pem", ca)
    clock, o, svc = make(["-R", "localhost:9", "--tls-ca", ca_path])
    old = svc.link_factory.tls
    assert svc.reload() == "SIGHUP: reloaded TLS material (for the next connection)"
    assert svc.link_factory.tls is not old
    (tmp_path / "ca.pem").write_text("garbage")
    with pytest.raises(ValueError, match="--tls-ca"):
        svc.reload()
    assert svc.link_factory.tls is not old  # the previous good one stays


@pytest.mark.parametrize("expect_tls, first, hint", [
    (True, encode_frame(0, 0, b"\x01" + b"\x00" * 12), "a plaintext VP on the TLS port"),
    (False, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "a TLS VP on the plaintext port"),
])
def test_controller_side_first_bytes_sniffer(expect_tls, first, hint):
    from twisted.internet import protocol as P
    from ixpscamper.ops.tlsdiag import FirstBytesFactory
    got, reports = [], []

    class Inner(P.Protocol):
        def dataReceived(self, data):
            got.append(data)
    f = FirstBytesFactory(P.Factory.forProtocol(Inner), expect_tls, lambda peer, h: reports.append((peer, h)))
    p = f.buildProtocol(address.IPv4Address("TCP", "127.0.0.1", 5))
    t = StringTransport(peerAddress=address.IPv4Address("TCP", "192.0.2.7", 4444))
    p.makeConnection(t)
    p.dataReceived(first)
    assert reports and reports[0][0] == "192.0.2.7:4444" and hint in reports[0][1]
    assert t.disconnected and not got
    # the right bytes pass through untouched
    reports.clear()
    p2 = f.buildProtocol(None)
    t2 = StringTransport()
    p2.makeConnection(t2)
    right = b"\x16\x03\x01\x00\x05hello" if expect_tls else encode_frame(0, 0, b"\x01abc")
    p2.dataReceived(right)
    p2.dataReceived(b"more")
    assert not reports and got == [right, b"more"]
