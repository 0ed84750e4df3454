"""GF(2^128), the GHASH field (NIST SP 800-38D section 6.3), and polynomials over it with root
finding (square-free, distinct-degree and Cantor-Zassenhaus factoring): GHASH and the nonce-reuse
attack that recovers its key H from the roots of a polynomial (chapter 04, :mod:`labkit.gcm`).

The field's polynomial is x^128 + x^7 + x^2 + x + 1, in GCM's reflected bit order: GCM reads a
16-byte block with the FIRST bit (MSB of byte 0) as the coefficient of x^0 and the last bit as that
of x^127, the reverse of the usual integer order. Here a field element is a Python int whose bit k
is the coefficient of x^k ("natural" order), so that arithmetic is ordinary carry-less arithmetic;
:func:`from_block` / :func:`to_block` do the reflection. :func:`mul_blocks` is the standard's own
bit-by-bit Algorithm 1, for comparison.
"""
from __future__ import annotations

import random

from labkit import checks

__all__ = [
    "POLYNOMIAL", "from_block", "to_block", "mul", "mul_blocks", "square", "pow", "inverse", "sqrt",
    "poly_trim", "poly_degree", "poly_add", "poly_mul", "poly_divmod", "poly_monic", "poly_gcd",
    "poly_eval", "poly_derivative", "poly_sqrt", "poly_frobenius",
    "square_free_factorization", "distinct_degree_factorization", "equal_degree_factorization",
    "find_roots",
]


POLYNOMIAL = (1 << 128) | 0x87  # x^128 + x^7 + x^2 + x + 1
_MASK128 = (1 << 128) - 1


def _reflect128(value: int) -> int:
    return int(f"{value:0128b}"[::-1], 2)


def from_block(block: bytes) -> int:
    """A 16-byte GCM block as a field element (bit k = coefficient of x^k, GCM bit order)."""
    if not isinstance(block, (bytes, bytearray, memoryview)):
        raise TypeError(f"block must be bytes, got {type(block).__name__}")
    if len(block) != 16:
        raise ValueError(f"a GF(2^128) block must be 16 bytes, got {len(block)}")
    return _reflect128(int.from_bytes(bytes(block), "big"))


def _check_element(a, what: str = "element") -> int:
    return checks.check_int(a, what, low=0, high=_MASK128)


def to_block(a: int) -> bytes:
    """Inverse of :func:`from_block`."""
    return _reflect128(_check_element(a)).to_bytes(16, "big")


def _reduce128(r: int) -> int:
    while r >> 128:  # x^128 = x^7 + x^2 + x + 1: fold the high part down
        high = r >> 128
        r = (r & _MASK128) ^ high ^ (high << 1) ^ (high << 2) ^ (high << 7)
    return r


def mul(a: int, b: int) -> int:
    """a * b in GF(2^128): carry-less product (4 bits of b at a time), reduced mod x^128+x^7+x^2+x+1."""
    multiples = [0, a]  # multiples[t] = a * t (carry-less) for t < 16
    for t in range(2, 16):
        multiples.append(multiples[t >> 1] << 1 if t % 2 == 0 else multiples[t - 1] ^ a)
    product = 0
    for shift in range(124, -1, -4):
        product = (product << 4) ^ multiples[(b >> shift) & 15]
    return _reduce128(product)


def mul_blocks(x: bytes, y: bytes) -> bytes:
    """X * Y on 16-byte blocks exactly as SP 800-38D Algorithm 1 states it (bit by bit, R = 0xE1||0^120).

    Slow and literal; :func:`mul` computes the same product and is what GHASH uses.
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


def square(a: int) -> int:
    """a^2: squaring is linear in characteristic 2 (cross terms cancel), so spread the bits, reduce."""
    spread = 0
    for i in range(16):
        spread |= _SPREAD[(a >> (8 * i)) & 0xFF] << (16 * i)
    return _reduce128(spread)


def pow(a: int, n: int) -> int:
    """a**n by square-and-multiply (n >= 0)."""
    if n < 0:
        return pow(inverse(a), -n)
    result = 1
    while n:
        if n & 1:
            result = mul(result, a)
        a = square(a)
        n >>= 1
    return result


def inverse(a: int) -> int:
    """a^-1 = a^(2^128 - 2) (Fermat); raises ``ValueError`` for 0."""
    if a == 0:
        raise ValueError("0 has no inverse in GF(2^128)")
    return pow(a, (1 << 128) - 2)


def sqrt(a: int) -> int:
    """The unique square root a^(2^127) (every element of GF(2^128) is a square)."""
    for _ in range(127):
        a = square(a)
    return a


# --- Polynomials over GF(2^128) and their roots ---------------------------------------------------
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
                out[i + j] ^= mul(a, b)
    return poly_trim(out)


def poly_divmod(f, g) -> tuple[list[int], list[int]]:
    """Quotient and remainder of f by g != 0 (long division)."""
    f, g = poly_trim(f), poly_trim(g)
    if not g:
        raise ValueError("division by the zero polynomial")
    lead_inv = inverse(g[-1])
    rem = list(f)
    quot = [0] * max(len(f) - len(g) + 1, 0)
    while len(rem) >= len(g):
        shift = len(rem) - len(g)
        coef = mul(rem[-1], lead_inv)
        quot[shift] = coef
        for j, b in enumerate(g):
            rem[shift + j] ^= mul(coef, b)
        rem = poly_trim(rem)
    return poly_trim(quot), rem


def poly_monic(f) -> list[int]:
    """f divided by its leading coefficient."""
    f = poly_trim(f)
    if not f:
        return []
    inv = inverse(f[-1])
    return [mul(c, inv) for c in f]


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
        acc = mul(acc, x) ^ c
    return acc


def poly_derivative(f) -> list[int]:
    """Formal derivative: in characteristic 2, even powers vanish and odd ones keep their coefficient."""
    return poly_trim([f[i] if i % 2 else 0 for i in range(1, len(f))])


def poly_sqrt(f) -> list[int]:
    """g with g^2 = f, for f whose odd coefficients are all zero (f' = 0)."""
    f = poly_trim(f)
    if any(f[i] for i in range(1, len(f), 2)):
        raise ValueError("only polynomials with zero odd coefficients are squares")
    return poly_trim([sqrt(f[i]) for i in range(0, len(f), 2)])


def _poly_mulmod(f, g, modulus) -> list[int]:
    return poly_divmod(poly_mul(f, g), modulus)[1]


def _poly_squaremod(f, modulus) -> list[int]:
    squared = []  # (sum a_i x^i)^2 = sum a_i^2 x^(2i) in characteristic 2
    for c in f:
        squared += [square(c), 0]
    return poly_divmod(squared, modulus)[1]


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
