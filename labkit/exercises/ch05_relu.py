"""Exercises of chapter 05 (Boolean functions as ReLU networks; the corner neurons of
Gerault, Hambitzer, Ronen, Shamir, ePrint 2025/288, Sec. 3)."""
import itertools

import numpy as np

from labkit.circuits import XOR, BooleanFunction, Circuit, corner_neurons, lookup_function
from labkit import plain
from labkit.exercises import FunctionSpec, check_function, exercise, implement
from labkit.exercises.quiz import quiz
from labkit.neural import compile_circuit

#: The corner parameters the 05.2 check draws: dyadic, so weights and biases are exact.
CORNER_CS = (1.0, 0.75, 0.5, 0.375, 0.25, 0.125)


@exercise(
    "05.1",
    "number of corner neurons of a 4-input XOR",
    hint=("A corner-neuron network has one neuron for each input pattern on which the function is 1.",
          "A 4-input XOR is 1 exactly on the patterns with an odd number of ones: count the 4-bit "
          "patterns of weight 1 and of weight 3."),
    where="class",
)
def _xor4_neurons(answer):
    return int(answer) == corner_neurons(XOR(4)).n_neurons


def _corner_reference(pattern: tuple[int, ...], c: float) -> tuple[np.ndarray, float]:
    """(weights, bias) of labkit's network for the function that is 1 on ``pattern`` only."""
    k = len(pattern)
    index = int("".join(map(str, pattern)), 2)
    only = BooleanFunction("corner", k, 1, tuple(int(v == index) for v in range(1 << k)))
    net = corner_neurons(only, c)
    return net.weight[0], float(net.bias[0])


def _draw_corner(rng) -> tuple[tuple[int, ...], float]:
    k = rng.randrange(1, 9)
    return tuple(rng.randrange(2) for _ in range(k)), rng.choice(CORNER_CS)


def _same_neuron(got, expected) -> bool:
    weights, bias = got
    weights = np.asarray(weights, dtype=float)
    return (weights.shape == expected[0].shape
            and np.allclose(weights, expected[0], rtol=0, atol=1e-12)  # exact in dyadic arithmetic
            and abs(float(bias) - expected[1]) <= 1e-12)


implement(
    "05.2",
    "the corner neuron of any pattern: corner_neuron(pattern, c) -> (weights, bias)",
    hint=("The neuron must reach exactly 1 at its pattern and drop to 0 or below as soon as one "
          "input disagrees: each agreeing coordinate adds 1/c to its argument.",
          "Expand the paper's formula: a coordinate with b_i = 1 contributes +x_i/c, one with "
          "b_i = 0 contributes (1 - x_i)/c. Collect the x terms into the weights and every "
          "constant (the ones from the 1 - x_i parts, then -k + c, all over c) into the bias."),
    spec=FunctionSpec("corner_neuron", _corner_reference, _draw_corner, trials=100, equal=_same_neuron,
                      hide=("labkit.circuits:corner_neurons",)),
    where="class",
)


@exercise(
    "05.3",
    "the value of the XOR network with c = 0.5 at (x, y) = (0.75, 0.25)",
    hint=("Write out both neurons of the c = 0.5 XOR network and evaluate each at the point; a "
          "negative argument gives 0.",
          "With c = 0.5 the two neurons are ReLU(2(x - y) - 1) and ReLU(2(y - x) - 1): compute "
          "x - y first, then add the two."),
    where="class",
)
def _xor_half(answer):
    return bool(np.isclose(float(answer), corner_neurons(XOR(), 0.5)([0.75, 0.25])[0]))


CUBE3 = np.array(list(itertools.product([0, 1], repeat=3)))


def _majority(answer):
    if not isinstance(answer, Circuit):
        return False, f"the answer must be a labkit.circuits.Circuit, got {type(answer).__name__}."
    if len(answer.inputs) != 3 or len(answer.outputs) != 1:
        return False, (f"the circuit must have 3 inputs and 1 output, got {len(answer.inputs)} and "
                       f"{len(answer.outputs)}.")
    expected = (CUBE3.sum(axis=1) >= 2).astype(np.uint8)
    network = compile_circuit(answer).forward(CUBE3.astype(np.float64)).numpy()[:, 0]
    for row, got, net_got, want in zip(CUBE3, answer.evaluate(CUBE3)[:, 0], network, expected):
        if got != want:
            return False, f"on input {tuple(row.tolist())} the circuit gives {got}; expected {want}."
        if net_got != want:  # the compiler is exact on bits: only a broken circuit gets here
            return False, f"on input {tuple(row.tolist())} its ReLU network gives {net_got:g}; expected {want}."
    return True, f"the circuit computes the majority on all 8 inputs, and its {answer.depth()}-layer ReLU network agrees"


implement(
    "05.4",
    "a circuit (3 inputs, 1 output) computing the majority of three bits",
    hint=("Majority is 1 when at least two of the three bits are 1: say 'at least two' with ANDs "
          "of pairs and ORs.",
          "AND each pair of inputs and OR the three results (or: x AND y, OR z AND (x XOR y)). On "
          "a Circuit, the operators &, | and ^ on wires add gates; then set the single output."),
    spec=FunctionSpec("majority", checker=_majority, export="labkit.circuits:circuit_data",
                      rebuild="labkit.circuits:circuit_from_data"),
    where="homework",
)


#: The 16 inputs of a 4-bit S-box as bit rows, most significant bit first (row v spells v).
CUBE4 = np.array(list(itertools.product([0, 1], repeat=4)), dtype=np.float64)


def _sbox_reference(sbox: list[int]) -> list[int]:
    """S(0..15) read back from labkit's compiled network of the lookup table (one-hot corners)."""
    circuit = Circuit("4-bit S-box")
    circuit.set_outputs(circuit.lookup(lookup_function(sbox, 4, 4, "S"), circuit.add_inputs(4)))
    out = compile_circuit(circuit).forward(CUBE4).numpy()
    return [int(v) for v in out @ (1 << np.arange(3, -1, -1))]


def _network_outputs(build):
    """Evaluate ``decode @ ReLU(weight @ x + bias)`` from ``build(sbox)`` on the 16 inputs: the
    S-box values it computes, or its raw outputs where they are not bits."""

    def outputs_on_inputs_0_to_15(sbox):
        weight, bias, decode = (np.asarray(a, dtype=np.float64) for a in plain.to_plain(build(list(sbox))))
        n = weight.shape[0] if weight.ndim == 2 else -1
        if weight.shape != (n, 4) or bias.shape != (n,) or decode.shape != (4, n):
            raise ValueError(f"expected weight (N, 4), bias (N,), decode (4, N); got {weight.shape}, "
                             f"{bias.shape}, {decode.shape}")
        out = np.maximum(CUBE4 @ weight.T + bias, 0) @ decode.T
        bits = np.rint(out)
        if not np.allclose(out, bits, rtol=0, atol=1e-9) or not np.isin(bits, (0, 1)).all():
            return [tuple(round(float(v), 3) for v in row) for row in out]
        return [int(v) for v in bits @ (1 << np.arange(3, -1, -1))]

    return outputs_on_inputs_0_to_15


SBOX_TRIALS = 20


def _draw_sbox(rng) -> tuple[list[int]]:
    sbox = list(range(16))
    rng.shuffle(sbox)
    return (sbox,)


def _sbox_network(answer):
    if not callable(answer):
        return False, f"the answer must be a function (def ...), got {type(answer).__name__}."
    ok, message = check_function(_network_outputs(answer), _sbox_reference, _draw_sbox,
                                 trials=SBOX_TRIALS, name="the outputs on inputs 0..15 of sbox_corner_network")
    if ok:
        message = (f"the network of sbox_corner_network computes the S-box on all 16 inputs, for "
                   f"{SBOX_TRIALS} fresh random 4-bit permutations")
    return ok, message


implement(
    "05.5",
    "the corner-neuron network of a 4-bit S-box: sbox_corner_network(sbox) -> (weight, bias, decode)",
    hint=("Use one-hot corners: one neuron per 4-bit input pattern, each giving 1 on its own "
          "pattern and 0 on the other fifteen; then a 0/1 matrix writes out the table entry.",
          "Row v of the weights is +1 where pattern v has a 1 bit and -1 where it has a 0, with "
          "bias 1 minus the number of ones in v (c = 1). Column v of the 4 x 16 decode matrix "
          "holds the bits of the S-box entry at v, most significant first."),
    spec=FunctionSpec("sbox_corner_network", checker=_sbox_network,
                      hide=("labkit.circuits:corner_neurons", "labkit.circuits:lookup_function")),
    where="homework",
)


# --- concept questions (kind "quiz"; the answers are the challenge service's, see quiz.py) ---

quiz(
    "05.6",
    "Which of these functions of bits x and y can one affine map a x + b y + c compute exactly, "
    "with no ReLU?",
    [
        "x AND y, the product of the two inputs.",
        "x xor y, with weights +1 and -1.",
        "x xor k xor 1, for a fixed key bit k.",
        "x OR y, with weights 1 and 1 and a bias of -1.",
    ],
    hint=("A key bit is a constant: x xor k is either x or 1 - x.",
          "For the others, fit a x + b y + c on three rows of the truth table and test the "
          "fourth."),
    where="class",
)

quiz(
    "05.7",
    "f on 3 bits is 1 exactly on 001, 110 and 111. With c = 1, how many of f's corner neurons "
    "have a positive output at x = 111?",
    [
        "One: the corner of 111.",
        "Two: 110 and 111, one bit apart.",
        "Three: each fires where f is 1.",
        "None: corners fire off the bits.",
    ],
    hint=("Compute one corner's pre-activation on a pattern that differs from it in one bit.",
          "For the corner of 110 at 111: sum the matching terms, subtract k = 3 and add c = 1."),
    where="class",
)

quiz(
    "05.8",
    "XOR built with c = 1 (back-to-back) and with c = 0.5 (separated corners): what do the two "
    "networks output at (x, y) = (0.5, 0)?",
    [
        "0.5 with both: equal on bits, equal everywhere.",
        "0.5 with c = 1 and 0 with c = 0.5.",
        "0 with both: each rounds to the nearest bit.",
        "1 with both, as XOR of 1 and 0.",
    ],
    hint=("Correctness on bits pins a network down only at the 2^k corners.",
          "Evaluate the two corners of XOR (patterns 10 and 01) at (0.5, 0) for each c, with the "
          "corner formula of the notebook."),
    where="class",
)
