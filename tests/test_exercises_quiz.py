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
        ex.exercise("99.1", "t", hint="h", kind="essay", where="class")
    with pytest.raises(ValueError, match="where"):
        ex.exercise("99.1", "t", hint="h", kind="value", where="lab")
    with pytest.raises(TypeError):
        ex.exercise("99.1", "t", hint="h", kind="value")  # where is required


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
        # games came to chapters whose ids were taken: they may follow the concept questions
        others = [int(e.split(".")[1]) for e in checked if e not in QUIZZES and ex.registry()[e].kind != "game"]
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

    assert list(inspect.signature(qz.quiz).parameters) == ["exercise_id", "question", "choices", "hint", "where"]
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


def _right_letter(exercise_id: str) -> str:
    """The right letter, found through the check itself (the only place that knows it)."""
    _, choices = qz.QUESTIONS[exercise_id]
    return next(letter for letter in choices if ex.check(exercise_id, letter))


def _tail(probabilities: list[float], observed: int) -> float:
    """P[X >= observed] for X a sum of independent Bernoulli(p_i): the Poisson-binomial tail."""
    dist = [1.0]
    for p in probabilities:
        dist = [(dist[k] if k < len(dist) else 0.0) * (1 - p) + (dist[k - 1] * p if k else 0.0)
                for k in range(len(dist) + 1)]
    return sum(dist[observed:])


#: A quiz that a test-wise student games (always the longest option, always the shortest, always
#: the same letter) should score no better than guessing. Under guessing, question i is a hit
#: with probability 1/k_i (k_i choices); the count of hits over the lab is then Poisson-binomial.
#: The lab fails if its count is so high that guessing reaches it with probability below 1%
#: (for 49 questions of 4 choices: 21 or more hits, where chance expects 12.25; scipy's
#: binom.sf(20, 49, 0.25) = 0.0047). Ties count as
#: hits (a longest option tied with the right one still points the student at it).
CHANCE_LEVEL = 0.01


def _test_wise_counts():
    longest = shortest = 0
    letters = defaultdict(int)
    for exercise_id in QUIZZES:
        _, choices = qz.QUESTIONS[exercise_id]
        right = _right_letter(exercise_id)
        lengths = {letter: len(text) for letter, text in choices.items()}
        longest += lengths[right] == max(lengths.values())
        shortest += lengths[right] == min(lengths.values())
        letters[right] += 1
    return longest, shortest, letters


def test_the_longest_or_shortest_option_is_right_no_more_often_than_chance():
    chance = [1 / len(qz.QUESTIONS[i][1]) for i in QUIZZES]
    longest, shortest, _ = _test_wise_counts()
    assert _tail(chance, longest) >= CHANCE_LEVEL, f"the longest option is right in {longest} of {len(QUIZZES)}"
    assert _tail(chance, shortest) >= CHANCE_LEVEL, f"the shortest option is right in {shortest} of {len(QUIZZES)}"


def test_the_right_letter_varies_no_letter_beats_chance():
    _, _, letters = _test_wise_counts()
    for letter, count in letters.items():
        chance = [1 / len(qz.QUESTIONS[i][1]) if letter in qz.QUESTIONS[i][1] else 0.0 for i in QUIZZES]
        assert _tail(chance, count) >= CHANCE_LEVEL, f"({letter}) is right in {count} of {len(QUIZZES)}"


def test_options_are_of_similar_length():
    """No option gives itself away by length: in each question the shortest is at least a third of
    the longest (or all are short, such as numbers)."""
    for exercise_id in QUIZZES:
        lengths = [len(t) for t in qz.QUESTIONS[exercise_id][1].values()]
        assert max(lengths) <= 30 or min(lengths) >= max(lengths) / 3, (exercise_id, lengths)


def test_the_chance_bound_rejects_a_lab_where_the_longest_option_wins():
    # the old quizzes: the longest option right in 48 of 49 questions
    assert _tail([0.25] * 49, 48) < CHANCE_LEVEL
    assert _tail([0.25] * 49, 21) < CHANCE_LEVEL <= _tail([0.25] * 49, 20)  # 0.0047, 0.0109
    assert abs(_tail([0.5] * 4, 2) - 11 / 16) < 1e-12


def test_quiz_cells_tool_rewrites_a_stale_cell_from_labkit(tmp_path):
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    from labkit_tools import quiz_cells as tool
    exercise_id = QUIZZES[0]
    path = tmp_path / "99_t.ipynb"
    nbformat.write(new_notebook(cells=[new_markdown_cell(f"**{exercise_id}** (concept) an old text"),
                                       new_code_cell(f'answer = ...\nex.check("{exercise_id}", answer)')]), path)
    assert tool.sync(path, write=False) == [exercise_id]
    assert nbformat.read(path, as_version=4).cells[0].source != qz.markdown(exercise_id)  # --check writes nothing
    assert tool.sync(path) == [exercise_id] and tool.sync(path) == []
    assert nbformat.read(path, as_version=4).cells[0].source == qz.markdown(exercise_id)
    assert all(tool.sync(p, write=False) == [] for p in course.notebook_paths(ROOT / "notebooks"))
