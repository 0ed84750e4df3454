"""The nbgrader course (issue 18): every unit converts, and the round trip grades real files.

``tools/nbgrader_course.py`` turns the instructor notebooks into nbgrader assignments. The round
trip runs nbgrader itself on unit 00: ``generate_assignment`` writes the student release,
``autograde`` scores three submissions, and the gradebook must say: the instructor's fully solved
copy gets full marks, the untouched release gets zero (and its own cells run without error), and
a partly solved copy that also tries to fake its checks gets exactly the points it solved.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import nbformat
import pytest

from labkit import course, exercises

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = course.notebook_paths(ROOT / "notebooks")

sys.path.insert(0, str(ROOT / "tools"))
import nbgrader_course as tool  # noqa: E402


def _graded(nb) -> list:
    return [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]


def _answers(nb) -> dict[str, nbformat.NotebookNode]:
    return {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("solution")}


# -- conversion (pure, every unit) -------------------------------------------------------------
def test_check_calls_reads_only_top_level_checks():
    source = ('answer = ...\n### BEGIN SOLUTION\nfor guess in range(3):\n    if ex.check("04.4", guess):\n'
              '        answer = guess\n### END SOLUTION\nex.check("04.4", answer)')
    assert tool.check_calls(source) == [("04.4", "answer")]
    assert tool.check_calls('ex.check("01.3", my_attack)') == [("01.3", "my_attack")]
    with pytest.raises(tool.ConversionError, match="expected ex.check"):
        tool.check_calls("ex.check(exercise_id, answer)")


def test_exercise_cell_without_a_check_is_an_error():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("answer = ...\n### BEGIN SOLUTION\nanswer = 1\n### END SOLUTION")])
    with pytest.raises(tool.ConversionError, match="must end with ex.check"):
        tool.assignment_notebook(nb, name="demo")


def test_bad_markers_are_refused_as_make_student_refuses_them():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("### BEGIN SOLUTION\nx = 1")])
    with pytest.raises(tool.make_student.MarkerError, match="never closed"):
        tool.assignment_notebook(nb, name="demo")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_unit_converts_with_one_graded_test_per_exercise_cell(path):
    full = nbformat.read(path, as_version=4)
    source, points = tool.assignment_notebook(full, name=path.name)
    exercise_cells = tool.make_student.exercise_cells(full)
    graded = _graded(source)
    assert len(graded) == len(exercise_cells) and points == sum(c.metadata.nbgrader.points for c in graded)
    registry = exercises.registry()
    for cell in graded:
        assert cell.metadata.nbgrader.locked and "### BEGIN HIDDEN TESTS" in cell.source
        for exercise_id, _ in tool.check_calls(cell.source.replace(tool.GRADER_CHECK, "ex.check")):
            assert exercise_id in registry, f"{path.name}: hidden test checks unknown exercise {exercise_id}"
    ids = [c.metadata.nbgrader.grade_id for c in source.cells if "nbgrader" in c.metadata]
    assert len(ids) == len(set(ids)), "nbgrader needs unique grade ids"
    # the grader's reference to the checks is taken before any cell a student can edit
    assert source.cells[0].metadata.nbgrader.locked and tool.GRADER_CHECK in source.cells[0].source


# -- the round trip through nbgrader itself (unit 00) ------------------------------------------
def _submit(course_dir: Path, student: str, assignment: str, nb) -> None:
    folder = course_dir / "submitted" / student / assignment
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / f"{assignment}.ipynb")


def test_release_and_autograde_round_trip(tmp_path):
    path = ROOT / "notebooks" / "00_start_here.ipynb"
    assignment = path.stem
    course_dir = tmp_path / "course"
    assert tool.main(["--course", str(course_dir), str(path)]) == 0
    source = nbformat.read(course_dir / "source" / assignment / path.name, as_version=4)
    release = nbformat.read(course_dir / "release" / assignment / path.name, as_version=4)
    full_marks = sum(c.metadata.nbgrader.points for c in _graded(source))
    assert full_marks >= 3

    # the release: no solution, no hidden test, no stored output
    solutions = [line for cell in _answers(source).values()
                 for line in cell.source.split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0].splitlines()
                 if line.strip()]
    released = "\n".join(c.source for c in release.cells)
    assert not any(line in released.splitlines() for line in solutions)
    assert "HIDDEN TESTS" not in released and "assert " + tool.GRADER_CHECK not in released
    assert all(not c.get("outputs") for c in release.cells if c.cell_type == "code")

    # submissions: the instructor's copy, the untouched release, and a partly solved copy whose
    # unsolved answers try to fake the checks (the attacker's test of the hidden tests)
    _submit(course_dir, "solved", assignment, source)
    _submit(course_dir, "untouched", assignment, release)
    partial = nbformat.from_dict(release)
    answers = _answers(partial)
    put_back = sorted(answers)[: len(answers) // 2]
    for grade_id, cell in answers.items():
        if grade_id in put_back:
            cell.source = _answers(source)[grade_id].source
        else:
            cell.source += "\nex.check = lambda *args, **kwargs: True  # a forged check must not earn points"
    _submit(course_dir, "partial", assignment, partial)

    tool.autograde(course_dir, assignment)
    scores = tool.grades(course_dir, assignment)
    assert scores["solved"] == (full_marks, full_marks)
    assert scores["untouched"] == (0, full_marks)
    assert scores["partial"] == (len(put_back), full_marks) and 0 < len(put_back) < full_marks

    # the untouched copy ran without error: only the graded test cells failed
    graded = nbformat.read(course_dir / "autograded" / "untouched" / assignment / path.name, as_version=4)
    failed = [c.metadata.get("nbgrader", {}).get("grade_id", f"cell {i}") for i, c in enumerate(graded.cells)
              if c.cell_type == "code" and any(o.output_type == "error" for o in c.outputs)]
    assert failed and all(name.startswith("check-") for name in failed), failed
    shutil.rmtree(course_dir)  # the autograded copies hold the widget outputs: don't keep them around
