"""GCM's limits and pitfalls (unit 04b): the 2^36 - 32 byte cap, the AEADs the notebook times
checked against `cryptography`, and the deterministic-IV sealer attacked as an attacker would."""
import os
import random

import numpy as np
import pytest
import torch
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from labkit import bits, gcm, gcm_pitfalls, hkdf, modes, weights


def test_plaintext_cap_is_the_32_bit_counter():
    assert gcm.MAX_PLAINTEXT_BYTES == 2**36 - 32 == (2**39 - 256) // 8  # SP 800-38D 5.2.1.1
    assert gcm.check_plaintext_length(gcm.MAX_PLAINTEXT_BYTES) == gcm.MAX_PLAINTEXT_BYTES
    with pytest.raises(ValueError, match="2\\^36 - 32"):
        gcm.check_plaintext_length(gcm.MAX_PLAINTEXT_BYTES + 1)
    j0 = os.urandom(12) + bytes([0, 0, 0, 1])
    blocks = gcm.MAX_PLAINTEXT_BYTES // 16
    last = modes.increment_counter(j0, counter_bits=32, by=blocks)  # block i uses J0 + i mod 2^32
    assert last != j0 and last[:12] == j0[:12]  # inc_32 never touches the nonce part
    assert modes.increment_counter(j0, counter_bits=32, by=2**32) == j0  # block 2^32: the tag mask's counter


def test_reduced_counter_wraps_into_a_repeated_keystream():
    key, start = os.urandom(16), os.urandom(16)
    stream = modes.ctr_keystream(key, start, 16 * 20, counter_bits=4)
    blocks = modes.split_blocks(stream)
    assert blocks[16:] == blocks[:4] and len(set(blocks[:16])) == 16


@pytest.mark.parametrize("name", gcm_pitfalls.AEADS)
def test_aeads_agree_with_cryptography(name):
    rng = random.Random()
    for _ in range(10):
        key, nonce = os.urandom(32), os.urandom(12)
        plaintext, aad = os.urandom(rng.randrange(0, 200)), os.urandom(rng.randrange(0, 40))
        reference = ChaCha20Poly1305(key) if name.startswith("ChaCha") else AESGCM(key)
        assert gcm_pitfalls.aead_seal(name, key, nonce, plaintext, aad) == reference.encrypt(nonce, plaintext, aad)
    with pytest.raises(ValueError, match="AEAD must be one of"):
        gcm_pitfalls.aead_seal("AES-ECB", bytes(32), bytes(12), b"")


def test_aes_gcm_matches_labkit_gcm():
    key, nonce, pt, aad = os.urandom(32), os.urandom(12), os.urandom(77), b"hdr"
    ct, tag = gcm.encrypt(key, nonce, pt, aad)
    assert gcm_pitfalls.aead_seal("AES-256-GCM", key, nonce, pt, aad) == ct + tag


def _weights(seed: int) -> bytes:
    return np.random.default_rng(seed).standard_normal(16).astype(np.float32).tobytes()


def test_deterministic_iv_reuses_the_nonce_when_a_model_is_resealed_and_falls_to_a_forgery():
    key = os.urandom(32)
    before = gcm_pitfalls.seal_with_deterministic_iv_UNSAFE(key, "fc.weight", _weights(1))
    after = gcm_pitfalls.seal_with_deterministic_iv_UNSAFE(key, "fc.weight", _weights(2))  # a weight update
    assert before.nonce == after.nonce  # what the attacker notices in the two files
    assert gcm_pitfalls.deterministic_nonce_UNSAFE(key, "fc.weight") == hkdf.derive(
        key, 12, info=b"labkit tensor iv|fc.weight")
    assert gcm_pitfalls.seal_with_deterministic_iv_UNSAFE(key, "fc.bias", _weights(1)).nonce != before.nonce
    # the attacker, holding both files and no key: the keystream cancels and H falls out
    assert bits.xor_bytes(before.ciphertext, after.ciphertext) == bits.xor_bytes(_weights(1), _weights(2))
    candidates = gcm.recover_auth_key(before.ciphertext, before.tag, after.ciphertext, after.tag,
                                      before.aad, after.aad)
    assert gcm.auth_key(key) in candidates
    evil = bits.xor_bytes(before.ciphertext, bits.xor_bytes(_weights(1), bytes(64)))  # all-zero weights
    accepted = []
    for h in candidates:
        forged = gcm_pitfalls.SealedTensor("fc.weight", before.nonce, evil,
                                           gcm.forge_tag(h, before.aad, before.ciphertext, before.tag, evil, before.aad))
        try:
            accepted.append(gcm_pitfalls.open_sealed_tensor(key, forged))
        except gcm.AuthenticationError:
            pass
    assert accepted == [bytes(64)]


def test_deterministic_sealer_rejects_tampering_and_bad_names():
    key = os.urandom(16)
    sealed = gcm_pitfalls.seal_with_deterministic_iv_UNSAFE(key, "w", b"data")
    assert gcm_pitfalls.open_sealed_tensor(key, sealed) == b"data"
    with pytest.raises(gcm.AuthenticationError):
        gcm_pitfalls.open_sealed_tensor(key, gcm_pitfalls.SealedTensor("v", sealed.nonce, sealed.ciphertext, sealed.tag))
    with pytest.raises(TypeError, match="tensor name"):
        gcm_pitfalls.seal_with_deterministic_iv_UNSAFE(key, "", b"data")


def test_the_safe_sealer_never_reuses_a_nonce_across_reseals(tmp_path):
    device, publisher = weights.generate_recipient_keypair(), weights.generate_signing_keypair()
    paths, plain = [], []
    for version, seed in ((1, 1), (2, 2)):  # the same tensor, re-sealed after an update
        tensor = torch.frombuffer(bytearray(_weights(seed)), dtype=torch.float32)
        path = tmp_path / f"v{version}.lkw"
        weights.seal({"fc.weight": tensor}, path, [device.public_key], signing_key=publisher.private_key,
                     model_id="m", version=version)
        paths.append(path)
        plain.append(_weights(seed))
    headers = [weights.read_header(p) for p in paths]
    entries = [h.parsed.tensor("fc.weight") for h in headers]
    assert entries[0].nonce_base != entries[1].nonce_base
    assert entries[0].wrapped_dek != entries[1].wrapped_dek
    data = [p.read_bytes()[h.data_start + e.begin: h.data_start + e.end]
            for p, h, e in zip(paths, headers, entries)]
    assert bits.xor_bytes(*data) != bits.xor_bytes(*plain)  # no keystream cancels


def test_throughput_reports_every_aead_and_validates():  # what it returns, never how fast
    speeds = gcm_pitfalls.aead_throughput(4096, repeats=1)
    assert list(speeds) == list(gcm_pitfalls.AEADS) and all(s > 0 for s in speeds.values())
    with pytest.raises(ValueError, match="positive number of bytes"):
        gcm_pitfalls.aead_throughput(0)
    assert set(gcm_pitfalls.cpu_has_aes_instructions()) == {"aes_ni", "clmul"}
