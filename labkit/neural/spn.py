"""A toy substitution-permutation network (Heys' tutorial cipher, reduced to two rounds) as a
natural ReLU network: a cipher small enough to attack its second round in seconds.

H. M. Heys, "A Tutorial on Linear and Differential Cryptanalysis", Cryptologia 26(3), 2002: a
16-bit block, four 4-bit S-boxes (``HEYS_SBOX``) and a bit permutation that sends bit ``4a + b`` to
``4b + a``. Here it has ``TOY_ROUNDS = 2`` rounds and three independent 16-bit round keys::

    x -> XOR k0 -> S -> P -> XOR k1 -> S -> XOR k2

compiled like the AES network (:mod:`labkit.neural.aes`): a 2-neuron XOR per bit with the key bit
in the bias, 16 one-hot corners per S-box, P as wiring. Bits MSB first, as everywhere in the lab.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from labkit import bits, spn
from labkit.circuits import Circuit, lookup_function
from labkit.neural.compiler import compile_circuit
from labkit.neural.layers import ReluNetwork

__all__ = ["HEYS_SBOX", "HEYS_PERMUTATION", "TOY_ROUNDS", "TOY_BITS", "toy_spn_encrypt", "toy_spn_circuit",
           "toy_spn_network", "toy_spn_prefix_network", "check_round_keys"]

#: Heys' S-box (his Table 1) and bit permutation, from labkit.spn (the one place they are written).
HEYS_SBOX = spn.SBOX
#: output bit j takes input bit HEYS_PERMUTATION[j] (a transpose, its own inverse)
HEYS_PERMUTATION = spn.PERMUTATION
TOY_ROUNDS = 2
TOY_BITS = 16

_SBOX = lookup_function(HEYS_SBOX, 4, 4, "Heys S-box")


def check_round_keys(round_keys: Sequence[int], count: int = TOY_ROUNDS + 1) -> tuple[int, ...]:
    """``count`` round keys, each an int in [0, 2**16); raises TypeError/ValueError otherwise."""
    keys = tuple(round_keys)
    if len(keys) != count:
        raise ValueError(f"expected {count} round keys of 16 bits, got {len(keys)}")
    for k in keys:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise TypeError(f"round keys must be ints, got {type(k).__name__}")
        if not 0 <= int(k) < 1 << TOY_BITS:
            raise ValueError(f"round keys must lie in [0, 2**16), got {k}")
    return tuple(int(k) for k in keys)


def toy_spn_encrypt(round_keys: Sequence[int], block: int) -> int:
    """The toy cipher on integers with labkit.spn's S and P layers (the reference the network is
    checked against): XOR k0, S, P, XOR k1, S, XOR k2."""
    k0, k1, k2 = check_round_keys(round_keys)
    if not 0 <= int(block) < 1 << TOY_BITS:
        raise ValueError(f"block must lie in [0, 2**16), got {block}")
    state = spn.permute(spn.substitute(int(block) ^ k0))
    return spn.substitute(state ^ k1) ^ k2


def _key_layer(circ: Circuit, state: list, key: int) -> list:
    return [circ.xor(w, circ.const(int(b))) for w, b in zip(state, bits.int_to_bits(key, TOY_BITS))]


def _substitute_layer(circ: Circuit, state: list) -> list:
    return [w for n in range(4) for w in circ.lookup(_SBOX, state[4 * n:4 * n + 4])]


def _round_one(circ: Circuit, state: list, k0: int) -> list:
    """XOR k0, S, P: the first round, shared by the cipher and the attacker's absorbed copy."""
    with circ.section("XOR k0"):
        state = _key_layer(circ, state, k0)
    with circ.section("round 1 S-boxes"):
        state = _substitute_layer(circ, state)
    return [state[i] for i in HEYS_PERMUTATION]


def toy_spn_circuit(round_keys: Sequence[int]) -> Circuit:
    """The two-round toy cipher under ``round_keys`` (k0, k1, k2) as a Boolean circuit."""
    k0, k1, k2 = check_round_keys(round_keys)
    circ = Circuit("toy SPN (2 rounds)")
    state = _round_one(circ, circ.add_inputs(TOY_BITS), k0)
    with circ.section("XOR k1"):
        state = _key_layer(circ, state, k1)
    with circ.section("round 2 S-boxes"):
        state = _substitute_layer(circ, state)
    with circ.section("XOR k2"):
        state = _key_layer(circ, state, k2)
    circ.set_outputs(state)
    return circ


def toy_spn_network(round_keys: Sequence[int], *, c: float = 1.0,
                    dtype: torch.dtype = torch.float64) -> ReluNetwork:
    """The natural ReLU network of the toy cipher: (n, 16) plaintext bits -> (n, 16) ciphertext bits."""
    return compile_circuit(toy_spn_circuit(round_keys), c=c, dtype=dtype, name="toy SPN")


def toy_spn_prefix_network(k0: int, *, c: float = 1.0, dtype: torch.dtype = torch.float64) -> ReluNetwork:
    """Round 1 alone under a known k0 (XOR k0, S, P): what the attacker who knows k0 can compute
    himself, on any real input, of the values that reach the XOR k1 neurons of the full network."""
    (k0,) = check_round_keys([k0], 1)
    circ = Circuit("toy SPN round 1")
    circ.set_outputs(_round_one(circ, circ.add_inputs(TOY_BITS), k0))
    return compile_circuit(circ, c=c, dtype=dtype, name="toy SPN round 1")
