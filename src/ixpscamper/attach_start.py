"""``ixp-attach``'s first moment: connect to the VP, then import the rest.

A VP's pacing schedule starts when a user attaches (scamper's does, and so
does ours), so whatever the client does before it connects is probing
time lost.  The interpreter takes about 9 ms to start; ixp-attach's own
imports (argparse and the rest) took 12 ms more, so it connected some
22 ms after exec where sc_attach connects after 1 ms.  This entry point
imports only what a connect needs and, when the command line plainly
names a unix socket (``-R PATH`` or ``-U PATH``), connects to it before
anything else; `ixpscamper.attach` then parses the command line as always
and uses the socket if it names the same path.  Anything less plain (a TCP
``-p``, a help or version request, an option this scanner does not know)
goes the usual way: the parser says what is wrong, and a socket opened
for nothing is closed unused.
"""

from __future__ import annotations

import sys

# the C module: the socket module's own imports (selectors, enum, ...) are
# 2 ms of a start-up this module exists to shorten
import _socket

__all__ = ["main", "early_socket"]

# ixp-attach's options (attach.build_parser) that take a value, and those
# that do not and leave the run going
_VALUED = frozenset({"-R", "-U", "-p", "-i", "-o", "-c", "-O", "-P", "--format"})
_FLAGS = frozenset({"-d", "-D"})


def plain_unix_path(argv: list[str]) -> str | None:
    """The path of ``-R PATH`` / ``-U PATH`` when ``argv`` is plainly a run
    with one of them; otherwise None."""
    path = None
    i, n = 0, len(argv)
    while i < n:
        a = argv[i]
        if a in _VALUED:
            if i + 1 >= n:
                return None
            if a in ("-R", "-U"):
                if path is not None:
                    return None
                path = argv[i + 1]
            elif a == "-p":
                return None
            i += 2
        elif a in _FLAGS:
            i += 1
        else:
            return None   # -?, -v, an operand, a joined "-R/path": the parser's to judge
    return path or None


class EarlySocket:
    """A connected unix socket and the path it was connected to."""

    __slots__ = ("path", "sock")

    def __init__(self, path: str, sock) -> None:
        self.path = path
        self.sock = sock

    def take(self, path: str):
        """The socket (a `socket.socket`), if it was connected to ``path``
        (once); otherwise it is closed and the answer is None."""
        sock, self.sock = self.sock, None
        if sock is None:
            return None
        if path != self.path:
            sock.close()
            return None
        import socket
        return socket.socket(fileno=sock.detach())

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def early_socket(argv: list[str]) -> EarlySocket | None:
    """Connect now to the unix socket ``argv`` names, if it plainly names
    one; None if it does not or the connect fails (the usual path then
    connects again and reports the error in its own words)."""
    path = plain_unix_path(argv)
    if path is None:
        return None
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    sock.settimeout(10.0)    # attach.CONNECT_TIMEOUT (a full listen queue)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        return None
    return EarlySocket(path, sock)


def main() -> None:
    """Console entry point of ``ixp-attach``."""
    early = early_socket(sys.argv[1:])
    from ixpscamper.attach import main as attach_main
    attach_main(early=early)
