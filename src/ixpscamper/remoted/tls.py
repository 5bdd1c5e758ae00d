"""TLS for the controller, like ``sc_remoted -c cert -p key [-C ca]``.

TLS starts at the first byte (no STARTTLS).  The certificate and key are
re-read on `ServerTLS.reload` (SIGHUP); connections already up keep their
context.  With a client CA, a VP must present a certificate issued by it,
and the daemon checks that the certificate names the monitor name the VP
claims (`certificate_names`).

A refused handshake is logged by the daemon in one line naming the peer and
`handshake_failure` (the certificate verification error OpenSSL met -- no
certificate, unknown CA, expired, ... -- recorded per connection by our
verify callback, else OpenSSL's own reason, with a hint for plaintext).
"""

from __future__ import annotations

import re
import weakref
from typing import Optional

import attrs
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


@attrs.define
class PeerTLS:
    """Per-connection TLS notes (see `ServerTLS.notes`)."""

    verify_error: Optional[str] = None   # the first certificate verification failure


def _verify_error_string(errnum: int) -> str:
    try:
        from OpenSSL._util import ffi, lib  # the OpenSSL text for X509_V_ERR_*
        return ffi.string(lib.X509_verify_cert_error_string(errnum)).decode("ascii", "replace")
    except Exception:  # noqa: BLE001 -- private API; fall back to the number
        return f"certificate verify error {errnum}"


def _verify_note(cert, errnum: int) -> str:
    try:
        cn = cert.get_subject().CN
    except Exception:  # noqa: BLE001 -- only decoration for the log line
        cn = None
    who = f" (certificate '{cn}')" if cn else ""
    return f"client certificate refused: {_verify_error_string(errnum)}{who}"


# OpenSSL's reasons when the first bytes are not a TLS record at all
_NOT_TLS = ("wrong version number", "http request", "https proxy request", "unknown protocol",
            "packet length too long", "record layer failure")


def handshake_failure(reason, notes: Optional[PeerTLS] = None) -> str:
    """One line: why a server-side TLS handshake failed.

    ``reason`` is the exception (or Failure) the connection ended with,
    ``notes`` what our verify callback noted for it (`ServerTLS.notes`).
    """
    exc = getattr(reason, "value", reason)
    if notes is not None and notes.verify_error:
        return notes.verify_error
    if isinstance(exc, SSL.Error):
        parts = []
        for item in (exc.args[0] if exc.args and isinstance(exc.args[0], list) else []):
            if isinstance(item, tuple) and item and item[-1]:
                parts.append(str(item[-1]))
        text = "; ".join(parts) or str(exc) or type(exc).__name__
        if any(p in text.lower() for p in _NOT_TLS):
            return f"not a TLS client hello ({text}; plaintext on the TLS port?)"
        return text
    text = exc.getErrorMessage() if hasattr(exc, "getErrorMessage") else str(exc)
    return f"connection ended during the TLS handshake ({text or type(exc).__name__})"


@implementer(IOpenSSLServerConnectionCreator)
class ServerTLS:
    """Server-side TLS connection creator whose material can be reloaded."""

    def __init__(self, cert_path: str, key_path: str, client_ca: Optional[str] = None) -> None:
        self.cert_path = cert_path
        self.key_path = key_path
        self.client_ca = client_ca
        # TLS protocol -> its notes.  Twisted makes the protocol the
        # SSL.Connection's app data, which is how the verify callback finds them.
        self._notes: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._context: SSL.Context = self._make_context()

    def _make_context(self) -> SSL.Context:
        ctx = build_options(self.cert_path, self.key_path, self.client_ca).getContext()
        if self.client_ca:
            ctx.set_verify(ctx.get_verify_mode(), self._verify)
        return ctx

    def _verify(self, conn: SSL.Connection, cert, errnum: int, depth: int, ok: int) -> bool:
        """Verify callback: keep OpenSSL's verdict, and note why it said no."""
        if not ok:
            st = self._notes.get(conn.get_app_data())
            if st is not None and st.verify_error is None:
                st.verify_error = _verify_note(cert, errnum)
        return bool(ok)

    def notes(self, tls_protocol) -> Optional[PeerTLS]:
        """What the verify callback noted for this connection (None if unknown)."""
        try:
            return self._notes.get(tls_protocol)
        except TypeError:  # not weak-referenceable: not one of ours
            return None

    def reload(self) -> None:
        """Re-read the files; on failure the old context stays in use."""
        self._context = self._make_context()

    def serverConnectionForTLS(self, tlsProtocol) -> SSL.Connection:
        self._notes[tlsProtocol] = PeerTLS()
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
