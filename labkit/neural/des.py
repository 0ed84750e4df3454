"""DES as a ReLU network with the key in the weights, built like the natural AES network.

Each round is three ReLU layers: the key XOR on E(R) (2 neurons per bit, the subkey bit in the
bias), the eight S-boxes (64 one-hot corner neurons each, then a 0/1 linear map), and the XOR of
P(S(...)) into L (2 corner neurons per bit). IP, E, P, the swap and IP^-1 are wiring (free
affine maps); the half that waits for its XOR is carried by identity neurons ReLU(x).
Tables and key schedule come from :mod:`labkit.des` (FIPS 46-3).
"""
from __future__ import annotations

import torch

from labkit import checks, des
from labkit.circuits import Circuit, lookup_function
from labkit.neural.cipher import CipherNetwork
from labkit.neural.compiler import compile_circuit
from labkit.neural.defence import protect

__all__ = ["des_circuit", "des_network"]

_SBOXES = tuple(lookup_function(table, 6, 4, f"S{i + 1}") for i, table in enumerate(des.SBOX_TABLES))


def des_circuit(key: bytes, *, rounds: int = des.ROUNDS, clip_inputs: bool = False) -> Circuit:
    """DES encryption under ``key`` (8 bytes, parity ignored) as a Boolean circuit."""
    key = checks.check_bytes(key, 8, what="DES key")
    subkeys = des.expand_key(key, rounds)
    circ = Circuit("DES" if rounds == des.ROUNDS else f"DES ({rounds} rounds)")
    block = circ.add_inputs(64)
    if clip_inputs:
        with circ.section("clip ReLU(x)-ReLU(x-1)"):
            block = [circ.clip(w) for w in block]
    state = [block[i - 1] for i in des.IP]
    left, right = state[:32], state[32:]
    for rnd, subkey in enumerate(subkeys, 1):
        with circ.section(f"round {rnd} key XOR"):
            mixed = [circ.xor(right[e - 1], circ.const(int(k))) for e, k in zip(des.E, subkey)]
        with circ.section(f"round {rnd} S-boxes"):
            sboxed = [w for i, sbox in enumerate(_SBOXES) for w in circ.lookup(sbox, mixed[6 * i : 6 * i + 6])]
        f_out = [sboxed[p - 1] for p in des.P]
        with circ.section(f"round {rnd} XOR into L"):
            left, right = right, [circ.xor(a, b) for a, b in zip(left, f_out)]
    preoutput = right + left
    circ.set_outputs([preoutput[i - 1] for i in des.IP_INV])
    return circ


def des_network(key: bytes, *, protected: bool = False, c: float = 1.0, clip_inputs: bool = False,
                dtype: torch.dtype = torch.float64, rounds: int = des.ROUNDS, chunk_size: int | None = None,
                **protect_options) -> torch.nn.Module:
    """DES under ``key`` as a ReLU network: (n, 64) plaintext bits -> (n, 64) ciphertext bits.

    Options as in :func:`labkit.neural.aes128_network`; ``rounds`` < 16 gives reduced DES.
    """
    if not isinstance(protected, bool):
        raise TypeError("protected must be True or False")
    circ = des_circuit(key, rounds=rounds, clip_inputs=clip_inputs)
    net = compile_circuit(circ, c=c, dtype=dtype, name=circ.name, network_class=CipherNetwork,
                          cipher=circ.name, variant="natural", clip_inputs=clip_inputs, chunk_size=chunk_size)
    if protected:
        return protect(net, **protect_options)
    if protect_options:
        raise TypeError(f"unexpected options {sorted(protect_options)} (they are for protected=True)")
    return net
