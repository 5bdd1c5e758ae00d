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


class CountingHandle(Handle):
    def __init__(self, *a):
        super().__init__(*a)
        self.writes = 0

    def write(self, data):
        self.writes += 1
        super().write(data)


def test_one_reads_frames_for_a_channel_reach_the_vp_as_one_write():
    """A client that sends every command in a mux frame of its own: what one
    read brings for a channel goes on to the VP as one write (one remote
    frame, one ACK back) instead of one per command, in order, and never
    across a control message."""
    host, conn, out, closes = make()
    host_open = host.mux_open

    def mux_open(c, vp_id, channel):
        h = host_open(c, vp_id, channel)
        if h is not None:
            host.handles[-1] = h = CountingHandle(host, vp_id, channel)
        return h
    host.mux_open = mux_open
    cmds = [b"ping -c 1 127.0.0.%d\n" % i for i in range(1, 51)]
    wire = encode_control(ChannelOpen(1, 7)) + encode_control(ChannelOpen(2, 8))
    for c in cmds:
        wire += encode_data(7, c) + encode_data(8, c)
    wire += encode_control(ChannelOpen(1, 9)) + encode_data(7, b"done\n")
    conn.data_received(wire)
    h7, h8, h9 = host.handles
    assert bytes(h7.data) == b"".join(cmds) + b"done\n"
    assert bytes(h8.data) == b"".join(cmds)
    assert (h7.writes, h8.writes, h9.writes) == (2, 1, 0)   # the open of 9 splits channel 7's run
    assert closes == []


def test_frames_before_a_bad_one_are_still_delivered():
    host, conn, out, closes = make()
    conn.data_received(encode_control(ChannelOpen(1, 7)) + encode_data(7, b"ping 127.0.0.1\n")
                       + encode_data(7, b"ping 127.0.0.2\n") + encode_control(ChannelOpen(9, 4)))
    (h,) = host.handles
    assert bytes(h.data) == b"ping 127.0.0.1\nping 127.0.0.2\n"
    assert closes == ["protocol error: CHANNEL_OPEN for unknown VP id 9"] and h.closed
