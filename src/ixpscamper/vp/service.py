"""The VP daemon's service tree (``twistd ixp-vp``).

::

    VPService (MultiService)
      +- ClientService  -> controller (TCP or TLS), RemoteProtocol / RemoteVP
      +- StreamServerEndpointService  (optional --unix / --control-port)
"""

from __future__ import annotations

import ipaddress
import os
import socket
import stat

import attrs
from twisted.application import internet, service
from twisted.internet import endpoints, ssl
from twisted.logger import Logger

from ixpscamper.vp.control import ControlFactory
from ixpscamper.vp.remote import RemoteFactory, RemoteVP, retry_policy
from ixpscamper.vp.source import Backend

__all__ = ["VPConfig", "VPService", "split_hostport", "remote_endpoint"]

log = Logger()


class ConfigError(ValueError):
    """A bad setting; the message names it."""


@attrs.frozen
class VPConfig:
    """Settings of one VP daemon."""
    remote: str | None = None
    monitor: str | None = None
    tls: bool = True
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    dialect: str = "current"
    pps: int = 20
    window: int = 0
    unix: str | None = None
    unix_mode: int = 0o700
    control_port: str | None = None
    hostname: str | None = None
    retry_first: float = 1.0
    retry_cap: float = 60.0


def split_hostport(text: str, default_host: str | None = None) -> tuple[str, int]:
    """``host:port``, ``[v6]:port``, or (with a default host) ``port``."""
    host: str | None
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            raise ConfigError(f"{text!r}: expected [ADDRESS]:PORT")
    elif ":" in text:
        host, _, port = text.rpartition(":")
    else:
        host, port = default_host, text
    if not host:
        raise ConfigError(f"{text!r}: expected HOST:PORT")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{text!r}: invalid port")
    return host, int(port)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def remote_endpoint(reactor, cfg: VPConfig):
    """The client endpoint to the controller (TLS unless ``tls`` is off)."""
    host, port = split_hostport(cfg.remote or "")
    tcp = endpoints.HostnameEndpoint(reactor, host, port, timeout=30)
    if not cfg.tls:
        return tcp
    if cfg.tls_ca:
        try:
            with open(cfg.tls_ca, "rb") as f:
                trust = ssl.Certificate.loadPEM(f.read())
        except (OSError, ValueError) as e:
            raise ConfigError(f"--tls-ca {cfg.tls_ca}: {getattr(e, 'strerror', None) or e}") from None
    else:
        trust = ssl.platformTrust()
    client_cert = None
    if cfg.tls_cert or cfg.tls_key:
        if not (cfg.tls_cert and cfg.tls_key):
            raise ConfigError("--tls-cert and --tls-key go together")
        try:
            with open(cfg.tls_cert, "rb") as f:
                cert_pem = f.read()
            with open(cfg.tls_key, "rb") as f:
                key_pem = f.read()
            client_cert = ssl.PrivateCertificate.loadPEM(cert_pem + b"\n" + key_pem)
        except (OSError, ValueError, Exception) as e:
            raise ConfigError(f"client certificate: {getattr(e, 'strerror', None) or e}") from None
    opts = ssl.optionsForClientTLS(
        host, trustRoot=trust, clientCertificate=client_cert,
        extraCertificateOptions={"raiseMinimumTo": ssl.TLSVersion.TLSv1_2})
    return endpoints.wrapClientTLS(opts, tcp)


class VPService(service.MultiService):
    """A VP: the remote link (if configured) and the local control socket(s)."""

    def __init__(self, reactor, cfg: VPConfig, backend: Backend) -> None:
        super().__init__()
        self.reactor = reactor
        self.cfg = cfg
        self.backend = backend
        self.remote: RemoteVP | None = None
        self.client_service: internet.ClientService | None = None
        self.control_factories: list[ControlFactory] = []
        if not (cfg.remote or cfg.unix or cfg.control_port):
            raise ConfigError("nothing to do: give --remote, --unix or --control-port")
        if cfg.remote:
            self.remote = RemoteVP(reactor, backend, monitor=cfg.monitor, dialect=cfg.dialect,
                                   hostname=cfg.hostname)
            base = retry_policy(cfg.retry_first, cfg.retry_cap)
            vp = self.remote

            def policy(attempt: int) -> float:
                # connections that never got a session count as failures too,
                # so a controller that accepts and drops us is not hammered
                return base(attempt + vp.unestablished_failures)

            self.client_service = internet.ClientService(
                remote_endpoint(reactor, cfg), RemoteFactory(self.remote),
                retryPolicy=policy, clock=reactor)
            self.client_service.setServiceParent(self)
        if cfg.unix:
            _clear_stale_socket(cfg.unix)
            f = ControlFactory(reactor, backend, path=cfg.unix, monitor=cfg.monitor,
                               dialect=cfg.dialect, hostname=cfg.hostname, pps=cfg.pps,
                               window=cfg.window)
            ep = endpoints.UNIXServerEndpoint(reactor, cfg.unix, mode=cfg.unix_mode)
            internet.StreamServerEndpointService(ep, f).setServiceParent(self)
            self.control_factories.append(f)
        if cfg.control_port:
            host, port = split_hostport(cfg.control_port, default_host="127.0.0.1")
            f = ControlFactory(reactor, backend, monitor=cfg.monitor, dialect=cfg.dialect,
                               hostname=cfg.hostname, pps=cfg.pps, window=cfg.window)
            if ":" in host:
                ep = endpoints.TCP6ServerEndpoint(reactor, port, interface=host)
            else:
                ep = endpoints.TCP4ServerEndpoint(reactor, port, interface=host)
            internet.StreamServerEndpointService(ep, f).setServiceParent(self)
            self.control_factories.append(f)

    def startService(self) -> None:
        where = []
        if self.cfg.remote:
            where.append(f"controller {self.cfg.remote} ({'TLS' if self.cfg.tls else 'no TLS'})")
        if self.cfg.unix:
            where.append(f"control socket {self.cfg.unix}")
        if self.cfg.control_port:
            where.append(f"control port {self.cfg.control_port}")
        log.info("ixp-vp {monitor} starting: {where}; pps {pps}, window {window}, dialect {d}",
                 monitor=self.cfg.monitor or "(no monitor name)", where=", ".join(where),
                 pps=self.cfg.pps, window=self.cfg.window, d=self.cfg.dialect)
        super().startService()

    def stopService(self):
        if self.remote is not None:
            self.remote.stop()
        for f in self.control_factories:
            f.stop()
        close = getattr(self.backend, "close", None)
        if close is not None:
            try:
                close()
            except Exception:
                log.failure("closing the prober failed")
        d = super().stopService()
        if self.cfg.unix:
            def cleanup(r):
                _clear_stale_socket(self.cfg.unix)
                return r
            if d is not None:
                d.addBoth(cleanup)
        return d


def _clear_stale_socket(path: str) -> None:
    """Remove a socket file left by a previous run (never any other kind of file)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as e:
        raise ConfigError(f"{path}: {e.strerror}") from None
    if not stat.S_ISSOCK(st.st_mode):
        raise ConfigError(f"{path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)  # nobody listens: stale
    else:
        raise ConfigError(f"{path} is in use by another process")
    finally:
        probe.close()
