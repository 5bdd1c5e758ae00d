"""The controller's mux-client state machine (ixpscamper.mux.server), sans-IO."""

from __future__ import annotations

from ixpscamper.mux.frames import (
    Attr, ChannelClose, ChannelData, ChannelOpen, Go, MuxDecoder, VpDepart, VpUpdate,
    encode_control, encode_data,
)
from ixpscamper.mux.server import MuxServerConnection


class Handle:
    def __init__(self, host, vp_id, ch):
        self.host, self.vp_id, self.ch = host, vp_id, ch
        self.data = bytearray()
        self.closed = False

    def write(self, data):
        self.data += data

    def close(self):
        self.closed = True


class Host:
    def __init__(self, vps=(1, 2)):
        self.vps = set(vps)
        self.handles = []
        self.warnings = []

    def mux_open(self, conn, vp_id, channel):
        if vp_id not in self.vps:
            return None
        h = Handle(self, vp_id, channel)
        self.handles.append(h)
        return h

    def mux_warn(self, conn, message):
        self.warnings.append(message)


def make(vps=(1, 2)):
    host = Host(vps)
    out, closes = bytearray(), []
    conn = MuxServerConnection(host, out.extend, closes.append)
    return host, conn, out, closes


def events(out):
    return list(MuxDecoder("client").feed(bytes(out)))


def test_start_announces_then_go():
    host, conn, out, _ = make()
    conn.start([VpUpdate(1, ((Attr.NAME, "a"),)), VpUpdate(2, ())])
    assert events(out) == [VpUpdate(1, ((Attr.NAME, "a"),)), VpUpdate(2, ()), Go()]


def test_channel_both_ways_and_close():
    host, conn, out, closes = make()
    conn.data_received(encode_control(ChannelOpen(1, 7)) + encode_data(7, b"ping -c 1 127.0.0.1\n"))
    (h,) = host.handles
    assert (h.vp_id, h.ch, bytes(h.data)) == (1, 7, b"ping -c 1 127.0.0.1\n")
    conn.channel_data(7, b"MORE\n")
    conn.channel_finished(7)
    assert events(out) == [ChannelData(7, b"MORE\n"), ChannelClose(7)]
    conn.channel_data(7, b"late\n")     # after the FIN: nothing more for the client
    assert events(out)[-1] == ChannelClose(7)
    assert closes == []


def test_unknown_vp_ends_client_and_finishes_its_channels():
    host, conn, out, closes = make()
    conn.data_received(encode_control(ChannelOpen(1, 3)))
    conn.data_received(encode_control(ChannelOpen(9, 4)))
    assert closes == ["protocol error: CHANNEL_OPEN for unknown VP id 9"]
    assert host.handles[0].closed and conn.closed


def test_reused_channel_id_is_fatal_even_after_close():
    host, conn, out, closes = make()
    conn.data_received(encode_control(ChannelOpen(1, 3)))
    conn.channel_finished(3)
    conn.data_received(encode_control(ChannelOpen(2, 3)))
    assert closes == ["protocol error: CHANNEL_OPEN reuses channel id 3"]


def test_stray_data_is_reported_once_and_counted():
    host, conn, out, closes = make()
    conn.data_received(encode_data(5, b"abc") + encode_data(6, b"de"))
    assert len(host.warnings) == 1 and "channel 5" in host.warnings[0]
    assert conn.stray_bytes == 5 and closes == []


def test_client_close_finishes_channels_once():
    host, conn, out, closes = make()
    conn.data_received(encode_control(ChannelOpen(1, 3)) + encode_control(ChannelOpen(2, 4)))
    conn.connection_lost()
    conn.connection_lost()
    assert [h.closed for h in host.handles] == [True, True]


def test_depart_forgets_channels_without_close():
    host, conn, out, closes = make()
    conn.data_received(encode_control(ChannelOpen(1, 3)))
    conn.vp_depart(1, [3])
    assert events(out) == [VpDepart(1)]
    conn.connection_lost()
    assert not host.handles[0].closed   # the VP is gone: nothing to finish


def test_vp_output_during_open_reaches_the_client():
    """The VP side may answer (MORE, list, cycle start) from inside mux_open."""
    host, conn, out, closes = make()
    orig = host.mux_open

    def eager(c, vp_id, ch):
        c.channel_data(ch, b"MORE\n")
        return orig(c, vp_id, ch)
    host.mux_open = eager
    conn.data_received(encode_control(ChannelOpen(1, 3)))
    assert events(out) == [ChannelData(3, b"MORE\n")]
