"""The CBC padding-oracle attack (Vaudenay, EUROCRYPT 2002) and why authenticated encryption stops it.

A server that decrypts CBC and answers differently for bad padding (:class:`labkit.modes.PaddingError`)
than for anything else is an oracle for "does D_K(C) xor X end in valid PKCS#7 padding?". Choosing
X byte by byte reveals the intermediate value D_K(C), hence the plaintext, in at most 256 queries
per byte and without the key (:func:`decrypt`). Against AES-GCM (:class:`GcmServer`) the same
queries all get one uniform rejection: the tag fails before any padding is looked at, so the
attack learns nothing (:class:`OracleSilent`).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable

from labkit import aes, bits, checks, gcm, modes

__all__ = ["CbcPaddingServer", "GcmServer", "OracleSilent", "PaddingOracleResult", "decrypt",
           "decrypt_block"]

BLOCK = modes.BLOCK_SIZE


class OracleSilent(Exception):
    """The oracle accepted no guess for a byte: it leaks nothing the attack can use."""


class CbcPaddingServer:
    """A server holding ``key`` that decrypts AES-CBC and tells a padding error from success.

    Calling it, ``server(iv, ciphertext)``, is the oracle: True when the padding is valid. It counts
    its ``queries``; it never returns plaintext or key.
    """

    def __init__(self, key: bytes) -> None:
        key = checks.check_bytes(key, what="AES key")
        if len(key) not in aes.KEY_SIZES:
            raise ValueError(f"AES key must be 16, 24 or 32 bytes, got {len(key)}")
        # the attack resends one block thousands of times: remember D_K of the blocks seen
        self._decrypt_block = functools.lru_cache(maxsize=256)(functools.partial(aes.decrypt_block, key))
        self.queries = 0

    def __repr__(self) -> str:
        return f"CbcPaddingServer(queries={self.queries})"

    def __call__(self, iv: bytes, ciphertext: bytes) -> bool:
        self.queries += 1
        iv = checks.check_bytes(iv, BLOCK, what="iv")
        blocks = modes.split_blocks(checks.check_bytes(ciphertext, what="ciphertext"))
        # CBC decryption (SP 800-38A 6.2): P_i = D_K(C_i) xor C_(i-1), C_0 = IV
        plaintext = b"".join(bits.xor_bytes(self._decrypt_block(c), p) for p, c in zip([iv] + blocks, blocks))
        try:
            modes.pkcs7_unpad(plaintext)
        except modes.PaddingError:
            return False
        return True


class GcmServer:
    """The same service over AES-GCM: ``server(nonce, ciphertext_and_tag)`` is True only for an
    unmodified message. Every other input gets the one uniform :class:`labkit.gcm.AuthenticationError`
    (reported as False), raised before any plaintext exists, so nothing about padding can leak.

    The last 16 bytes are the tag, always: SP 800-38D allows tags of 4 to 16 bytes, but a server
    that took an input shorter than 16 bytes as an empty ciphertext with a *short* tag would accept
    a forgery after about 2^32 guesses of a 4-byte tag instead of 2^128. Inputs shorter than a full
    tag are rejected the same way as any other forgery.
    """

    TAG_BYTES = 16

    def __init__(self, key: bytes) -> None:
        self._key = checks.check_bytes(key, what="AES key")
        if len(self._key) not in aes.KEY_SIZES:
            raise ValueError(f"AES key must be 16, 24 or 32 bytes, got {len(self._key)}")
        self.queries = 0

    def __repr__(self) -> str:
        return f"GcmServer(queries={self.queries})"

    def __call__(self, nonce: bytes, ciphertext_and_tag: bytes) -> bool:
        self.queries += 1
        data = checks.check_bytes(ciphertext_and_tag, what="ciphertext and tag")
        if len(data) < self.TAG_BYTES:
            return False  # no full tag: the same answer as a wrong one
        try:
            gcm.decrypt(self._key, nonce, data[:-self.TAG_BYTES], data[-self.TAG_BYTES:])
        except (gcm.AuthenticationError, ValueError):
            return False
        return True


@dataclass
class PaddingOracleResult:
    """What :func:`decrypt` learned: the padded plaintext, the oracle queries it spent in total and
    per byte, and the order in which the bytes were found (byte index, queries), for the widget."""

    padded_plaintext: bytes
    queries: int
    queries_per_byte: list[int]
    order: list[tuple[int, int]] = field(default_factory=list)

    @property
    def plaintext(self) -> bytes:
        """The message without its PKCS#7 padding."""
        return modes.pkcs7_unpad(self.padded_plaintext)


def decrypt_block(oracle: Callable[[bytes, bytes], bool], previous: bytes, block: bytes,
                  ) -> tuple[bytes, list[int]]:
    """Decrypt one CBC block with a padding oracle: (plaintext block, queries spent per byte).

    For j = 15 down to 0, with pad p = 16 - j, forge X so that the bytes after j decrypt to p and try
    each X[j]: the one accepted gives D_K(block)[j] = X[j] xor p. The last byte checks a hit once
    (a plaintext ending in 02 02 could also pass); at most one such false hit exists, so the count
    stays <= 256 queries per byte. Raises :class:`OracleSilent` if no guess is accepted.
    """
    previous = checks.check_bytes(previous, BLOCK, what="previous block")
    block = checks.check_bytes(block, BLOCK, what="ciphertext block")
    intermediate = bytearray(BLOCK)
    spent = [0] * BLOCK
    for j in range(BLOCK - 1, -1, -1):
        pad = BLOCK - j
        forged = bytearray(BLOCK)
        for k in range(j + 1, BLOCK):
            forged[k] = intermediate[k] ^ pad
        found, false_hit_seen = None, False
        for guess in range(256):
            if guess == 255 and false_hit_seen:  # the one real hit is left; a false hit proved the oracle speaks
                found = guess
                break
            forged[j] = guess
            spent[j] += 1
            if not oracle(bytes(forged), block):
                continue
            if j == BLOCK - 1 and guess < 255 and not false_hit_seen:
                forged[j - 1] ^= 0xFF  # a real 01 ending survives a change of the byte before it
                spent[j] += 1
                confirmed = oracle(bytes(forged), block)
                forged[j - 1] ^= 0xFF
                if not confirmed:
                    false_hit_seen = True
                    continue
            found = guess
            break
        if found is None:
            raise OracleSilent(f"the oracle accepted none of the 256 guesses for byte {j} of the block: "
                               "it reveals nothing about the padding")
        intermediate[j] = found ^ pad
    return bits.xor_bytes(bytes(intermediate), previous), spent


def decrypt(oracle: Callable[[bytes, bytes], bool], iv: bytes, ciphertext: bytes) -> PaddingOracleResult:
    """Decrypt a whole CBC ciphertext from a padding oracle alone (no key): each block C_i is sent
    with a forged predecessor, and the result is xored with the real C_(i-1) (IV for the first)."""
    iv = checks.check_bytes(iv, BLOCK, what="iv")
    blocks = modes.split_blocks(checks.check_bytes(ciphertext, what="ciphertext"))
    if not blocks:
        raise ValueError("ciphertext must hold at least one block")
    plaintext, per_byte, order = [], [], []
    for i, (previous, block) in enumerate(zip([iv] + blocks[:-1], blocks)):
        plain, spent = decrypt_block(oracle, previous, block)
        plaintext.append(plain)
        per_byte.extend(spent)
        order.extend((BLOCK * i + j, spent[j]) for j in range(BLOCK - 1, -1, -1))
    return PaddingOracleResult(b"".join(plaintext), sum(per_byte), per_byte, order)
