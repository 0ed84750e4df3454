"""Finite-field arithmetic written once for every chapter.

Sections:
- GF(2) linear algebra on 0/1 numpy matrices (row reduction, rank, solving, null space): the tool
  that breaks a DES with linear S-boxes (chapter 02) and analyses S-boxes.
- GF(2^8) with the AES polynomial x^8 + x^4 + x^3 + x + 1 (FIPS-197 section 4): xtime,
  multiplication, inverse, log/antilog tables; the S-box and MixColumns are built on it (chapter 03).
- GF(2^128) with GCM's polynomial x^128 + x^7 + x^2 + x + 1 in GCM's reflected bit order
  (NIST SP 800-38D section 6.3), and polynomials over it with root finding (square-free,
  distinct-degree and Cantor-Zassenhaus factoring): GHASH and the nonce-reuse attack (chapter 04).
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "gf2_row_reduce", "gf2_rank", "gf2_solve", "gf2_nullspace", "gf2_matmul",
    "AES_POLYNOMIAL", "xtime", "gf256_mul", "gf256_pow", "gf256_inverse", "GF256_EXP", "GF256_LOG",
]


# --- GF(2) linear algebra ------------------------------------------------------------------------


def _as_gf2_matrix(matrix, what: str = "matrix") -> np.ndarray:
    m = np.asarray(matrix)
    if m.ndim != 2:
        raise ValueError(f"{what} must be 2-D, got shape {m.shape}")
    if m.size and not np.all((m == 0) | (m == 1)):
        raise ValueError(f"{what} must contain only 0 and 1")
    return m.astype(np.uint8)


def gf2_row_reduce(matrix) -> tuple[np.ndarray, list[int]]:
    """Reduced row echelon form over GF(2) and the pivot columns (Gauss-Jordan, XOR for subtract)."""
    m = _as_gf2_matrix(matrix).copy()
    rows, cols = m.shape
    pivots: list[int] = []
    r = 0
    for c in range(cols):
        if r == rows:
            break
        hits = np.nonzero(m[r:, c])[0]
        if hits.size == 0:
            continue
        p = r + hits[0]
        if p != r:
            m[[r, p]] = m[[p, r]]
        others = np.nonzero(m[:, c])[0]
        others = others[others != r]
        m[others] ^= m[r]
        pivots.append(c)
        r += 1
    return m, pivots


def gf2_rank(matrix) -> int:
    """Rank of a 0/1 matrix over GF(2)."""
    return len(gf2_row_reduce(matrix)[1])


def gf2_matmul(a, b) -> np.ndarray:
    """Matrix product over GF(2) (works for matrix-vector too)."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    return (a @ b % 2).astype(np.uint8)


def gf2_solve(a, b) -> np.ndarray:
    """One solution x of a x = b over GF(2); raises ``ValueError`` if the system is inconsistent.

    Free variables are set to 0; combine with :func:`gf2_nullspace` for all solutions.
    """
    a = _as_gf2_matrix(a, "coefficient matrix")
    b = np.asarray(b, dtype=np.uint8).reshape(-1)
    if b.shape[0] != a.shape[0]:
        raise ValueError(f"right-hand side must have {a.shape[0]} entries, got {b.shape[0]}")
    reduced, pivots = gf2_row_reduce(np.column_stack([a, b]))
    n = a.shape[1]
    if n in pivots:
        raise ValueError("the system has no solution over GF(2)")
    x = np.zeros(n, dtype=np.uint8)
    for row, col in enumerate(pivots):
        x[col] = reduced[row, n]
    return x


def gf2_nullspace(matrix) -> np.ndarray:
    """A basis of {x : M x = 0} over GF(2), one vector per row."""
    m = _as_gf2_matrix(matrix)
    reduced, pivots = gf2_row_reduce(m)
    n = m.shape[1]
    free = [c for c in range(n) if c not in pivots]
    basis = np.zeros((len(free), n), dtype=np.uint8)
    for i, f in enumerate(free):
        basis[i, f] = 1
        for row, col in enumerate(pivots):
            basis[i, col] = reduced[row, f]
    return basis


# --- GF(2^8), the AES field (FIPS-197 section 4) ---------------------------------------------------
#
# A byte b7..b0 is the polynomial b7 x^7 + ... + b0; addition is XOR, multiplication is polynomial
# multiplication modulo the irreducible m(x) = x^8 + x^4 + x^3 + x + 1 (0x11B).

AES_POLYNOMIAL = 0x11B


def _check_byte(value, what: str = "byte") -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise TypeError(f"{what} must be an int in 0..255, got {type(value).__name__}")
    if not 0 <= value <= 0xFF:
        raise ValueError(f"{what} must be in 0..255, got {value}")
    return int(value)


def xtime(a: int) -> int:
    """Multiply by x (0x02): shift left, reduce by 0x11B if a bit fell off (FIPS-197 4.2.1)."""
    a = _check_byte(a)
    a <<= 1
    return a ^ AES_POLYNOMIAL if a & 0x100 else a


def _gf256_mul_slow(a: int, b: int) -> int:
    """Shift-and-add ("Russian peasant") multiplication: the definition, used to build the tables."""
    product = 0
    while b:
        if b & 1:
            product ^= a
        a = xtime(a)
        b >>= 1
    return product


def _build_log_tables() -> tuple[tuple[int, ...], tuple[int, ...]]:
    # 0x03 = x + 1 generates the multiplicative group (order 255), so every non-zero byte is 3^k.
    exp = [1] * 510
    for k in range(1, 510):
        exp[k] = _gf256_mul_slow(exp[k - 1], 0x03)
    log = [0] * 256
    for k in range(255):
        log[exp[k]] = k
    return tuple(exp), tuple(log)


#: ``GF256_EXP[k] = 0x03**k`` (antilog, doubled to 510 entries so sums of two logs need no modulo);
#: ``GF256_LOG[a] = k`` with ``0x03**k = a`` for a != 0 (``GF256_LOG[0]`` is unused and 0).
GF256_EXP, GF256_LOG = _build_log_tables()


def gf256_mul(a: int, b: int) -> int:
    """a * b in GF(2^8), through the log/antilog tables: 3^(log a + log b)."""
    a, b = _check_byte(a, "a"), _check_byte(b, "b")
    if a == 0 or b == 0:
        return 0
    return GF256_EXP[GF256_LOG[a] + GF256_LOG[b]]


def gf256_pow(a: int, n: int) -> int:
    """a**n in GF(2^8) for any integer n (negative n needs a != 0)."""
    a = _check_byte(a, "a")
    if a == 0:
        if n < 0:
            raise ValueError("0 has no inverse in GF(2^8)")
        return 1 if n == 0 else 0
    return GF256_EXP[(GF256_LOG[a] * n) % 255]


def gf256_inverse(a: int) -> int:
    """Multiplicative inverse in GF(2^8), with the AES convention that 0 maps to 0 (FIPS-197 5.1.1)."""
    a = _check_byte(a, "a")
    return 0 if a == 0 else GF256_EXP[255 - GF256_LOG[a]]
