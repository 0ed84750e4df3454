"""Concept questions (kind "quiz"): at least 3 per unit 00-07, exactly one right choice each,
the answer never stored or printed in plain text, and the notebooks show the registered text."""
from __future__ import annotations

import re
import string
from collections import defaultdict
from pathlib import Path

import nbformat
import pytest

from labkit import course
from labkit import exercises as ex
from labkit.exercises import quiz as qz

ROOT = Path(__file__).resolve().parent.parent
QUIZZES = sorted(i for i, e in ex.registry().items() if e.kind == "quiz")


def _chapter_ids():
    by_chapter = defaultdict(list)
    for exercise_id in ex.registry():
        chapter, number = exercise_id.split(".")
        by_chapter[chapter].append(int(number))
    return by_chapter


def test_every_kind_is_known():
    assert {e.kind for e in ex.registry().values()} <= set(ex.KINDS)
    with pytest.raises(ValueError, match="kind"):
        ex.exercise("99.1", "t", hint="h", kind="essay")


@pytest.mark.parametrize("chapter", [f"{n:02d}" for n in range(11)])
def test_at_least_three_quizzes_per_unit(chapter):
    assert sum(q.startswith(chapter + ".") for q in QUIZZES) >= 3


def test_quiz_ids_follow_the_other_exercises_consecutively():
    """In each notebook (a chapter's part: 04 and 04b share chapter 04's ids, and the ids follow the
    notebook order), the concept questions come last: after the part's other exercises."""
    for path in course.notebook_paths(ROOT / "notebooks"):
        checked = [e for c in nbformat.read(path, as_version=4).cells
                   if c.cell_type == "code" and "### BEGIN SOLUTION" in c.source
                   for e in re.findall(r'ex\.check\("(\d\d\.\d+)"', c.source)]
        quiz_numbers = sorted(int(e.split(".")[1]) for e in checked if e in QUIZZES)
        others = [int(e.split(".")[1]) for e in checked if e not in QUIZZES]
        if quiz_numbers and others:
            assert min(quiz_numbers) > max(others), (path.name, others, quiz_numbers)


@pytest.mark.parametrize("exercise_id", QUIZZES)
def test_exactly_one_choice_is_right_and_feedback_never_names_it(exercise_id):
    _, choices = qz.QUESTIONS[exercise_id]
    verdicts = {letter: ex.check(exercise_id, letter) for letter in choices}
    right = [letter for letter, feedback in verdicts.items() if feedback]
    assert len(right) == 1
    for letter, feedback in verdicts.items():
        if letter != right[0]:
            assert f"({right[0]})" not in feedback.message and choices[right[0]] not in feedback.message
    assert ex.check(exercise_id, f" ({right[0].upper()}) ")  # normalized
    assert not ex.check(exercise_id, "z") and not ex.check(exercise_id, 1)
    entry = ex.registry()[exercise_id]
    assert choices[right[0]] not in entry.hint
    assert right[0] not in string.ascii_lowercase[len(choices):]


def test_labkit_stores_no_answer_not_even_a_digest():
    # registration takes the question and its choices only: the answer key is the service's
    import inspect

    assert list(inspect.signature(qz.quiz).parameters) == ["exercise_id", "question", "choices", "hint"]
    assert not hasattr(qz, "answer_digest")
    assert all(len(entry) == 2 for entry in qz.QUESTIONS.values())  # question and choices only
    for path in (ROOT / "labkit").rglob("*.py"):  # no sha256 digest anywhere in the package
        assert not re.search(r"['\"][0-9a-f]{64}['\"]", path.read_text()), path


@pytest.mark.parametrize("exercise_id", QUIZZES)
def test_notebook_shows_the_registered_question_and_checks_it(exercise_id):
    # a split chapter's parts (06, 06b) share its exercise ids: the question is in one of them
    parts = [p for p in course.notebook_paths(ROOT / "notebooks") if course.unit_number(p)[:2] == exercise_id[:2]]
    cells = [c for p in parts for c in nbformat.read(p, as_version=4).cells]
    assert sum(c.cell_type == "markdown" and c.source == qz.markdown(exercise_id) for c in cells) == 1
    checks = [c for c in cells if c.cell_type == "code" and f'ex.check("{exercise_id}", answer)' in c.source]
    assert len(checks) == 1 and "### BEGIN SOLUTION" in checks[0].source
    assert "# NBVAL_CHECK_OUTPUT" in checks[0].source
