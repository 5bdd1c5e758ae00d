"""The mux hub's Twisted adapter: writes to a client gathered while the
controller handles one read from a VP (ixpscamper.mux.hub)."""

from __future__ import annotations

from twisted.internet.testing import StringTransport

from ixpscamper.mux.frames import encode_data
from ixpscamper.mux.hub import MuxHub, MuxProtocol


class CountingTransport(StringTransport):
    def __init__(self):
        super().__init__()
        self.writes = 0

    def write(self, data):
        self.writes += 1
        super().write(data)


def _client(hub):
    p = MuxProtocol(hub, "mux client 1")
    t = CountingTransport()
    p.makeConnection(t)
    t.clear()
    t.writes = 0
    return p, t


def test_writes_while_held_go_out_in_one_write_in_order():
    hub = MuxHub()
    p, t = _client(hub)
    hub.hold()
    for i in range(5):
        p._write(encode_data(7, b"result %d\n" % i))
    assert t.writes == 0 and t.value() == b""
    hub.release()
    assert t.writes == 1
    assert t.value() == b"".join(encode_data(7, b"result %d\n" % i) for i in range(5))


def test_nested_holds_flush_at_the_outermost_release_and_unheld_writes_are_immediate():
    hub = MuxHub()
    p, t = _client(hub)
    p._write(b"a")
    assert t.writes == 1
    hub.hold()
    hub.hold()
    p._write(b"b")
    hub.release()
    assert t.value() == b"a"
    p._write(b"c")
    hub.release()
    assert t.value() == b"abc" and t.writes == 2


def test_a_client_closed_while_held_gets_what_came_before_its_close():
    hub = MuxHub()
    p, t = _client(hub)
    hub.hold()
    p._write(b"x")
    p._close("bad input")
    assert t.value() == b"x" and t.disconnecting
    hub.release()
    assert t.value() == b"x" and t.writes == 1


def test_the_backlog_bound_still_cuts_a_client_that_does_not_read():
    hub = MuxHub(max_backlog=100)
    p, t = _client(hub)

    # a transport whose buffer never drains
    t.dataBuffer = b"x" * 90
    t.offset = 0
    hub.hold()
    p._write(b"y" * 20)
    hub.release()
    assert t.value() == b"" and p.conn.closed
