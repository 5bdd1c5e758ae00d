"""Sans-IO tests of the remote-protocol framing (ixpscamper.remote.frames)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ixpscamper.remote.frames import (
    MAX_PAYLOAD, Ack, ChannelFin, ChannelNew, Frame, FrameDecoder, Keepalive, MasterId,
    MasterNew, MasterOk, MasterRej, MasterRes, ProtocolError, decode_control, encode_frame,
    valid_monitor_name,
)

u32 = st.integers(0, 2**32 - 1)
magic = st.binary(min_size=1, max_size=255)
name = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-",
               min_size=1, max_size=200).map(str.encode).filter(valid_monitor_name)

controls = st.one_of(
    st.builds(MasterNew, magic, st.one_of(st.none(), name)),
    st.builds(MasterId, st.binary(min_size=1, max_size=200).map(
        lambda b: bytes(0x20 + c % 95 for c in b))),
    st.builds(ChannelNew, st.integers(1, 2**32 - 1)),
    st.builds(ChannelFin, st.integers(1, 2**32 - 1)),
    st.builds(Keepalive),
    st.builds(Ack, u32),
    st.builds(MasterRes, magic, u32, u32, u32),
    st.builds(MasterRej),
    st.builds(MasterOk, u32),
)
frames = st.builds(Frame, u32, u32, st.binary(min_size=1, max_size=300))


# ---- captured bytes from the protocol doc (B.11), both ways ----------------

HEX = [
    ("00000000 00000000 0012 00 08 21aea60a30ee8304 07 74657374767000",
     MasterNew(bytes.fromhex("21aea60a30ee8304"), b"testvp")),
    ("00000000 00000000 000b 00 08 82c138724e83a779 00",
     MasterNew(bytes.fromhex("82c138724e83a779"), None)),
    ("00000000 00000000 0012 01 10 3132372e302e302e313a343637303800", MasterId(b"127.0.0.1:46708")),
    ("00000000 00000000 0005 02 00000001", ChannelNew(1)),
    ("00000000 00000000 0005 05 00000000", Ack(0)),
    ("0000000c 00000000 0005 03 00000001", ChannelFin(1)),
    ("0000000d 00000000 0001 04", Keepalive()),
    ("00000000 00000000 0016 06 08 21aea60a30ee8304 0000000e 00000030 00000032",
     MasterRes(bytes.fromhex("21aea60a30ee8304"), 14, 48, 50)),
    ("00000000 00000000 0005 08 00000032", MasterOk(50)),
    ("00000000 00000000 0001 07", MasterRej()),
]


@pytest.mark.parametrize("hexs,msg", HEX)
def test_captured_control_frames(hexs, msg):
    raw = bytes.fromhex(hexs.replace(" ", ""))
    (f,) = FrameDecoder().feed(raw)
    assert f.channel == 0
    assert decode_control(f.payload) == msg
    assert encode_frame(f.seq, 0, msg.encode()) == raw


def test_captured_data_frame():
    raw = bytes.fromhex("00000000000000010005" + "4d4f52450a")
    assert FrameDecoder().feed(raw) == [Frame(0, 1, b"MORE\n")]


def test_master_new_without_name_byte_is_accepted():
    assert decode_control(b"\x00\x02ab") == MasterNew(b"ab", None)


@pytest.mark.parametrize("bad", [b"ba/d!", b"..", b"a..b", b".hidden", b"x\x01y", b"a/b", b"sp ace"])
def test_bad_monitor_names_refused(bad):
    body = b"\x00\x01m" + bytes((len(bad) + 1,)) + bad + b"\x00"
    with pytest.raises(ProtocolError, match="bad monitor name"):
        decode_control(body)


@pytest.mark.parametrize("payload,why", [
    (b"", "empty"), (b"\x09", "unknown control message type 9"), (b"\xff", "type 255"),
    (b"\x04x", "KEEPALIVE"), (b"\x05\x00\x00\x00", "ACK"), (b"\x02\x00\x00\x00\x00", "channel 0"),
    (b"\x00\x00", "empty magic"), (b"\x00\x05ab", "announced"), (b"\x00\x01a\x02b", "announced"),
    (b"\x00\x01a\x02bc", "NUL"), (b"\x06\x01a\x00", "expected 12"), (b"\x01\x03ab\x00\x00", "trailing"),
    (b"\x01\x02\x01\x00", "printable"), (b"\x08\x00", "MASTER_OK"), (b"\x07\x00", "MASTER_REJ"),
])
def test_malformed_control_bodies(payload, why):
    with pytest.raises(ProtocolError, match=why):
        decode_control(payload)


def test_zero_length_and_oversized_frames():
    with pytest.raises(ProtocolError, match="zero-length"):
        FrameDecoder().feed(struct.pack(">IIH", 0, 1, 0))
    with pytest.raises(ProtocolError, match="exceeds the limit of 100"):
        FrameDecoder(max_payload=100).feed(struct.pack(">IIH", 0, 1, 101))
    with pytest.raises(ValueError):
        encode_frame(0, 1, b"x" * (MAX_PAYLOAD + 1))


def test_max_size_frame():
    f = Frame(7, 3, b"z" * MAX_PAYLOAD)
    assert FrameDecoder().feed(f.encode()) == [f]


# ---- properties --------------------------------------------------------------

@given(controls)
def test_control_round_trip(msg):
    assert decode_control(msg.encode()) == msg


@given(st.lists(frames, max_size=20), st.data())
@settings(max_examples=150)
def test_any_chunking_gives_same_frames(fs, data):
    stream = b"".join(f.encode() for f in fs)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=30)))
    dec = FrameDecoder()
    out = []
    prev = 0
    for c in cuts + [len(stream)]:
        out += dec.feed(stream[prev:c])
        prev = c
    assert out == fs
    assert dec.buffered == 0


@given(st.binary(max_size=2000))
@settings(max_examples=300)
def test_random_input_is_frames_or_clean_error(data):
    dec = FrameDecoder()
    try:
        for f in dec.feed(data):
            if f.channel == 0:
                try:
                    decode_control(f.payload)
                except ProtocolError as e:
                    assert "\n" not in str(e)
    except ProtocolError as e:
        assert str(e) and "\n" not in str(e)


@given(st.lists(controls, min_size=1, max_size=5), st.data())
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_control_frames_end_cleanly(msgs, data):
    stream = bytearray(b"".join(encode_frame(0, 0, m.encode()) for m in msgs))
    for _ in range(data.draw(st.integers(1, 5))):
        i = data.draw(st.integers(0, len(stream) - 1))
        stream[i] = data.draw(st.integers(0, 255))
    try:
        for f in FrameDecoder().feed(bytes(stream)):
            if f.channel == 0:
                decode_control(f.payload)
    except ProtocolError:
        pass
