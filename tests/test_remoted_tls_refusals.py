"""``twistd ixp-remoted`` with TLS: what it refuses, and that each refusal is
one log line naming the peer and the reason.  Certificate helpers and the
``pki`` fixture come from tests/test_remoted_tls.py."""

from __future__ import annotations

import datetime
import os
import socket
import ssl
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ixpscamper.remote.frames import MasterNew, encode_frame
from remotestub import StubVP, User, wait_for
from test_remoted_tls import _name, client_ctx, pki, tls_daemon  # noqa: F401 -- pki is a fixture


def make_expired(pki_dir, cn: str) -> None:
    """``cn``.pem/.key issued by the test CA, valid until yesterday."""
    ca_cert = x509.load_pem_x509_certificate((pki_dir / "ca.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((pki_dir / "ca.key").read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=3))
            .not_valid_after(now - datetime.timedelta(days=1))
            .sign(ca_key, hashes.SHA256()))
    (pki_dir / f"{cn}-expired.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (pki_dir / f"{cn}-expired.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


def _try_tls(port: int, ctx) -> int:
    """Handshake and send a MASTER_NEW; return our local port.  The server's
    verdict on a client certificate may come only at the first read (TLS 1.3)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    local = s.getsockname()[1]
    try:
        tls = ctx.wrap_socket(s, server_hostname="localhost")
        tls.sendall(encode_frame(0, 0, MasterNew(b"refused!", b"mon1").encode()))
        tls.settimeout(5)
        while tls.recv(4096):
            pass
    except (ssl.SSLError, OSError):
        pass
    finally:
        s.close()
    return local


def _try_plain(port: int) -> int:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    local = s.getsockname()[1]
    try:
        s.sendall(encode_frame(0, 0, MasterNew(b"plainvp!", b"mon1").encode()))
        s.settimeout(5)
        while s.recv(4096):
            pass
    except OSError:
        pass
    finally:
        s.close()
    return local


CASES = [
    ("no certificate", None, "peer did not return a certificate"),
    ("unknown CA", "evil", "client certificate refused: unable to get local issuer certificate"),
    ("expired", "mon1-expired", "client certificate refused: certificate has expired (certificate 'mon1')"),
    ("plaintext", "plain", "plaintext on the TLS port"),
]


@pytest.mark.parametrize("what,cert,why", CASES, ids=[c[0] for c in CASES])
def test_refused_handshake_is_one_log_line_naming_peer_and_reason(tmp_path, pki, what, cert, why):
    make_expired(pki, "mon1")
    d = tls_daemon(tmp_path, pki, True)
    try:
        before = len(d.logtext().splitlines())
        if cert == "plain":
            local = _try_plain(d.port)
        else:
            local = _try_tls(d.port, client_ctx(pki, cert))
        peer = f"127.0.0.1:{local}"
        wait_for(lambda: peer in d.logtext(), 10, f"a log line naming {peer}")
        time.sleep(0.3)  # nothing more should follow
        new = [ln for ln in d.logtext().splitlines()[before:] if peer in ln]
        assert len(new) == 1, new
        assert f"VP connection {peer} refused: TLS handshake failed: " in new[0]
        assert why in new[0], new[0]
        assert d.sockets() == [] and "Traceback" not in d.logtext()
    finally:
        d.stop()


def test_plaintext_refusal_is_logged_without_client_ca_too(tmp_path, pki):
    d = tls_daemon(tmp_path, pki, False)
    try:
        peer = f"127.0.0.1:{_try_plain(d.port)}"
        wait_for(lambda: peer in d.logtext(), 10, "the refusal")
        assert "plaintext on the TLS port" in d.logtext()
    finally:
        d.stop()


def test_good_handshake_logs_no_refusal(tmp_path, pki):
    d = tls_daemon(tmp_path, pki, True)
    vp = StubVP(d.port, name=b"mon1", tls=client_ctx(pki, "mon1"), server_hostname="localhost",
                auto_reconnect=False).start()
    try:
        wait_for(lambda: d.sockets(), 10, "registration")
        vp.stop()
        wait_for(lambda: " away from " in d.logtext(), 10, "the zombie")
        assert "refused" not in d.logtext()
    finally:
        vp.stop()
        d.stop()


def test_master_new_with_held_magic_needs_a_certificate_for_the_old_monitor(tmp_path, pki):
    """Issue: a VP holding monitor B's certificate sent MASTER_NEW with A's
    magic and replaced A.  Now it is refused (one line) and A stays."""
    d = tls_daemon(tmp_path, pki, True)
    a = StubVP(d.port, name=b"mon1", magic=b"samemagc", tls=client_ctx(pki, "mon1"),
               server_hostname="localhost", auto_reconnect=False).start()
    b = None
    try:
        path = os.path.join(d.sockdir, wait_for(lambda: d.sockets(), 10, "A's socket")[0])
        u = User(path)
        assert u.read_until(5) == b"MORE\n"
        aport = a.sock.getsockname()[1]
        b = StubVP(d.port, name=b"mon2", magic=b"samemagc", tls=client_ctx(pki, "mon2"),
                   server_hostname="localhost", auto_reconnect=False).start()
        # (B's socket may be closed by the time we look: take its peer name
        # from the refusal, then check that nothing else names it)
        refusal = wait_for(lambda: [ln for ln in d.logtext().splitlines()
                                    if "MASTER_NEW refused" in ln], 10, "the refusal")
        assert len(refusal) == 1
        bpeer = refusal[0].split("VP connection ", 1)[1].split(" ", 1)[0]
        assert bpeer.startswith("127.0.0.1:") and bpeer != f"127.0.0.1:{aport}"
        time.sleep(0.3)
        lines = [ln for ln in d.logtext().splitlines() if bpeer in ln]
        assert len(lines) == 1, lines
        assert f"its magic belongs to VP mon1-127.0.0.1:{aport}" in lines[0]
        assert "does not match the client certificate (mon2" in lines[0]
        assert "replaced by a MASTER_NEW" not in d.logtext()
        assert d.sockets() == [os.path.basename(path)] and not b.session.established
        u.send(b"A is still here\n")
        assert u.read_until(21) == b"MORE\nA is still here\n" and not u.eof
    finally:
        if b is not None:
            b.stop()
        a.stop()
        d.stop()


def test_master_new_with_held_magic_and_the_same_monitors_certificate_replaces(tmp_path, pki):
    d = tls_daemon(tmp_path, pki, True)
    a = StubVP(d.port, name=b"mon1", magic=b"samemagc", tls=client_ctx(pki, "mon1"),
               server_hostname="localhost", auto_reconnect=False).start()
    b = None
    try:
        wait_for(lambda: d.sockets(), 10, "A's socket")
        b = StubVP(d.port, name=b"mon1", magic=b"samemagc", tls=client_ctx(pki, "mon1"),
                   server_hostname="localhost", auto_reconnect=False).start()
        wait_for(lambda: b.session.established, 10, "B registered")
        assert "replaced by a MASTER_NEW with the same magic" in d.logtext()
        assert d.sockets() == [f"mon1-127.0.0.1:{b.sock.getsockname()[1]}"]
    finally:
        if b is not None:
            b.stop()
        a.stop()
        d.stop()
