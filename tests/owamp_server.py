"""A minimal OWAMP server (RFC 4656, unauthenticated mode only) for the lab.

``python3 tests/owamp_server.py ADDR [ADDR ...]`` listens on TCP port 861
of each address and serves one test session per control connection, in
either direction:

- the client sends (Request-Session with conf-receiver 1): the server
  receives the test packets on a UDP port it names in Accept-Session,
  notes each one's arrival time and TTL, sends Stop-Sessions (no sessions)
  when all have arrived or the session's time is up, and answers the
  client's Fetch-Session with a Fetch-Ack holding one packet record each;
- the server sends (conf-sender 1): it sends the requested packets to the
  client's receiver address and port on the requested schedule (fixed
  intervals; DSCP from the type-P descriptor, TTL 255), then Stop-Sessions.

Everything the modes need is done; nothing else is (no authentication, no
encryption, HMACs are zero, one session per connection, no skip ranges).
It is a test helper for the owamp fixtures, run inside a lab namespace;
it sends only to the address a client asked for on its own connection.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import sys
import threading
import time

OWAMP_EPOCH_OFFSET = 2208988800
PORT = 861
#: error estimate we report: not synchronised, scale 0, multiplier 1
ERREST = 0x0001


def owamp_time(t: float) -> bytes:
    """A Unix time as an OWAMP timestamp (seconds since 1900, 32-bit fraction)."""
    sec = int(t)
    frac = int((t - sec) * (1 << 32)) & 0xFFFFFFFF
    return struct.pack(">II", sec + OWAMP_EPOCH_OFFSET, frac)


def owamp_duration(b: bytes) -> float:
    sec, frac = struct.unpack(">II", b)
    return sec + frac / (1 << 32)


def from_owamp_time(b: bytes) -> float:
    return owamp_duration(b) - OWAMP_EPOCH_OFFSET


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        d = conn.recv(n - len(buf))
        if not d:
            raise ConnectionError("control connection closed")
        buf += d
    return buf


def _pad16(n: int) -> int:
    return (n + 15) // 16 * 16


class Session:
    """One control connection: greeting, session set-up, the test, results."""

    def __init__(self, conn: socket.socket, local: str) -> None:
        self.conn = conn
        self.local = local
        self.family = socket.AF_INET6 if ":" in local else socket.AF_INET

    def run(self) -> None:
        c = self.conn
        # scamper 2026 takes a read event that comes before it has seen its
        # connect complete as a refused connection (result "noconn"); on a
        # namespace link the greeting can be that fast, so wait a moment
        time.sleep(0.05)
        # Server-Greeting: unused 12, modes 4 (1 = unauthenticated),
        # challenge 16, salt 16, count 4, mbz 12
        c.sendall(b"\x00" * 12 + struct.pack(">I", 1) + b"\x00" * 32
                  + struct.pack(">I", 1024) + b"\x00" * 12)
        setup = _recv_exact(c, 164)
        if struct.unpack(">I", setup[:4])[0] != 1:
            return
        # Server-Start: mbz 15, accept 0, server-iv 16, start-time 8, mbz 8
        c.sendall(b"\x00" * 16 + b"\x00" * 16 + owamp_time(time.time()) + b"\x00" * 8)
        head = _recv_exact(c, 112)
        if head[0] != 1:
            return
        nslots, npkts = struct.unpack(">II", head[4:12])
        rest = _recv_exact(c, 16 * nslots + 16)
        request = head + rest
        slots = [owamp_duration(rest[16 * i + 8:16 * i + 16]) for i in range(nslots)]
        conf_sender, conf_receiver = head[2], head[3]
        rport = struct.unpack(">H", head[14:16])[0]
        alen = 4 if head[1] == 4 else 16
        receiver = ipaddress.ip_address(head[32:32 + alen])
        padding = struct.unpack(">I", head[64:68])[0]
        start = from_owamp_time(head[68:76])
        timeout = owamp_duration(head[76:84])
        dscp = head[84]
        udp = socket.socket(self.family, socket.SOCK_DGRAM)
        udp.bind((self.local, 0))
        port = udp.getsockname()[1]
        # Accept-Session: accept 0, mbz, port, SID 16, mbz 12, HMAC 16
        sid = bytes(range(16))
        c.sendall(b"\x00\x00" + struct.pack(">H", port) + sid + b"\x00" * 28)
        ss = _recv_exact(c, 32)
        if ss[0] != 2:
            return
        c.sendall(b"\x00" * 32)  # Start-Ack: accept
        if conf_receiver == 1 and conf_sender == 0:
            self._receive(udp, request, npkts, slots, start, timeout)
        elif conf_sender == 1:
            self._send(udp, str(receiver), rport, npkts, slots, start, timeout, padding, dscp)

    def _stop_sessions(self) -> None:
        # Stop-Sessions: type 3, accept 0, mbz 2, num-sessions 0, mbz 8, HMAC 16
        self.conn.sendall(b"\x03\x00\x00\x00" + struct.pack(">I", 0) + b"\x00" * 24)

    def _receive(self, udp, request: bytes, npkts: int, slots, start, timeout) -> None:
        if self.family == socket.AF_INET:
            # (Python has no name for Linux's IP_RECVTTL; its cmsg is IP_TTL)
            udp.setsockopt(socket.IPPROTO_IP, getattr(socket, "IP_RECVTTL", 12), 1)
        else:
            udp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
        end = start + sum(slots[i % len(slots)] for i in range(npkts)) + timeout + 1
        got: dict[int, tuple[bytes, float, int]] = {}
        while len(got) < npkts:
            left = end - time.time()
            if left <= 0:
                break
            udp.settimeout(left)
            try:
                data, anc, _fl, _addr = udp.recvmsg(65535, 64)
            except socket.timeout:
                break
            rx = time.time()
            if len(data) < 14:
                continue
            ttl = 255
            for level, typ, val in anc:
                if (level, typ) in ((socket.IPPROTO_IP, socket.IP_TTL),
                                    (socket.IPPROTO_IPV6, socket.IPV6_HOPLIMIT)):
                    ttl = struct.unpack("i", val[:4])[0]
            seq = struct.unpack(">I", data[:4])[0]
            got.setdefault(seq, (data, rx, ttl))
        self._stop_sessions()
        # the client's Stop-Sessions (64 bytes) and Fetch-Session (48)
        _recv_exact(self.conn, 64)
        fetch = _recv_exact(self.conn, 48)
        if fetch[0] != 4:
            return
        recs = b""
        for seq in sorted(got):
            data, rx, ttl = got[seq]
            recs += (struct.pack(">I", seq) + data[12:14] + struct.pack(">H", ERREST)
                     + data[4:12] + owamp_time(rx) + bytes([ttl & 0xFF]))
        nxt = max(got) + 1 if got else 0
        # Fetch-Ack: accept 0, finished 1, mbz 2, next-seqno, num-skipranges
        # 0, num-records, HMAC; then the Request-Session, the (empty) skip
        # ranges and the records, each followed by an HMAC
        self.conn.sendall(b"\x00\x01\x00\x00" + struct.pack(">III", nxt, 0, len(got))
                          + b"\x00" * 16 + request + b"\x00" * 16
                          + recs + b"\x00" * (_pad16(len(recs)) - len(recs)) + b"\x00" * 16)

    def _send(self, udp, dst: str, dport: int, npkts: int, slots, start, timeout,
              padding: int, dscp: int) -> None:
        if self.family == socket.AF_INET:
            udp.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 255)
            udp.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, (dscp << 2) & 0xFF)
        else:
            udp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
            udp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, (dscp << 2) & 0xFF)
        due = start
        for seq in range(npkts):
            due += slots[seq % len(slots)] if slots else 0
            wait = due - time.time()
            if wait > 0:
                time.sleep(wait)
            pkt = (struct.pack(">I", seq) + owamp_time(time.time()) + struct.pack(">H", ERREST)
                   + b"\x00" * padding)
            udp.sendto(pkt, (dst, dport))
        time.sleep(min(timeout, 2.0))
        self._stop_sessions()
        time.sleep(0.5)  # let the client read it before the connection closes


def listen(addr: str) -> socket.socket:
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, PORT))
    s.listen(8)
    return s


def serve(s: socket.socket, addr: str) -> None:
    while True:
        conn, _peer = s.accept()
        threading.Thread(target=_one, args=(conn, addr), daemon=True).start()


def _one(conn: socket.socket, addr: str) -> None:
    try:
        Session(conn, addr).run()
    except (OSError, ConnectionError, struct.error, ValueError) as e:
        print(f"owamp_server: {e}", file=sys.stderr)
    finally:
        conn.close()


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: owamp_server.py ADDR [ADDR ...]", file=sys.stderr)
        return 2
    socks = [listen(a) for a in argv]
    for s, a in list(zip(socks, argv))[1:]:
        threading.Thread(target=serve, args=(s, a), daemon=True).start()
    # a line on stdout once every address listens, for whoever waits on it
    print("ready", flush=True)
    serve(socks[0], argv[0])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
