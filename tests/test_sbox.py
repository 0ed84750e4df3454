import numpy as np
import pytest

from labkit import sbox

# PRESENT's 4-bit S-box (Bogdanov et al., CHES 2007): uniformity 4, nonlinearity 4 by design.
PRESENT = [0xC, 5, 6, 0xB, 9, 0, 0xA, 0xD, 3, 0xE, 0xF, 8, 4, 7, 1, 2]


def brute_ddt(s, n, m):
    out = np.zeros((1 << n, 1 << m), dtype=int)
    for a in range(1 << n):
        for x in range(1 << n):
            out[a, s[x] ^ s[x ^ a]] += 1
    return out


def brute_lat(s, n, m):
    dot = lambda u, v: bin(u & v).count("1") & 1
    return np.array([[sum(dot(a, x) == dot(b, s[x]) for x in range(1 << n)) - (1 << (n - 1))
                      for b in range(1 << m)] for a in range(1 << n)])


@pytest.mark.parametrize("seed", range(5))
def test_tables_match_brute_force_on_random_sboxes(seed):
    rng = np.random.default_rng(seed)
    s = rng.integers(0, 16, size=64).tolist()  # a random 6-to-4 box, like DES
    assert np.array_equal(sbox.ddt(s, out_bits=4), brute_ddt(s, 6, 4))
    assert np.array_equal(sbox.lat(s, out_bits=4), brute_lat(s, 6, 4))


def test_present_sbox_properties():
    assert sbox.differential_uniformity(PRESENT) == 4
    assert sbox.nonlinearity(PRESENT) == 4
    assert sbox.is_permutation(PRESENT) and sbox.is_balanced(PRESENT)
    assert sbox.ddt(PRESENT)[0, 0] == 16
    assert np.array_equal(sbox.walsh_spectrum(PRESENT), 2 * sbox.lat(PRESENT))


def test_linear_sbox_is_fully_linear():
    # S(x) = x (identity) is linear: one LAT entry per mask pair reaches the maximum.
    ident = list(range(16))
    assert sbox.nonlinearity(ident) == 0
    assert sbox.differential_uniformity(ident) == 16


def test_validation():
    with pytest.raises(ValueError, match="power of two"):
        sbox.ddt([0, 1, 2])
    with pytest.raises(TypeError):
        sbox.ddt([0.5, 1.0])
