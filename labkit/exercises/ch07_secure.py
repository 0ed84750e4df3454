"""Exercises of chapter 07: the STEP/RECT/MASK defence (Gerault, Hambitzer, Ronen, Shamir, ePrint
2025/288, Sec. 6) and the floating-point trigger that breaks its unclamped form (Kim and Lee,
ePrint 2026/1919)."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import torch

from labkit.challenges import client
from labkit.exercises import exercise, FunctionSpec, implement, service_handles
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


implement(
    "07.1",
    "STEP with two ReLUs: step(x, e) -> float",
    hint=("STEP is 0 below e, 1 above 1 - e and a straight line between: the difference of two "
          "ReLUs whose kinks sit at e and at 1 - e gives exactly that shape, up to a scale.",
          "Subtract the ReLU of x - (1 - e) from the ReLU of x - e; between the kinks that "
          "difference climbs from 0 to 1 - 2e, so divide by 1 - 2e."),
    spec=FunctionSpec("step", _step_reference, lambda rng: (_draw_coordinate(rng), rng.choice(EPSILONS)),
                      trials=200, equal=_close, hide=("labkit.neural.defence:step",)),
    where="class",
)


def _draw_mask_input(rng):
    return [_draw_coordinate(rng) for _ in range(rng.randrange(1, 9))], rng.choice(EPSILONS)


implement(
    "07.2",
    "MASK with four ReLUs per coordinate: mask(p, e) -> float",
    hint=("MASK adds RECT over the coordinates, and RECT is a trapezoid: 0 outside [0, 1], 1 on "
          "[e, 1 - e], straight ramps of width e between. Build the trapezoid from ReLUs with kinks "
          "at 0, e, 1 - e and 1.",
          "RECT of x is (ReLU of x, minus ReLU of x - e, minus ReLU of x - (1 - e), plus ReLU of "
          "x - 1), divided by e; sum it over the coordinates of p."),
    spec=FunctionSpec("mask", _mask_reference, _draw_mask_input, trials=200, equal=_close,
                      hide=("labkit.neural.defence:mask", "labkit.neural.defence:rect")),
    where="homework",
)


@exercise(
    "07.3",
    "a float32 coordinate x with STEP(x) == 2 and RECT(x) == 0 for e = 1/4 (no clamp)",
    hint=("Look where float32 runs out of significand bits: there, adding or subtracting a small "
          "integer to 4x must round.",
          "float32 has 24 significand bits. Take x just above a power of two, so that 4x - 1 "
          "rounds up and 4x - 3 rounds down, 4 apart instead of 2."),
    where="class",
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
    return client.Oracle(service_handles.run("07.4"), "unclamped", 128)


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
    where="homework",
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
    "07.5",
    "A query to D_S (e = 1/3) has one coordinate 0.9 and all others bits. What does D_S answer?",
    [
        "D's output on the query with 0.9 set to 1.",
        "0.7 times D's output on the query with 0.9 set to 1.",
        "All zeros: any non-bit coordinate blanks it.",
        "A value that leaks the key through the 0.9.",
    ],
    hint=("Compute STEP(0.9) and RECT(0.9) for e = 1/3: RECT is 1 on [1/3, 2/3] with ramps of "
          "width 1/3.",
          "D_S = ReLU(STEP(D(STEP(p))) - MASK(p)): STEP rounds the query, D sees bits, and MASK "
          "is the same for every output bit."),
    where="class",
)

quiz(
    "07.6",
    "In bfloat16 (8 significant bits), what does the unclamped STEP with e = 1/4 return at x = "
    "129 = 2^7 + 1?",
    [
        "1, as at every x of at least 3/4.",
        "0: 129 overflows bfloat16.",
        "2, which no real input gives.",
        "129: STEP passes large values.",
    ],
    hint=("Compute ReLU(4x - 1) and ReLU(4x - 3) exactly, then round each to bfloat16.",
          "Between 512 and 1024, bfloat16 holds only multiples of 4: where do 515 and 513 round "
          "to?"),
    where="homework",
)

quiz(
    "07.7",
    "After the clamp clamp01(x) = 1 - ReLU(1 - ReLU(x)), what reaches STEP for the coordinate "
    "2^52 + 1 in float64?",
    [
        "2^52 + 1: the clamp is affine, so it passes.",
        "0.5, the midpoint.",
        "A value in (0, 1) that depends on rounding.",
        "Exactly 1, so STEP gives 1 and RECT 0.",
    ],
    hint=("Evaluate the clamp from the inside out: ReLU(x), then 1 - that, then ReLU again.",
          "ReLU(1 - huge) is exactly 0: what is 1 - 0, and can rounding touch it?"),
    where="homework",
)
