"""HKDF-SHA256 (RFC 5869) against its test vector and the `cryptography` package, and its cap."""
import os
import random

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand

from labkit import hkdf


def test_rfc5869_test_case_1():
    ikm, salt, info = bytes([0x0B]) * 22, bytes(range(13)), bytes(range(0xF0, 0xFA))
    prk = hkdf.extract(salt, ikm)
    assert prk.hex() == "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5"
    assert hkdf.expand(prk, info, 42).hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")


def test_against_cryptography_on_random_inputs():
    rng = random.Random()
    for _ in range(40):
        ikm, salt, info = (os.urandom(rng.randrange(0, 50)) for _ in range(3))
        length = rng.randrange(1, 600)
        want = HKDF(hashes.SHA256(), length, salt or None, info).derive(ikm)
        assert hkdf.derive(ikm, length, salt=salt, info=info) == want


def test_output_is_capped_at_255_hash_lengths():
    prk, info = os.urandom(32), b"ctx"
    assert hkdf.MAX_OUTPUT_LENGTH == 255 * 32 == 8160
    assert hkdf.expand(prk, info, 8160) == HKDFExpand(hashes.SHA256(), 8160, info).derive(prk)
    with pytest.raises(ValueError, match="255 \\* HashLen"):
        hkdf.expand(prk, info, 8161)
    with pytest.raises(ValueError):  # the reference refuses too
        HKDFExpand(hashes.SHA256(), 8161, info)


def test_validation():
    with pytest.raises(TypeError, match="length must be an int"):
        hkdf.expand(bytes(32), b"", 1.0)
    with pytest.raises(ValueError, match="PRK must be at least 32"):
        hkdf.expand(bytes(16), b"", 16)
    with pytest.raises(TypeError, match="info must be bytes"):
        hkdf.expand(bytes(32), "text", 16)
    assert hkdf.expand(bytes(32), b"", 0) == b""
