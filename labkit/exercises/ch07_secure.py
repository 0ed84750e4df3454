"""Exercises of chapter 07: the STEP/RECT/MASK defence (Gerault, Hambitzer, Ronen, Shamir, ePrint
2025/288, Sec. 6) and the floating-point trigger that breaks its unclamped form (Kim and Lee,
ePrint 2026/1919)."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import torch

from labkit.challenges import client
from labkit.exercises import _session, check_function, exercise
from labkit.exercises.quiz import quiz
from labkit.neural.defence import mask, rect, step

#: The margins e the 07.1 and 07.2 checks draw (the paper's 1/3, the authors' 1/4, and others).
EPSILONS = (Fraction(1, 3), Fraction(1, 4), Fraction(1, 5), Fraction(3, 8))


def _draw_coordinate(rng) -> float:
    """A query coordinate of every kind: a bit, a bit moved a little, anything in [-0.5, 1.5]."""
    kind = rng.randrange(3)
    if kind == 0:
        return float(rng.randrange(2))
    if kind == 1:
        return round(rng.randrange(2) + rng.uniform(-0.2, 0.2), 4)
    return round(rng.uniform(-0.5, 1.5), 4)


def _close(got, expected: float) -> bool:
    # the student's ReLUs may round in another order than labkit's integer-scaled form: allow a few ulps
    return bool(np.isclose(float(got), expected, rtol=1e-9, atol=1e-12))


def _step_reference(x: float, epsilon: Fraction) -> float:
    return float(step(torch.tensor([x], dtype=torch.float64), epsilon)[0])


def _mask_reference(p: list[float], epsilon: Fraction) -> float:
    return float(mask(torch.tensor([p], dtype=torch.float64), epsilon)[0, 0])


@exercise(
    "07.1",
    "STEP with two ReLUs: step(x, e) -> float",
    hint=("STEP is 0 below e, 1 above 1 - e and a straight line between: the difference of two "
          "ReLUs whose kinks sit at e and at 1 - e gives exactly that shape, up to a scale.",
          "Subtract the ReLU of x - (1 - e) from the ReLU of x - e; between the kinks that "
          "difference climbs from 0 to 1 - 2e, so divide by 1 - 2e."),
    kind="implement",
)
def _step(answer):
    return check_function(answer, _step_reference,
                          lambda rng: (_draw_coordinate(rng), rng.choice(EPSILONS)),
                          trials=200, name="step", equal=_close)


@exercise(
    "07.2",
    "MASK with four ReLUs per coordinate: mask(p, e) -> float",
    hint=("MASK adds RECT over the coordinates, and RECT is a trapezoid: 0 outside [0, 1], 1 on "
          "[e, 1 - e], straight ramps of width e between. Build the trapezoid from ReLUs with kinks "
          "at 0, e, 1 - e and 1.",
          "RECT of x is (ReLU of x, minus ReLU of x - e, minus ReLU of x - (1 - e), plus ReLU of "
          "x - 1), divided by e; sum it over the coordinates of p."),
    kind="implement",
)
def _mask(answer):
    def draw(rng):
        return [_draw_coordinate(rng) for _ in range(rng.randrange(1, 9))], rng.choice(EPSILONS)

    return check_function(answer, _mask_reference, draw, trials=200, name="mask", equal=_close)


@exercise(
    "07.3",
    "a float32 coordinate x with STEP(x) == 2 and RECT(x) == 0 for e = 1/4 (no clamp)",
    hint=("Look where float32 runs out of significand bits: there, adding or subtracting a small "
          "integer to 4x must round.",
          "float32 has 24 significand bits. Take x just above a power of two, so that 4x - 1 "
          "rounds up and 4x - 3 rounds down, 4 apart instead of 2."),
)
def _trigger(answer):
    x = torch.tensor([float(answer)], dtype=torch.float32)
    return bool(step(x, Fraction(1, 4))[0] == 2 and rect(x, Fraction(1, 4))[0] == 0)


# --- 07.4: the floating-point trigger against the unclamped defence -------------------------------

#: What the 07.4 networks are: AES-128 inside the defence with the authors' margin, in float64.
TRIGGER_EPSILON = Fraction(1, 4)
TRIGGER_DTYPE = torch.float64


def trigger_challenge():
    """The oracle of exercise 07.4: the protected AES-128 network with e = 1/4 and WITHOUT the clamp
    (``unsafe_unclamped=True``), computing in float64, under a key drawn fresh for this run in
    the challenge service. Returns only an oracle handle; the key is what the attack recovers."""
    return client.Oracle(_session.run("07.4"), "unclamped", 128)


def _as_key(value) -> bytes:
    key = bytes(value)
    if len(key) != 16:
        raise ValueError(f"expected 16 key bytes, got {len(key)}")
    return key


@exercise(
    "07.4",
    "recover the key of the unclamped defended AES network from queries alone (floating-point trigger)",
    hint=("The proof assumes real numbers. Find a single query coordinate that STEP turns into a "
          "value no real input can give, while MASK stays 0; then watch how the key XOR of the "
          "first layer treats that value.",
          "The network computes in float64 (53 significand bits): the trigger of 07.3 has a float64 "
          "twin. Query the all-zero plaintext, then the plaintexts with one bit set to the trigger; "
          "the XOR sees |2 - k|, which equals |0 - k| exactly when the key bit k is 1, so that "
          "query's output equals the base output.",
          "One base query and 128 trigger queries, one per bit, most significant first; read the "
          "128 answers as key bits and pack them into 16 bytes."),
    kind="attack", remote=True,
)
def _float_trigger_attack(answer):
    if not callable(answer):
        return False, "the answer must be a function attack(oracle) -> the 16 key bytes."
    attempt = client.attempt("07.4", fresh=True)  # a fresh key, its unclamped and clamped networks
    unclamped = _as_key(answer(client.Oracle(attempt, "unclamped", 128)))
    try:  # the same function against the clamped (default) defence with the same key
        clamped = _as_key(answer(client.Oracle(attempt, "clamped", 128)))
    except Exception:  # an attack that breaks down against the clamp is what the clamp is for
        clamped = None
    return attempt.answer({"unclamped": unclamped, "clamped": clamped})


# --- concept questions (kind "quiz"; the answers are the challenge service's, see quiz.py) ---

quiz(
    '07.5',
    'What does the simulator argument for D_S prove?',
    [
     "That the key cannot be read from the network's weights (white-box security).",
     'That every answer of D_S to any real-valued query can be computed from answers of D on binary queries, so an attacker with real-valued access learns nothing more than one with binary access to the cipher.',
     'That D_S runs almost as fast as D.',
     'That D_S is correct on binary inputs.',
    ],
    hint=('Security here is black-box: compare two attackers, one with real-valued queries and one with bits only.',
          'A simulator answers the real-valued queries using only a binary oracle: what does it then '
          'say about what the real-valued queries can teach?'),
)

quiz(
    '07.6',
    'Why does the floating-point trigger escape the proof?',
    [
     'The proof assumes exact real arithmetic: at a huge x, rounding in 4x - 1 and 4x - 3 makes STEP return 2, a value no real input gives, while MASK is 0, so D receives a non-bit the simulator never accounts for.',
     'The proof was wrong for real numbers too.',
     'Because float32 cannot represent 1/4.',
     'Because the attacker changes the weights.',
    ],
    hint=('Compute STEP(2^23 + 1) in float32 and in exact arithmetic.',
          'Which values can STEP take on real inputs, and which value did the trigger produce?'),
)

quiz(
    '07.7',
    'Why does clamping first, clamp01(x) = 1 - ReLU(1 - ReLU(x)), close the floating-point hole?',
    [
     'Because it rounds every coordinate to a bit.',
     'Because it makes the network slower for attackers.',
     'Because it removes MASK.',
     'Because after it every coordinate lies in [0, 1], where STEP and RECT see small pre-activations, so no huge value reaches the rounding that produced STEP = 2.',
    ],
    hint=('Where did the trigger live: at small or at huge coordinates?',
          'After the clamp, how large can a pre-activation of STEP or RECT be, and does anything round there?'),
)
