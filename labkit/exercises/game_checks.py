"""The check of a game exercise: the student's adversary plays fresh games whose challengers the
challenge service hosts (:mod:`labkit.challenges.defs_games`), and the service gives the verdict.

The adversary runs here, in the kernel (it is the student's work); the secret bits, keys, query
counts and the verdict stay in the service. The check starts one attempt (the service draws all
the games), runs one adversary per game in its own thread with :class:`RemoteOracles` (one
callable per oracle of the game, and ``public``), gathers one step of every game still playing
into one request, and hands in each game's guess the same way. The service counts the wins: an
adversary whose advantage is at most the exercise's threshold passes with probability at most
1e-6 (:func:`labkit.games.required_wins`); a passing check returns the service's signed receipt.
"""
from __future__ import annotations

import threading
from typing import Any, Callable

import numpy as np

from labkit import games
from labkit.challenges import client, wire

__all__ = ["RemoteOracles", "check_adversary", "distinguisher_adversary"]

GUESS = "guess"  # labkit.challenges.defs_games.GUESS (the service's side, not imported here)


class _Stop(BaseException):
    """Ends the adversaries still playing once one of them failed (not an Exception: an adversary's
    ``except Exception`` does not swallow it)."""


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


class _Batcher:
    """Gathers one pending step per live adversary and sends them together."""

    def __init__(self, attempt: client.Attempt, runs: int):
        self.attempt, self.live = attempt, runs
        self.cond = threading.Condition()
        self.pending: dict[int, list] = {}
        self.events = [threading.Event() for _ in range(runs)]
        self.replies: list = [None] * runs
        self.error: BaseException | None = None

    def step(self, index: int, op: str, args: list):
        """Called from adversary ``index``'s thread: blocks until the service answered."""
        try:
            item = [index, op, wire.decode(wire.encode(_arg(args)))]
        except wire.WireError as err:
            raise games.GameError(f"a query must be plain data ({err})") from None
        with self.cond:
            if self.error is not None:
                raise _Stop()
            self.events[index].clear()
            self.pending[index] = item
            self.cond.notify()
        self.events[index].wait()
        ok, value = self.replies[index]
        if ok is None:
            raise _Stop()
        if not ok:
            raise games.GameError(value)
        return value

    def done(self, index: int, error: BaseException | None = None) -> None:
        with self.cond:
            self.live -= 1
            if error is not None and self.error is None:
                self.error = error
            self.cond.notify()

    def run(self) -> None:
        """The main thread's loop: one request per round, until every adversary has finished."""
        while True:
            with self.cond:
                while self.live and len(self.pending) < self.live and self.error is None:
                    self.cond.wait()
                if self.error is not None or not self.live:
                    for index in self.pending:
                        self.replies[index] = (None, None)
                        self.events[index].set()
                    self.pending.clear()
                    if self.error is not None or not self.live:
                        return
                batch = [self.pending[i] for i in sorted(self.pending)]
                self.pending = {}
            try:
                answers = self.attempt.query("play", batch)
            except BaseException as err:  # the service refused the batch: stop every adversary
                with self.cond:
                    self.error = self.error or err
                answers = [[None, None]] * len(batch)
            for item, (ok, value) in zip(batch, answers):
                self.replies[item[0]] = (ok, _reply(value) if ok else value)
                self.events[item[0]].set()


class RemoteOracles:
    """What an adversary is handed for one game: ``public`` (the game's public parameters) and one
    callable per oracle, whose answers come from the challenge service. It holds the game's index
    in the check and nothing of the challenger."""

    def __init__(self, batcher: _Batcher, index: int, oracles: list[str], public: dict):
        self.public = dict(public)
        for name in oracles:
            setattr(self, name, self._make(batcher, index, name))

    @staticmethod
    def _make(batcher: _Batcher, index: int, name: str):
        def call(*request):
            return batcher.step(index, name, list(request))

        call.__name__ = name
        return call

    def __repr__(self) -> str:
        names = ", ".join(k for k in vars(self) if k != "public")
        return f"<oracles: {names}; public {self.public}>"


def _play(batcher: _Batcher, index: int, adversary: Callable, oracles: RemoteOracles) -> None:
    try:
        guess = adversary(oracles)
        try:
            wire.encode(guess)
        except wire.WireError:
            guess = None  # not plain data: a malformed guess, a lost game (as in labkit.games.play)
        batcher.step(index, GUESS, [guess])
    except _Stop:
        batcher.done(index)
    except BaseException as err:
        batcher.done(index, err)
    else:
        batcher.done(index)


def check_adversary(answer, exercise: str) -> tuple[bool, str, str | None]:
    """``(ok, message, receipt)``: the service's verdict on ``answer(oracles) -> guess`` playing the
    fresh games of game exercise ``exercise``."""
    if not callable(answer):
        return False, "the answer must be a function adversary(oracles) -> guess.", None
    attempt = client.attempt(exercise, fresh=True)
    public = attempt.public
    batcher = _Batcher(attempt, public["runs"])
    threads = [threading.Thread(target=_play, daemon=True, name=f"labkit-game-{i}",
                                args=(batcher, i, answer, RemoteOracles(batcher, i, public["oracles"], public["public"])))
               for i in range(public["runs"])]
    for thread in threads:
        thread.start()
    batcher.run()
    for thread in threads:
        thread.join()
    if batcher.error is not None:
        err = batcher.error
        if isinstance(err, client.ChallengeServiceError):
            return False, f"the challenge service refused the games: {err}", None
        return False, f"your adversary raised {type(err).__name__}: {err}", None
    return attempt.answer("done")


def distinguisher_adversary(distinguisher: Callable) -> Callable:
    """An adversary from a chapter 01 distinguisher ``distinguisher(oracle, half_bits, rng) -> bool``
    (True: "Feistel"), with a fresh numpy generator per game."""
    import secrets

    def adversary(oracles):
        rng = np.random.default_rng(secrets.randbits(128))
        return int(bool(distinguisher(oracles, oracles.public["half_bits"], rng)))

    return adversary
