"""Status of a running daemon: a unix socket answering one JSON document,
and ``ixp-status PATH [--json]`` reading it.

The daemon side is :class:`StatusFactory` (a Protocol factory: each
connection gets ``json.dumps(document()) + "\\n"`` and is closed) and
:func:`status_service` (the listening service, mode 0700 by default, a
stale socket from an earlier run removed, never another file).

Documents::

    {"daemon": "ixp-remoted", "pid": N, "time": T, "vps": [VP, ...]}
    {"daemon": "ixp-vp", "pid": N, "time": T, "monitor": ..., "state": ...,
     "link": {...}, "tasks": {...}}

where a controller's ``VP`` is an object with at least ``monitor`` and
``state`` (``up`` / ``away``), and ideally ``address``, ``connected_since``
(epoch seconds), ``away_since``, ``resumes``, ``channels``, ``users``,
``bytes_in``, ``bytes_out`` (see :func:`controller_document`).
``ixp-status --json`` prints a JSON list of such objects: the controller's
VPs, or the VP itself as one.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import sys
import time
from typing import Any, Callable

from twisted.internet import endpoints, protocol
from twisted.logger import Logger

__all__ = ["StatusFactory", "status_service", "controller_document", "main", "fetch",
           "entries", "clear_stale_socket", "StatusSocketError"]

log = Logger(namespace="ixp-ops.status")


class StatusSocketError(Exception):
    """The status socket path cannot be used; the message says why."""


class _StatusProtocol(protocol.Protocol):
    def connectionMade(self) -> None:  # noqa: N802
        try:
            doc = self.factory.document()
            data = (json.dumps(doc, default=str, sort_keys=False) + "\n").encode()
        except Exception as e:  # a bug in a provider must not break the socket
            self.factory.log.failure("building the status document failed")
            data = (json.dumps({"error": f"status unavailable: {type(e).__name__}"}) + "\n").encode()
        self.transport.write(data)
        self.transport.loseConnection()

    def dataReceived(self, data: bytes) -> None:  # noqa: N802
        pass  # nothing is asked: the document is the answer to connecting


class StatusFactory(protocol.Factory):
    """Answers every connection with ``document()`` as one JSON line, then closes."""

    protocol = _StatusProtocol
    noisy = False

    def __init__(self, document: Callable[[], Any], daemon: str = "ixp") -> None:
        self.document = document
        self.log = Logger(namespace=f"{daemon}.status")


def controller_document(vps: Callable[[], list[dict]], daemon: str = "ixp-remoted",
                        clock=None) -> Callable[[], dict]:
    """The document callable for a controller: ``vps()`` returns the VP list.

    Wiring into ixp-remoted is then
    ``status_service(reactor, path, controller_document(service.status_vps))``.
    """
    def document() -> dict:
        now = clock.seconds() if clock is not None else time.time()
        return {"daemon": daemon, "pid": os.getpid(), "time": now, "vps": list(vps())}
    return document


def clear_stale_socket(path: str) -> None:
    """Remove a socket file nobody listens on; refuse any other kind of file."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as e:
        raise StatusSocketError(f"{path}: {e.strerror}") from None
    if not stat.S_ISSOCK(st.st_mode):
        raise StatusSocketError(f"{path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)
    else:
        raise StatusSocketError(f"{path} is in use by another process")
    finally:
        probe.close()


def status_service(reactor, path: str, document: Callable[[], Any], daemon: str = "ixp",
                   mode: int = 0o700):
    """A service listening on the unix socket ``path`` (created ``mode``) with ``document``.

    Raises :class:`StatusSocketError` if ``path`` is another kind of file
    or a live socket.  The socket file is removed when the service stops.
    """
    from twisted.application import internet

    clear_stale_socket(path)
    ep = endpoints.UNIXServerEndpoint(reactor, path, mode=mode)

    class _Service(internet.StreamServerEndpointService):
        def stopService(self):  # noqa: N802
            d = super().stopService()

            def unlink(r):
                try:
                    if stat.S_ISSOCK(os.lstat(path).st_mode):
                        os.unlink(path)
                except OSError:
                    pass
                return r
            if d is not None:
                d.addBoth(unlink)
            return d

    svc = _Service(ep, StatusFactory(document, daemon))
    svc._raiseSynchronously = True  # a socket we cannot bind ends startup with its error
    return svc


# -- the client ---------------------------------------------------------------

def fetch(path: str, timeout: float = 5.0) -> dict:
    """Read the document from the status socket ``path``."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    finally:
        s.close()
    data = b"".join(chunks)
    if not data.strip():
        raise ValueError("the daemon sent nothing")
    return json.loads(data)


def entries(doc: dict) -> list[dict]:
    """The list ``--json`` prints: a controller's VPs, or the VP itself."""
    if isinstance(doc.get("vps"), list):
        return doc["vps"]
    entry = {k: v for k, v in doc.items() if k not in ("pid", "time")}
    entry.setdefault("monitor", None)
    entry.setdefault("state", "unknown")
    return [entry]


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(max(0, seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def _bytes(n: Any) -> str:
    if not isinstance(n, (int, float)):
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024
    return str(n)  # pragma: no cover


def _when(t: Any) -> str:
    if not isinstance(t, (int, float)):
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) + "Z"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows) + "\n"


def render(doc: dict) -> str:
    """Human-readable status."""
    now = doc.get("time") or time.time()
    if isinstance(doc.get("vps"), list):
        rows = [["MONITOR", "ADDRESS", "CONNECTED SINCE", "STATE", "RESUMES", "CHANNELS",
                 "USERS", "IN", "OUT"]]
        for vp in doc["vps"]:
            state = str(vp.get("state", "?"))
            if state == "away":
                since = vp.get("away_since")
                state = f"away {_duration(now - since) if isinstance(since, (int, float)) else ''}".strip()
            rows.append([str(vp.get("monitor") or "-"), str(vp.get("address") or "-"),
                         _when(vp.get("connected_since")), state, str(vp.get("resumes", "-")),
                         str(vp.get("channels", "-")), str(vp.get("users", "-")),
                         _bytes(vp.get("bytes_in")), _bytes(vp.get("bytes_out"))])
        head = f"{doc.get('daemon', 'controller')} (pid {doc.get('pid', '?')}): {len(doc['vps'])} VP(s)\n"
        return head + (_table(rows) if len(rows) > 1 else "")
    link = doc.get("link") or {}
    tasks = doc.get("tasks") or {}
    lines = [f"{doc.get('daemon', 'ixp-vp')} {doc.get('monitor') or '(no monitor name)'} "
             f"(pid {doc.get('pid', '?')}): {doc.get('state', '?')}"]
    if link:
        st = link.get("state", "?")
        since = link.get("state_since")
        lines.append(f"  controller {link.get('remote', '-')} ({'TLS' if link.get('tls') else 'no TLS'}): "
                     f"{st} for {_duration(now - since) if isinstance(since, (int, float)) else '-'}")
        lines.append(f"  session {link.get('session_id') or '-'}: {link.get('sessions', 0)} "
                     f"established, {link.get('resumes', 0)} resumed, "
                     f"{link.get('rejected', 0)} rejected, {link.get('connects', 0)} connections")
        if link.get("last_error"):
            lines.append(f"  last problem: {link['last_error']}")
        lines.append(f"  channels {link.get('channels', 0)}; bytes in {_bytes(link.get('bytes_in'))}, "
                     f"out {_bytes(link.get('bytes_out'))}")
    if tasks:
        by = tasks.get("by_type") or {}
        detail = ", ".join(f"{t} {c.get('queued', 0)}q/{c.get('running', 0)}r/{c.get('done', 0)}d"
                           for t, c in sorted(by.items()))
        lines.append(f"  tasks: {tasks.get('queued', 0)} queued, {tasks.get('running', 0)} running, "
                     f"{tasks.get('done', 0)} done" + (f" ({detail})" if detail else ""))
    probes = doc.get("probes") or {}
    if probes:
        lines.append(f"  probes sent {probes.get('sent', 0)}, replies {probes.get('replies', 0)}, "
                     f"pps {probes.get('pps_achieved', 0):.1f} of {probes.get('pps_limit', '-')}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``ixp-status PATH [--json]``."""
    import argparse

    from ixpscamper.cli_support import ArgumentParser
    ap = ArgumentParser(prog="ixp-status",
                                 description="Show the status of a running ixp-vp or ixp-remoted "
                                             "(its --status socket).")
    ap.add_argument("path", help="the daemon's --status socket")
    ap.add_argument("--json", action="store_true",
                    help="print a JSON list of objects (the controller's VPs, or the VP itself), "
                         "each with at least 'monitor' and 'state'")
    args = ap.parse_args(argv)
    try:
        doc = fetch(args.path)
    except FileNotFoundError:
        print(f"ixp-status: {args.path}: no such socket (is the daemon running with --status?)",
              file=sys.stderr)
        return 1
    except PermissionError:
        print(f"ixp-status: {args.path}: permission denied", file=sys.stderr)
        return 1
    except (ConnectionRefusedError, socket.timeout, TimeoutError) as e:
        print(f"ixp-status: {args.path}: {getattr(e, 'strerror', None) or 'no answer'} "
              "(is the daemon running?)", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"ixp-status: {args.path}: {e.strerror or e}", file=sys.stderr)
        return 1
    except ValueError as e:
        print(f"ixp-status: {args.path}: not a status document ({e})", file=sys.stderr)
        return 1
    if not isinstance(doc, dict):
        print(f"ixp-status: {args.path}: not a status document", file=sys.stderr)
        return 1
    try:
        if args.json:
            sys.stdout.write(json.dumps(entries(doc), indent=2, default=str) + "\n")
        else:
            sys.stdout.write(render(doc))
        sys.stdout.flush()
    except BrokenPipeError:
        try:
            sys.stdout = None  # type: ignore[assignment]
        except Exception:
            pass
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
