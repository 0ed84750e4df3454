"""Exercises of chapter 05 (Boolean functions as ReLU networks)."""
import itertools

import numpy as np

from labkit.circuits import XOR, BooleanFunction, Circuit, corner_neurons
from labkit.exercises import exercise
from labkit.exercises.quiz import quiz


@exercise(
    "05.1",
    "number of corner neurons of a 4-input XOR",
    hint="One corner per input pattern where the function is 1: how many 4-bit patterns have odd weight?",
)
def _xor4_neurons(answer):
    return int(answer) == corner_neurons(XOR(4)).n_neurons


@exercise(
    "05.2",
    "weights and bias of the corner neuron of pattern (1, 0, 1) with c = 1",
    hint="weight +1/c where the pattern has a 1, -1/c where it has a 0; bias = 1 - popcount/c.",
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
)
def _xor_half(answer):
    return bool(np.isclose(float(answer), corner_neurons(XOR(), 0.5)([0.75, 0.25])[0]))


# --- concept questions (kind "quiz"; answers stored as salted digests, see quiz.py) ---

quiz(
    '05.5',
    'On bits, XOR with a constant key bit k is affine: x xor k = k + (1 - 2k) x. Why can the XOR of two *state* bits x xor y not be folded into an affine map the same way?',
    [
     'It can: use weights +1 and -1.',
     'Because x xor y = x + y - 2xy has a product of two inputs: an affine a x + b y + c that is right on (0,0), (1,0), (0,1) has c = 0, a = b = 1 and gives 2 on (1,1), so a ReLU (corner neurons) is needed.',
     'Because floating point cannot represent XOR.',
     'Because XOR is not invertible.',
    ],
    "303f2a9686b33b69e12c2f6ce1ef85538aa78f2dd71d27f80606a097551c882d",
    hint='Fit a x + b y + c to the four rows of the XOR truth table.',
)

quiz(
    '05.6',
    'Why does a Boolean f equal the sum of its corner neurons on binary inputs (0 < c <= 1)?',
    [
     'Because the corners are trained to fit f.',
     'Because ReLU is linear on bits.',
     'Because on a bit pattern x only the corner of pattern x fires (value 1): every other pattern differs in at least one bit, which lowers its pre-activation to (c - 1)/c <= 0.',
     'Because corner neurons compute AND, and every f is an AND.',
    ],
    "774648387024cfdbb1fa59a2235801d1a0666bbbbe0a1409e2f0d695a0ffafab",
    hint="Compute one corner's pre-activation on a pattern that differs from it in one bit.",
)

quiz(
    '05.7',
    'Two networks compute the same Boolean function on bits (say XOR with c = 1 and with c = 0.5). Why can they differ on real inputs?',
    [
     'They cannot: equal on bits means equal everywhere.',
     'Because a ReLU network is piecewise linear and is only pinned down at the 2^k corners; between them each construction interpolates in its own way, and those off-bit values are what an attacker queries.',
     'Because of floating-point rounding only.',
     'Because c changes the function on bits too.',
    ],
    "f37ef2d21f5dd446d7254b66f75b072f48bc5b13db78416061e46202c582e09a",
    hint='How many points does correctness on bits constrain, and what about the rest of R^k?',
)
