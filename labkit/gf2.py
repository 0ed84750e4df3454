"""Linear algebra over GF(2) on 0/1 numpy matrices: row reduction, rank, solving, null space.

Addition is XOR and multiplication AND, so Gauss-Jordan elimination needs no division: the tool
that recovers the key of a DES whose S-boxes are linear (chapter 02, :mod:`labkit.des_linear`)
and that analyses S-boxes.
"""
from __future__ import annotations

import numpy as np

__all__ = ["row_reduce", "rank", "solve", "nullspace", "matmul"]


def _as_matrix(matrix, what: str = "matrix") -> np.ndarray:
    m = np.asarray(matrix)
    if m.ndim != 2:
        raise ValueError(f"{what} must be 2-D, got shape {m.shape}")
    if m.size and not np.all((m == 0) | (m == 1)):
        raise ValueError(f"{what} must contain only 0 and 1")
    return m.astype(np.uint8)


def row_reduce(matrix) -> tuple[np.ndarray, list[int]]:
    """Reduced row echelon form over GF(2) and the pivot columns (Gauss-Jordan, XOR for subtract)."""
    m = _as_matrix(matrix).copy()
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


def rank(matrix) -> int:
    """Rank of a 0/1 matrix over GF(2)."""
    return len(row_reduce(matrix)[1])


def matmul(a, b) -> np.ndarray:
    """Matrix product over GF(2) (works for matrix-vector too)."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    return (a @ b % 2).astype(np.uint8)


def solve(a, b) -> np.ndarray:
    """One solution x of a x = b over GF(2); raises ``ValueError`` if the system is inconsistent.

    Free variables are set to 0; combine with :func:`nullspace` for all solutions.
    """
    a = _as_matrix(a, "coefficient matrix")
    b = np.asarray(b, dtype=np.uint8).reshape(-1)
    if b.shape[0] != a.shape[0]:
        raise ValueError(f"right-hand side must have {a.shape[0]} entries, got {b.shape[0]}")
    reduced, pivots = row_reduce(np.column_stack([a, b]))
    n = a.shape[1]
    if n in pivots:
        raise ValueError("the system has no solution over GF(2)")
    x = np.zeros(n, dtype=np.uint8)
    for row, col in enumerate(pivots):
        x[col] = reduced[row, n]
    return x


def nullspace(matrix) -> np.ndarray:
    """A basis of {x : M x = 0} over GF(2), one vector per row."""
    m = _as_matrix(matrix)
    reduced, pivots = row_reduce(m)
    n = m.shape[1]
    free = [c for c in range(n) if c not in pivots]
    basis = np.zeros((len(free), n), dtype=np.uint8)
    for i, f in enumerate(free):
        basis[i, f] = 1
        for row, col in enumerate(pivots):
            basis[i, col] = reduced[row, f]
    return basis
