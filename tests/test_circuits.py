"""labkit.circuits: corner neurons against their formula, gates, circuits evaluated and counted."""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from labkit.circuits import (AND, NOT, OR, XOR, BooleanFunction, Circuit, corner_neurons, corner_value,
                             lookup_function)

CUBE3 = np.array(list(itertools.product([0, 1], repeat=3)))


@pytest.mark.parametrize("c", [1.0, 0.5, 0.3, 1e-3])
def test_corner_is_one_exactly_at_its_pattern(c):
    for pattern in CUBE3:
        values = corner_value(pattern, CUBE3, c)
        expected = np.all(CUBE3 == pattern, axis=1).astype(float)
        np.testing.assert_allclose(values, expected, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4), st.integers(1, 3), st.data(), st.sampled_from([1.0, 0.5, 0.25, 0.7]))
def test_corner_network_computes_any_function_on_bits(k, m, data, c):
    table = data.draw(st.lists(st.integers(0, (1 << m) - 1), min_size=1 << k, max_size=1 << k))
    f = BooleanFunction("f", k, m, table)
    net = corner_neurons(f, c)
    cube = np.array(list(itertools.product([0, 1], repeat=k)))
    np.testing.assert_array_equal(net(cube), f(cube))
    # same neurons in the paper's form: weight +-1/c and the corner formula
    x = data.draw(st.lists(st.floats(-1, 2), min_size=k, max_size=k))
    formula = np.array([corner_value([(p >> (k - 1 - i)) & 1 for i in range(k)], x, c) for p in net.patterns])
    np.testing.assert_allclose(net.hidden(np.array(x)), formula, atol=1e-9)
    np.testing.assert_allclose(np.maximum(net.weight @ x + net.bias, 0), formula, atol=1e-9)


def test_xor_back_to_back_and_separated():
    net1, net5 = corner_neurons(XOR(), 1.0), corner_neurons(XOR(), 0.5)
    for x, y in [(0.3, 0.9), (-0.5, 1.5), (0.5, 0.5)]:
        assert np.isclose(net1([x, y])[0], max(x - y, 0) + max(y - x, 0))  # ReLU(x-y)+ReLU(y-x)
    assert net1.n_neurons == 2 and net5.n_neurons == 2
    assert net5([0.5, 0.5])[0] == 0  # separated ReLUs: a dead zone around the diagonal and the middle
    assert corner_neurons(XOR(4)).n_neurons == 8 and corner_neurons(AND(3)).n_neurons == 1
    assert corner_neurons(OR()).n_neurons == 3


def test_lookup_is_one_hot_and_counts():
    f = lookup_function([3, 0, 2, 1], 2, 2, "T")
    assert corner_neurons(f).n_neurons == 4  # a neuron even where the table is 0
    assert f([[0, 0], [1, 1]]).tolist() == [[1, 1], [0, 1]]


def test_invalid_arguments():
    with pytest.raises(ValueError, match="c must be in"):
        corner_neurons(XOR(), 0.0)
    with pytest.raises(ValueError, match="c must be in"):
        corner_neurons(XOR(), 1.5)
    with pytest.raises(ValueError, match="entries"):
        BooleanFunction("bad", 2, 1, (0, 1, 1))
    with pytest.raises(ValueError, match="1-bit|integers"):
        BooleanFunction("bad", 1, 1, (0, 2))
    circ = Circuit()
    a, b = circ.add_inputs(2)
    with pytest.raises(ValueError, match="takes 2 inputs"):
        circ.apply(XOR(), [a])
    with pytest.raises(ValueError, match="0 or 1"):
        circ.const(2)
    with pytest.raises(ValueError, match="shape"):
        circ.set_outputs([a]) or circ.evaluate([[0, 1, 1]])
    with pytest.raises(ValueError, match="bits"):
        circ.evaluate([[0, 2]])
    with pytest.raises(ValueError, match="another circuit"):
        Circuit().set_outputs([a])


def test_full_adder_circuit_evaluates_counts_and_depth():
    circ = Circuit("full adder")
    a, b, cin = circ.add_inputs(3)
    s1 = a ^ b
    total = s1 ^ cin
    carry = (a & b) | (s1 & cin)
    circ.set_outputs([total, carry])
    out = circ.evaluate(CUBE3)
    assert out.tolist() == [[(x + y + z) & 1, (x + y + z) >> 1] for x, y, z in CUBE3]
    assert circ.gate_counts() == {"XOR": 2, "AND": 2, "OR": 1}
    assert circ.depth() == 3  # a^b, then s1&cin, then the OR


def test_not_and_constants_are_affine():
    circ = Circuit()
    (a,) = circ.add_inputs(1)
    circ.set_outputs([~a, a ^ 1, ~~a, circ.const(1)])
    assert circ.depth() == 1  # the XOR with a constant is a gate; NOT is free
    assert NOT.affine_form() == ((0, -1, 1),) and XOR().affine_form() is None
    assert circ.evaluate([[0], [1]]).tolist() == [[1, 1, 0, 1], [0, 0, 1, 1]]
