"""Strict Ed25519 verification: the one verifier every Ed25519 signature in the lab goes through.

RFC 8032 leaves room: libraries differ on non-canonical encodings, on small-order points and on
the cofactor (Chalkias, Garillot, Nikolaenko, "Taming the many EdDSAs", SSR 2020). The room is an
attack surface: with the identity point as public key (or any point of order dividing 8), a
"signature" with ``S = 0`` and a small-order ``R`` verifies for *every* message under the
cofactored equation; with a small-order ``R`` and ``S = k*a`` it verifies for the key's message
while ``R`` is a recognisable constant; ``S + L`` or another encoding of ``R`` or ``A`` gives a
second valid signature of the same message (malleability). This module accepts exactly one
encoding of each valid signature of an honestly generated key:

- ``A`` and ``R`` are canonical encodings (``y < p``; no sign bit on ``x = 0``) of curve points
  in the prime-order subgroup, other than the identity: every point of order 1, 2, 4 or 8 (the
  identity key among them) and every *mixed-order* point (a prime-order point plus a torsion
  part, which RFC 8032 key generation never produces) is refused;
- ``0 <= S < L`` (RFC 8032 §5.1.7 step 1);
- ``[S]B = R + [k]A`` with ``k = SHA-512(R || A || M) mod L`` (cofactorless: when it holds, R is
  ``[S]B - [k]A``, in the prime-order subgroup since B and A are; there the cofactored equation
  gives the same answers).

Point arithmetic is pycryptodome's (``Crypto.PublicKey.ECC``); the encoding rules are RFC 8032
§5.1.2-5.1.3, written out here so that no library's leniency decides. Keys enter through one
adapter, :func:`private_key` and :func:`public_key_bytes`, which every Ed25519 user of the lab
(trigger schemes, weight containers) calls.
"""
from __future__ import annotations

import hashlib
from typing import Callable

from Crypto.PublicKey import ECC

__all__ = ["P", "L", "BASE", "StrictnessError", "decode_point", "encode_point", "is_valid_public_key",
           "check_public_key", "private_key", "public_key_bytes", "verifier", "verify_strict",
           "small_order_points"]

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493  # the order of the base point
_D = (-121665 * pow(121666, -1, P)) % P
_SQRT_M1 = pow(2, (P - 1) // 4, P)
BASE = ECC.EccPoint(
    15112221349535400772501151409588531511454012693041857206046113283949847762202,
    46316835694926478169428394003475163141307993866256225615783033603165251855960,
    curve="Ed25519",
)


class StrictnessError(ValueError):
    """An encoding or point that strict verification refuses (non-canonical, small or mixed order)."""


def encode_point(point) -> bytes:
    """RFC 8032 §5.1.2: y little-endian, the low bit of x in the top bit."""
    return (int(point.y) | (int(point.x) & 1) << 255).to_bytes(32, "little")


def _recover_x(y: int, sign: int) -> int | None:
    """RFC 8032 §5.1.3 steps 2-4: the x with the given low bit on the curve at y, else None."""
    u, v = (y * y - 1) % P, (_D * y * y + 1) % P
    x = (u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P)) % P
    if (v * x * x - u) % P != 0:
        x = (x * _SQRT_M1) % P
        if (v * x * x - u) % P != 0:
            return None
    if x == 0 and sign:
        return None  # -0: a second encoding of the same point
    return P - x if x & 1 != sign else x


def decode_point(encoding: bytes):
    """The curve point of a canonical 32-byte encoding; :class:`StrictnessError` otherwise."""
    if not isinstance(encoding, (bytes, bytearray)) or len(encoding) != 32:
        raise StrictnessError("an Ed25519 point is encoded in 32 bytes")
    value = int.from_bytes(encoding, "little")
    y, sign = value & ((1 << 255) - 1), value >> 255
    if y >= P:
        raise StrictnessError("non-canonical point encoding (y >= p)")
    x = _recover_x(y, sign)
    if x is None:
        raise StrictnessError("not the encoding of a curve point (or -0)")
    return ECC.EccPoint(x, y, curve="Ed25519")


def _check_prime_order(point, what: str) -> None:
    """Refuse the identity and every point outside the prime-order subgroup ([L]P != O: a point of
    order dividing 8, since L is odd, or a mixed-order one); the error names which."""
    if point.is_point_at_infinity():
        raise StrictnessError(f"{what} is the identity point")
    if (point * L).is_point_at_infinity():
        return
    if (point * 8).is_point_at_infinity():
        raise StrictnessError(f"{what} is a point of small order (order dividing 8)")
    raise StrictnessError(f"{what} is a mixed-order point (not in the prime-order subgroup)")


def check_public_key(public_key: bytes) -> bytes:
    """``public_key`` if it is a canonical encoding of a prime-order point other than the identity;
    :class:`StrictnessError` otherwise."""
    _check_prime_order(decode_point(public_key), "the public key")
    return bytes(public_key)


def private_key(key) -> ECC.EccKey:
    """An Ed25519 private key as pycryptodome's ``EccKey``: ``key`` itself if it is one, or the key
    whose 32-byte private key (the seed of RFC 8032 §5.1.5) ``key`` is.

    TypeError for anything else, a public-only key or another curve's key included (so a verify
    key passed where the signing key belongs fails loudly); ValueError for bytes of another length.
    """
    if isinstance(key, ECC.EccKey):
        if key.curve == "Ed25519" and key.has_private():
            return key
        raise TypeError(f"expected an Ed25519 private key, got a {key.curve} "
                        f"{'private' if key.has_private() else 'public'} key")
    if isinstance(key, (bytes, bytearray)):
        if len(key) != 32:
            raise ValueError(f"an Ed25519 private key is 32 bytes, got {len(key)}")
        return ECC.construct(curve="Ed25519", seed=bytes(key))
    raise TypeError(f"expected an Ed25519 private key (an EccKey or 32 bytes), got {type(key).__name__}")


def public_key_bytes(key) -> bytes:
    """The raw 32-byte public key (RFC 8032 §5.1.5) of an Ed25519 ``EccKey``, public or private, or
    ``key`` itself if it is 32 bytes; checked by :func:`check_public_key` either way, so the
    identity, a point of small or mixed order or a non-canonical encoding raises
    :class:`StrictnessError` (a ValueError): no key under which forgeries verify gets through.

    TypeError for another type or another curve's key; ValueError for bytes of another length.
    """
    if isinstance(key, ECC.EccKey):
        if key.curve != "Ed25519":
            raise TypeError(f"expected an Ed25519 key, got a {key.curve} key")
        return check_public_key(key.public_key().export_key(format="raw"))
    if isinstance(key, (bytes, bytearray)):
        if len(key) != 32:
            raise ValueError(f"an Ed25519 public key is 32 bytes, got {len(key)}")
        return check_public_key(bytes(key))
    raise TypeError(f"expected an Ed25519 public key (an EccKey or 32 bytes), got {type(key).__name__}")


def is_valid_public_key(public_key: bytes) -> bool:
    """Would :func:`check_public_key` accept ``public_key``?"""
    try:
        check_public_key(public_key)
    except StrictnessError:
        return False
    return True


def verifier(public_key: bytes) -> Callable[[bytes, bytes], bool]:
    """A strict verifier ``(message, signature) -> bool`` for a key checked once, here
    (:class:`StrictnessError` if the key is refused); the function never raises."""
    a_bytes = check_public_key(public_key)
    a = decode_point(a_bytes)

    def verify(message: bytes, signature: bytes) -> bool:
        if not isinstance(message, (bytes, bytearray)) or not isinstance(signature, (bytes, bytearray)):
            return False
        if len(signature) != 64:
            return False
        s = int.from_bytes(signature[32:], "little")
        if s >= L:
            return False  # RFC 8032 §5.1.7 step 1: S + L would be a second signature
        try:
            r = decode_point(signature[:32])
        except StrictnessError:
            return False
        if r.is_point_at_infinity():
            return False
        k = int.from_bytes(hashlib.sha512(bytes(signature[:32]) + a_bytes + bytes(message)).digest(), "little") % L
        # cofactorless: if it holds, R = [S]B - [k]A lies in the prime-order subgroup (B and A do), so
        # no small-order or mixed-order R passes; only the identity needed the explicit check above
        return BASE * s == r + a * k

    return verify


def verify_strict(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True exactly when ``signature`` is the strict Ed25519 signature of ``message`` under
    ``public_key`` (rules in the module docstring); never raises on malformed input."""
    if not isinstance(public_key, (bytes, bytearray)):
        return False
    try:
        return verifier(bytes(public_key))(message, signature)
    except StrictnessError:
        return False


def small_order_points() -> list[bytes]:
    """The canonical encodings of the 8 points of order dividing 8, the identity first, found from
    their definition: ``[L]Q`` of curve points ``Q`` (the group has order 8L) until all 8 appear."""
    found = {encode_point(ECC.EccPoint(0, 1, curve="Ed25519"))}
    y = 2
    while len(found) < 8:
        for sign in (0, 1):
            x = _recover_x(y, sign)
            if x is not None:
                found.add(encode_point(ECC.EccPoint(x, y, curve="Ed25519") * L))
        y += 1
    identity = encode_point(ECC.EccPoint(0, 1, curve="Ed25519"))
    return [identity] + sorted(found - {identity})
