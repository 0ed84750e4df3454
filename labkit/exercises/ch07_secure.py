"""Exercises of chapter 07: the STEP/RECT/MASK defence and its floating-point pitfall."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import torch

from labkit.exercises import exercise
from labkit.neural.defence import mask, rect, step


@exercise(
    "07.1",
    "STEP(0.4) for e = 1/4",
    hint="STEP is 0 below e, 1 above 1 - e and a straight line of slope 1/(1 - 2e) between.",
    solution="(0.4 - 0.25) / 0.5 = 0.3",
)
def _step(answer):
    expected = float(step(torch.tensor([0.4], dtype=torch.float64), Fraction(1, 4))[0])
    return bool(np.isclose(float(answer), expected, rtol=0, atol=1e-12))


@exercise(
    "07.2",
    "MASK(p) for p = [0, 0.5, 1, 0.3, -2] and e = 1/3",
    hint="Add RECT of each coordinate: 1 on [1/3, 2/3], a ramp x/e on [0, 1/3], 0 off [0, 1].",
    solution="0 + 1 + 0 + 0.9 + 0 = 1.9",
)
def _mask(answer):
    p = torch.tensor([[0, 0.5, 1, 0.3, -2]], dtype=torch.float64)
    return bool(np.isclose(float(answer), float(mask(p, Fraction(1, 3))[0, 0]), rtol=0, atol=1e-12))


@exercise(
    "07.3",
    "a float32 coordinate x with STEP(x) == 2 and RECT(x) == 0 for e = 1/4 (no clamp)",
    hint="Look where float32 runs out of mantissa: 4x - 1 and 4x - 3 must round apart by 4.",
    solution="2**23 + 1 (= labkit.neural.defence.float_trigger(torch.float32))",
)
def _trigger(answer):
    x = torch.tensor([float(answer)], dtype=torch.float32)
    return bool(step(x, Fraction(1, 4))[0] == 2 and rect(x, Fraction(1, 4))[0] == 0)
