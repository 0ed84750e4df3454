"""AES-GCM built from labkit's block cipher, GHASH step by step, and the nonce-reuse attack.

GCM (NIST SP 800-38D) = CTR-mode encryption with a 32-bit counter + a tag
``T = GHASH_H(A, C) xor E_K(J0)`` where ``H = E_K(0^128)`` and GHASH evaluates the polynomial
whose coefficients are the blocks of A, C and their lengths at the point H in GF(2^128)
(:mod:`labkit.gf128`).

If a (key, nonce) pair is used twice, E_K(J0) cancels in ``T1 xor T2``: H is a root of a known
polynomial, so factoring it gives H (Joux 2006, "the forbidden attack"; Böck et al. 2016), and
with H anyone can forge tags (:func:`recover_auth_key`, :func:`forge_tag`).
"""
from __future__ import annotations

import hmac

from labkit import aes, bits, checks, gf128, modes

__all__ = [
    "AuthenticationError",
    "auth_key",
    "initial_counter",
    "ghash_blocks",
    "ghash_steps",
    "ghash",
    "encrypt",
    "decrypt",
    "nonce_reuse_polynomial",
    "recover_auth_key",
    "forge_tag",
    "TAG_LENGTHS",
    "MAX_PLAINTEXT_BYTES",
    "check_plaintext_length",
]

#: Tag lengths SP 800-38D 5.2.1.2 allows, in bytes.
TAG_LENGTHS = (4, 8, 12, 13, 14, 15, 16)

#: SP 800-38D 5.2.1.1: len(P) <= 2^39 - 256 bits = 2^36 - 32 bytes per (key, nonce): 2^32 - 2
#: blocks. Block i is encrypted with the 32-bit counter J0 + i; with a 96-bit nonce J0's counter is
#: 1, and the cap keeps it from wrapping (values 2 to 2^32 - 1). Only one block after the wrap would
#: it be back at J0 (whose E_K(J0) masks the tag), so that argument alone would allow one block more.
MAX_PLAINTEXT_BYTES = (2**32 - 2) * 16


class AuthenticationError(Exception):
    """The tag does not match: the ciphertext or associated data was altered (nothing is returned)."""


def _check_h(h) -> bytes:
    h = checks.check_bytes(h, what="H")
    if len(h) != 16:
        raise ValueError(f"H must be 16 bytes, got {len(h)}")
    return h


def auth_key(key: bytes) -> bytes:
    """The hash subkey H = E_K(0^128) (SP 800-38D 7.1 step 1)."""
    return aes.encrypt_block(key, bytes(16))


def _pad16(data: bytes) -> bytes:
    return data + bytes(-len(data) % 16)


def ghash_blocks(aad: bytes, ciphertext: bytes) -> list[bytes]:
    """The blocks GHASH consumes: A and C each zero-padded to whole blocks, then
    len(A) || len(C) in bits as two 64-bit integers (SP 800-38D 7.1 step 5)."""
    aad, ciphertext = checks.check_bytes(aad, what="aad"), checks.check_bytes(ciphertext, what="ciphertext")
    lengths = (8 * len(aad)).to_bytes(8, "big") + (8 * len(ciphertext)).to_bytes(8, "big")
    data = _pad16(aad) + _pad16(ciphertext) + lengths
    return [data[i: i + 16] for i in range(0, len(data), 16)]


def ghash_steps(h: bytes, aad: bytes, ciphertext: bytes) -> list[tuple[bytes, bytes]]:
    """GHASH one block at a time (SP 800-38D Algorithm 2): pairs (X_i, Y_i) with
    Y_i = (Y_{i-1} xor X_i) * H, Y_0 = 0. Unrolled, Y_m = X_1 H^m + X_2 H^(m-1) + ... + X_m H."""
    hh = gf128.from_block(_check_h(h))
    y = 0
    steps = []
    for block in ghash_blocks(aad, ciphertext):
        y = gf128.mul(y ^ gf128.from_block(block), hh)
        steps.append((block, gf128.to_block(y)))
    return steps


def ghash(h: bytes, aad: bytes, ciphertext: bytes) -> bytes:
    """GHASH_H(A, C): the last Y_m of :func:`ghash_steps`."""
    return ghash_steps(h, aad, ciphertext)[-1][1]


def initial_counter(h: bytes, nonce: bytes) -> bytes:
    """J0 (SP 800-38D 7.1 step 2): nonce || 0^31 || 1 for a 12-byte nonce, otherwise
    GHASH_H(nonce zero-padded || 0^64 || len(nonce) in bits)."""
    nonce = checks.check_bytes(nonce, what="nonce")
    if not nonce:
        raise ValueError("nonce must not be empty")
    if len(nonce) == 12:
        return nonce + b"\x00\x00\x00\x01"
    # pad(nonce) || 0^64 || [len(nonce)]_64 is exactly the GHASH input of (A = empty, C = nonce)
    return ghash(h, b"", nonce)


def _check_tag_length(tag_length: int) -> int:
    if tag_length not in TAG_LENGTHS:
        raise ValueError(f"tag length must be one of {TAG_LENGTHS} bytes, got {tag_length}")
    return tag_length


def check_plaintext_length(length: int) -> int:
    """Raise ValueError if ``length`` bytes exceed what one (key, nonce) may encrypt (SP 800-38D 5.2.1.1)."""
    if length > MAX_PLAINTEXT_BYTES:
        raise ValueError(f"GCM plaintext must be at most 2^36 - 32 = {MAX_PLAINTEXT_BYTES} bytes per "
                         f"(key, nonce) (the 32-bit block counter would wrap), got {length}")
    return length


def encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes = b"", *,
            tag_length: int = 16) -> tuple[bytes, bytes]:
    """GCM-AE (SP 800-38D 7.1): returns (ciphertext, tag). Never reuse a nonce with the same key."""
    plaintext, aad = checks.check_bytes(plaintext, what="plaintext"), checks.check_bytes(aad, what="aad")
    check_plaintext_length(len(plaintext))
    _check_tag_length(tag_length)
    h = auth_key(key)
    j0 = initial_counter(h, nonce)
    first = modes.increment_counter(j0, counter_bits=32)
    ciphertext = modes.ctr_encrypt(key, first, plaintext, counter_bits=32)
    tag = bits.xor_bytes(ghash(h, aad, ciphertext), aes.encrypt_block(key, j0))
    return ciphertext, tag[:tag_length]


def decrypt(key: bytes, nonce: bytes, ciphertext: bytes, tag: bytes, aad: bytes = b"") -> bytes:
    """GCM-AD (SP 800-38D 7.2): the plaintext, or :class:`AuthenticationError` (and no plaintext)
    if the tag does not verify. SP 800-38D computes P first and withholds it on failure; this
    implementation checks the tag before it decrypts, an equivalent choice."""
    ciphertext = checks.check_bytes(ciphertext, what="ciphertext")
    aad, tag = checks.check_bytes(aad, what="aad"), checks.check_bytes(tag, what="tag")
    _check_tag_length(len(tag))
    h = auth_key(key)
    j0 = initial_counter(h, nonce)
    expected = bits.xor_bytes(ghash(h, aad, ciphertext), aes.encrypt_block(key, j0))[: len(tag)]
    if not hmac.compare_digest(expected, tag):
        raise AuthenticationError("GCM tag mismatch: the message was altered or the key/nonce is wrong")
    first = modes.increment_counter(j0, counter_bits=32)
    return modes.ctr_decrypt(key, first, ciphertext, counter_bits=32)


# --- The nonce-reuse ("forbidden") attack ----------------------------------------------------------


def _ghash_polynomial(aad: bytes, ciphertext: bytes) -> list[int]:
    """GHASH_H(A, C) as a polynomial in H: coefficient of H^k is X_(m-k+1), none at H^0."""
    blocks = ghash_blocks(aad, ciphertext)
    return [0] + [gf128.from_block(b) for b in reversed(blocks)]


def _check_tag(tag, what: str) -> bytes:
    tag = checks.check_bytes(tag, what=what)
    if len(tag) != 16:
        raise ValueError(f"{what} must be a full 16-byte tag for this attack, got {len(tag)} bytes")
    return tag


def nonce_reuse_polynomial(ct1: bytes, tag1: bytes, ct2: bytes, tag2: bytes,
                           aad1: bytes = b"", aad2: bytes = b"") -> list[int]:
    """P(X) = GHASH poly of (A1, C1) + GHASH poly of (A2, C2) + (T1 xor T2), coefficients
    lowest degree first. Since T_i = GHASH_H(A_i, C_i) xor E_K(J0) with the same J0, P(H) = 0."""
    t1, t2 = _check_tag(tag1, "tag1"), _check_tag(tag2, "tag2")
    poly = gf128.poly_add(_ghash_polynomial(aad1, ct1), _ghash_polynomial(aad2, ct2))
    return gf128.poly_add(poly, [gf128.from_block(bits.xor_bytes(t1, t2))])


def recover_auth_key(ct1: bytes, tag1: bytes, ct2: bytes, tag2: bytes,
                     aad1: bytes = b"", aad2: bytes = b"") -> list[bytes]:
    """The candidates for H from two messages encrypted under the same key and nonce: the roots of
    :func:`nonce_reuse_polynomial` (usually one or a few; a third message or one forgery attempt
    picks the right one). Cost grows with the longer message's block count."""
    poly = nonce_reuse_polynomial(ct1, tag1, ct2, tag2, aad1, aad2)
    if gf128.poly_degree(poly) < 1:
        raise ValueError("the two messages give no equation for H (identical messages and tags?)")
    return [gf128.to_block(root) for root in gf128.find_roots(poly)]


def forge_tag(h: bytes, aad: bytes, ciphertext: bytes, tag: bytes,
              new_ciphertext: bytes, new_aad: bytes = b"") -> bytes:
    """A valid tag for (new_aad, new_ciphertext) under the same key and nonce as a known valid
    (aad, ciphertext, tag): E_K(J0) = tag xor GHASH_H(A, C), then the new GHASH xor that mask."""
    h = _check_h(h)
    mask = bits.xor_bytes(_check_tag(tag, "tag"), ghash(h, aad, ciphertext))
    return bits.xor_bytes(ghash(h, new_aad, new_ciphertext), mask)
