"""Beyond the first round: the first-round key of a network whose key is longer than one round key
(AES-256), and the second round key of the toy SPN once the first is known.

- :func:`recover_first_round_key`: the paper's 4 queries per bit (ePrint 2025/288, Sec. 5): both
  pairs (-e, e) and (1 - e, 1 + e) around each bit of a binary base. Exactly one pair collides, so
  every bit is confirmed by its own queries, with no reference encryption: what is needed when
  the rest of the key (AES-256's w4..w7) is unknown. A bit where both or neither collide is a
  detected error and is probed again on a fresh base.
- :func:`recover_toy_spn_key`: the idea of Kim and Lee's second-round recovery (ePrint 2026/1919),
  on the two-round toy SPN of :mod:`labkit.neural.spn`. Once k0 is known, the attacker computes
  round 1 himself on any real input (he *absorbs* it: :func:`labkit.neural.spn.toy_spn_prefix_network`)
  and searches, offline, pairs of real plaintexts whose round-1 outputs agree everywhere but at one
  coordinate q, where they are mirror images around 1 (a and 2 - a). The XOR k1 neuron of q is
  |z - k|: the pair collides when k1_q = 1 and not when k1_q = 0. Two queries per bit of k1; k2
  then follows from one binary query, and a second one confirms all three keys.
"""
from __future__ import annotations

import itertools
from typing import Callable

import numpy as np

from labkit import bits as _bits
from labkit.attacks.oracle import query_oracle
from labkit.attacks.recover import AttackResult
from labkit.attacks.strategies import pair_collisions, same_rows
from labkit.neural import spn

__all__ = ["recover_first_round_key", "mirror_pairs", "second_round_key_bits", "recover_toy_spn_key",
           "MIRROR_GRID"]

#: Real values a plaintext bit takes in the offline search for mirror pairs (dyadic: exact sums).
MIRROR_GRID = (-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0)


def recover_first_round_key(oracle: Callable, n_bits: int = 128, *, epsilon: float = 0.25,
                            seed: int | None = None, max_retries: int = 4) -> AttackResult:
    """The first round key (``n_bits`` bits, as bytes) of a back-to-back network, confirmed bit by
    bit: 4 queries per bit, each bit accepted only when exactly one of its two pairs collides."""
    if not callable(oracle):
        raise TypeError(f"oracle must be callable, got {type(oracle).__name__}")
    if not isinstance(n_bits, (int, np.integer)) or n_bits < 8 or n_bits % 8:
        raise ValueError(f"n_bits must be a positive multiple of 8, got {n_bits!r}")
    if not 0 < epsilon < 0.5:
        raise ValueError(f"epsilon must lie strictly between 0 and 1/2, got {epsilon}")
    rng = np.random.default_rng(seed)
    known = np.full(n_bits, -1, dtype=np.int8)
    queries = detected = retries = 0
    history = [(0, 0)]
    while True:
        base = rng.integers(0, 2, n_bits, dtype=np.uint8)
        todo = np.flatnonzero(known < 0)
        blocks, deciders = [], []
        for centre in (np.zeros(len(todo), np.uint8), np.ones(len(todo), np.uint8)):
            probe, decide = pair_collisions(base, todo, centre, "back_to_back", epsilon)
            blocks += probe
            deciders.append(decide)
        out = query_oracle(oracle, np.concatenate(blocks))
        queries += len(out)
        t = len(todo)
        around0 = deciders[0](None, out[:t], out[t:2 * t])
        around1 = deciders[1](None, out[2 * t:3 * t], out[3 * t:])
        decided = around0 != around1
        known[todo[decided]] = np.where(around0[decided], 0, 1)
        detected += int(np.sum(~decided))
        history.append((queries, int(np.sum(known >= 0))))
        if np.all(known >= 0):
            return AttackResult(_bits.bits_to_bytes(known.astype(np.uint8)), "both_pairs", queries, detected,
                                retries, history, "every bit confirmed by exactly one colliding pair")
        retries += 1
        if retries > max_retries:
            return AttackResult(None, "both_pairs", queries, detected, retries, history,
                                f"bits still unconfirmed after {max_retries} retries")


def mirror_pairs(absorbed: Callable, n_bits: int = 16, group: int = 4,
                 grid=MIRROR_GRID) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """For each output coordinate q of ``absorbed`` (the known first round, computed by the
    attacker), a pair of real plaintexts whose outputs are equal except at q, where they are a
    and 2 - a with a != 1. Searched group by group (one S-box input at a time, the other bits 0),
    preferring pairs whose other outputs are all bits."""
    pairs: dict[int, tuple[np.ndarray, np.ndarray, bool]] = {}
    values = np.array(list(itertools.product(grid, repeat=group)), dtype=np.float64)
    for g in range(n_bits // group):
        rows = np.zeros((len(values), n_bits))
        rows[:, g * group:(g + 1) * group] = values
        z = query_oracle(absorbed, rows)
        for q in np.flatnonzero(np.ptp(z, axis=0) > 0):
            if q in pairs and pairs[q][2]:
                continue
            others = np.delete(z, q, axis=1)
            binary = np.all((others == 0) | (others == 1), axis=1)
            seen: dict[bytes, dict[float, int]] = {}
            for r in range(len(z)):
                bucket = seen.setdefault(others[r].tobytes(), {})
                a = float(z[r, q])
                partner = bucket.get(2.0 - a)
                if partner is not None and a != 1.0 and (q not in pairs or (binary[r] and not pairs[q][2])):
                    pairs[int(q)] = (rows[partner], rows[r], bool(binary[r]))
                    if binary[r]:
                        break
                bucket.setdefault(a, r)
    return {q: (a, b) for q, (a, b, _) in sorted(pairs.items())}


def second_round_key_bits(oracle: Callable, pairs: dict[int, tuple[np.ndarray, np.ndarray]],
                          n_bits: int = 16) -> tuple[np.ndarray, int]:
    """The second round key bits from one mirror pair each: a collision means 1 (the XOR neuron
    |z - k| is symmetric around k = 1), no collision 0. Returns (bits, queries)."""
    missing = sorted(set(range(n_bits)) - set(pairs))
    if missing:
        raise ValueError(f"no mirror pair for output coordinates {missing}")
    queries = np.concatenate([np.stack(pairs[q]) for q in range(n_bits)])
    out = query_oracle(oracle, queries)
    return same_rows(out[0::2], out[1::2]).astype(np.uint8), len(queries)


def recover_toy_spn_key(oracle: Callable, *, seed: int | None = None) -> AttackResult:
    """All three round keys (k0, k1, k2, as 6 bytes) of the two-round toy SPN network behind
    ``oracle``: k0 by the first-round attack, k1 through the absorbed first round, k2 from one
    binary query; a second binary query confirms them (else the result carries no key)."""
    first = recover_first_round_key(oracle, spn.TOY_BITS, seed=seed)
    if first.key is None:
        return first
    k0 = int.from_bytes(first.key, "big")
    pairs = mirror_pairs(spn.toy_spn_prefix_network(k0), spn.TOY_BITS)
    k1_bits, used = second_round_key_bits(oracle, pairs, spn.TOY_BITS)
    k1 = _bits.bits_to_int(k1_bits)
    rng = np.random.default_rng(seed)
    plain = [int(p) for p in rng.integers(0, 1 << spn.TOY_BITS, 2)]
    answers = query_oracle(oracle, np.stack([_bits.int_to_bits(p, spn.TOY_BITS) for p in plain]))
    cipher = [_bits.bits_to_int(np.round(a).astype(np.uint8)) for a in answers]
    k2 = cipher[0] ^ spn.toy_spn_encrypt((k0, k1, 0), plain[0])
    queries = first.queries + used + 2
    history = first.history + [(first.queries + used, 32), (queries, 48)]
    if spn.toy_spn_encrypt((k0, k1, k2), plain[1]) != cipher[1]:
        return AttackResult(None, "second_round", queries, first.detected_errors + 1, first.retries, history,
                            "the recovered round keys do not re-encrypt the check plaintext")
    key = b"".join(k.to_bytes(2, "big") for k in (k0, k1, k2))
    return AttackResult(key, "second_round", queries, first.detected_errors, first.retries, history,
                        "k0, k1 and k2 confirmed by re-encrypting a binary plaintext")
