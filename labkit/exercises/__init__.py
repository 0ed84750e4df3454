"""Exercise checks: immediate feedback for students; hints only when asked, never a solution.

Each chapter registers its exercises in a module of this package (``ch01_feistel.py``, ...) with
:func:`exercise`. In a notebook::

    from labkit import exercises as ex
    ex.check("01.1", my_answer)     # prints "Correct" or "Not yet", returns True/False
    ex.hint("01.1")                  # the hint again
    ex.solution("01.1")              # where the worked solution is: the instructor notebook

Checkers compute the expected answer with labkit itself (never a stored constant), so a check
cannot drift from the code it teaches. Solutions are not stored here (students can read
labkit): they live only in the instructor notebooks, between ``### BEGIN SOLUTION`` and
``### END SOLUTION``, which the student copies (``make student``) leave out.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["Exercise", "exercise", "check", "hint", "solution", "registry", "Feedback", "KINDS"]

#: What an exercise asks for: code to write, an attack to run, a value to compute, a concept question.
KINDS = ("implement", "attack", "value", "quiz")


@dataclass(frozen=True)
class Exercise:
    """One exercise: an id like ``"02.3"``, a one-line task, a checker, a hint, a kind."""

    id: str
    title: str
    checker: Callable[[Any], bool | tuple[bool, str]]
    hint: str
    kind: str = "value"


@dataclass(frozen=True)
class Feedback:
    """What :func:`check` returns: truthy when correct; renders as a coloured line in Jupyter."""

    exercise_id: str
    correct: bool
    message: str

    def __bool__(self) -> bool:
        return self.correct

    def __str__(self) -> str:
        mark = "Correct" if self.correct else "Not yet"
        return f"[{self.exercise_id}] {mark}: {self.message}"

    __repr__ = __str__

    def _repr_html_(self) -> str:
        import html

        colour = "#1a7f37" if self.correct else "#b35900"
        icon = "✔" if self.correct else "✘"
        return (
            f'<div style="color:{colour};font-weight:600">{icon} [{html.escape(self.exercise_id)}] '
            f'{"Correct" if self.correct else "Not yet"}: {html.escape(self.message)}</div>'
        )


#: What :func:`check` says to the placeholder answer (``...`` or ``None``).
NOT_ANSWERED = "not answered yet: replace the ... with your answer."

_REGISTRY: dict[str, Exercise] = {}
_LOADED = False


def exercise(id: str, title: str, *, hint: str, kind: str = "value"):
    """Decorator registering ``checker(answer) -> bool | (bool, message)`` as exercise ``id``."""
    if kind not in KINDS:
        raise ValueError(f"exercise kind must be one of {KINDS}, got {kind!r}")

    def register(checker):
        if id in _REGISTRY:
            raise ValueError(f"exercise {id!r} is registered twice")
        _REGISTRY[id] = Exercise(id, title, checker, hint, kind)
        return checker

    return register


def _load_all() -> None:
    global _LOADED
    if _LOADED:
        return
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
    _LOADED = True


def registry() -> dict[str, Exercise]:
    """All registered exercises by id."""
    _load_all()
    return dict(_REGISTRY)


def _get(exercise_id: str) -> Exercise:
    _load_all()
    try:
        return _REGISTRY[exercise_id]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise ValueError(f"unknown exercise {exercise_id!r}; known: {known}") from None


def check(exercise_id: str, answer: Any) -> Feedback:
    """Check ``answer`` for an exercise: a clear "Correct" or "Not yet", never a traceback.

    ``...`` (Ellipsis, the placeholder of the student copies) or ``None`` is "not answered yet"
    and gets no hint. A check never shows the hint or the solution: hints come only when asked
    for with :func:`hint` (issue 15: "hints only when asked; check never prints a solution").
    """
    ex = _get(exercise_id)
    if answer is Ellipsis or answer is None:
        return Feedback(ex.id, False, NOT_ANSWERED)
    ask = f'(ex.hint("{ex.id}") gives a hint)'
    try:
        result = ex.checker(answer)
    except Exception as err:  # a student's answer of the wrong shape must give feedback, not a crash
        return Feedback(ex.id, False, f"could not check that answer ({err}) {ask}")
    ok, message = result if isinstance(result, tuple) else (bool(result), "")
    if ok:
        _record_progress(ex.id)
        return Feedback(ex.id, True, message or ex.title)
    return Feedback(ex.id, False, (message + " " if message else "") + ask)


def _record_progress(exercise_id: str) -> None:
    """Remember a passed exercise for the landing notebook's progress view (labkit.progress)."""
    from labkit import progress

    try:
        progress.record(exercise_id)
    except Exception:  # progress is a convenience: it must never break a check
        pass


def hint(exercise_id: str) -> str:
    """The hint of an exercise."""
    return _get(exercise_id).hint


def solution(exercise_id: str) -> str:
    """Where the worked solution of an exercise is: labkit stores none, so a student reading the
    package finds no answers; the instructor notebook holds it between the solution markers."""
    chapter = _get(exercise_id).id.split(".")[0]
    return (f"The worked solution of {exercise_id} is in the instructor copy of chapter {chapter}'s "
            "notebook (notebooks/ in the lab's repository), between ### BEGIN SOLUTION and "
            "### END SOLUTION; student copies leave it out. Try ex.hint first.")
