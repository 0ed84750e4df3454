"""Checked concept questions (exercise kind ``"quiz"``): multiple choice on the *why*.

labkit stores no answer, not even a digest (a salted digest of one letter among four falls to
four guesses offline). The right letters live in the instructor notebooks, between the solution
markers, and the challenge service builds its answer key from them
(:mod:`labkit.challenges.answers`); a check sends the student's letter there and gets back the
verdict and, when right, a signed receipt. The service counts every answer.

A question's text lives here only: each asks the student to apply an idea to a case the notebook
did not show (predict an output, spot the flaw, choose the parameter), with distractors taken from
real misconceptions and options of similar length, so that neither the longest nor the shortest
option gives the answer away (``tests/test_exercises_quiz.py`` bounds both by chance). The
notebook's markdown cell is :func:`markdown` of the id, written by ``labkit-quiz-cells``.
"""
from __future__ import annotations

import string

from labkit.challenges import client
from labkit.exercises import exercise, get_exercise

__all__ = ["QUESTIONS", "quiz", "markdown"]

#: Every registered question by id: (question text, {letter: choice text}).
QUESTIONS: dict[str, tuple[str, dict[str, str]]] = {}


def _normalize(answer) -> str:
    """A choice as one lower-case letter: ``"B"``, ``" b "``, ``"(b)"`` and ``"b."`` are all ``"b"``."""
    if not isinstance(answer, str):
        raise TypeError(f"answer with the letter of one choice as a string, got {type(answer).__name__}")
    return str.__str__(answer).strip().strip("().").strip().lower()


def quiz(exercise_id: str, question: str, choices: list[str], *, hint: str | tuple[str, ...],
         where: str) -> None:
    """Register a multiple-choice question (the challenge service holds its answer); ``where`` is
    ``"class"`` or ``"homework"`` as for :func:`labkit.exercises.exercise`."""
    if not 2 <= len(choices) <= 6:
        raise ValueError(f"a quiz needs 2 to 6 choices, got {len(choices)}")
    lettered = dict(zip(string.ascii_lowercase, choices))
    QUESTIONS[exercise_id] = (question, lettered)

    def check_choice(answer):
        letter = _normalize(answer)
        if letter not in lettered:
            return False, f"answer with one letter among {', '.join(lettered)}."
        return client.answer(exercise_id, letter)

    exercise(exercise_id, question, hint=hint, kind="quiz", where=where, remote=True)(check_choice)


def markdown(exercise_id: str) -> str:
    """The question and its lettered choices as notebook markdown."""
    where = get_exercise(exercise_id).where  # registers the question (its chapter module loads)
    question, lettered = QUESTIONS[exercise_id]
    lines = [f"**{exercise_id}** (concept, {where}) {question}", ""]
    lines += [f"* **({letter})** {text}" for letter, text in lettered.items()]
    lines += ["", 'Answer with the letter, e.g. `answer = "a"`.']
    return "\n".join(lines)
