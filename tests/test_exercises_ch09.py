"""Chapter 09's exercises: the implement checkers accept labkit's own functions and reject wrong
ones, the references agree with pycryptodome, and the per-run keys of 09.5 are fresh every run."""
import secrets

import pytest
from Crypto.Cipher import AES
from Crypto.Protocol import HPKE
from Crypto.Protocol.DH import import_x25519_public_key

from labkit import exercises as ex
from labkit import weights
from labkit.exercises import service_handles, ch09_weights
from labkit.weights import aead
from labkit.weights.encoding import chunk_spans, dek_aad


def test_09_1_chunk_spans():
    assert ex.check("09.1", chunk_spans)
    wrong = ex.check("09.1", lambda n, size: [(a, a + size) for a in range(0, n, size)])
    assert not wrong and "expected" in str(wrong)
    no_empty_chunk = ex.check("09.1", lambda n, size: [(a, min(a + size, n)) for a in range(0, n, size)])
    assert not no_empty_chunk  # the draw includes empty tensors: one (0, 0) chunk is required


def test_09_2_chunk_nonce_and_its_reference_agree_with_hpke():
    assert ex.check("09.2", weights.chunk_nonce)
    little_endian = ex.check("09.2", lambda base, i: (int.from_bytes(base, "little") ^ i).to_bytes(12, "little"))
    assert not little_endian and "expected" in str(little_endian)
    # RFC 9180 sec. 5.2: the i-th HPKE message uses base_nonce XOR I2OSP(i, 12); pycryptodome's
    # HPKE is the independent reference for the rule the container's chunk nonces follow
    receiver = weights.generate_recipient_keypair()
    sender = HPKE.new(receiver_key=import_x25519_public_key(receiver.public_key), aead_id=HPKE.AEAD.AES256_GCM)
    messages = [secrets.token_bytes(20) for _ in range(3)]
    sealed = [sender.seal(m, b"aad") for m in messages]
    for i, (m, ct) in enumerate(zip(messages, sealed)):
        cipher = AES.new(sender._key, AES.MODE_GCM, nonce=weights.chunk_nonce(sender._base_nonce, i))
        cipher.update(b"aad")
        assert cipher.encrypt(m) + cipher.digest() == ct


def test_09_3_unwrap_dek_reference_agrees_with_pycryptodome_and_checker_plays_the_attacker():
    content_key, dek = secrets.token_bytes(32), secrets.token_bytes(32)
    wrapped = bytes.fromhex(aead.wrap_dek(content_key, dek, "m", "fc.weight"))
    cipher = AES.new(content_key, AES.MODE_GCM, nonce=wrapped[:12])
    cipher.update(dek_aad("m", "fc.weight"))
    assert cipher.decrypt_and_verify(wrapped[12:-16], wrapped[-16:]) == dek
    assert aead.unwrap_dek(content_key, wrapped.hex(), "m", "fc.weight") == dek
    with pytest.raises(weights.IntegrityError):
        aead.unwrap_dek(content_key, wrapped.hex(), "m", "fc.bias")

    assert ex.check("09.3", aead.unwrap_dek)

    def ignores_associated_data(content_key, wrapped_hex, model_id, name):
        blob = bytes.fromhex(wrapped_hex)
        cipher = AES.new(content_key, AES.MODE_GCM, nonce=blob[:12])
        return cipher.decrypt_and_verify(blob[12:-16], blob[-16:])

    feedback = ex.check("09.3", ignores_associated_data)
    assert not feedback and "expected" in str(feedback)  # fails on the genuine wraps: wrong tag

    def never_verifies(content_key, wrapped_hex, model_id, name):
        blob = bytes.fromhex(wrapped_hex)
        return AES.new(content_key, AES.MODE_GCM, nonce=blob[:12]).decrypt(blob[12:-16])

    feedback = ex.check("09.3", never_verifies)
    assert not feedback and "expected an exception" in str(feedback)


def test_09_8_keys_are_fresh_every_run(tmp_path):
    service_handles.new_run()
    publisher, device = ch09_weights.exercise_publisher(), ch09_weights.exercise_device()
    assert ch09_weights.exercise_publisher() == publisher  # stable within a run
    path = tmp_path / "ex.lkw"
    weights.seal(ch09_weights.exercise_state(), path, [device.public_key], signing_key=publisher,
                 encrypt=["fc.weight"])
    assert ex.check("09.5", path)
    everything = tmp_path / "all.lkw"
    weights.seal(ch09_weights.exercise_state(), everything, [device.public_key], signing_key=publisher)
    assert not ex.check("09.5", everything)
    service_handles.new_run()
    assert ch09_weights.exercise_publisher().public_key != publisher.public_key
    assert ch09_weights.exercise_device().public_key != device.public_key
    assert not ex.check("09.5", path)

