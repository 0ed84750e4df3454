"""DES with linear S-boxes, and its key falling to linear algebra over GF(2) (chapter 02b).

The lecture's point: DES's only nonlinear step is the S-box layer. Replace the eight S-boxes by a
linear map ``S(x) = A x`` over GF(2) and the whole cipher becomes ``C = A m xor B k``: the matrices
follow from encrypting unit vectors (no secret needed), and one known (plaintext, ciphertext) pair
gives 64 linear equations in the 56 key bits, solved by Gaussian elimination (:mod:`labkit.gf2`).
The cipher itself is :mod:`labkit.des` with other S-boxes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from labkit import bits as _bits
from labkit import checks
from labkit import des
from labkit import gf2

__all__ = ["LINEAR_SBOX_MATRIX", "LINEAR_SBOXES", "linear_sbox", "LinearDES", "linear_des",
           "LinearKeyRecovery", "recover_linear_key"]

#: The lecture's linear S-box: S(x1..x6) = (x2^x3, x1^x4^x5, x1^x6, x2^x3^x6) = A x (mod 2).
LINEAR_SBOX_MATRIX = np.array([
    [0, 1, 1, 0, 0, 0],
    [1, 0, 0, 1, 1, 0],
    [1, 0, 0, 0, 0, 1],
    [0, 1, 1, 0, 0, 1],
], dtype=np.uint8)


def linear_sbox(matrix) -> tuple[int, ...]:
    """The 6-to-4-bit S-box x -> A x over GF(2) as a 64-entry table (bits MSB first)."""
    a = _bits.as_bit_array(np.asarray(matrix).reshape(-1), length=24, what="4x6 matrix").reshape(4, 6)
    return tuple(_bits.bits_to_int(gf2.matmul(a, _bits.int_to_bits(x, 6))) for x in range(64))


#: Eight copies of the lecture's linear S-box: DES with these is linear in (message, key).
LINEAR_SBOXES = tuple(linear_sbox(LINEAR_SBOX_MATRIX) for _ in range(8))


@dataclass
class LinearDES:
    """A DES with linear S-boxes written as matrices: C = A m xor B k over GF(2).

    ``A`` is 64 x 64 (plaintext bits), ``B`` is 64 x 56 (the 56 key bits PC-1 selects, in
    PC-1 order). Both follow from encrypting unit vectors: nothing secret is needed to build them.
    """

    A: np.ndarray
    B: np.ndarray
    rounds: int
    sboxes: tuple


def linear_des(sboxes=LINEAR_SBOXES, rounds: int = des.ROUNDS) -> LinearDES:
    """Compute the matrices of DES with the given linear S-boxes (raises if they are not linear)."""
    sboxes = des.check_sboxes(sboxes)
    rounds = des.check_rounds(rounds)
    for i, s in enumerate(sboxes):
        # linear over GF(2): S(0) = 0 and S(x ^ y) = S(x) ^ S(y) on a basis, i.e. for all x, y
        if any(s[x ^ y] != s[x] ^ s[y] for x in range(64) for y in (1, 2, 4, 8, 16, 32)):
            raise ValueError(f"S-box {i + 1} is not linear over GF(2)")
    zero_key, zero_block = bytes(des.KEY_SIZE), bytes(des.BLOCK_SIZE)

    def enc_bits(key, block):
        return _bits.bytes_to_bits(des.encrypt_block(key, block, rounds=rounds, sboxes=sboxes))

    a = np.stack([enc_bits(zero_key, _bits.flip_bit(zero_block, j)) for j in range(64)], axis=1)
    cols = []
    for j in range(56):
        cd = np.zeros(56, dtype=np.uint8)
        cd[j] = 1
        key_bits = np.zeros(64, dtype=np.uint8)
        key_bits[np.asarray(des.PC1) - 1] = cd
        cols.append(enc_bits(_bits.bits_to_bytes(key_bits), zero_block))
    return LinearDES(A=a, B=np.stack(cols, axis=1), rounds=rounds, sboxes=sboxes)


@dataclass
class LinearKeyRecovery:
    """Result of :func:`recover_linear_key`: one key that explains every pair, and how many keys do.

    ``key_class_dimension`` is the dimension of B's null space: 2**dim keys encrypt every
    plaintext identically (they are indistinguishable, so any of them is "the" key).
    """

    key: bytes
    equations: int
    rank: int
    key_class_dimension: int


def recover_linear_key(pairs, *, cipher: LinearDES | None = None) -> LinearKeyRecovery:
    """Key recovery for linear DES: solve B k = c xor A m over GF(2) by Gaussian elimination.

    ``pairs`` is a sequence of (plaintext, ciphertext) 8-byte blocks; each gives 64 equations in
    the 56 unknown key bits.
    """
    cipher = cipher or linear_des()
    pairs = list(pairs)
    if not pairs:
        raise ValueError("need at least one (plaintext, ciphertext) pair")
    rows, rhs = [], []
    for m, c in pairs:
        m = checks.check_bytes(m, des.BLOCK_SIZE, what="plaintext")
        c = checks.check_bytes(c, des.BLOCK_SIZE, what="ciphertext")
        rows.append(cipher.B)
        rhs.append(_bits.bytes_to_bits(c) ^ gf2.matmul(cipher.A, _bits.bytes_to_bits(m)))
    system, target = np.vstack(rows), np.concatenate(rhs)
    cd = gf2.solve(system, target)  # raises ValueError if no key explains the pairs
    return LinearKeyRecovery(
        key=des.key_from_cd(cd[:28], cd[28:]),
        equations=int(system.shape[0]),
        rank=gf2.rank(system),
        key_class_dimension=int(gf2.nullspace(system).shape[0]),
    )
