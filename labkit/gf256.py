"""GF(2^8), the AES field (FIPS-197 section 4): xtime, multiplication, powers, inverse, and the
log/antilog tables the multiplication uses; the S-box and MixColumns are built on it (chapter 03).

A byte b7..b0 is the polynomial b7 x^7 + ... + b0; addition is XOR, multiplication is polynomial
multiplication modulo the irreducible m(x) = x^8 + x^4 + x^3 + x + 1 (0x11B).
"""
from __future__ import annotations

from labkit import checks

__all__ = ["POLYNOMIAL", "xtime", "mul", "pow", "inverse", "EXP", "LOG"]


POLYNOMIAL = 0x11B


def _check_byte(value, what: str = "byte") -> int:
    return checks.check_int(value, what, low=0, high=0xFF)


def xtime(a: int) -> int:
    """Multiply by x (0x02): shift left, reduce by 0x11B if a bit fell off (FIPS-197 4.2.1)."""
    a = _check_byte(a)
    a <<= 1
    return a ^ POLYNOMIAL if a & 0x100 else a


def _mul_slow(a: int, b: int) -> int:
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
        exp[k] = _mul_slow(exp[k - 1], 0x03)
    log = [0] * 256
    for k in range(255):
        log[exp[k]] = k
    return tuple(exp), tuple(log)


#: ``EXP[k] = 0x03**k`` (antilog, doubled to 510 entries so sums of two logs need no modulo);
#: ``LOG[a] = k`` with ``0x03**k = a`` for a != 0 (``LOG[0]`` is unused and 0).
EXP, LOG = _build_log_tables()


def mul(a: int, b: int) -> int:
    """a * b in GF(2^8), through the log/antilog tables: 3^(log a + log b)."""
    a, b = _check_byte(a, "a"), _check_byte(b, "b")
    if a == 0 or b == 0:
        return 0
    return EXP[LOG[a] + LOG[b]]


def pow(a: int, n: int) -> int:
    """a**n in GF(2^8) for any integer n (negative n needs a != 0)."""
    a = _check_byte(a, "a")
    if a == 0:
        if n < 0:
            raise ValueError("0 has no inverse in GF(2^8)")
        return 1 if n == 0 else 0
    return EXP[(LOG[a] * n) % 255]


def inverse(a: int) -> int:
    """Multiplicative inverse in GF(2^8), with the AES convention that 0 maps to 0 (FIPS-197 5.1.1)."""
    a = _check_byte(a, "a")
    return 0 if a == 0 else EXP[255 - LOG[a]]
