"""Checked concept questions (exercise kind ``"quiz"``): multiple choice on the *why*.

The right choice is never stored in plain text: a question keeps only
``sha256("labkit-quiz|<id>|<letter>")``, salted by its id so that equal letters of different
questions give unrelated digests, and a check compares the digest of the student's letter. The
answer itself lives in the instructor notebook, between the solution markers.

A question's text lives here only: each asks the student to apply an idea to a case the notebook
did not show (predict an output, spot the flaw, choose the parameter), with distractors taken from
real misconceptions and options of similar length, so that neither the longest nor the shortest
option gives the answer away (``tests/test_exercises_quiz.py`` bounds both by chance). The
notebook's markdown cell is :func:`markdown` of the id, written by ``tools/quiz_cells.py``.
"""
from __future__ import annotations

import hashlib
import string

from labkit.exercises import exercise

__all__ = ["QUESTIONS", "answer_digest", "quiz", "markdown"]

#: Every registered question by id: (question text, {letter: choice text}).
QUESTIONS: dict[str, tuple[str, dict[str, str]]] = {}


def _normalize(answer) -> str:
    """A choice as one lower-case letter: ``"B"``, ``" b "``, ``"(b)"`` and ``"b."`` are all ``"b"``."""
    if not isinstance(answer, str):
        raise TypeError(f"answer with the letter of one choice as a string, got {type(answer).__name__}")
    return answer.strip().strip("().").strip().lower()


def answer_digest(exercise_id: str, answer: str) -> str:
    """The salted digest a question stores for its right ``answer`` letter (hex sha256)."""
    return hashlib.sha256(f"labkit-quiz|{exercise_id}|{_normalize(answer)}".encode()).hexdigest()


def quiz(exercise_id: str, question: str, choices: list[str], digest: str, *,
         hint: str | tuple[str, ...], where: str) -> None:
    """Register a multiple-choice question whose right letter hashes to ``digest``; ``where`` is
    ``"class"`` or ``"homework"`` as for :func:`labkit.exercises.exercise`."""
    if not 2 <= len(choices) <= 6:
        raise ValueError(f"a quiz needs 2 to 6 choices, got {len(choices)}")
    if len(digest) != 64 or set(digest) - set(string.hexdigits.lower()):
        raise ValueError("digest must be a lower-case hex sha256 (see answer_digest)")
    lettered = dict(zip(string.ascii_lowercase, choices))
    QUESTIONS[exercise_id] = (question, lettered)

    def check_choice(answer):
        letter = _normalize(answer)
        if letter not in lettered:
            return False, f"answer with one letter among {', '.join(lettered)}."
        if answer_digest(exercise_id, letter) == digest:
            return True, f"({letter}) is right."
        return False, f"({letter}) is not the best answer: reread the section and try again."

    exercise(exercise_id, question, hint=hint, kind="quiz", where=where)(check_choice)


def markdown(exercise_id: str) -> str:
    """The question and its lettered choices as notebook markdown."""
    from labkit.exercises import _get

    question, lettered = QUESTIONS[exercise_id]
    lines = [f"**{exercise_id}** (concept, {_get(exercise_id).where}) {question}", ""]
    lines += [f"* **({letter})** {text}" for letter, text in lettered.items()]
    lines += ["", 'Answer with the letter, e.g. `answer = "a"`.']
    return "\n".join(lines)
