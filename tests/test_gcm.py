"""GCM against the NIST CAVP vectors and pycryptodome; the nonce-reuse attack end to end."""
import os
import random

import pytest
from Crypto.Cipher import AES
from hypothesis import given, settings, strategies as st

from labkit import bits, gcm, gf128
from labkit.vectors import read_rsp, vectors_dir

H = bytes.fromhex


def _one_per_group(name, pick):
    """One or two records per parameter group (IV/PT/AAD/tag lengths): 525 groups in each file."""
    seen = {}
    for rec in read_rsp(vectors_dir("Cipher", "AES", name)):
        group = (rec["ivlen"], rec["ptlen"], rec["aadlen"], rec["taglen"], pick(rec))
        seen.setdefault(group, rec)
    return list(seen.values())


def test_nist_gcm_encrypt_vectors():
    records = _one_per_group("gcmEncryptExtIV128.rsp", lambda r: None)
    assert len(records) == 525
    for rec in records:
        ct, tag = gcm.encrypt(H(rec["key"]), H(rec["iv"]), H(rec["pt"]), H(rec["aad"]),
                              tag_length=int(rec["taglen"]) // 8)
        assert (ct.hex(), tag.hex()) == (rec["ct"], rec["tag"]), rec["count"]


def test_nist_gcm_decrypt_vectors_accept_and_reject():
    records = _one_per_group("gcmDecrypt128.rsp", lambda r: r.get("fail", False))
    assert any(r.get("fail") for r in records) and not all(r.get("fail") for r in records)
    for rec in records:
        args = (H(rec["key"]), H(rec["iv"]), H(rec["ct"]), H(rec["tag"]), H(rec["aad"]))
        if rec.get("fail"):
            with pytest.raises(gcm.AuthenticationError):
                gcm.decrypt(*args)
        else:
            assert gcm.decrypt(*args).hex() == rec["pt"]


@settings(max_examples=25, deadline=None)
@given(st.sampled_from([16, 24, 32]).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
       st.binary(min_size=1, max_size=20), st.binary(max_size=70), st.binary(max_size=40))
def test_against_pycryptodome(key, nonce, plaintext, aad):
    ref = AES.new(key, AES.MODE_GCM, nonce=nonce)
    ref.update(aad)
    assert gcm.encrypt(key, nonce, plaintext, aad) == ref.encrypt_and_digest(plaintext)


def test_ghash_is_a_polynomial_in_h():
    rng = random.Random(4)
    h, aad, ct = rng.randbytes(16), rng.randbytes(20), rng.randbytes(40)
    steps = gcm.ghash_steps(h, aad, ct)
    assert len(steps) == 2 + 3 + 1 and steps[-1][1] == gcm.ghash(h, aad, ct)
    hh = gf128.from_block(h)
    expected = 0
    for i, (x, _) in enumerate(steps):  # X_1 H^m + ... + X_m H
        expected ^= gf128.mul(gf128.from_block(x), gf128.pow(hh, len(steps) - i))
    assert gf128.to_block(expected) == gcm.ghash(h, aad, ct)


def test_tampering_is_rejected_without_plaintext():
    key, nonce = bytes(range(16)), bytes(12)
    ct, tag = gcm.encrypt(key, nonce, b"attack at dawn", b"hdr")
    for bad in ((bytes([ct[0] ^ 1]) + ct[1:], tag, b"hdr"), (ct, tag, b"hdR"),
                (ct, bytes([tag[0] ^ 1]) + tag[1:], b"hdr")):
        with pytest.raises(gcm.AuthenticationError):
            gcm.decrypt(key, nonce, *bad)


def test_validation():
    with pytest.raises(ValueError, match="tag length"):
        gcm.encrypt(bytes(16), bytes(12), b"", tag_length=5)
    with pytest.raises(ValueError, match="nonce must not be empty"):
        gcm.encrypt(bytes(16), b"", b"")
    with pytest.raises(ValueError, match="16-byte tag"):
        gcm.recover_auth_key(b"a", bytes(8), b"b", bytes(16))
    with pytest.raises(TypeError, match="ciphertext must be bytes"):
        gcm.ghash(bytes(16), b"", "text")


# --- Nonce reuse -----------------------------------------------------------------------------

def _pycryptodome_gcm(key, nonce, plaintext, aad=b""):
    cipher = AES.new(key, AES.MODE_GCM, nonce=nonce)
    cipher.update(aad)
    return cipher.encrypt_and_digest(plaintext)


@pytest.mark.parametrize("seed", range(3))
def test_forbidden_attack_forges_a_message_pycryptodome_accepts(seed):
    rng = random.Random(seed)
    key, nonce = rng.randbytes(16), rng.randbytes(12)
    p1, p2 = b"transfer 100 EUR to Alice; ref " + rng.randbytes(40), rng.randbytes(rng.randrange(1, 100))
    aad1, aad2 = b"v1", rng.randbytes(rng.randrange(0, 30))
    ct1, tag1 = _pycryptodome_gcm(key, nonce, p1, aad1)
    ct2, tag2 = _pycryptodome_gcm(key, nonce, p2, aad2)
    # keystream reuse: the ciphertexts' XOR is the plaintexts' XOR
    n = min(len(p1), len(p2))
    assert bits.xor_bytes(ct1[:n], ct2[:n]) == bits.xor_bytes(p1[:n], p2[:n])

    candidates = gcm.recover_auth_key(ct1, tag1, ct2, tag2, aad1, aad2)
    true_h = AES.new(key, AES.MODE_ECB).encrypt(bytes(16))
    assert true_h in candidates and len(candidates) <= 20

    # known plaintext lets us flip the message; H lets us sign it
    wanted = b"transfer 999 EUR to Mallory ref " + p1[32:]
    forged_ct = bits.xor_bytes(ct1, bits.xor_bytes(p1, wanted[: len(p1)]))
    accepted = []
    for h in candidates:
        forged_tag = gcm.forge_tag(h, aad1, ct1, tag1, forged_ct, b"v2")
        verifier = AES.new(key, AES.MODE_GCM, nonce=nonce)
        verifier.update(b"v2")
        try:
            accepted.append(verifier.decrypt_and_verify(forged_ct, forged_tag))
        except ValueError:
            pass
    assert accepted == [wanted[: len(p1)]]


def test_different_nonces_give_no_root_at_h():
    key = bytes(range(16))
    ct1, tag1 = _pycryptodome_gcm(key, b"A" * 12, b"hello world, one")
    ct2, tag2 = _pycryptodome_gcm(key, b"B" * 12, b"hello world, two")
    assert gcm.auth_key(key) not in gcm.recover_auth_key(ct1, tag1, ct2, tag2)
