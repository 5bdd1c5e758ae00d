"""``twistd ixp-remoted`` as a subprocess, driven by a stub VP (our VPSession
over a socket) and users on its unix sockets."""

from __future__ import annotations

import os
import socket
import stat
import struct
import time

import pytest

from ixpscamper.remote.frames import (
    FrameDecoder, MasterId, MasterNew, MasterRej, MasterRes, decode_control, encode_frame,
)

from faultproxy import FaultProxy
from remotestub import Daemon, StubVP, User, free_port, wait_for


@pytest.fixture
def daemon(tmp_path):
    d = Daemon(tmp_path, "-Z", "30", env={"IXP_REMOTED_HANDSHAKE_TIME": "1.5"})
    yield d
    d.stop()


def vp_socket(d: Daemon, prefix: str = "stub-") -> str:
    name = wait_for(lambda: [n for n in d.sockets() if n.startswith(prefix)], 10, "VP socket")[0]
    return os.path.join(d.sockdir, name)


def test_register_socket_name_mode_and_echo(daemon):
    vp = StubVP(daemon.port).start()
    try:
        path = vp_socket(daemon)
        lport = vp.sock.getsockname()[1]
        assert os.path.basename(path) == f"stub-127.0.0.1:{lport}"
        u = User(path)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o700
        wait_for(lambda: vp.log, 5, "MASTER_ID")
        assert vp.log[0] == ("established", f"127.0.0.1:{lport}".encode(), False)
        assert u.read_until(5) == b"MORE\n"
        u.send(b"ping -c 1 127.0.0.1\n")
        assert u.read_until(25) == b"MORE\nping -c 1 127.0.0.1\n"
        u.close()
        # user EOF -> CHANNEL_FIN -> the stub FINs back; nothing else changes
        wait_for(lambda: not vp.session.channels, 5, "channel closed")
        assert "registered" in daemon.logtext()
    finally:
        vp.stop()


def test_two_users_have_their_own_channels(daemon):
    vp = StubVP(daemon.port).start()
    try:
        path = vp_socket(daemon)
        a, b = User(path), User(path)
        a.read_until(5)
        b.read_until(5)
        a.send(b"from-a\n")
        b.send(b"from-b\n")
        assert a.read_until(12) == b"MORE\nfrom-a\n"
        assert b.read_until(12) == b"MORE\nfrom-b\n"
        assert sorted(vp.opened) == [1, 2]
    finally:
        vp.stop()


def test_user_done_gets_eof_after_vp_fin(daemon):
    vp = StubVP(daemon.port).start()
    try:
        u = User(vp_socket(daemon))
        u.read_until(5)
        ch = vp.opened[0]
        vp.session.send_data(ch, b"cycle-stop\n")  # safe: stub thread idle between loops
        time.sleep(0.1)
        vp.session.send_fin(ch)
        assert u.wait_eof(5)
        assert bytes(u.buf).endswith(b"cycle-stop\n")
    finally:
        vp.stop()


def test_outage_is_invisible_to_users(daemon):
    vp = StubVP(daemon.port, reconnect_delay=1.0).start()
    try:
        path = vp_socket(daemon)
        name = os.path.basename(path)
        u = User(path)
        u.read_until(5)
        expect = bytearray(b"MORE\n")
        for i in range(3):
            line = b"before-%d\n" % i
            u.send(line)
            expect += line
        u.read_until(len(expect))
        vp.cut()
        wait_for(lambda: not vp.session.established, 5, "the cut")
        # during the outage: socket still there under the same name; a new
        # user can connect; bytes written are held
        assert daemon.sockets() == [name]
        u2 = User(path)
        for i in range(3):
            line = b"during-%d\n" % i
            u.send(line)
            expect += line
        u2.send(b"late-user\n")
        got = u.read_until(len(expect), timeout=10)
        assert got == bytes(expect)
        assert u2.read_until(15) == b"MORE\nlate-user\n"
        assert daemon.sockets() == [name]
        assert any(ev == ("established", ev[1], True) for ev in vp.log)
        assert "resumed" in daemon.logtext()
    finally:
        vp.stop()


def test_exactly_once_through_fault_proxy(daemon):
    """Many cuts while data flows both ways: the user's stream is exact."""
    with FaultProxy() as proxy:
        pport = proxy.start(0, "127.0.0.1", daemon.port)
        vp = StubVP(pport, reconnect_delay=0.05).start()
        try:
            u = User(vp_socket(daemon))
            proxy.cut_every(0.25)
            expect = bytearray(b"MORE\n")
            for i in range(300):
                line = b"line %05d %s\n" % (i, b"x" * (i % 200))
                u.send(line)
                expect += line
                if i % 30 == 0:
                    time.sleep(0.1)
            got = u.read_until(len(expect), timeout=30)
            proxy.cut_every(None)
            assert proxy.cuts >= 3
            assert got == bytes(expect)
        finally:
            vp.stop()


def test_zombie_expiry_removes_socket_and_eofs_users(tmp_path):
    d = Daemon(tmp_path, "-Z", "1")
    vp = StubVP(d.port, auto_reconnect=False).start()
    try:
        path = vp_socket(d)
        u = User(path)
        u.read_until(5)
        vp.cut()
        time.sleep(0.5)
        assert os.path.exists(path) and not u.eof
        assert u.wait_eof(5)
        wait_for(lambda: not os.path.exists(path), 5, "socket removal")
        # the VP comes back: resume refused, new session, new socket
        vp.auto_reconnect = True
        wait_for(lambda: ("rejected",) in vp.log, 10, "MASTER_REJ")
        wait_for(lambda: vp.session.established, 10, "new session")
        assert "MASTER_RES refused: unknown magic" in d.logtext()
        wait_for(lambda: d.sockets(), 5, "new socket")
    finally:
        vp.stop()
        d.stop()


def test_zombie_zero_frees_at_once(tmp_path):
    d = Daemon(tmp_path, "-Z", "0")
    vp = StubVP(d.port, auto_reconnect=False).start()
    try:
        u = User(vp_socket(d))
        vp.cut()
        assert u.wait_eof(5)
    finally:
        vp.stop()
        d.stop()


@pytest.mark.parametrize("allow,mode", [(["--allow", "group"], 0o770), (["--allow", "other"], 0o707),
                                        (["-O", "allowgroup", "-O", "allowother"], 0o777)])
def test_socket_modes(tmp_path, allow, mode):
    d = Daemon(tmp_path, *allow)
    vp = StubVP(d.port).start()
    try:
        path = vp_socket(d)
        User(path).close()  # listening: the mode is final (bind, chmod, listen)
        assert stat.S_IMODE(os.stat(path).st_mode) == mode
    finally:
        vp.stop()
        d.stop()


def test_stale_sockets_cleaned_pidfile_and_own_sockets_removed(tmp_path):
    sockdir = tmp_path / "sockets"
    sockdir.mkdir()
    stale = sockdir / "old-127.0.0.1:1"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(stale))
    s.close()  # bound, never listening: stale
    keep = sockdir / "notes.txt"
    keep.write_text("not a socket")
    live = socket.socket(socket.AF_UNIX)  # another controller's live VP socket
    live.bind(str(sockdir / "live-127.0.0.1:2"))
    live.listen(1)
    live.setblocking(False)
    pid = tmp_path / "r.pid"
    d = Daemon(tmp_path, "-e", str(pid))
    try:
        assert not stale.exists() and keep.exists()
        assert (sockdir / "live-127.0.0.1:2").exists()
        with pytest.raises(BlockingIOError):
            live.accept()  # not even probed with a connect
        live.close()
        os.unlink(sockdir / "live-127.0.0.1:2")
        assert int(pid.read_text()) == d.proc.pid
        vp = StubVP(d.port).start()
        vp_socket(d)
    finally:
        assert d.stop() in (0, -15)  # twistd re-raises SIGTERM after a clean stop
        vp.stop()
    assert os.listdir(sockdir) == ["notes.txt"]
    assert not pid.exists()


def test_ipv6_listener_and_names(tmp_path):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        port = free_port("::1")
    except OSError:
        pytest.skip("no ::1")
    d = Daemon(tmp_path, "-P", f"[::1]:{port}")
    vp = StubVP(port, host="::1", name=b"v6vp").start()
    try:
        path = vp_socket(d, "v6vp-")
        assert os.path.basename(path) == f"v6vp-::1.{vp.sock.getsockname()[1]}"
    finally:
        vp.stop()
        d.stop()


def test_wildcard_listener_names_ipv4_peers_in_ipv4_form(tmp_path):
    port = free_port()
    d = Daemon(tmp_path, "-P", str(port))
    vp = StubVP(port, name=b"w").start()
    try:
        assert os.path.basename(vp_socket(d, "w-")) == f"w-127.0.0.1:{vp.sock.getsockname()[1]}"
    finally:
        vp.stop()
        d.stop()


def test_master_new_with_held_magic_replaces(daemon):
    vp = StubVP(daemon.port, magic=b"samemagc", auto_reconnect=False).start()
    try:
        u = User(vp_socket(daemon))
        u.read_until(5)
        vp2 = StubVP(daemon.port, magic=b"samemagc", name=b"stub2").start()
        try:
            assert u.wait_eof(5)
            vp_socket(daemon, "stub2-")
            wait_for(lambda: len(daemon.sockets()) == 1, 5, "old socket removed")
            assert "replaced by a MASTER_NEW with the same magic" in daemon.logtext()
        finally:
            vp2.stop()
    finally:
        vp.stop()


# ---- abuse: each offender closed with one log line, bystanders untouched ----

def _raw(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    return s


def _closed(s, timeout=5.0) -> bytes:
    s.settimeout(timeout)
    data = b""
    while True:
        d = s.recv(4096)
        if not d:
            return data
        data += d


ABUSE = [
    ("garbage", b"GET / HTTP/1.1\r\n" + b"x" * 30000, "first frame has seq 1195725856"),
    ("zero length", struct.pack(">IIH", 0, 0, 0), "zero-length frame"),
    ("unknown type", encode_frame(0, 0, b"\x2a"), "unknown control message type 42"),
    ("data first", encode_frame(0, 1, b"hello"), "first frame has seq 0 channel 1"),
    ("slash name", encode_frame(0, 0, b"\x00\x01m\x04a/b\x00"), "bad monitor name 'a/b'"),
    ("dotdot name", encode_frame(0, 0, b"\x00\x01m\x03..\x00"), "bad monitor name '..'"),
    ("control char", encode_frame(0, 0, b"\x00\x01m\x04a\x1bb\x00"), "bad monitor name 'a\\x1bb'"),
    ("unknown magic", encode_frame(0, 0, MasterRes(b"nosuchmg", 0, 0, 0).encode()),
     "MASTER_RES refused: unknown magic"),
    ("slowloris", b"", "no MASTER_NEW/MASTER_RES within 1.5 s"),
    ("bad seq after new", encode_frame(0, 0, MasterNew(b"abuser01", b"ab").encode())
     + encode_frame(9, 1, b"x"), "frame seq 9, expected 0"),
]


@pytest.mark.parametrize("what,payload,logline", ABUSE, ids=[a[0] for a in ABUSE])
def test_abuse_closes_only_the_offender(daemon, what, payload, logline):
    vp = StubVP(daemon.port).start()
    try:
        u = User(vp_socket(daemon))
        u.read_until(5)
        before = daemon.logtext().count("\n")
        s = _raw(daemon.port)
        if payload:
            s.sendall(payload)
        reply = _closed(s)
        s.close()
        if what == "unknown magic":
            assert decode_control(FrameDecoder().feed(reply)[-1].payload) == MasterRej()
        wait_for(lambda: logline in daemon.logtext(), 5, f"log line {logline!r}")
        new = daemon.logtext().splitlines()[before:]
        closes = [ln for ln in new if ("VP connection" in ln and "closed:" in ln) or " away from " in ln]
        assert len(closes) == 1, new
        assert "Traceback" not in daemon.logtext()
        # the bystander VP and its user are fine
        u.send(b"still here\n")
        assert u.read_until(16) == b"MORE\nstill here\n"
        assert daemon.proc.poll() is None
    finally:
        vp.stop()


def test_master_id_is_peer_address(daemon):
    s = _raw(daemon.port)
    try:
        s.sendall(encode_frame(0, 0, MasterNew(b"abcdefgh", None).encode()))
        dec = FrameDecoder()
        frames = []
        while not frames:
            frames = dec.feed(s.recv(4096))
        assert decode_control(frames[0].payload) == MasterId(f"127.0.0.1:{s.getsockname()[1]}".encode())
        wait_for(lambda: f"127.0.0.1:{s.getsockname()[1]}" in daemon.sockets(), 5, "unnamed socket")
    finally:
        s.close()


def test_port_in_use_is_one_line_error(tmp_path):
    import subprocess
    import sys
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        r = subprocess.run([sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
                            "--pidfile=", "-n", "ixp-remoted", "-P", f"127.0.0.1:{busy.getsockname()[1]}",
                            "-U", str(tmp_path)], capture_output=True, text=True, timeout=30)
    finally:
        busy.close()
    out = r.stdout + r.stderr
    assert r.returncode != 0 and "Traceback" not in out
    assert "ixp-remoted: cannot listen on 127.0.0.1 port " in out
    assert "Address already in use" in out


def test_user_who_does_not_read_is_dropped_alone(tmp_path):
    d = Daemon(tmp_path, env={"IXP_REMOTED_USER_BACKLOG": "1000000"})
    vp = StubVP(d.port).start()
    try:
        path = vp_socket(d)
        lazy, busy = User(path), User(path)
        busy.read_until(5)
        blob = b"y" * 4_000_000  # echoed back to a user who never reads
        try:
            lazy.send(blob)
        except (BrokenPipeError, ConnectionResetError):
            pass  # dropped while still sending
        wait_for(lambda: "is not reading" in d.logtext(), 15, "the drop")
        try:
            assert lazy.wait_eof(10)
        except ConnectionResetError:
            pass  # aborted: a reset is the expected end too
        busy.send(b"still served\n")
        assert busy.read_until(18) == b"MORE\nstill served\n"
        assert d.proc.poll() is None
        wait_for(lambda: len(vp.session.channels) == 1, 5, "the lazy channel to end")
    finally:
        vp.stop()
        d.stop()
