"""The VP daemon's service tree (``twistd ixp-vp``).

::

    VPService (MultiService)
      +- ClientService  -> controller (TCP, TLS inside), RemoteProtocol / RemoteVP
      +- StreamServerEndpointService  (optional --unix / --control-port)
      +- StreamServerEndpointService  (optional --status: JSON status socket)
      +- StreamServerEndpointService  (optional --metrics: Prometheus over HTTP)

TLS is layered inside the ClientService's factory (not around its
endpoint) so the protocol hears of the handshake's end (to tell a TLS
mismatch from other failures) and so SIGHUP can swap the certificates for
the next connection.
"""

from __future__ import annotations

import ipaddress
import os
from typing import Callable

import attrs
from twisted.application import internet, service
from twisted.internet import defer, endpoints, error, protocol, ssl, task
from twisted.logger import Logger

from ixpscamper.ops.config import HupReloader
from ixpscamper.vp.control import ControlFactory
from ixpscamper.vp.opsstate import CountingBackend, PpsMeter
from ixpscamper.vp.remote import RemoteFactory, RemoteVP, retry_policy
from ixpscamper.vp.source import Backend

__all__ = ["VPConfig", "VPService", "split_hostport", "tls_creator", "ConfigError"]

log = Logger(namespace="ixp-vp.service")

#: settings that SIGHUP applies at once (the rest need a restart)
LIVE_SETTINGS = ("pps", "window", "tls_ca", "tls_cert", "tls_key")


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
    status: str | None = None
    status_mode: int = 0o700
    metrics: str | None = None
    config: str | None = None


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


def tls_creator(cfg: VPConfig):
    """The client TLS connection creator for ``cfg`` (None without TLS); reads the files now."""
    if not cfg.tls or not cfg.remote:
        return None
    host, _port = split_hostport(cfg.remote)
    if cfg.tls_ca:
        try:
            with open(cfg.tls_ca, "rb") as f:
                trust = ssl.Certificate.loadPEM(f.read())
        except (OSError, ValueError) as e:
            raise ConfigError(f"--tls-ca {cfg.tls_ca}: {getattr(e, 'strerror', None) or e}") from None
        except Exception as e:  # OpenSSL.crypto.Error: not a certificate
            raise ConfigError(f"--tls-ca {cfg.tls_ca}: not a PEM certificate ({e})") from None
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
    return ssl.optionsForClientTLS(
        host, trustRoot=trust, clientCertificate=client_cert,
        extraCertificateOptions={"raiseMinimumTo": ssl.TLSVersion.TLSv1_2})


class _LinkFactory(protocol.Factory):
    """Builds the controller link's protocol: TLS around RemoteProtocol, or it alone.

    ``tls`` (a connection creator) is read at each connection, so a reload
    takes effect at the next one and never disturbs the current one.
    """

    noisy = False

    def __init__(self, inner: RemoteFactory, tls) -> None:
        self.inner = inner
        self.tls = tls

    def buildProtocol(self, addr):  # noqa: N802
        if self.tls is None:
            return self.inner.buildProtocol(addr)
        from twisted.protocols.tls import TLSMemoryBIOFactory
        wrapper = TLSMemoryBIOFactory(self.tls, True, self.inner)
        wrapper.noisy = False
        return wrapper.buildProtocol(addr)


class _ObservedEndpoint:
    """A client endpoint that reports why a connection attempt failed."""

    def __init__(self, endpoint, on_failure: Callable[[Exception], None]) -> None:
        self.endpoint = endpoint
        self.on_failure = on_failure

    def connect(self, factory):
        d = self.endpoint.connect(factory)

        def failed(f):
            if not f.check(defer.CancelledError):
                self.on_failure(f.value)
            return f
        return d.addErrback(failed)

    def __repr__(self) -> str:
        return self.name

    name = "the controller"


def _connect_failure_kind(e: Exception) -> str:
    if isinstance(e, error.ConnectionRefusedError):
        return "refused"
    if isinstance(e, (error.TimeoutError, error.TCPTimedOutError)):
        return "timeout"
    if isinstance(e, error.DNSLookupError):
        return "dns"
    return "other"


def _connect_failure_text(e: Exception) -> str:
    if isinstance(e, error.ConnectionRefusedError):
        return "connection refused (nothing listens there)"
    if isinstance(e, (error.TimeoutError, error.TCPTimedOutError)):
        return "no answer (connection timed out)"
    if isinstance(e, error.DNSLookupError):
        return "host name not found"
    text = str(e).strip() or type(e).__name__
    return text.rstrip(".")


class VPService(service.MultiService):
    """A VP: the remote link (if configured), the local control socket(s),
    and the optional status socket and metrics endpoint.

    ``reparse`` (from the tap) re-reads the command line and ``--config``
    for SIGHUP and returns ``(VPConfig, log level or None)``; ``log_setup``
    is the :class:`~ixpscamper.ops.logs.LogSetup` offered to twistd.
    """

    def __init__(self, reactor, cfg: VPConfig, backend: Backend, *, log_setup=None,
                 reparse: Callable[[], tuple[VPConfig, str | None]] | None = None) -> None:
        super().__init__()
        self.reactor = reactor
        self.cfg = cfg
        self.backend = CountingBackend(backend)
        self.log_setup = log_setup
        self.reparse = reparse
        self.remote: RemoteVP | None = None
        self.client_service: internet.ClientService | None = None
        self.link_factory: _LinkFactory | None = None
        self.control_factories: list[ControlFactory] = []
        self.pps_meter = PpsMeter(reactor)
        self._pps_loop: task.LoopingCall | None = None
        self._pending_failure: str | None = None
        self.hup = HupReloader(reactor, self.reload, "ixp-vp")
        if not (cfg.remote or cfg.unix or cfg.control_port):
            raise ConfigError("nothing to do: give --remote, --unix or --control-port")
        if cfg.remote:
            self.remote = RemoteVP(reactor, self.backend, monitor=cfg.monitor, dialect=cfg.dialect,
                                   hostname=cfg.hostname, tls=cfg.tls)
            base = retry_policy(cfg.retry_first, cfg.retry_cap)
            vp = self.remote

            def policy(attempt: int) -> float:
                # connections that never got a session count as failures too,
                # so a controller that accepts and drops us is not hammered
                delay = base(attempt + vp.unestablished_failures)
                self._backing_off(delay)
                return delay

            host, port = split_hostport(cfg.remote)
            tcp = endpoints.HostnameEndpoint(reactor, host, port, timeout=30)
            self.link_factory = _LinkFactory(RemoteFactory(self.remote), tls_creator(cfg))
            observed = _ObservedEndpoint(tcp, self._connect_failed)
            observed.name = f"controller {cfg.remote}"
            self.client_service = internet.ClientService(
                observed, self.link_factory,
                retryPolicy=policy, clock=reactor)
            self.client_service.setServiceParent(self)
        if cfg.unix:
            _clear_stale_socket(cfg.unix)
            f = ControlFactory(reactor, self.backend, path=cfg.unix, monitor=cfg.monitor,
                               dialect=cfg.dialect, hostname=cfg.hostname, pps=cfg.pps,
                               window=cfg.window)
            ep = endpoints.UNIXServerEndpoint(reactor, cfg.unix, mode=cfg.unix_mode)
            _listener(ep, f).setServiceParent(self)
            self.control_factories.append(f)
        if cfg.control_port:
            host, port = split_hostport(cfg.control_port, default_host="127.0.0.1")
            f = ControlFactory(reactor, self.backend, monitor=cfg.monitor, dialect=cfg.dialect,
                               hostname=cfg.hostname, pps=cfg.pps, window=cfg.window)
            if ":" in host:
                ep = endpoints.TCP6ServerEndpoint(reactor, port, interface=host)
            else:
                ep = endpoints.TCP4ServerEndpoint(reactor, port, interface=host)
            _listener(ep, f).setServiceParent(self)
            self.control_factories.append(f)
        if cfg.status:
            from ixpscamper.ops.status import StatusSocketError, status_service
            try:
                status_service(reactor, cfg.status, self.status, daemon="ixp-vp",
                               mode=cfg.status_mode).setServiceParent(self)
            except StatusSocketError as e:
                raise ConfigError(f"--status {e}") from None
        if cfg.metrics:
            from ixpscamper.ops.metrics import (MetricsUnavailable, VPCollector, metrics_service,
                                                new_registry)
            try:
                self.registry = new_registry()
                self.registry.register(VPCollector(self.status))
                metrics_service(reactor, cfg.metrics, self.registry).setServiceParent(self)
            except MetricsUnavailable as e:
                raise ConfigError(str(e)) from None
            except ValueError as e:
                raise ConfigError(f"--metrics {e}") from None

    # -- twistd ------------------------------------------------------------------

    def setServiceParent(self, parent) -> None:  # noqa: N802
        # twistd adds us to its Application just before it starts logging:
        # the moment to offer our log observer (see ixpscamper.ops.logs)
        if self.log_setup is not None:
            from ixpscamper.ops.logs import offer_observer
            offer_observer(parent, self.log_setup.observer)
        super().setServiceParent(parent)

    def privilegedStartService(self) -> None:  # noqa: N802
        # every listener raises at once (_listener): a socket or port that
        # cannot be opened ends the start with one line, not a traceback
        try:
            super().privilegedStartService()
        except error.CannotListenError as e:
            where = e.port if e.interface is None or e.interface == "" else f"{e.interface}:{e.port}"
            if isinstance(where, bytes):
                where = where.decode("utf-8", "replace")
            why = getattr(e.socketError, "strerror", None) or e.socketError
            raise SystemExit(f"ixp-vp: cannot listen on {where}: {why}") from None

    def startService(self) -> None:
        where = []
        if self.cfg.remote:
            where.append(f"controller {self.cfg.remote} ({'TLS' if self.cfg.tls else 'no TLS'})")
        if self.cfg.unix:
            where.append(f"control socket {self.cfg.unix}")
        if self.cfg.control_port:
            where.append(f"control port {self.cfg.control_port}")
        if self.cfg.status:
            where.append(f"status {self.cfg.status}")
        if self.cfg.metrics:
            where.append(f"metrics {self.cfg.metrics}")
        log.info("ixp-vp {monitor} starting: {where}; pps {pps}, window {window}, dialect {d}"
                 "{conf}",
                 monitor=self.cfg.monitor or "(no monitor name)", where=", ".join(where),
                 pps=self.cfg.pps, window=self.cfg.window, d=self.cfg.dialect,
                 conf=f"; config {self.cfg.config}" if self.cfg.config else "")
        if self.backend.prober is not None:
            self._pps_loop = task.LoopingCall(self._sample_pps)
            self._pps_loop.clock = self.reactor
            self._pps_loop.start(1.0, now=True)
        self.hup.install()
        super().startService()

    def stopService(self):
        self.hup.uninstall()
        if self._pps_loop is not None and self._pps_loop.running:
            self._pps_loop.stop()
        if self.remote is not None:
            self.remote.stats.stop()
            cur = self.remote.current
            if cur is not None and cur.transport is not None:
                # at once, in every state: a TLS loseConnection would wait
                # for the handshake (or the peer's close_notify) first
                cur._closed_reason = "ixp-vp stopping"
                log.info("stopping: closing the connection to the controller")
                cur.transport.abortConnection()
            self.remote.stop()
        for f in self.control_factories:
            f.stop()
        try:
            self.backend.close()
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

    # -- the link's failures ------------------------------------------------------

    def _connect_failed(self, e: Exception) -> None:
        text = _connect_failure_text(e)
        self.remote.stats.failure(_connect_failure_kind(e), f"cannot connect to the controller "
                                                            f"at {self.cfg.remote}: {text}")
        self._pending_failure = text

    def _backing_off(self, delay: float) -> None:
        # ClientService itself logs "Scheduling retry N to connect <controller
        # H:P> in D seconds." next (ixpscamper.ops.logs keeps that line)
        stats = self.remote.stats
        stats.backoff(delay)
        if self._pending_failure is not None:
            text, self._pending_failure = self._pending_failure, None
            # the first failure of a streak is a warning; the rest say the same
            # thing less loudly (the backoff spaces them out)
            emit = log.warn if stats.failure_streak <= 1 else log.info
            emit("cannot connect to the controller at {remote}: {why}", remote=self.cfg.remote,
                 why=text)

    # -- status and metrics --------------------------------------------------------

    def _sample_pps(self) -> None:
        prober = self.backend.prober
        if prober is not None:
            self.pps_meter.sample(getattr(prober, "packets_sent", 0))

    def status(self) -> dict:
        """The ``--status`` document (also the source of every metric)."""
        now = self.reactor.seconds()
        doc: dict = {"daemon": "ixp-vp", "pid": os.getpid(), "time": now,
                     "monitor": self.cfg.monitor}
        if self.remote is not None:
            st = self.remote.stats
            state, since = st.state()
            doc["state"] = "up" if state == "established" else "away"
            if state != "established":
                doc["away_since"] = st.lost_at if st.lost_at is not None else st.started_at
            doc["link"] = {
                "remote": self.cfg.remote, "tls": self.cfg.tls, "state": state,
                "state_since": since, "connects": st.connects, "sessions": st.sessions,
                "resumes": st.resumes, "rejected": st.rejected, "failures": dict(st.failures),
                "last_error": st.last_error, "last_error_at": st.last_error_at,
                "session_id": (self.remote.session.master_id or b"").decode("ascii", "replace")
                or None,
                "channels": len(self.remote.sources), "bytes_in": st.bytes_in,
                "bytes_out": st.bytes_out, "last_resume_seconds": st.last_resume_seconds,
                "resume_histogram": st.histogram(),
            }
        else:
            doc["state"] = "local"
        doc["tasks"] = self.backend.summary()
        prober = self.backend.prober
        sent = getattr(prober, "packets_sent", None) if prober is not None else None
        doc["probes"] = {
            "sent": sent,
            "replies": sum(c.get("replies", 0) for c in doc["tasks"]["by_type"].values()),
            "pps_limit": self.cfg.pps, "window": self.cfg.window,
            "pps_achieved": self.pps_meter.rate(sent) if sent is not None else None,
        }
        if self.control_factories:
            doc["local"] = {"connections": sum(len(f.connections) for f in self.control_factories)}
        return doc

    # -- SIGHUP --------------------------------------------------------------------

    def reload(self) -> str:
        """Re-read the config file and TLS files; apply what can change live.

        Returns the one line that says what was reloaded; raises (keeping
        every old setting) if the new settings cannot be used.
        """
        new, level = self.reparse() if self.reparse is not None else (self.cfg, None)
        done: list[str] = []
        creator = None
        if self.link_factory is not None and new.tls and self.cfg.tls:
            creator = tls_creator(attrs.evolve(self.cfg, tls_ca=new.tls_ca, tls_cert=new.tls_cert,
                                               tls_key=new.tls_key))  # may raise: nothing applied
        if self.link_factory is not None and creator is not None:
            self.link_factory.tls = creator
            done.append("TLS material (for the next connection)")
        if level is not None and self.log_setup is not None:
            change = self.log_setup.set_level(level)
            if change:
                done.append(change)
        prober = self.backend.prober
        if new.pps != self.cfg.pps:
            if prober is not None:
                prober.pps = new.pps
            done.append(f"pps {self.cfg.pps} -> {new.pps}")
        if new.window != self.cfg.window:
            if prober is not None:
                prober.window = new.window
                pump = getattr(prober, "_pump", None)
                if pump is not None:
                    self.reactor.callLater(0, pump)  # a larger window starts waiting tasks
            done.append(f"window {self.cfg.window} -> {new.window}")
        restart = [f.name for f in attrs.fields(VPConfig)
                   if f.name not in LIVE_SETTINGS and f.name != "config"
                   and getattr(new, f.name) != getattr(self.cfg, f.name)]
        self.cfg = attrs.evolve(self.cfg, **{k: getattr(new, k) for k in LIVE_SETTINGS})
        line = "SIGHUP: reloaded " + (", ".join(done) if done else "nothing changed")
        if self.cfg.config:
            line += f" (from {self.cfg.config})"
        if restart:
            line += "; changed but needing a restart: " + ", ".join(
                n.replace("_", "-") for n in restart)
        return line


def _listener(endpoint, factory) -> internet.StreamServerEndpointService:
    svc = internet.StreamServerEndpointService(endpoint, factory)
    svc._raiseSynchronously = True  # see VPService.privilegedStartService
    return svc


def _clear_stale_socket(path: str) -> None:
    """Remove a socket file left by a previous run (never any other kind of file)."""
    from ixpscamper.ops.status import StatusSocketError, clear_stale_socket
    try:
        clear_stale_socket(path)
    except StatusSocketError as e:
        raise ConfigError(str(e)) from None
