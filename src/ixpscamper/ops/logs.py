"""Log output of the daemons: ``--log-format text|json``, ``--log-level``.

:class:`LogSetup` makes one ``twisted.logger`` observer that filters by a
level that can change while running (SIGHUP), renames namespaces so both
daemons log under their program names (``ixp-vp.*``, ``ixp-remoted.*``,
whatever module a line comes from), keeps Twisted's per-connection chatter
("Starting factory", listening-port open/close, HTTP access lines) out of
the log unless the level is debug, and writes one line per event, as text
or as a JSON object.

twistd picks its log observer after the plugin's ``makeService`` has run:
``--logger`` if given, else an ``ILogObserver`` component of the
application, else its own (``--logfile``, ``--syslog``).  The plugin's
service offers the observer as that component when twistd adds it to the
application (:func:`offer_observer`, called from the service's
``setServiceParent``), so ``twistd -n ixp-vp --log-format json`` works,
and an explicit ``twistd --logger`` or ``--syslog`` still wins.
"""

from __future__ import annotations

import json
import re
import sys
import time
from typing import IO, Any

from twisted.logger import (FilteringLogObserver, ILogObserver, LogLevel, PredicateResult,
                            formatEvent)
from twisted.python.components import Componentized
from zope.interface import implementer

__all__ = ["LEVELS", "FORMATS", "parse_level", "LogSetup", "offer_observer", "display_namespace"]

LEVELS = {"debug": LogLevel.debug, "info": LogLevel.info, "warn": LogLevel.warn,
          "error": LogLevel.error}
FORMATS = ("text", "json")

#: module prefixes and the program names they are logged under
_RENAMES = (("ixpscamper.remoted", "ixp-remoted"), ("ixpscamper.mux", "ixp-remoted.mux"))

#: Twisted's lines kept at info: start, stop, signals (the rest is per-connection noise)
_TWISTED_KEPT = ("twisted.scripts", "twisted.application.app", "twisted.application.runner",
                 "twisted.internet.base")
#: ClientService's "Scheduling retry N to connect X in D seconds.": the reconnect schedule
_TWISTED_RETRY = ("twisted.application.internet", "twisted.application._client_service")
_NOISE_FORMATS = ("Starting factory", "Stopping factory", "Starting protocol",
                  "Stopping protocol")
#: a listening port opening and closing ("Site starting on 9100", "(TCP Port 9100 Closed)")
_PORT_NOISE = re.compile(r"^(\S+ starting on \S+|\((TCP|UDP|UNIX) Port .* Closed\))$")


def parse_level(text: str) -> LogLevel:
    """``debug|info|warn|error`` (``warning`` too) -> LogLevel; ValueError names the choices."""
    t = str(text).strip().lower()
    if t == "warning":
        t = "warn"
    if t not in LEVELS:
        raise ValueError(f"'{text}' is not a log level (debug, info, warn, error)")
    return LEVELS[t]


def parse_format(text: str) -> str:
    t = str(text).strip().lower()
    if t not in FORMATS:
        raise ValueError(f"'{text}' is not a log format (text, json)")
    return t


def _level_coerce(text: str) -> str:
    parse_level(text)
    return str(text).strip().lower().replace("warning", "warn")


def _format_coerce(text: str) -> str:
    return parse_format(text)


_level_coerce.coerceDoc = "debug, info, warn or error"  # type: ignore[attr-defined]
_format_coerce.coerceDoc = "text or json"  # type: ignore[attr-defined]

#: optParameters rows for a daemon's Options class
OPT_PARAMETERS = [
    ["log-format", None, "text", "log lines as 'text' or 'json' (one object a line)", _format_coerce],
    ["log-level", None, "info", "least level logged: debug, info, warn or error "
                                "(SIGHUP re-reads it from --config)", _level_coerce],
]


def display_namespace(namespace: str | None, daemon: str) -> str:
    """The name a log line shows: ``ixpscamper.vp.remote`` -> ``ixp-vp.remote``."""
    ns = namespace or daemon
    if ns.startswith("ixpscamper."):
        for prefix, name in _RENAMES:
            if ns == prefix or ns.startswith(prefix + "."):
                return name + ns[len(prefix):]
        rest = ns[len("ixpscamper."):]
        if rest.startswith("vp.") or rest == "vp":
            rest = rest[3:]
        return f"{daemon}.{rest}" if rest else daemon
    if ns == "log_legacy":
        return "twisted"
    if ns.startswith(_TWISTED_KEPT):
        return "twistd"  # start, stop and signal lines
    if ns.startswith(_TWISTED_RETRY):
        return f"{daemon}.reconnect"  # the reconnect schedule of a ClientService
    return ns


def _is_noise(event: dict) -> bool:
    ns = event.get("log_namespace") or ""
    if ns.startswith("ixp") or event.get("log_level", LogLevel.info) >= LogLevel.warn:
        return False
    fmt = event.get("log_format") or ""
    if not isinstance(fmt, str):
        fmt = ""
    if fmt.startswith(_NOISE_FORMATS):
        return True
    if ns in ("log_legacy", "") or ns.startswith("twisted."):
        try:
            text = formatEvent(event) or ""
        except Exception:  # noqa: BLE001
            text = ""
        if text.startswith(_NOISE_FORMATS) or _PORT_NOISE.match(text):
            return True
    if ns.startswith("twisted.web") or ns == "twisted.python.log" and "HTTP/" in fmt:
        return True
    if ns.startswith("twisted.") and not ns.startswith(_TWISTED_KEPT + _TWISTED_RETRY):
        return True
    return False


_stamp_cache: list = [None, ""]   # (whole second, its strftime) -- one strftime a second


def _timestamp(t: float) -> str:
    sec = int(t)
    if _stamp_cache[0] != sec:
        _stamp_cache[0] = sec
        _stamp_cache[1] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    return f"{_stamp_cache[1]}.{int(t % 1 * 1000):03d}Z"


def _message(event: dict) -> str:
    # Our own events use plain str.format fields, which str.format_map renders
    # the same as Twisted's formatEvent at a fraction of its cost (logging was
    # a fifth of the controller's CPU when thousands of VPs register at once);
    # anything else, or anything str.format cannot do, goes to formatEvent.
    fmt = event.get("log_format")
    if isinstance(fmt, str) and (event.get("log_namespace") or "").startswith("ixp"):
        try:
            return fmt.format_map(event)
        except Exception:  # noqa: BLE001 -- e.g. Twisted's {call()} syntax
            pass
    text = formatEvent(event)
    if text is None:
        text = ""
    return text


@implementer(ILogObserver)
class _LineWriter:
    """Writes each event as one line of text or JSON to ``stream``."""

    def __init__(self, stream: IO[str], fmt: str, daemon: str) -> None:
        self.stream = stream
        self.fmt = fmt
        self.daemon = daemon

    def format(self, event: dict) -> str:
        t = event.get("log_time") or time.time()
        level = event.get("log_level", LogLevel.info)
        level_name = getattr(level, "name", str(level))
        ns = display_namespace(event.get("log_namespace"), self.daemon)
        msg = _message(event)
        failure = event.get("log_failure")
        tb = None
        if failure is not None:
            try:
                tb = failure.getTraceback()
            except Exception:  # noqa: BLE001 -- never lose the line over its traceback
                tb = repr(failure)
        if self.fmt == "json":
            doc: dict[str, Any] = {"time": _timestamp(t), "level": level_name, "logger": ns,
                                   "message": msg}
            fields = {k: v for k, v in event.items()
                      if not k.startswith("log_") and k not in ("message", "format", "time",
                                                                "system", "isError", "failure",
                                                                "why", "printed", "ixp_always")
                      and (v is None or isinstance(v, (str, int, float, bool)))}
            if fields:
                doc["fields"] = fields
            if tb:
                doc["traceback"] = tb
            return json.dumps(doc, ensure_ascii=True, default=str) + "\n"
        # text: one line per event; a traceback follows indented, as twistd does
        line = f"{_timestamp(t)} [{ns}#{level_name}] {msg.replace(chr(10), ' | ')}\n"
        if tb:
            line += "".join("\t" + ln + "\n" for ln in tb.rstrip("\n").split("\n"))
        return line

    def __call__(self, event: dict) -> None:
        try:
            self.stream.write(self.format(event))
            self.stream.flush()
        except (OSError, ValueError):
            pass  # a closed or full log stream must not take the daemon down


class LogSetup:
    """The daemon's log observer: format, live level, namespaces, no Twisted noise.

    ``LogSetup("ixp-vp", fmt="json", level="info", stream=sys.stdout)``;
    ``observer`` is the ``ILogObserver`` to hand to twistd (see
    :func:`offer_observer`) or to ``globalLogBeginner.beginLoggingTo``;
    ``set_level("debug")`` changes the level at once and returns a
    description of the change.
    """

    def __init__(self, daemon: str, fmt: str = "text", level: str | LogLevel = "info",
                 stream: IO[str] | None = None) -> None:
        self.daemon = daemon
        self.fmt = parse_format(fmt)
        self.level = level if isinstance(level, LogLevel) else parse_level(level)
        # the stream as it is now: twistd redirects sys.stdout into the log later
        self.stream = stream if stream is not None else sys.stdout
        self.writer = _LineWriter(self.stream, self.fmt, daemon)
        self.observer = FilteringLogObserver(self.writer, [self._predicate])

    @property
    def level_name(self) -> str:
        return self.level.name

    def _predicate(self, event: dict) -> PredicateResult:
        level = event.get("log_level", LogLevel.info)
        if event.get("ixp_always"):
            return PredicateResult.maybe  # e.g. the line saying the level changed
        if level < self.level:
            return PredicateResult.no
        if self.level > LogLevel.debug and _is_noise(event):
            return PredicateResult.no
        return PredicateResult.maybe

    def set_level(self, level: str | LogLevel) -> str | None:
        """Change the level; returns ``"log level A -> B"``, or None if unchanged."""
        new = level if isinstance(level, LogLevel) else parse_level(level)
        if new is self.level:
            return None
        old, self.level = self.level, new
        return f"log level {old.name} -> {new.name}"

    @classmethod
    def for_twistd(cls, daemon: str, options) -> "LogSetup | None":
        """The setup ``options`` (a plugin's Options, parsed) ask for, writing where twistd would.

        Returns None when twistd is told to log elsewhere on its own
        (``--syslog`` or ``--logger``): its choice stands, and the level
        and format apply only to our observer.
        """
        parent = getattr(options, "parent", None)
        stream: IO[str] | None = None
        if parent is not None:
            get = parent.get if hasattr(parent, "get") else (lambda k, d=None: d)
            if get("logger") or get("syslog"):
                return None
            logfile = get("logfile")
            nodaemon = get("nodaemon")
            if logfile and logfile != "-":
                from twisted.python.logfile import LogFile
                stream = LogFile.fromFullPath(logfile)
            elif logfile == "-" or nodaemon:
                stream = sys.stdout
            else:
                from twisted.python.logfile import LogFile
                stream = LogFile.fromFullPath("twistd.log")
        return cls(daemon, fmt=options.get("log-format") or "text",
                   level=options.get("log-level") or "info", stream=stream)


def offer_observer(parent, observer) -> bool:
    """Offer ``observer`` to twistd as the application's log observer.

    Call from the top service's ``setServiceParent(parent)``: twistd adds
    the plugin's service to a fresh ``Application`` and only then starts
    logging, with the application's ``ILogObserver`` component if it has
    one.  Returns True if the observer was set (not when ``parent`` is not
    an application or already has one).
    """
    if not isinstance(parent, Componentized):
        return False
    if parent.getComponent(ILogObserver, None) is not None:
        return False
    parent.setComponent(ILogObserver, observer)
    return True
