"""Exercises of chapter 06, part 2 (06b · Key recovery): ids 06.5-06.8, and the chapter's concept
questions 06.10-06.12 (asked at the end of its last part, 06c, after 06.9)."""
from __future__ import annotations

import numpy as np

from labkit import aes
from labkit.attacks.strategies import probe_rows
from labkit.challenges import client
from labkit.challenges.defs_models import AES128_QUERY_BUDGET  # the paper's 512 and a retry's as many again
from labkit.exercises import FunctionSpec, service_handles, exercise, implement
from labkit.exercises.quiz import quiz


def back_to_back_xor(x, k):
    """The first-layer XOR of a natural network with c = 1: ReLU(x - k) + ReLU(k - x)."""
    x = np.asarray(x, dtype=np.float64)
    return np.maximum(x - k, 0) + np.maximum(k - x, 0)


@exercise(
    "06.5",
    "a real value x != 0 whose back-to-back XOR with the key bit 1 equals that of x = 0",
    hint=("With c = 1 the XOR neuron pair measures how far x is from the key bit.",
          "Which other point on the real line is exactly as far from 1 as 0 is?"),
    where="class",
)
def _mirror(answer):
    x = float(answer)
    return x != 0 and back_to_back_xor(x, 1) == back_to_back_xor(0, 1) and \
        back_to_back_xor(x, 0) != back_to_back_xor(0, 0)


def _probe_pair_reference(base, i, e):
    v = float(base[i])
    return probe_rows(np.asarray(base), np.array([i, i]), np.array([v - e, v + e]))


def _draw_probe(rng):
    base = np.array([rng.randrange(2) for _ in range(16)], dtype=np.uint8)
    return base, rng.randrange(16), rng.choice((0.125, 0.25, 0.375))


def _same_array(got, want) -> bool:
    got = np.asarray(got, dtype=np.float64)
    return got.shape == want.shape and np.array_equal(got, want)


implement(
    "06.6",
    "probe_pair(base, i, e): the two queries that test key bit i around the base plaintext",
    hint=("Both queries are the binary base plaintext except at one coordinate, which sits at the "
          "same distance e on either side of the base's own bit there.",
          "Copy the base twice as floats (a 2-row array), then overwrite coordinate i of the first "
          "row with v - e and of the second with v + e, where v is the base's bit i."),
    spec=FunctionSpec("probe_pair", _probe_pair_reference, _draw_probe, trials=40, equal=_same_array,
                      hide=("labkit.attacks.strategies:probe_rows",)),
    where="class",
)


@exercise(
    "06.7",
    "the AES S-box input that the clipped-input attack aims every byte at (an int)",
    hint=("The attack needs a byte whose S-box output does not change when its corner neuron is "
          "scaled down.",
          "Which output byte stays the same when multiplied by 0.9? Find the input that the S-box "
          "sends there (the inverse S-box table holds it)."),
    where="class",
)
def _zero_input(answer):
    v = int(answer)
    return 0 <= v < 256 and aes.SBOX[v] == 0


def aes128_challenge() -> client.Oracle:
    """This run's natural AES-128 network (c = 1, key fresh from the CSPRNG) as a black box: try your
    06.8 attack on it. Returns only an oracle handle: the network and its key stay in the
    challenge service, which counts the queries."""
    return client.Oracle(service_handles.run("06.8"), "network", 128)


def _key_bytes(got) -> bytes:
    if isinstance(got, (bytes, bytearray)):
        return bytes(got)
    raise TypeError(f"recover_key must return the key as 16 bytes, got {type(got).__name__}")


@exercise(
    "06.8",
    f"recover_key(oracle): the 16-byte key of a fresh natural AES-128 network, in at most "
    f"{AES128_QUERY_BUDGET} queries",
    hint=("Each key bit sits alone in the bias of a first-layer XOR pair, symmetric around the "
          "key bit: a pair of queries straddling the base's bit there always collides when the key "
          "bit equals the base bit, and a pair that does not collide proves they differ.",
          "Take one binary base plaintext; for every bit i build the two probes of 06.6, send all "
          "rows in one batch, compare each pair's outputs row by row, and read bit i as the "
          "complement of the base bit where they differ. Pack the 128 bits MSB first.",
          "A collision can also happen by accident deeper in the network (for a few keys in a "
          "hundred). Probe the bits that collided again around the other value: no collision "
          "settles them. Where both pairs collided, try both values and keep the key whose AES "
          "encryption of the base equals the oracle's answer to the base."),
    kind="attack", remote=True,
    where="homework",
)
def _recover_aes128(answer):
    got, attempt, over = service_handles.run_on_fresh_attempt(  # a fresh key in the service for every check
        "06.8", answer, 128, "recover_key(oracle) returning 16 key bytes")
    if over:
        return False, over
    got = _key_bytes(got)
    if len(got) != 16:
        return False, f"recover_key returned {len(got)} bytes; expected the 16-byte key."
    return attempt.answer(got)


# --- concept questions of the chapter (kind "quiz"; the answers are the challenge service's, see quiz.py) ---

quiz(
    "06.10",
    "In the back-to-back network, key bit k_i = 1. The attacker sets bit i to v - e and v + e "
    "with e = 0.25. Which pair of queries collides?",
    [
        "v = 0: the pair -0.25, 0.25.",
        "Both pairs: e is below 0.5.",
        "Neither: the S-box hides it.",
        "v = 1: the pair 0.75 and 1.25.",
    ],
    hint=("The first layer computes ReLU(x - k) + ReLU(k - x) = |x - k| for the key bit k.",
          "Evaluate |x - 1| at both points of each pair: which pair gives equal values?"),
    where="class",
)

quiz(
    "06.11",
    "Run the first-round back-to-back attack (4 queries per bit) on the natural AES-256 network. "
    "What does it recover?",
    [
        "w0..w3, the key's first 128 bits, with 512 queries.",
        "All 256 bits with 1,024 queries, 4 per bit.",
        "All 256 bits: the schedule gives the rest.",
        "Nothing: AES-256's 14 rounds hide the first round.",
    ],
    hint=("Which key bits sit in the first layer's biases of an AES-256 network?",
          "In AES-256 the round keys are w0..w3, then w4..w7: is w4..w7 derived from w0..w3, and "
          "which layer holds it?"),
    where="class",
)

quiz(
    "06.12",
    "A network uses an S-box with S(0x00) = 0x00 (e.g. the bare field inverse) instead of AES's. "
    "Where would the clipped-input attack aim every key byte?",
    [
        "Still at 0x52, fixed by MixColumns.",
        "At 0x63, where the AES S-box sends the byte 0.",
        "At 0x00, the input the S-box sends to zero.",
        "Anywhere: scaling zeroes every output.",
    ],
    hint=("What is 0.7 times the all-zero byte, and 0.7 times any other byte?",
          "A blurred query scales the active corner's S-box output: which input of this S-box has "
          "an output that survives scaling unchanged?"),
    where="class",
)
