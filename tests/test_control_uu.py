"""The DATA-block uuencoding (protocol doc A.5)."""

from __future__ import annotations

import binascii

import pytest
from hypothesis import given, settings, strategies as st

from ixpscamper.control import uu

CYCLE_STOP = bytes.fromhex("120500040000000900000001" "6b091d7800")


def test_worked_example_from_the_doc():
    block = uu.encode(CYCLE_STOP)
    assert block == b"1$@4`!`````D````!:PD=>```\n`\n"
    assert len(block) == 28 == uu.encoded_length(17)
    assert uu.decode(block) == CYCLE_STOP


def test_empty_record_is_only_the_end_line():
    assert uu.encode(b"") == b"`\n"
    assert uu.encoded_length(0) == 2
    assert uu.decode(b"`\n") == b""


@pytest.mark.parametrize("length", [1, 2, 3, 44, 45, 46, 89, 90, 91, 135, 1000])
def test_length_formula_and_line_shape(length):
    data = bytes((i * 7 + 3) % 256 for i in range(length))
    block = uu.encode(data)
    assert len(block) == uu.encoded_length(length)
    lines = block.split(b"\n")
    assert lines[-1] == b"" and lines[-2] == b"`"
    for line in lines[:-2]:
        assert 1 <= len(line) <= 61
        assert b" " not in line  # zero sextets are backticks
        assert all(0x21 <= c <= 0x60 for c in line)
    # all but the last data line carry the full 45 bytes ('M')
    assert all(line[:1] == b"M" for line in lines[:-3])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_round_trip_and_reference_encoder(data):
    block = uu.encode(data)
    assert block == uu.encode_reference(data)
    assert len(block) == uu.encoded_length(len(data))
    assert uu.decode(block) == data
    # and it is classic uuencoding (with backticks) line for line
    ref = b"".join(binascii.b2a_uu(data[i:i + 45], backtick=True) for i in range(0, len(data), 45))
    assert block == ref + b"`\n"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(min_value=1, max_value=50), max_size=30))
def test_incremental_decoder_any_chunking(data, cuts):
    block = uu.encode(data) + b"TRAILER"
    dec = uu.UUDecoder()
    out = bytearray()
    pos = 0
    for c in cuts:
        out += dec.feed(block[pos:pos + c])
        pos += c
    out += dec.feed(block[pos:])
    assert dec.finished
    assert bytes(out) == data
    assert dec.unused == b"TRAILER"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_fuzzed_input_only_raises_uuerror(junk):
    try:
        uu.decode(junk)
    except uu.UUError:
        pass


@pytest.mark.parametrize("bad, why", [
    (b"1$@4`!`````D````!:PD=>``\n`\n", "characters"),   # one char short
    (b"1$@4`!`````D````!:PD=>```\n", "end line"),        # no end line
    (b"1$@4`!`````D````!:P\x01=>```\n`\n", "invalid"),   # control char
    (b"`\nextra", "after the end"),
    (b"\n`\n", "empty"),
    (b"~" * 70 + b"\n`\n", "length"),
])
def test_malformed_blocks_are_rejected(bad, why):
    with pytest.raises(uu.UUError, match=why):
        uu.decode(bad)
