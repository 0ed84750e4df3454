"""AES-128 and AES-256 as ReLU networks with the key in the weights (the paper's "natural" network).

Deep Neural Cryptography (ePrint 2025/288), section 4: AddRoundKey is a 2-neuron XOR per bit
with the round-key bit in the bias; SubBytes is 256 one-hot corner neurons per byte followed by a
0/1 linear map; ShiftRows is wiring; MixColumns looks up (x, 2x, 3x) with another 256 one-hot
corners per byte and XORs four bytes with 8 corners per bit. That gives the authors' 39 ReLU
layers and 89,856 neurons; the T-table variant looks up (S(x), 2S(x), 3S(x)) at once:
30 layers, 52,992 neurons.

The network is compiled from an ordinary Boolean circuit (:func:`aes128_circuit`), so every
number above is counted, not hard-coded. Tables come from :mod:`labkit.aes` and :mod:`labkit.gf256`.
:func:`aes256_network` compiles the same rounds for a 32-byte key (14 rounds, FIPS-197 5.2): only
its first round key w0..w3 meets the plaintext in the first layer.
"""
from __future__ import annotations

import numpy as np
import torch

from labkit import aes, bits, checks
from labkit.circuits import Circuit, lookup_function
from labkit import gf256
from labkit.neural.cipher import CipherNetwork
from labkit.neural.compiler import compile_circuit
from labkit.neural.defence import protect

__all__ = ["aes128_circuit", "aes128_network", "aes256_circuit", "aes256_network", "round_key_biases", "PAPER_SIZES", "VARIANTS"]

#: The sizes the paper reports (ReLU layers, ReLU neurons).
PAPER_SIZES = {"natural": (39, 89_856), "ttable": (30, 52_992)}
VARIANTS = tuple(PAPER_SIZES)

# (x, 2x, 3x) and (S(x), 2S(x), 3S(x)) as 24-bit lookup tables: output bits 0-7 are x, 8-15 2x, 16-23 3x
_MUL123 = lookup_function([(v << 16) | (gf256.mul(2, v) << 8) | gf256.mul(3, v) for v in range(256)],
                          8, 24, "MUL(x,2x,3x)")
_SBOX = lookup_function(aes.SBOX, 8, 8, "S-box")
_TTABLE = lookup_function([(s << 16) | (gf256.mul(2, s) << 8) | gf256.mul(3, s) for s in aes.SBOX],
                          8, 24, "T-table S(x),2S(x),3S(x)")
_ROUND_KEY_LAYER = "AddRoundKey {}"  # the section (hence layer) name of round r's key XOR
_SHIFT_ROWS = aes.shift_rows(np.arange(16, dtype=np.uint8)).tolist()  # new byte j = old byte _SHIFT_ROWS[j]


def _add_round_key(circ: Circuit, state: list, round_key: bytes) -> list:
    key_bits = bits.bytes_to_bits(round_key)
    return [circ.xor(w, circ.const(int(k))) for w, k in zip(state, key_bits)]


def _mix_columns_xor(circ: Circuit, products: list) -> list:
    """products[byte] = 24 wires (x, 2x, 3x); output byte (r, c) = 2a_r ^ 3a_(r+1) ^ a_(r+2) ^ a_(r+3)."""
    out = []
    for col in range(4):
        a = products[4 * col : 4 * col + 4]
        for r in range(4):
            terms = (a[r][8:16], a[(r + 1) % 4][16:24], a[(r + 2) % 4][0:8], a[(r + 3) % 4][0:8])
            out += [circ.xor(*(t[bit] for t in terms)) for bit in range(8)]
    return out


def _aes_circuit(key: bytes, name: str, variant: str, clip_inputs: bool) -> Circuit:
    """AES encryption under ``key`` (16 or 32 bytes, 10 or 14 rounds) as a Boolean circuit."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    round_keys = aes.expand_key(key)
    rounds = len(round_keys) - 1
    circ = Circuit(f"{name} ({variant})")
    state = circ.add_inputs(128)
    if clip_inputs:
        with circ.section("clip ReLU(x)-ReLU(x-1)"):
            state = [circ.clip(w) for w in state]
    with circ.section(_ROUND_KEY_LAYER.format(0)):
        state = _add_round_key(circ, state, round_keys[0])
    for rnd in range(1, rounds + 1):
        byte = [state[8 * i : 8 * i + 8] for i in range(16)]
        if variant == "ttable" and rnd < rounds:
            with circ.section(f"round {rnd} T-table lookups"):
                looked = [circ.lookup(_TTABLE, b) for b in byte]
            shifted = [looked[_SHIFT_ROWS[j]] for j in range(16)]
            with circ.section(f"round {rnd} MixColumns XOR4"):
                state = _mix_columns_xor(circ, shifted)
        else:
            with circ.section(f"round {rnd} SubBytes"):
                subbed = [circ.lookup(_SBOX, b) for b in byte]
            shifted = [subbed[_SHIFT_ROWS[j]] for j in range(16)]
            if rnd < rounds:
                with circ.section(f"round {rnd} MixColumns lookups"):
                    products = [circ.lookup(_MUL123, b) for b in shifted]
                with circ.section(f"round {rnd} MixColumns XOR4"):
                    state = _mix_columns_xor(circ, products)
            else:
                state = [w for b in shifted for w in b]
        with circ.section(_ROUND_KEY_LAYER.format(rnd)):
            state = _add_round_key(circ, state, round_keys[rnd])
    circ.set_outputs(state)
    return circ


def aes128_circuit(key: bytes, *, variant: str = "natural", clip_inputs: bool = False) -> Circuit:
    """AES-128 encryption under ``key`` as a Boolean circuit (key bits are constant wires)."""
    return _aes_circuit(checks.check_bytes(key, 16, what="AES-128 key"), "AES-128", variant, clip_inputs)


def aes256_circuit(key: bytes, *, variant: str = "natural", clip_inputs: bool = False) -> Circuit:
    """AES-256 encryption under a 32-byte ``key`` as a Boolean circuit: 14 rounds, 15 round keys."""
    return _aes_circuit(checks.check_bytes(key, 32, what="AES-256 key"), "AES-256", variant, clip_inputs)


def _compile_aes(circ: Circuit, cipher: str, *, protected: bool, c: float, clip_inputs: bool,
                 dtype: torch.dtype, variant: str, chunk_size: int | None, protect_options: dict):
    if not isinstance(protected, bool):
        raise TypeError("protected must be True or False")
    net = compile_circuit(circ, c=c, dtype=dtype, name=cipher, network_class=CipherNetwork,
                          cipher=cipher, variant=variant, clip_inputs=clip_inputs, chunk_size=chunk_size)
    if protected:
        return protect(net, **protect_options)
    if protect_options:
        raise TypeError(f"unexpected options {sorted(protect_options)} (they are for protected=True)")
    return net


def aes128_network(key: bytes, *, protected: bool = False, c: float = 1.0, clip_inputs: bool = False,
                   dtype: torch.dtype = torch.float64, variant: str = "natural",
                   chunk_size: int | None = None, **protect_options) -> torch.nn.Module:
    """AES-128 under ``key`` as a ReLU network: (n, 128) plaintext bits -> (n, 128) ciphertext bits.

    ``c`` in (0, 1]: 1 gives back-to-back XORs ``ReLU(x-k) + ReLU(k-x)``, c < 1 separated ReLUs.
    ``clip_inputs`` puts ``ReLU(x) - ReLU(x-1)`` in front; otherwise the first layer is
    AddRoundKey. ``variant``: "natural" (39 layers) or "ttable" (30 layers). ``protected=True``
    wraps the network in the paper's defence (:func:`labkit.neural.defence.protect`, given
    ``protect_options``).
    """
    circ = aes128_circuit(key, variant=variant, clip_inputs=clip_inputs)
    return _compile_aes(circ, "AES-128", protected=protected, c=c, clip_inputs=clip_inputs, dtype=dtype,
                        variant=variant, chunk_size=chunk_size, protect_options=protect_options)


def aes256_network(key: bytes, *, protected: bool = False, c: float = 1.0, clip_inputs: bool = False,
                   dtype: torch.dtype = torch.float64, variant: str = "natural",
                   chunk_size: int | None = None, **protect_options) -> torch.nn.Module:
    """AES-256 under a 32-byte ``key`` as a ReLU network: (n, 128) plaintext bits -> (n, 128)
    ciphertext bits, built like :func:`aes128_network` over 14 rounds (natural: 55 ReLU layers).

    The first layer XORs only the first round key w0..w3 (the key's first 16 bytes) into the
    plaintext; w4..w7 enter after round 1's SubBytes and MixColumns.
    """
    circ = aes256_circuit(key, variant=variant, clip_inputs=clip_inputs)
    return _compile_aes(circ, "AES-256", protected=protected, c=c, clip_inputs=clip_inputs, dtype=dtype,
                        variant=variant, chunk_size=chunk_size, protect_options=protect_options)


def round_key_biases(net, key: bytes, keys) -> dict[tuple[int, int], torch.Tensor]:
    """Where the key sits in a natural AES-128 network built for ``key``, and its value for other keys.

    The round keys enter only the AddRoundKey biases, two neurons per bit, as ``bias(k_i) =
    bias(0) or bias(1)``. Returns ``{(layer index, group index): tensor (len(keys), *bias shape)}``:
    each AddRoundKey group's bias buffer as it would be under each of ``keys`` (how
    :class:`labkit.neural.stack.NetworkStack` runs one network per key).
    """
    key = checks.check_bytes(key, 16, what="AES-128 key")
    keys = [checks.check_bytes(k, 16, what="AES-128 key") for k in keys]
    if not keys:
        raise ValueError("keys must not be empty")
    names = net.layer_names()
    template_bits = np.unpackbits(np.frombuffer(b"".join(aes.expand_key(key)), np.uint8)).reshape(11, 128)
    round_bits = np.stack([np.unpackbits(np.frombuffer(b"".join(aes.expand_key(k)), np.uint8)).reshape(11, 128)
                           for k in keys])  # (K, 11, 128)
    biases = {}
    for r in range(11):
        name = _ROUND_KEY_LAYER.format(r)
        if name not in names:
            raise ValueError(f"{net.name!r} has no layer {name!r}: not a natural AES-128 network")
        layer = names.index(name)
        group = net.layers[layer].groups[0]
        per_gate = group.bias[..., 0].T  # (128 gates, neurons per XOR)
        bit = template_bits[r]
        if bit.min() == bit.max():
            raise ValueError("the network's round key must contain both bit values")
        zero, one = per_gate[np.flatnonzero(bit == 0)], per_gate[np.flatnonzero(bit == 1)]
        if per_gate.shape[0] != 128 or not (torch.all(zero == zero[0]) and torch.all(one == one[0])):
            raise ValueError(f"{name}: biases are not a function of the key bit (was the network built for this key?)")
        choice = torch.as_tensor(round_bits[:, r, :, None].astype(bool))
        stacked = torch.where(choice, one[0], zero[0])  # (K, 128, neurons per XOR)
        biases[layer, 0] = stacked.permute(0, 2, 1)[..., None].contiguous()  # (K, neurons, 128, 1)
    return biases
