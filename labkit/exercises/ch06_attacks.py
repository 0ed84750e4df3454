"""Exercises of chapter 06, part 2: breaking cipher networks with non-binary inputs.

(Ids 06.11 and up, so the network exercises of part 1 keep 06.1-06.10.)
"""
from __future__ import annotations

import numpy as np

from labkit import aes
from labkit.exercises import exercise
from labkit.exercises._session import session_secret
from labkit.exercises.quiz import quiz


def back_to_back_xor(x, k):
    """The first-layer XOR of a natural network with c = 1: ReLU(x - k) + ReLU(k - x)."""
    x = np.asarray(x, dtype=np.float64)
    return np.maximum(x - k, 0) + np.maximum(k - x, 0)


def _demo_key() -> np.ndarray:
    """This run's 16 secret key bits of exercise 06.13, fresh from the CSPRNG."""
    return session_secret("06.13", lambda draw: np.array([byte & 1 for byte in draw(16)]))


def demo_oracle():
    """A 16-bit toy cipher network for exercise 06.13: back-to-back XOR with this run's secret key
    bits, then a fixed public mixing of the XOR outputs. Returns only the oracle: the key bits are
    what the student recovers from queries."""
    key = _demo_key()
    mix = np.random.default_rng(6).normal(size=(16, 16))  # public structure, not a secret

    def oracle(queries):
        q = np.atleast_2d(np.asarray(queries, dtype=np.float64))
        if q.shape[1] != 16:
            raise ValueError(f"the demo oracle takes (n, 16) queries, got {q.shape}")
        # row by row: a query's answer must not depend on the batch it came in (BLAS may round
        # rows of one matrix product differently), as a deployed network answers each input alone
        return np.stack([row @ mix for row in back_to_back_xor(q, key)])

    return oracle


@exercise(
    "06.11",
    "a real value x != 0 whose back-to-back XOR with the key bit 1 equals that of x = 0",
    hint="ReLU(x - 1) + ReLU(1 - x) = |x - 1|: which other point is as far from 1 as 0 is?",
)
def _mirror(answer):
    x = float(answer)
    return x != 0 and back_to_back_xor(x, 1) == back_to_back_xor(0, 1) and \
        back_to_back_xor(x, 0) != back_to_back_xor(0, 0)


@exercise(
    "06.12",
    "the AES S-box input that the clipped-input attack aims every byte at (an int)",
    hint="The attack needs a byte whose S-box output is 0x00, so that scaling it changes nothing.",
)
def _zero_input(answer):
    v = int(answer)
    return 0 <= v < 256 and aes.SBOX[v] == 0


@exercise(
    "06.13",
    "the 16 key bits of labkit.exercises.ch06_attacks.demo_oracle(), from queries alone",
    hint="Query the all-zero plaintext once, then each bit set to 2.0: the output only stays the "
         "same when the key bit is 1 (17 queries).",
)
def _demo_key_bits(answer):
    key = _demo_key()
    got = np.asarray(answer).astype(int).reshape(-1)
    if got.size != 16:
        return False, f"expected 16 bits, got {got.size}"
    wrong = int(np.sum(got != key))
    return wrong == 0, "all 16 bits right" if wrong == 0 else f"{wrong} bits wrong"


# --- concept questions (kind "quiz"; answers stored as salted digests, see quiz.py) ---

quiz(
    '06.14',
    'In the back-to-back network, why does a collision of the outputs on bit i = v - e and v + e reveal k_i = v?',
    [
     'Because the S-box maps both to 0.',
     'Because |x - k| is symmetric around k: the two first-layer values are equal exactly when k = v, and everything after the first layer is a function of those values; otherwise they differ, and the outputs almost surely do too.',
     'Because e is chosen equal to the key bit.',
     "Because the network's weights are public.",
    ],
    "875771605e0e0e7d4863824ace720fb749283e01402033ccf50075bcf123dedd",
    hint='Draw ReLU(x - k) + ReLU(k - x) for k = 0 and k = 1 and mark v - e and v + e.',
)

quiz(
    '06.15',
    'Why does the attack need a linear number of queries in the key size, when brute force needs 2^128 trials?',
    [
     'Because AES-128 is weak.',
     'Because every query tests all 2^128 keys at once.',
     'Because the first layer isolates each key bit in its own neurons, so one pair of queries settles one bit independently of the others: 128 bits cost O(128) queries.',
     'Because the network leaks its weights.',
    ],
    "9957ad4a51db0320349fdfe361bf32e89dd79256b42a31d36e984997492dba08",
    hint='Does testing k_5 depend on what you know about k_4?',
)

quiz(
    '06.16',
    'Why does the clipped-input attack aim every key byte at the S-box input 0x52?',
    [
     'Because 0x52 is the only byte without a fixed point.',
     'Because S(0x52) = 0x00: a blurred one-hot corner scales its S-box output, and a scaled zero is still exactly zero, so only the right candidate makes the two queries collide.',
     'Because 0x52 is the first round constant.',
     'Because clipping maps every input to 0x52.',
    ],
    "92dae6ead05c1f9dcb1253820943e8fda64e42dc8e68052cf4e031142bf49cb4",
    hint='What is 0.7 times the all-zero byte?',
)
