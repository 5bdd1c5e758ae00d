"""``twistd ixp-remoted``: options and service maker.

Long options with sc_remoted's letters as aliases.  ``--pidfile/-e`` is our
own pidfile, written once the listeners are up and removed on stop; it is
unrelated to twistd's global ``--pidfile`` (given *before* the subcommand,
default ``twistd.pid`` in the working directory).  Run it as
``twistd --pidfile= -n ixp-remoted -e /run/ixp-remoted.pid ...`` so only one
pidfile is written, or use twistd's and leave ``-e`` out.

Environment hooks for tests only: ``IXP_REMOTED_HANDSHAKE_TIME`` (seconds
a new connection has to send MASTER_NEW/RES, default 30) and
``IXP_REMOTED_USER_BACKLOG`` (bytes pending for a user before it is
dropped, default 64 MiB).
"""

from __future__ import annotations

import os
from typing import Optional

from twisted.python import usage

from ..ops import daemon as _daemon
from ..ops.config import ConfigFileMixin
from ..remote.session import ZOMBIE_TIME
from .admission import parse_rate
from .service import RemotedService, parse_listen
from .tls import ServerTLS, TLSConfigError


class Options(ConfigFileMixin, usage.Options):
    """Command line of ``twistd ixp-remoted``; ``--config FILE`` reads the same
    settings from a TOML file (keys named like the long options)."""

    synopsis = "[options] -P [ip:]port {-U socket-dir | -M mux-socket} [-m meta-file]"
    longdesc = ("A scamper-compatible remote controller (like sc_remoted): scamper VPs "
                "(`scamper -R host:port -M name`) connect here; each gets a unix socket "
                "`[monitor-]addr:port` in the socket directory for sc_attach -R / ixp-attach -R.")

    optParameters = [
        ["socket-dir", "U", None, "directory for the per-VP unix sockets (must exist)"],
        ["mux", "M", None, "the mux socket: one unix socket for every VP (scamper 2026's "
         "sc_remoted -M; ScamperCtrl(mux=PATH))"],
        ["meta", "m", None, "VP metadata file for the mux ('<monitor> <attr> <value>' lines, "
         "sc_remoted 2026's format; re-read on SIGHUP)"],
        ["zombie", "Z", str(int(ZOMBIE_TIME)),
         "seconds to keep a disconnected VP's state for a resume (0..10800; 0 = no resume)"],
        ["tls-cert", "c", None, "PEM certificate (chain) for TLS; TLS from the first byte"],
        ["tls-key", "p", None, "PEM private key for --tls-cert"],
        ["client-ca", "C", None, "PEM CA: VPs must present a certificate from it naming their monitor"],
        ["pidfile", "e", None, "write our process id here (see also twistd's own --pidfile)"],
        ["max-vps", None, None,
         "most VPs held (live + zombies); when full the oldest zombie is freed for a new VP "
         "(default: what the fd limit allows, (limit - reserve) / 2)"],
        ["max-zombies", None, None,
         "most disconnected VPs kept for a resume; beyond it the oldest is freed (default: no "
         "limit but --max-vps)"],
        ["registration-rate", None, "0",
         "R or R/s: new registrations (MASTER_NEW) per second per source address (IPv6: per /64); "
         "0 = no limit"],
        ["registration-burst", None, None,
         "registrations a source may make at once before --registration-rate applies "
         "(default max(3, 2R))"],
        ["fd-reserve", None, None,
         "file descriptors kept for users and listeners: VPs are refused before they would eat "
         "into it (default max(64, limit/32))"],
    ] + _daemon.OPT_PARAMETERS  # --status, --metrics, --log-format, --log-level

    #: False for a SIGHUP re-parse: the service re-reads its TLS files itself
    #: (RemotedService.reload_tls), keeping the old ones if the new are bad
    load_tls = True

    def __init__(self) -> None:
        super().__init__()
        self["port"] = []
        self["allow"] = set()

    def opt_port(self, value: str) -> None:
        """[ip:]port to listen on for VPs (repeatable; no ip: IPv4+IPv6 wildcards)"""
        try:
            parse_listen(value)
        except ValueError as e:
            raise usage.UsageError(str(e)) from None
        self["port"].append(value)

    opt_P = opt_port

    def opt_allow(self, value: str) -> None:
        """group|other: group/other access to VP sockets (repeatable)"""
        if value not in ("group", "other"):
            raise usage.UsageError(f"--allow takes group or other, not '{value}'")
        self["allow"].add(value)

    def opt_sc_option(self, value: str) -> None:
        """sc_remoted's -O: allowgroup or allowother (repeatable)"""
        if value not in ("allowgroup", "allowother"):
            raise usage.UsageError(f"-O takes allowgroup or allowother, not '{value}'")
        self["allow"].add(value[5:])

    opt_O = opt_sc_option

    def postOptions(self) -> None:
        if not self["port"]:
            raise usage.UsageError("--port/-P is required")
        if not self["socket-dir"] and not self["mux"]:
            raise usage.UsageError("give --socket-dir/-U, --mux/-M or both")
        if self["socket-dir"] and not os.path.isdir(self["socket-dir"]):
            raise usage.UsageError(f"socket directory {self['socket-dir']} does not exist")
        if self["mux"] and not os.path.isdir(os.path.dirname(os.path.abspath(self["mux"]))):
            raise usage.UsageError(f"--mux: directory of {self['mux']} does not exist")
        if self["meta"]:
            if not self["mux"]:
                raise usage.UsageError("--meta needs --mux (metadata is sent on the mux socket)")
            from ..mux.meta import MetadataError, load_metadata
            try:
                load_metadata(self["meta"])
            except MetadataError as e:
                raise usage.UsageError(str(e)) from None
        try:
            z = float(self["zombie"])
        except ValueError:
            raise usage.UsageError(f"--zombie: '{self['zombie']}' is not a number") from None
        if not 0 <= z <= 10800:
            raise usage.UsageError("--zombie must be 0..10800 seconds")
        self["zombie"] = z
        if bool(self["tls-cert"]) != bool(self["tls-key"]):
            raise usage.UsageError("--tls-cert and --tls-key go together")
        if self["client-ca"] and not self["tls-cert"]:
            raise usage.UsageError("--client-ca needs --tls-cert and --tls-key")
        self["max-vps"] = self._count("max-vps", 1)
        self["max-zombies"] = self._count("max-zombies", 0)
        self["fd-reserve"] = self._count("fd-reserve", 0)
        try:
            self["registration-rate"] = parse_rate(self["registration-rate"])
        except ValueError as e:
            raise usage.UsageError(f"--registration-rate: {e}") from None
        b = self["registration-burst"]
        if b is not None:
            try:
                self["registration-burst"] = float(b)
            except ValueError:
                raise usage.UsageError(f"--registration-burst: '{b}' is not a number") from None
            if not 1 <= self["registration-burst"] < float("inf"):
                raise usage.UsageError("--registration-burst must be at least 1")
        self["tls"] = None
        if self["tls-cert"] and self.load_tls:
            try:
                self["tls"] = ServerTLS(self["tls-cert"], self["tls-key"], self["client-ca"])
            except TLSConfigError as e:
                raise usage.UsageError(str(e)) from None


    def _count(self, name: str, least: int) -> Optional[int]:
        v = self[name]
        if v is None:
            return None
        try:
            n = int(v)
        except (TypeError, ValueError):
            raise usage.UsageError(f"--{name}: '{v}' is not a whole number") from None
        if n < least:
            raise usage.UsageError(f"--{name} must be at least {least}")
        return n


def _reparse(options: Options) -> Options:
    """For SIGHUP: the same command line (and ``--config`` file) parsed again."""
    path = options["config"]
    fresh = Options()
    fresh.load_tls = False
    fresh.parseOptions((["--config", path] if path else []) + list(options.argv))
    return fresh


def makeService(options: Options, reactor=None) -> _daemon.DaemonRoot:
    """A DaemonRoot (status, metrics, logs, SIGHUP) with the RemotedService as
    ``root.services[0]``."""
    if reactor is None:
        from twisted.internet import reactor as _reactor
        reactor = _reactor
    from ..ops.metrics import RemotedMetrics
    from ..ops.status import controller_document
    from .service import UserProtocol
    # Test hooks (not options: nobody should need them in production).
    if "IXP_REMOTED_USER_BACKLOG" in os.environ:
        UserProtocol.USER_BACKLOG = int(os.environ["IXP_REMOTED_USER_BACKLOG"])
    svc = RemotedService(
        reactor, options["port"], options["socket-dir"], zombie_time=options["zombie"],
        allow_group="group" in options["allow"], allow_other="other" in options["allow"],
        tls=options["tls"], pidfile=options["pidfile"],
        handshake_time=float(os.environ.get("IXP_REMOTED_HANDSHAKE_TIME", "30")),
        max_vps=options["max-vps"], max_zombies=options["max-zombies"],
        registration_rate=options["registration-rate"],
        registration_burst=options["registration-burst"], fd_reserve=options["fd-reserve"],
        mux_path=options["mux"], meta_path=options["meta"])
    root = _daemon.DaemonRoot(reactor, "ixp-remoted", options, reparse=lambda: _reparse(options))
    svc.setServiceParent(root)
    root.add_status(controller_document(svc.status_vps))
    root.add_metrics(lambda reg: svc.set_metrics(
        RemotedMetrics(reg, gauges=svc.gauges, tls=svc.tls is not None, version=_version(),
                       bytes_from_gauges=True)))
    root.on_reload(svc.reload_live)
    return root


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("ixpscamper")
    except Exception:  # noqa: BLE001 -- not installed as a distribution
        return ""
