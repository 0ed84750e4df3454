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

import random

import numpy as np

from labkit import checks

__all__ = [
    "gf2_row_reduce", "gf2_rank", "gf2_solve", "gf2_nullspace", "gf2_matmul",
    "AES_POLYNOMIAL", "xtime", "gf256_mul", "gf256_pow", "gf256_inverse", "GF256_EXP", "GF256_LOG",
    "GCM_POLYNOMIAL", "gf128_from_block", "gf128_to_block", "gf128_mul", "gf128_mul_blocks",
    "gf128_square", "gf128_pow", "gf128_inverse", "gf128_sqrt",
    "poly_trim", "poly_degree", "poly_add", "poly_mul", "poly_divmod", "poly_monic", "poly_gcd",
    "poly_eval", "poly_derivative", "poly_sqrt", "poly_frobenius",
    "square_free_factorization", "distinct_degree_factorization", "equal_degree_factorization",
    "find_roots",
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
    return checks.check_int(value, what, low=0, high=0xFF)


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


# --- GF(2^128), the GHASH field (NIST SP 800-38D section 6.3) --------------------------------------
#
# GCM reads a 16-byte block as a polynomial with the FIRST bit (MSB of byte 0) as the coefficient
# of x^0 and the last bit as that of x^127: the reverse of the usual integer order. Here a field
# element is a Python int whose bit k is the coefficient of x^k ("natural" order), so that
# arithmetic is ordinary carry-less arithmetic; gf128_from_block / gf128_to_block do the
# reflection. gf128_mul_blocks is the standard's own bit-by-bit Algorithm 1, for comparison.

GCM_POLYNOMIAL = (1 << 128) | 0x87  # x^128 + x^7 + x^2 + x + 1
_MASK128 = (1 << 128) - 1


def _reflect128(value: int) -> int:
    return int(f"{value:0128b}"[::-1], 2)


def gf128_from_block(block: bytes) -> int:
    """A 16-byte GCM block as a field element (bit k = coefficient of x^k, GCM bit order)."""
    if not isinstance(block, (bytes, bytearray, memoryview)):
        raise TypeError(f"block must be bytes, got {type(block).__name__}")
    if len(block) != 16:
        raise ValueError(f"a GF(2^128) block must be 16 bytes, got {len(block)}")
    return _reflect128(int.from_bytes(bytes(block), "big"))


def _check_element(a, what: str = "element") -> int:
    return checks.check_int(a, what, low=0, high=_MASK128)


def gf128_to_block(a: int) -> bytes:
    """Inverse of :func:`gf128_from_block`."""
    return _reflect128(_check_element(a)).to_bytes(16, "big")


def _reduce128(r: int) -> int:
    while r >> 128:  # x^128 = x^7 + x^2 + x + 1: fold the high part down
        high = r >> 128
        r = (r & _MASK128) ^ high ^ (high << 1) ^ (high << 2) ^ (high << 7)
    return r


def gf128_mul(a: int, b: int) -> int:
    """a * b in GF(2^128): carry-less product (4 bits of b at a time), reduced mod x^128+x^7+x^2+x+1."""
    multiples = [0, a]  # multiples[t] = a * t (carry-less) for t < 16
    for t in range(2, 16):
        multiples.append(multiples[t >> 1] << 1 if t % 2 == 0 else multiples[t - 1] ^ a)
    product = 0
    for shift in range(124, -1, -4):
        product = (product << 4) ^ multiples[(b >> shift) & 15]
    return _reduce128(product)


def gf128_mul_blocks(x: bytes, y: bytes) -> bytes:
    """X * Y on 16-byte blocks exactly as SP 800-38D Algorithm 1 states it (bit by bit, R = 0xE1||0^120).

    Slow and literal; :func:`gf128_mul` computes the same product and is what GHASH uses.
    """
    for what, v in (("x", x), ("y", y)):
        if not isinstance(v, (bytes, bytearray)) or len(v) != 16:
            raise ValueError(f"{what} must be 16 bytes")
    xi, v = int.from_bytes(bytes(x), "big"), int.from_bytes(bytes(y), "big")
    z, r = 0, 0xE1 << 120
    for i in range(128):
        if (xi >> (127 - i)) & 1:
            z ^= v
        v = (v >> 1) ^ r if v & 1 else v >> 1
    return z.to_bytes(16, "big")


# _SPREAD[b] moves bit k of the byte b to bit 2k: (sum b_k x^k)^2 = sum b_k x^(2k) over GF(2).
_SPREAD = tuple(sum(((b >> k) & 1) << (2 * k) for k in range(8)) for b in range(256))


def gf128_square(a: int) -> int:
    """a^2: squaring is linear in characteristic 2 (cross terms cancel), so spread the bits, reduce."""
    spread = 0
    for i in range(16):
        spread |= _SPREAD[(a >> (8 * i)) & 0xFF] << (16 * i)
    return _reduce128(spread)


def gf128_pow(a: int, n: int) -> int:
    """a**n by square-and-multiply (n >= 0)."""
    if n < 0:
        return gf128_pow(gf128_inverse(a), -n)
    result = 1
    while n:
        if n & 1:
            result = gf128_mul(result, a)
        a = gf128_square(a)
        n >>= 1
    return result


def gf128_inverse(a: int) -> int:
    """a^-1 = a^(2^128 - 2) (Fermat); raises ``ValueError`` for 0."""
    if a == 0:
        raise ValueError("0 has no inverse in GF(2^128)")
    return gf128_pow(a, (1 << 128) - 2)


def gf128_sqrt(a: int) -> int:
    """The unique square root a^(2^127) (every element of GF(2^128) is a square)."""
    for _ in range(127):
        a = gf128_square(a)
    return a


# --- Polynomials over GF(2^128) and their roots ------------------------------------------------------
#
# A polynomial is a list of GF(2^128) ints, lowest degree first, without trailing zeros (the zero
# polynomial is []). Root finding follows the textbook route (e.g. von zur Gathen and Gerhard,
# Modern Computer Algebra, ch. 14; Joux, "Authentication failures in NIST version of GCM", 2006):
# square-free part, then distinct-degree factorization (the product of the linear factors is
# gcd(f, x^q - x), q = 2^128), then Cantor-Zassenhaus equal-degree splitting with the trace map.

Q_BITS = 128  # q = 2^128 elements


def poly_trim(f) -> list[int]:
    """Drop zero leading coefficients (the list's tail)."""
    f = [int(c) for c in f]
    while f and f[-1] == 0:
        f.pop()
    return f


def poly_degree(f) -> int:
    """Degree; -1 for the zero polynomial."""
    return len(poly_trim(f)) - 1


def poly_add(f, g) -> list[int]:
    """f + g (= f - g: coefficients add by XOR)."""
    n = max(len(f), len(g))
    return poly_trim([(f[i] if i < len(f) else 0) ^ (g[i] if i < len(g) else 0) for i in range(n)])


def poly_mul(f, g) -> list[int]:
    """f * g (schoolbook)."""
    if not f or not g:
        return []
    out = [0] * (len(f) + len(g) - 1)
    for i, a in enumerate(f):
        if a:
            for j, b in enumerate(g):
                out[i + j] ^= gf128_mul(a, b)
    return poly_trim(out)


def poly_divmod(f, g) -> tuple[list[int], list[int]]:
    """Quotient and remainder of f by g != 0 (long division)."""
    f, g = poly_trim(f), poly_trim(g)
    if not g:
        raise ValueError("division by the zero polynomial")
    lead_inv = gf128_inverse(g[-1])
    rem = list(f)
    quot = [0] * max(len(f) - len(g) + 1, 0)
    while len(rem) >= len(g):
        shift = len(rem) - len(g)
        coef = gf128_mul(rem[-1], lead_inv)
        quot[shift] = coef
        for j, b in enumerate(g):
            rem[shift + j] ^= gf128_mul(coef, b)
        rem = poly_trim(rem)
    return poly_trim(quot), rem


def poly_monic(f) -> list[int]:
    """f divided by its leading coefficient."""
    f = poly_trim(f)
    if not f:
        return []
    inv = gf128_inverse(f[-1])
    return [gf128_mul(c, inv) for c in f]


def poly_gcd(f, g) -> list[int]:
    """Monic greatest common divisor (Euclid)."""
    f, g = poly_trim(f), poly_trim(g)
    while g:
        f, g = g, poly_divmod(f, g)[1]
    return poly_monic(f)


def poly_eval(f, x: int) -> int:
    """f(x) by Horner's rule."""
    acc = 0
    for c in reversed(poly_trim(f)):
        acc = gf128_mul(acc, x) ^ c
    return acc


def poly_derivative(f) -> list[int]:
    """Formal derivative: in characteristic 2, even powers vanish and odd ones keep their coefficient."""
    return poly_trim([f[i] if i % 2 else 0 for i in range(1, len(f))])


def poly_sqrt(f) -> list[int]:
    """g with g^2 = f, for f whose odd coefficients are all zero (f' = 0)."""
    f = poly_trim(f)
    if any(f[i] for i in range(1, len(f), 2)):
        raise ValueError("only polynomials with zero odd coefficients are squares")
    return poly_trim([gf128_sqrt(f[i]) for i in range(0, len(f), 2)])


def _poly_mulmod(f, g, modulus) -> list[int]:
    return poly_divmod(poly_mul(f, g), modulus)[1]


def _poly_squaremod(f, modulus) -> list[int]:
    square = []  # (sum a_i x^i)^2 = sum a_i^2 x^(2i) in characteristic 2
    for c in f:
        square += [gf128_square(c), 0]
    return poly_divmod(square, modulus)[1]


def poly_frobenius(f, times: int, modulus) -> list[int]:
    """f^(2^times) mod modulus: ``times`` squarings (x^(q^d) is ``times = 128 d``)."""
    f = poly_divmod(f, modulus)[1]
    for _ in range(times):
        f = _poly_squaremod(f, modulus)
    return f


def square_free_factorization(f) -> list[tuple[list[int], int]]:
    """Monic square-free factors with multiplicities: f = lead * prod g_i^(e_i) (Yun's idea for
    characteristic 2: gcd(f, f') splits off repeated factors; f' = 0 means f is a square)."""
    f = poly_monic(f)
    if len(f) <= 1:
        return []
    result: list[tuple[list[int], int]] = []
    deriv = poly_derivative(f)
    if not deriv:  # f = g^2
        return [(g, 2 * e) for g, e in square_free_factorization(poly_sqrt(f))]
    c = poly_gcd(f, deriv)
    w = poly_divmod(f, c)[0]  # product of the distinct irreducible factors
    i = 1
    while len(w) > 1:
        y = poly_gcd(w, c)
        factor = poly_divmod(w, y)[0]
        if len(factor) > 1:
            result.append((poly_monic(factor), i))
        w, c = y, poly_divmod(c, y)[0]
        i += 1
    if len(c) > 1:  # what is left has zero derivative: a square
        result += [(g, 2 * e) for g, e in square_free_factorization(poly_sqrt(c))]
    return result


def distinct_degree_factorization(f, max_degree: int | None = None) -> list[tuple[list[int], int]]:
    """For square-free monic f, pairs (g_d, d) where g_d is the product of all irreducible factors
    of degree d: g_d = gcd(f, x^(q^d) - x) after removing lower degrees. ``max_degree`` stops early
    (root finding needs only d = 1)."""
    f = poly_monic(f)
    out: list[tuple[list[int], int]] = []
    x_power = [0, 1]  # x^(q^d) mod f
    d = 0
    while len(f) - 1 >= 2 * (d + 1) and (max_degree is None or d < max_degree):
        d += 1
        x_power = poly_frobenius(x_power, Q_BITS, f)
        g = poly_gcd(f, poly_add(x_power, [0, 1]))
        if len(g) > 1:
            out.append((g, d))
            f = poly_divmod(f, g)[0]
            x_power = poly_divmod(x_power, f)[1]
    if len(f) > 1 and (max_degree is None or len(f) - 1 <= max_degree):
        out.append((f, len(f) - 1))
    return out


def equal_degree_factorization(f, degree: int, rng=None) -> list[list[int]]:
    """Cantor-Zassenhaus for characteristic 2: split a monic product of irreducibles of equal
    ``degree``. For random r, the trace T(r) = r + r^2 + ... + r^(2^(128 degree - 1)) mod f is 0 or
    1 modulo each factor, each with probability 1/2, so gcd(f, T(r)) splits f."""
    rng = rng or random.Random(0)
    f = poly_monic(f)
    n = len(f) - 1
    if n <= degree:
        return [f]
    while True:
        r = poly_trim([rng.getrandbits(128) for _ in range(n)])
        trace, term = list(r), list(r)
        for _ in range(Q_BITS * degree - 1):
            term = _poly_squaremod(term, f)
            trace = poly_add(trace, term)
        g = poly_gcd(f, trace)
        if 1 < len(g) < len(f):
            rest = poly_divmod(f, g)[0]
            return (equal_degree_factorization(g, degree, rng)
                    + equal_degree_factorization(rest, degree, rng))


def find_roots(f) -> list[int]:
    """All distinct roots in GF(2^128) of a non-zero polynomial, sorted: square-free part, its
    linear factors by distinct-degree factorization, then Cantor-Zassenhaus splitting."""
    f = poly_trim(f)
    if not f:
        raise ValueError("every element is a root of the zero polynomial")
    roots = set()
    for factor, _ in square_free_factorization(f):
        for linear, d in distinct_degree_factorization(factor, max_degree=1):
            for piece in equal_degree_factorization(linear, 1):
                roots.add(piece[0])  # monic x + a has root a (characteristic 2)
    return sorted(roots)
