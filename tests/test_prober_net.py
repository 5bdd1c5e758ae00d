"""The network layer's reactor reader and kernel timestamps (no privileges needed)."""

from __future__ import annotations

import socket
import struct
import time

from ixpscamper.prober import net


class FakeReactor:
    def __init__(self):
        self.readers = []

    def addReader(self, r):
        self.readers.append(r)

    def removeReader(self, r):
        self.readers.remove(r)


def test_socket_reader_drains_with_kernel_timestamps():
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.setblocking(False)
    rx.setsockopt(socket.SOL_SOCKET, net.SO_TIMESTAMPNS, 1)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    got = []
    reactor = FakeReactor()
    reader = net.SocketReader(reactor, rx, lambda d, a, addr, ts: got.append((d, ts)), "test", burst=3)
    assert reactor.readers == [reader] and reader.fileno() == rx.fileno()
    sent_at = []
    for i in range(5):
        sent_at.append(time.time_ns())
        tx.sendto(bytes([i]), rx.getsockname())
    time.sleep(0.05)
    reader.doRead()  # at most `burst` datagrams per readable event
    assert [d for d, _ in got] == [b"\0", b"\1", b"\2"]
    reader.doRead()
    assert [d for d, _ in got] == [bytes([i]) for i in range(5)]
    # the kernel's receive time, not the (50 ms later) time of reading
    for (_, ts), t in zip(got, sent_at):
        assert t - 1_000_000 <= ts <= t + 20_000_000
    reader.doRead()  # nothing queued: returns quietly
    reader.close()
    assert reactor.readers == [] and reader.sock is None
    reader.doRead()  # closed: still quiet
    tx.close()


def test_ancillary_data_parsing():
    ts = struct.pack("@qq", 1_795_760_036, 95_706_123)
    hl = struct.pack("@i", 63)
    dst = socket.inet_pton(socket.AF_INET6, "2001:db8:1::10") + struct.pack("@I", 2)
    anc = [(socket.SOL_SOCKET, net.SO_TIMESTAMPNS, ts), (socket.IPPROTO_IPV6, socket.IPV6_HOPLIMIT, hl),
           (socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, dst)]
    t, extra = net._ts_from(anc, 5)
    assert t == 1_795_760_036_095_706_123
    assert extra == {"hlim": 63, "dst": dst[:16]}
    assert net._ts_from([], 7) == (7, {})
