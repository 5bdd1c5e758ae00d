"""The mux wire format (ixpscamper.mux.frames): the doc's observed hex,
round trips, arbitrary chunking and fuzzed input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ixpscamper.mux.frames import (
    Attr, ChannelClose, ChannelData, ChannelOpen, Go, MuxDecoder, MuxError, VpDepart, VpUpdate,
    encode_control, encode_data,
)

OBSERVED = {
    "go": ("00000000000000020002", Go()),
    "update": ("000000000000002c000000000002" "00016f767000"
               "0002313739353736303432312e38333139373300" "00033132372e302e302e3100",
               VpUpdate(2, ((Attr.NAME, "ovp"), (Attr.ARRIVAL, "1795760421.831973"),
                            (Attr.IPV4, "127.0.0.1")))),
    "close": ("00000000000000060004" "00000007", ChannelClose(7)),
    "depart": ("00000000000000060001" "00000003", VpDepart(3)),
}


@pytest.mark.parametrize("name", sorted(OBSERVED))
def test_observed_hex_from_the_controller(name):
    hexs, msg = OBSERVED[name]
    raw = bytes.fromhex(hexs)
    assert encode_control(msg) == raw
    assert list(MuxDecoder("client").feed(raw)) == [msg]


def test_observed_hex_from_the_client():
    raw = bytes.fromhex("000000000000000a0003" "0000000100000007")
    assert encode_control(ChannelOpen(1, 7)) == raw
    assert list(MuxDecoder("server").feed(raw)) == [ChannelOpen(1, 7)]
    data = bytes.fromhex("0000000700000014" "70696e67202d632031203132372e302e302e310a")
    assert encode_data(7, b"ping -c 1 127.0.0.1\n") == data
    assert list(MuxDecoder("server").feed(data)) == [ChannelData(7, b"ping -c 1 127.0.0.1\n")]


def test_server_ignores_client_control_other_than_open():
    raw = encode_control(ChannelClose(5)) + encode_control(Go()) + encode_control(ChannelOpen(2, 9))
    assert list(MuxDecoder("server").feed(raw)) == [ChannelOpen(2, 9)]


@pytest.mark.parametrize("raw, why", [
    ("0000000000000001" "00", "needs a 2-byte type"),
    ("0000000000000006" "0003" "00000001", "needs 8"),
    ("000000000000000a" "0003" "00000001" "00000000", "channel 0"),
    ("0000000000ffffff", "limit"),
])
def test_bad_client_control(raw, why):
    with pytest.raises(MuxError, match=why):
        list(MuxDecoder("server").feed(bytes.fromhex(raw)))


@pytest.mark.parametrize("raw, why", [
    ("00000000000000020009", "unknown control message type 9"),
    ("0000000000000004" "0000" "0001", "without a VP id"),
    ("0000000000000009" "0000" "00000001" "0001" "41", "not NUL-terminated"),
    ("0000000000000007" "0000" "00000001" "00", "cut short"),
])
def test_bad_controller_control(raw, why):
    with pytest.raises(MuxError, match=why):
        list(MuxDecoder("client").feed(bytes.fromhex(raw)))


def test_huge_data_frame_is_streamed_not_buffered():
    dec = MuxDecoder("server")
    evs = list(dec.feed(bytes.fromhex("00000005ffffffff") + b"x" * 1000))
    assert evs == [ChannelData(5, b"x" * 1000)] and dec.buffered == 0
    assert list(dec.feed(b"y" * 10)) == [ChannelData(5, b"y" * 10)]


_text = st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)), max_size=30)
_update = st.builds(VpUpdate, st.integers(0, 2**32 - 1),
                    st.lists(st.tuples(st.integers(0, 65535), _text), max_size=6).map(tuple))
_to_client = st.one_of(_update, st.builds(VpDepart, st.integers(0, 2**32 - 1)), st.just(Go()),
                       st.builds(ChannelClose, st.integers(0, 2**32 - 1)),
                       st.builds(ChannelData, st.integers(1, 2**32 - 1), st.binary(min_size=1, max_size=50)))
_to_server = st.one_of(st.builds(ChannelOpen, st.integers(0, 2**32 - 1), st.integers(1, 2**32 - 1)),
                       st.builds(ChannelData, st.integers(1, 2**32 - 1), st.binary(min_size=1, max_size=50)))


def _encode(m):
    return encode_data(m.channel, m.data) if isinstance(m, ChannelData) else encode_control(m)


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    pts = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(pts, pts[1:])]




def _decode_all(role, chunks):
    dec = MuxDecoder(role)
    evs = []
    for c in chunks:
        evs.extend(dec.feed(c))
    return evs, dec


@settings(max_examples=200, deadline=None)
@given(st.lists(_to_client, max_size=12), st.lists(st.integers(0, 10**6), max_size=8))
def test_client_stream_round_trip_any_chunking(msgs, cuts):
    raw = b"".join(_encode(m) for m in msgs)
    evs, dec = _decode_all("client", _chunks(raw, cuts))
    assert _rejoin(evs, msgs) == msgs and dec.buffered == 0


@settings(max_examples=200, deadline=None)
@given(st.lists(_to_server, max_size=12), st.lists(st.integers(0, 10**6), max_size=8))
def test_server_stream_round_trip_any_chunking(msgs, cuts):
    raw = b"".join(_encode(m) for m in msgs)
    evs, dec = _decode_all("server", _chunks(raw, cuts))
    assert _rejoin(evs, msgs) == msgs and dec.buffered == 0


def _rejoin(evs, msgs):
    """Reassemble data pieces into the frames they came from (by the sizes sent)."""
    out, it = [], iter(evs)
    for m in msgs:
        if isinstance(m, ChannelData):
            got = b""
            while len(got) < len(m.data):
                e = next(it)
                assert isinstance(e, ChannelData) and e.channel == m.channel
                got += e.data
            out.append(ChannelData(m.channel, got))
        else:
            out.append(next(it))
    assert next(it, None) is None
    return out


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(["client", "server"]))
def test_fuzzed_bytes_give_events_or_mux_error(data, role):
    dec = MuxDecoder(role)
    try:
        for e in dec.feed(data):
            assert isinstance(e, (VpUpdate, VpDepart, Go, ChannelOpen, ChannelClose, ChannelData))
    except MuxError as e:
        assert "\n" not in str(e)
