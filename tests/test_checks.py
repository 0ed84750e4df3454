"""labkit.checks: the input checks every public function uses, so they agree on types and messages."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from labkit import checks


@given(st.integers(-10**40, 10**40), st.integers(-100, 100), st.integers(0, 200))
def test_check_int_accepts_exactly_the_integers_in_range(value, low, width):
    high = low + width
    if low <= value <= high:
        assert checks.check_int(value, "n", low=low, high=high) == value
    else:
        with pytest.raises(ValueError, match=rf"n must be an int in {low}\.\.{high}, got {value}"):
            checks.check_int(value, "n", low=low, high=high)


@pytest.mark.parametrize("value", [True, False, 1.0, "3", None, b"\x01", np.float64(2)])
def test_check_int_refuses_bools_and_non_integers_with_type_error(value):
    with pytest.raises(TypeError, match="rounds must be an int"):
        checks.check_int(value, "rounds", low=0, high=16)


def test_check_int_takes_numpy_integers_and_open_ends():
    assert type(checks.check_int(np.uint8(7), "byte", low=0, high=255)) is int
    assert checks.check_int(10**30, "big", low=1) == 10**30
    with pytest.raises(ValueError, match="trials must be an int >= 1, got 0"):
        checks.check_int(0, "trials", low=1)
    with pytest.raises(ValueError, match="n must be an int <= 3, got 4"):
        checks.check_int(4, "n", high=3)


@pytest.mark.parametrize("value", [b"ab", bytearray(b"ab"), memoryview(b"ab")])
def test_check_bytes_returns_bytes_of_the_right_length(value):
    assert checks.check_bytes(value, 2, what="key") == b"ab"
    with pytest.raises(ValueError, match="key must be 3 bytes, got 2"):
        checks.check_bytes(value, 3, what="key")


@pytest.mark.parametrize("value", ["ab", [1, 2], 5, None])
def test_check_bytes_refuses_non_bytes(value):
    with pytest.raises(TypeError, match="key must be bytes"):
        checks.check_bytes(value, what="key")


def test_check_queries_gives_float_rows_and_refuses_bad_shapes_and_values():
    import torch

    assert checks.check_queries([0, 1, 0.5], 3).shape == (1, 3)
    assert checks.check_queries(torch.ones(4, 3), 3).dtype == np.float64
    with pytest.raises(ValueError, match=r"\(n, 3\)"):
        checks.check_queries(np.zeros((2, 4)), 3)
    for bad in (np.nan, np.inf, -np.inf):
        with pytest.raises(ValueError, match="finite"):
            checks.check_queries([0.0, bad, 1.0], 3)
