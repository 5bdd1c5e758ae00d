"""The Twisted adapters of ixp-remoted in-process (MemoryReactorClock +
StringTransport): fuzzing through the real protocol adapter, and the twistd
plugin's options."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import formatEvent, globalLogPublisher
from twisted.python import usage

from ixpscamper.remote.frames import (
    Ack, ChannelFin, FrameDecoder, Keepalive, MasterNew, MasterRes, encode_frame,
)
from ixpscamper.remoted import tap
from ixpscamper.remoted.service import RemotedService, VPFactory, parse_listen, peer_label


class Transport(StringTransport):
    def loseConnection(self):
        super().loseConnection()


def make_service(tmp_path, **kw):
    reactor = MemoryReactorClock()
    svc = RemotedService(reactor, [], str(tmp_path), **kw)
    return reactor, svc


def connect(svc, host="127.0.0.1", port=40000):
    proto = VPFactory(svc).buildProtocol(None)
    tr = Transport(peerAddress=IPv4Address("TCP", host, port))
    proto.makeConnection(tr)
    return proto, tr


def test_peer_labels():
    assert peer_label(IPv4Address("TCP", "192.0.2.1", 5)) == "192.0.2.1:5"
    assert peer_label(IPv6Address("TCP", "::1", 6)) == "::1.6"
    assert peer_label(IPv6Address("TCP", "::ffff:10.0.0.1", 7)) == "10.0.0.1:7"
    assert peer_label(IPv6Address("TCP", "fe80::1%eth0", 8)) == "fe80::1.8"


@pytest.mark.parametrize("spec,out", [
    ("4000", [("", 4000)]), ("127.0.0.1:4000", [("127.0.0.1", 4000)]),
    ("[::1]:4000", [("::1", 4000)]), ("::1:4000", [("::1", 4000)]),
])
def test_parse_listen(spec, out):
    assert parse_listen(spec) == out


@pytest.mark.parametrize("spec", ["", "x", "1.2.3.4:", "1.2.3.4:99999", "nothost:80", "[::1]80"])
def test_parse_listen_rejects(spec):
    with pytest.raises(ValueError):
        parse_listen(spec)


def test_registration_creates_socket_with_mode(tmp_path):
    reactor, svc = make_service(tmp_path, allow_group=True)
    proto, tr = connect(svc)
    proto.dataReceived(encode_frame(0, 0, MasterNew(b"m" * 8, b"vp1").encode()))
    (path, factory, backlog, mode, _pid) = reactor.unixServers[0]
    assert path == os.path.join(str(tmp_path), "vp1-127.0.0.1:40000") and mode == 0o770
    frames = FrameDecoder().feed(tr.value())
    assert frames[0].payload == b"\x01\x10127.0.0.1:40000\x00"


# A valid session's byte stream: registration, keepalive, an ACK for our
# CHANNEL_NEW (sent when a user connects in the test), data and FIN.
VALID_FIRST = encode_frame(0, 0, MasterNew(b"fuzzfuzz", b"fz").encode())
VALID = (VALID_FIRST
         + encode_frame(0, 0, Keepalive().encode())
         + encode_frame(0, 0, Ack(0).encode())
         + encode_frame(0, 1, b"MORE\n")
         + encode_frame(1, 0, ChannelFin(1).encode()))


def _drive(tmp_path, stream: bytes, chunks: list[int]):
    """Feed the first frame's worth of bytes, open a channel as a user would
    if a session came up, then feed the rest in the given chunk sizes.
    Returns the transport and the daemon's log lines after registration."""
    reactor, svc = make_service(tmp_path)
    proto, tr = connect(svc)
    lines: list[str] = []

    def observer(event):
        if (event.get("log_namespace") or "").startswith("ixp-remoted"):
            lines.append(formatEvent(event))
    globalLogPublisher.addObserver(observer)
    try:
        first = len(VALID_FIRST)
        proto.dataReceived(stream[:first])
        for sess in svc.core.sessions.values():
            sess.open_channel()
        lines[:] = [ln for ln in lines if "registered" not in ln]
        pos = first
        for n in chunks + [len(stream)]:
            if tr.disconnecting or pos >= len(stream):
                break
            proto.dataReceived(stream[pos:pos + n])
            pos += n
    finally:
        globalLogPublisher.removeObserver(observer)
    return tr, lines, svc


@given(st.binary(max_size=400), st.lists(st.integers(1, 64), max_size=10))
@settings(max_examples=150, deadline=None)
def test_fuzz_random_bytes_through_adapter(tmp_path_factory, data, chunks):
    tr, logged, svc = _drive(tmp_path_factory.mktemp("f"), data, chunks)
    # either still waiting for more, or closed with exactly one reason
    assert len(logged) <= 1
    assert tr.disconnecting == bool(logged)
    for r in logged:
        assert "\n" not in r and ("closed:" in r or "away" in r)


@given(st.data())
@settings(max_examples=150, deadline=None)
def test_fuzz_mutated_session_through_adapter(tmp_path_factory, data):
    stream = bytearray(VALID)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(stream) - 1))
        stream[i] = data.draw(st.integers(0, 255))
    tr, logged, svc = _drive(tmp_path_factory.mktemp("m"), bytes(stream),
                             data.draw(st.lists(st.integers(1, 40), max_size=8)))
    assert len(logged) <= 1
    assert tr.disconnecting == bool(logged)


def test_valid_session_is_accepted(tmp_path):
    tr, logged, svc = _drive(tmp_path, VALID, [])
    assert logged == [] and not tr.disconnecting


def test_resume_while_connected_replaces_old_connection(tmp_path):
    reactor, svc = make_service(tmp_path)
    p1, t1 = connect(svc)
    p1.dataReceived(encode_frame(0, 0, MasterNew(b"r" * 8, b"rr").encode()))
    p2, t2 = connect(svc, port=40001)
    p2.dataReceived(encode_frame(0, 0, MasterRes(b"r" * 8, 0, 0, 0).encode()))
    assert t1.disconnecting and not t2.disconnecting
    assert FrameDecoder().feed(t2.value())[0].payload == b"\x08\x00\x00\x00\x00"  # MASTER_OK(0)
    assert len(reactor.unixServers) == 1  # the socket is not re-created


# ---- options -------------------------------------------------------------------

def parse(*args):
    o = tap.Options()
    o.parseOptions(list(args))
    return o


def test_options_aliases(tmp_path):
    o = parse("-P", "127.0.0.1:4000", "-P", "[::1]:4000", "-U", str(tmp_path), "-Z", "20",
              "--allow", "group", "-O", "allowother", "-e", "/run/x.pid")
    assert o["port"] == ["127.0.0.1:4000", "[::1]:4000"] and o["zombie"] == 20.0
    assert o["allow"] == {"group", "other"} and o["pidfile"] == "/run/x.pid"
    svc = tap.makeService(o).services[0]
    assert svc.mode == 0o777 and svc.core.zombie_time == 20.0


@pytest.mark.parametrize("args,msg", [
    ([], "--port/-P is required"),
    (["-P", "4000"], "give --socket-dir/-U, --mux/-M or both"),
    (["-P", "4000", "-U", "/nonexistent-dir-h2"], "does not exist"),
    (["-P", "x:y"], "bad"),
    (["-P", "4000", "-U", ".", "-Z", "99999"], "0..10800"),
    (["-P", "4000", "-U", ".", "-Z", "soon"], "not a number"),
    (["-P", "4000", "-U", ".", "--allow", "world"], "group or other"),
    (["-P", "4000", "-U", ".", "-c", "cert.pem"], "go together"),
    (["-P", "4000", "-U", ".", "--client-ca", "ca.pem"], "needs --tls-cert"),
    (["-P", "4000", "-U", ".", "-c", "/nonexistent.pem", "-p", "/nonexistent.key"], "cannot read"),
])
def test_option_errors(args, msg):
    with pytest.raises(usage.UsageError, match=msg):
        parse(*args)


def test_example_conf_parses(tmp_path):
    """etc/ixp-remoted.toml (what the unit's --config names) is accepted by the plugin."""
    from pathlib import Path
    conf = Path(__file__).resolve().parent.parent / "etc" / "ixp-remoted.toml"
    copy = tmp_path / "ixp-remoted.toml"
    copy.write_text(conf.read_text().replace("/run/ixp-remoted", str(tmp_path)))
    o = parse("--config", str(copy))
    assert o["port"] == ["31337"] and o["socket-dir"] == str(tmp_path)
    assert o["zombie"] == 900.0 and o["allow"] == {"group"}
    assert o["status"] and o["metrics"] == "127.0.0.1:9478" and o["mux"]
    assert (o["log-format"], o["log-level"]) == ("text", "info")


def test_user_who_stops_reading_is_dropped_alone(tmp_path, monkeypatch):
    from twisted.internet.testing import StringTransport as ST

    from ixpscamper.remoted.service import UserFactory
    reactor, svc = make_service(tmp_path)
    proto, tr = connect(svc)
    proto.dataReceived(encode_frame(0, 0, MasterNew(b"b" * 8, b"bp").encode()))
    entry = svc.entries[os.path.join(str(tmp_path), "bp-127.0.0.1:40000")]
    users = []
    for _ in range(2):
        u = UserFactory(entry).buildProtocol(None)
        ut = ST()
        u.makeConnection(ut)
        users.append((u, ut))
    (slow, slow_t), (fast, fast_t) = users
    slow.USER_BACKLOG = 100_000
    # a StringTransport keeps everything: count what was written as pending
    import ixpscamper.remoted.service as service_mod
    monkeypatch.setattr(service_mod, "_pending", lambda t: len(t.value()))
    proto.dataReceived(encode_frame(0, 0, Ack(0).encode()) + encode_frame(0, 0, Ack(1).encode()))
    slow.pauseProducing()  # what the transport does when its buffer is full
    seq = 0
    for i in range(20):
        for ch in (1, 2):
            proto.dataReceived(encode_frame(seq, ch, b"r" * 8000))
            seq += 1
    assert slow_t.disconnected and not fast_t.disconnected and not tr.disconnecting
    assert len(fast_t.value()) == 20 * 8000
    assert slow.backlog > 100_000 and len(slow_t.value()) <= 100_000
    slow.resumeProducing()  # (a late resume changes nothing)
    from ixpscamper.remote.frames import decode_control as dc
    sent = [dc(f.payload) for f in FrameDecoder().feed(tr.value()) if f.channel == 0]
    assert ChannelFin(1) in sent and ChannelFin(2) not in sent  # the VP is told
