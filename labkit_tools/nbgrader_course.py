"""Turn the instructor notebooks into an nbgrader course: one assignment per unit, hidden tests.

Usage: labkit-nbgrader-course [--course build/course] [--no-release]
       [--service-public-key HEX] [notebooks/NN_name.ipynb ...]

Everything is derived from what every exercise cell already has (see labkit_tools.make_student): the
solution region between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` and the cell's closing
``ex.check("NN.k", answer)``. Each exercise cell becomes an nbgrader *autograded answer* cell and
is followed by a locked *autograder test* cell whose hidden test names the exercise and the answer
(``assert check("NN.k", answer)``, one point each). nbgrader (``generate_assignment``) then writes
the student release with the solutions replaced by ``...`` and the hidden tests removed
(nbgrader docs, "Developing assignments"). Grades never come from the student's kernel: the
course's config (:func:`grading_config`) makes ``nbgrader autograde`` grade each submission
without executing it, through :mod:`labkit.grading.autograde`: implement exercises in a sandbox,
attack, game, value and quiz exercises by the challenge service's receipts, verified under the service
public key given here (``--service-public-key`` or ``LABKIT_SERVICE_PUBLIC_KEY``).

The course folder (default ``build/course``, never committed) gets ``nbgrader_config.py``,
``source/<unit>/<unit>.ipynb`` and, unless ``--no-release``, ``release/<unit>/``.
"""
from __future__ import annotations

import argparse
import ast
import os
import subprocess
import sys
from pathlib import Path

import nbformat

from labkit import exercises as lab_exercises
from labkit.course import notebook_paths as course_notebooks, unit_number
from labkit_tools import make_student  # the markers and their validation: one definition for both tools

ROOT = Path(__file__).resolve().parent.parent

__all__ = ["COURSE_ID", "GRADER_CHECK", "check_calls", "assignment_notebook", "write_config", "grading_config",
           "build_course", "release", "autograde", "grades", "main"]

COURSE_ID = "deep-neural-crypto-lab"
#: The grader's own reference to the checker, taken in a locked cell before any student code runs,
#: so an answer cell that rebinds ``ex`` or ``ex.check`` cannot pass the hidden tests.
GRADER_CHECK = "_grader_check"
SETUP_SOURCE = (
    "# Autograder setup (locked, do not edit): the grader's own reference to the exercise checks.\n"
    f"from labkit.exercises import check as {GRADER_CHECK}"
)
#: What nbgrader leaves of a solution region: an Ellipsis statement (valid Python at any
#: indentation, so an unwritten function body still runs), with make_student's comment.
CODE_STUB = make_student.CODE_STUB

CONFIG = f'''\
# nbgrader configuration of the lab's course (written by labkit-nbgrader-course; rerun it, don't edit).
c = get_config()  # noqa: F821
c.CourseDirectory.course_id = "{COURSE_ID}"
# a solution region becomes `...` (the check then says "not answered yet"), never `raise NotImplementedError`
c.ClearSolutions.code_stub = {make_student.CLEAR_SOLUTIONS["code_stub"]!r}
c.ClearSolutions.text_stub = {make_student.CLEAR_SOLUTIONS["text_stub"]!r}
# attack exercises run real attacks: give a cell as long as nbval does
c.Execute.timeout = 300
c.ExecutePreprocessor.timeout = 300
''' + """
# -- graded copies stay small and quiet (deploy/README.md, "Assignments") --
# no saved widget state in graded notebooks: 10 MB of it per notebook would fill a lecturer's home
# (nor any a submission brought along: the sanitizing step below drops it)
c.Execute.store_widget_state = False


# A locked test cell whose hidden tests were removed for the release is not "changed": put its hidden
# tests back before nbgrader compares checksums, so only a cell a student really edited is reported.
from nbgrader.preprocessors import (CheckCellMetadata, ClearHiddenTests, ClearOutput, DeduplicateIds,
                                    OverwriteCells, OverwriteKernelspec)


class RestoreUntouchedHiddenTests(OverwriteCells):
    def preprocess(self, nb, resources):
        nb.metadata.pop("widgets", None)
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, cell_index):
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id and cell.metadata.nbgrader.get("locked"):
            try:
                source = self.gradebook.find_source_cell(grade_id, self.notebook_id, self.assignment_id)
            except Exception:
                source = None
            if source is not None and source.cell_type == cell.cell_type:
                released = cell.copy()
                released.source = source.source
                released, _ = ClearHiddenTests().preprocess_cell(released, {}, cell_index)
                if released.source == cell.source:
                    cell.source = source.source
        return super().preprocess_cell(cell, resources, cell_index)


c.Autograde.sanitize_preprocessors = [ClearOutput, DeduplicateIds, OverwriteKernelspec,
                                      RestoreUntouchedHiddenTests, CheckCellMetadata]
"""


class ConversionError(ValueError):
    """An exercise cell that cannot become a graded nbgrader cell (no closing ex.check call)."""


def check_calls(source: str, *, where: str = "cell") -> list[tuple[str, str]]:
    """The top-level ``ex.check("NN.k", expr)`` statements of a cell: ``(exercise id, expr source)``.

    Only top-level statements count: a check inside the solution (a loop trying candidates) is the
    student's own business; the closing check outside it is what grades the cell.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError as err:
        raise ConversionError(f"{where}: not valid Python ({err.msg}, line {err.lineno})") from None
    found = []
    for statement in tree.body:
        call = statement.value if isinstance(statement, ast.Expr) else None
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "check"
                and isinstance(call.func.value, ast.Name) and call.func.value.id == "ex"):
            continue
        if len(call.args) != 2 or call.keywords or not isinstance(call.args[0], ast.Constant) \
                or not isinstance(call.args[0].value, str):
            raise ConversionError(f"{where}: expected ex.check(\"NN.k\", answer), got {ast.unparse(call)!r}")
        found.append((call.args[0].value, ast.get_source_segment(source, call.args[1])))
    return found


def _metadata(grade_id: str, *, solution: bool, grade: bool, locked: bool, points: int = 0) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3,
            "solution": solution, "task": False}
    if grade:
        meta["points"] = points
    return {"nbgrader": meta}


def _test_source(checks: list[tuple[str, str]]) -> str:
    lines = ["# Autograder test (locked): hidden tests run when the submission is graded.",
             "### BEGIN HIDDEN TESTS"]
    lines += [f'assert {GRADER_CHECK}("{eid}", {expr}), "exercise {eid} is not solved yet"' for eid, expr in checks]
    lines.append("### END HIDDEN TESTS")
    return "\n".join(lines)


#: The exercises an assignment grades by default: the homework (``where="homework"``); exercises done
#: in class keep their answer cell and self-check in the release but earn no points.
GRADED = ("homework",)


def gradable(exercise) -> bool:
    """Can the grader judge this exercise outside the student's kernel? Yes for a FunctionSpec (the
    sandbox) and for what the challenge service checks and signs: attack and quiz exercises and the
    security games (01.5 among them) it hosts, and value exercises."""
    return exercise.spec is not None or exercise.remote or exercise.kind == "value"


def assignment_notebook(nb: nbformat.NotebookNode, *, name: str = "notebook",
                        graded: tuple[str, ...] = GRADED) -> tuple[nbformat.NotebookNode, int]:
    """The nbgrader source version of an instructor notebook and its total points.

    Only exercises whose ``where`` is in ``graded`` get a hidden test (points). Markers are validated
    exactly as ``make student`` does (:class:`make_student.MarkerError`).
    """
    registry = lab_exercises.registry()
    make_student.student_notebook(nb, name=name)  # raises MarkerError on any bad marker
    exercises = set(make_student.exercise_cells(nb))
    source = nbformat.from_dict(nb)
    source.metadata.pop("widgets", None)
    setup = nbformat.v4.new_code_cell(SETUP_SOURCE)
    setup.metadata.update(_metadata("autograder-setup", solution=False, grade=False, locked=True))
    cells, points, seen = [setup], 0, set()
    for index, cell in enumerate(source.cells):
        cells.append(cell)
        if index not in exercises:
            continue
        checks = check_calls(cell.source, where=f"{name}, cell {index}")
        if not checks:
            raise ConversionError(f"{name}, cell {index}: an exercise cell must end with ex.check(\"NN.k\", answer)")
        tag = "-".join(eid.replace(".", "-") for eid, _ in checks)
        grade_id = tag if tag not in seen else f"{tag}-cell{index}"
        seen.add(grade_id)
        cell.metadata.update(_metadata(f"answer-{grade_id}", solution=True, grade=False, locked=False))
        checks = [(eid, expr) for eid, expr in checks
                  if eid in registry and registry[eid].where in graded and gradable(registry[eid])]
        if not checks:
            continue  # an exercise done in class: its answer cell, no points
        test = nbformat.v4.new_code_cell(_test_source(checks))
        test.metadata.update(_metadata(f"check-{grade_id}", solution=False, grade=True, locked=True,
                                       points=len(checks)))
        cells.append(test)
        points += len(checks)
    source.cells = cells
    return source, points


def grading_config(service_public_key: str = "") -> str:
    """The part of ``nbgrader_config.py`` that takes grades out of the student's kernel: autograde
    runs :mod:`labkit.grading.autograde`'s steps instead of executing the submission, and pins the
    challenge service's public key (64 hex digits; empty: receipts earn nothing)."""
    from labkit.grading.autograde import public_key_from_hex

    key = public_key_from_hex(service_public_key)  # ValueError on a malformed key
    return f'''
# Grades come from labkit.grading, never from the student's kernel: autograde does not execute the
# submission; implement exercises run in a sandbox, the others count by the challenge service's receipts.
from labkit.grading import autograde as labkit_autograde  # noqa: E402
# (with the course's own OverwriteCells above, which keeps untouched test cells quiet and drops widget state)
c.Autograde.sanitize_preprocessors = [RestoreUntouchedHiddenTests if step is OverwriteCells else step
                                      for step in labkit_autograde.SANITIZE]
c.Autograde.autograde_preprocessors = labkit_autograde.AUTOGRADE
# The challenge service's Ed25519 public key: a receipt verifies under it, for its student, or earns nothing.
c.GradeOutsideKernel.service_public_key = "{key.hex() if key else ""}"
'''


def write_config(course: Path, service_public_key: str = "") -> Path:
    """Write the course's ``nbgrader_config.py`` (the lab's settings) into ``course``."""
    course.mkdir(parents=True, exist_ok=True)
    path = course / "nbgrader_config.py"
    path.write_text(CONFIG + grading_config(service_public_key))
    return path


def build_course(course: Path, notebooks: list[Path], service_public_key: str = "",
                 graded: tuple[str, ...] = GRADED) -> dict[str, int]:
    """Write ``source/<unit>/<unit>.ipynb`` for each notebook with graded exercises; ``{assignment: points}``."""
    write_config(course, service_public_key)
    assignments = {}
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        if not make_student.exercise_cells(nb):
            continue  # appendices have no exercises: nothing to grade
        converted, points = assignment_notebook(nb, name=path.name, graded=graded)
        if not points:
            continue  # every exercise of the unit is done in class: no assignment
        folder = course / "source" / path.stem
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(converted, folder / path.name)
        assignments[path.stem] = points
    return assignments


def nbgrader(course: Path, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    """Run ``nbgrader <args>`` in the course folder with this interpreter; raise on failure."""
    # nbgrader runs `alembic` (its database migrations) from PATH: the one beside this interpreter
    # and the kernels it starts must not count the graded checks as the lecturer's own progress
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
               LABKIT_PROGRESS="off")
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, capture_output=True,
                          text=True, timeout=timeout, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"nbgrader {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done


def release(course: Path, assignment: str) -> Path:
    """``nbgrader generate_assignment``: the student version in ``release/<assignment>/``."""
    nbgrader(course, "generate_assignment", assignment, "--force")
    return course / "release" / assignment


def autograde(course: Path, assignment: str) -> None:
    """``nbgrader autograde``: grade every submission in ``submitted/<student>/<assignment>/``
    (with the course's config: outside the student's kernel, see :func:`grading_config`)."""
    nbgrader(course, "autograde", assignment, "--force")


def grades(course: Path, assignment: str) -> dict[str, tuple[float, float]]:
    """``{student: (score, max_score)}`` of an assignment, read from the course's gradebook."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as gradebook:
        return {submission.student_id: (submission.score, submission.max_score)
                for submission in gradebook.find_assignment(assignment).submissions}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="labkit-nbgrader-course", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="instructor notebooks (default: every unit)")
    parser.add_argument("--course", default=str(ROOT / "build" / "course"), help="course folder (default: build/course)")
    parser.add_argument("--no-release", action="store_true", help="write source/ only, skip generate_assignment")
    parser.add_argument("--service-public-key", default=os.environ.get("LABKIT_SERVICE_PUBLIC_KEY", ""),
                        help="the challenge service's Ed25519 public key, 64 hex digits (default: "
                             "$LABKIT_SERVICE_PUBLIC_KEY); receipts verify under it")
    parser.add_argument("--grade-class-exercises", action="store_true",
                        help="grade the exercises done in class too (default: only the homework)")
    args = parser.parse_args(argv)
    course = Path(args.course).resolve()
    graded = ("class", "homework") if args.grade_class_exercises else GRADED
    paths = [Path(p).resolve() for p in args.notebooks] or course_notebooks(ROOT / "notebooks")
    try:
        assignments = build_course(course, [p for p in paths if unit_number(p)], args.service_public_key, graded)
    except (make_student.MarkerError, ConversionError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if not args.service_public_key:
        print("warning: no --service-public-key: receipts (attack, value and quiz exercises) earn nothing "
              "until c.GradeOutsideKernel.service_public_key is set in nbgrader_config.py", file=sys.stderr)
    for assignment, points in assignments.items():
        where = course / "source" / assignment
        if not args.no_release:
            where = release(course, assignment)
        print(f"{assignment}: {points} point(s) -> {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
