"""BLS signatures on BLS12-381: a *unique* signature scheme for the ownership judge.

draft-irtf-cfrg-bls-signature-05, "minimal-pubkey-size" variant with the proof-of-possession
ciphersuite ``BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_`` (the one Ethereum uses): a secret
scalar ``sk`` in ``[1, r-1]``, public key ``PK = [sk]P1`` in G1 (48 bytes compressed), signature
``sigma = [sk]H(m)`` in G2 (96 bytes compressed), ``H`` the hash to G2 of RFC 9380
(``BLS12381G2_XMD:SHA-256_SSWU_RO_``). Verification (CoreVerify, draft §2.7) checks
``e(PK, H(m)) * e(-P1, sigma) = 1``. The curve, hash and pairing are ``py_arkworks_bls12381``
(Rust arkworks, maintained by crate-crypto; the fast backend of Ethereum's consensus
specifications); the few lines of the ciphersuite on top are written out here. ``py_ecc``'s
``G2ProofOfPossession`` (pure Python, the Ethereum Foundation's) is the independent
implementation the tests compare signatures and verdicts with.

Why unique. For a valid key, ``sigma`` must lie in the order-r subgroup G2, where the pairing
equation has exactly one solution, ``[sk]H(m)``; and a point has exactly one encoding here. So for
each (key, message) exactly one 96-byte string verifies: the signer has no nonce to choose (as
Ed25519's ``r``) and no randomness (as hedged ML-DSA), which is what the ownership judge needs.
Both hold only under strict decoding, done here before the library sees the bytes:

- every point is in compressed form (flag bit 0x80), never the identity (flag 0x40), and its
  coordinates are canonical (each ``< p``); a G2 point's two coordinates are checked;
- KeyValidate (draft §2.5): the public key is a point of G1's order-r subgroup other than the
  identity (arkworks' checked decoding: on the curve, in the subgroup);
- the signature is a point of G2's order-r subgroup (the same checked decoding) before any pairing.
"""
from __future__ import annotations

import secrets
from typing import Callable

import py_arkworks_bls12381 as arkworks

__all__ = ["R", "P", "CIPHERSUITE", "PUBLIC_KEY_BYTES", "SIGNATURE_BYTES", "BlsSigningKey", "BlsVerifyKey",
           "generate", "canonical_point", "verify_key", "sign", "hash_to_g2", "verifier"]

R = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001  # order of G1, G2
P = int("1a0111ea397fe69a4b1ba7b6434bacd764774b84f38512bf6730d2a0f6b0f6241eabfffeb153ffffb9feffffffffaaab", 16)
CIPHERSUITE = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_"
PUBLIC_KEY_BYTES, SIGNATURE_BYTES = 48, 96
_COORDINATE = (1 << 381) - 1


def canonical_point(encoding: bytes, size: int) -> bool:
    """Is ``encoding`` the one canonical compressed encoding of a non-identity point (48 bytes: G1,
    96: G2)? Checks the flags and that every coordinate is below p; not the curve or subgroup."""
    if not isinstance(encoding, (bytes, bytearray)) or len(encoding) != size or size not in (48, 96):
        return False
    first = int.from_bytes(encoding[:48], "big")
    flags = first >> 381
    if not flags & 0b100 or flags & 0b010:  # not compressed, or the point at infinity
        return False
    if first & _COORDINATE >= P:
        return False
    return size == 48 or int.from_bytes(encoding[48:], "big") < P


class BlsVerifyKey:
    """A validated BLS12-381 public key (48 bytes, KeyValidate passed)."""

    __slots__ = ("raw",)

    def __init__(self, raw: bytes) -> None:
        self.raw = verify_key(raw)

    def __eq__(self, other) -> bool:
        return isinstance(other, BlsVerifyKey) and other.raw == self.raw

    def __hash__(self) -> int:
        return hash(self.raw)

    def __repr__(self) -> str:
        return f"BlsVerifyKey({self.raw[:6].hex()}...)"


class BlsSigningKey:
    """A BLS12-381 secret scalar (from the OS CSPRNG via :func:`generate`); repr hides it."""

    __slots__ = ("_secret", "_public")

    def __init__(self, secret: int) -> None:
        if isinstance(secret, bool) or not isinstance(secret, int) or not 0 < secret < R:
            raise ValueError("a BLS secret key is an int in [1, r-1]")
        self._secret = secret
        self._public = BlsVerifyKey(bytes((arkworks.G1Point() * arkworks.Scalar(secret)).to_compressed_bytes()))

    def has_private(self) -> bool:
        return True

    def public_key(self) -> BlsVerifyKey:
        return self._public

    def _scalar(self):
        return arkworks.Scalar(self._secret)

    def __repr__(self) -> str:
        return f"BlsSigningKey(public={self._public.raw[:6].hex()}..., secret hidden)"


def generate() -> tuple[BlsSigningKey, BlsVerifyKey]:
    """A fresh key pair; the secret is uniform in ``[1, r-1]`` from the OS CSPRNG (never a seed)."""
    key = BlsSigningKey(secrets.randbelow(R - 1) + 1)
    return key, key.public_key()


def verify_key(raw) -> bytes:
    """``raw`` (48 bytes) if it passes strict decoding and KeyValidate; ValueError otherwise."""
    if isinstance(raw, BlsVerifyKey):
        return raw.raw
    if not isinstance(raw, (bytes, bytearray)) or len(raw) != PUBLIC_KEY_BYTES:
        raise ValueError(f"a BLS12-381 public key is {PUBLIC_KEY_BYTES} bytes")
    raw = bytes(raw)
    if not canonical_point(raw, PUBLIC_KEY_BYTES):
        raise ValueError("the BLS public key is not a canonical compressed G1 point (or is the identity)")
    try:
        point = arkworks.G1Point.from_compressed_bytes(list(raw))  # on the curve and in the order-r subgroup
    except ValueError:
        raise ValueError("the BLS public key is not a point of G1's order-r subgroup") from None
    if point == arkworks.G1Point.identity():  # excluded by the flag check already; KeyValidate says it twice
        raise ValueError("the BLS public key is the identity")
    return raw


def sign(signing_key: BlsSigningKey, message: bytes) -> bytes:
    """The unique signature ``[sk]H(message)`` (96 bytes; CoreSign, draft §2.6)."""
    if not isinstance(signing_key, BlsSigningKey):
        raise TypeError(f"signing key must be a BlsSigningKey, got {type(signing_key).__name__}")
    if not isinstance(message, (bytes, bytearray)):
        raise TypeError(f"message must be bytes, got {type(message).__name__}")
    return bytes((hash_to_g2(bytes(message)) * signing_key._scalar()).to_compressed_bytes())


def hash_to_g2(message: bytes):
    """``H(message)``: RFC 9380 hash to G2 with the ciphersuite's domain separation tag."""
    return arkworks.G2Point.hash_to_curve(bytes(message), CIPHERSUITE)  # (message, dst) order


def verifier(public_key) -> Callable[[bytes, bytes], bool]:
    """A strict verifier ``(message, signature) -> bool`` for a key validated once, here."""
    key = arkworks.G1Point.from_compressed_bytes(list(verify_key(public_key)))
    minus_generator = -arkworks.G1Point()

    def verify(message: bytes, signature: bytes) -> bool:
        if not isinstance(message, (bytes, bytearray)) or not canonical_point(signature, SIGNATURE_BYTES):
            return False
        try:
            sigma = arkworks.G2Point.from_compressed_bytes(list(signature))  # curve and subgroup checked
        except ValueError:
            return False
        return bool(arkworks.GT.pairing_check([key, minus_generator], [hash_to_g2(message), sigma]))

    return verify
