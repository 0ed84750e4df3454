"""Exercises of chapter 06, part 1 (AES and DES as ReLU networks)."""
import numpy as np

from labkit import aes
from labkit.circuits import XOR, corner_neurons
from labkit.exercises import exercise


@exercise(
    "06.1",
    "neurons in one SubBytes layer of the natural AES-128 network",
    hint="256 one-hot corner neurons per byte, and a block has 16 bytes.",
)
def _subbytes_neurons(answer):
    from labkit.neural import aes128_network

    return int(answer) == aes128_network(bytes(16)).layer_sizes()[1]


@exercise(
    "06.2",
    "ReLU layers of the T-table AES network with clipped inputs",
    hint="The T-table variant has 30 ReLU layers; the clip ReLU(x) - ReLU(x - 1) adds one in front.",
)
def _ttable_layers(answer):
    from labkit.neural import aes128_network

    return int(answer) == aes128_network(bytes(16), variant="ttable", clip_inputs=True).n_relu_layers


@exercise(
    "06.3",
    "hex ciphertext of b'ReLU networks!!!' under the key 000102...0f, computed by the network",
    hint="net = aes128_network(bytes(range(16))); net.encrypt(b'ReLU networks!!!').hex()",
)
def _network_ciphertext(answer):
    return str(answer).strip().lower() == aes.encrypt_block(bytes(range(16)), b"ReLU networks!!!").hex()


@exercise(
    "06.4",
    "with c = 1, which key bit k makes the inputs 1 - e and 1 + e give the same first-layer XOR output?",
    hint="The XOR neuron pair computes |x - k|. Compare |1 - e - k| and |1 + e - k| for k = 0 and k = 1.",
)
def _colliding_key_bit(answer):
    e = 0.25
    xor = corner_neurons(XOR(), 1.0)
    colliding = [k for k in (0, 1) if np.isclose(xor([1 - e, k])[0], xor([1 + e, k])[0])]
    return colliding == [int(answer)]
