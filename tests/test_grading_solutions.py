"""Every instructor solution of an implement (or design) exercise earns its point in the grading sandbox.

The grader runs an answer cell on its own (its source, plus the imports of the notebook's first
cell that it uses) with the exercise's reference cut out of labkit: this proves each graded cell
is self-contained and each solution stands without the reference, and that the release's
unanswered cell (the ``...`` stub) earns nothing.
"""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from labkit import course, exercises
from labkit.grading import notebook as graded

ROOT = Path(__file__).resolve().parent.parent
from labkit_tools import nbgrader_course as tool  # noqa: E402


def _implement_cells():
    registry = exercises.registry()
    for path in course.notebook_paths(ROOT / "notebooks"):
        nb = nbformat.read(path, as_version=4)
        if not tool.make_student.exercise_cells(nb):
            continue
        source, _ = tool.assignment_notebook(nb, name=path.name)
        imports = graded.notebook_imports(source.cells)
        for cell in source.cells:
            if cell.metadata.get("nbgrader", {}).get("solution"):
                for exercise_id, answer in tool.check_calls(cell.source):
                    if registry[exercise_id].spec is not None:  # implement and design exercises
                        yield pytest.param(exercise_id, cell.source, answer, imports, id=exercise_id)


CASES = list(_implement_cells())


def test_every_implement_exercise_is_graded_somewhere():
    assert sorted(c.values[0] for c in CASES) == sorted(
        e.id for e in exercises.registry().values() if e.spec is not None)


@pytest.mark.parametrize("exercise_id, cell, answer, imports", CASES)
def test_the_instructor_solution_passes_in_the_sandbox_and_the_stub_does_not(exercise_id, cell, answer, imports):
    verdict = graded.grade_implement(exercise_id, cell, answer, imports=imports)
    assert verdict.correct, verdict
    stub, _ = tool.make_student.strip_solutions(cell, where=exercise_id)
    verdict = graded.grade_implement(exercise_id, stub, answer, imports=imports)
    assert not verdict.correct, verdict
