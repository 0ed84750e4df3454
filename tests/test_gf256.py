"""GF(2^8): the AES field (FIPS-197 section 4)."""
import pytest
from hypothesis import given, strategies as st

from labkit import gf256

byte = st.integers(0, 255)


def test_fips_197_examples():
    assert gf256.mul(0x57, 0x83) == 0xC1  # FIPS-197 4.2
    assert gf256.mul(0x57, 0x13) == 0xFE  # FIPS-197 4.2.1
    assert [gf256.xtime(v) for v in (0x57, 0xAE, 0x47, 0x8E)] == [0xAE, 0x47, 0x8E, 0x07]
    assert gf256.inverse(0x53) == 0xCA  # FIPS-197 5.1.1


def test_log_tables_cover_the_group():
    assert sorted(gf256.EXP[:255]) == list(range(1, 256))  # 0x03 generates all non-zero bytes
    assert all(gf256.EXP[gf256.LOG[a]] == a for a in range(1, 256))


@given(byte, byte)
def test_mul_matches_shift_and_add(a, b):
    assert gf256.mul(a, b) == gf256._mul_slow(a, b) == gf256.mul(b, a)


@given(byte, byte, byte)
def test_distributive(a, b, c):
    assert gf256.mul(a, b ^ c) == gf256.mul(a, b) ^ gf256.mul(a, c)


@given(st.integers(1, 255))
def test_inverse_and_pow(a):
    assert gf256.mul(a, gf256.inverse(a)) == 1
    assert gf256.pow(a, 254) == gf256.inverse(a) == gf256.pow(a, -1)
    assert gf256.pow(a, 255) == 1


def test_zero_conventions_and_validation():
    assert gf256.inverse(0) == 0 and gf256.pow(0, 0) == 1 and gf256.pow(0, 3) == 0
    with pytest.raises(ValueError, match="no inverse"):
        gf256.pow(0, -1)
    with pytest.raises(ValueError, match="0..255"):
        gf256.mul(256, 1)
    with pytest.raises(TypeError, match="int"):
        gf256.xtime("a")
