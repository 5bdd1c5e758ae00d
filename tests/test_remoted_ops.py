"""ixp-remoted's ops wiring in-process (MemoryReactorClock + StringTransport):
the status entries, the metric each event counts, SIGHUP's reload_live, the
first-bytes TLS / plaintext diagnosis, the DaemonRoot tree of makeService."""

from __future__ import annotations

import os

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport

from ixpscamper.ops.daemon import DaemonRoot
from ixpscamper.ops.tlsdiag import PLAINTEXT_VP_HINT, TLS_ON_PLAINTEXT_HINT
from ixpscamper.remote.frames import (
    ChannelFin, MasterNew, MasterRes, encode_frame,
)
from ixpscamper.remoted import tap
from ixpscamper.remoted.service import (
    RemotedService, UserFactory, VPFactory, VPFirstBytesFactory, departure_reason,
    protocol_error_kind,
)

prom = pytest.importorskip("prometheus_client")
from ixpscamper.ops.metrics import RemotedMetrics, new_registry  # noqa: E402


class Net:
    def __init__(self, tmp_path, **kw):
        self.reactor = MemoryReactorClock()
        self.reactor.advance(1_000_000.0)  # an epoch-like clock
        self.svc = RemotedService(self.reactor, [], str(tmp_path), **kw)
        self.tmp = tmp_path
        self.registry = new_registry()
        self.svc.set_metrics(RemotedMetrics(self.registry, gauges=self.svc.gauges,
                                            bytes_from_gauges=True))
        self.port = 40000

    def connect(self, host="127.0.0.1"):
        self.port += 1
        proto = VPFactory(self.svc).buildProtocol(None)
        tr = StringTransport(peerAddress=IPv4Address("TCP", host, self.port))
        proto.makeConnection(tr)
        return proto, tr

    def register(self, magic=b"m" * 8, name=b"vp1"):
        proto, tr = self.connect()
        proto.dataReceived(encode_frame(0, 0, MasterNew(magic, name).encode()))
        return proto, tr

    def value(self, name, **labels):
        v = self.registry.get_sample_value(name, labels or None)
        return 0 if v is None else v

    def user(self, label):
        entry = self.svc.entries[os.path.join(str(self.tmp), label)]
        u = UserFactory(entry).buildProtocol(None)
        u.makeConnection(StringTransport())
        return entry, u


def test_status_entry_of_a_vp_with_a_user_and_its_bytes(tmp_path):
    n = Net(tmp_path)
    t0 = n.reactor.seconds()
    proto, tr = n.register()
    label = f"vp1-127.0.0.1:{n.port}"
    entry, u = n.user(label)
    u.dataReceived(b"ping 127.0.0.1\n")
    ch = u.channel
    proto.dataReceived(encode_frame(0, ch, b"MORE\n"))
    (e,) = n.svc.status_vps()
    assert e == {"monitor": "vp1", "label": label, "address": f"127.0.0.1:{n.port}",
                 "connected_since": t0, "state": "up", "away_since": None,
                 "socket": os.path.join(str(tmp_path), label), "mux_id": None, "resumes": 0,
                 "channels": 1, "users": 1, "bytes_in": 5, "bytes_out": 15}
    g = n.svc.gauges()
    assert (g["connected"], g["zombie"], g["users"], g["channels"]) == (1, 0, 1, 1)
    assert n.value("ixp_remoted_bytes_total", direction="to_vps") == 15
    assert n.value("ixp_remoted_bytes_total", direction="from_vps") == 5
    assert n.value("ixp_remoted_users") == 1


def test_away_and_resumed_are_recorded(tmp_path):
    n = Net(tmp_path, zombie_time=60)
    proto, tr = n.register()
    n.reactor.advance(5)
    proto.connectionLost(None)
    (e,) = n.svc.status_vps()
    assert e["state"] == "away" and e["away_since"] == n.reactor.seconds()
    assert n.value("ixp_remoted_vps", state="zombie") == 1
    n.reactor.advance(5)
    p2, t2 = n.connect()
    p2.dataReceived(encode_frame(0, 0, MasterRes(b"m" * 8, 0, 0, 0).encode()))
    (e,) = n.svc.status_vps()
    assert (e["state"], e["away_since"], e["resumes"]) == ("up", None, 1)
    assert e["connected_since"] == n.reactor.seconds() and e["address"] == f"127.0.0.1:{n.port}"
    assert n.value("ixp_remoted_resumes_total", result="ok") == 1


def test_each_event_counts_its_metric(tmp_path):
    n = Net(tmp_path, zombie_time=30, handshake_time=2, registration_rate=1.0,
            registration_burst=1.0)
    n.register(b"a" * 8, b"vpa")
    assert n.value("ixp_remoted_registrations_total", result="accepted") == 1
    # a second registration from the same source within the rate
    n.register(b"b" * 8, b"vpb")
    assert n.value("ixp_remoted_registrations_total", result="refused") == 1
    assert n.value("ixp_remoted_rejects_total", reason="rate") == 1
    # MASTER_RES for a session we do not hold: MASTER_REJ
    p, t = n.connect()
    p.dataReceived(encode_frame(0, 0, MasterRes(b"nosuchmg", 0, 0, 0).encode()))
    assert n.value("ixp_remoted_resumes_total", result="rejected") == 1
    # nothing sent within the handshake time
    p, t = n.connect()
    n.reactor.advance(3)
    assert n.value("ixp_remoted_rejects_total", reason="handshake_timeout") == 1
    # a bad first frame
    p, t = n.connect()
    p.dataReceived(encode_frame(5, 0, b"\x00"))
    assert n.value("ixp_remoted_protocol_errors_total", kind="handshake") == 1
    # a protocol error on the established session: out-of-order seq
    (sess,) = n.svc.core.sessions.values()
    proto = sess.conn
    assert proto is not None
    n.reactor.advance(2)  # a token for the next registration
    p, t = n.register(b"c" * 8, b"vpc")
    p.dataReceived(encode_frame(7, 0, ChannelFin(1).encode()))
    assert n.value("ixp_remoted_protocol_errors_total", kind="sequence") == 1
    # zombie expiry and replacement
    n.reactor.advance(31)
    assert n.value("ixp_remoted_departures_total", reason="zombie_expired") == 1
    n.reactor.advance(2)
    n.register(b"a" * 8, b"vpa")
    assert n.value("ixp_remoted_departures_total", reason="replaced") == 1


def test_reload_live_applies_the_registration_limits(tmp_path):
    n = Net(tmp_path)
    new = tap.Options()
    new.parseOptions(["-P", "4000", "-U", str(tmp_path), "--registration-rate", "5/s",
                      "--registration-burst", "7"])
    assert n.svc.reload_live(new) == "registration rate 0/s (burst 3) -> 5/s (burst 7)"
    assert (n.svc.admission.rate.rate, n.svc.admission.rate.burst) == (5.0, 7.0)
    assert n.svc.reload_live(new) is None  # nothing changed
    assert n.svc.reload_live(None) is None


def test_reload_live_names_the_metadata(tmp_path):
    meta = tmp_path / "meta.txt"
    meta.write_text("vp1 place Amsterdam\nvp2 cc DE\nvp3 iata LHR\n")
    reactor = MemoryReactorClock()
    svc = RemotedService(reactor, [], None, mux_path=str(tmp_path / "mux.sock"),
                         meta_path=str(meta))
    assert svc.reload_live(None) == "metadata for 3 monitors"


def _first_bytes(n: Net, expect_tls: bool, data: bytes):
    seen = []
    wrapped = VPFactory(n.svc)
    f = VPFirstBytesFactory(wrapped, expect_tls=expect_tls,
                            report=lambda peer, hint: seen.append((peer, hint)))
    proto = f.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5555))
    tr = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 5555))
    proto.makeConnection(tr)
    proto.dataReceived(data)
    return seen, tr


def test_a_clienthello_on_the_plaintext_port_is_named_and_cut(tmp_path):
    n = Net(tmp_path)
    seen, tr = _first_bytes(n, False, bytes.fromhex("160301020001"))
    assert seen == [("127.0.0.1:5555", TLS_ON_PLAINTEXT_HINT)]
    assert tr.disconnected or tr.disconnecting


def test_a_plaintext_master_new_on_the_tls_port_gets_a_tls_alert(tmp_path):
    n = Net(tmp_path)
    seen, tr = _first_bytes(n, True, encode_frame(0, 0, MasterNew(b"m" * 8, b"p").encode()))
    assert seen == [("127.0.0.1:5555", PLAINTEXT_VP_HINT)]
    assert tr.value().startswith(b"\x15\x03")  # what the VP's tlsdiag recognises


def test_a_valid_first_frame_passes_untouched(tmp_path):
    n = Net(tmp_path)
    seen, tr = _first_bytes(n, False, encode_frame(0, 0, MasterNew(b"m" * 8, b"ok").encode()))
    assert seen == [] and n.svc.core.sessions


@pytest.mark.parametrize("reason,label", [
    ("no resume within the zombie time (900 s)", "zombie_expired"),
    ("replaced by a MASTER_NEW with the same magic", "replaced"),
    ("the oldest zombie, freed for a new VP (--max-vps 5)", "evicted"),
    ("more than 3 zombies (--max-zombies), this was the oldest", "evicted"),
    ("controller stopping", "stopping"),
    ("connection closed; zombie time is 0", "disconnected"),
    ("socket name in use", "other"),
])
def test_departure_reasons(reason, label):
    assert departure_reason(reason) == label


@pytest.mark.parametrize("reason,kind", [
    ("protocol error: frame of 70000 bytes exceeds the limit of 65535", "frame"),
    ("protocol error: frame seq 7, expected 1", "sequence"),
    ("protocol error: ACK 3 with nothing outstanding", "sequence"),
    ("protocol error: unknown control message type 99", "message"),
])
def test_protocol_error_kinds(reason, kind):
    assert protocol_error_kind(reason) == kind


def test_make_service_returns_a_daemon_root(tmp_path):
    o = tap.Options()
    o.parseOptions(["-P", "4000", "-U", str(tmp_path), "--status", str(tmp_path / "st.sock")])
    root = tap.makeService(o, reactor=MemoryReactorClock())
    assert isinstance(root, DaemonRoot) and isinstance(root.services[0], RemotedService)
    assert len(root.services) == 2  # and the status socket
