import ast
from pathlib import Path

from labkit import exercises as ex


def test_every_exercise_has_text_and_hint_and_labkit_stores_no_solution():
    reg = ex.registry()
    assert {"00.1", "00.2", "00.3"} <= set(reg)
    for e in reg.values():
        assert e.title and e.hint and not hasattr(e, "solution")
        assert "instructor" in ex.solution(e.id) and "BEGIN SOLUTION" in ex.solution(e.id)


def test_no_exercise_module_passes_solution_text():
    """Students can read labkit: a worked solution belongs in the instructor notebook only."""
    for path in Path(ex.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword):
                assert node.arg != "solution", f"{path.name}:{node.lineno} stores a solution"


def test_check_correct_wrong_unanswered_and_malformed():
    assert ex.check("00.1", [1, 0, 1, 0, 0, 1, 0, 1])
    wrong = ex.check("00.1", [0] * 8)
    assert not wrong and 'ex.hint("00.1")' in str(wrong)
    assert "not answered yet" in str(ex.check("00.1", ...))
    assert not ex.check("00.2", "not a number")  # a wrong shape is feedback, not a crash
    assert ex.check("00.3", 8) and not ex.check("00.3", 0)
    assert "Correct" in ex.check("00.2", 2)._repr_html_()


def test_unknown_exercise_is_a_clear_error():
    import pytest

    with pytest.raises(ValueError, match="unknown exercise"):
        ex.check("99.9", 1)


def test_placeholder_is_not_answered_and_shows_no_hint_or_solution():
    for eid, e in ex.registry().items():
        for placeholder in (..., None):
            feedback = ex.check(eid, placeholder)
            assert not feedback and "not answered yet" in str(feedback), eid
            shown = str(feedback) + feedback._repr_html_()
            assert all(level not in shown for level in e.hints), eid


def test_check_never_shows_hint_or_solution_for_a_wrong_or_malformed_answer():
    for eid, e in ex.registry().items():
        for wrong in (0, "not a number", [0] * 8, object()):
            feedback = ex.check(eid, wrong)
            if feedback:  # a lucky right answer (e.g. 0 for some value exercise) says "Correct"
                continue
            assert all(level not in str(feedback) for level in e.hints), eid
