"""TOML config files for the daemons, driven by their ``usage.Options``.

A config file holds top-level keys named like the long options
(``remote = "host:port"``, ``pps = 100``, ``no-tls = true``, a list for a
repeatable option: ``port = ["31337", "[::1]:31338"]``).  Every option of
the ``usage.Options`` class is a key; nothing else is.  :func:`load` checks
a file against the class and returns what it sets; :class:`ConfigFileMixin`
adds ``--config FILE`` to an Options class, with the command line
overriding the file.  Errors name the file and the line of the key
(tomllib gives no line numbers for values, so the key is looked up in the
file's text).

:class:`HupReloader` runs a reload callable on SIGHUP, in the reactor
thread; the callable returns the one line that says what it reloaded.
"""

from __future__ import annotations

import difflib
import getopt
import inspect
import re
import signal
import sys
import tomllib
from typing import Any, Callable

from twisted.logger import Logger
from twisted.python import usage

__all__ = ["ConfigFileError", "load", "ConfigFileMixin", "option_specs", "OptionSpec",
           "HupReloader", "key_line"]

log = Logger(namespace="ixp-ops.config")

#: opt_* methods of usage.Options itself, which are not settings
_NOT_SETTINGS = {"help", "version", "config", "_shell_completion"}


class ConfigFileError(usage.UsageError):
    """A config file that cannot be used; the message is ``FILE[:LINE]: what``."""


class OptionSpec:
    """One option of an Options class, as a config file sees it."""

    def __init__(self, name: str, kind: str, coerce: Callable | None = None,
                 method: str | None = None, doc: str = "") -> None:
        self.name = name        # the long option, dashes as on the command line
        self.kind = kind        # "param", "flag" or "method" (an opt_* handler, repeatable)
        self.coerce = coerce
        self.method = method
        self.doc = doc

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"OptionSpec({self.name!r}, {self.kind!r})"


def _accumulate(cls, attr: str) -> list:
    out: list = []
    for klass in reversed(inspect.getmro(cls)):
        out.extend(klass.__dict__.get(attr, []))
    return out


def option_specs(options_class) -> dict[str, OptionSpec]:
    """Every setting of ``options_class`` by long name (``--config`` excluded)."""
    specs: dict[str, OptionSpec] = {}
    for entry in _accumulate(options_class, "optParameters"):
        name = entry[0]
        coerce = entry[4] if len(entry) > 4 else None
        specs[name] = OptionSpec(name, "param", coerce=coerce, doc=entry[3] if len(entry) > 3 else "")
    for entry in _accumulate(options_class, "optFlags"):
        specs[entry[0]] = OptionSpec(entry[0], "flag", doc=entry[2] if len(entry) > 2 else "")
    for attr in dir(options_class):
        if not attr.startswith("opt_"):
            continue
        mname = attr[4:]
        if len(mname) == 1 or mname in _NOT_SETTINGS:
            continue  # one-letter aliases (opt_P = opt_port) and usage.Options' own
        name = mname.replace("_", "-")
        if name in specs:
            continue
        fn = getattr(options_class, attr)
        specs[name] = OptionSpec(name, "method", method=attr, doc=(fn.__doc__ or "").strip())
    specs.pop("config", None)
    return specs


def key_line(text: str, key: str) -> int | None:
    """Line (1-based) where top-level ``key`` is set in TOML ``text``, if found."""
    pat = re.compile(r"""^\s*(?:%s|"%s"|'%s')\s*=""" % ((re.escape(key),) * 3))
    for n, line in enumerate(text.splitlines(), 1):
        if re.match(r"^\s*\[", line):
            return None  # a table starts: top-level keys come before it
        if pat.match(line):
            return n
    return None


def _table_line(text: str, key: str) -> int | None:
    pat = re.compile(r"""^\s*\[\[?\s*(?:%s|"%s"|'%s')\s*[\].]""" % ((re.escape(key),) * 3))
    for n, line in enumerate(text.splitlines(), 1):
        if pat.match(line):
            return n
    return None


def _where(path: str, text: str, key: str) -> str:
    n = key_line(text, key)
    return f"{path}:{n}" if n else path


def _scalar(value: Any) -> str | None:
    """A TOML value as the command line would spell it, or None if not a scalar."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float, str)):
        return str(value)
    return None


def load(path: str, options_class) -> dict[str, Any]:
    """Read the TOML file ``path`` and check it against ``options_class``.

    Returns ``{long option name: value}`` for every key in the file: a
    string (what the command line would give) for a parameter, ``True`` /
    ``False`` for a flag, a list of strings for an ``opt_*`` handler
    (repeatable options; a single value is a list of one).  Raises
    :class:`ConfigFileError` naming the file, the line and the key for an
    unknown key or a value of the wrong type, or one its option refuses.
    """
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ConfigFileError(f"{path}: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigFileError(f"{path}: not UTF-8 text (byte {e.start})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        # the message ends "(at line N, column M)": keep it, it is the line
        raise ConfigFileError(f"{path}: {e}") from None
    specs = option_specs(options_class)
    out: dict[str, Any] = {}
    for key, value in data.items():
        where = _where(path, text, key)
        spec = specs.get(key)
        if spec is None:
            close = difflib.get_close_matches(key, list(specs), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            if isinstance(value, dict):
                n = _table_line(text, key)
                where = f"{path}:{n}" if n else path
                raise ConfigFileError(f"{where}: unknown table [{key}]{hint}: settings are "
                                      "top-level keys named like the long options")
            raise ConfigFileError(f"{where}: unknown key '{key}'{hint}")
        if spec.kind == "flag":
            if not isinstance(value, bool):
                raise ConfigFileError(f"{where}: {key}: expected true or false, not {value!r}")
            out[key] = value
            continue
        if spec.kind == "method":
            items = value if isinstance(value, list) else [value]
            strs = []
            for item in items:
                s = _scalar(item)
                if s is None:
                    raise ConfigFileError(f"{where}: {key}: expected a string or number "
                                          f"(or a list of them), not {item!r}")
                strs.append(s)
            probe = options_class()
            for s in strs:
                try:
                    getattr(probe, spec.method)(s)
                except (usage.UsageError, ValueError) as e:
                    raise ConfigFileError(f"{where}: {key} = {s!r}: {e}") from None
            out[key] = strs
            continue
        s = _scalar(value)
        if s is None:
            raise ConfigFileError(f"{where}: {key}: expected a string or number, not {value!r}")
        if spec.coerce is not None:
            try:
                spec.coerce(s)
            except (ValueError, TypeError) as e:
                raise ConfigFileError(f"{where}: {key} = {value!r}: {e}") from None
        out[key] = s
    return out


def _find_config(argv: list[str], synonyms: dict) -> tuple[str | None, list[str]]:
    """Take ``--config FILE`` / ``--config=FILE`` out of ``argv`` (the last one counts)."""
    path = None
    rest: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            rest.extend(argv[i:])
            break
        if a == "--config":
            if i + 1 >= len(argv):
                raise usage.UsageError("option --config requires argument")
            path = argv[i + 1]
            i += 2
            continue
        if a.startswith("--config="):
            path = a[len("--config="):]
            i += 1
            continue
        rest.append(a)
        i += 1
    return path, rest


class ConfigFileMixin:
    """Adds ``--config FILE`` to a ``usage.Options`` class (put it first in the bases).

    The file's settings are applied as if given on the command line before
    the real command line, so the command line wins; a repeatable option
    given on the command line replaces the file's values instead of adding
    to them.  A flag set in the file cannot be unset from the command line
    (usage.Options has no ``--no-X`` for ``--X``).  After parsing,
    ``self["config"]`` is the file (or None) and ``self.config_values`` what
    it set; ``self.argv`` is the command line without ``--config``, so a
    reload can parse file and command line again.
    """

    optParameters = [["config", None, None,
                      "TOML file of settings named like the long options (the command line "
                      "overrides it); SIGHUP re-reads what can change live"]]

    config_values: dict[str, Any] = {}
    argv: list[str] = []

    def parseOptions(self, options=None):  # noqa: N802 -- usage.Options' name
        if options is None:
            options = sys.argv[1:]
        path, rest = _find_config(list(options), {})
        self.argv = rest
        if path is None:
            super().parseOptions(rest)
            self["config"] = None
            self.config_values = {}
            return
        values = load(path, type(self))
        given = self._given(rest)
        specs = option_specs(type(self))
        file_argv: list[str] = []
        for key, value in values.items():
            if key in given:
                continue
            spec = specs[key]
            if spec.kind == "flag":
                if value:
                    file_argv.append(f"--{key}")
            elif spec.kind == "method":
                for v in value:
                    file_argv += [f"--{key}", v]
            else:
                file_argv += [f"--{key}", value]
        try:
            super().parseOptions(file_argv + rest)
        except usage.UsageError as e:
            raise self._attribute(e, path, values, given) from None
        self["config"] = path
        self.config_values = values

    def _given(self, argv: list[str]) -> set[str]:
        """Long names of the options on the command line ``argv``."""
        try:
            opts, _ = getopt.getopt(argv, self.shortOpt, self.longOpt)
        except getopt.error:
            return set()  # the real parse will say what is wrong
        given = set()
        for opt, _arg in opts:
            name = opt[2:] if opt.startswith("--") else opt[1:]
            canon = self.synonyms.get(name) or self.synonyms.get(name.replace("-", "_"))
            if canon is None:
                continue
            given.add(canon.replace("_", "-"))
        return given

    def _attribute(self, e: usage.UsageError, path: str, values: dict, given: set) -> usage.UsageError:
        """Name the file and line when an error is about a setting that came from the file."""
        msg = str(e)
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError:
            return e
        for key in values:
            if key in given:
                continue
            if re.search(r"(?<![\w-])(--)?%s(?![\w-])" % re.escape(key), msg):
                return ConfigFileError(f"{_where(path, text, key)}: {msg}")
        return e


class HupReloader:
    """Calls ``reload()`` in the reactor thread on SIGHUP and logs the line it returns.

    ``reload`` returns one line saying what it reloaded (or raises an
    exception whose message says why nothing was); a failed reload keeps
    the old settings.  ``install()`` / ``uninstall()`` from the service's
    start and stop; outside the main thread (tests) installing does nothing.
    """

    def __init__(self, reactor, reload: Callable[[], str], name: str) -> None:
        # name: the daemon ("ixp-vp"), the namespace of the log lines
        self.reactor = reactor
        self.reload = reload
        self.name = name
        self.log = Logger(namespace=f"{name}.config")
        self._old = None
        self._installed = False

    def install(self) -> None:
        try:
            self._old = signal.signal(signal.SIGHUP, self._signal)
            self._installed = True
        except ValueError:  # not the main thread
            pass

    def uninstall(self) -> None:
        if self._installed:
            signal.signal(signal.SIGHUP, self._old if self._old is not None else signal.SIG_DFL)
            self._installed = False

    def _signal(self, signum, frame) -> None:
        self.reactor.callFromThread(self.run)

    def run(self) -> str | None:
        """Reload now; returns the logged line."""
        try:
            line = self.reload()
        except (usage.UsageError, ValueError, OSError) as e:
            line = f"SIGHUP: reload failed, keeping the old settings: {e}"
            self.log.error("{line}", line=line, ixp_always=True)
            return line
        except Exception:
            self.log.failure("SIGHUP: reload failed, keeping the old settings")
            return None
        # shown whatever the (perhaps just changed) log level
        self.log.info("{line}", line=line, ixp_always=True)
        return line
