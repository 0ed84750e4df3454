"""labkit.neural compiler: circuits become ReLU networks equal to them, built only from affine maps and ReLU."""
import itertools

import numpy as np
import pytest
import torch
from torch import nn

from labkit.circuits import Circuit, lookup_function
from labkit.neural import NonAffineOperation, check_affine_relu, compile_circuit


def _random_circuit(rng, n_in=5, n_gates=25):
    circ = Circuit("random")
    wires = circ.add_inputs(n_in) + [circ.const(0), circ.const(1)]
    for _ in range(n_gates):
        kind = rng.integers(0, 6)
        pick = lambda k: [wires[i] for i in rng.choice(len(wires), k, replace=False)]  # noqa: E731
        if kind == 0:
            wires.append(circ.xor(*pick(int(rng.integers(2, 5)))))
        elif kind == 1:
            wires.append(circ.and_(*pick(2)))
        elif kind == 2:
            wires.append(circ.or_(*pick(2)))
        elif kind == 3:
            wires.append(~pick(1)[0])
        elif kind == 4:
            table = rng.integers(0, 4, 8).tolist()
            wires += circ.lookup(table, pick(3), 2)
        else:
            wires.append(circ.clip(pick(1)[0]))
    circ.set_outputs(wires[-6:] + wires[:2])
    return circ


@pytest.mark.parametrize("c", [1.0, 0.5, 0.3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_compiled_random_circuits_equal_the_circuit(c, dtype):
    rng = np.random.default_rng(7)
    cube = np.array(list(itertools.product([0, 1], repeat=5)))
    for _ in range(8):
        circ = _random_circuit(rng)
        net = compile_circuit(circ, c=c, dtype=dtype)
        out = net(torch.tensor(cube, dtype=dtype))
        assert out.dtype == dtype
        np.testing.assert_array_equal(out.numpy(), circ.evaluate(cube))  # exact 0/1
        assert net.n_relu_layers == circ.depth()


def test_dense_form_is_the_same_network_on_real_inputs():
    rng = np.random.default_rng(3)
    circ = _random_circuit(rng)
    net = compile_circuit(circ, c=0.5)
    dense = net.to_dense()
    assert sum(isinstance(m, nn.ReLU) for m in dense) == net.n_relu_layers
    x = torch.tensor(rng.uniform(-1, 2, (200, 5)))
    torch.testing.assert_close(dense(x), net(x))
    assert net.parameter_counts()["dense"] == sum(p.numel() for p in dense.parameters())


def test_xor_with_a_constant_is_two_neurons_with_the_key_in_the_bias():
    for key_bit in (0, 1):
        circ = Circuit()
        (x,) = circ.add_inputs(1)
        circ.set_outputs([x ^ key_bit])
        net = compile_circuit(circ, c=1.0)
        assert net.layer_sizes() == [2]
        dense = net.to_dense()
        w, b = dense[0].weight.flatten().tolist(), dense[0].bias.tolist()
        assert sorted(zip(w, b)) == sorted([(1.0, -key_bit), (-1.0, key_bit)])  # ReLU(x-k), ReLU(k-x)
        reals = torch.tensor([[-0.25], [0.25], [0.75], [1.25]], dtype=torch.float64)
        assert net(reals).flatten().tolist() == [abs(v - key_bit) for v in (-0.25, 0.25, 0.75, 1.25)]


def test_values_are_carried_across_layers_and_layers_are_named():
    circ = Circuit()
    a, b, c = circ.add_inputs(3)
    with circ.section("first"):
        t = a ^ b
    with circ.section("second"):
        u = t & c
    circ.set_outputs([u, a])  # a must be carried through both layers
    net = compile_circuit(circ)
    assert net.layer_names() == ["first", "second"]
    assert net.layer_sizes() == [2 + 2, 1 + 1]  # XOR + carries of c and a; AND + carry of a
    assert [row["neurons"] for row in net.describe()] == net.layer_sizes()


def test_graph_check_accepts_affine_relu_and_rejects_everything_else():
    circ = Circuit()
    a, b = circ.add_inputs(2)
    circ.set_outputs([circ.lookup([0, 1, 1, 0], [a, b], 1)[0], ~a])
    counts = check_affine_relu(compile_circuit(circ).graph())
    assert counts["relu_"] + counts["relu"] >= 1

    class Rounding(nn.Module):
        def forward(self, x):
            return torch.round(x) + 1

    class Square(nn.Module):
        def forward(self, x):
            return torch.relu(x) * x

    class Compare(nn.Module):
        def forward(self, x):
            return (x > 0.5).to(x.dtype)

    for bad in (Rounding(), Square(), Compare()):
        with pytest.raises(NonAffineOperation):
            check_affine_relu(bad)


def test_inputs_are_validated():
    circ = Circuit()
    a, b = circ.add_inputs(2)
    circ.set_outputs([a ^ b])
    net = compile_circuit(circ)
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        net(torch.zeros(3, 3))
    with pytest.raises(TypeError):
        compile_circuit("not a circuit")
    with pytest.raises(ValueError, match="no outputs"):
        compile_circuit(Circuit())
    assert net(np.array([[1, 0]])).tolist() == [[1.0]]  # numpy arrays are accepted
