"""Talking to the oracle: queries out, outputs back as numpy (the attacks see nothing else), and
the reference ciphers that confirm a recovered key by re-encrypting a plaintext the oracle answered."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from labkit import aes, checks, des

__all__ = ["query_oracle", "CountingOracle", "as_multi_oracle", "reference_cipher", "module_dtype", "rows_to_words", "words_to_rows"]


def module_dtype(oracle):
    for tensor in list(oracle.parameters()) + list(oracle.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.float64


def query_oracle(oracle: Callable, queries: np.ndarray) -> np.ndarray:
    """Send an ``(n, bits)`` float array to ``oracle`` (a callable or a torch module) and return
    its outputs as a numpy array (a module receives a tensor of its own dtype)."""
    queries = np.asarray(queries, dtype=np.float64)
    if isinstance(oracle, torch.nn.Module):
        with torch.no_grad():
            out = oracle(torch.as_tensor(queries, dtype=module_dtype(oracle)))
    else:
        out = oracle(queries)
    if hasattr(out, "detach"):
        out = out.detach().cpu().numpy()
    out = np.asarray(out)
    if out.ndim != 2 or out.shape[0] != queries.shape[0]:
        raise ValueError(f"the oracle must return one output row per query, got shape {out.shape}")
    return out


class CountingOracle:
    """Black-box access to a network: ``oracle(queries)`` answers an ``(n, bits)`` float array with
    the ``(n, outputs)`` outputs as numpy, and counts every query row (``.queries``).

    What an attack exercise hands out: the network (and so its key) stays inside; past ``budget``
    query rows it raises :class:`labkit.checks.QueryBudgetExceeded` and answers nothing.
    """

    __slots__ = ("_network", "_bits", "queries", "budget")

    def __init__(self, network: Callable, n_inputs: int, *, budget: int | None = None):
        if not callable(network):
            raise TypeError(f"network must be callable, got {type(network).__name__}")
        self._network, self._bits, self.queries, self.budget = network, int(n_inputs), 0, budget

    def __call__(self, queries) -> np.ndarray:
        q = checks.check_queries(queries, self._bits)
        if self.budget is not None and self.queries + len(q) > self.budget:
            raise checks.QueryBudgetExceeded(f"{self.queries + len(q)} query rows asked; the budget is {self.budget}")
        self.queries += len(q)
        return query_oracle(self._network, q)

    @property
    def n_inputs(self) -> int:
        """How many coordinates a query row has (the block size in bits)."""
        return self._bits

    def __repr__(self) -> str:
        return f"CountingOracle({self._bits} input bits, {self.queries} queries so far)"


def as_multi_oracle(oracles: Sequence[Callable]) -> Callable:
    """One callable ``(key_ids, queries) -> outputs`` over several oracles (one per key)."""
    oracles = list(oracles)

    def multi(key_ids: np.ndarray, queries: np.ndarray) -> np.ndarray:
        out = None
        for k in np.unique(key_ids):
            rows = np.flatnonzero(key_ids == k)
            part = query_oracle(oracles[int(k)], queries[rows])
            if out is None:
                out = np.empty((len(queries), part.shape[1]), dtype=part.dtype)
            out[rows] = part
        return out

    multi.n_keys = len(oracles)
    return multi


# --- the reference ciphers that confirm a key ------------------------------------------------------


def reference_cipher(cipher) -> Callable[[bytes, np.ndarray], np.ndarray]:
    """``encrypt(key, plaintext_bits (m, n)) -> ciphertext bits (m, n)`` for "aes", "des" or a
    callable with that signature (for a circuit of your own)."""
    if callable(cipher):
        return cipher
    if cipher == "aes":
        def encrypt(key: bytes, plaintexts: np.ndarray) -> np.ndarray:
            blocks = np.packbits(np.asarray(plaintexts, dtype=np.uint8), axis=1)
            return np.unpackbits(aes.encrypt_blocks(key, blocks), axis=1)

        return encrypt
    if cipher == "des":
        def encrypt(key: bytes, plaintexts: np.ndarray) -> np.ndarray:
            words = rows_to_words(plaintexts)
            out = des.encrypt_many(np.uint64(int.from_bytes(key, "big")), words)
            return words_to_rows(out)

        return encrypt
    raise ValueError(f"cipher must be 'aes', 'des' or a callable, got {cipher!r}")


def rows_to_words(rows: np.ndarray) -> np.ndarray:
    packed = np.packbits(np.asarray(rows, dtype=np.uint8), axis=1)
    return packed.view(">u8").reshape(-1).astype(np.uint64)


def words_to_rows(words: np.ndarray) -> np.ndarray:
    as_bytes = np.asarray(words, dtype=">u8").reshape(-1, 1).view(np.uint8)
    return np.unpackbits(as_bytes, axis=1)
