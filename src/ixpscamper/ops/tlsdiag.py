"""Naming a TLS / plaintext mismatch between a VP and a controller (sans-IO).

Both ends of the remote protocol may or may not use TLS, and neither
protocol says so on the wire: a mismatch shows up only as bytes the other
side cannot parse.  What each side sees first:

- a TLS record starts ``14..17 03 0x`` (content type, then the version
  major 3): a handshake (``16 03``), an alert (``15 03``);
- the first frame of the remote protocol (MASTER_NEW from the VP,
  MASTER_ID / MASTER_OK / MASTER_REJ from the controller) has sequence
  number 0 and channel 0: it starts with eight zero bytes.

So a plaintext VP that reads ``15 03`` or ``16 03`` is talking to a TLS
controller, and a TLS controller that reads ``00 00 00 00`` where a
ClientHello (``16 03``) belongs has a plaintext VP.  A TLS VP whose
handshake meets EOF or bytes that are not a record is talking to a
plaintext controller (which read the ClientHello as a frame header with a
non-zero sequence number, and closed).
"""

from __future__ import annotations

from twisted.protocols.policies import ProtocolWrapper, WrappingFactory

__all__ = ["looks_like_tls", "looks_like_frame", "classify_tls_failure", "first_bytes_mismatch",
           "FirstBytesFactory", "PLAINTEXT_CONTROLLER_HINT", "TLS_CONTROLLER_HINT",
           "PLAINTEXT_VP_HINT", "TLS_ON_PLAINTEXT_HINT"]

PLAINTEXT_CONTROLLER_HINT = ("the controller probably does not use TLS (sc_remoted, or ixp-remoted "
                             "without --tls-cert): give this VP --no-tls, or the controller a "
                             "certificate")
TLS_CONTROLLER_HINT = ("the controller expects TLS (ixp-remoted --tls-cert): drop --no-tls "
                       "(and give --tls-ca if its CA is not in the system's trust store)")
PLAINTEXT_VP_HINT = ("a plaintext VP on the TLS port (scamper -O notls-remote, a scamper built "
                     "without OpenSSL, or ixp-vp --no-tls): the VP must use TLS, or connect to "
                     "a port without --tls-cert")


def looks_like_tls(data: bytes) -> bool:
    """True if ``data`` (at least 2 bytes) starts like a TLS record."""
    return (len(data) >= 2 and 0x14 <= data[0] <= 0x17 and data[1] == 0x03
            and (len(data) < 3 or data[2] <= 0x04))


def looks_like_frame(data: bytes) -> bool:
    """True if ``data`` starts like the first remote-protocol frame (seq 0, channel 0)."""
    n = min(len(data), 8)
    return n >= 1 and data[:n] == b"\x00" * n


def first_bytes_mismatch(data: bytes, expect_tls: bool) -> str | None:
    """The mismatch the first bytes of a connection show, or None.

    ``expect_tls``: this end uses TLS.  For a plaintext VP, ``data`` is what
    came back after MASTER_NEW; for a TLS controller, what came first.
    """
    if expect_tls:
        if looks_like_frame(data):
            return PLAINTEXT_VP_HINT
        return None
    if looks_like_tls(data):
        what = "a TLS alert" if data[0] == 0x15 else "TLS" if data[0] != 0x16 else "a TLS handshake"
        return f"the controller answered MASTER_NEW with {what} ({data[:3].hex(' ')} ...): " \
               + TLS_CONTROLLER_HINT
    return None


_NOT_TLS = ("wrong version number", "packet length too long", "record layer failure",
            "unknown protocol", "record_layer_failure", "http request", "wrong_version_number",
            "bad record", "record length", "unexpected record")
_EOF = ("unexpected eof", "connection was closed cleanly", "connection done",
        "connection to the other side was lost", "connection lost", "eof", "reset by peer")


def classify_tls_failure(message: str) -> tuple[str, str]:
    """(kind, one-line explanation) for a TLS VP's handshake that failed with ``message``.

    ``kind`` is ``tls_mismatch`` when the peer is probably not speaking TLS,
    else ``tls``.
    """
    m = message.lower()
    if any(s in m for s in _NOT_TLS):
        return "tls_mismatch", f"the controller's answer to the TLS ClientHello is not TLS " \
                               f"({message.strip()}): {PLAINTEXT_CONTROLLER_HINT}"
    if "certificate verify failed" in m or "verify" in m and "certificate" in m:
        return "tls", f"the controller's certificate did not verify ({message.strip()}): check " \
                      "--tls-ca and the host name in --remote"
    if "alert" in m:
        return "tls", f"the controller refused the TLS handshake ({message.strip()}): check this " \
                      "VP's --tls-cert/--tls-key (with --client-ca the certificate must name the " \
                      "monitor)"
    if any(s in m for s in _EOF):
        return "tls_mismatch", "the controller closed the connection during the TLS handshake: " \
                               + PLAINTEXT_CONTROLLER_HINT
    return "tls", f"TLS handshake with the controller failed: {message.strip()}"


# -- for a listener: look at the first bytes before TLS (or the frame decoder) does --------

TLS_ON_PLAINTEXT_HINT = ("a TLS VP on the plaintext port (ixp-vp without --no-tls, or scamper "
                         "with TLS): give the controller --tls-cert/--tls-key, or the VP --no-tls "
                         "(scamper: -O notls-remote)")


class _Sniffer(ProtocolWrapper):
    _seen = False

    def dataReceived(self, data: bytes) -> None:  # noqa: N802
        if not self._seen:
            self._seen = True
            f: FirstBytesFactory = self.factory
            hint = None
            if f.expect_tls and looks_like_frame(data):
                hint = PLAINTEXT_VP_HINT
                if f.alert:
                    # The TLS layer would close without a word: answer first
                    # (its close then flushes it), so the peer can tell why.
                    self.transport.write(f.alert)
            elif not f.expect_tls and looks_like_tls(data):
                hint = TLS_ON_PLAINTEXT_HINT
            if hint is not None:
                peer = self.transport.getPeer()
                f.report(f"{getattr(peer, 'host', '?')}:{getattr(peer, 'port', '?')}", hint)
                if f.close:
                    self.transport.abortConnection()
                    return
        super().dataReceived(data)


class FirstBytesFactory(WrappingFactory):
    """Wraps a listener's factory; names a TLS / plaintext mismatch from the first bytes.

    For ixp-remoted: ``FirstBytesFactory(TLSMemoryBIOFactory(...), expect_tls=True,
    report=lambda peer, hint: log.info("VP connection {peer} refused: {hint}", ...))``
    on the TLS port (a plaintext MASTER_NEW starts ``00 00 00 00``, a
    ClientHello ``16 03``), ``expect_tls=False`` around the plaintext
    factory (a ClientHello read as a frame header).  ``close``: drop such a
    connection at once (else the wrapped protocol sees the bytes as well
    and fails in its own way).  ``alert``: bytes written back to a plaintext
    peer on the TLS port before anything else (ixp-remoted sends a TLS
    alert record, so that a VP can say "the controller expects TLS").
    """

    protocol = _Sniffer
    noisy = False

    def __init__(self, wrapped, expect_tls: bool, report, close: bool = True,
                 alert: bytes = b"") -> None:
        super().__init__(wrapped)
        self.expect_tls = expect_tls
        self.report = report
        self.close = close
        self.alert = alert
