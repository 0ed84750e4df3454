"""Student copies: markers validated, solutions gone, checks kept, and the copies still run.

Each student copy runs top to bottom with every exercise unanswered, every check saying "not
answered yet" rather than crashing or hinting; then the full version of its first exercise cell
runs in the same kernel and must answer "Correct". That run is in ``tests/test_browser.py``: the
copy runs once, in JupyterLab in a real browser, where its drawing is checked too (in nbclient
when no browser can be installed). The full notebooks are executed end to end by nbval
(``make test``); here their stored check outputs must all say "Correct".
"""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from labkit import course

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = course.notebook_paths(ROOT / "notebooks")  # every unit: chapters, their parts, appendices
#: the units with exercises: every chapter and part (appendices such as A1 have none)
EXERCISED = [p for p in NOTEBOOKS if not course.unit_number(p).startswith("A")]


from labkit_tools import make_student  # noqa: E402
from student_work import output_text as _output_text  # noqa: E402
MarkerError = make_student.MarkerError


# -- marker handling ---------------------------------------------------------------------------
def test_strip_removes_the_region_and_keeps_placeholder_and_check():
    source = 'answer = ...\n### BEGIN SOLUTION\nanswer = 42\n### END SOLUTION\nex.check("00.1", answer)'
    stripped, regions = make_student.strip_solutions(source)
    assert regions == 1
    assert "42" not in stripped and "SOLUTION" not in stripped
    assert stripped.startswith("answer = ...") and stripped.endswith('ex.check("00.1", answer)')


def test_strip_keeps_indentation_and_handles_several_regions():
    source = "def f(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n### BEGIN SOLUTION\ny = 1\n### END SOLUTION"
    stripped, regions = make_student.strip_solutions(source)
    assert regions == 2
    # nbgrader's ClearSolutions puts the course's code stub, indented like the region, in its place
    assert stripped.splitlines() == ["def f(x):", "    " + make_student.CODE_STUB, make_student.CODE_STUB]
    assert make_student.CODE_STUB == "...  " + make_student.PLACEHOLDER
    namespace = {}
    exec(stripped, namespace)  # still valid Python: the function body is `...`
    assert namespace["f"](1) is None


@pytest.mark.parametrize(
    "source, problem",
    [
        ("### BEGIN SOLUTION\nx = 1", "never closed"),
        ("x = 1\n### END SOLUTION", "without a matching"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", "nested"),
        ("x = 1  ### BEGIN SOLUTION\n### END SOLUTION", "alone on its line"),
        # nbgrader drops every line holding its delimiter: code beside a marker would vanish silently
        ("### BEGIN SOLUTION\nx = 1\n### END SOLUTION  # x is the key", "alone on its line"),
        # nbgrader's delimiter is "BEGIN SOLUTION": with two hashes it would still open a region
        ("# BEGIN SOLUTION\nx = 1\n# END SOLUTION", "alone on its line"),
        ("### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n### END SOLUTION", "without a matching"),
    ],
)
def test_bad_markers_are_errors(source, problem):
    with pytest.raises(MarkerError, match=problem):
        make_student.strip_solutions(source, where="demo")


def test_nbgrader_errors_name_the_cell():
    cells = [nbformat.v4.new_code_cell("x = 1"),
             nbformat.v4.new_code_cell("### BEGIN SOLUTION\n### BEGIN SOLUTION\ny = 2\n### END SOLUTION\n### END SOLUTION")]
    with pytest.raises(MarkerError, match=r"98_demo.ipynb, cell 1: nested .*nbgrader: encountered nested"):
        make_student.student_notebook(nbformat.v4.new_notebook(cells=cells), name="98_demo.ipynb")


def test_hidden_tests_in_an_instructor_notebook_are_errors():
    """nbgrader's hidden tests belong in the graded cells labkit-nbgrader-course writes: one in an
    instructor notebook is refused rather than shipped (or silently dropped)."""
    cell = nbformat.v4.new_code_cell("### BEGIN HIDDEN TESTS\nassert answer == 42\n### END HIDDEN TESTS")
    with pytest.raises(MarkerError, match="nbgrader refuses"):
        make_student.student_notebook(nbformat.v4.new_notebook(cells=[cell]), name="98_demo.ipynb")


def test_markers_in_markdown_are_errors():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("### BEGIN SOLUTION\nsecret\n### END SOLUTION")])
    with pytest.raises(MarkerError, match="code cells only"):
        make_student.student_notebook(nb)


def test_command_writes_copies_and_fails_on_bad_markers(tmp_path, capsys):
    bad = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("### BEGIN SOLUTION\nx = 1")])
    bad_path = tmp_path / "98_bad.ipynb"
    nbformat.write(bad, bad_path)
    out = tmp_path / "student"
    assert make_student.main(["--out", str(out), str(bad_path)]) == 1
    assert "never closed" in capsys.readouterr().err
    assert make_student.main(["--out", str(out), str(NOTEBOOKS[0])]) == 0
    assert (out / NOTEBOOKS[0].name).exists()


def test_default_copies_every_unit_in_course_order():
    names = [p.name for p in make_student.notebook_paths([])]
    assert names == [p.name for p in NOTEBOOKS]
    assert {"06_cipher_networks.ipynb", "06b_key_recovery.ipynb", "A1_performance.ipynb"} <= set(names)
    assert names.index("06b_key_recovery.ipynb") == names.index("06_cipher_networks.ipynb") + 1
    assert names[-1].startswith("A"), "appendices come last"


# -- the real notebooks ------------------------------------------------------------------------
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_student_copy_has_no_solution_and_no_outputs(path):
    full = nbformat.read(path, as_version=4)
    student, regions = make_student.student_notebook(full, name=path.name)
    exercises = make_student.exercise_cells(full)
    minimum = 0 if path not in EXERCISED else 3
    assert regions >= len(exercises) >= minimum, "every chapter and part has at least three exercises"
    for index in exercises:
        solution = full.cells[index].source.split(make_student.BEGIN)[1].split(make_student.END)[0]
        for line in filter(str.strip, solution.splitlines()):
            assert line not in student.cells[index].source.splitlines()
        assert "ex.check(" in student.cells[index].source
    assert all(not cell.get("outputs") for cell in student.cells)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_full_version_stores_passing_checks(path):
    full = nbformat.read(path, as_version=4)
    for index in make_student.exercise_cells(full):
        text = _output_text(full.cells[index].get("outputs", []))
        assert "Correct" in text and "Not yet" not in text, f"{path.name} cell {index}: {text!r}"


