"""TLS for the controller, like ``sc_remoted -c cert -p key [-C ca]``.

TLS starts at the first byte (no STARTTLS).  The certificate and key are
re-read on `ServerTLS.reload` (SIGHUP); connections already up keep their
context.  With a client CA, a VP must present a certificate issued by it,
and the daemon checks that the certificate names the monitor name the VP
claims (`certificate_names`).
"""

from __future__ import annotations

import re
from typing import Optional

from cryptography import x509
from cryptography.x509.oid import NameOID
from OpenSSL import SSL, crypto
from twisted.internet import ssl
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator
from zope.interface import implementer

_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


class TLSConfigError(Exception):
    """A certificate, key or CA file could not be used (one-line message)."""


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise TLSConfigError(f"cannot read {what} {path}: {e.strerror}") from None


def _certs(path: str, what: str) -> list[ssl.Certificate]:
    blocks = _PEM_CERT.findall(_read(path, what))
    if not blocks:
        raise TLSConfigError(f"{what} {path}: no PEM certificate found")
    try:
        return [ssl.Certificate.loadPEM(b) for b in blocks]
    except Exception as e:
        raise TLSConfigError(f"{what} {path}: {e}") from None


def build_options(cert_path: str, key_path: str,
                  ca_path: Optional[str] = None) -> ssl.CertificateOptions:
    """Load the files and build CertificateOptions (TLS 1.2 minimum, like
    sc_remoted)."""
    chain = _certs(cert_path, "certificate")
    try:
        key = ssl.KeyPair.load(_read(key_path, "key"), crypto.FILETYPE_PEM)
    except TLSConfigError:
        raise
    except Exception as e:
        raise TLSConfigError(f"key {key_path}: {e}") from None
    kw = {}
    if ca_path:
        kw = dict(verify=True, caCerts=[c.original for c in _certs(ca_path, "client CA")],
                  requireCertificate=True)
    try:
        opts = ssl.CertificateOptions(
            privateKey=key.original, certificate=chain[0].original,
            extraCertChain=[c.original for c in chain[1:]],
            raiseMinimumTo=ssl.TLSVersion.TLSv1_2, **kw)
        opts.getContext()  # fails now if key and certificate do not match
    except Exception as e:
        raise TLSConfigError(f"certificate {cert_path} / key {key_path}: {e}") from None
    return opts


@implementer(IOpenSSLServerConnectionCreator)
class ServerTLS:
    """Server-side TLS connection creator whose material can be reloaded."""

    def __init__(self, cert_path: str, key_path: str, client_ca: Optional[str] = None) -> None:
        self.cert_path = cert_path
        self.key_path = key_path
        self.client_ca = client_ca
        self._context: SSL.Context = build_options(cert_path, key_path, client_ca).getContext()

    def reload(self) -> None:
        """Re-read the files; on failure the old context stays in use."""
        self._context = build_options(self.cert_path, self.key_path, self.client_ca).getContext()

    def serverConnectionForTLS(self, tlsProtocol) -> SSL.Connection:
        return SSL.Connection(self._context, None)


def certificate_names(cert) -> set[str]:
    """Lower-cased DNS names of a certificate (SAN dNSNames, else the CN)."""
    c = cert.to_cryptography() if hasattr(cert, "to_cryptography") else cert
    try:
        san = c.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = {n.lower() for n in san.value.get_values_for_type(x509.DNSName)}
        if names:
            return names
    except x509.ExtensionNotFound:
        pass
    return {a.value.lower() for a in c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
            if isinstance(a.value, str)}
