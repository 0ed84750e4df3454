"""Security games: a challenger holds the secrets, an adversary asks it questions, the game measures
how often the adversary wins over many fresh runs (Boneh and Shoup, *A Graduate Course in Applied
Cryptography*, ch. 2-6: attack games and advantage).

A challenger is plain data in and out, so that a separate process (the challenge service) can host
it: ``new_game(token_bytes) -> state`` draws the secret bit and every key from ``token_bytes`` (the
CSPRNG, :func:`secrets.token_bytes` by default); ``oracle(state, name, request) -> reply`` answers one
query (``request`` is the tuple of the query's arguments; ints, bytes, tuples and lists only);
``finish(state, guess) -> bool`` says whether the adversary won. Randomness a challenger needs while
it answers (a fresh IV, a lazily sampled random permutation) comes from a seed in the state, drawn
from the CSPRNG at ``new_game``, stretched with SHAKE-256 (FIPS 202), so the state stays plain data.

An adversary is a function ``adversary(oracles) -> guess``: ``oracles.encrypt(...)`` (one attribute
per oracle of the game) and ``oracles.public`` (the game's public parameters, a dict). For a
distinguishing game the guess is a bit (1: "the real scheme" or "b = 1") and the advantage is
``|Pr[guess = 1 | b = 1] - Pr[guess = 1 | b = 0]| = |2 Pr[win] - 1|``; for a forgery game the guess is
the forgery and the advantage is ``Pr[win]``.

In the kernel, :func:`play` runs both sides in one process, so nothing stops an adversary from
reading the state; it is a measurement and a self-check, not a verdict (the challenge service
hosts the challenger where student code cannot reach it).
"""
from __future__ import annotations

import hashlib
import math
import numbers
import secrets
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

__all__ = ["Game", "GameError", "Oracles", "Result", "play", "required_wins", "passes", "random_bytes",
           "new_state", "finish_once", "hoeffding", "binomial_tail", "guessing_adversary"]

#: The false-pass probability the lab's checks allow (at most one wrongly passed check in a million).
FALSE_PASS = 1e-6


class GameError(ValueError):
    """A malformed query, an unknown oracle, an exhausted budget or a finished game."""


@dataclass(frozen=True)
class Game:
    """One security game: its name, its kind (``"distinguish"`` or ``"forge"``), the oracles it
    offers, its public parameters and the three challenger functions."""

    name: str
    kind: str
    oracles: tuple[str, ...]
    public: Mapping[str, Any]
    new_game: Callable[[Callable[[int], bytes]], dict]
    oracle: Callable[[dict, str, tuple], Any]
    finish: Callable[[dict, Any], bool]
    description: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("distinguish", "forge"):
            raise ValueError(f"game kind must be 'distinguish' or 'forge', got {self.kind!r}")


def new_state(token_bytes: Callable[[int], bytes], **fields) -> dict:
    """A fresh state: the secret bit ``b``, a 32-byte seed for the challenger's own randomness, a
    draw counter, query counts and the ``fields`` given. Validates ``token_bytes``."""
    if not callable(token_bytes):
        raise TypeError("token_bytes must be a function n -> n random bytes (secrets.token_bytes)")
    head = token_bytes(33)
    if not isinstance(head, (bytes, bytearray)) or len(head) != 33:
        raise ValueError("token_bytes(n) must return n bytes")
    return {"b": head[0] & 1, "seed": bytes(head[1:]), "draws": 0, "queries": {}, "finished": False,
            **fields}


def random_bytes(state: dict, n: int) -> bytes:
    """``n`` bytes of the challenger's own randomness: SHAKE-256(seed || counter), counter advanced."""
    state["draws"] += 1
    return hashlib.shake_256(state["seed"] + state["draws"].to_bytes(8, "big")).digest(n)


def count_query(state: dict, name: str, budget: int | None) -> None:
    """Count a query to oracle ``name``; refuse it once the game is over or the budget is spent."""
    if state["finished"]:
        raise GameError("the game is over: no queries after the guess")
    used = state["queries"].get(name, 0)
    if budget is not None and used >= budget:
        raise GameError(f"oracle {name!r} allows {budget} queries in a game")
    state["queries"][name] = used + 1


def finish_once(state: dict) -> None:
    """Mark the game finished; a second guess in the same game is refused."""
    if state["finished"]:
        raise GameError("this game already has its guess")
    state["finished"] = True


def _bit(guess) -> int | None:
    """0 or 1 for a bool or an integer 0/1 (numpy's too), else None."""
    if isinstance(guess, numbers.Integral) and int(guess) in (0, 1):
        return int(guess)
    return None


def as_bit(guess) -> int:
    """A distinguishing guess as 0 or 1 (bools and the integers 0/1 only)."""
    bit = _bit(guess)
    if bit is None:
        raise GameError(f"the guess of a distinguishing game is 0 or 1 (or a bool), got {guess!r}")
    return bit


class Oracles:
    """What an adversary is handed: one callable per oracle, and ``public`` (a dict). Nothing in it
    names the secret bit or the keys (they stay in the challenger's state)."""

    def __init__(self, game: Game, state: dict) -> None:
        self.public = dict(game.public)
        for name in game.oracles:
            setattr(self, name, self._make(game, state, name))

    @staticmethod
    def _make(game: Game, state: dict, name: str):
        def call(*request):
            return game.oracle(state, name, request)

        call.__name__ = name
        return call

    def __repr__(self) -> str:
        names = ", ".join(k for k in vars(self) if k != "public")
        return f"<oracles: {names}; public {self.public}>"


def hoeffding(runs: int, delta: float) -> float:
    """Half-width of a two-sided Hoeffding interval on a win rate from ``runs`` independent runs:
    the true rate lies within it except with probability ``delta``."""
    return math.sqrt(math.log(2 / delta) / (2 * runs))


@dataclass(frozen=True)
class Result:
    """What :func:`play` measured: wins over all runs and, for a distinguishing game, how often the
    guess was 1 in each world; the advantage with a Hoeffding interval at confidence ``1 - delta``."""

    game: str
    kind: str
    runs: int
    wins: int
    ones: dict = field(default_factory=dict)  # b -> runs in world b whose guess was 1
    worlds: dict = field(default_factory=dict)  # b -> runs in world b
    delta: float = 0.05

    @property
    def win_rate(self) -> float:
        return self.wins / self.runs

    @property
    def advantage(self) -> float:
        """The definition, measured: ``Pr[guess 1 | b = 1] - Pr[guess 1 | b = 0]`` for a
        distinguishing game (negative: the guess is the wrong way round; nan if a world never came
        up), ``Pr[win]`` for a forgery."""
        if self.kind == "forge":
            return self.win_rate
        if not (self.worlds.get(0) and self.worlds.get(1)):
            return math.nan
        return self.ones[1] / self.worlds[1] - self.ones[0] / self.worlds[0]

    def half_width(self, delta: float) -> float:
        """The advantage lies within this of its estimate except with probability ``delta``
        (Hoeffding on each world's acceptance rate, union bound over the two)."""
        if self.kind == "forge":
            return hoeffding(self.runs, delta)
        if not (self.worlds.get(0) and self.worlds.get(1)):
            return math.inf
        return hoeffding(self.worlds[0], delta / 2) + hoeffding(self.worlds[1], delta / 2)

    @property
    def interval(self) -> tuple[float, float]:
        """The advantage's two-sided interval at confidence ``1 - delta``, clipped to its range."""
        h = self.half_width(self.delta)
        low = 0.0 if self.kind == "forge" else -1.0
        return max(low, self.advantage - h), min(1.0, self.advantage + h)

    def __str__(self) -> str:
        lo, hi = self.interval
        return (f"{self.game}: advantage {self.advantage:+.3f} ({100 * (1 - self.delta):g}% interval "
                f"[{lo:+.3f}, {hi:+.3f}]; {self.wins}/{self.runs} runs won)")


def play(game: Game, adversary: Callable[[Oracles], Any], runs: int, *,
         token_bytes: Callable[[int], bytes] = secrets.token_bytes, delta: float = 0.05) -> Result:
    """Run ``adversary`` in ``runs`` fresh games (fresh bit, fresh keys each) and measure it.

    An exception raised by the adversary propagates (it is a bug to fix, not a lost game); a
    malformed guess is a lost game."""
    if not isinstance(game, Game):
        raise TypeError(f"game must be a labkit.games.Game, got {type(game).__name__}")
    if not callable(adversary):
        raise TypeError("the adversary must be a function adversary(oracles) -> guess")
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise ValueError(f"runs must be a positive int, got {runs!r}")
    if not 0 < delta < 1:
        raise ValueError(f"delta must lie in (0, 1), got {delta}")
    wins, ones, worlds = 0, {0: 0, 1: 0}, {0: 0, 1: 0}
    for _ in range(runs):
        state = game.new_game(token_bytes)
        b = state["b"]
        guess = adversary(Oracles(game, state))
        try:
            won = bool(game.finish(state, guess))
        except GameError:
            won = False
        wins += won
        worlds[b] += 1
        if game.kind == "distinguish":  # the guess was 1: right in world 1, wrong (but a bit) in world 0
            ones[b] += _bit(guess) == 1
    return Result(game.name, game.kind, runs, wins, ones if game.kind == "distinguish" else {},
                  worlds, delta)


def binomial_tail(n: int, k: int, p: float) -> float:
    """``P[Binomial(n, p) >= k]``, summed exactly in floating point."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    return math.fsum(math.comb(n, i) * p ** i * (1 - p) ** (n - i) for i in range(k, n + 1))


def required_wins(game: Game, runs: int, threshold: float, *, false_pass: float = FALSE_PASS) -> int:
    """The fewest wins out of ``runs`` that an adversary whose advantage is at most ``threshold``
    reaches with probability at most ``false_pass``.

    Its win rate per run is then at most ``p0 = (1 + threshold) / 2`` (distinguishing) or
    ``threshold`` (forgery), whatever it learnt in earlier runs, since every run has fresh secrets;
    so its wins are dominated by Binomial(runs, p0), whose tail bounds the false pass."""
    p0 = (1 + threshold) / 2 if game.kind == "distinguish" else threshold
    if not 0 <= p0 < 1:
        raise ValueError(f"threshold {threshold} leaves no room to pass")
    for k in range(runs + 1):
        if binomial_tail(runs, k, p0) <= false_pass:
            return k
    raise ValueError(f"{runs} runs cannot show advantage above {threshold} at false-pass {false_pass}")


def passes(game: Game, adversary, *, runs: int, threshold: float,
           token_bytes: Callable[[int], bytes] = secrets.token_bytes) -> tuple[bool, Result, int]:
    """``(passed, result, needed)``: whether ``adversary`` won at least :func:`required_wins` of
    ``runs`` fresh games, so an adversary of advantage at most ``threshold`` passes with
    probability at most 1e-6."""
    needed = required_wins(game, runs, threshold)
    result = play(game, adversary, runs, token_bytes=token_bytes)
    return result.wins >= needed, result, needed


def guessing_adversary(oracles: Oracles) -> int:
    """The adversary that asks nothing and guesses a fair coin: advantage 0 in every game."""
    return secrets.randbits(1)
