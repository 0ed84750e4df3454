"""AES against FIPS-197's appendices, the NIST AESAVS files, and pycryptodome."""
import numpy as np
import pytest
from Crypto.Cipher import AES
from hypothesis import given, settings, strategies as st

from labkit import aes, bits, sbox
from labkit.vectors import lab_vectors, read_rsp, vectors_dir

H = bytes.fromhex

# FIPS-197 Figure 7, typed from the standard (the module derives its table from GF(2^8)).
FIPS_SBOX = H(
    "637c777bf26b6fc53001672bfed7ab76ca82c97dfa5947f0add4a2af9ca472c0"
    "b7fd9326363ff7cc34a5e5f171d8311504c723c31896059a071280e2eb27b275"
    "09832c1a1b6e5aa0523bd6b329e32f8453d100ed20fcb15b6acbbe394a4c58cf"
    "d0efaafb434d338545f9027f503c9fa851a3408f929d38f5bcb6da2110fff3d2"
    "cd0c13ec5f974417c4a77e3d645d197360814fdc222a908846eeb814de5e0bdb"
    "e0323a0a4906245cc2d3ac629195e479e7c8376d8dd54ea96c56f4ea657aae08"
    "ba78252e1ca6b4c6e8dd741f4bbd8b8a703eb5664803f60e613557b986c11d9e"
    "e1f8981169d98e949b1e87e9ce5528df8ca1890dbfe6426841992d0fb054bb16"
)


def test_sbox_derived_from_the_field_matches_fips_197():
    assert bytes(aes.SBOX) == FIPS_SBOX
    assert all(aes.INV_SBOX[aes.SBOX[b]] == b for b in range(256))
    assert aes.sbox_entry(0x53) == 0xED  # FIPS-197 5.1.1 worked example


def test_sbox_quality():
    assert sbox.nonlinearity(aes.SBOX) == 112
    assert sbox.differential_uniformity(aes.SBOX) == 4
    assert sbox.is_permutation(aes.SBOX)
    assert all(aes.SBOX[b] != b and aes.SBOX[b] != b ^ 0xFF for b in range(256))  # no fixed points


def test_rcon():
    assert aes.RCON[1:11] == (0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x1B, 0x36)


# --- FIPS-197 Appendices A, B, C (data/vectors/fips197.json) ------------------------------------

FIPS197 = lab_vectors("fips197")


@pytest.mark.parametrize("case", FIPS197["key_expansion"], ids=lambda c: c["appendix"])
def test_key_expansion_appendix_a(case):
    key = H(case["key"])
    round_keys = aes.expand_key(key)
    assert len(round_keys) == aes.ROUNDS[len(key)] + 1
    words = b"".join(round_keys)
    nk = len(key) // 4
    assert words[: len(key)] == key
    assert words[4 * nk: 4 * nk + 8].hex() == case["w_nk"] + case["w_nk_plus_1"]
    assert words[-4:].hex() == case["last_word"]


def test_appendix_b_trace():
    example = FIPS197["cipher_example"]
    key, block = H(example["key"]), H(example["input"])
    trace = aes.trace_encrypt(key, block)
    by = {(s.round, s.step): s.state.hex() for s in trace}
    round_1 = example["round_1"]
    assert by[(0, "add_round_key")] == round_1["start"]
    assert by[(1, "sub_bytes")] == round_1["after_sub_bytes"]
    assert by[(1, "shift_rows")] == round_1["after_shift_rows"]
    assert by[(1, "mix_columns")] == round_1["after_mix_columns"]
    assert [by[(r, "add_round_key")] for r in range(10)] == example["start_of_round"]
    assert trace[-1].state.hex() == example["output"]
    assert (10, "mix_columns") not in by  # the last round has no MixColumns
    assert len(trace) == 2 + 9 * 4 + 3


@pytest.mark.parametrize("case", FIPS197["example_vectors"], ids=lambda c: c["appendix"])
def test_appendix_c(case):
    key, plaintext, ciphertext = H(case["key"]), H(case["plaintext"]), case["ciphertext"]
    assert aes.encrypt_block(key, plaintext).hex() == ciphertext
    assert aes.decrypt_block(key, H(ciphertext)) == plaintext
    dec = aes.trace_decrypt(key, H(ciphertext))
    assert dec[-1].state == plaintext
    # each decryption step undoes one encryption step: the same states, visited backwards
    enc = aes.trace_encrypt(key, plaintext)
    assert [s.state for s in dec] == [s.state for s in enc][::-1]


def test_appendix_c1_round_1_steps():
    case = FIPS197["example_vectors"][0]
    trace = aes.trace_encrypt(H(case["key"]), H(case["plaintext"]))
    assert [s.state.hex() for s in trace if s.round == 1] == case["round_1"]
    assert trace[5].round_key.hex() == case["round_1_key"]


def test_fips197_data_agrees_with_pycryptodome():
    """The shipped vectors themselves, against an independent implementation."""
    for case in FIPS197["example_vectors"] + [dict(key=FIPS197["cipher_example"]["key"],
                                                    plaintext=FIPS197["cipher_example"]["input"],
                                                    ciphertext=FIPS197["cipher_example"]["output"])]:
        assert AES.new(H(case["key"]), AES.MODE_ECB).encrypt(H(case["plaintext"])).hex() == case["ciphertext"]


def test_lab_vectors_rejects_unknown_names():
    with pytest.raises(ValueError, match="known"):
        lab_vectors("no_such_file")
    with pytest.raises(ValueError):
        lab_vectors("../etc/passwd")


# --- NIST AESAVS known-answer tests ------------------------------------------------------------

KAT_FILES = [f"CBC{kind}{size}.rsp" for kind in ("GFSbox", "KeySbox", "VarKey", "VarTxt")
             for size in (128, 192, 256)]


@pytest.mark.parametrize("name", KAT_FILES)
def test_aesavs_known_answers(name):
    """The single-block CBC KATs have IV = 0, so they are plain block-cipher known answers."""
    records = read_rsp(vectors_dir("Cipher", "AES", name))
    assert records and all(int(r["iv"], 16) == 0 for r in records)
    for direction in ("encrypt", "decrypt"):
        recs = [r for r in records if r["direction"] == direction]
        keys = np.array([np.frombuffer(H(r["key"]), np.uint8) for r in recs])
        pts = np.array([np.frombuffer(H(r["plaintext"]), np.uint8) for r in recs])
        cts = np.array([np.frombuffer(H(r["ciphertext"]), np.uint8) for r in recs])
        if direction == "encrypt":
            np.testing.assert_array_equal(aes.encrypt_blocks(keys, pts), cts)
        else:
            np.testing.assert_array_equal(aes.decrypt_blocks(keys, cts), pts)
    first = records[0]  # the one-block API agrees with the batch API
    assert aes.encrypt_block(H(first["key"]), H(first["plaintext"])).hex() == first["ciphertext"]


@pytest.mark.parametrize("direction", ["encrypt", "decrypt"])
def test_monte_carlo_aes128(direction):
    """AESAVS Monte Carlo (CBC form, section 6.4.2): all 100 outer iterations of each direction.

    The file gives each outer iteration's key, IV and input, so the 100 chains of 1000 block
    operations are independent: they run side by side through the batch API, one step at a time.
    """
    records = [r for r in read_rsp(vectors_dir("Cipher", "AES", "CBCMCT128.rsp"))
               if r["direction"] == direction]
    assert len(records) == 100
    arr = lambda field: np.array([np.frombuffer(H(r[field]), np.uint8) for r in records])  # noqa: E731
    keys, iv = arr("key"), arr("iv")
    if direction == "encrypt":
        block, expected = arr("plaintext"), arr("ciphertext")
        for _ in range(1000):  # PT[j+1] = the previous chaining value (IV, then CT[j-1])
            out = aes.encrypt_blocks(keys, block ^ iv)
            block, iv = iv, out
    else:
        block, expected = arr("ciphertext"), arr("plaintext")
        for j in range(1000):
            out = aes.decrypt_blocks(keys, block) ^ iv
            iv, block = block, (iv if j == 0 else prev)
            prev = out
    np.testing.assert_array_equal(out, expected)


# --- Against pycryptodome -------------------------------------------------------------------

@pytest.mark.parametrize("key_len", [16, 24, 32])
def test_random_pairs_against_pycryptodome(key_len):
    """3,400 random (key, block) pairs per key size (10,200 in all), one key per block."""
    rng = np.random.default_rng(key_len)
    n = 3400
    keys = rng.integers(0, 256, (n, key_len), dtype=np.uint8)
    blocks = rng.integers(0, 256, (n, 16), dtype=np.uint8)
    ours = aes.encrypt_blocks(keys, blocks)
    ref = np.array([np.frombuffer(AES.new(k.tobytes(), AES.MODE_ECB).encrypt(b.tobytes()), np.uint8)
                    for k, b in zip(keys, blocks)])
    np.testing.assert_array_equal(ours, ref)
    np.testing.assert_array_equal(aes.decrypt_blocks(keys, ours), blocks)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from([16, 24, 32]).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
       st.binary(min_size=16, max_size=16))
def test_single_block_against_pycryptodome(key, block):
    ct = aes.encrypt_block(key, block)
    assert ct == AES.new(key, AES.MODE_ECB).encrypt(block)
    assert aes.decrypt_block(key, ct) == block


# --- Steps, inverses and reduced rounds ------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=16, max_size=16))
def test_each_step_has_its_inverse(state):
    assert aes.inv_sub_bytes(aes.sub_bytes(state)) == state
    assert aes.inv_shift_rows(aes.shift_rows(state)) == state
    assert aes.inv_mix_columns(aes.mix_columns(state)) == state
    assert aes.add_round_key(aes.add_round_key(state, b"\x5a" * 16), b"\x5a" * 16) == state


def test_shift_rows_moves_rows_left():
    grid = aes.state_matrix(aes.shift_rows(bytes(range(16))))
    start = aes.state_matrix(bytes(range(16)))
    for r in range(4):
        assert grid[r].tolist() == np.roll(start[r], -r).tolist()


def test_mix_columns_fips_example_column():
    # the classic column db 13 53 45 -> 8e 4d a1 bc, in all four columns
    state = H("db135345" * 4)
    assert aes.mix_columns(state) == H("8e4da1bc" * 4)


def test_steps_accept_bytes_and_arrays_alike():
    rng = np.random.default_rng(1)
    states = rng.integers(0, 256, (5, 16), dtype=np.uint8)
    for step in (aes.sub_bytes, aes.shift_rows, aes.mix_columns, aes.inv_mix_columns):
        batch = step(states)
        assert [step(s.tobytes()) for s in states] == [b.tobytes() for b in batch]


@pytest.mark.parametrize("rounds", [1, 2, 4, 9])
def test_reduced_rounds_round_trip_and_trace(rounds):
    key, block = bytes(range(16)), bytes(range(16, 32))
    ct = aes.encrypt_block(key, block, rounds=rounds)
    assert aes.decrypt_block(key, ct, rounds=rounds) == block
    trace = aes.trace_encrypt(key, block, rounds=rounds)
    assert trace[-1].state == ct and trace[-1].round == rounds
    assert trace[-2].step == "shift_rows"  # no MixColumns in the last round


def test_invert_key_schedule():
    rng = np.random.default_rng(7)
    for _ in range(5):
        key = rng.bytes(16)
        rks = aes.expand_key(key)
        for i in (0, 1, 4, 10):
            assert aes.invert_key_schedule(rks[i], i) == key


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: aes.encrypt_block(bytes(15), bytes(16)), "16, 24 or 32 bytes"),
        (lambda: aes.encrypt_block(bytes(16), bytes(17)), "16 bytes"),
        (lambda: aes.encrypt_block(bytes(16), bytes(16), rounds=11), "rounds must be an int in 1..10"),
        (lambda: aes.encrypt_block(bytes(16), bytes(16), rounds=0), "rounds must be an int in 1..10"),
        (lambda: aes.expand_key(bytes(20)), "16, 24 or 32 bytes"),
        (lambda: aes.sub_bytes(bytes(3)), "16 bytes"),
        (lambda: aes.invert_key_schedule(bytes(16), 11), "0..10"),
        (lambda: aes.affine_map(256), "byte must be an int in 0..255"),
    ],
)
def test_bad_input_raises_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_wrong_types_raise_type_error():
    with pytest.raises(TypeError, match="key must be bytes"):
        aes.encrypt_block("00" * 16, bytes(16))
    with pytest.raises(TypeError, match="block must be bytes"):
        aes.encrypt_block(bytes(16), [0] * 16)


# --- Diffusion views ---------------------------------------------------------------------------

def test_stage_names_match_the_trace():
    trace = aes.trace_encrypt(bytes(16), bytes(16), rounds=3)
    assert [(s.round, s.step) for s in trace] == aes.stage_names(3)


def test_round_states_match_the_trace():
    key, block = bytes(range(16)), bytes(range(16, 32))
    states = aes.round_states(key, np.frombuffer(block, np.uint8)[None, :])
    expected = [s.state for s in aes.trace_encrypt(key, block) if s.step == "add_round_key"]
    assert [row[0].tobytes() for row in states] == expected


def test_avalanche_single_bit_then_full_diffusion():
    flips = aes.avalanche_per_round(3, samples=300)
    counts = flips.sum(axis=1)
    assert counts[0] == 1 and flips[0].argmax() == 3  # round 0: only the flipped bit differs
    assert 8 < counts[1] < 24  # one column touched by round 1
    assert all(58 < c < 70 for c in counts[2:])  # about half of 128 from round 2 on
    key_flips = aes.avalanche_per_round(200, target="key", key_size=32, samples=100)
    assert key_flips.shape == (15, 128) and key_flips.sum(axis=1)[-1] > 50
    with pytest.raises(ValueError, match="bit must be"):
        aes.avalanche_per_round(128)
    with pytest.raises(ValueError, match="target"):
        aes.avalanche_per_round(0, target="iv")


def test_byte_dependencies():
    names = aes.stage_names(10)
    after = {k: names.index((k, "add_round_key")) for k in range(11)}
    # a byte after round 1 depends on one column of the input (4 bytes), after round 2 on all 16
    assert aes.byte_dependencies(after[1], 0)[0].sum() == 4
    assert all(aes.byte_dependencies(after[2], b)[0].all() for b in range(16))
    # ShiftRows: byte 1 (row 1, col 0) came from byte 5 (row 1, col 1)
    sr = names.index((1, "shift_rows"))
    deps = aes.byte_dependencies(sr, 1)
    assert deps[sr - 1].nonzero()[0].tolist() == [5]
    # agrees with experiment: bytes outside the mask never change when an input byte changes
    rng = np.random.default_rng(0)
    key = bytes(16)
    blocks = rng.integers(0, 256, (64, 16), dtype=np.uint8)
    other = blocks.copy()
    other[:, 7] ^= rng.integers(1, 256, 64, dtype=np.uint8)
    diff = (aes.round_states(key, blocks)[1] != aes.round_states(key, other)[1]).any(axis=0)
    depends_on_7 = [aes.byte_dependencies(after[1], b)[0][7] for b in range(16)]
    assert diff.tolist() == depends_on_7
    with pytest.raises(ValueError, match="stage must be"):
        aes.byte_dependencies(len(names), 0)
