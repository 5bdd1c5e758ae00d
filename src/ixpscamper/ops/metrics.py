"""Prometheus metrics of the daemons, served from the reactor (``--metrics [ip:]port``).

``prometheus_client``'s registry and ``generate_latest`` behind a
three-line ``twisted.web`` resource: a scrape is answered in the reactor
thread, from the daemon's live state, with no thread pool (unlike
``prometheus_client.twisted``).  Each daemon has its own
``CollectorRegistry`` (never the process-global one), so tests can build
as many as they like.

- :func:`metrics_service` -- the listening service for ``--metrics``.
- :class:`VPCollector` -- the VP's metrics, computed at scrape time from
  the same status document ``--status`` serves (one source of truth).
- :class:`RemotedMetrics` -- the controller's metric names and the calls
  its service makes (counters on events, gauges from a callable).

Metric names (``ixp_vp_*`` for the VP, ``ixp_remoted_*`` for the
controller) are listed in :data:`VP_METRICS` and :data:`REMOTED_METRICS`;
``etc/grafana-ixpscamper.json`` plots them.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from twisted.web import resource, server

# prometheus_client is imported where it is used: a daemon without --metrics
# runs without the package (the dependency is ``prometheus-client``)


class MetricsUnavailable(RuntimeError):
    """``--metrics`` was asked for but prometheus-client is not installed."""


def _prom():
    try:
        import prometheus_client
        import prometheus_client.core  # noqa: F401
        import prometheus_client.exposition  # noqa: F401
    except ImportError:
        raise MetricsUnavailable("--metrics needs the Python package prometheus-client "
                                 "(pip install prometheus-client)") from None
    return prometheus_client

__all__ = ["MetricsResource", "metrics_service", "parse_metrics_address", "VPCollector",
           "RemotedMetrics", "VP_METRICS", "REMOTED_METRICS", "LINK_STATES", "new_registry"]

#: the VP's link states, in order (ixp_vp_link_state{state=...} is 1 for the current one)
LINK_STATES = ("connecting", "handshaking", "established", "backoff", "stopped")

VP_METRICS = {
    "ixp_vp_info": "gauge 1, labels monitor, remote, tls",
    "ixp_vp_link_up": "1 while the session with the controller is established",
    "ixp_vp_link_state": "1 for the current link state (label state: " + ", ".join(LINK_STATES) + ")",
    "ixp_vp_link_state_seconds": "seconds in the current link state",
    "ixp_vp_connects_total": "TCP/TLS connections made to the controller",
    "ixp_vp_reconnects_total": "connections after the first",
    "ixp_vp_sessions_total": "sessions established (label kind: new, resumed)",
    "ixp_vp_resume_rejected_total": "resumes the controller refused (MASTER_REJ)",
    "ixp_vp_connection_failures_total": "connections that ended before a session "
                                        "(label reason: refused, timeout, closed, tls, "
                                        "tls_mismatch, protocol, other)",
    "ixp_vp_resume_seconds": "histogram: link lost -> session resumed (the outage users see)",
    "ixp_vp_channels": "open remote channels (attached users)",
    "ixp_vp_local_connections": "connections on the local control socket(s)",
    "ixp_vp_link_bytes_total": "bytes on the controller link (label direction: in, out)",
    "ixp_vp_tasks": "tasks now (labels type, state: queued, running)",
    "ixp_vp_tasks_started_total": "tasks started (label type)",
    "ixp_vp_tasks_done_total": "tasks ended (labels type, outcome: ok, failed)",
    "ixp_vp_probes_sent_total": "probe packets sent",
    "ixp_vp_replies_total": "replies in the results (label type: ping replies, trace hops)",
    "ixp_vp_pps_limit": "the probe rate limit (--pps)",
    "ixp_vp_pps_achieved": "probes per second sent over the last 10 s",
    "ixp_vp_window": "most tasks at once (--window, 0 = no limit)",
}

REMOTED_METRICS = {
    "ixp_remoted_vps": "VPs held (label state: connected, zombie)",
    "ixp_remoted_registrations_total": "MASTER_NEW handled (label result: accepted, refused)",
    "ixp_remoted_resumes_total": "MASTER_RES handled (label result: ok, rejected)",
    "ixp_remoted_rejects_total": "connections refused (label reason: tls_handshake, client_cert, "
                                 "name, rate, capacity, magic, plaintext_on_tls, tls_on_plaintext, "
                                 "handshake_timeout)",
    "ixp_remoted_protocol_errors_total": "connections closed for a protocol error (label kind)",
    "ixp_remoted_departures_total": "VPs freed (label reason: zombie_expired, replaced, evicted, "
                                    "stopping)",
    "ixp_remoted_users": "users attached to VP sockets",
    "ixp_remoted_mux_clients": "clients connected to the mux socket (--mux)",
    "ixp_remoted_channels": "open channels to VPs",
    "ixp_remoted_bytes_total": "bytes relayed (label direction: from_vps, to_vps)",
    "ixp_remoted_info": "gauge 1, labels version, tls",
}


def new_registry():
    """A registry of our own (the process-global one is never used)."""
    return _prom().CollectorRegistry(auto_describe=True)


class MetricsResource(resource.Resource):
    """``GET /metrics`` (any path, in fact): the registry in Prometheus' text format."""

    isLeaf = True

    def __init__(self, registry) -> None:
        super().__init__()
        self.registry = registry

    def render_GET(self, request):  # noqa: N802 -- twisted.web's name
        prom = _prom()
        try:
            body = prom.generate_latest(self.registry)
        except Exception:  # a collector bug: a 500, and the daemon goes on
            from twisted.logger import Logger
            Logger(namespace="ixp-ops.metrics").failure("collecting metrics failed")
            request.setResponseCode(500)
            return b"collecting metrics failed\n"
        request.setHeader(b"Content-Type", prom.exposition.CONTENT_TYPE_LATEST.encode())
        return body

    render_HEAD = render_GET


class _QuietSite(server.Site):
    """No access-log line per scrape, no "Starting factory"."""

    noisy = False

    def log(self, request) -> None:
        pass


def parse_metrics_address(text: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """``[ip:]port`` / ``[v6]:port`` -> (host, port); ValueError names what is wrong."""
    t = str(text).strip()
    if t.startswith("["):
        host, sep, port = t[1:].partition("]:")
        if not sep:
            raise ValueError(f"'{text}': expected [ADDRESS]:PORT")
    elif t.count(":") == 1:
        host, _, port = t.partition(":")
    elif ":" in t:
        raise ValueError(f"'{text}': write an IPv6 address as [ADDRESS]:PORT")
    else:
        host, port = default_host, t
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"'{text}': invalid port")
    import ipaddress
    try:
        ipaddress.ip_address(host or default_host)
    except ValueError:
        raise ValueError(f"'{text}': '{host}' is not an IP address") from None
    return host or default_host, int(port)


def metrics_coerce(text: str) -> str:
    parse_metrics_address(text)
    return text


metrics_coerce.coerceDoc = "[IP:]PORT (default IP 127.0.0.1)"  # type: ignore[attr-defined]

#: optParameters row for a daemon's Options class
OPT_PARAMETER = ["metrics", None, None,
                 "serve Prometheus metrics over HTTP on [IP:]PORT (default IP 127.0.0.1; "
                 "off unless given)", metrics_coerce]


def metrics_service(reactor, spec: str, registry):
    """The service listening on ``spec`` (``[ip:]port``) for scrapes of ``registry``."""
    from twisted.application import internet
    from twisted.internet import endpoints

    host, port = parse_metrics_address(spec)
    site = _QuietSite(MetricsResource(registry))
    if ":" in host:
        ep = endpoints.TCP6ServerEndpoint(reactor, port, interface=host)
    else:
        ep = endpoints.TCP4ServerEndpoint(reactor, port, interface=host)
    svc = internet.StreamServerEndpointService(ep, site)
    svc._raiseSynchronously = True
    return svc


# -- the VP ---------------------------------------------------------------------

class VPCollector:
    """The VP's metrics, read from ``document()`` (the ``--status`` document) at each scrape."""

    def __init__(self, document: Callable[[], dict]) -> None:
        self.document = document

    def describe(self) -> list:
        return []  # no fixed description: the registry must not call collect() early

    def collect(self) -> Iterable[Any]:
        core = _prom().core
        CounterMetricFamily = core.CounterMetricFamily  # noqa: N806
        GaugeMetricFamily = core.GaugeMetricFamily  # noqa: N806
        HistogramMetricFamily = core.HistogramMetricFamily  # noqa: N806
        doc = self.document()
        link = doc.get("link") or {}
        tasks = doc.get("tasks") or {}
        probes = doc.get("probes") or {}
        info = GaugeMetricFamily("ixp_vp_info", VP_METRICS["ixp_vp_info"],
                                 labels=["monitor", "remote", "tls"])
        info.add_metric([doc.get("monitor") or "", link.get("remote") or "",
                         "1" if link.get("tls") else "0"], 1)
        yield info
        if link:
            state = link.get("state")
            yield GaugeMetricFamily("ixp_vp_link_up", VP_METRICS["ixp_vp_link_up"],
                                    value=1 if state == "established" else 0)
            g = GaugeMetricFamily("ixp_vp_link_state", VP_METRICS["ixp_vp_link_state"],
                                  labels=["state"])
            for s in LINK_STATES:
                g.add_metric([s], 1 if s == state else 0)
            yield g
            since = link.get("state_since")
            if isinstance(since, (int, float)):
                yield GaugeMetricFamily("ixp_vp_link_state_seconds",
                                        VP_METRICS["ixp_vp_link_state_seconds"],
                                        value=max(0.0, doc.get("time", since) - since))
            yield CounterMetricFamily("ixp_vp_connects", VP_METRICS["ixp_vp_connects_total"],
                                      value=link.get("connects", 0))
            yield CounterMetricFamily("ixp_vp_reconnects", VP_METRICS["ixp_vp_reconnects_total"],
                                      value=max(0, link.get("connects", 0) - 1))
            c = CounterMetricFamily("ixp_vp_sessions", VP_METRICS["ixp_vp_sessions_total"],
                                    labels=["kind"])
            c.add_metric(["new"], link.get("sessions", 0))
            c.add_metric(["resumed"], link.get("resumes", 0))
            yield c
            yield CounterMetricFamily("ixp_vp_resume_rejected",
                                      VP_METRICS["ixp_vp_resume_rejected_total"],
                                      value=link.get("rejected", 0))
            c = CounterMetricFamily("ixp_vp_connection_failures",
                                    VP_METRICS["ixp_vp_connection_failures_total"],
                                    labels=["reason"])
            for reason, n in sorted((link.get("failures") or {}).items()):
                c.add_metric([reason], n)
            yield c
            hist = link.get("resume_histogram")
            if hist:
                h = HistogramMetricFamily("ixp_vp_resume_seconds", VP_METRICS["ixp_vp_resume_seconds"])
                h.add_metric([], [(_le(b), n) for b, n in hist["buckets"]], hist["sum"])
                yield h
            yield GaugeMetricFamily("ixp_vp_channels", VP_METRICS["ixp_vp_channels"],
                                    value=link.get("channels", 0))
            c = CounterMetricFamily("ixp_vp_link_bytes", VP_METRICS["ixp_vp_link_bytes_total"],
                                    labels=["direction"])
            c.add_metric(["in"], link.get("bytes_in", 0))
            c.add_metric(["out"], link.get("bytes_out", 0))
            yield c
        local = doc.get("local")
        if local is not None:
            yield GaugeMetricFamily("ixp_vp_local_connections",
                                    VP_METRICS["ixp_vp_local_connections"],
                                    value=local.get("connections", 0))
        by = tasks.get("by_type") or {}
        g = GaugeMetricFamily("ixp_vp_tasks", VP_METRICS["ixp_vp_tasks"], labels=["type", "state"])
        started = CounterMetricFamily("ixp_vp_tasks_started", VP_METRICS["ixp_vp_tasks_started_total"],
                                      labels=["type"])
        done = CounterMetricFamily("ixp_vp_tasks_done", VP_METRICS["ixp_vp_tasks_done_total"],
                                   labels=["type", "outcome"])
        replies = CounterMetricFamily("ixp_vp_replies", VP_METRICS["ixp_vp_replies_total"],
                                      labels=["type"])
        for t, c_ in sorted(by.items()):
            g.add_metric([t, "queued"], c_.get("queued", 0))
            g.add_metric([t, "running"], c_.get("running", 0))
            started.add_metric([t], c_.get("started", 0))
            done.add_metric([t, "ok"], c_.get("done", 0) - c_.get("failed", 0))
            done.add_metric([t, "failed"], c_.get("failed", 0))
            replies.add_metric([t], c_.get("replies", 0))
        yield g
        yield started
        yield done
        yield replies
        if probes.get("sent") is not None:
            yield CounterMetricFamily("ixp_vp_probes_sent", VP_METRICS["ixp_vp_probes_sent_total"],
                                      value=probes["sent"])
        if probes.get("pps_limit") is not None:
            yield GaugeMetricFamily("ixp_vp_pps_limit", VP_METRICS["ixp_vp_pps_limit"],
                                    value=probes["pps_limit"])
        if probes.get("pps_achieved") is not None:
            yield GaugeMetricFamily("ixp_vp_pps_achieved", VP_METRICS["ixp_vp_pps_achieved"],
                                    value=probes["pps_achieved"])
        if probes.get("window") is not None:
            yield GaugeMetricFamily("ixp_vp_window", VP_METRICS["ixp_vp_window"],
                                    value=probes["window"])


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(float(bound))


# -- the controller ---------------------------------------------------------------

class RemotedMetrics:
    """The controller's metrics: counters its service bumps, gauges read at scrape time.

    Wiring into ``RemotedService`` (one line at each event)::

        m = RemotedMetrics(registry, gauges=lambda: {"connected": ..., "zombie": ...,
                                                      "users": ..., "channels": ...})
        m.registered()                  # vp_new
        m.registration_refused("rate")  # admission said no
        m.resumed() / m.resume_rejected()
        m.rejected("client_cert")       # a refused connection (reason label)
        m.protocol_error("bad frame")   # a connection closed for a protocol error
        m.departed("zombie_expired")    # vp_gone
        m.relayed("from_vps", n) / m.relayed("to_vps", n)
    """

    def __init__(self, registry, gauges: Callable[[], dict] | None = None,
                 version: str = "", tls: bool = False, bytes_from_gauges: bool = False) -> None:
        # bytes_from_gauges: ixp_remoted_bytes_total comes from gauges()["bytes_from_vps"] /
        # ["bytes_to_vps"] at scrape time (the service keeps plain integer totals, cheaper
        # on the data path than a Counter per chunk); relayed() then does nothing
        prom = _prom()
        Counter, Gauge = prom.Counter, prom.Gauge  # noqa: N806
        self.registry = registry
        self.registrations = Counter("ixp_remoted_registrations", REMOTED_METRICS[
            "ixp_remoted_registrations_total"], ["result"], registry=registry)
        self.resumes = Counter("ixp_remoted_resumes", REMOTED_METRICS["ixp_remoted_resumes_total"],
                               ["result"], registry=registry)
        self.rejects = Counter("ixp_remoted_rejects", REMOTED_METRICS["ixp_remoted_rejects_total"],
                               ["reason"], registry=registry)
        self.protocol_errors = Counter("ixp_remoted_protocol_errors",
                                       REMOTED_METRICS["ixp_remoted_protocol_errors_total"],
                                       ["kind"], registry=registry)
        self.departures = Counter("ixp_remoted_departures",
                                  REMOTED_METRICS["ixp_remoted_departures_total"], ["reason"],
                                  registry=registry)
        self.bytes = None
        if not bytes_from_gauges:
            self.bytes = Counter("ixp_remoted_bytes", REMOTED_METRICS["ixp_remoted_bytes_total"],
                                 ["direction"], registry=registry)
            for d in ("from_vps", "to_vps"):
                self.bytes.labels(d)
        for r in ("accepted", "refused"):
            self.registrations.labels(r)
        for r in ("ok", "rejected"):
            self.resumes.labels(r)
        info = Gauge("ixp_remoted_info", REMOTED_METRICS["ixp_remoted_info"], ["version", "tls"],
                     registry=registry)
        info.labels(version, "1" if tls else "0").set(1)
        if gauges is not None:
            registry.register(_RemotedGauges(gauges, bytes_from_gauges))

    def registered(self) -> None:
        self.registrations.labels("accepted").inc()

    def registration_refused(self, reason: str) -> None:
        self.registrations.labels("refused").inc()
        self.rejects.labels(reason).inc()

    def resumed(self) -> None:
        self.resumes.labels("ok").inc()

    def resume_rejected(self) -> None:
        self.resumes.labels("rejected").inc()

    def rejected(self, reason: str) -> None:
        self.rejects.labels(reason).inc()

    def protocol_error(self, kind: str) -> None:
        self.protocol_errors.labels(kind).inc()

    def departed(self, reason: str) -> None:
        self.departures.labels(reason).inc()

    def relayed(self, direction: str, n: int) -> None:
        if self.bytes is not None:
            self.bytes.labels(direction).inc(n)


class _RemotedGauges:
    def __init__(self, gauges: Callable[[], dict], with_bytes: bool = False) -> None:
        self.gauges = gauges
        self.with_bytes = with_bytes

    def describe(self) -> list:
        return []

    def collect(self):
        GaugeMetricFamily = _prom().core.GaugeMetricFamily  # noqa: N806
        g = self.gauges()
        vps = GaugeMetricFamily("ixp_remoted_vps", REMOTED_METRICS["ixp_remoted_vps"],
                                labels=["state"])
        vps.add_metric(["connected"], g.get("connected", 0))
        vps.add_metric(["zombie"], g.get("zombie", 0))
        yield vps
        yield GaugeMetricFamily("ixp_remoted_users", REMOTED_METRICS["ixp_remoted_users"],
                                value=g.get("users", 0))
        yield GaugeMetricFamily("ixp_remoted_channels", REMOTED_METRICS["ixp_remoted_channels"],
                                value=g.get("channels", 0))
        if "mux_clients" in g:
            yield GaugeMetricFamily("ixp_remoted_mux_clients",
                                    REMOTED_METRICS["ixp_remoted_mux_clients"],
                                    value=g["mux_clients"])
        if self.with_bytes:
            c = _prom().core.CounterMetricFamily("ixp_remoted_bytes",
                                                 REMOTED_METRICS["ixp_remoted_bytes_total"],
                                                 labels=["direction"])
            c.add_metric(["from_vps"], g.get("bytes_from_vps", 0))
            c.add_metric(["to_vps"], g.get("bytes_to_vps", 0))
            yield c
