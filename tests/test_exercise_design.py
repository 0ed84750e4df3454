"""What issue 15 asks of the exercises, chapter by chapter.

Every chapter 01-10 has at least two ``implement`` (or ``design``) exercises and, where it teaches
an attack, at least one ``attack`` exercise; 01, 04, 07 and 08 have a ``game``; ids are
consecutive; hints are graded (at least two levels, the idea first) and no level hands over a
ready-made call; every registered exercise is checked, with its solution between the markers, in
exactly one notebook; an implement (or game) checker rejects a wrong function and says what was
expected.
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict
from pathlib import Path

import nbformat
import pytest

from labkit import course
from labkit import exercises as ex

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = [f"{n:02d}" for n in range(0, 11)]
#: chapters that teach no attack (00 is the tour of the lab, 05 builds circuits)
NO_ATTACK = {"00", "05"}
#: chapters that state a security notion and make it a game the student plays (kind "game")
GAMES = {"01", "04", "07", "08"}
#: a ready-made call: a code name (dotted, or with an underscore) applied to arguments
CALL = re.compile(r"\b[A-Za-z_]\w*(\.\w+)+\s*\(|\b[a-z]+_\w*\s*\(")


def _by_chapter() -> dict[str, list[ex.Exercise]]:
    chapters = defaultdict(list)
    for e in ex.registry().values():
        chapters[e.id.split(".")[0]].append(e)
    return chapters


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_ids_are_consecutive(chapter):
    numbers = sorted(int(e.id.split(".")[1]) for e in _by_chapter()[chapter])
    assert numbers == list(range(1, len(numbers) + 1)), f"chapter {chapter}: ids {numbers}"


@pytest.mark.parametrize("chapter", [c for c in CHAPTERS if c != "00"])
def test_chapter_has_implement_and_attack_exercises(chapter):
    kinds = Counter(e.kind for e in _by_chapter()[chapter])
    assert kinds["implement"] + kinds["design"] >= 2, f"chapter {chapter}: {dict(kinds)}"
    if chapter not in NO_ATTACK:
        assert kinds["attack"] >= 1, f"chapter {chapter}: {dict(kinds)}"
    if chapter in GAMES:
        assert kinds["game"] >= 1, f"chapter {chapter} has no security game: {dict(kinds)}"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_hints_are_graded_and_give_no_ready_made_call(chapter):
    for e in _by_chapter()[chapter]:
        assert len(e.hints) >= 2, f"{e.id} has {len(e.hints)} hint level(s)"
        assert len(set(e.hints)) == len(e.hints), f"{e.id} repeats a hint level"
        for level in e.hints:
            assert not CALL.search(level), f"{e.id} hint gives a call: {level!r}"


def test_hint_reveals_one_level_at_a_time_and_only_when_asked():
    ex._HINTS_SHOWN.clear()
    e = next(e for e in ex.registry().values() if len(e.hints) >= 2)
    first, second = ex.hint(e.id), ex.hint(e.id)
    assert (first.level, second.level) == (1, 2)
    assert first.text == e.hints[0] and second.text == e.hints[1]
    assert e.hints[1] not in str(first) and "Hint 1 of" in str(first)
    assert ex.hint(e.id, level=1).text == e.hints[0]
    with pytest.raises(ValueError, match="hint levels"):
        ex.hint(e.id, level=len(e.hints) + 1)
    last = [ex.hint(e.id) for _ in range(len(e.hints) + 2)][-1]
    assert last.level == len(e.hints) and "last level" in str(last)


def test_check_function_reports_first_failure_with_input_and_expected():
    ok, message = ex.check_function(lambda a, b: a ^ b, lambda a, b: a ^ b,
                                    lambda rng: (rng.randrange(256), rng.randrange(256)), name="xor")
    assert ok and "fresh random inputs" in message
    ok, message = ex.check_function(lambda a: bytes(a), lambda a: bytes(x ^ 1 for x in a),
                                    lambda rng: (bytes([rng.randrange(256) for _ in range(4)]),),
                                    name="flip")
    assert not ok and "flip(bytes.fromhex('" in message and "expected bytes.fromhex('" in message
    ok, message = ex.check_function(lambda a: 1 / 0, abs, lambda rng: (rng.randrange(9),))
    assert not ok and "ZeroDivisionError" in message and "expected" in message
    assert ex.check_function(42, abs, lambda rng: (1,)) == (
        False, "the answer must be a function (def ...), got int.")


def _checked_ids() -> Counter:
    seen = Counter()
    for path in course.notebook_paths(ROOT / "notebooks"):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code" and "### BEGIN SOLUTION" in cell.source:
                seen.update(re.findall(r'ex\.check\("(\d\d\.\d+)"', cell.source))
    return seen


def test_every_exercise_is_checked_in_exactly_one_notebook_solution_cell():
    seen = _checked_ids()
    registered = set(ex.registry())
    assert set(seen) == registered, (sorted(registered - set(seen)), sorted(set(seen) - registered))
    assert all(n == 1 for n in seen.values()), {k: n for k, n in seen.items() if n != 1}


@pytest.mark.parametrize("chapter", [c for c in CHAPTERS if c != "00"])
def test_implement_checkers_reject_a_wrong_function(chapter):
    for e in _by_chapter()[chapter]:
        if e.kind not in ("implement", "game"):
            continue
        feedback = ex.check(e.id, lambda *args, **kwargs: 0)
        assert not feedback, e.id
        assert "expected" in str(feedback) or "must" in str(feedback), f"{e.id}: {feedback}"


def test_an_unwritten_function_is_not_answered_yet():
    def unwritten(state, key):
        """Docstring and signature kept by the student copy; the body is the placeholder."""
        ...  # (your solution here)

    def written(state, key):
        return None if state is None else 0

    assert ex.is_stub(unwritten) and ex.is_stub(lambda: None)
    assert not ex.is_stub(written) and not ex.is_stub(lambda x: 0) and not ex.is_stub(print)
    feedback = ex.check("00.1", unwritten)
    assert not feedback and "not answered yet" in str(feedback)
