"""TLS for ``twistd ixp-remoted`` (``-c cert -p key [--client-ca ca]``), with
certificates generated here and a stub VP (our VPSession) as the TLS client.
The Debian scamper 20211212 is built without OpenSSL, so no real VP here."""

from __future__ import annotations

import datetime
import os
import signal
import socket
import ssl
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ixpscamper.remote.frames import MasterNew, encode_frame
from remotestub import Daemon, StubVP, User, wait_for


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_cert(path, cn, issuer=None, ca=False, san=None):
    """Write ``path``.pem / ``path``.key; returns (cert, key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    isuer_cert, issuer_key = issuer if issuer else (None, key)
    b = (x509.CertificateBuilder().subject_name(_name(cn))
         .issuer_name(isuer_cert.subject if isuer_cert else _name(cn))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(minutes=5))
         .not_valid_after(now + datetime.timedelta(days=1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if san is not None:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in san]), critical=False)
    cert = b.sign(issuer_key, hashes.SHA256())
    with open(f"{path}.pem", "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(f"{path}.key", "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return cert, key


@pytest.fixture
def pki(tmp_path):
    p = tmp_path / "pki"
    p.mkdir()
    ca = make_cert(p / "ca", "test CA", ca=True)
    make_cert(p / "server", "localhost", issuer=ca, san=["localhost"])
    make_cert(p / "mon1", "mon1", issuer=ca)                       # CN only
    make_cert(p / "mon2", "whatever", issuer=ca, san=["mon2", "Mon2.alias"])
    evil = make_cert(p / "evilca", "evil CA", ca=True)
    make_cert(p / "evil", "mon1", issuer=evil)
    return p


def client_ctx(pki, cert=None):
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    if cert:
        ctx.load_cert_chain(str(pki / f"{cert}.pem"), str(pki / f"{cert}.key"))
    return ctx


def tls_daemon(tmp_path, pki, client_ca=False, *extra):
    args = ["-c", str(pki / "server.pem"), "-p", str(pki / "server.key"), *extra]
    if client_ca:
        args += ["--client-ca", str(pki / "ca.pem")]
    return Daemon(tmp_path, *args)


def test_tls_from_first_byte_and_plaintext_refused(tmp_path, pki):
    d = tls_daemon(tmp_path, pki)
    vp = StubVP(d.port, name=b"tlsvp", tls=client_ctx(pki), server_hostname="localhost").start()
    try:
        name = wait_for(lambda: [n for n in d.sockets() if n.startswith("tlsvp-")], 10, "registration")[0]
        assert vp.tls_version in ("TLSv1.2", "TLSv1.3")
        u = User(os.path.join(d.sockdir, name))
        u.send(b"over tls\n")
        assert u.read_until(14) == b"MORE\nover tls\n"
        # a plaintext VP gets nowhere (the server expects a ClientHello)
        s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
        s.sendall(encode_frame(0, 0, MasterNew(b"plainvp!", b"plain").encode()))
        s.settimeout(5)
        try:
            while s.recv(4096):
                pass
        except OSError:
            pass
        s.close()
        time.sleep(0.3)
        assert not [n for n in d.sockets() if n.startswith("plain")]
        assert "Traceback" not in d.logtext()
    finally:
        vp.stop()
        d.stop()


@pytest.mark.parametrize("cert,claim,ok,why", [
    ("mon1", b"mon1", True, None),
    ("mon2", b"mon2", True, None),
    ("mon2", b"mon2.alias", True, None),            # case-insensitive SAN match
    ("mon1", b"mon2", False, "does not match the client certificate (mon1)"),
    ("mon2", b"whatever", False, "does not match"),  # CN ignored when SANs exist
    ("mon1", None, False, "requires a monitor name"),
])
def test_client_certificate_must_name_the_monitor(tmp_path, pki, cert, claim, ok, why):
    d = tls_daemon(tmp_path, pki, True)
    vp = StubVP(d.port, name=claim, tls=client_ctx(pki, cert), server_hostname="localhost",
                auto_reconnect=False).start()
    try:
        if ok:
            wait_for(lambda: d.sockets(), 10, "registration")
            wait_for(lambda: vp.session.established, 10, "MASTER_ID")
        else:
            wait_for(lambda: why in d.logtext(), 10, f"refusal {why!r}")
            time.sleep(0.2)
            assert d.sockets() == [] and not vp.session.established
    finally:
        vp.stop()
        d.stop()


@pytest.mark.parametrize("cert", [None, "evil"])
def test_client_ca_refuses_foreign_or_missing_certificates(tmp_path, pki, cert):
    d = tls_daemon(tmp_path, pki, True)
    try:
        s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
        tls = client_ctx(pki, cert).wrap_socket(s, server_hostname="localhost")
        # TLS 1.3: the server's verdict on our certificate arrives after the
        # handshake, at the first read/write
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            tls.sendall(encode_frame(0, 0, MasterNew(b"certless", b"mon1").encode()))
            tls.settimeout(5)
            if not tls.recv(4096):
                raise ConnectionError("closed")
        tls.close()
        time.sleep(0.2)
        assert d.sockets() == []
        assert d.proc.poll() is None and "Traceback" not in d.logtext()
    finally:
        d.stop()


def test_sighup_reloads_certificate_without_dropping_sessions(tmp_path, pki):
    d = tls_daemon(tmp_path, pki)
    vp = StubVP(d.port, name=b"hup", tls=client_ctx(pki), server_hostname="localhost").start()
    vp2 = None
    try:
        name = wait_for(lambda: d.sockets(), 10, "registration")[0]
        u = User(os.path.join(d.sockdir, name))
        u.read_until(5)
        first = vp.peer_cert["serialNumber"]
        ca = (x509.load_pem_x509_certificate((pki / "ca.pem").read_bytes()),
              serialization.load_pem_private_key((pki / "ca.key").read_bytes(), None))
        make_cert(pki / "server", "localhost", issuer=ca, san=["localhost"])
        d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "SIGHUP: reloaded TLS certificate and key" in d.logtext(), 10, "reload")
        vp2 = StubVP(d.port, name=b"hup2", tls=client_ctx(pki), server_hostname="localhost").start()
        assert vp2.peer_cert["serialNumber"] != first
        u.send(b"still up\n")
        assert u.read_until(14) == b"MORE\nstill up\n"
        assert vp.connects == 1
        # a broken reload keeps the working certificate
        (pki / "server.key").write_text("garbage")
        d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "TLS reload failed" in d.logtext(), 10, "failed reload")
        vp3 = StubVP(d.port, name=b"hup3", tls=client_ctx(pki), server_hostname="localhost").start()
        vp3.stop()
    finally:
        vp.stop()
        if vp2:
            vp2.stop()
        d.stop()


def test_resume_over_tls_with_client_certificate(tmp_path, pki):
    d = tls_daemon(tmp_path, pki, True)
    vp = StubVP(d.port, name=b"mon1", tls=client_ctx(pki, "mon1"), server_hostname="localhost",
                reconnect_delay=1.0).start()
    try:
        name = wait_for(lambda: d.sockets(), 10, "registration")[0]
        u = User(os.path.join(d.sockdir, name))
        u.read_until(5)
        vp.cut()
        wait_for(lambda: not vp.session.established, 5, "the cut")
        u.send(b"across the outage\n")
        assert u.read_until(23, timeout=10) == b"MORE\nacross the outage\n"
        assert any(ev[0] == "established" and ev[2] for ev in vp.log)
    finally:
        vp.stop()
        d.stop()


def test_bad_tls_options_are_one_line_errors(tmp_path, pki):
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
                        "--pidfile=", "-n", "ixp-remoted", "-P", "1", "-U", str(tmp_path),
                        "-c", str(pki / "server.pem"), "-p", str(pki / "mon1.key")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "Traceback" not in r.stdout + r.stderr
    assert "server.pem" in r.stdout + r.stderr
