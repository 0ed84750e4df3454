"""Exercises of chapter 05 (Boolean functions as ReLU networks)."""
import itertools

import numpy as np

from labkit.circuits import XOR, BooleanFunction, Circuit, corner_neurons
from labkit.exercises import exercise


@exercise(
    "05.1",
    "number of corner neurons of a 4-input XOR",
    hint="One corner per input pattern where the function is 1: how many 4-bit patterns have odd weight?",
    solution="labkit.circuits.corner_neurons(labkit.circuits.XOR(4)).n_neurons  # 8 = 2**3",
)
def _xor4_neurons(answer):
    return int(answer) == corner_neurons(XOR(4)).n_neurons


@exercise(
    "05.2",
    "weights and bias of the corner neuron of pattern (1, 0, 1) with c = 1",
    hint="weight +1/c where the pattern has a 1, -1/c where it has a 0; bias = 1 - popcount/c.",
    solution="(np.array([1, -1, 1]), -1.0): ReLU(x1 - x2 + x3 - 1) is 1 only at (1, 0, 1)",
)
def _corner_101(answer):
    weight, bias = answer
    only_101 = BooleanFunction("101", 3, 1, tuple(int(v == 0b101) for v in range(8)))
    net = corner_neurons(only_101, 1.0)
    return bool(np.allclose(np.asarray(weight, dtype=float), net.weight[0]) and np.isclose(float(bias), net.bias[0]))


@exercise(
    "05.3",
    "a circuit (3 inputs, 1 output) computing the majority of three bits",
    hint="maj(a, b, c) = (a AND b) OR (c AND (a XOR b)); build it with Circuit().add_inputs(3) and set_outputs.",
    solution=("circ = Circuit('majority'); a, b, c = circ.add_inputs(3)\n"
              "circ.set_outputs([(a & b) | (c & (a ^ b))])"),
)
def _majority(answer):
    from labkit.neural import compile_circuit

    if not isinstance(answer, Circuit):
        return False, "expected a labkit.circuits.Circuit"
    if len(answer.inputs) != 3 or len(answer.outputs) != 1:
        return False, "the circuit needs 3 inputs and 1 output"
    cube = np.array(list(itertools.product([0, 1], repeat=3)))
    expected = (cube.sum(axis=1) >= 2).astype(np.uint8)[:, None]
    if not np.array_equal(answer.evaluate(cube), expected):
        return False, "the circuit does not compute the majority"
    network = compile_circuit(answer).forward(cube.astype(np.float64)).numpy()
    return bool(np.array_equal(network, expected)), f"and its {answer.depth()}-layer ReLU network agrees"


@exercise(
    "05.4",
    "the value of the XOR network with c = 0.5 at (x, y) = (0.75, 0.25)",
    hint="Both neurons are ReLU((±(x - y) - 1 + c) / c); with c = 0.5 what is x - y - 0.5?",
    solution="corner_neurons(XOR(), 0.5)([0.75, 0.25])[0] == 0.0 (with c = 1 it would be 0.5)",
)
def _xor_half(answer):
    return bool(np.isclose(float(answer), corner_neurons(XOR(), 0.5)([0.75, 0.25])[0]))
