"""Feistel networks over any round functions and any half-width, and Luby-Rackoff in practice.

A block of 2n bits is split into halves (L, R), L the high half. One round with function f is
``(L, R) -> (R, L xor f(R))``; after the last round the halves are swapped back, as in DES. With
that final swap, decryption is *literally the same circuit* with the round functions in reverse
order, whatever the functions are: they need not be invertible (Boneh's lecture, "Feistel network
F is invertible"; FIPS 46-3 uses the same structure).

Luby and Rackoff (SIAM J. Comput. 17(2), 1988): with independent random round functions, 3 rounds
give a pseudorandom permutation against chosen-plaintext attacks (4 rounds against chosen
plaintext and ciphertext). This module measures it: distinguishers that break 1 and 2 rounds with
advantage close to 1 and get nothing from 3, and a chosen-ciphertext distinguisher that breaks 3
rounds but not 4.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from labkit import checks

__all__ = [
    "run_rounds",
    "apply_rounds",
    "Feistel",
    "RoundFunction",
    "random_function",
    "RandomPermutation",
    "ROUND_FUNCTION_KINDS",
    "make_round_function",
    "one_round_distinguisher",
    "two_round_distinguisher",
    "three_round_cca_distinguisher",
    "DISTINGUISHERS",
    "Advantage",
    "BlackBox",
    "measure_advantage",
    "advantage_by_rounds",
]

RoundFunction = Callable[[int], int]


def _check_half_bits(half_bits) -> int:
    return checks.check_int(half_bits, "half_bits", low=1, high=64)


def run_rounds(left, right, round_functions):
    """The Feistel rounds ``(L, R) -> (R, L xor f(R))``, one function after the other, yielding the
    halves after each round (the final swap is the caller's). The one Feistel loop of labkit: halves
    may be ints (:class:`Feistel`), DES's bit arrays or its batches of 32-bit words (:mod:`labkit.des`)."""
    for f in round_functions:
        left, right = right, left ^ f(right)
        yield left, right


def apply_rounds(left, right, round_functions):
    """The halves after the last of :func:`run_rounds` (for callers that need no trace)."""
    for left, right in run_rounds(left, right, round_functions):
        pass
    return left, right


class Feistel:
    """A Feistel network: ``len(round_functions)`` rounds on blocks of ``2 * half_bits`` bits.

    Blocks are ints in ``range(2 ** (2 * half_bits))``; round functions map n-bit ints to n-bit
    ints and may be anything (constant, non-injective, random).
    """

    def __init__(self, round_functions: Sequence[RoundFunction], half_bits: int) -> None:
        self.half_bits = _check_half_bits(half_bits)
        self.round_functions = list(round_functions)
        if not self.round_functions:
            raise ValueError("a Feistel network needs at least one round function")
        if not all(callable(f) for f in self.round_functions):
            raise TypeError("round functions must be callables from n-bit ints to n-bit ints")
        self.mask = (1 << self.half_bits) - 1

    @property
    def rounds(self) -> int:
        return len(self.round_functions)

    @property
    def block_bits(self) -> int:
        return 2 * self.half_bits

    def split(self, block: int) -> tuple[int, int]:
        """Block -> (L, R), L the high half; validates the block."""
        block = checks.check_int(block, "block", low=0, high=(1 << self.block_bits) - 1)
        return block >> self.half_bits, block & self.mask

    def join(self, left: int, right: int) -> int:
        return (left << self.half_bits) | right

    def _f(self, i: int, x: int) -> int:
        y = self.round_functions[i](x)
        if isinstance(y, bool) or not isinstance(y, (int, np.integer)) or not 0 <= y <= self.mask:
            raise ValueError(f"round function {i + 1} must return an int in 0..{self.mask}, got {y!r}")
        return int(y)

    def trace(self, block: int) -> list[tuple[int, int]]:
        """The halves (L_i, R_i) for i = 0 (input) .. rounds; the output is R_d L_d (final swap)."""
        left, right = self.split(block)
        functions = [lambda x, i=i: self._f(i, x) for i in range(self.rounds)]
        return [(left, right), *run_rounds(left, right, functions)]

    def encrypt(self, block: int) -> int:
        left, right = self.trace(block)[-1]
        return self.join(right, left)  # the final swap

    def reversed(self) -> "Feistel":
        """The same circuit with the round functions in reverse order."""
        return Feistel(self.round_functions[::-1], self.half_bits)

    def decrypt(self, block: int) -> int:
        """Decryption *is* encryption with the round functions reversed (no inverse of f needed)."""
        return self.reversed().encrypt(block)

    def decrypt_trace(self, block: int) -> list[tuple[int, int]]:
        return self.reversed().trace(block)


# --- round functions -----------------------------------------------------------------------------


def random_function(half_bits: int, rng: np.random.Generator) -> RoundFunction:
    """A uniformly random function on n bits, sampled lazily (values drawn on first use)."""
    half_bits = _check_half_bits(half_bits)
    table: dict[int, int] = {}

    def f(x: int) -> int:
        if x not in table:
            table[x] = int(rng.integers(0, 1 << half_bits, dtype=np.uint64)) if half_bits < 64 \
                else int.from_bytes(rng.bytes(8), "big")
        return table[x]

    return f


class RandomPermutation:
    """A uniformly random permutation of ``bits``-bit ints, sampled lazily, with its inverse."""

    def __init__(self, bits: int, rng: np.random.Generator) -> None:
        self.bits, self.rng = bits, rng
        self.forward: dict[int, int] = {}
        self.backward: dict[int, int] = {}

    def _fresh(self, used: dict[int, int]) -> int:
        while True:  # rejection sampling: fast while few points are used
            y = int.from_bytes(self.rng.bytes((self.bits + 7) // 8), "big") >> (-self.bits % 8)
            if y not in used:
                return y

    def encrypt(self, x: int) -> int:
        if x not in self.forward:
            y = self._fresh(self.backward)
            self.forward[x], self.backward[y] = y, x
        return self.forward[x]

    def decrypt(self, y: int) -> int:
        if y not in self.backward:
            x = self._fresh(self.forward)
            self.forward[x], self.backward[y] = y, x
        return self.backward[y]


#: Round functions for demonstrations: name -> (description, factory(key, n) -> f).
ROUND_FUNCTION_KINDS: dict[str, tuple[str, Callable[[int, int], RoundFunction]]] = {
    "x xor k": ("invertible: a key XOR", lambda k, n: (lambda x: x ^ k)),
    "x and k": ("not injective: bits where k is 0 are lost", lambda k, n: (lambda x: x & k)),
    "constant k": ("constant: ignores its input", lambda k, n: (lambda x: k)),
    "x^2 + k mod 2^n": ("not injective: squaring", lambda k, n: (lambda x: (x * x + k) % (1 << n))),
    "rotate(x) xor k": ("invertible: rotate left by 3, XOR key",
                        lambda k, n: (lambda x: (((x << 3) | (x >> (n - 3))) & ((1 << n) - 1)) ^ k
                                      if n > 3 else x ^ k)),
    "random (seeded by k)": ("a random function, drawn from a generator seeded with k",
                             lambda k, n: random_function(n, np.random.default_rng(k))),
}


def make_round_function(kind: str, key: int, half_bits: int) -> RoundFunction:
    """One of :data:`ROUND_FUNCTION_KINDS` with round key ``key`` (an n-bit int)."""
    half_bits = _check_half_bits(half_bits)
    if kind not in ROUND_FUNCTION_KINDS:
        raise ValueError(f"round function kind must be one of {sorted(ROUND_FUNCTION_KINDS)}, "
                         f"got {kind!r}")
    if not 0 <= key < 1 << half_bits:
        raise ValueError(f"round key must be in 0..2^{half_bits}-1, got {key}")
    return ROUND_FUNCTION_KINDS[kind][1](key, half_bits)


# --- Luby-Rackoff: distinguishers and their measured advantage -----------------------------------
# A distinguisher gets an oracle with .encrypt (and .decrypt) on 2n-bit ints and answers True for
# "this is a Feistel network". Outputs carry the final swap: after d rounds they read R_d L_d.


def _halves(block: int, n: int) -> tuple[int, int]:
    return block >> n, block & ((1 << n) - 1)


def one_round_distinguisher(oracle, half_bits: int, rng: np.random.Generator) -> bool:
    """One round outputs (L xor f(R), R): the right half passes through. One query."""
    x = int.from_bytes(rng.bytes(16), "big") % (1 << 2 * half_bits)
    return _halves(oracle.encrypt(x), half_bits)[1] == _halves(x, half_bits)[1]


def two_round_distinguisher(oracle, half_bits: int, rng: np.random.Generator) -> bool:
    """Two rounds output (R xor f2(L xor f1(R)), L xor f1(R)): with the same R, the right output
    halves differ by exactly L xor L'. Two queries."""
    n = half_bits
    left, left2, right = (int(v) for v in rng.integers(0, 1 << n, size=3, dtype=np.uint64))
    if left2 == left:
        left2 ^= 1
    y1 = _halves(oracle.encrypt((left << n) | right), n)[1]
    y2 = _halves(oracle.encrypt((left2 << n) | right), n)[1]
    return y1 ^ y2 == left ^ left2


def three_round_cca_distinguisher(oracle, half_bits: int, rng: np.random.Generator) -> bool:
    """Chosen plaintext *and ciphertext*: encrypt (a, r) and (a', r), decrypt a crafted block
    from the second answer; in 3 rounds the recovered right half is r xor L3 xor L3'.
    Breaks 3 rounds (which resist chosen-plaintext attacks) but not 4 (Luby-Rackoff)."""
    n = half_bits
    a, a2, r = (int(v) for v in rng.integers(0, 1 << n, size=3, dtype=np.uint64))
    if a2 == a:
        a2 ^= 1
    r3, l3 = _halves(oracle.encrypt((a << n) | r), n)
    r3b, l3b = _halves(oracle.encrypt((a2 << n) | r), n)
    back = oracle.decrypt(((r3b ^ a ^ a2) << n) | l3b)
    return _halves(back, n)[1] == r ^ l3 ^ l3b


#: The distinguishers by name, for loops, plots and the notebook.
DISTINGUISHERS = {
    "1-round (1 query)": one_round_distinguisher,
    "2-round (2 queries)": two_round_distinguisher,
    "3-round CCA (3 queries)": three_round_cca_distinguisher,
}


@dataclass
class Advantage:
    """Measured acceptance rates in both worlds and the advantage |p_feistel - p_random|."""

    rounds: int
    trials: int
    p_feistel: float
    p_random: float

    @property
    def advantage(self) -> float:
        return abs(self.p_feistel - self.p_random)


class BlackBox:
    """What a distinguisher is handed: ``encrypt`` and ``decrypt`` of a hidden permutation, and no
    type or attribute that says which world of the game it comes from."""

    __slots__ = ("encrypt", "decrypt")

    def __init__(self, permutation) -> None:
        self.encrypt = lambda block: permutation.encrypt(block)
        self.decrypt = lambda block: permutation.decrypt(block)

    def __repr__(self) -> str:
        return "<oracle: a Feistel network or a random permutation>"


def measure_advantage(distinguisher, rounds: int, *, half_bits: int = 16, trials: int = 1000,
                      seed: int | None = 0) -> Advantage:
    """Run ``distinguisher`` ``trials`` times against fresh Feistel networks with ``rounds``
    independent random round functions, and as often against fresh random permutations.

    As in the game, the distinguisher cannot tell the worlds apart except by its queries: each
    oracle is a :class:`BlackBox`, the two worlds come in a random order in every trial, and the
    distinguisher's ``rng`` is independent of the randomness of the worlds. ``seed=None`` draws
    everything fresh from the OS (an exercise check, which must not be tunable to one seed).
    """
    half_bits = _check_half_bits(half_bits)
    rounds = checks.check_int(rounds, "rounds", low=1)
    trials = checks.check_int(trials, "trials", low=1)
    world_seed, player_seed = np.random.SeedSequence(seed).spawn(2)
    worlds, player = np.random.default_rng(world_seed), np.random.default_rng(player_seed)
    hits = {True: 0, False: 0}
    for _ in range(trials):
        network = Feistel([random_function(half_bits, worlds) for _ in range(rounds)], half_bits)
        oracles = [(True, network), (False, RandomPermutation(2 * half_bits, worlds))]
        for is_feistel, oracle in (oracles if worlds.integers(2) else oracles[::-1]):
            hits[is_feistel] += bool(distinguisher(BlackBox(oracle), half_bits, player))
    return Advantage(int(rounds), int(trials), hits[True] / trials, hits[False] / trials)


def advantage_by_rounds(rounds=range(1, 6), *, half_bits: int = 16, trials: int = 500,
                        seed: int = 0) -> dict[str, list[Advantage]]:
    """:func:`measure_advantage` for every distinguisher and number of rounds (for the plot)."""
    return {name: [measure_advantage(d, r, half_bits=half_bits, trials=trials, seed=seed + r)
                   for r in rounds]
            for name, d in DISTINGUISHERS.items()}
