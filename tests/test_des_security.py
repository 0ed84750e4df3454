"""Unit 02c and the S-box items of 02b: 3DES against pycryptodome, the meet in the middle against brute
force on fresh random reduced keys, the birthday bound of the toy cipher in CBC, what a collision
leaks, and the 4-to-1 property and Coppersmith's criteria computed from the FIPS 46-3 tables."""
import secrets

import numpy as np
import pytest
from Crypto.Cipher import DES, DES3
from hypothesis import given, settings, strategies as st

from labkit import des, des_linear, des_security as ds, sbox


# --- 3DES and DES against pycryptodome on random keys ------------------------------------------------

@pytest.mark.parametrize("key_bytes", [16, 24])
def test_tdes_matches_pycryptodome_on_random_keys(key_bytes):
    rng = np.random.default_rng(20 + key_bytes)
    for _ in range(25):
        key = DES3.adjust_key_parity(rng.bytes(key_bytes))
        block = rng.bytes(8)
        expected = DES3.new(key, DES3.MODE_ECB).encrypt(block)
        assert des.tdes_encrypt_block(key, block) == expected
        assert des.tdes_decrypt_block(key, expected) == block


def test_keys_from_indices_places_index_bits_like_the_exhaustive_search():
    known = secrets.token_bytes(8)
    positions = des.KEY_BIT_POSITIONS[-10:]
    for index in (0, 1, 0x2A5, 0x3FF):
        key = int(ds.keys_from_indices(known, positions, [index])[0]).to_bytes(8, "big")
        expected = bytearray(ds.forget_key_bits(known, positions))
        for j, p in enumerate(positions):
            if index >> j & 1:
                expected[p // 8] |= 0x80 >> (p % 8)
        assert key == bytes(expected)
    with pytest.raises(ValueError, match="indices"):
        ds.keys_from_indices(known, 4, [16])


# --- double DES: the meet in the middle ----------------------------------------------------------------

def _brute_force(pairs, key_bits):
    """Every (i, j) by trying all 2^(2k) key pairs with pycryptodome: an independent reference."""
    found = []
    keys1 = [ds.toy_key(i, key_bits, 1) for i in range(1 << key_bits)]
    keys2 = [ds.toy_key(j, key_bits, 2) for j in range(1 << key_bits)]
    for i, k1 in enumerate(keys1):
        mids = [DES.new(k1, DES.MODE_ECB).encrypt(m) for m, _ in pairs]
        for j, k2 in enumerate(keys2):
            if all(DES.new(k2, DES.MODE_ECB).encrypt(x) == c for x, (_, c) in zip(mids, pairs)):
                found.append((i, j))
    return found


def test_toy_double_encryption_is_des_twice():
    i, j, block = 5, 9, secrets.token_bytes(8)
    inner = DES.new(ds.toy_key(i, 6, 1), DES.MODE_ECB).encrypt(block)
    assert ds.toy_double_encrypt(i, j, block, 6) == DES.new(ds.toy_key(j, 6, 2), DES.MODE_ECB).encrypt(inner)


def test_meet_in_the_middle_finds_a_fresh_planted_pair_and_nothing_inconsistent():
    key_bits = 12
    planted = (secrets.randbelow(1 << key_bits), secrets.randbelow(1 << key_bits))
    pairs = [(m, ds.toy_double_encrypt(*planted, m, key_bits)) for m in (secrets.token_bytes(8) for _ in range(2))]
    result = ds.meet_in_the_middle(pairs, key_bits)
    assert result.candidates == [planted]
    assert result.table_entries == 1 << key_bits
    assert 2 << key_bits <= result.encryptions < result.brute_force_encryptions == 1 << 24


def test_meet_in_the_middle_equals_brute_force_on_a_fresh_key():
    # 4 unknown bits per stage and a single pair: every consistent pair, against all 2^8 trials
    key_bits = 4
    planted = (secrets.randbelow(16), secrets.randbelow(16))
    block = secrets.token_bytes(8)
    pairs = [(block, ds.toy_double_encrypt(*planted, block, key_bits))]
    assert ds.meet_in_the_middle(pairs, key_bits).candidates == _brute_force(pairs, key_bits)


@pytest.mark.parametrize("call, error", [
    (lambda: ds.meet_in_the_middle([], 8), ValueError),
    (lambda: ds.meet_in_the_middle([(bytes(7), bytes(8))], 8), ValueError),
    (lambda: ds.meet_in_the_middle([(bytes(8), bytes(8))], 23), ValueError),
    (lambda: ds.toy_key(16, 4, 1), ValueError),
    (lambda: ds.toy_key(1, 4, 3), ValueError),
    (lambda: ds.toy_key(1.0, 4, 1), TypeError),
    (lambda: ds.ToyBlockCipher(bytes(16), 17), ValueError),
    (lambda: ds.ToyBlockCipher(bytes(16), 34), ValueError),
    (lambda: ds.ToyBlockCipher("key", 16), TypeError),
    (lambda: ds.ToyBlockCipher(bytes(16), 16).encrypt(1 << 16), ValueError),
])
def test_bad_input_raises(call, error):
    with pytest.raises(error):
        call()


# --- the toy block cipher, CBC and the birthday bound ------------------------------------------------

@pytest.mark.parametrize("block_bits", [8, 12])
def test_toy_cipher_is_a_keyed_permutation(block_bits):
    cipher = ds.ToyBlockCipher(secrets.token_bytes(16), block_bits)
    images = [cipher.encrypt(x) for x in range(1 << block_bits)]
    assert sorted(images) == list(range(1 << block_bits))
    assert all(cipher.decrypt(y) == x for x, y in enumerate(images))
    other = ds.ToyBlockCipher(secrets.token_bytes(16), block_bits)
    assert images != [other.encrypt(x) for x in range(1 << block_bits)]


@settings(max_examples=30, deadline=None)
@given(key=st.binary(min_size=1, max_size=24), n=st.sampled_from([16, 24, 32]),
       data=st.data())
def test_cbc_round_trip_and_every_collision_leaks_the_plaintext_xor(key, n, data):
    """A collision is forced (random blocks of 16-32 bits almost never collide by chance): with
    P_j = P_i xor C_{i-1} xor C_{j-1}, CBC feeds E the same input twice, so C_i = C_j."""
    blocks = data.draw(st.lists(st.integers(0, (1 << n) - 1), min_size=2, max_size=40))
    iv = data.draw(st.integers(0, (1 << n) - 1))
    i = data.draw(st.integers(0, len(blocks) - 2))
    j = data.draw(st.integers(i + 1, len(blocks) - 1))
    cipher = ds.ToyBlockCipher(key, n)
    chain = [iv] + ds.cbc_encrypt(cipher, iv, blocks[:j])
    blocks[j] = blocks[i] ^ chain[i] ^ chain[j]
    ciphertext = ds.cbc_encrypt(cipher, iv, blocks)
    assert ds.cbc_decrypt(cipher, iv, ciphertext) == blocks
    assert ciphertext[i] == ciphertext[j]
    found = ds.cbc_collisions(iv, ciphertext)
    every_equal_pair = [(a, b) for b in range(len(ciphertext)) for a in range(b)
                        if ciphertext[a] == ciphertext[b]]
    assert [(a, b) for a, b, _ in found] == every_equal_pair
    assert all(blocks[a] ^ blocks[b] == xor for a, b, xor in found)


def test_collisions_are_found_on_a_long_16_bit_ciphertext():
    rng = np.random.default_rng(3)
    cipher = ds.ToyBlockCipher(rng.bytes(16), 16)
    blocks = rng.integers(0, 1 << 16, size=2000).tolist()
    ciphertext = ds.cbc_encrypt(cipher, 7, blocks)
    leaks = ds.cbc_collisions(7, ciphertext)
    # expected number of equal pairs: C(2000, 2) / 2^16 = 30.5; a Poisson count stays within 10..60
    assert 10 <= len(leaks) <= 60
    assert all(blocks[i] ^ blocks[j] == x for i, j, x in leaks)


@pytest.mark.parametrize("block_bits, runs", [(16, 60), (20, 30)])
def test_first_collision_comes_near_the_birthday_bound(block_bits, runs):
    # the first-collision count has a coefficient of variation of about 0.52, so the mean of 30 or
    # more runs lies within 25% of sqrt(pi/2 * 2^n) with overwhelming probability; seeds are fixed
    counts = []
    for seed in range(runs):
        rng = np.random.default_rng(1000 + seed)
        cipher = ds.ToyBlockCipher(rng.bytes(16), block_bits)
        counts.append(ds.blocks_until_collision(cipher, int(rng.integers(1 << block_bits)), rng))
    assert 0.75 < np.mean(counts) / ds.birthday_bound(block_bits) < 1.25


def test_birthday_bound_values():
    assert ds.birthday_bound(2) == pytest.approx(np.sqrt(np.pi / 2 * 4))
    assert ds.birthday_bound(64) == pytest.approx(1.2533141373155 * 2 ** 32)


# --- S-box design (02b) ------------------------------------------------------------------------------

def test_every_des_sbox_is_4_to_1_with_rows_permuting_0_to_15():
    for rows, table in zip(des.SBOXES, des.SBOX_TABLES):  # FIPS 46-3 as printed, and flattened
        assert all(sorted(row) == list(range(16)) for row in rows)
        counts = sbox.preimage_counts(table, out_bits=4)
        assert counts.tolist() == [4] * 16
        # each output value has one preimage in each of the four rows (row = b1 b6)
        for y in range(16):
            rows_hit = sorted(((x >> 4) & 2) | (x & 1) for x in range(64) if table[x] == y)
            assert rows_hit == [0, 1, 2, 3]


def test_preimage_counts_of_other_tables():
    assert sbox.preimage_counts([0, 0, 0, 3]).tolist() == [3, 0, 0, 1]
    assert sbox.preimage_counts([0, 1], out_bits=3).tolist() == [1, 1, 0, 0, 0, 0, 0, 0]
    with pytest.raises(ValueError, match="output bits"):
        sbox.preimage_counts([0, 9], out_bits=3)


def test_des_sboxes_meet_coppersmiths_criteria_and_random_ones_do_not():
    assert all(all(ds.sbox_design_criteria(t).values()) for t in des.SBOX_TABLES)
    # the lecture's linear S-box: x -> A x has equal outputs for inputs differing in the kernel
    linear = ds.sbox_design_criteria(des_linear.linear_sbox(des_linear.LINEAR_SBOX_MATRIX))
    assert not linear["S-4"] and not linear["S-7"]
    rng = np.random.default_rng(11)
    assert not any(ds.sbox_design_criteria(rng.integers(0, 16, 64))["S-4"] for _ in range(50))
    with pytest.raises(ValueError, match="6 input and 4 output"):
        ds.sbox_design_criteria(list(range(16)))


def test_design_criteria_by_hand_on_one_difference():
    # S-6 on S1: for the differences 11xy00, no x gives S(x) = S(x ^ a); recomputed without the DDT
    s1 = des.SBOX_TABLES[0]
    for a in (0b110000, 0b110100, 0b111000, 0b111100):
        assert all(s1[x] != s1[x ^ a] for x in range(64))


# --- rates and history: the data, never a speed -----------------------------------------------------

def test_pycryptodome_rate_reports_its_work_and_checks_its_input():
    result = ds.pycryptodome_search_rate(100)
    assert result.keys_tested == 100 and result.keys == [] and result.seconds > 0
    with pytest.raises(ValueError):
        ds.pycryptodome_search_rate(0)


def test_history_is_ordered_and_the_gpu_figure_is_labelled_published():
    years = [m.year for m in ds.KEY_SEARCH_HISTORY]
    assert years == sorted(years) and {1973, 1976, 1997, 1998, 1999} <= set(years)
    assert all(m.source for m in ds.KEY_SEARCH_HISTORY)
    assert "published" in ds.GPU_DES_RATE.event and ds.GPU_DES_RATE.source
    # the 2018 status screen's own estimate: 2^56 keys at 21,495.5 MH/s is 38.8 days
    assert 38 <= 2 ** 56 / ds.GPU_DES_RATE.keys_per_second / 86400 < 39
