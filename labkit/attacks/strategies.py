"""The per-key attack procedures on AES-like key-XOR inputs (ePrint 2025/288 Sec. 5; Kim and Lee's
float trigger). Each is a generator: it yields a batch of queries and receives the oracle's
outputs, so :func:`labkit.attacks.recover_keys` can pool many keys' queries into shared batches."""
from __future__ import annotations

from typing import Callable, Iterator

import numpy as np

from labkit import bits as _bits

__all__ = ["STRATEGIES", "DEFAULT_EPSILON", "AES_SBOX_ZERO", "same_rows", "is_binary", "probe_rows",
           "bitwise_attack", "clipped_attack", "float_trigger_attack"]

STRATEGIES = ("back_to_back", "separated", "clipped", "float_trigger")

#: Default distance e of the probes from the binary values, per strategy (paper Sec. 5).
DEFAULT_EPSILON = {"back_to_back": 0.25, "separated": 0.4, "clipped": 1 / 64, "float_trigger": 0.25}

#: AES S-box input mapped to 0x00; the clipped attack aims the S-box input at it.
AES_SBOX_ZERO = 0x52


# --- per-key attack procedures (generators: they yield queries and receive outputs) --------------


def same_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise: do two batches of outputs collide (every output exactly equal)?"""
    return np.all(a == b, axis=-1)


def is_binary(out: np.ndarray) -> np.ndarray:
    return np.all((out == 0) | (out == 1), axis=-1)


def probe_rows(base: np.ndarray, positions: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Copies of ``base``, row r with bit ``positions[r]`` set to ``values[r]``."""
    rows = np.repeat(base[None, :].astype(np.float64), len(positions), axis=0)
    rows[np.arange(len(positions)), positions] = values
    return rows


def pair_collisions(base: np.ndarray, todo: np.ndarray, centre: np.ndarray, strategy: str,
                     e: float) -> tuple[list[np.ndarray], Callable]:
    """Query blocks probing bit ``todo[r]`` around the binary value ``centre[r]``, and a function
    of (base output, block outputs) telling for each bit whether the pair collided.

    back-to-back: (v - e, v + e); separated: (v, v moved e toward 1/2), where v itself is the base
    (no query needed) when v equals the base bit. Either pair collides exactly when k_i = v.
    """
    if strategy == "back_to_back":
        blocks = [probe_rows(base, todo, centre - e), probe_rows(base, todo, centre + e)]
        return blocks, lambda base_out, a, b: same_rows(a, b)
    moved = probe_rows(base, todo, centre + e * (1 - 2.0 * centre))
    if np.array_equal(centre, base[todo]):
        return [moved], lambda base_out, a: same_rows(a, base_out[None, :])
    return [probe_rows(base, todo, centre.astype(np.float64)), moved], lambda base_out, a, b: same_rows(a, b)


def bitwise_attack(n_bits: int, strategy: str, e: float, rng: np.random.Generator,
                    encrypt: Callable, key_from_bits: Callable, max_retries: int,
                    state: dict) -> Iterator[np.ndarray]:
    """Back-to-back and separated ReLUs: one test per key bit against a binary base plaintext.

    A collision of the pair around v is exact when k_i = v, but could in principle also happen by
    accident deeper in the network; a non-collision is always conclusive (k_i != v). So: one pair
    per bit, then the key check on the base's ciphertext. If the check fails, the bits that
    collided are probed again on a fresh base around both 0 and 1: exactly one pair must fail to
    collide, and bits where that does not happen are detected errors, probed again.
    """
    known = np.full(n_bits, -1, dtype=np.int8)  # conclusive values
    tentative = np.full(n_bits, -1, dtype=np.int8)  # values from a collision alone
    first = True
    while True:
        base = rng.integers(0, 2, n_bits, dtype=np.uint8)
        todo = np.flatnonzero(known < 0)
        centres = [base[todo]] if first else [np.zeros(len(todo), np.uint8), np.ones(len(todo), np.uint8)]
        blocks, deciders = [base[None, :].astype(np.float64)], []
        for centre in centres:
            probe, decide = pair_collisions(base, todo, centre, strategy, e)
            deciders.append((len(blocks), len(probe), decide))
            blocks += probe
        queries = np.concatenate(blocks)
        out = yield queries
        first_query = state["queries"] + 1
        state["queries"] += len(queries)
        t = len(todo)
        sizes = [len(b) for b in blocks]
        starts = np.cumsum([0] + sizes)
        collided = [decide(out[0], *(out[starts[i]:starts[i + 1]] for i in range(s, s + n)))
                    for s, n, decide in deciders]
        known_before = int(np.sum(known >= 0))
        if first:
            v = base[todo].astype(np.int8)
            known[todo[~collided[0]]] = 1 - v[~collided[0]]
            tentative[todo[collided[0]]] = v[collided[0]]
            decided = np.ones(t, dtype=bool)
        else:  # no collision around 0 means k_i = 1 and vice versa; exactly one must happen
            around0, around1 = collided
            decided = around0 != around1
            known[todo[decided]] = np.where(around0[decided], 0, 1)
            state["detected"] += int(np.sum(~decided))
        per_bit = (len(queries) - 1) // max(t, 1)
        progress = known_before + np.cumsum(decided)
        state["history"].extend((first_query + per_bit * (j + 1), int(progress[j])) for j in range(t))
        guess = np.where(known >= 0, known, tentative)
        if np.all(guess >= 0):
            key = key_from_bits(guess.astype(np.uint8))
            if np.array_equal(encrypt(key, base[None, :])[0], out[0]):
                state["history"].append((state["queries"], n_bits))
                return key
            state["detected"] += 1
        first = False
        tentative[:] = -1
        state["retries"] += 1
        if state["retries"] > max_retries:
            return None


def clipped_attack(n_bits: int, e: float, rng: np.random.Generator, encrypt: Callable,
                    key_from_bits: Callable, max_retries: int, sbox_zero: int, per_round: int,
                    state: dict) -> Iterator[np.ndarray]:
    """Clipped inputs: per key byte, try candidates in random order until a pair collides.

    A test puts the next candidate c_j of every unresolved byte into one binary plaintext T
    (byte j = 0x52 xor c_j) and asks T plus, per byte, T with that byte moved e toward 1/2. The
    moved query collides with T iff S-box j sees 0x52 (S = 0 either way): 1 + (bytes left)
    queries test one candidate for every byte at once. ``per_round`` tests go out together (fewer
    round trips, a few wasted queries after a hit, all counted). The last T is the key check.
    """
    n_bytes = n_bits // 8
    zero_bits = _bits.int_to_bits(sbox_zero, 8)
    plain = rng.integers(0, 2, n_bits, dtype=np.uint8)
    plain_out = None
    order = [rng.permutation(256) for _ in range(n_bytes)]
    tried = np.zeros(n_bytes, dtype=int)
    found = np.full(n_bytes, -1)
    while True:
        todo = np.flatnonzero(found < 0)
        if todo.size == 0:
            key = key_from_bits(np.concatenate([_bits.int_to_bits(int(b), 8) for b in found]))
            if np.array_equal(encrypt(key, plain[None, :])[0], plain_out):
                state["history"].append((state["queries"], n_bits))
                return key
            state["detected"] += 1
            state["retries"] += 1
            if state["retries"] > max_retries:
                return None
            found[:], tried[:] = -1, 0
            order = [rng.permutation(256) for _ in range(n_bytes)]
            continue
        exhausted = todo[tried[todo] >= 256]
        if exhausted.size:  # no candidate collided: search the byte again in a fresh order
            state["detected"] += int(exhausted.size)
            state["retries"] += 1
            if state["retries"] > max_retries:
                return None
            for j in exhausted:
                order[j], tried[j] = rng.permutation(256), 0
        tests = int(min(per_round, 256 - tried[todo].max()))
        blocks, plains, candidates = [], [], []
        for _ in range(tests):
            cands = np.array([order[j][tried[j]] for j in todo])
            tried[todo] += 1
            for j, c in zip(todo, cands):
                plain[8 * j:8 * j + 8] = zero_bits ^ _bits.int_to_bits(int(c), 8)
            block = np.repeat(plain[None, :].astype(np.float64), len(todo) + 1, axis=0)
            for r, j in enumerate(todo, start=1):
                b = plain[8 * j:8 * j + 8]
                block[r, 8 * j:8 * j + 8] = b + e * (1 - 2.0 * b)
            blocks.append(block)
            plains.append(plain.copy())
            candidates.append(cands)
        out = yield np.concatenate(blocks)
        plain_out = out[(tests - 1) * (len(todo) + 1)]
        for t in range(tests):
            block_out = out[t * (len(todo) + 1):(t + 1) * (len(todo) + 1)]
            hits = same_rows(block_out[1:], block_out[0][None, :]) & (found[todo] < 0)
            for r in np.flatnonzero(hits):
                found[todo[r]] = candidates[t][r]
                state["history"].append((int(state["queries"] + t * (len(todo) + 1) + r + 2),
                                         8 * int(np.sum(found >= 0))))
        state["queries"] += len(out)


def float_trigger_attack(n_bits: int, trigger: float, encrypt: Callable, key_from_bits: Callable,
                          rng: np.random.Generator, max_retries: int, state: dict) -> Iterator[np.ndarray]:
    """Kim and Lee's trigger: bit i = T makes STEP return 2 while MASK stays 0, so the first XOR
    sees |2 - k_i|, which acts like plaintext bit 0 when k_i = 1 and like bit 1 when k_i = 0.

    Round one queries the all-zero plaintext and the 128 triggers (129 queries): a trigger that
    collides with the base means k_i = 1. A key byte whose S-box neighbourhood saturates the
    output STEP can fake a collision (a shallow network may not tell 2 from 1); the key check
    catches it, and each retry uses a random base: trigger row i is then compared with the base
    with bit i cleared, so every key byte meets the S-box at a different point.
    """
    base = np.zeros(n_bits, dtype=np.uint8)
    for attempt in range(max_retries + 1):
        if attempt:
            state["retries"] += 1
            base = rng.integers(0, 2, n_bits, dtype=np.uint8)
        ones = np.flatnonzero(base)
        queries = np.concatenate([base[None, :].astype(np.float64),
                                  probe_rows(base, np.arange(n_bits), np.full(n_bits, trigger)),
                                  probe_rows(base, ones, np.zeros(len(ones)))])
        out = yield queries
        state["queries"] += len(queries)
        reference = np.repeat(out[:1], n_bits, axis=0)  # base with bit i = 0: the base itself...
        reference[ones] = out[1 + n_bits:]  # ...or its copy with that bit cleared
        key_bits = same_rows(out[1:1 + n_bits], reference).astype(np.uint8)
        done = state["queries"]
        state["history"].extend((done - n_bits - len(ones) + j + 1, j + 1) for j in range(n_bits))
        key = key_from_bits(key_bits)
        if np.array_equal(encrypt(key, base[None, :])[0], out[0]):
            return key
        state["detected"] += 1
    return None
