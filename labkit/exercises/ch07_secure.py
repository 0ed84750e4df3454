"""Exercises of chapter 07: the STEP/RECT/MASK defence and its floating-point pitfall."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import torch

from labkit.exercises import exercise
from labkit.exercises.quiz import quiz
from labkit.neural.defence import mask, rect, step


@exercise(
    "07.1",
    "STEP(0.4) for e = 1/4",
    hint="STEP is 0 below e, 1 above 1 - e and a straight line of slope 1/(1 - 2e) between.",
)
def _step(answer):
    expected = float(step(torch.tensor([0.4], dtype=torch.float64), Fraction(1, 4))[0])
    return bool(np.isclose(float(answer), expected, rtol=0, atol=1e-12))


@exercise(
    "07.2",
    "MASK(p) for p = [0, 0.5, 1, 0.3, -2] and e = 1/3",
    hint="Add RECT of each coordinate: 1 on [1/3, 2/3], a ramp x/e on [0, 1/3], 0 off [0, 1].",
)
def _mask(answer):
    p = torch.tensor([[0, 0.5, 1, 0.3, -2]], dtype=torch.float64)
    return bool(np.isclose(float(answer), float(mask(p, Fraction(1, 3))[0, 0]), rtol=0, atol=1e-12))


@exercise(
    "07.3",
    "a float32 coordinate x with STEP(x) == 2 and RECT(x) == 0 for e = 1/4 (no clamp)",
    hint="Look where float32 runs out of mantissa: 4x - 1 and 4x - 3 must round apart by 4.",
)
def _trigger(answer):
    x = torch.tensor([float(answer)], dtype=torch.float32)
    return bool(step(x, Fraction(1, 4))[0] == 2 and rect(x, Fraction(1, 4))[0] == 0)


# --- concept questions (kind "quiz"; answers stored as salted digests, see quiz.py) ---

quiz(
    '07.4',
    'What does the simulator argument for D_S prove?',
    [
     "That the key cannot be read from the network's weights (white-box security).",
     'That every answer of D_S to any real-valued query can be computed from answers of D on binary queries, so an attacker with real-valued access learns nothing more than one with binary access to the cipher.',
     'That D_S runs almost as fast as D.',
     'That D_S is correct on binary inputs.',
    ],
    "7e6c6b537e2f27f820d81f69eb44652abbb8dd0cd9143220508f27b1329cd637",
    hint='Security here is black-box: compare two attackers, one with real-valued queries and one with bits only.',
)

quiz(
    '07.5',
    'Why does the floating-point trigger escape the proof?',
    [
     'The proof assumes exact real arithmetic: at a huge x, rounding in 4x - 1 and 4x - 3 makes STEP return 2, a value no real input gives, while MASK is 0, so D receives a non-bit the simulator never accounts for.',
     'The proof was wrong for real numbers too.',
     'Because float32 cannot represent 1/4.',
     'Because the attacker changes the weights.',
    ],
    "a0fa8f5b56360d5cc9f32915f77714c63720498e6ff657b445bdee60c64d105b",
    hint='Compute STEP(2^23 + 1) in float32 and in exact arithmetic.',
)

quiz(
    '07.6',
    'Why does clamping first, clamp01(x) = 1 - ReLU(1 - ReLU(x)), close the floating-point hole?',
    [
     'Because it rounds every coordinate to a bit.',
     'Because it makes the network slower for attackers.',
     'Because it removes MASK.',
     'Because after it every coordinate lies in [0, 1], where STEP and RECT see small pre-activations, so no huge value reaches the rounding that produced STEP = 2.',
    ],
    "2aca75803c170b47262043dc30d7f9378c5de5925da001d21fc1ad952179c9cc",
    hint='Where did the trigger live: at small or at huge coordinates?',
)
