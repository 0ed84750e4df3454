"""Exercises of chapter 06, part 1 (06 · Ciphers as networks): ids 06.1-06.4."""
import numpy as np

from labkit.circuits import XOR, corner_neurons
from labkit.exercises import FunctionSpec, exercise, implement
from labkit.neural import aes128_network


@exercise(
    "06.1",
    "neurons in one SubBytes layer of the natural AES-128 network",
    hint=("SubBytes looks every byte up in a table of 256 entries, and the natural network gives "
          "each entry its own one-hot corner neuron.",
          "Count the corners of one byte, then the bytes of a block; or read the layer sizes of the "
          "network you built above (which layer is the first SubBytes?)."),
    where="class",
)
def _subbytes_neurons(answer):
    return int(answer) == aes128_network(bytes(16)).layer_sizes()[1]


@exercise(
    "06.2",
    "ReLU layers of the T-table AES network with clipped inputs",
    hint=("The T-table variant merges SubBytes with the MixColumns lookup, so every round but the "
          "last loses a layer; the input clip costs something in front.",
          "Start from the table of sizes above: find the T-table row and ask what the clip "
          "ReLU(x) - ReLU(x - 1) adds to the depth."),
    where="class",
)
def _ttable_layers(answer):
    return int(answer) == aes128_network(bytes(16), variant="ttable", clip_inputs=True).n_relu_layers


def _xor_neurons_reference(x: float, k: int, c: float) -> float:
    """labkit's XOR corner neurons (labkit.circuits) on the real input x and the key bit k."""
    return float(corner_neurons(XOR(), c)(np.array([x, float(k)]))[0])


def _draw_xor_input(rng):
    x = rng.randrange(-32, 49) / 16  # dyadic values in [-2, 3]: every formula order is exact
    return x, rng.randrange(2), rng.choice((1.0, 0.5, 0.25))


implement(
    "06.3",
    "xor_neurons(x, k, c): the first layer's two corner neurons computing x XOR k on a real x",
    hint=("XOR has two corners where it is 1, (1, 0) and (0, 1): one neuron each, with the key bit "
          "folded into the bias. On bits the sum is x XOR k; the formula still answers for any real x.",
          "A corner neuron for the pattern b adds x_i where b_i = 1 and 1 - x_i where b_i = 0, "
          "subtracts k - c (k = 2 inputs here), divides by c and applies ReLU. Write the two "
          "neurons with the key bit as the second input and add them."),
    spec=FunctionSpec("xor_neurons", _xor_neurons_reference, _draw_xor_input, trials=60,
                      equal=lambda got, want: abs(float(got) - want) <= 1e-12,
                      hide=("labkit.circuits:corner_neurons",)),
    where="class",
)


@exercise(
    "06.4",
    "with c = 1, which key bit k makes the inputs 1 - e and 1 + e give the same first-layer XOR output?",
    hint=("With c = 1 the XOR neuron pair computes the distance between x and k.",
          "Compare the distances of 1 - e and 1 + e to k = 0 and to k = 1."),
    where="class",
)
def _colliding_key_bit(answer):
    e = 0.25
    xor = corner_neurons(XOR(), 1.0)
    colliding = [k for k in (0, 1) if np.isclose(xor([1 - e, k])[0], xor([1 + e, k])[0])]
    return colliding == [int(answer)]
