"""ixp-vp over TLS: CA verification of the controller, a client
certificate, and refusal of a wrong CA.

The TLS server is a small terminator (Python's ssl module, requiring a
client certificate from the test CA) in front of our plain-TCP controller,
so this tests the VP's TLS client on its own."""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import requires_root
from tests.pipeline_helpers import ATTACH, Procs, free_port, records, run_attach, shape, vp_socket, wait_port

pytestmark = [requires_root, pytest.mark.timeout(90)]


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(cn="test CA"):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def issue(ca_key, ca_cert, dns: str):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(dns)).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return key, cert


def write_pem(path, cert=None, key=None):
    data = b""
    if cert is not None:
        data += cert.public_bytes(serialization.Encoding.PEM)
    if key is not None:
        data += key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    path.write_bytes(data)
    return str(path)


@pytest.fixture
def pki(tmp_path):
    ca_key, ca = make_ca()
    skey, scert = issue(ca_key, ca, "localhost")
    ckey, ccert = issue(ca_key, ca, "tlsvp")
    other_key, other_ca = make_ca("other CA")
    return dict(
        ca=write_pem(tmp_path / "ca.pem", ca),
        other_ca=write_pem(tmp_path / "other.pem", other_ca),
        scert=write_pem(tmp_path / "server.pem", scert), skey=write_pem(tmp_path / "server.key", key=skey),
        ccert=write_pem(tmp_path / "client.pem", ccert), ckey=write_pem(tmp_path / "client.key", key=ckey),
    )


class TLSTerminator:
    """Accepts TLS (client certificate required), forwards plaintext to ``target``."""

    def __init__(self, pki, target_port):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(pki["scert"], pki["skey"])
        self.ctx.load_verify_locations(pki["ca"])
        self.ctx.verify_mode = ssl.CERT_REQUIRED
        self.target = target_port
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.port = self.sock.getsockname()[1]
        self.handshakes = 0
        self.failures = 0
        self.peer_names = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                raw, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw):
        try:
            tls = self.ctx.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            self.failures += 1
            raw.close()
            return
        self.handshakes += 1
        cert = tls.getpeercert()
        self.peer_names.append(dict(x[0] for x in cert.get("subject", ()))["commonName"])
        up = socket.create_connection(("127.0.0.1", self.target))

        def pipe(a, b):
            try:
                while True:
                    d = a.recv(65536)
                    if not d:
                        break
                    b.sendall(d)
            except OSError:
                pass
            for s in (a, b):
                try:
                    s.close()
                except OSError:
                    pass
        threading.Thread(target=pipe, args=(up, tls), daemon=True).start()
        pipe(tls, up)

    def close(self):
        self.sock.close()


def test_tls_with_client_certificate(tmp_path, pki):
    procs = Procs(tmp_path)
    term = None
    try:
        cport = free_port()
        sockdir = tmp_path / "s"
        sockdir.mkdir()
        procs.our_remoted(cport, sockdir)
        wait_port(cport)
        term = TLSTerminator(pki, cport)
        port = term.port
        # wrong CA: the controller's certificate is refused, nothing registers
        bad = procs.start("ixp-vp-bad", vp_argv(port, "tlsvp", "--tls-ca", pki["other_ca"],
                                                "--tls-cert", pki["ccert"], "--tls-key", pki["ckey"]))
        time.sleep(3)
        assert list(sockdir.iterdir()) == []
        procs.stop(bad)
        log = procs.log("ixp-vp-bad")
        assert "Traceback" not in log and "connection to the controller lost" in log
        # right CA and a client certificate naming the monitor: registers and runs
        procs.start("ixp-vp", vp_argv(port, "tlsvp", "--tls-ca", pki["ca"],
                                      "--tls-cert", pki["ccert"], "--tls-key", pki["ckey"]))
        sock = vp_socket(sockdir, "tlsvp", procs=procs)
        res = run_attach(ATTACH + ["-R", str(sock), "-i", "-", "-o", "-"], "ping -c 1 127.0.0.1\n")
        assert res.returncode == 0, (res.stderr, procs.log("ixp-vp"))
        assert shape(records(res.stdout)) == ["list", "cycle-start", "ping", "cycle-stop"]
        assert term.failures >= 1 and "tlsvp" in term.peer_names
    finally:
        procs.stop_all()
        if term is not None:
            term.close()


def vp_argv(port, monitor, *extra):
    from tests.pipeline_helpers import TWISTD
    return TWISTD + ["-n", "--pidfile=", "ixp-vp", "-R", f"localhost:{port}", "-M", monitor, *extra]


def test_tls_to_our_controller_with_client_ca(tmp_path, pki):
    """All ours: twistd ixp-remoted -c/-p --client-ca, and ixp-vp with its certificate."""
    from tests.pipeline_helpers import TWISTD
    procs = Procs(tmp_path)
    try:
        port = free_port()
        sockdir = tmp_path / "s"
        sockdir.mkdir()
        procs.start("ixp-remoted", TWISTD + ["-n", "--pidfile=", "ixp-remoted", "-P", f"127.0.0.1:{port}",
                                             "-U", str(sockdir), "-c", pki["scert"], "-p", pki["skey"],
                                             "--client-ca", pki["ca"]])
        wait_port(port)
        procs.start("ixp-vp", vp_argv(port, "tlsvp", "--tls-ca", pki["ca"],
                                      "--tls-cert", pki["ccert"], "--tls-key", pki["ckey"]))
        sock = vp_socket(sockdir, "tlsvp", procs=procs)
        res = run_attach(ATTACH + ["-R", str(sock), "-i", "-", "-o", "-"], "ping -c 1 127.0.0.1\n")
        assert res.returncode == 0, (res.stderr, procs.log("ixp-vp"))
        assert shape(records(res.stdout)) == ["list", "cycle-start", "ping", "cycle-stop"]
        # a VP may not register under a name its certificate does not carry
        procs.start("impostor", vp_argv(port, "othervp", "--tls-ca", pki["ca"],
                                        "--tls-cert", pki["ccert"], "--tls-key", pki["ckey"]))
        time.sleep(3)
        assert not [p for p in sockdir.iterdir() if p.name.startswith("othervp-")]
    finally:
        procs.stop_all()
