"""HKDF (RFC 5869) with HMAC-SHA-256, written to be read: extract, then expand.

HKDF-Extract condenses input keying material into a pseudorandom key PRK (RFC 5869 2.2);
HKDF-Expand stretches PRK into L bytes bound to a context ``info`` (2.3). Expand counts its
blocks with one byte, so L is capped at 255 * HashLen (8160 bytes for SHA-256): beyond that the
counter would wrap and the output repeat, and the RFC says to fail, which :func:`expand` does.
"""
from __future__ import annotations

import hashlib
import hmac

from labkit import checks

__all__ = ["HASH_LENGTH", "MAX_OUTPUT_LENGTH", "extract", "expand", "derive"]

#: HashLen of SHA-256, in bytes.
HASH_LENGTH = hashlib.sha256().digest_size
#: RFC 5869 2.3: L <= 255 * HashLen.
MAX_OUTPUT_LENGTH = 255 * HASH_LENGTH


def extract(salt: bytes, input_key_material: bytes) -> bytes:
    """PRK = HMAC-Hash(salt, IKM) (RFC 5869 2.2); an empty salt means HashLen zero bytes."""
    salt = checks.check_bytes(salt, what="salt") or bytes(HASH_LENGTH)
    ikm = checks.check_bytes(input_key_material, what="input key material")
    return hmac.new(salt, ikm, hashlib.sha256).digest()


def expand(prk: bytes, info: bytes, length: int) -> bytes:
    """OKM = T(1) || T(2) || ... cut to ``length`` bytes, T(i) = HMAC(PRK, T(i-1) || info || i)
    (RFC 5869 2.3). Raises ValueError if ``length`` exceeds 255 * HashLen."""
    prk, info = checks.check_bytes(prk, what="PRK"), checks.check_bytes(info, what="info")
    length = checks.check_int(length, "length")
    if not 0 <= length <= MAX_OUTPUT_LENGTH:
        raise ValueError(f"HKDF-SHA256 output length must be 0..{MAX_OUTPUT_LENGTH} bytes "
                         f"(RFC 5869: L <= 255 * HashLen, the block counter is one byte), got {length}")
    if len(prk) < HASH_LENGTH:
        raise ValueError(f"PRK must be at least {HASH_LENGTH} bytes (RFC 5869 2.3), got {len(prk)}")
    out, block = b"", b""
    for counter in range(1, -(-length // HASH_LENGTH) + 1):
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
    return out[:length]


def derive(input_key_material: bytes, length: int, *, salt: bytes = b"", info: bytes = b"") -> bytes:
    """HKDF(salt, IKM, info, L) = Expand(Extract(salt, IKM), info, L) (RFC 5869 2)."""
    return expand(extract(salt, input_key_material), info, length)
