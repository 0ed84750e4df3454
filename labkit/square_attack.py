"""The Square (integral) attack on 4-round AES-128 (Daemen, Knudsen, Rijmen, FSE 1997).

Encrypt a Λ-set: 256 plaintexts that take every value in one byte and agree everywhere else.
After three rounds every state byte is *balanced*: its XOR over the 256 texts is 0 (the active
byte spreads to a column in round 1, to the whole state in round 2, and round 3's MixColumns keeps
the XOR sums at zero). The fourth round (no MixColumns, as in a last round) only applies the
S-box, moves bytes and adds k4, so for each ciphertext byte j and each guess g of k4[j],

    XOR over the set of  INV_SBOX[c[j] ^ g]  == 0

holds for the right guess and for a wrong one with probability 1/256. A few Λ-sets leave one
candidate per byte; the AES-128 key schedule is invertible, so k4 gives the master key.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from tqdm.auto import tqdm

from labkit import aes, bits

__all__ = [
    "ROUNDS",
    "lambda_set",
    "balanced_bytes",
    "byte_properties",
    "byte_candidates",
    "four_round_oracle",
    "SquareResult",
    "square_attack",
]

ROUNDS = 4
_INV_SBOX = np.array(aes.INV_SBOX, dtype=np.uint8)


def lambda_set(constant: bytes, active_byte: int = 0) -> np.ndarray:
    """The 256 plaintexts (uint8 (256, 16)) equal to ``constant`` except byte ``active_byte``,
    which takes every value 0..255."""
    if not isinstance(constant, (bytes, bytearray)) or len(constant) != 16:
        raise ValueError("constant must be 16 bytes")
    if not isinstance(active_byte, (int, np.integer)) or not 0 <= active_byte < 16:
        raise ValueError(f"active_byte must be in 0..15, got {active_byte!r}")
    texts = np.tile(np.frombuffer(bytes(constant), dtype=np.uint8), (256, 1))
    texts[:, active_byte] = np.arange(256, dtype=np.uint8)
    return texts


def balanced_bytes(states: np.ndarray) -> np.ndarray:
    """For a set of states (n, 16): which byte positions XOR to zero over the set (bool (16,))."""
    states = np.asarray(states, dtype=np.uint8)
    if states.ndim != 2 or states.shape[1] != 16:
        raise ValueError(f"states must have shape (n, 16), got {states.shape}")
    return np.bitwise_xor.reduce(states, axis=0) == 0


def byte_properties(states: np.ndarray) -> np.ndarray:
    """The integral property of each byte over a set of 256 states, as a 4x4 grid of letters
    (the Square paper's notation): 'A' all values occur, 'C' constant, 'B' balanced (XOR 0)
    but neither, '?' unknown."""
    states = np.asarray(states, dtype=np.uint8)
    balanced = balanced_bytes(states)
    grid = np.empty(16, dtype="<U1")
    for j in range(16):
        distinct = len(np.unique(states[:, j]))
        grid[j] = ("A" if distinct == len(states) == 256 else "C" if distinct == 1
                   else "B" if balanced[j] else "?")
    return grid.reshape(4, 4).T  # [row, column] = byte row + 4 column, as in aes.state_matrix


def byte_candidates(ciphertexts: np.ndarray, position: int) -> np.ndarray:
    """The guesses g of last-round-key byte ``position`` for which the partially decrypted byte
    INV_SBOX[c ^ g] is balanced over the Λ-set's 256 ciphertexts (all 256 guesses at once)."""
    column = np.asarray(ciphertexts, dtype=np.uint8)[:, position]
    guesses = np.arange(256, dtype=np.uint8)[:, None]
    sums = np.bitwise_xor.reduce(_INV_SBOX[column[None, :] ^ guesses], axis=1)
    return np.nonzero(sums == 0)[0]


def four_round_oracle(key: bytes) -> Callable[[np.ndarray], np.ndarray]:
    """A chosen-plaintext oracle: uint8 (n, 16) plaintexts -> 4-round AES ciphertexts."""
    if not isinstance(key, (bytes, bytearray)) or len(key) != 16:
        raise ValueError("the Square attack here targets AES-128: key must be 16 bytes")
    key = bytes(key)
    return lambda plaintexts: aes.encrypt_blocks(key, np.asarray(plaintexts, dtype=np.uint8),
                                                 rounds=ROUNDS)


@dataclass(frozen=True)
class SquareResult:
    """What the attack found and what it cost."""

    round_key: bytes  # k4, the last round key
    master_key: bytes  # k0, by inverting the key schedule
    lambda_sets: int  # number of 256-text sets used
    chosen_plaintexts: int
    verified: bool  # the master key reproduces the oracle on fresh plaintexts


def square_attack(oracle: Callable[[np.ndarray], np.ndarray], *, seed: int = 0,
                  max_sets: int = 8, progress: bool = True) -> SquareResult:
    """Recover the key of 4-round AES-128 from ``oracle`` (see :func:`four_round_oracle`), byte by
    byte: intersect each byte's candidates over Λ-sets until one is left."""
    rng = np.random.default_rng(seed)
    candidates = [set(range(256)) for _ in range(16)]
    sets_used = 0
    bar = tqdm(total=16, desc="key bytes found", disable=not progress)
    while sets_used < max_sets and any(len(c) > 1 for c in candidates):
        ciphertexts = np.asarray(oracle(lambda_set(rng.bytes(16), active_byte=0)), dtype=np.uint8)
        sets_used += 1
        for j in range(16):
            candidates[j] &= set(byte_candidates(ciphertexts, j).tolist())
        bar.n = sum(len(c) == 1 for c in candidates)
        bar.refresh()
    bar.close()
    if any(len(c) != 1 for c in candidates):
        raise ValueError(f"key not determined after {max_sets} Λ-sets (is the oracle 4-round AES-128?)")
    round_key = bytes(c.pop() for c in candidates)
    master_key = aes.invert_key_schedule(round_key, ROUNDS)
    check = rng.integers(0, 256, (4, 16), dtype=np.uint8)
    verified = bool(np.array_equal(oracle(check), aes.encrypt_blocks(master_key, check, rounds=ROUNDS)))
    return SquareResult(round_key, master_key, sets_used, 256 * sets_used + len(check), verified)
