"""The check of a game exercise: the student's adversary plays fresh games whose challengers the
challenge service hosts (:mod:`labkit.challenges.defs_games`), and the service gives the verdict.

The adversary runs here, in the kernel (it is the student's work); the secret bits, keys, query
counts and the verdict stay in the service. The check starts one attempt (the service draws all
the games), runs one adversary per game in its own greenlet (the ``greenlet`` package: the
adversaries take turns in this thread, so a check costs one round trip per round of queries, not
one per query, with no thread switches) with :class:`RemoteOracles` (one callable per oracle of
the game, and ``public``), gathers one step of every game still playing into one request, and
hands in each game's guess the same way. The service counts the wins: an
adversary whose advantage is at most the exercise's threshold passes with probability at most
1e-6 (:func:`labkit.games.required_wins`); a passing check returns the service's signed receipt.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
from greenlet import greenlet

from labkit import games
from labkit.challenges import client, wire

__all__ = ["RemoteOracles", "check_adversary"]

GUESS = "guess"  # labkit.challenges.defs_games.GUESS (the service's side, not imported here)


def _arg(value: Any) -> Any:
    """A query argument as wire data: arrays of other dtypes as int64 or float64, as a game reads them."""
    if isinstance(value, np.ndarray) and value.dtype.name not in wire.DTYPES:
        if np.issubdtype(value.dtype, np.integer):
            return value.astype(np.int64)
        if np.issubdtype(value.dtype, np.floating):
            return value.astype(np.float64)
    if isinstance(value, (list, tuple)):
        return [_arg(v) for v in value]
    return value


def _reply(value: Any) -> Any:
    """A reply as the game returns it: lists back into tuples."""
    return tuple(_reply(v) for v in value) if isinstance(value, list) else value


class RemoteOracles:
    """What an adversary is handed for one game: ``public`` (the game's public parameters) and one
    callable per oracle, whose answers come from the challenge service. It holds the game's index
    in the check and nothing of the challenger."""

    def __init__(self, index: int, oracles: list[str], public: dict):
        self.public = dict(public)
        for name in oracles:
            setattr(self, name, self._make(index, name))

    @staticmethod
    def _make(index: int, name: str):
        def call(*request):
            try:
                args = wire.decode(wire.encode(_arg(list(request))))
            except wire.WireError as err:
                raise games.GameError(f"a query must be plain data ({err})") from None
            return _step([index, name, args])

        call.__name__ = name
        return call

    def __repr__(self) -> str:
        names = ", ".join(k for k in vars(self) if k != "public")
        return f"<oracles: {names}; public {self.public}>"


def _step(item: list):
    """From inside an adversary's greenlet: hand one step to the check's loop, get the reply."""
    parent = greenlet.getcurrent().parent
    if parent is None:
        raise RuntimeError("game oracles answer only while their check runs")
    ok, value = parent.switch(item)
    if not ok:
        raise games.GameError(value)
    return value


def _play(index: int, adversary: Callable, oracles: RemoteOracles):
    guess = adversary(oracles)
    try:
        wire.encode(guess)
    except wire.WireError:
        guess = None  # not plain data: a malformed guess, a lost game (as in labkit.games.play)
    _step([index, GUESS, [guess]])
    return None


def _run(attempt: client.Attempt, adversary: Callable) -> BaseException | None:
    """Play every game of ``attempt``: one greenlet per game (the adversary's own code, in this
    thread), one request per round holding the pending step of every game still playing. The first
    exception an adversary raises ends the check (the others are dropped)."""
    public = attempt.public
    players = [greenlet(_play) for _ in range(public["runs"])]
    pending = {}
    for index, player in enumerate(players):
        try:
            item = player.switch(index, adversary, RemoteOracles(index, public["oracles"], public["public"]))
        except BaseException as err:  # raised before its first step
            return err
        if not player.dead:
            pending[index] = item
    while pending:
        batch = [pending[i] for i in sorted(pending)]
        try:
            answers = attempt.query("play", batch)
        except client.ChallengeServiceError as err:
            return err
        pending = {}
        for item, (ok, value) in zip(batch, answers):
            player = players[item[0]]
            try:
                nxt = player.switch((ok, _reply(value) if ok else value))
            except BaseException as err:
                return err
            if not player.dead:
                pending[item[0]] = nxt
    return None


def check_adversary(answer, exercise: str) -> tuple[bool, str, str | None]:
    """``(ok, message, receipt)``: the service's verdict on ``answer(oracles) -> guess`` playing the
    fresh games of game exercise ``exercise``."""
    if not callable(answer):
        return False, "the answer must be a function adversary(oracles) -> guess.", None
    attempt = client.attempt(exercise, fresh=True)
    error = _run(attempt, answer)
    if isinstance(error, client.ChallengeServiceError):
        return False, f"the challenge service refused the games: {error}", None
    if error is not None:
        return False, f"your adversary raised {type(error).__name__}: {error}", None
    return attempt.answer("done")
