"""A fault-injecting TCP proxy for tests (plain sockets + one thread; no
Twisted reactor, no asyncio, so any test can use it).

    from faultproxy import FaultProxy   # tests/ is on sys.path under pytest
    # (or: from tests.faultproxy import FaultProxy, run from the repo root)
    proxy = FaultProxy()
    port = proxy.start(0, "127.0.0.1", controller_port)   # 0 = pick a free port
    ...                       # point the VP at 127.0.0.1:port
    proxy.cut()               # close every connection now (both sides see EOF)
    proxy.cut(reset=True)     # ... with a TCP RST instead of a FIN
    proxy.cut_every(3.0, max_cuts=2)   # cut each connection once it is 3 s old
    proxy.cut_every(0.25, upto=2.0, reset="mixed", seed=7)
                              # ... once it is 0.25-2 s old (drawn per connection),
                              # half of the cuts with a FIN, half with an RST
    proxy.cut_every(0.25, after="down")
                              # ... due at 0.25 s, done right after the proxy has
                              # forwarded bytes target->client: the link dies
                              # with frames in flight, the reliability layer's worst case
    proxy.freeze(); proxy.thaw()       # stop / resume forwarding (bytes are held)
    proxy.stop()              # close everything, stop the thread

Counters: ``proxy.accepted`` (connections accepted), ``proxy.cuts``
(connections cut by cut()/cut_every()), ``proxy.bytes_up`` / ``bytes_down``
(client->target / target->client bytes forwarded), ``proxy.resets`` (cuts
done with an RST).
"""

from __future__ import annotations

import random
import selectors
import socket
import struct
import threading
import time
from typing import Optional

__all__ = ["FaultProxy"]


class _Pair:
    __slots__ = ("client", "target", "born", "out", "life", "policy")

    def __init__(self, client: socket.socket, target: socket.socket) -> None:
        self.client = client
        self.target = target
        self.born = time.monotonic()
        self.life: Optional[float] = None   # when cut_every cuts it (drawn per policy)
        self.policy = -1                    # which cut_every call drew ``life``
        self.out = {client: bytearray(), target: bytearray()}  # bytes waiting to go TO that socket

    def other(self, s: socket.socket) -> socket.socket:
        return self.target if s is self.client else self.client


class FaultProxy:
    """TCP proxy that can cut, reset or freeze the connections it carries."""

    def __init__(self) -> None:
        self.port = 0
        self.accepted = 0
        self.cuts = 0
        self.resets = 0
        self.bytes_up = 0
        self.bytes_down = 0
        self._lock = threading.Lock()
        self._pending: list[tuple] = []
        self._pairs: list[_Pair] = []
        self._frozen = False
        self._every: Optional[float] = None
        self._upto: Optional[float] = None
        self._after: Optional[str] = None
        self._every_reset: object = False
        self._policy = 0
        self._rng = random.Random()
        self._max_cuts: Optional[int] = None
        self._running = False
        self._thread: Optional[threading.Thread] = None

    # ---- public API -------------------------------------------------------

    def start(self, listen_port: int, target_host: str, target_port: int,
              listen_host: str = "127.0.0.1") -> int:
        """Listen on ``listen_host:listen_port`` (0 = any free port), forward
        each connection to ``target_host:target_port``.  Returns the port."""
        fam = socket.AF_INET6 if ":" in listen_host else socket.AF_INET
        self._listener = socket.socket(fam, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((listen_host, listen_port))
        self._listener.listen(64)
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        self._target = (target_host, target_port)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._listener, selectors.EVENT_READ, None)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._running = True
        self._thread = threading.Thread(target=self._run, name="faultproxy", daemon=True)
        self._thread.start()
        return self.port

    def cut(self, reset: bool = False) -> None:
        """Close every current connection on both sides (RST if ``reset``)."""
        self._command(("cut", reset))

    def cut_every(self, seconds: Optional[float], max_cuts: Optional[int] = None,
                  reset: bool | str = False, *, upto: Optional[float] = None,
                  after: Optional[str] = None, seed: Optional[int] = None) -> None:
        """Cut each connection once it has lived ``seconds`` (None: stop).

        ``upto``: each connection's lifetime is drawn uniformly from
        [seconds, upto] instead.  ``after``: a connection whose time is up
        is cut right after the proxy next forwards bytes ``"down"``
        (target -> client), ``"up"`` (client -> target) or ``"any"``, so
        the cut lands with data in flight; an idle connection waits.
        ``reset``: True = RST, False = FIN, ``"mixed"`` = each at random.
        ``seed`` makes the draws repeatable.  After ``max_cuts`` cuts in
        total, stop cutting.
        """
        if after not in (None, "down", "up", "any"):
            raise ValueError(f"after must be None, 'down', 'up' or 'any', not {after!r}")
        if reset not in (True, False, "mixed"):
            raise ValueError(f"reset must be True, False or 'mixed', not {reset!r}")
        if seconds is not None and upto is not None and upto < seconds:
            raise ValueError("upto must be >= seconds")
        with self._lock:
            self._every = seconds
            self._upto = upto
            self._after = after
            self._max_cuts = max_cuts
            self._every_reset = reset
            self._policy += 1
            if seed is not None:
                self._rng.seed(seed)
        self._wake()

    def freeze(self) -> None:
        """Stop forwarding in both directions; connections stay open."""
        with self._lock:
            self._frozen = True
        self._wake()

    def thaw(self) -> None:
        with self._lock:
            self._frozen = False
        self._wake()

    @property
    def live_connections(self) -> int:
        return len(self._pairs)

    def stop(self) -> None:
        """Close everything and stop the thread (idempotent)."""
        if not self._running:
            return
        self._command(("stop",))
        if self._thread is not None:
            self._thread.join(5)
        self._running = False

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- the loop -----------------------------------------------------------

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def _command(self, cmd: tuple) -> None:
        with self._lock:
            self._pending.append(cmd)
        self._wake()

    def _close_pair(self, p: _Pair, reset: bool = False) -> None:
        if p not in self._pairs:
            return
        self._pairs.remove(p)
        for s in (p.client, p.target):
            try:
                self._sel.unregister(s)
            except (KeyError, ValueError):
                pass
            if reset:
                try:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                except OSError:
                    pass
            try:
                s.close()
            except OSError:
                pass

    def _cut_pair(self, p: _Pair) -> None:
        how = self._every_reset
        reset = self._rng.random() < 0.5 if how == "mixed" else bool(how)
        self.cuts += 1  # counted first: a test may look once it sees EOF
        if reset:
            self.resets += 1
        self._close_pair(p, reset)

    def _flush_and_close(self, p: _Pair, dest: socket.socket) -> None:
        # An EOF passes through like a real connection's: what was read
        # before it is delivered first (a MASTER_REJ before the close, say).
        buf = p.out[dest]
        if buf:
            try:
                dest.settimeout(2)
                dest.sendall(bytes(buf))
            except OSError:
                pass
        self._close_pair(p)

    def _interest(self, p: _Pair) -> None:
        frozen = self._frozen
        for s in (p.client, p.target):
            ev = 0 if frozen else selectors.EVENT_READ
            if p.out[s] and not frozen:
                ev |= selectors.EVENT_WRITE
            try:
                if ev:
                    try:
                        self._sel.modify(s, ev, p)
                    except KeyError:
                        self._sel.register(s, ev, p)
                else:
                    try:
                        self._sel.unregister(s)
                    except KeyError:
                        pass
            except (ValueError, OSError):
                pass

    def _run(self) -> None:
        try:
            while True:
                with self._lock:
                    cmds, self._pending = self._pending, []
                    every, max_cuts = self._every, self._max_cuts
                    upto, after, policy = self._upto, self._after, self._policy
                for cmd in cmds:
                    if cmd[0] == "stop":
                        for p in list(self._pairs):
                            self._close_pair(p)
                        return
                    if cmd[0] == "cut":
                        for p in list(self._pairs):
                            self.cuts += 1  # counted first: a test may look once it sees EOF
                            self._close_pair(p, cmd[1])
                timeout = 0.2
                due: set[_Pair] = set()   # time is up; waiting for bytes to go ``after``
                if every is not None:
                    now = time.monotonic()
                    for p in list(self._pairs):
                        if max_cuts is not None and self.cuts >= max_cuts:
                            break
                        if p.policy != policy:
                            p.policy = policy
                            p.life = every if upto is None else self._rng.uniform(every, upto)
                        if now - p.born >= p.life:
                            if after is None:
                                self._cut_pair(p)
                            else:
                                due.add(p)
                    timeout = 0.05 if not due else 0.01
                for p in self._pairs:
                    self._interest(p)
                for key, ev in self._sel.select(timeout):
                    s = key.fileobj
                    if s is self._wake_r:
                        try:
                            while self._wake_r.recv(4096):
                                pass
                        except BlockingIOError:
                            pass
                        continue
                    if s is self._listener:
                        self._accept()
                        continue
                    p = key.data
                    if p not in self._pairs:
                        continue
                    if ev & selectors.EVENT_WRITE:
                        buf = p.out[s]
                        try:
                            n = s.send(buf)
                            del buf[:n]
                        except BlockingIOError:
                            n = 0
                        except OSError:
                            self._close_pair(p)
                            continue
                        if n and p in due and (max_cuts is None or self.cuts < max_cuts) and (
                                after == "any" or (after == "down") == (s is p.client)):
                            due.discard(p)
                            self._cut_pair(p)
                            continue
                    if ev & selectors.EVENT_READ and not self._frozen:
                        try:
                            data = s.recv(65536)
                        except BlockingIOError:
                            continue
                        except OSError:
                            data = b""
                        if not data:
                            self._flush_and_close(p, p.other(s))
                            continue
                        if s is p.client:
                            self.bytes_up += len(data)
                        else:
                            self.bytes_down += len(data)
                        p.out[p.other(s)] += data
        finally:
            for p in list(self._pairs):
                self._close_pair(p)
            for s in (self._listener, self._wake_r, self._wake_w):
                try:
                    s.close()
                except OSError:
                    pass
            self._sel.close()

    def _accept(self) -> None:
        try:
            c, _ = self._listener.accept()
        except OSError:
            return
        try:
            t = socket.create_connection(self._target, timeout=5)
        except OSError:
            c.close()
            return
        c.setblocking(False)
        t.setblocking(False)
        self.accepted += 1
        p = _Pair(c, t)
        self._pairs.append(p)
        self._interest(p)
