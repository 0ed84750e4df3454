"""The exercise registry loads a chapter only when one of its exercises is asked for, and ``check``
tells a student's error (feedback) from a bug in a checker (raised, with its traceback)."""
from __future__ import annotations

import json
import string
import subprocess
import sys
from pathlib import Path

import pytest

from labkit import bits
from labkit import exercises as ex
from labkit.challenges import client

ROOT = Path(__file__).resolve().parent.parent

#: What unit 00 does (its first cell's imports, its checks, its progress view's list of ids) and
#: one check of each cipher unit, in a fresh interpreter: which modules did that import?
UNIT_00_AND_CIPHERS = """
import json, sys
from labkit import exercises as ex
from labkit.widgets import progress as progress_widgets
ex.get_exercise("00.1"); ex.hint("00.3")
ids = sorted(ex.registry())
for exercise_id in ("01.1", "02.1", "03.1", "04.1"):
    ex.get_exercise(exercise_id)
print(json.dumps({"ids": len(ids), "torch": "torch" in sys.modules,
                  "chapters": sorted(m for m in sys.modules if m.startswith("labkit.exercises.ch"))}))
"""

def _fresh(code: str) -> dict:
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "LABKIT_PROGRESS": "off",
           "HOME": str(Path.home())}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_unit_00_and_the_cipher_units_never_import_torch():
    seen = _fresh(UNIT_00_AND_CIPHERS)
    assert not seen["torch"]
    assert seen["ids"] == len(ex.registry()) > 100
    assert all(m.split(".")[-1][:4] in ("ch00", "ch01", "ch02", "ch03", "ch04") for m in seen["chapters"])


def test_the_id_map_read_from_the_source_is_what_the_chapters_register():
    every = dict(ex.registry())  # imports every chapter module
    assert list(every) == list(ex._chapter_modules()) and set(every) == set(ex._REGISTRY)
    placed = {i: e.checker.__module__ for i, e in every.items()
              if e.checker.__module__.startswith("labkit.exercises.ch")}
    assert len(placed) > 40 and all(ex._chapter_modules()[i] == m for i, m in placed.items())


def test_the_registry_is_a_read_only_mapping_that_loads_on_lookup():
    registry = ex.registry()
    assert "00.1" in registry and "99.9" not in registry
    assert registry["00.1"].id == "00.1" and len(registry) == len(list(registry))
    with pytest.raises(KeyError):
        registry["99.9"]
    with pytest.raises(TypeError):
        registry["00.1"] = None  # type: ignore[index]
    with pytest.raises(ValueError, match="unknown exercise"):
        ex.get_exercise("99.9")


@pytest.fixture
def exercise_with(monkeypatch):
    """Register a throw-away exercise ``99.1`` with the given checker (removed after the test);
    ``remote=True``: its checker runs here, in the kernel, as an attack's or a function's does."""

    def register(checker):
        monkeypatch.setitem(ex._REGISTRY, "99.1", ex.Exercise("99.1", "a test exercise", checker,
                                                            ("an idea", "an approach"), remote=True))
        return "99.1"

    return register


def _squares(answer):
    """A checker that calls the student's function (and does not catch what it raises)."""
    return answer(3) == 9


def test_a_students_function_raising_is_feedback(exercise_with):
    exercise_id = exercise_with(_squares)

    def looks_up(x):
        return {}[x]  # KeyError in the student's own code

    def misuses_labkit(x):
        return bits.bytes_to_bits(x)  # labkit refuses an int with a TypeError

    for answer, error in ((looks_up, "KeyError"), (misuses_labkit, "TypeError"),
                          (lambda x: 1 / 0, "ZeroDivisionError")):
        feedback = ex.check(exercise_id, answer)
        assert not feedback and f"could not check that answer ({error}" in str(feedback)
        assert 'ex.hint("99.1")' in str(feedback)
    assert ex.check(exercise_id, lambda x: x * x)


def test_an_answer_of_the_wrong_shape_is_feedback(exercise_with):
    exercise_id = exercise_with(lambda answer: int(answer) == 9)
    assert "ValueError" in str(ex.check(exercise_id, "nine"))
    assert "TypeError" in str(ex.check(exercise_id, object()))


def test_the_challenge_services_refusal_is_feedback(exercise_with):
    def checker(answer):
        raise client.ChallengeServiceError("the challenge service is unreachable (test)")

    feedback = ex.check(exercise_with(checker), 9)
    assert not feedback and "unreachable (test)" in str(feedback)


def test_a_bug_in_the_checker_is_raised_with_its_traceback(exercise_with):
    def attribute_bug(answer):
        return answer == ex.NO_SUCH_NAME  # the checker's own bug

    def library_bug(answer):
        return string.Template("$expected").substitute({}) == answer  # KeyError inside the stdlib

    with pytest.raises(AttributeError, match="NO_SUCH_NAME"):
        ex.check(exercise_with(attribute_bug), 9)
    with pytest.raises(KeyError, match="expected"):
        ex.check(exercise_with(library_bug), 9)
    # even when the student's answer is a function that works
    with pytest.raises(AttributeError):
        ex.check(exercise_with(lambda answer: answer(3) == ex.NO_SUCH_NAME), lambda x: x * x)


def test_the_services_value_check_keeps_feedback_for_answers_and_raises_a_checkers_bug(monkeypatch):
    """The service runs a value exercise's checker on the plain-data answer: an answer it refuses
    (wrong type or value) is feedback, a bug of the checker is raised, as in the kernel's check."""
    from labkit.challenges import answers

    def checker(answer):
        return {"nine": 9}[str(int(answer))] == 9  # int() refuses "x"; the lookup is the bug

    monkeypatch.setitem(ex._REGISTRY, "99.2", ex.Exercise("99.2", "a value exercise", checker,
                                                        ("an idea", "an approach")))
    ok, message, _ = answers.check_value("99.2", "x")
    assert not ok and message.startswith("could not check that answer (ValueError:")
    with pytest.raises(KeyError):
        answers.check_value("99.2", 9)
