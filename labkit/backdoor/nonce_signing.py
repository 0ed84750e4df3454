"""Ed25519 signatures with a nonce the signer chooses (RFC 8032 §5.1.6, step 2 replaced).

RFC 8032 derives the nonce as ``r = SHA-512(prefix || M) mod L``, so one key gives one signature
per message. Nothing in the verification equation ``[8][S]B = [8]R + [8][k]A`` checks how r was
chosen: a key holder may pick any r and gets another valid signature of the same message. Ed25519
is therefore *not* a unique signature scheme, which is what a grinding claimant exploits
(``labkit.backdoor.attackers.GrindingClaimant``) and what the ownership judge must match with its
controls (``labkit.backdoor.protocols.judge_ownership``). Point arithmetic, the base point and the
encoding are :mod:`labkit.ed25519`'s (pycryptodome underneath).
"""
from __future__ import annotations

import hashlib
import os
import secrets

from labkit import ed25519

__all__ = ["ORDER", "private_scalar", "rfc8032_nonce", "sign_with_nonce", "sign_with_random_nonce",
           "sign_with_throwaway_key"]

ORDER = ed25519.L  # L, the order of the base point B


def private_scalar(signing_key) -> int:
    """The secret scalar ``a`` of an Ed25519 key (RFC 8032 §5.1.5: SHA-512 of the seed, clamped)."""
    return int(ed25519.private_key(signing_key).d)


def _sign(scalar: int, public: bytes, message: bytes, nonce: int) -> bytes:
    """RFC 8032 §5.1.6 steps 3-6 for the private scalar ``a`` (public key ``A``) and nonce ``r``."""
    if isinstance(nonce, bool) or not isinstance(nonce, int) or not 0 < nonce < ORDER:
        raise ValueError("the nonce r must be an int with 0 < r < L")
    if not isinstance(message, (bytes, bytearray)):
        raise TypeError(f"message must be bytes, got {type(message).__name__}")
    commitment = ed25519.encode_point(nonce * ed25519.BASE)
    k = int.from_bytes(hashlib.sha512(commitment + public + bytes(message)).digest(), "little") % ORDER
    return commitment + ((nonce + k * scalar) % ORDER).to_bytes(32, "little")


def rfc8032_nonce(signing_key, message: bytes) -> int:
    """The nonce RFC 8032 prescribes: ``SHA-512(prefix || M) mod L``, prefix = SHA-512(seed)[32:]."""
    prefix = hashlib.sha512(ed25519.private_key(signing_key).seed).digest()[32:]
    return int.from_bytes(hashlib.sha512(prefix + bytes(message)).digest(), "little") % ORDER


def sign_with_nonce(signing_key, message: bytes, nonce: int) -> bytes:
    """The Ed25519 signature of ``message`` under ``signing_key`` with the caller's nonce ``r``.

    With ``rfc8032_nonce(key, message)`` it is the standard deterministic signature; with any
    other ``r`` in ``1..L-1`` it is another signature that every Ed25519 verifier accepts.
    """
    key = ed25519.private_key(signing_key)
    return _sign(int(key.d), key.public_key().export_key(format="raw"), message, nonce)


def sign_with_random_nonce(signing_key, message: bytes) -> bytes:
    """A valid Ed25519 signature whose nonce comes from the OS CSPRNG: a fresh one on every call."""
    return sign_with_nonce(signing_key, message, secrets.randbelow(ORDER - 1) + 1)


def sign_with_throwaway_key(message: bytes) -> tuple[bytes, bytes]:
    """``(verify key, signature)`` of ``message`` under a fresh key (RFC 8032 §5.1.5 from a random
    seed) that is then forgotten: what a judge's control copy needs, at two scalar multiplications."""
    digest = bytearray(hashlib.sha512(os.urandom(32)).digest()[:32])
    digest[0] &= 248  # clamping, RFC 8032 §5.1.5 step 2
    digest[31] = (digest[31] & 127) | 64
    scalar = int.from_bytes(digest, "little")
    public = ed25519.encode_point(scalar * ed25519.BASE)
    return public, _sign(scalar, public, message, secrets.randbelow(ORDER - 1) + 1)
