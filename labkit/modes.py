"""Block-cipher modes of operation on labkit's AES: ECB, CBC and CTR (NIST SP 800-38A).

Written to be read next to the standard: ECB encrypts each block alone (and so leaks equal
blocks), CBC chains each plaintext block into the next encryption, CTR turns the cipher into a
stream cipher by encrypting a counter. ECB and CBC need whole blocks: pad with
:func:`pkcs7_pad` first. GCM (:mod:`labkit.gcm`) reuses :func:`ctr_keystream` with a 32-bit counter.
"""
from __future__ import annotations

import numpy as np

from labkit import aes, bits, checks

__all__ = [
    "BLOCK_SIZE",
    "PaddingError",
    "pkcs7_pad",
    "pkcs7_unpad",
    "split_blocks",
    "ecb_encrypt",
    "ecb_decrypt",
    "cbc_encrypt",
    "cbc_decrypt",
    "increment_counter",
    "ctr_keystream",
    "ctr_encrypt",
    "ctr_decrypt",
]

BLOCK_SIZE = aes.BLOCK_SIZE


class PaddingError(ValueError):
    """The decrypted data does not end in valid PKCS#7 padding."""


def pkcs7_pad(data: bytes, block_size: int = BLOCK_SIZE) -> bytes:
    """Append n bytes of value n (1 <= n <= block_size) to reach a whole number of blocks (RFC 5652 6.3)."""
    data = checks.check_bytes(data, what="data")
    n = block_size - len(data) % block_size
    return data + bytes([n]) * n


def pkcs7_unpad(data: bytes, block_size: int = BLOCK_SIZE) -> bytes:
    """Remove PKCS#7 padding; raises :class:`PaddingError` if it is malformed."""
    data = checks.check_bytes(data, what="data")
    if not data or len(data) % block_size:
        raise PaddingError(f"padded data must be a non-empty multiple of {block_size} bytes")
    n = data[-1]
    if not 1 <= n <= block_size or data[-n:] != bytes([n]) * n:
        raise PaddingError("invalid PKCS#7 padding")
    return data[:-n]


def split_blocks(data: bytes, block_size: int = BLOCK_SIZE) -> list[bytes]:
    """Cut data into blocks; the length must be a multiple of the block size."""
    data = checks.check_bytes(data, what="data")
    if len(data) % block_size:
        raise ValueError(
            f"data must be a multiple of {block_size} bytes, got {len(data)} (pad it with pkcs7_pad)"
        )
    return [data[i: i + block_size] for i in range(0, len(data), block_size)]


def _as_block_array(data: bytes) -> np.ndarray:
    split_blocks(data)  # validates the length
    return np.frombuffer(data, dtype=np.uint8).reshape(-1, BLOCK_SIZE)


def _check_iv(iv, what: str = "iv") -> bytes:
    iv = checks.check_bytes(iv, what=what)
    if len(iv) != BLOCK_SIZE:
        raise ValueError(f"{what} must be {BLOCK_SIZE} bytes, got {len(iv)}")
    return iv


def ecb_encrypt(key: bytes, plaintext: bytes) -> bytes:
    """ECB (SP 800-38A 6.1): C_i = E_K(P_i), every block independently; equal blocks stay equal."""
    return aes.encrypt_blocks(key, _as_block_array(checks.check_bytes(plaintext, what="plaintext"))).tobytes()


def ecb_decrypt(key: bytes, ciphertext: bytes) -> bytes:
    """ECB decryption: P_i = D_K(C_i)."""
    return aes.decrypt_blocks(key, _as_block_array(checks.check_bytes(ciphertext, what="ciphertext"))).tobytes()


def cbc_encrypt(key: bytes, iv: bytes, plaintext: bytes) -> bytes:
    """CBC (SP 800-38A 6.2): C_i = E_K(P_i xor C_{i-1}) with C_0 = IV; sequential by nature."""
    previous = _check_iv(iv)
    out = []
    for block in split_blocks(checks.check_bytes(plaintext, what="plaintext")):
        previous = aes.encrypt_block(key, bits.xor_bytes(block, previous))
        out.append(previous)
    return b"".join(out)


def cbc_decrypt(key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    """CBC decryption: P_i = D_K(C_i) xor C_{i-1} (parallel: all D_K(C_i) at once)."""
    iv = _check_iv(iv)
    ciphertext = checks.check_bytes(ciphertext, what="ciphertext")
    decrypted = aes.decrypt_blocks(key, _as_block_array(ciphertext)).tobytes()
    return bits.xor_bytes(decrypted, iv + ciphertext[:-BLOCK_SIZE] if ciphertext else b"")


def increment_counter(block: bytes, *, counter_bits: int = 128, by: int = 1) -> bytes:
    """Add ``by`` to the last ``counter_bits`` bits of a 16-byte block, modulo 2^counter_bits
    (SP 800-38A B.1 with 128 bits; GCM's inc_32 with 32 bits, SP 800-38D 6.2)."""
    block = _check_iv(block, "counter block")
    if counter_bits not in range(1, 129):
        raise ValueError(f"counter_bits must be in 1..128, got {counter_bits}")
    value = int.from_bytes(block, "big")
    mask = (1 << counter_bits) - 1
    value = (value & ~mask) | (((value & mask) + by) & mask)
    return value.to_bytes(BLOCK_SIZE, "big")


def ctr_keystream(key: bytes, initial_counter: bytes, length: int, *, counter_bits: int = 128) -> bytes:
    """The first ``length`` bytes of E_K(T_1) || E_K(T_2) || ... with T_{i+1} = T_i + 1."""
    if length < 0:
        raise ValueError(f"length must be non-negative, got {length}")
    count = -(-length // BLOCK_SIZE)
    counters = b"".join(increment_counter(initial_counter, counter_bits=counter_bits, by=i)
                        for i in range(count))
    if not count:
        _check_iv(initial_counter, "counter block")
        return b""
    stream = aes.encrypt_blocks(key, np.frombuffer(counters, dtype=np.uint8).reshape(-1, BLOCK_SIZE))
    return stream.tobytes()[:length]


def ctr_encrypt(key: bytes, initial_counter: bytes, plaintext: bytes, *, counter_bits: int = 128) -> bytes:
    """CTR (SP 800-38A 6.5): C = P xor keystream; any length, no padding. Never reuse a counter."""
    plaintext = checks.check_bytes(plaintext, what="plaintext")
    stream = ctr_keystream(key, initial_counter, len(plaintext), counter_bits=counter_bits)
    return bits.xor_bytes(plaintext, stream)


def ctr_decrypt(key: bytes, initial_counter: bytes, ciphertext: bytes, *, counter_bits: int = 128) -> bytes:
    """CTR decryption is the same XOR with the same keystream."""
    return ctr_encrypt(key, initial_counter, ciphertext, counter_bits=counter_bits)
