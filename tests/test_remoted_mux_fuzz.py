"""The mux socket's adapter fuzzed in-process: ixp-remoted's RemotedService
with a mux (MemoryReactorClock), VPs on StringTransports, mux clients fed
arbitrary bytes in arbitrary chunks.  A bad client only ever ends itself."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport

from ixpscamper.mux.frames import (
    ChannelData, ChannelOpen, Go, MuxDecoder, VpUpdate, encode_control, encode_data,
)
from ixpscamper.mux.hub import MuxFactory
from ixpscamper.remote.frames import Ack, FrameDecoder, MasterNew, encode_frame
from ixpscamper.remoted.service import RemotedService, VPFactory


def service(tmp_path):
    reactor = MemoryReactorClock()
    svc = RemotedService(reactor, [], None, mux_path=str(tmp_path / "mux"))
    return reactor, svc


def vp(svc, name=b"vp1", port=40000):
    proto = VPFactory(svc).buildProtocol(None)
    tr = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", port))
    proto.makeConnection(tr)
    proto.dataReceived(encode_frame(0, 0, MasterNew((name + b"xxxxxxxx")[:8], name).encode()))
    return proto, tr


def client(svc):
    p = MuxFactory(svc.hub).buildProtocol(None)
    tr = StringTransport()
    p.makeConnection(tr)
    return p, tr


def events(tr):
    return list(MuxDecoder("client").feed(tr.value()))


_frames = st.one_of(
    st.builds(lambda v, c: encode_control(ChannelOpen(v, c)), st.integers(0, 3), st.integers(1, 4)),
    st.builds(lambda c, d: encode_data(c, d), st.integers(1, 4), st.binary(max_size=40)),
    st.binary(max_size=30),   # garbage
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_frames, max_size=12), st.lists(st.integers(1, 64), max_size=20))
def test_bad_mux_client_never_hurts_the_controller_or_another_client(tmp_path_factory, frames,
                                                                     sizes):
    tmp = tmp_path_factory.mktemp("mux")
    reactor, svc = service(tmp)
    vproto, vtr = vp(svc)
    good, gtr = client(svc)
    bad, btr = client(svc)
    (upd,) = [e for e in events(gtr) if isinstance(e, VpUpdate)]
    stream = b"".join(frames)
    it = iter(sizes)
    while stream:
        k = next(it, len(stream))
        bad.dataReceived(stream[:k])   # must never raise
        stream = stream[k:]
    # the good client still works: open a channel and the VP gets CHANNEL_NEW
    before = len(vtr.value())
    good.dataReceived(encode_control(ChannelOpen(upd.vp_id, 99)) + encode_data(99, b"ping 127.0.0.1\n"))
    frames_out = FrameDecoder().feed(vtr.value()[before:])
    assert frames_out and frames_out[0].channel == 0          # CHANNEL_NEW
    assert any(f.payload == b"ping 127.0.0.1\n" for f in frames_out)
    assert not gtr.disconnecting
    # the VP session is intact
    assert svc.core.sessions and all(not s.gone for s in svc.core.sessions.values())


def test_vp_output_reaches_only_the_channels_client(tmp_path):
    reactor, svc = service(tmp_path)
    vproto, vtr = vp(svc)
    a, atr = client(svc)
    b, btr = client(svc)
    (upd,) = [e for e in events(atr) if isinstance(e, VpUpdate)]
    a.dataReceived(encode_control(ChannelOpen(upd.vp_id, 5)))
    (new,) = [f for f in FrameDecoder().feed(vtr.value()) if f.channel == 0 and f.payload[0] == 2]
    vch = int.from_bytes(new.payload[1:5], "big")
    vproto.dataReceived(encode_frame(0, 0, Ack(new.seq).encode()))  # the VP ACKs CHANNEL_NEW
    vproto.dataReceived(encode_frame(0, vch, b"MORE\n"))           # its first numbered frame
    assert [e for e in events(atr) if isinstance(e, ChannelData)] == [ChannelData(5, b"MORE\n")]
    assert not [e for e in events(btr) if isinstance(e, ChannelData)]
    assert isinstance(events(btr)[-1], Go)
