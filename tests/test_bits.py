import numpy as np
import pytest
from hypothesis import given, strategies as st

from labkit import bits, checks


def test_msb_first_order():
    assert bits.bytes_to_bits(b"\x80\x01").tolist() == [1] + [0] * 14 + [1]
    assert bits.int_to_bits(0b1011, 4).tolist() == [1, 0, 1, 1]


@given(st.binary(max_size=64))
def test_bytes_bits_round_trip(data):
    b = bits.bytes_to_bits(data)
    assert b.size == 8 * len(data)
    assert bits.bits_to_bytes(b) == data
    assert bits.bits_to_int(b) == int.from_bytes(data, "big")


@given(st.integers(min_value=0, max_value=2**128 - 1))
def test_int_bits_round_trip(value):
    assert bits.bits_to_int(bits.int_to_bits(value, 128)) == value
    assert bits.bits_to_bytes(bits.int_to_bits(value, 128)) == value.to_bytes(16, "big")


@given(st.binary(min_size=1, max_size=32))
def test_hex_round_trip_with_separators(data):
    spaced = " ".join(f"{x:02X}" for x in data)
    assert bits.parse_hex(spaced) == data
    assert bits.parse_hex("0x" + data.hex()) == data
    assert bits.to_hex(data) == data.hex()


@pytest.mark.parametrize(
    "text, message",
    [("0g", "only hex digits"), ("abc", "even number"), ("00" * 7, "must be 8 bytes")],
)
def test_parse_hex_errors_name_what_was_expected(text, message):
    with pytest.raises(ValueError, match=message):
        bits.parse_hex(text, length=8, what="DES key")


def test_parse_hex_type_errors():
    with pytest.raises(TypeError):
        bits.parse_hex(b"00")
    with pytest.raises(TypeError):
        bits.parse_hex(12)


def test_invalid_bit_arrays():
    with pytest.raises(ValueError, match="only 0 and 1"):
        bits.bits_to_bytes([0, 2, 0, 0, 0, 0, 0, 0])
    with pytest.raises(ValueError, match="multiple of 8"):
        bits.bits_to_bytes([1, 0, 1])
    with pytest.raises(ValueError, match="does not fit"):
        bits.int_to_bits(16, 4)
    with pytest.raises(ValueError, match="must have 64 bits"):
        bits.as_bit_array(np.zeros(63), length=64)


@given(st.binary(min_size=1, max_size=16), st.data())
def test_flip_bit_changes_exactly_that_bit(data, draw):
    i = draw.draw(st.integers(0, 8 * len(data) - 1))
    flipped = bits.flip_bit(data, i)
    diff = bits.bytes_to_bits(flipped) ^ bits.bytes_to_bits(data)
    assert np.flatnonzero(diff).tolist() == [i]
    assert bits.hamming_distance(data, flipped) == 1


def test_flip_bit_range_and_xor_lengths():
    with pytest.raises(ValueError, match="bit index"):
        bits.flip_bit(b"\x00", 8)
    with pytest.raises(ValueError, match="equal lengths"):
        bits.xor_bytes(b"a", b"ab")
    assert bits.hamming_weight(0xFF) == 8
    assert bits.hamming_weight(b"\x0f\x01") == 5


def test_check_bytes_names_what_was_expected():
    assert checks.check_bytes(bytearray(b"ab"), 2, what="tag") == b"ab"
    with pytest.raises(ValueError, match="DES key must be 8 bytes, got 7"):
        checks.check_bytes(bytes(7), 8, what="DES key")
    with pytest.raises(TypeError, match="block must be bytes, got str"):
        checks.check_bytes("00" * 8, 8, what="block")


@given(st.lists(st.binary(min_size=3, max_size=3), min_size=0, max_size=8))
def test_block_batches_match_per_block_conversion(rows):
    blocks = np.array([list(r) for r in rows], dtype=np.uint8).reshape(len(rows), 3)
    batch = bits.blocks_to_bits(blocks)
    assert batch.dtype == np.uint8 and batch.shape == (len(rows), 24)
    for row, data in zip(batch, rows):
        assert row.tolist() == bits.bytes_to_bits(data).tolist()
    back = bits.bits_to_blocks(batch)
    assert back.dtype == np.uint8 and np.array_equal(back, blocks)
    assert np.array_equal(bits.bits_to_blocks(batch.astype(np.float64)), blocks)  # network outputs


def test_block_batches_msb_first_and_validated():
    assert bits.blocks_to_bits(np.array([[0x80, 0x01]], dtype=np.uint8)).tolist() == [[1] + [0] * 14 + [1]]
    assert bits.blocks_to_bits([[0xA5]]).tolist() == [[1, 0, 1, 0, 0, 1, 0, 1]]
    with pytest.raises(ValueError, match="2-D"):
        bits.blocks_to_bits(np.zeros(16, dtype=np.uint8))
    with pytest.raises(ValueError, match="0..255"):
        bits.blocks_to_bits([[256]])
    with pytest.raises(TypeError, match="integer"):
        bits.blocks_to_bits(np.zeros((1, 2)))
    with pytest.raises(ValueError, match="multiple of 8"):
        bits.bits_to_blocks(np.zeros((1, 12)))
    with pytest.raises(ValueError, match="only 0 and 1"):
        bits.bits_to_blocks(np.full((1, 8), 0.5))
    with pytest.raises(ValueError, match="2-D"):
        bits.bits_to_blocks(np.zeros(8))
