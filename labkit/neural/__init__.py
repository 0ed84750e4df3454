"""Ciphers compiled into ReLU networks (Deep Neural Cryptography, ePrint 2025/288).

- :func:`compile_circuit`: any :class:`labkit.circuits.Circuit` -> a ReLU network;
- :func:`aes128_network`, :func:`aes256_network`, :func:`des_network`: the "natural" cipher networks with the key in the
  weights, mapping (n, 128) / (n, 64) plaintext bits (FIPS order, MSB first) to ciphertext bits;
- :class:`ReluNetwork`: the network module (``layer_sizes()``, ``activations()``, ``to_dense()``,
  ``graph()``), and :func:`check_affine_relu` (:mod:`~labkit.neural.verify`), the proof that a
  graph is affine maps and ReLU only;
- :mod:`~labkit.neural.engine`: how fast ``net(x)`` runs (fused C kernel or torch over threads),
  the one place evaluation speed lives; :class:`~labkit.neural.stack.NetworkStack`: one network
  per key, evaluated together.
"""
from labkit.neural.aes import (
    PAPER_SIZES, aes128_circuit, aes128_network, aes256_circuit, aes256_network, round_key_biases,
)
from labkit.neural.cipher import CipherNetwork
from labkit.neural.compiler import compile_circuit
from labkit.neural.des import des_circuit, des_network
from labkit.neural.layers import NeuronGroup, ReluLayer, ReluNetwork
from labkit.neural.stack import NetworkStack
from labkit.neural.verify import NonAffineOperation, check_affine_relu

# Imported eagerly, not on demand: the cipher networks' modules add 0.07-0.11 s and 2 MiB to the
# 4.5-5.4 s and 218 MiB of importing labkit.neural itself (torch), measured in one process.
__all__ = ["compile_circuit", "ReluNetwork", "ReluLayer", "NeuronGroup", "check_affine_relu",
           "NonAffineOperation", "aes128_network", "aes256_network", "aes256_circuit", "des_network",
           "aes128_circuit", "des_circuit", "CipherNetwork", "PAPER_SIZES", "round_key_biases", "NetworkStack"]
