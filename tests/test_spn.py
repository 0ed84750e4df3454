"""Heys' toy SPN (Cryptologia 2002) and its differential and linear attacks.

The cipher is checked against the paper's tables and a bit-by-bit reference written here from the
paper's description; the trails against the DDT/LAT entries the paper quotes and against counts
over the whole codebook; the attacks by recovering planted last-round key bits.
"""
from fractions import Fraction

import numpy as np
import pytest

from labkit import sbox, spn

#: Heys, Table 1 and Table 2 (bit positions 1..16 from the left).
HEYS_SBOX = "E4D12FB83A6C5907"
HEYS_PERMUTATION = {1: 1, 2: 5, 3: 9, 4: 13, 5: 2, 6: 6, 7: 10, 8: 14, 9: 3, 10: 7, 11: 11, 12: 15,
                    13: 4, 14: 8, 15: 12, 16: 16}
CODEBOOK = np.arange(1 << 16, dtype=np.uint16)


def _popcount(values: np.ndarray) -> np.ndarray:
    return np.unpackbits(values.astype(">u2").view(np.uint8)).reshape(-1, 16).sum(axis=1)


def _reference_encrypt(round_keys, block: int) -> int:
    """Heys' Figure 1 on a list of 16 bits, straight from the paper's description."""
    bits = [int(b) for b in f"{block:016b}"]

    def mix(bits, k):
        return [b ^ int(c) for b, c in zip(bits, f"{k:016b}")]

    def sub(bits):
        out = []
        for j in range(4):
            nibble = int("".join(map(str, bits[4 * j: 4 * j + 4])), 2)
            out += [int(c) for c in f"{int(HEYS_SBOX[nibble], 16):04b}"]
        return out

    def perm(bits):
        out = [0] * 16
        for i, j in HEYS_PERMUTATION.items():
            out[j - 1] = bits[i - 1]
        return out

    for r in range(3):
        bits = perm(sub(mix(bits, round_keys[r])))
    bits = mix(sub(mix(bits, round_keys[3])), round_keys[4])
    return int("".join(map(str, bits)), 2)


def test_tables_are_heys():
    assert "".join(f"{v:X}" for v in spn.SBOX) == HEYS_SBOX
    assert {i + 1: j + 1 for i, j in enumerate(spn.PERMUTATION)} == HEYS_PERMUTATION
    assert all(spn.permute(spn.permute(x)) == x for x in (0x0001, 0x8000, 0x1234, 0xBEEF))
    assert spn.permute(0x0200) == 0x0040  # bit 7 -> bit 10, Heys' characteristic, round 1


def test_encryption_matches_the_paper_and_round_trips():
    rng = np.random.default_rng(0)
    for _ in range(20):
        key = rng.bytes(spn.KEY_BYTES)
        block = int(rng.integers(0, 1 << 16))
        assert spn.encrypt(key, block) == _reference_encrypt(spn.round_keys(key), block)
        assert spn.decrypt(key, spn.encrypt(key, block)) == block
    key = rng.bytes(spn.KEY_BYTES)
    assert np.array_equal(spn.decrypt(key, spn.encrypt(key, CODEBOOK)), CODEBOOK)
    assert len(np.unique(spn.encrypt(key, CODEBOOK))) == 1 << 16  # a permutation


def test_bad_inputs_raise_clearly():
    with pytest.raises(ValueError, match="10 bytes"):
        spn.encrypt(bytes(9), 0)
    with pytest.raises(TypeError, match="bytes"):
        spn.round_keys("0123456789")
    with pytest.raises(ValueError, match="16-bit"):
        spn.encrypt(bytes(10), 1 << 16)
    with pytest.raises(ValueError, match="outside the mask"):
        spn.partial_decrypt(0, 0x1000, 0x0F0F)
    with pytest.raises(ValueError, match="next input"):
        spn.trail_from_masks("differential", [0x0B00, 0x0001], [0x0200])


def test_ddt_and_lat_entries_heys_quotes():
    d, l = sbox.ddt(spn.SBOX), sbox.lat(spn.SBOX)
    assert (d[0xB, 0x2], d[0x4, 0x6], d[0x2, 0x5]) == (8, 6, 6)  # Table 7
    assert (l[0xB, 0x4], l[0x4, 0x5]) == (4, -4)  # Table 4: X1^X3^X4 = Y2, X2 = Y2^Y4


def test_heys_characteristic_has_probability_27_1024_and_the_pairs_agree():
    assert spn.HEYS_DIFFERENTIAL.weight == Fraction(27, 1024)
    assert spn.HEYS_DIFFERENTIAL.inputs[-1] == 0x0606 and spn.HEYS_DIFFERENTIAL.target_mask == 0x0F0F
    assert spn.HEYS_DIFFERENTIAL.active_sboxes == 4 and spn.HEYS_LINEAR.active_sboxes == 4
    rng = np.random.default_rng(1)
    shares = []
    for _ in range(4):
        k5 = spn.round_keys(key := rng.bytes(10))[4]
        u1 = spn.inv_substitute(spn.encrypt(key, CODEBOOK) ^ np.uint16(k5))
        u2 = spn.inv_substitute(spn.encrypt(key, CODEBOOK ^ np.uint16(0x0B00)) ^ np.uint16(k5))
        shares.append(np.mean((u1 ^ u2) == 0x0606))
    # the differential holds at least as often as its one characteristic (other trails add a little)
    assert abs(np.mean(shares) - 27 / 1024) < 0.002, shares


def test_heys_approximation_has_bias_1_32_over_the_codebook():
    assert spn.HEYS_LINEAR.weight == Fraction(-1, 32)
    rng = np.random.default_rng(2)
    for _ in range(4):
        key = rng.bytes(10)
        u4 = spn.inv_substitute(spn.encrypt(key, CODEBOOK) ^ np.uint16(spn.round_keys(key)[4]))
        ones = _popcount(CODEBOOK & np.uint16(0x0B00)) + _popcount(u4 & np.uint16(0x0505))
        assert abs(int((ones % 2 == 0).sum()) - (1 << 15)) == (1 << 16) // 32  # exactly 1/32


def test_branch_and_bound_finds_heys_characteristic_and_a_stronger_linear_trail():
    assert spn.best_trail("differential") == spn.HEYS_DIFFERENTIAL
    linear = spn.best_trail("linear")
    assert abs(linear.weight) >= abs(spn.HEYS_LINEAR.weight)
    assert linear == spn.trail_from_masks("linear", linear.inputs, linear.outputs)


def test_differential_attack_recovers_the_planted_bits_with_heys_5000_pairs():
    rng = np.random.default_rng(3)
    for _ in range(5):
        key = rng.bytes(10)
        result = spn.differential_attack(spn.encryption_oracle(key), 5000, rng)
        assert result.best == spn.round_keys(key)[4] & 0x0F0F and result.rank(result.best) == 1
        # about N p right pairs stand out; the best wrong guess counts about half as many
        assert 0.015 < result.scores.max() < 0.04 and np.sort(result.scores)[-2] < 0.02


def test_count_right_pairs_agrees_with_the_table_of_all_guesses():
    rng = np.random.default_rng(4)
    key = rng.bytes(10)
    c1, c2 = spn.chosen_pairs(spn.encryption_oracle(key), 0x0B00, 800, rng)
    table = spn.differential_counts(c1, c2, 0x0606)
    for guess in (0x0000, spn.round_keys(key)[4] & 0x0F0F, 0x0F0F, 0x0A05):
        assert spn.count_right_pairs(c1, c2, guess, 0x0606) == table.counts[table.guesses == guess][0]


def test_linear_attack_recovers_the_planted_bits():
    rng = np.random.default_rng(5)
    for _ in range(3):  # the whole codebook: the right guess has the exact bias 1/32
        key = rng.bytes(10)
        result = spn.linear_attack(CODEBOOK, spn.encrypt(key, CODEBOOK))
        assert result.best == spn.round_keys(key)[4] & 0x0F0F
        assert result.scores.max() == 1 / 32
    # Heys' 10,000 known plaintexts: most keys, not all (the best wrong guesses keep bias ~0.025)
    assert spn.success_rate("linear", 10_000, 12, rng) >= 0.5


def test_success_estimates_grow_with_the_data():
    lin = [spn.linear_success_probability(n, 1 / 32, 8) for n in (100, 1000, 10_000)]
    assert lin == sorted(lin) and lin[-1] > 0.99
    dif = [spn.differential_success_probability(n, 27 / 1024, 2 ** -16, 8) for n in (10, 100, 1000)]
    assert dif == sorted(dif) and dif[-1] > 0.99


def test_differential_ceiling_is_the_chance_of_a_right_pair_and_caps_selcuk_on_little_data():
    ceiling = [spn.differential_success_ceiling(n, 27 / 1024) for n in (25, 50, 100)]
    assert [round(c, 2) for c in ceiling] == [0.49, 0.74, 0.93]
    selcuk = [spn.differential_success_probability(n, 27 / 1024, 2 ** -16, 8) for n in (25, 50, 100)]
    assert all(s > c for s, c in zip(selcuk, ceiling))  # the normal approximation below 3 right pairs
    assert spn.differential_success_ceiling(0, 0.5) == 0 and spn.differential_success_ceiling(3, 1.0) == 1
    for bad in ((-1, 0.1), (2.5, 0.1), (True, 0.1), (10, 1.5), (10, -0.1)):
        with pytest.raises(ValueError):
            spn.differential_success_ceiling(*bad)


def test_the_right_guess_counts_exactly_the_pairs_that_follow_the_differential():
    """Why the ceiling holds: under the right key bits a pair counts iff its difference into round 4
    is the trail's, so with no such pair the right guess scores 0 and cannot rank first alone."""
    rng = np.random.default_rng(7)
    key = rng.bytes(10)
    trail = spn.HEYS_DIFFERENTIAL
    p1 = rng.integers(0, 1 << 16, 3000, dtype=np.uint16)
    p2 = p1 ^ np.uint16(trail.inputs[0])
    c1, c2 = spn.encrypt(key, p1), spn.encrypt(key, p2)
    k5 = spn.round_keys(key)[4]
    follows = (spn.inv_substitute(c1 ^ np.uint16(k5)) ^ spn.inv_substitute(c2 ^ np.uint16(k5))) == trail.inputs[-1]
    counts = spn.differential_counts(c1, c2, trail.inputs[-1])
    right = int(np.flatnonzero(counts.guesses == (k5 & counts.mask))[0])
    assert counts.counts[right] == follows.sum() > 0
    none = spn.differential_counts(c1[~follows], c2[~follows], trail.inputs[-1])
    assert none.counts[right] == 0
