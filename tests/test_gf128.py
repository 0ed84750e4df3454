"""GF(2^128) in GCM's bit order, polynomials over it, and root finding."""
import random

import pytest
from hypothesis import given, settings, strategies as st

from labkit import gf128

element = st.integers(0, (1 << 128) - 1)
block = st.binary(min_size=16, max_size=16)


@settings(max_examples=60, deadline=None)
@given(block, block)
def test_mul_matches_sp800_38d_algorithm_1(x, y):
    product = gf128.mul(gf128.from_block(x), gf128.from_block(y))
    assert gf128.to_block(product) == gf128.mul_blocks(x, y)


def test_bit_order_one_is_the_first_bit():
    one = bytes([0x80]) + bytes(15)  # GCM: the leftmost bit is x^0
    assert gf128.from_block(one) == 1
    assert gf128.mul_blocks(one, b"\x12" * 16) == b"\x12" * 16


@settings(max_examples=60, deadline=None)
@given(element, element, element)
def test_field_axioms(a, b, c):
    assert gf128.mul(a, b) == gf128.mul(b, a)
    assert gf128.mul(a, b ^ c) == gf128.mul(a, b) ^ gf128.mul(a, c)
    assert gf128.mul(gf128.mul(a, b), c) == gf128.mul(a, gf128.mul(b, c))
    assert gf128.square(a) == gf128.mul(a, a)


@settings(max_examples=10, deadline=None)
@given(st.integers(1, (1 << 128) - 1))
def test_inverse_and_sqrt(a):
    assert gf128.mul(a, gf128.inverse(a)) == 1
    assert gf128.square(gf128.sqrt(a)) == a


def test_zero_has_no_inverse():
    with pytest.raises(ValueError, match="no inverse"):
        gf128.inverse(0)
    with pytest.raises(ValueError, match="16 bytes"):
        gf128.from_block(bytes(15))


def _from_roots(roots, rng, extra_degree=0):
    f = [1]
    for r in roots:
        f = gf128.poly_mul(f, [r, 1])
    if extra_degree:
        f = gf128.poly_mul(f, [rng.getrandbits(128) for _ in range(extra_degree)] + [1])
    return f


def test_poly_division_identity():
    rng = random.Random(3)
    f = [rng.getrandbits(128) for _ in range(9)]
    g = [rng.getrandbits(128) for _ in range(4)]
    q, r = gf128.poly_divmod(f, g)
    assert gf128.poly_add(gf128.poly_mul(q, g), r) == gf128.poly_trim(f) and len(r) < len(g)
    with pytest.raises(ValueError, match="zero polynomial"):
        gf128.poly_divmod(f, [])


def test_square_free_factorization_recovers_multiplicities():
    rng = random.Random(5)
    a, b, c = (_from_roots([rng.getrandbits(128)], rng) for _ in range(3))
    f = gf128.poly_mul(gf128.poly_mul(a, gf128.poly_mul(b, b)), gf128.poly_mul(gf128.poly_mul(c, c), gf128.poly_mul(c, c)))
    parts = gf128.square_free_factorization(f)
    assert sorted((tuple(g), e) for g, e in parts) == sorted([(tuple(a), 1), (tuple(b), 2), (tuple(c), 4)])


def test_distinct_degree_factorization_degrees_add_up():
    rng = random.Random(11)
    f = gf128.poly_monic([rng.getrandbits(128) for _ in range(9)] + [1])  # random degree 9
    parts = gf128.distinct_degree_factorization(f)
    assert sum(gf128.poly_degree(g) for g, _ in parts) == 9
    product = [1]
    for g, d in parts:
        assert gf128.poly_degree(g) % d == 0
        product = gf128.poly_mul(product, g)
    assert product == f


def test_equal_degree_factorization_splits_into_linear_factors():
    rng = random.Random(2)
    roots = [rng.getrandbits(128) for _ in range(4)]
    pieces = gf128.equal_degree_factorization(_from_roots(roots, rng), 1)
    assert sorted(p[0] for p in pieces) == sorted(roots) and all(len(p) == 2 for p in pieces)


@pytest.mark.parametrize("seed", range(3))
def test_find_roots(seed):
    rng = random.Random(seed)
    roots = [rng.getrandbits(128) for _ in range(3)]
    f = gf128.poly_mul(_from_roots(roots + roots[:1], rng, extra_degree=8), [rng.getrandbits(128) or 1])
    found = gf128.find_roots(f)
    assert set(roots) <= set(found)
    assert all(gf128.poly_eval(f, x) == 0 for x in found)
    assert gf128.find_roots([5]) == []
