"""A small VP for the controller's back-pressure tests: our sans-IO
VPSession over a blocking socket, on its own thread.

Unlike tests/remotestub.py's StubVP it can *pause* (stay connected, read
nothing, ACK nothing -- like a SIGSTOPped VP), can sink what it receives
(count + SHA-256 per channel) instead of echoing, and can FIN a channel
after a given number of bytes.  Every call into the session and every
socket operation after ``start()`` happens on the VP's thread; the test
only flips flags.
"""

from __future__ import annotations

import hashlib
import select
import socket
import threading
import time
from typing import Optional

from twisted.internet.task import Clock

from ixpscamper.remote.session import VPSession


class BackPressureVP:
    def __init__(self, port: int, name: bytes = b"stub", echo: bool = True,
                 host: str = "127.0.0.1") -> None:
        self.addr = (host, port)
        self.echo = echo
        self.clock = Clock()
        self.session = VPSession(self.clock, self, name=name)
        self.paused = False          # connected but reading nothing
        self.online = True           # False: drop the connection and stay away
        self.got: dict[int, int] = {}
        self.digest: dict[int, "hashlib._Hash"] = {}
        self.fin_after: dict[int, int] = {}
        self.opened: list[int] = []
        self.log: list = []
        self.closes: list[str] = []
        self.sock: Optional[socket.socket] = None
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="bp-vp", daemon=True)

    # ---- VPEvents (on the VP's thread) ---------------------------------------

    def established(self, master_id, resumed):
        self.log.append(("established", master_id, resumed))

    def rejected(self):
        self.log.append(("rejected",))

    def channel_opened(self, ch):
        self.opened.append(ch)
        self.session.send_data(ch, b"MORE\n")

    def channel_data(self, ch, data):
        self.got[ch] = self.got.get(ch, 0) + len(data)
        self.digest.setdefault(ch, hashlib.sha256()).update(data)
        if self.echo:
            self.session.send_data(ch, data)
        if self.fin_after.get(ch) == self.got[ch]:
            self.session.send_fin(ch)

    def channel_closed(self, ch):
        self.session.send_fin(ch)

    # ---- transport -----------------------------------------------------------

    def _connect(self) -> None:
        s = socket.create_connection(self.addr, timeout=10)
        self.sock = s

        def close(reason, s=s):
            self.closes.append(reason or "closed by the session")
            self._drop(s, lost=False)
        self.session.connection_made(s.sendall, close)

    def _drop(self, s: Optional[socket.socket] = None, lost: bool = True) -> None:
        s = s or self.sock
        if s is None:
            return
        if s is self.sock:
            self.sock = None
            if lost:
                self.session.connection_lost()
        try:
            s.close()
        except OSError:
            pass

    def start(self) -> BackPressureVP:
        self._connect()
        self._thread.start()
        return self

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop:
            now = time.monotonic()
            self.clock.advance(now - last)
            last = now
            if not self.online and self.sock is not None:
                self._drop()
            if self.sock is None:
                if self.online:
                    try:
                        self._connect()
                    except OSError:
                        time.sleep(0.1)
                else:
                    time.sleep(0.02)
                continue
            if self.paused:
                time.sleep(0.02)
                continue
            s = self.sock
            try:
                r, _, _ = select.select([s], [], [], 0.05)
                if r:
                    data = s.recv(1 << 18)
                    if not data:
                        self.closes.append("EOF")
                        self._drop()
                        continue
                    self.session.data_received(data)
            except (OSError, ValueError) as e:
                self.closes.append(f"error {e}")
                self._drop()

    def stop(self) -> None:
        self._stop = True
        if self._thread.is_alive():
            self._thread.join(5)
        self._drop()
