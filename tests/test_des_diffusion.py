"""DES diffusion facts taught in chapter 02, derived from the FIPS 46-3 tables typed in here.

The E and P tables below are copied from FIPS 46-3 independently of ``labkit.des``; the facts
(each S-box feeds six S-boxes of the next round; a bit of L0 enters no S-box in round 1, a bit of
R0 one or, as an edge bit, two) are derived from them and then confirmed on ``labkit.des``'s
traced encryptions.
"""
import numpy as np
import pytest

from labkit import bits, des

# FIPS 46-3, "E BIT-SELECTION TABLE" and "P" (1-based bit positions, row by row)
FIPS_E = (32, 1, 2, 3, 4, 5, 4, 5, 6, 7, 8, 9, 8, 9, 10, 11, 12, 13, 12, 13, 14, 15, 16, 17,
          16, 17, 18, 19, 20, 21, 20, 21, 22, 23, 24, 25, 24, 25, 26, 27, 28, 29,
          28, 29, 30, 31, 32, 1)
FIPS_P = (16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10,
          2, 8, 24, 14, 32, 27, 3, 9, 19, 13, 30, 6, 22, 11, 4, 25)


def _reading(r_position):
    """S-boxes (1..8) whose input includes bit r_position (1..32) of the right half."""
    return {m // 6 + 1 for m, src in enumerate(FIPS_E) if src == r_position}


def test_labkit_tables_are_the_fips_tables():
    assert tuple(des.E) == FIPS_E and tuple(des.P) == FIPS_P


@pytest.mark.parametrize("s", range(1, 9))
def test_each_sbox_feeds_six_sboxes_of_the_next_round(s):
    reached = set()
    middle_hits = edge_hits = 0
    for out_bit in range(4 * s - 3, 4 * s + 1):
        r = FIPS_P.index(out_bit) + 1
        readers = _reading(r)
        edge_hits += len(readers) == 2
        middle_hits += len(readers) == 1
        reached |= readers
    assert (edge_hits, middle_hits) == (2, 2)
    assert len(reached) == 6 and s not in reached


def test_r0_edge_bits_enter_two_sboxes_others_one():
    for r in range(1, 33):
        expected = 2 if r % 4 in (0, 1) else 1
        assert len(_reading(r)) == expected, r


def _round1_sboxes_changed(plain_bit):
    key, block = bytes.fromhex("133457799bbcdff1"), bytes.fromhex("0123456789abcdef")
    a = des.encrypt_trace(key, block).rounds[0]
    b = des.encrypt_trace(key, bits.flip_bit(block, plain_bit - 1)).rounds[0]
    return {j + 1 for j in range(8) if not np.array_equal(a.sbox_inputs[j], b.sbox_inputs[j])}


@pytest.mark.parametrize("position_after_ip", [1, 17, 32, 33, 36, 37, 42, 64])
def test_flipped_bit_enters_the_predicted_sboxes_in_round_1(position_after_ip):
    plain_bit = des.IP[position_after_ip - 1]  # IP's output bit i is input bit IP[i]
    expected = set() if position_after_ip <= 32 else _reading(position_after_ip - 32)
    assert _round1_sboxes_changed(plain_bit) == expected
