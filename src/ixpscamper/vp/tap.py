"""``twistd ixp-vp``: options and service maker for the VP daemon."""

from __future__ import annotations

from twisted.python import usage

from ixpscamper.ops import daemon as _daemon
from ixpscamper.ops import logs as _logs
from ixpscamper.ops.config import ConfigFileMixin
from ixpscamper.remote.frames import valid_monitor_name
from ixpscamper.vp.service import ConfigError, VPConfig, VPService, split_hostport

__all__ = ["Options", "makeService"]


def _positive(name: str, lo: int, hi: int):
    def conv(text: str) -> int:
        if not text.isdigit() or not lo <= int(text) <= hi:
            raise ValueError(f"--{name} must be {lo}..{hi}")
        return int(text)
    conv.coerceDoc = f"{lo}..{hi}"
    return conv


class Options(ConfigFileMixin, usage.Options):
    """Command line of ``twistd ixp-vp`` (scamper's letters where it has them).

    ``--config FILE`` reads the same settings from a TOML file (keys named
    like the long options); the command line overrides it.
    """

    synopsis = "[options]"
    longdesc = ("A scamper-compatible vantage point: connects out to a controller "
                "(twistd ixp-remoted or sc_remoted) and runs the ping/trace commands "
                "its users send, and optionally serves a local control socket.")

    optParameters = [
        ["remote", "R", None, "controller to connect to, HOST:PORT"],
        ["monitor", "M", None, "monitor name sent to the controller"],
        ["tls-ca", None, None, "PEM file of the CA(s) the controller's certificate must chain to "
                               "(default: the system's trust store)"],
        ["tls-cert", None, None, "client certificate (PEM) to present to the controller"],
        ["tls-key", None, None, "private key (PEM) of --tls-cert"],
        ["attach-dialect", None, "current", "result header: 'current' (DATA <n> id-N) or "
                                            "'2021' (bare DATA <n>, for the Debian sc_attach)"],
        ["pps", "p", 20, "probe packets per second, all tasks together", _positive("pps", 1, 10000)],
        ["window", "w", 0, "most tasks running at once (0 = no limit)", _positive("window", 0, 65535)],
        ["unix", "U", None, "also serve the control protocol on this unix socket (mode 0700)"],
        ["control-port", "P", None, "also serve the control protocol on [IP:]PORT (default IP 127.0.0.1)"],
        ["hostname", None, None, "host name written into cycle records (default: this host's)"],
    ] + _daemon.OPT_PARAMETERS  # --status, --metrics, --log-format, --log-level
    optFlags = [
        ["no-tls", None, "plain TCP to the controller (like scamper -O notls-remote)"],
    ]

    def postOptions(self) -> None:
        if not (self["remote"] or self["unix"] or self["control-port"]):
            raise usage.UsageError("give --remote HOST:PORT (and/or --unix / --control-port)")
        if self["attach-dialect"] not in ("current", "2021"):
            raise usage.UsageError("--attach-dialect must be 'current' or '2021'")
        if self["monitor"] is not None and not valid_monitor_name(self["monitor"].encode("ascii", "replace")):
            raise usage.UsageError("--monitor: only A-Z a-z 0-9 . - allowed (at most 254, no '..')")
        for name, default in (("remote", None), ("control-port", "127.0.0.1")):
            if self[name]:
                try:
                    split_hostport(self[name], default_host=default)
                except ConfigError as e:
                    raise usage.UsageError(f"--{name}: {e}") from None
        if bool(self["tls-cert"]) != bool(self["tls-key"]):
            raise usage.UsageError("--tls-cert and --tls-key go together")

    def config(self) -> VPConfig:
        return VPConfig(
            remote=self["remote"], monitor=self["monitor"], tls=not self["no-tls"],
            tls_ca=self["tls-ca"], tls_cert=self["tls-cert"], tls_key=self["tls-key"],
            dialect=self["attach-dialect"], pps=self["pps"], window=self["window"],
            unix=self["unix"], control_port=self["control-port"], hostname=self["hostname"],
            status=self["status"], metrics=self["metrics"], config=self["config"])


def _reparser(options: Options):
    """For SIGHUP: parse the same command line (and ``--config`` file) again."""
    argv = list(options.argv)
    path = options["config"]

    def reparse():
        fresh = Options()
        fresh.parseOptions((["--config", path] if path else []) + argv)
        return fresh.config(), fresh["log-level"]
    return reparse


def makeService(options: Options, reactor=None, backend=None) -> VPService:
    """Build the service tree; a setting that cannot work ends twistd with one line."""
    if reactor is None:
        from twisted.internet import reactor as _reactor
        reactor = _reactor
    cfg = options.config()
    if backend is None:
        from ixpscamper.vp.backend import ProberBackend
        try:
            from ixpscamper.prober import ProberError
        except ImportError:  # pragma: no cover
            ProberError = OSError  # noqa: N806
        try:
            backend = ProberBackend(reactor, pps=cfg.pps, window=cfg.window)
        except ProberError as e:
            raise SystemExit(f"ixp-vp: {e}") from None
        except PermissionError as e:
            raise SystemExit(f"ixp-vp: cannot open raw sockets ({e.strerror or e}): "
                             "needs root or CAP_NET_RAW") from None
        except (OSError, ImportError, ValueError) as e:
            raise SystemExit(f"ixp-vp: cannot start the prober: {e}") from None
    log_setup = _logs.LogSetup.for_twistd("ixp-vp", options)
    try:
        return VPService(reactor, cfg, backend, log_setup=log_setup, reparse=_reparser(options))
    except ConfigError as e:
        raise SystemExit(f"ixp-vp: {e}") from None
