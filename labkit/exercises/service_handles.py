"""This kernel run's attempts at the attack exercises, held as handles to the challenge service.

The secrets themselves (keys, cookies, leakers), the query budgets and the attempt counters live
in the challenge service (:mod:`labkit.challenges`), a separate process: a challenge function of a
chapter returns the attempt's public data and oracles that send queries there, and a check sends
the answer there and gets back a verdict and, when it is right, a signed receipt. What this module
keeps is an attempt id per exercise, so the challenge a student attacks and the check of the answer
agree for the whole run; :func:`new_run` forgets them, as a fresh kernel does.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from labkit import checks
from labkit.challenges import client

__all__ = ["new_run", "run", "answer_run", "ServedOracle", "run_on_fresh_attempt"]


def new_run() -> None:
    """Forget this run's attempts, as a fresh kernel would: the next challenge draws new secrets."""
    client.new_run()


def run(exercise: str) -> client.Attempt:
    """This run's attempt of ``exercise`` (started in the service on first use)."""
    return client.run_attempt(exercise)


def answer_run(exercise: str, value: Any) -> tuple[bool, str, str | None]:
    """The service's verdict on ``value`` as the answer to this run's attempt of ``exercise``."""
    return client.run_attempt(exercise).answer(value)


class ServedOracle:
    """An oracle served by the challenge service: ``oracle(*args)`` sends one request (the argument,
    or the arguments as a list) through ``encode`` and returns the reply through ``decode``.
    ``queries`` is the count the service keeps; nothing here changes it."""

    __slots__ = ("_attempt", "_name", "_encode", "_decode")

    def __init__(self, attempt: client.Attempt, name: str, encode: Callable = None, decode: Callable = None):
        self._attempt, self._name = attempt, name
        self._encode, self._decode = encode or (lambda *a: a[0] if len(a) == 1 else list(a)), decode or (lambda r: r)

    def __call__(self, *args):
        return self._decode(self._attempt.query(self._name, self._encode(*args)))

    @property
    def queries(self) -> int:
        return self._attempt.queries_used

    @property
    def budget(self) -> int | None:
        return self._attempt.budget

    def __repr__(self) -> str:
        return f"ServedOracle({self._attempt.exercise}, {self._name}, queries={self.queries})"


def run_on_fresh_attempt(exercise: str, answer: Any, n_inputs: int, signature: str, *,
                         oracle: str = "network", args: Callable[[Any], tuple] = lambda public: ()):
    """Run a student's attack ``answer(oracle, *args)`` against a fresh attempt of ``exercise`` (a
    fresh secret in the service, behind its budget): ``(returned value, attempt, None)``, or
    ``(None, None, feedback)`` when the answer is no function or asks past the budget."""
    if not callable(answer):
        return None, None, f"the answer must be a function {signature}."
    attempt = client.attempt(exercise, fresh=True)
    handle = client.Oracle(attempt, oracle, n_inputs)
    try:
        return answer(handle, *args(attempt.public)), attempt, None
    except checks.QueryBudgetExceeded:
        budget = attempt.budget
        return None, None, (f"{signature.split('(')[0]} asked for more than {budget} queries: the attack "
                            "must be linear, a few queries per key bit.")


def as_array(value, dtype) -> np.ndarray:
    """``value`` (a tensor, an array or a list) as a numpy array of ``dtype``."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=dtype)
