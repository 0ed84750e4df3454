"""The public entry points: :func:`recover_key` (one oracle) and :func:`recover_keys` (many keys,
their queries pooled into shared batches), and what they return (:class:`AttackResult`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from tqdm.auto import tqdm

from labkit import bits as _bits
from labkit.attacks.des import des_attack
from labkit.attacks.oracle import query_oracle, reference_cipher
from labkit.attacks.strategies import (
    AES_SBOX_ZERO, DEFAULT_EPSILON, STRATEGIES, bitwise_attack, clipped_attack, float_trigger_attack,
)

__all__ = ["AttackResult", "recover_key", "recover_keys"]


@dataclass
class AttackResult:
    """Outcome of one key recovery: the confirmed key (or None) and what it cost."""

    key: bytes | None
    strategy: str
    queries: int
    detected_errors: int
    retries: int
    history: list[tuple[int, int]] = field(default_factory=list, repr=False)
    message: str = ""

    @property
    def success(self) -> bool:
        return self.key is not None

    @property
    def bits_recovered(self) -> int:
        """Key bits handed back: all of them for a confirmed key, none otherwise."""
        return 8 * len(self.key) if self.key is not None else 0


def _check_strategy(strategy: str) -> str:
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    return strategy


def recover_keys(multi_oracle: Callable, n_keys: int, *, strategy: str = "back_to_back",
                 key_bits: int = 128, cipher="aes", epsilon: float | None = None,
                 max_retries: int = 4, seed: int | None = None, max_batch: int = 4096,
                 max_search_bits: int = 16, trigger: float | None = None,
                 candidates_per_round: int = 1,
                 progress: bool = False) -> list[AttackResult]:
    """Attack ``n_keys`` oracles at once: ``multi_oracle(key_ids, queries)`` answers query row r
    with the network of key ``key_ids[r]``. Each key runs the procedure of :func:`recover_key`;
    their queries are pooled into batches of at most ``max_batch`` rows (the only speed-up)."""
    strategy = _check_strategy(strategy)
    if not isinstance(n_keys, (int, np.integer)) or n_keys < 1:
        raise ValueError(f"n_keys must be a positive int, got {n_keys!r}")
    if not callable(cipher) and cipher not in ("aes", "des"):
        raise ValueError(f"cipher must be 'aes', 'des' or a callable, got {cipher!r}")
    if not callable(cipher) and key_bits != {"aes": 128, "des": 64}[cipher]:
        raise ValueError(f"{cipher.upper()} takes {({'aes': 128, 'des': 64})[cipher]} key bits, got {key_bits}")
    if not isinstance(key_bits, (int, np.integer)) or key_bits < 8 or key_bits % 8:
        raise ValueError(f"key_bits must be a positive multiple of 8, got {key_bits!r}")
    e = float(DEFAULT_EPSILON[strategy] if epsilon is None else epsilon)
    if not 0 < e < 0.5:
        raise ValueError(f"epsilon must lie strictly between 0 and 1/2, got {e}")
    if cipher == "des":
        if strategy in ("clipped", "float_trigger"):
            raise ValueError(f"the {strategy} strategy is written for AES-like key-XOR inputs; "
                             "use back_to_back or separated for DES")
        make = lambda rng, state: des_attack(  # noqa: E731
            strategy, e, rng, max_retries, max_search_bits, state)
    else:
        encrypt = reference_cipher(cipher)
        key_from_bits = _bits.bits_to_bytes
        if strategy == "float_trigger":
            value = float(2.0 ** 52 + 1 if trigger is None else trigger)
            make = lambda rng, state: float_trigger_attack(  # noqa: E731
                key_bits, value, encrypt, key_from_bits, rng, max_retries, state)
        elif strategy == "clipped":
            make = lambda rng, state: clipped_attack(  # noqa: E731
                key_bits, e, rng, encrypt, key_from_bits, max_retries, AES_SBOX_ZERO,
                int(candidates_per_round), state)
        else:
            make = lambda rng, state: bitwise_attack(  # noqa: E731
                key_bits, strategy, e, rng, encrypt, key_from_bits, max_retries, state)
    rngs = np.random.default_rng(seed).spawn(int(n_keys))
    states = [dict(queries=0, detected=0, retries=0, history=[(0, 0)]) for _ in range(n_keys)]
    procedures = [make(rngs[i], states[i]) for i in range(n_keys)]
    keys: list[bytes | None] = [None] * n_keys
    pending: dict[int, np.ndarray] = {}
    for i, proc in enumerate(procedures):
        pending[i] = next(proc)

    with tqdm(total=n_keys, desc=f"{strategy} keys", disable=not progress) as bar:
        while pending:
            ids = np.concatenate([np.full(len(q), i) for i, q in pending.items()])
            queries = np.concatenate(list(pending.values()))
            outputs = np.concatenate([multi_oracle(ids[s:s + max_batch], queries[s:s + max_batch])
                                      for s in range(0, len(queries), max_batch)])
            offset, next_pending = 0, {}
            for i, q in pending.items():
                part = outputs[offset:offset + len(q)]
                offset += len(q)
                try:
                    next_pending[i] = procedures[i].send(part)
                except StopIteration as stop:
                    keys[i] = stop.value
                    bar.update(1)
            pending = next_pending
    return [
        AttackResult(key=keys[i], strategy=strategy, queries=s["queries"],
                     detected_errors=s["detected"], retries=s["retries"], history=s["history"],
                     message="key confirmed by re-encryption" if keys[i] is not None
                     else f"no key confirmed after {max_retries} retries")
        for i, s in enumerate(states)
    ]


def recover_key(oracle: Callable, *, strategy: str = "back_to_back", key_bits: int = 128,
                cipher=None, epsilon: float | None = None, max_retries: int = 4,
                seed: int | None = None, trigger: float | None = None,
                candidates_per_round: int = 1) -> AttackResult:
    """Recover the first-round key of a ReLU cipher network from real-valued queries alone.

    ``oracle`` maps an ``(n, bits)`` float array (a tensor of its dtype for a torch module) to
    outputs; nothing else about the network is used. ``cipher`` ("aes", "des" or a callable
    ``(key, plaintext_bits) -> ciphertext_bits``; default AES for 128 bits, DES for 64) confirms
    the key by re-encrypting a plaintext the oracle answered. The result's ``key`` is None
    unless confirmed. ``trigger`` is the huge coordinate of the ``float_trigger`` strategy
    (default 2**52 + 1 for float64; :func:`labkit.neural.defence.float_trigger` gives the others).
    """
    if not callable(oracle):
        raise TypeError(f"oracle must be callable, got {type(oracle).__name__}")
    if cipher is None:
        cipher = {128: "aes", 64: "des"}.get(key_bits)
        if cipher is None:
            raise ValueError(f"key_bits must be 128 (AES) or 64 (DES) unless cipher= is given, got {key_bits}")
    multi = lambda ids, queries: query_oracle(oracle, queries)  # noqa: E731
    return recover_keys(multi, 1, strategy=strategy, key_bits=key_bits, cipher=cipher,
                        epsilon=epsilon, max_retries=max_retries, seed=seed, trigger=trigger,
                        candidates_per_round=candidates_per_round)[0]
