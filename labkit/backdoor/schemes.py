"""The signature scheme of a trigger and where its field lives: both parameters of the backdoor.

Ngo, Chattopadhyay and Maitra (arXiv 2509.20714, 2025) note that the backdoor can use a
post-quantum signature. The trigger needs only ``sign`` and ``verify``, so the scheme is a
parameter here, never a fork of the construction:

- :data:`ED25519`: RFC 8032 (pycryptodome signs; :mod:`labkit.ed25519` verifies strictly: no
  small-order, mixed-order or non-canonical points, no identity key, ``S < L``), 32-byte public
  keys, 64-byte signatures. Not unique: the signer may choose its nonce (``nonce_signing``);
- :data:`ML_DSA_44`: FIPS 204 ML-DSA-44 (pycryptodome ``Crypto.Signature.mldsa``, hedged signing),
  1,312-byte public keys, 2,420-byte signatures. Not unique either (hedged);
- :data:`BLS12_381`: BLS signatures, IETF ciphersuite ``BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_``
  (:mod:`labkit.backdoor.bls`), 48-byte public keys, 96-byte signatures: **unique**, exactly one
  valid signature per key and message, which is what the ownership judge needs.

A :class:`TriggerLayout` says where the field (64-byte header, then the signature, then zero
padding) is written: the ``bits_per_pixel`` low-order bits of every pixel of a ``size`` x ``size``
image, row by row, most significant of those bits first (``labkit.bits`` order). Changing the low
``b`` bits moves a pixel by at most ``2^b - 1`` levels of 255. The chapter's default,
:data:`DEFAULT_LAYOUT`, is Ed25519 in the 1,024 LSBs of a 32x32 image (exactly 128 bytes). An
ML-DSA-44 field is 2,484 bytes = 19,872 bits: more than a 32x32 image holds even at 8 bits per
pixel, so it needs a larger image (:func:`bits_per_pixel_needed`). A BLS field is 160 bytes =
1,280 bits: :data:`OWNERSHIP_LAYOUT` writes it into the 2 low bits of a 32x32 image (changes of
at most 3 levels), the layout of the ownership judge.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from Crypto.PublicKey import ECC, MLDSA
from Crypto.Signature import eddsa, mldsa

from labkit import ed25519
from labkit.backdoor import bls

__all__ = ["SignatureScheme", "ED25519", "ML_DSA_44", "BLS12_381", "SCHEMES", "TriggerLayout", "DEFAULT_LAYOUT",
           "OWNERSHIP_LAYOUT", "HEADER_BYTES", "bits_per_pixel_needed", "scheme_of"]

HEADER_BYTES = 64  # the signed header of every field (see labkit.backdoor.trigger)
BLOCK_BITS = 1 << 21  # low bits unpacked at a time (one per byte): 2 MiB temporaries, whatever the batch


class SignatureScheme:
    """A signature scheme as the trigger uses it: keys, ``sign`` and a verifier; subclasses below."""

    name: str
    signature_bytes: int
    public_key_bytes: int
    unique: bool = False  # exactly one valid signature per (key, message)?

    def generate(self):
        """A fresh key pair ``(signing_key, verify_key)`` from the OS CSPRNG (never from a seed)."""
        raise NotImplementedError

    def signing_key(self, key):
        """The private key object of ``key`` (a private key of this scheme; Ed25519 also takes its
        32-byte private key), else TypeError."""
        raise NotImplementedError

    def verify_key(self, key):
        """The public key object of ``key`` (a key object or its raw public bytes)."""
        raise NotImplementedError

    def public_bytes(self, key) -> bytes:
        """The raw encoding of the public key of ``key``."""
        raise NotImplementedError

    def signer(self, signing_key) -> Callable[[bytes], bytes]:
        """A function ``message -> signature`` under ``signing_key``."""
        raise NotImplementedError

    def verifier(self, verify_key) -> Callable[[bytes, bytes], bool]:
        """A function ``(message, signature) -> bool`` under ``verify_key`` (never raises on a bad one)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<signature scheme {self.name}: {self.signature_bytes}-byte signatures>"


def _checked_verify(verify: Callable[[bytes, bytes], object], length: int) -> Callable[[bytes, bytes], bool]:
    def ok(message: bytes, signature: bytes) -> bool:
        if len(signature) != length:
            return False
        try:
            verify(bytes(message), bytes(signature))
        except ValueError:
            return False
        return True

    return ok


class _Ed25519(SignatureScheme):
    name, signature_bytes, public_key_bytes = "Ed25519", 64, 32

    def generate(self):
        key = ECC.generate(curve="Ed25519")
        return key, key.public_key()

    def signing_key(self, key):
        """An EccKey or its 32-byte private key (:func:`labkit.ed25519.private_key`)."""
        return ed25519.private_key(key)

    def verify_key(self, key):
        """The key as an EccKey; ValueError (``ed25519.StrictnessError``) for a key strict
        verification refuses: the identity, any small- or mixed-order point, a non-canonical
        encoding (:func:`labkit.ed25519.public_key_bytes`)."""
        return eddsa.import_public_key(ed25519.public_key_bytes(key))

    def public_bytes(self, key) -> bytes:
        return ed25519.public_key_bytes(key)

    def signer(self, signing_key):
        return eddsa.new(self.signing_key(signing_key), "rfc8032").sign

    def verifier(self, verify_key):
        return ed25519.verifier(self.public_bytes(verify_key))


class _MLDSA44(SignatureScheme):
    name, signature_bytes, public_key_bytes = "ML-DSA-44", 2420, 1312

    def generate(self):
        key = MLDSA.generate(param_set=MLDSA.ML_DSA_44)
        return key, key.public_key()

    def _is_44(self, key) -> bool:
        return isinstance(key, MLDSA.MLDSAKey) and len(key.pk) == self.public_key_bytes

    def signing_key(self, key):
        if self._is_44(key) and key.has_private():
            return key
        raise TypeError("signing key must be a private ML-DSA-44 key (Crypto.PublicKey.MLDSA)")

    def verify_key(self, key):
        if isinstance(key, (bytes, bytearray)):
            if len(key) != self.public_key_bytes:
                raise ValueError(f"an ML-DSA-44 verify key is {self.public_key_bytes} bytes, got {len(key)}")
            return MLDSA.construct(param_set=MLDSA.ML_DSA_44, pk=bytes(key))
        if self._is_44(key):
            return key.public_key()
        raise TypeError(f"verify key must be an ML-DSA-44 key or {self.public_key_bytes} bytes, "
                        f"got {type(key).__name__}")

    def public_bytes(self, key) -> bytes:
        return bytes(self.verify_key(key).pk)

    def signer(self, signing_key):
        return mldsa.new(self.signing_key(signing_key)).sign  # hedged (FIPS 204, Algorithm 2)

    def verifier(self, verify_key):
        return _checked_verify(mldsa.new(self.verify_key(verify_key)).verify, self.signature_bytes)


class _BLS12381(SignatureScheme):
    name, signature_bytes, public_key_bytes, unique = "BLS12-381", 96, 48, True

    def generate(self):
        return bls.generate()

    def signing_key(self, key):
        if isinstance(key, bls.BlsSigningKey):
            return key
        raise TypeError("signing key must be a BLS12-381 key (schemes.BLS12_381.generate())")

    def verify_key(self, key):
        """The key as a ``bls.BlsVerifyKey``: 48 bytes that pass strict decoding and KeyValidate."""
        if isinstance(key, bls.BlsSigningKey):
            return key.public_key()
        if isinstance(key, (bls.BlsVerifyKey, bytes, bytearray)):
            return bls.BlsVerifyKey(key if isinstance(key, bls.BlsVerifyKey) else bytes(key))
        raise TypeError(f"verify key must be a BLS12-381 key or {self.public_key_bytes} bytes, "
                        f"got {type(key).__name__}")

    def public_bytes(self, key) -> bytes:
        return self.verify_key(key).raw

    def signer(self, signing_key):
        key = self.signing_key(signing_key)
        return lambda message: bls.sign(key, message)

    def verifier(self, verify_key):
        return bls.verifier(self.public_bytes(verify_key))


ED25519: SignatureScheme = _Ed25519()
ML_DSA_44: SignatureScheme = _MLDSA44()
BLS12_381: SignatureScheme = _BLS12381()
SCHEMES = (ED25519, ML_DSA_44, BLS12_381)


def scheme_of(key) -> SignatureScheme:
    """The scheme a key object belongs to (raw bytes are ambiguous: TypeError)."""
    if isinstance(key, (bls.BlsSigningKey, bls.BlsVerifyKey)):
        return BLS12_381
    if isinstance(key, ECC.EccKey) and key.curve == "Ed25519":
        return ED25519
    if isinstance(key, MLDSA.MLDSAKey):
        return ML_DSA_44
    raise TypeError(f"not a key of a known scheme: {type(key).__name__}")


def bits_per_pixel_needed(scheme: SignatureScheme, size: int) -> int | None:
    """The fewest low-order bits per pixel of a ``size`` x ``size`` image that hold the header and a
    signature of ``scheme``; ``None`` if even all 8 bits are too few."""
    if not isinstance(scheme, SignatureScheme):
        raise TypeError(f"scheme must be a SignatureScheme, got {type(scheme).__name__}")
    if type(size) is not int or size < 1:
        raise ValueError(f"size must be a positive int, got {size!r}")
    needed = math.ceil((HEADER_BYTES + scheme.signature_bytes) * 8 / (size * size))
    return needed if needed <= 8 else None


@dataclass(frozen=True)
class TriggerLayout:
    """Where a trigger field lives: the low ``bits_per_pixel`` bits of a ``size`` x ``size`` image."""

    size: int = 32
    bits_per_pixel: int = 1
    scheme: SignatureScheme = ED25519

    def __post_init__(self):
        if type(self.size) is not int or self.size < 8:
            raise ValueError(f"size must be an int >= 8, got {self.size!r}")
        if type(self.bits_per_pixel) is not int or not 1 <= self.bits_per_pixel <= 8:
            raise ValueError(f"bits_per_pixel must be an int in 1..8, got {self.bits_per_pixel!r}")
        if not isinstance(self.scheme, SignatureScheme):
            raise TypeError(f"scheme must be a SignatureScheme, got {type(self.scheme).__name__}")
        if self.field_bytes * 8 > self.capacity_bits:
            raise ValueError(
                f"the {self.scheme.name} field needs {self.field_bytes * 8:,} bits; a {self.size}x{self.size} "
                f"image holds {self.capacity_bits:,} at {self.bits_per_pixel} bit(s) per pixel")

    @property
    def pixels(self) -> int:
        return self.size * self.size

    @property
    def capacity_bits(self) -> int:
        return self.pixels * self.bits_per_pixel

    @property
    def field_bytes(self) -> int:
        """Header and signature; the rest of the capacity is zero padding."""
        return HEADER_BYTES + self.scheme.signature_bytes

    @property
    def signature_slice(self) -> slice:
        return slice(HEADER_BYTES, self.field_bytes)

    @property
    def high_mask(self) -> int:
        """The pixel bits the field leaves alone (and the signature covers)."""
        return 0xFF ^ ((1 << self.bits_per_pixel) - 1)

    @property
    def max_change(self) -> int:
        """The largest change of one pixel byte a field can make."""
        return (1 << self.bits_per_pixel) - 1

    def _low_bits(self, pixels: np.ndarray) -> np.ndarray:
        """The low bits of every pixel, row by row, most significant first: ``(n, capacity_bits)``."""
        flat = np.asarray(pixels, dtype=np.uint8).reshape(-1, self.pixels)
        if self.bits_per_pixel == 1:
            return flat & 1
        shifts = np.arange(self.bits_per_pixel - 1, -1, -1, dtype=np.uint8)
        return ((flat[:, :, None] >> shifts) & 1).reshape(len(flat), -1)

    def read_fields(self, pixels: np.ndarray) -> np.ndarray:
        """The ``field_bytes``-byte field of each image ``(n, field_bytes)``, from its low bits."""
        return self.split(pixels)[0]

    def padding_is_zero(self, pixels: np.ndarray) -> np.ndarray:
        """For each image: are the low bits after the field all zero (the canonical padding)?"""
        return self.split(pixels)[1]

    def _blocks(self, n: int):
        """Slices of at most BLOCK_BITS low bits' worth of images: one bit per byte, a whole batch at
        once (the judge's 512 queries of 96x96 at 3 bits) held two 14 MiB temporaries."""
        step = max(1, BLOCK_BITS // self.capacity_bits)
        return (slice(a, a + step) for a in range(0, n, step))

    def split(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(fields, padding_is_zero)`` of each image, reading the low bits once."""
        flat = np.asarray(pixels, dtype=np.uint8).reshape(-1, self.pixels)
        cut = self.field_bytes * 8
        fields = np.empty((len(flat), self.field_bytes), dtype=np.uint8)
        padded = np.empty(len(flat), dtype=bool)
        for rows in self._blocks(len(flat)):
            bits = self._low_bits(flat[rows])
            fields[rows] = np.packbits(bits[:, :cut], axis=1)
            padded[rows] = ~bits[:, cut:].any(axis=1)
        return fields, padded

    def write_fields(self, pixels: np.ndarray, fields: np.ndarray) -> np.ndarray:
        """Pixels ``(n, size, size)`` whose low bits carry ``fields`` (one per image), then zeros."""
        flat = np.asarray(pixels, dtype=np.uint8).reshape(-1, self.pixels)
        fields = np.asarray(fields, dtype=np.uint8).reshape(len(flat), self.field_bytes)
        weights = (1 << np.arange(self.bits_per_pixel - 1, -1, -1)).astype(np.uint8)
        out = np.empty_like(flat)
        for rows in self._blocks(len(flat)):
            bits = np.zeros((len(flat[rows]), self.capacity_bits), dtype=np.uint8)
            bits[:, : self.field_bytes * 8] = np.unpackbits(fields[rows], axis=1)
            low = (bits.reshape(len(bits), self.pixels, self.bits_per_pixel) * weights).sum(axis=2, dtype=np.uint8)
            out[rows] = (flat[rows] & self.high_mask) | low
        return out.reshape(-1, self.size, self.size)

    def content_bytes(self, pixels: np.ndarray) -> bytes:
        """What a trigger signature binds of one image: its pixel bytes with the field's bits zeroed."""
        return (np.asarray(pixels, dtype=np.uint8).reshape(self.pixels) & self.high_mask).tobytes()


DEFAULT_LAYOUT = TriggerLayout()
OWNERSHIP_LAYOUT = TriggerLayout(32, 2, BLS12_381)
"""The ownership judge's layout: a unique BLS12-381 signature in the 2 low bits of a 32x32 image."""
