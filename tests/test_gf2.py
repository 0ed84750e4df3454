import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from labkit import gf2

matrices = hnp.arrays(np.uint8, st.tuples(st.integers(1, 12), st.integers(1, 12)), elements=st.integers(0, 1))


@given(matrices)
def test_rank_matches_nullspace_dimension(m):
    assert gf2.rank(m) + gf2.nullspace(m).shape[0] == m.shape[1]
    for v in gf2.nullspace(m):
        assert not gf2.matmul(m, v).any()


@given(matrices, st.data())
@settings(max_examples=200)
def test_solve_finds_a_solution_of_consistent_systems(m, data):
    x_true = data.draw(hnp.arrays(np.uint8, m.shape[1], elements=st.integers(0, 1)))
    b = gf2.matmul(m, x_true)
    x = gf2.solve(m, b)
    assert np.array_equal(gf2.matmul(m, x), b)


def test_inconsistent_system_raises():
    with pytest.raises(ValueError, match="no solution"):
        gf2.solve([[1, 1], [1, 1]], [0, 1])


def test_identity_rank_and_validation():
    assert gf2.rank(np.eye(7, dtype=np.uint8)) == 7
    with pytest.raises(ValueError, match="only 0 and 1"):
        gf2.rank([[2]])
