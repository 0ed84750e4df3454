"""Input checks at labkit's public boundary, written once so every function says it the same way.

A public function validates its arguments on entry with these and passes checked values inward;
inner helpers do not check again. Wrong types raise TypeError, wrong values ValueError, both naming
what was expected ("DES key must be 8 bytes, got 7"; "rounds must be an int in 1..16, got True").
"""
from __future__ import annotations

import numbers

import numpy as np

__all__ = ["check_bytes", "check_int", "check_queries", "QueryBudgetExceeded"]


def check_bytes(value, length: int | None = None, *, what: str = "value") -> bytes:
    """A bytes-like ``value`` (of ``length`` bytes, when given) as ``bytes``."""
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(f"{what} must be bytes, got {type(value).__name__}")
    value = bytes(value)
    if length is not None and len(value) != length:
        raise ValueError(f"{what} must be {length} bytes, got {len(value)}")
    return value


def check_int(value, what: str, *, low: int | None = None, high: int | None = None) -> int:
    """An integer ``value`` (Python or numpy, never a bool) in ``low..high`` (either may be open) as ``int``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{what} must be an int, got {type(value).__name__}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        if low is not None and high is not None:
            expected = f"in {low}..{high}"
        else:
            expected = f">= {low}" if low is not None else f"<= {high}"
        raise ValueError(f"{what} must be an int {expected}, got {value}")
    return value


class QueryBudgetExceeded(RuntimeError):
    """An oracle was asked for more query rows than its budget allows (it answers nothing then).

    Raised by every budgeted oracle, local (:class:`labkit.attacks.oracle.CountingOracle`) or
    served by the challenge service: it lives here, below both, so that catching it imports no
    attack code (and no torch).
    """


def check_queries(queries, n_bits: int) -> np.ndarray:
    """Oracle queries as a float64 array ``(n, n_bits)`` (one query ``(n_bits,)`` becomes one row;
    a torch tensor is read as numpy), every value finite: the one check every oracle handle makes."""
    if hasattr(queries, "detach"):
        queries = queries.detach().cpu().numpy()
    q = np.asarray(queries, dtype=np.float64)
    if q.ndim == 1:
        q = q[None, :]
    if q.ndim != 2 or q.shape[1] != n_bits:
        raise ValueError(f"queries must be an (n, {n_bits}) array of floats, got shape {q.shape}")
    if not np.all(np.isfinite(q)):
        raise ValueError("queries must be finite numbers")
    return q
