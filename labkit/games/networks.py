"""The simulator argument of the protected network as a game: do real-valued queries tell more
than binary ones?

Gerault, Hambitzer, Ronen and Shamir (ePrint 2025/288, Sec. 6) prove that the protected network
``D_S(p) = ReLU(STEP(D(STEP(p))) - MASK(p))`` can be *simulated* from binary queries to the cipher
alone: whatever an adversary learns from real-valued queries it could have learnt from bits. The
game makes that claim testable. The challenger draws the three round keys of the toy SPN
(:mod:`labkit.neural.spn`); with b = 1 the ``query`` oracle evaluates the protected network on the
adversary's real-valued point, with b = 0 it answers with :func:`labkit.neural.defence.simulate`,
which sees only the cipher on bits. If the proof holds in the arithmetic the network really uses,
the two worlds give equal answers and every adversary has advantage 0.

The clamped network (the default) meets that. The unclamped one (``naive=True``, e = 1/4, float64)
does not: Kim and Lee's coordinate 2^52 + 1 passes STEP as 2 while MASK stays 0 (ePrint 2026/1919),
and the first layer's XOR turns the 2 into the key bit's complement.
"""
from __future__ import annotations

import functools
import math
from fractions import Fraction
from functools import partial

import torch

from labkit.games import Game, GameError, as_bit, count_query, finish_once, new_state
from labkit.neural import defence, spn

__all__ = ["simulation_game", "EPSILON", "BITS"]

#: The defence's margin in this game: the authors' 1/4, the margin the floating-point trigger needs.
EPSILON = Fraction(1, 4)
BITS = 16
DTYPE = torch.float64


@functools.lru_cache(maxsize=256)
def _networks(keys: tuple[int, int, int], naive: bool):
    """(protected network, binary cipher) of the toy SPN under ``keys`` (cached: building one takes
    milliseconds, a game asks many queries of the same keys, and a check plays its games side by
    side)."""
    binary = spn.toy_spn_network(keys, dtype=DTYPE)
    protected = defence.protect(binary, epsilon=EPSILON, unsafe_unclamped=naive, n_in=BITS, n_out=BITS)
    return protected, binary


def _new(params: dict, token_bytes) -> dict:
    keys = tuple(int.from_bytes(token_bytes(2), "big") for _ in range(3))
    return new_state(token_bytes, params=params, keys=keys)


def _point(request: tuple) -> torch.Tensor:
    if len(request) != 1:
        raise GameError(f"query takes one point of {BITS} coordinates")
    (point,) = request
    try:
        values = [float(v) for v in point]
    except (TypeError, ValueError):
        raise GameError(f"a point is a sequence of {BITS} real numbers") from None
    if len(values) != BITS or not all(math.isfinite(v) for v in values):
        raise GameError(f"a point is {BITS} finite real numbers, got {len(values)}")
    return torch.tensor([values], dtype=DTYPE)


def _oracle(state: dict, name: str, request: tuple):

    p = state["params"]
    if name != "query":
        raise GameError(f"this game has the oracle 'query', not {name!r}")
    x = _point(request)
    count_query(state, name, p["budget"])
    protected, binary = _networks(tuple(state["keys"]), p["naive"])
    with torch.no_grad():
        if state["b"]:
            out = protected(x)
        else:
            out = defence.simulate(x, binary, epsilon=EPSILON, unsafe_unclamped=p["naive"], dtype=DTYPE)
    return tuple(float(v) for v in out[0])


def _finish(state: dict, guess) -> bool:
    finish_once(state)
    return as_bit(guess) == state["b"]


def simulation_game(*, naive: bool = False, budget: int = 64) -> Game:
    """Real (b = 1: the protected toy-SPN network) or simulated (b = 0: the simulator on binary
    cipher queries); ``naive=True`` leaves the clamp out, as the broken first form did."""
    if not isinstance(naive, bool):
        raise TypeError("naive must be True or False")
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ValueError(f"budget must be a positive int, got {budget!r}")
    public = {"bits": BITS, "epsilon": str(EPSILON), "dtype": "float64", "naive": naive, "budget": budget}
    what = "unclamped (naive)" if naive else "clamped"
    return Game(f"real or simulated: {what} protected network", "distinguish", ("query",), public,
                partial(_new, dict(public)), _oracle, _finish,
                f"query(point) -> the {what} protected toy SPN on a real-valued point (b = 1) or the "
                "simulator's answer from binary cipher queries (b = 0). Guess b.")
