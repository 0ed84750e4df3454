"""Server-side challenge definitions: the secrets, oracles and answer checks of the attack exercises.

These classes run only in the challenge service's process. Each attack exercise is one small
class with plain-data methods:

- ``new_state(token, fresh) -> (state, public)``: draw the secret with ``token`` (the CSPRNG,
  :func:`secrets.token_bytes`); ``state`` is stored in the service's database, ``public`` (the
  challenge's ciphertexts, public keys, ...) goes to the kernel. ``fresh`` is True for the attempt a
  check of a function answer makes ("a fresh network for every check"), False for the attempt a
  notebook's ``*_challenge()`` hands out.
- ``new_attempt(token, fresh, student)``: what the service calls; by default ``new_state``. A
  challenge that keeps live state in the service's memory (the games) overrides it, to bound what
  one student may hold there.
- ``rows(oracle, request) -> int``: how many query rows a batch holds (by default the rows of a
  2-d array, else one); the service counts them against the attempt's budget before answering.
- ``query(state, oracle, request, memo) -> reply``: one batch to a named oracle. ``memo`` is a
  per-attempt cache for what is costly to rebuild (a network).
- ``check(state, answer) -> (ok, message)``: the verdict on a plain-data answer.

Class attributes give the budgets (``budget`` for a fresh attempt, ``run_budget`` for the handed-out
one), ``max_wrong`` (answers an attempt accepts before refusing all), ``answers`` (``"run"``:
the handed-out attempt is answered, e.g. a recovered cookie; ``"fresh"``: a check runs the
student's function on a fresh attempt and answers that one) and ``counted`` (False: the challenge
counts its queries itself, as a game counts each of its games' queries, and the service's database
does not count rows).
"""
from __future__ import annotations

from typing import Any, Callable

__all__ = ["Challenge", "ChallengeError", "REGISTRY", "register", "as_bytes", "as_int"]

Token = Callable[[int], bytes]


class ChallengeError(ValueError):
    """A request the challenge cannot serve (wrong oracle, malformed query); its text is shown."""


class Challenge:
    """One attack exercise's server side (see the module docstring)."""

    exercise: str = ""
    oracles: tuple[str, ...] = ()
    budget: int | None = None
    run_budget: int | None = None
    max_wrong: int | None = None
    answers: str = "run"
    counted: bool = True

    def new_state(self, token: Token, fresh: bool) -> tuple[dict, Any]:
        raise NotImplementedError

    def new_attempt(self, token: Token, fresh: bool, student: str) -> tuple[dict, Any]:
        """A new attempt of ``student``: by default the same for every student (:meth:`new_state`)."""
        return self.new_state(token, fresh)

    def prepare(self) -> None:
        """Build what every attempt shares (a trained model), ahead of the first attempt: the service
        calls it in the background when a student starts on the exercise's chapter."""

    def warms_with(self, exercise: str) -> bool:
        """Whether a student starting on ``exercise`` is about to reach this one (then the service
        :meth:`prepare` s it in the background): by default, any exercise of the same chapter."""
        return exercise.split(".")[0] == self.exercise.split(".")[0]

    def rows(self, oracle: str, request: Any) -> int:
        import numpy as np

        return int(request.shape[0]) if isinstance(request, np.ndarray) and request.ndim >= 2 else 1

    def query(self, state: dict, oracle: str, request: Any, memo: dict) -> Any:
        raise ChallengeError(f"exercise {self.exercise} has no oracle")

    def check(self, state: dict, answer: Any) -> tuple[bool, str]:
        raise NotImplementedError


REGISTRY: dict[str, Challenge] = {}


def register(cls: type[Challenge]) -> type[Challenge]:
    """Class decorator: one instance per exercise id."""
    if not cls.exercise or cls.exercise in REGISTRY:
        raise ValueError(f"challenge {cls.__name__} needs a new exercise id, got {cls.exercise!r}")
    if cls.answers not in ("run", "fresh"):
        raise ValueError(f"{cls.__name__}.answers must be 'run' or 'fresh'")
    REGISTRY[cls.exercise] = cls()
    return cls


def as_bytes(value: Any, length: int | None = None, what: str = "answer") -> bytes:
    """A plain-data answer as bytes of ``length`` (ChallengeError otherwise)."""
    if not isinstance(value, bytes):
        raise ChallengeError(f"the {what} must be bytes, got {type(value).__name__}")
    if length is not None and len(value) != length:
        raise ChallengeError(f"the {what} must be {length} bytes, got {len(value)}")
    return value


def as_int(value: Any, what: str = "answer") -> int:
    """A plain-data answer as an int (a bool is not one)."""
    if type(value) is not int:
        raise ChallengeError(f"the {what} must be an int, got {type(value).__name__}")
    return value
