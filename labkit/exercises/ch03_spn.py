"""Exercises of chapter 03, part 03c (differential and linear cryptanalysis of Heys' toy SPN).

The implement checkers compare with :mod:`labkit.sbox` and :mod:`labkit.spn` on fresh random
S-boxes, keys and pairs; the attack exercise's fresh 80-bit key, drawn per run, and its wrong-answer counter
live in the challenge service, which hands out only an encryption oracle.
"""

import numpy as np

from labkit import sbox, spn
from labkit.challenges.defs_ciphers import MAX_WRONG_SPN
from labkit.exercises import exercise, FunctionSpec, implement, service_handles
from labkit.exercises.quiz import quiz

#: Heys' characteristic: the input difference of the chosen pairs, the difference into round 4.
INPUT_DIFFERENCE = spn.HEYS_DIFFERENTIAL.inputs[0]
OUTPUT_DIFFERENCE = spn.HEYS_DIFFERENTIAL.inputs[-1]
TARGET_MASK = spn.HEYS_DIFFERENTIAL.target_mask


def _ddt_row_reference(table: list[int], input_difference: int) -> list[int]:
    return [int(v) for v in sbox.ddt(table)[input_difference]]


def _draw_sbox_and_difference(rng):
    table = list(range(16))
    rng.shuffle(table)
    return table, rng.randrange(16)


implement(
    "03.7",
    "one row of a 4-bit S-box's difference distribution table",
    hint=("Row a of the DDT counts, over all 16 inputs x, how often each output difference appears "
          "when the input difference is a.",
          "Loop x over 0..15, take the output difference S[x] XOR S[x XOR a], and add one to that "
          "entry of a list of 16 zeros."),
    spec=FunctionSpec("ddt_row", _ddt_row_reference, _draw_sbox_and_difference, trials=30,
                      equal=lambda got, want: [int(v) for v in got] == want, hide=("labkit.sbox:ddt",)),
    where="class",
)


def _count_reference(pairs, guess: int) -> int:
    c1, c2 = (np.array(side, dtype=np.uint16) for side in zip(*pairs))
    return spn.count_right_pairs(c1, c2, guess, OUTPUT_DIFFERENCE)


def _draw_pairs_and_guess(rng):
    """48 ciphertext pairs under a random K5: a third right pairs (U4 difference 0x0606), a third
    that pass the filter on nibbles 1 and 3 only, a third random; the guess is right half the time."""
    k5 = rng.randrange(1 << 16)
    pairs = []
    for i in range(48):
        if i % 3 == 0:
            u = rng.randrange(1 << 16)
            pairs.append((spn.substitute(u) ^ k5, spn.substitute(u ^ OUTPUT_DIFFERENCE) ^ k5))
        else:
            c = rng.randrange(1 << 16)
            pairs.append((c, c ^ (rng.randrange(1 << 16) & (TARGET_MASK if i % 3 == 1 else 0xFFFF))))
    rng.shuffle(pairs)
    guess = k5 & TARGET_MASK if rng.random() < 0.5 else rng.randrange(1 << 16) & TARGET_MASK
    return pairs, guess


implement(
    "03.8",
    "count the right pairs of Heys' characteristic under one guess of K5's nibbles 2 and 4",
    hint=("A right pair enters the last S-boxes with difference 0000 0110 0000 0110: nibbles 1 and "
          "3 are not active (their ciphertext difference is 0), nibbles 2 and 4 differ by 6.",
          "For each pair: skip it unless the two ciphertexts agree in nibbles 1 and 3; otherwise "
          "XOR the guess into both, put nibbles 2 and 4 through the inverse S-box, and count the "
          "pair when both nibble differences are 6."),
    spec=FunctionSpec("count_right_pairs", _count_reference, _draw_pairs_and_guess, trials=20,
                      hide=("labkit.spn:count_right_pairs",)),
    where="homework",
)


#: wrong answers to 03.9 a run accepts before refusing all answers (the check is no guessing
#: oracle); the service counts them
MAX_WRONG = MAX_WRONG_SPN


def _encode_blocks(blocks):
    if isinstance(blocks, (int, np.integer)) and not isinstance(blocks, bool):
        return int(blocks)
    return np.asarray(blocks, dtype=np.int64) if np.ndim(blocks) else int(blocks)  # the service checks the range


def spn_challenge():
    """The oracle of exercise 03.9: Heys' cipher under this run's key (served), blocks (int or
    uint16 array) in, ciphertexts out."""
    return service_handles.ServedOracle(service_handles.run("03.9"), "encrypt", encode=_encode_blocks)


@exercise(
    "03.9",
    "nibbles 2 and 4 of the last round key K5 behind spn_challenge(), by differential cryptanalysis",
    hint=("Heys' characteristic holds with probability 27/1024: among a few thousand chosen pairs "
          "with input difference 0000 1011 0000 0000, dozens are right pairs, and only the right "
          "guess of the last-round key bits sees them all.",
          "Encrypt pairs P and P XOR 0x0B00, count right pairs for each of the 256 guesses of "
          "nibbles 2 and 4 of K5 (your counting function of the previous exercise), and answer with "
          "the guess that counts most, as a 16-bit int whose nibbles 1 and 3 are 0."),
    kind="attack", remote=True,
    where="homework",
)
def _spn_key_bits(answer):
    return service_handles.answer_run("03.9", int(answer))


quiz(
    "03.13",
    "Heys' characteristic holds with probability 27/1024. With 5,000 chosen pairs, about how many "
    "does the right guess of K5's target bits count?",
    [
        "5,000: every pair matches under the right key.",
        "About 130, near 27/1024 of the pairs.",
        "About 20, like a wrong guess (1/256 of pairs).",
        "None: the filter on nibbles drops them all.",
    ],
    hint=("Under the right guess, which pairs show the target difference for sure?",
          "Count the right pairs you expect among 5,000, then add the few wrong pairs that show "
          "the difference by chance."),
    where="class",
)
