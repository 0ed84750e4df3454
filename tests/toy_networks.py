"""Small affine+ReLU networks with the key XORed in at the input, built here from torch Linear and
ReLU only, so the attacks and the defence are tested independently of labkit.neural."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from labkit import aes


def xor_key_layers(key_bits: np.ndarray, c: float = 1.0, *, clip: bool = False, dtype=torch.float64):
    """[clip] + XOR(x_i, k_i) as two corner neurons per bit with the key bit in the bias."""
    n = len(key_bits)
    k = torch.as_tensor(np.asarray(key_bits, dtype=np.float64), dtype=dtype)
    layers = []
    if clip:  # ReLU(x) - ReLU(x - 1)
        clip_in = nn.Linear(n, 2 * n, dtype=dtype)
        clip_out = nn.Linear(2 * n, n, dtype=dtype)
        with torch.no_grad():
            eye = torch.eye(n, dtype=dtype)
            clip_in.weight.copy_(torch.cat([eye, eye]))
            clip_in.bias.copy_(torch.cat([torch.zeros(n, dtype=dtype), -torch.ones(n, dtype=dtype)]))
            clip_out.weight.copy_(torch.cat([eye, -eye], dim=1))
            clip_out.bias.zero_()
        layers += [clip_in, nn.ReLU(), clip_out]
    xor_in = nn.Linear(n, 2 * n, dtype=dtype)
    xor_out = nn.Linear(2 * n, n, dtype=dtype)
    with torch.no_grad():
        eye = torch.eye(n, dtype=dtype)
        # corners (1,0): (x - k - (1 - c))/c and (0,1): (k - x - (1 - c))/c
        xor_in.weight.copy_(torch.cat([eye, -eye]) / c)
        xor_in.bias.copy_(torch.cat([-k - (1 - c), k - (1 - c)]) / c)
        xor_out.weight.copy_(torch.cat([eye, eye], dim=1))
        xor_out.bias.zero_()
    return layers + [xor_in, nn.ReLU(), xor_out]


def sbox_layers(n_bytes: int, table, *, dtype=torch.float64):
    """One-hot corner per byte value (c = 1) followed by the 0/1 map to the S-box output bits."""
    patterns = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).astype(np.float64)
    outputs = np.unpackbits(np.asarray(table, dtype=np.uint8)[:, None], axis=1).astype(np.float64)
    corner = nn.Linear(8 * n_bytes, 256 * n_bytes, dtype=dtype)
    to_bits = nn.Linear(256 * n_bytes, 8 * n_bytes, dtype=dtype)
    w_in = np.zeros((256 * n_bytes, 8 * n_bytes))
    b_in = np.zeros(256 * n_bytes)
    w_out = np.zeros((8 * n_bytes, 256 * n_bytes))
    for j in range(n_bytes):
        rows, cols = slice(256 * j, 256 * j + 256), slice(8 * j, 8 * j + 8)
        w_in[rows, cols] = 2 * patterns - 1  # + x_i where b_i = 1, - x_i where b_i = 0
        b_in[rows] = (1 - patterns).sum(axis=1) - 8 + 1
        w_out[cols, rows] = outputs.T
    with torch.no_grad():
        corner.weight.copy_(torch.as_tensor(w_in))
        corner.bias.copy_(torch.as_tensor(b_in))
        to_bits.weight.copy_(torch.as_tensor(w_out))
        to_bits.bias.zero_()
    return [corner, nn.ReLU(), to_bits]


def permutation_layer(perm: np.ndarray, *, dtype=torch.float64):
    layer = nn.Linear(len(perm), len(perm), dtype=dtype)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(len(perm), dtype=dtype)[perm])
        layer.bias.zero_()
    return [layer]


PERM = np.random.default_rng(5).permutation(128)


def toy_spn(key: bytes, *, c: float = 1.0, clip: bool = False, dtype=torch.float64) -> nn.Sequential:
    """x -> bit permutation of AES S-boxes of (x xor key): 128 bits, a network of Linear and ReLU."""
    key_bits = np.unpackbits(np.frombuffer(key, dtype=np.uint8))
    return nn.Sequential(*xor_key_layers(key_bits, c, clip=clip, dtype=dtype),
                         *sbox_layers(16, aes.SBOX, dtype=dtype),
                         *permutation_layer(PERM, dtype=dtype)).requires_grad_(False)


def toy_spn_reference(key: bytes, plaintext_bits: np.ndarray) -> np.ndarray:
    """The binary cipher that :func:`toy_spn` computes, written without any network."""
    blocks = np.packbits(np.asarray(plaintext_bits, dtype=np.uint8), axis=1)
    key_arr = np.frombuffer(key, dtype=np.uint8)
    out = np.unpackbits(np.asarray(aes.SBOX, dtype=np.uint8)[blocks ^ key_arr], axis=1)
    return out[:, PERM]


def toy_xor_permute(key: bytes, *, c: float = 1.0, dtype=torch.float64) -> nn.Sequential:
    """The smallest keyed network: XOR the key in, then permute the bits."""
    key_bits = np.unpackbits(np.frombuffer(key, dtype=np.uint8))
    return nn.Sequential(*xor_key_layers(key_bits, c, dtype=dtype),
                         *permutation_layer(PERM[: len(key_bits)] if len(key_bits) == 128
                                            else np.random.default_rng(1).permutation(len(key_bits)),
                                            dtype=dtype)).requires_grad_(False)
