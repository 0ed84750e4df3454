"""Heys' toy SPN and its differential and linear cryptanalysis, end to end.

H. M. Heys, "A Tutorial on Linear and Differential Cryptanalysis", Cryptologia 26(3), 2002: a
16-bit block, four 4-bit S-boxes (one table, section 2), a bit permutation that sends bit i of
S-box j to bit j of S-box i (bits numbered 1..16 from the left, MSB first), four rounds, the last
without the permutation and followed by a fifth key mixing. The five 16-bit round keys are
independent (Heys assumes independent subkeys); here they are the 80 bits of a 10-byte key.

Blocks are ints 0..65535 or numpy arrays of them (uint16). The attacks recover the bits of the
last round key K5 under the active S-boxes of the last round: count, for every guess of those
bits, how often a partial decryption through the last S-box layer follows the characteristic
(differential, section 4.4) or satisfies the linear approximation (linear, section 3.5).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable

import numpy as np

from labkit import sbox

__all__ = [
    "SBOX", "INV_SBOX", "PERMUTATION", "ROUNDS", "KEY_BYTES", "BLOCK_BITS",
    "substitute", "inv_substitute", "permute", "round_keys", "encrypt", "decrypt", "encryption_oracle",
    "nibble_mask", "Trail", "trail_from_masks", "best_trail",
    "HEYS_DIFFERENTIAL", "HEYS_LINEAR", "partial_decrypt",
    "SubkeyCounts", "count_right_pairs", "differential_counts", "linear_counts",
    "chosen_pairs", "differential_attack", "linear_attack", "success_rate",
    "linear_success_probability", "differential_success_probability", "differential_success_ceiling",
]

#: Heys' S-box (Table 1): E 4 D 1 2 F B 8 3 A 6 C 5 9 0 7 (the first row of DES's S1).
SBOX: tuple[int, ...] = (0xE, 0x4, 0xD, 0x1, 0x2, 0xF, 0xB, 0x8, 0x3, 0xA, 0x6, 0xC, 0x5, 0x9, 0x0, 0x7)
INV_SBOX: tuple[int, ...] = tuple(SBOX.index(y) for y in range(16))
#: The permutation (Table 2), 0-based: bit i (0 = leftmost) moves to position PERMUTATION[i].
PERMUTATION: tuple[int, ...] = tuple(4 * (i % 4) + i // 4 for i in range(16))
ROUNDS = 4
KEY_BYTES = 10  # five independent 16-bit round keys
BLOCK_BITS = 16

_BLOCKS = np.arange(1 << 16, dtype=np.uint32)


def _nibblewise(table) -> np.ndarray:
    """The 16-bit map applying a 4-bit table to each of the four nibbles, as a 2^16 lookup table."""
    t = np.asarray(table, dtype=np.uint32)
    out = sum(t[(_BLOCKS >> s) & 0xF] << s for s in (12, 8, 4, 0))
    return out.astype(np.uint16)


def _bit_permutation() -> np.ndarray:
    out = np.zeros(1 << 16, dtype=np.uint32)
    for i, j in enumerate(PERMUTATION):  # bit i from the left is bit 15 - i of the int
        out |= ((_BLOCKS >> (15 - i)) & 1) << (15 - j)
    return out.astype(np.uint16)


_SUB = _nibblewise(SBOX)
_INV_SUB = _nibblewise(INV_SBOX)
_PERM = _bit_permutation()  # an involution: the bit matrix is transposed
_PARITY = (np.unpackbits(_BLOCKS.astype(">u2").view(np.uint8)).reshape(-1, 16).sum(axis=1) & 1).astype(np.uint8)


def _blocks(x, what: str = "block"):
    """A block (int) or blocks (array) as uint16, validated; the flag says whether an int came in."""
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        if not 0 <= x < 1 << 16:
            raise ValueError(f"{what} must be a 16-bit value 0..65535, got {x}")
        return np.uint16(x), True
    arr = np.asarray(x)
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{what} must be an int or an integer array, got {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= 1 << 16):
        raise ValueError(f"{what} values must be 16-bit (0..65535)")
    return arr.astype(np.uint16), False


def _out(value, as_int: bool):
    return int(value) if as_int else value


def _lookup(table: np.ndarray, block):
    x, as_int = _blocks(block)
    return _out(table[x], as_int)


def substitute(block):
    """The S-box layer: SBOX applied to each nibble (section 2.1)."""
    return _lookup(_SUB, block)


def inv_substitute(block):
    """The inverse S-box layer."""
    return _lookup(_INV_SUB, block)


def permute(block):
    """The bit permutation (section 2.2); it is its own inverse."""
    return _lookup(_PERM, block)


def round_keys(key: bytes) -> tuple[int, ...]:
    """The five 16-bit round keys K1..K5 of a 10-byte key (big-endian, K1 first)."""
    if not isinstance(key, (bytes, bytearray)):
        raise TypeError(f"key must be bytes, got {type(key).__name__}")
    if len(key) != KEY_BYTES:
        raise ValueError(f"key must be {KEY_BYTES} bytes (five 16-bit round keys), got {len(key)}")
    return tuple(int.from_bytes(key[2 * i: 2 * i + 2], "big") for i in range(ROUNDS + 1))


def encrypt(key: bytes, block):
    """Encrypt one block (int) or many (array): rounds 1-3 mix the key, substitute and permute;
    round 4 mixes K4 and substitutes; K5 is mixed last (Heys Figure 1)."""
    k = round_keys(key)
    x, as_int = _blocks(block)
    for r in range(ROUNDS - 1):
        x = _PERM[_SUB[x ^ np.uint16(k[r])]]
    x = _SUB[x ^ np.uint16(k[3])] ^ np.uint16(k[4])
    return _out(x, as_int)


def decrypt(key: bytes, block):
    """Invert :func:`encrypt`: the same steps backwards with the inverse S-box."""
    k = round_keys(key)
    x, as_int = _blocks(block, "ciphertext")
    x = _INV_SUB[x ^ np.uint16(k[4])] ^ np.uint16(k[3])
    for r in range(ROUNDS - 2, -1, -1):
        x = _INV_SUB[_PERM[x]] ^ np.uint16(k[r])
    return _out(x, as_int)


def encryption_oracle(key: bytes) -> Callable:
    """A chosen-plaintext oracle: blocks (int or uint16 array) -> ciphertexts under ``key``."""
    round_keys(key)  # validate now, not at the first query
    key = bytes(key)
    return lambda blocks: encrypt(key, blocks)


def nibble_mask(value: int) -> int:
    """The mask of the nibbles where ``value`` is non-zero: 0x0606 -> 0x0F0F."""
    return sum(0xF << s for s in (12, 8, 4, 0) if (value >> s) & 0xF)


def _nibbles(value: int) -> list[int]:
    return [(value >> s) & 0xF for s in (12, 8, 4, 0)]


def _from_nibbles(nibbles) -> int:
    return sum(n << s for n, s in zip(nibbles, (12, 8, 4, 0)))


# --- Characteristics and linear trails (sections 3.4 and 4.3) --------------------------------------

@dataclass(frozen=True)
class Trail:
    """A characteristic (``kind="differential"``: differences, weight = probability) or a linear
    trail (``"linear"``: masks, weight = bias by the piling-up lemma) over the first rounds.

    ``inputs[r]`` enters the S-boxes of round r+1 (``inputs[0]`` is the plaintext's),
    ``outputs[r]`` leaves them; the last entry of ``inputs`` enters the last round's S-boxes.
    """

    kind: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    weight: Fraction

    @property
    def rounds(self) -> int:
        return len(self.outputs)

    @property
    def target_mask(self) -> int:
        """The last-round-key bits the attack guesses: the nibbles active at the last S-boxes."""
        return nibble_mask(self.inputs[-1])

    @property
    def active_sboxes(self) -> int:
        return sum(n != 0 for v in self.inputs[:-1] for n in _nibbles(v))

    def describe(self) -> str:
        arrow = "->" if self.kind == "differential" else "=>"
        rows = [f"round {r + 1}: {self.inputs[r]:016b} {arrow} {self.outputs[r]:016b}"
                for r in range(self.rounds)]
        rows.append(f"into round {self.rounds + 1}: {self.inputs[-1]:016b}")
        name = "probability" if self.kind == "differential" else "bias"
        rows.append(f"{name} {self.weight} = {float(self.weight):.5f}")
        return "\n".join(rows)


def _table(kind: str) -> np.ndarray:
    if kind == "differential":
        return sbox.ddt(SBOX)
    if kind == "linear":
        return sbox.lat(SBOX)
    raise ValueError(f"kind must be 'differential' or 'linear', got {kind!r}")


def _combine(kind: str, factors: list[Fraction]) -> Fraction:
    """Differential: product of probabilities; linear: piling-up, 2^(n-1) times the biases."""
    product = math.prod(factors, start=Fraction(1))
    return product if kind == "differential" else product * 2 ** (len(factors) - 1)


def trail_from_masks(kind: str, inputs: list[int] | tuple[int, ...], outputs: list[int] | tuple[int, ...]) -> Trail:
    """The trail with these S-box inputs and outputs, its weight computed from the DDT or LAT;
    raises ValueError unless each next input is the permuted previous output."""
    if len(inputs) != len(outputs) + 1:
        raise ValueError("a trail over r rounds has r + 1 inputs and r outputs")
    table = _table(kind)
    factors = []
    for r, (a, b) in enumerate(zip(inputs, outputs)):
        if permute(b) != inputs[r + 1]:
            raise ValueError(f"round {r + 1}: the permuted output {permute(b):016b} is not the next input")
        for x, y in zip(_nibbles(a), _nibbles(b)):
            if (x == 0) != (y == 0):
                raise ValueError(f"round {r + 1}: an S-box maps {x:x} to {y:x}, impossible")
            if x:
                factors.append(Fraction(int(table[x, y]), 16))
    weight = _combine(kind, factors)
    if weight == 0:
        raise ValueError("the trail has weight 0: some S-box transition never happens")
    return Trail(kind, tuple(inputs), tuple(outputs), weight)


#: Heys' characteristic (section 4.3): 0x0B00 -> ... -> 0x0606 into round 4, probability 27/1024.
HEYS_DIFFERENTIAL = trail_from_masks("differential", [0x0B00, 0x0040, 0x0220, 0x0606],
                                     [0x0200, 0x0060, 0x0550])
#: Heys' linear approximation (section 3.4): P5 P7 P8 against U4,6 U4,8 U4,14 U4,16, bias -1/32.
HEYS_LINEAR = trail_from_masks("linear", [0x0B00, 0x0400, 0x0404, 0x0505], [0x0400, 0x0500, 0x0505])


def best_trail(kind: str, rounds: int = 3, *, max_active_input: int = 1) -> Trail:
    """The trail of highest |weight| over ``rounds`` rounds whose first input has at most
    ``max_active_input`` active nibbles: a branch-and-bound search over the DDT or LAT (Matsui's
    idea: drop a branch as soon as even the best S-box transitions could not beat the best trail
    found). Ties go to the trail with fewer active nibbles entering the last round (fewer key bits
    to guess), then to the first found."""
    if not isinstance(rounds, int) or not 1 <= rounds <= ROUNDS - 1:
        raise ValueError(f"rounds must be 1..{ROUNDS - 1}, got {rounds!r}")
    if max_active_input not in (1, 2, 3, 4):
        raise ValueError(f"max_active_input must be 1..4, got {max_active_input!r}")
    table = np.abs(_table(kind))
    # per input nibble: (factor, output nibble), largest first; a linear factor is |correlation|.
    # Factors are k/16 or k/8: dyadic, so float products are exact.
    scale = 16 if kind == "differential" else 8
    moves = {x: sorted(((int(table[x, y]) / scale, y) for y in range(1, 16) if table[x, y]),
                       key=lambda m: -m[0]) for x in range(1, 16)}
    top = max(f for x in moves for f, _ in moves[x])
    starts = [_from_nibbles([values[where.index(p)] if p in where else 0 for p in range(4)])
              for k in range(1, max_active_input + 1) for where in itertools.combinations(range(4), k)
              for values in itertools.product(range(1, 16), repeat=k)]

    def greedy(start):  # the best single transition in every round: a first bound to prune with
        value, score = start, 1.0
        for _ in range(rounds):
            choice = [moves[x][0] if x else (1.0, 0) for x in _nibbles(value)]
            score *= math.prod(f for f, _ in choice)
            value = permute(_from_nibbles([y for _, y in choice]))
        return score

    # (score, -active nibbles into the last round); -17 lets the greedy trails themselves win
    best = {"key": (max(greedy(s) for s in starts), -17), "trail": None}

    def search(inputs, outputs, score):
        r = len(outputs)
        if r == rounds:
            key = (score, -bin(nibble_mask(inputs[-1])).count("1"))
            if key > best["key"]:
                best.update(key=key, trail=(list(inputs), list(outputs)))
            return
        options = [moves[x] if x else [(1.0, 0)] for x in _nibbles(inputs[-1])]
        for choice in itertools.product(*options):
            s = score * math.prod(f for f, _ in choice)
            out = _from_nibbles([y for _, y in choice])
            nxt = permute(out)
            # every active S-box of the later rounds costs at least the factor ``top``
            later = sum(n != 0 for n in _nibbles(nxt)) + (rounds - r - 2) if r + 1 < rounds else 0
            if s * top ** later >= best["key"][0]:
                search(inputs + [nxt], outputs + [out], s)

    for start in starts:
        search([start], [], 1.0)
    inputs, outputs = best["trail"]
    return trail_from_masks(kind, inputs, outputs)


# --- Key recovery on the last round (sections 3.5 and 4.4) ----------------------------------------

def _guesses(mask: int) -> np.ndarray:
    """Every value of the key bits under ``mask`` (a union of nibbles), as uint16, in order."""
    shifts = [s for s in (12, 8, 4, 0) if (mask >> s) & 0xF]
    values = [sum(((g >> (4 * (len(shifts) - 1 - i))) & 0xF) << s for i, s in enumerate(shifts))
              for g in range(1 << (4 * len(shifts)))]
    return np.array(values, dtype=np.uint16)


def partial_decrypt(ciphertexts, guess: int, mask: int):
    """Undo the last key mixing and S-box layer under a guess of the key bits in ``mask``:
    the bits of U4 (the last S-boxes' input) in ``mask``, the rest zeroed."""
    c, as_int = _blocks(ciphertexts, "ciphertexts")
    if guess & ~mask & 0xFFFF:
        raise ValueError(f"guess {guess:#06x} has bits outside the mask {mask:#06x}")
    return _out(_INV_SUB[c ^ np.uint16(guess)] & np.uint16(mask), as_int)


@dataclass(frozen=True)
class SubkeyCounts:
    """The score of every guess of the target key bits; the best guess is the attack's answer.

    ``counts`` are right pairs (differential) or agreements minus N/2 (linear); ``scores`` what is
    ranked: counts / N (the estimated probability) or |counts| / N (the estimated |bias|).
    """

    mask: int
    guesses: np.ndarray
    counts: np.ndarray
    samples: int

    @property
    def scores(self) -> np.ndarray:
        return np.abs(self.counts) / max(self.samples, 1)

    @property
    def best(self) -> int:
        return int(self.guesses[int(np.argmax(self.scores))])

    def rank(self, guess: int) -> int:
        """1 for the top guess; a tie counts against ``guess`` (it is not singled out)."""
        score = self.scores[int(np.nonzero(self.guesses == guess)[0][0])]
        return int((self.scores >= score).sum())


def _chunks(guesses: np.ndarray, samples: int):
    step = max(1, (1 << 22) // max(samples, 1))  # keep each (guesses x samples) block small
    for start in range(0, len(guesses), step):
        yield guesses[start:start + step, None]


def count_right_pairs(c1, c2, guess: int, output_difference: int) -> int:
    """How many ciphertext pairs, partially decrypted under ``guess`` (key bits where
    ``output_difference`` is active), show ``output_difference`` entering the last S-boxes; pairs
    whose ciphertexts differ in an inactive nibble are discarded (they cannot be right pairs)."""
    a, _ = _blocks(c1, "c1")
    b, _ = _blocks(c2, "c2")
    mask = nibble_mask(output_difference)
    keep = ((a ^ b) & np.uint16(~mask & 0xFFFF)) == 0
    diff = partial_decrypt(a[keep], guess, mask) ^ partial_decrypt(b[keep], guess, mask)
    return int((diff == output_difference).sum())


def differential_counts(c1, c2, output_difference: int) -> SubkeyCounts:
    """:func:`count_right_pairs` for every guess of the target bits at once (Heys 4.4)."""
    a, _ = _blocks(c1, "c1")
    b, _ = _blocks(c2, "c2")
    if a.shape != b.shape:
        raise ValueError("c1 and c2 must hold the same number of ciphertexts")
    mask = nibble_mask(output_difference)
    keep = ((a ^ b) & np.uint16(~mask & 0xFFFF)) == 0
    a, b = a[keep], b[keep]
    guesses = _guesses(mask)
    counts = np.concatenate([
        (((_INV_SUB[a[None, :] ^ g] ^ _INV_SUB[b[None, :] ^ g]) & np.uint16(mask)) == output_difference).sum(axis=1)
        for g in _chunks(guesses, len(a))]) if len(a) else np.zeros(len(guesses), dtype=np.int64)
    return SubkeyCounts(mask, guesses, counts.astype(np.int64), int(np.asarray(c1).size))


def linear_counts(plaintexts, ciphertexts, input_mask: int, output_mask: int) -> SubkeyCounts:
    """For every guess of the target bits: how often input_mask.P ^ output_mask.U4 = 0, minus N/2
    (Heys 3.5); the right guess shows |count| / N near the approximation's |bias|."""
    p, _ = _blocks(plaintexts, "plaintexts")
    c, _ = _blocks(ciphertexts, "ciphertexts")
    if p.shape != c.shape:
        raise ValueError("plaintexts and ciphertexts must have the same length")
    p, c = p.ravel(), c.ravel()
    mask = nibble_mask(output_mask)
    guesses = _guesses(mask)
    left = _PARITY[p & np.uint16(input_mask)]
    counts = np.concatenate([
        (left[None, :] == _PARITY[_INV_SUB[c[None, :] ^ g] & np.uint16(output_mask)]).sum(axis=1)
        for g in _chunks(guesses, len(c))]).astype(np.int64) - len(c) // 2
    return SubkeyCounts(mask, guesses, counts, len(c))


def chosen_pairs(oracle: Callable, input_difference: int, pairs: int, rng: np.random.Generator):
    """``pairs`` random plaintexts P and P ^ input_difference, encrypted by ``oracle``: (c1, c2)."""
    if not isinstance(pairs, int) or pairs < 1:
        raise ValueError(f"pairs must be a positive int, got {pairs!r}")
    p = rng.integers(0, 1 << 16, pairs, dtype=np.uint16)
    return np.asarray(oracle(p), dtype=np.uint16), np.asarray(oracle(p ^ np.uint16(input_difference)), dtype=np.uint16)


def differential_attack(oracle: Callable, pairs: int, rng: np.random.Generator,
                        trail: Trail = HEYS_DIFFERENTIAL) -> SubkeyCounts:
    """Chosen-plaintext attack: encrypt ``pairs`` pairs with the trail's input difference and count
    right pairs for every guess of the last-round key bits the trail's output touches."""
    if trail.kind != "differential":
        raise ValueError("differential_attack needs a differential trail")
    c1, c2 = chosen_pairs(oracle, trail.inputs[0], pairs, rng)
    return differential_counts(c1, c2, trail.inputs[-1])


def linear_attack(plaintexts, ciphertexts, trail: Trail = HEYS_LINEAR) -> SubkeyCounts:
    """Known-plaintext attack (Matsui's Algorithm 2) with a linear trail's masks."""
    if trail.kind != "linear":
        raise ValueError("linear_attack needs a linear trail")
    return linear_counts(plaintexts, ciphertexts, trail.inputs[0], trail.inputs[-1])


def success_rate(kind: str, samples: int, trials: int, rng: np.random.Generator) -> float:
    """The share of ``trials`` fresh random keys whose target bits rank first (alone) after an
    attack with ``samples`` chosen pairs (differential) or known plaintexts (linear), Heys' trails."""
    wins = 0
    for _ in range(trials):
        key = rng.bytes(KEY_BYTES)
        oracle = encryption_oracle(key)
        if kind == "differential":
            result = differential_attack(oracle, samples, rng)
        elif kind == "linear":
            p = rng.integers(0, 1 << 16, samples, dtype=np.uint16)
            result = linear_attack(p, oracle(p))
        else:
            raise ValueError(f"kind must be 'differential' or 'linear', got {kind!r}")
        wins += result.rank(round_keys(key)[4] & result.mask) == 1
    return wins / trials


def _normal_cdf(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def _normal_quantile(q: float) -> float:
    lo, hi = -40.0, 40.0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _normal_cdf(mid) < q else (lo, mid)
    return (lo + hi) / 2


def linear_success_probability(samples: int, bias: float, key_bits: int) -> float:
    """Selçuk's estimate (J. Cryptology 2008, Theorem 2) that the right key ranks first among
    2^key_bits: Phi(2 sqrt(N) |bias| - Phi^-1(1 - 2^(-key_bits-1)))."""
    return _normal_cdf(2 * math.sqrt(samples) * abs(bias) - _normal_quantile(1 - 2.0 ** (-key_bits - 1)))


def differential_success_probability(pairs: int, probability: float, noise: float, key_bits: int) -> float:
    """Selçuk's estimate (Theorem 3): mu = N p right pairs, signal to noise S = p / noise,
    Phi((sqrt(mu S) - Phi^-1(1 - 2^-key_bits)) / sqrt(S + 1)).

    A normal approximation of the right key's count: it needs several expected right pairs. Below
    about 3 (mu < 3) it can exceed :func:`differential_success_ceiling`, which no attack beats."""
    mu, s = pairs * probability, probability / noise
    return _normal_cdf((math.sqrt(mu * s) - _normal_quantile(1 - 2.0 ** -key_bits)) / math.sqrt(s + 1))


def differential_success_ceiling(pairs: int, probability: float) -> float:
    """The exact chance ``1 - (1 - p)^N`` that ``pairs`` chosen pairs hold at least one right pair:
    a ceiling on ranking the right key first (alone) that no differential attack beats.

    Under the right guess, the partial decryption gives back the exact difference entering the
    last round, so a pair counts for it exactly when it follows the differential (probability
    ``probability`` each, independently: 27/1024 for Heys' characteristic, a little more summed
    over every characteristic with the same ends). With no right pair its count is 0 and it
    cannot come out alone on top. Selçuk's normal approximation
    (:func:`differential_success_probability`) treats the count as Gaussian, which it is not when
    N p is small: there it predicts more than this ceiling.
    """
    if isinstance(pairs, bool) or not isinstance(pairs, int) or pairs < 0:
        raise ValueError(f"pairs must be a non-negative integer, got {pairs!r}")
    if not 0 <= probability <= 1:
        raise ValueError(f"probability must lie in [0, 1], got {probability}")
    return 1 - (1 - probability) ** pairs
