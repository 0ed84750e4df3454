"""The non-binary-query attack on the DES network (``key_bits=64``): round 1's f(R0, K1) read through
the XOR into L, then K1 S-box by S-box, then the 8 key bits outside K1 searched."""
from __future__ import annotations

from typing import Iterator

import numpy as np

from labkit import des
from labkit.attacks.oracle import rows_to_words
from labkit.attacks.strategies import is_binary, probe_rows, same_rows

__all__ = ["des_attack", "des_first_subkey_positions"]


def des_first_subkey_positions() -> np.ndarray:
    """For each of the 48 bits of DES's first subkey K1, the key bit (0..63) it copies."""
    cd = np.arange(64)[np.asarray(des.PC1) - 1]
    c, d = np.roll(cd[:28], -des.SHIFTS[0]), np.roll(cd[28:], -des.SHIFTS[0])
    return np.concatenate([c, d])[np.asarray(des.PC2) - 1]


def des_attack(strategy: str, e: float, rng: np.random.Generator, max_retries: int,
                max_search_bits: int, state: dict) -> Iterator[np.ndarray]:
    """DES: learn round 1's f(R0, K1) through the XOR into L, then K1 S-box by S-box.

    The DES network carries L0 with ``ReLU(x)`` and XORs it into f(R0, K1) with a two-input XOR
    neuron, symmetric around f_i: the pair (1 - e, 1 + e) for L0 bit i (back-to-back), or
    (1, 1 - e) (separated), collides iff f_i = 1 (pairs around 0 do not work: the carry ReLU cuts
    off negative values). Only a non-collision is conclusive (f_i = 0), so each binary R0 rules
    out the subkey guesses that predict a 1 there; a few R0 values pin K1 down, and the 8 key bits outside K1 are searched with
    :func:`labkit.des.encrypt_many` against the oracle's ciphertext of a base plaintext.
    """
    k1_source = des_first_subkey_positions()
    l_positions = np.asarray(des.IP)[:32] - 1  # L0 bit i is plaintext bit IP[i] - 1
    r_positions = np.asarray(des.IP)[32:] - 1
    p_inverse = np.argsort(np.asarray(des.P) - 1)  # S-box output bit of f bit: s[P[i]-1] = f[i]
    tables = np.asarray(des.SBOX_TABLES)  # (8, 64)
    out_bits = np.unpackbits(tables.astype(np.uint8)[..., None], axis=-1)[..., 4:]  # (8, 64, 4)
    candidates = np.ones((8, 64), dtype=bool)
    weights = 1 << np.arange(5, -1, -1)
    while True:
        base = rng.integers(0, 2, 64, dtype=np.uint8)
        base[l_positions] = 1
        ones = np.ones(32)
        if strategy == "back_to_back":
            blocks = [probe_rows(base, l_positions, ones - e), probe_rows(base, l_positions, ones + e)]
        else:
            blocks = [probe_rows(base, l_positions, ones - e)]
        queries = np.concatenate([base[None, :].astype(np.float64)] + blocks)
        out = yield queries
        state["queries"] += len(queries)
        base_out = out[0]
        if strategy == "back_to_back":
            f = same_rows(out[1:33], out[33:65]).astype(np.uint8)
        else:
            f = same_rows(out[1:33], base_out[None, :]).astype(np.uint8)
        s_out = f[p_inverse].reshape(8, 4)
        expanded = base[r_positions][np.asarray(des.E) - 1].reshape(8, 6) @ weights  # (8,)
        inputs = np.arange(64)[None, :] ^ expanded[:, None]  # S-box input for each subkey guess
        # f_i = 1 always collides; a collision with f_i = 0 can happen by accident deeper in the
        # network, so only a non-collision is conclusive: a guess predicting 1 there is out
        match = np.all(out_bits[np.arange(8)[:, None], inputs] <= s_out[:, None, :], axis=-1)
        candidates &= match
        state["history"].append((state["queries"], int(np.sum(np.log2(64 / np.maximum(candidates.sum(1), 1))))))
        if not candidates.any(axis=1).all():  # a spurious collision removed the true subkey
            state["detected"] += 1
            state["retries"] += 1
            if state["retries"] > max_retries:
                return None
            candidates[:] = True
            continue
        counts = candidates.sum(axis=1)
        if np.prod(counts.astype(float)) * 256 > 2.0 ** max_search_bits:
            continue  # another R0 narrows the candidates down
        if not is_binary(base_out):
            state["detected"] += 1
            return None
        plain = np.uint64(int(rows_to_words(base[None, :])[0]))
        target = np.uint64(int(rows_to_words(base_out[None, :].astype(np.uint8))[0]))
        free = [i for i in range(64) if i % 8 != 7 and i not in set(k1_source.tolist())]
        for combo in np.array(np.meshgrid(*[np.flatnonzero(c) for c in candidates], indexing="ij")).reshape(8, -1).T:
            k1 = np.unpackbits(combo.astype(np.uint8)[:, None], axis=1)[:, 2:].reshape(48)
            fixed = 0
            for bit, pos in zip(k1, k1_source):
                fixed |= int(bit) << (63 - int(pos))
            counter = np.arange(2 ** len(free), dtype=np.uint64)
            keys = np.full(counter.shape, fixed, dtype=np.uint64)
            for j, pos in enumerate(free):
                keys |= ((counter >> np.uint64(j)) & np.uint64(1)) << np.uint64(63 - pos)
            for hit in keys[des.encrypt_many(keys, plain) == target]:
                found = int(hit).to_bytes(8, "big")
                if des.encrypt_block(found, int(plain).to_bytes(8, "big")) == int(target).to_bytes(8, "big"):
                    state["history"].append((state["queries"], 56))
                    return found
        state["detected"] += 1
        state["retries"] += 1
        if state["retries"] > max_retries:
            return None
        candidates[:] = True
