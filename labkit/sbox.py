"""S-box analysis for any n-to-m-bit table: difference and linear distribution tables.

An S-box is a sequence of 2**n ints in range(2**m). The measures are those of differential
(Biham-Shamir 1991) and linear (Matsui 1993) cryptanalysis; AES's S-box reaches nonlinearity 112
and differential uniformity 4 (Nyberg 1993).
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "as_table",
    "ddt",
    "lat",
    "walsh_spectrum",
    "nonlinearity",
    "differential_uniformity",
    "linearity",
    "is_balanced",
    "is_permutation",
    "preimage_counts",
]


def as_table(table) -> tuple[np.ndarray, int, int]:
    """Validate an S-box; return it as an int array with its input and output widths (n, m)."""
    arr = np.asarray(list(table) if not isinstance(table, np.ndarray) else table)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError("S-box must be a non-empty 1-D sequence of ints")
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"S-box entries must be ints, got {arr.dtype}")
    size = arr.size
    n = size.bit_length() - 1
    if 1 << n != size:
        raise ValueError(f"S-box length must be a power of two, got {size}")
    if arr.min() < 0:
        raise ValueError("S-box entries must be non-negative")
    m = max(int(arr.max()).bit_length(), 1)
    return arr.astype(np.int64), n, m


def ddt(table, out_bits: int | None = None) -> np.ndarray:
    """Difference distribution table: ``D[a, b] = #{x : S(x) ^ S(x ^ a) = b}``."""
    s, n, m = as_table(table)
    m = out_bits or m
    x = np.arange(1 << n)
    out = np.zeros((1 << n, 1 << m), dtype=np.int64)
    for a in range(1 << n):
        np.add.at(out[a], s ^ s[x ^ a], 1)
    return out


def _parity(v: np.ndarray) -> np.ndarray:
    v = v.copy()
    p = np.zeros_like(v)
    while np.any(v):
        p ^= v & 1
        v >>= 1
    return p


def lat(table, out_bits: int | None = None) -> np.ndarray:
    """Linear approximation table: ``L[a, b] = #{x : a.x = b.S(x)} - 2**(n-1)`` (the bias count)."""
    s, n, m = as_table(table)
    m = out_bits or m
    x = np.arange(1 << n)
    a = np.arange(1 << n)[:, None]
    in_par = _parity(a & x[None, :])  # (2^n, 2^n): a.x
    out = np.empty((1 << n, 1 << m), dtype=np.int64)
    for b in range(1 << m):
        out_par = _parity(b & s)  # b.S(x)
        agree = (in_par == out_par[None, :]).sum(axis=1)
        out[:, b] = agree - (1 << (n - 1))
    return out


def walsh_spectrum(table) -> np.ndarray:
    """Walsh coefficients ``W[a, b] = sum_x (-1)^(a.x ^ b.S(x)) = 2 * L[a, b]``."""
    return 2 * lat(table)


def nonlinearity(table) -> int:
    """Distance to the nearest affine function over all non-zero output masks: 2^(n-1) - max|L|."""
    s, n, _ = as_table(table)
    l = lat(table)
    return int((1 << (n - 1)) - np.abs(l[:, 1:]).max())


def linearity(table) -> int:
    """Largest |L[a, b]| over non-zero output masks (lower is better)."""
    return int(np.abs(lat(table)[:, 1:]).max())


def differential_uniformity(table) -> int:
    """Largest DDT entry over non-zero input differences (lower is better; AES: 4)."""
    return int(ddt(table)[1:].max())


def is_balanced(table) -> bool:
    """Every output value is hit equally often (e.g. each DES S-box row hits 0..15 four times)."""
    s, n, m = as_table(table)
    counts = np.bincount(s, minlength=1 << m)
    return bool(np.all(counts == counts[0]))


def is_permutation(table) -> bool:
    """The S-box is a bijection on n bits."""
    s, n, m = as_table(table)
    return m <= n and len(set(s.tolist())) == s.size


# --- preimages (chapter 02b: "every DES S-box is 4-to-1") ----------------------------------------


def preimage_counts(table, out_bits: int | None = None) -> np.ndarray:
    """How many inputs map to each output value (length 2**m): a 6-to-4-bit S-box is "4-to-1"
    when every entry is 4, the design rule of DES's S-boxes (Coppersmith 1994, criterion S-2)."""
    s, n, m = as_table(table)
    m = m if out_bits is None else int(out_bits)
    if s.max() >> m:
        raise ValueError(f"S-box entries do not fit in {m} output bits")
    return np.bincount(s, minlength=1 << m)
