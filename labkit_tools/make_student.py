"""Write student copies of the notebooks with nbgrader's own preprocessors: solutions removed, checks kept.

Usage: labkit-make-student [--out student] [notebooks/NN_name.ipynb ...]   (default: every unit)

Exercise cells mark their solution nbgrader-style::

    answer = ...
    ### BEGIN SOLUTION
    answer = <solution>
    ### END SOLUTION
    ex.check("NN.k", answer)

A student copy is what ``nbgrader generate_assignment`` makes of the same cells, made by the same
code: nbgrader's ``ClearSolutions``, ``ClearOutput``, ``ClearHiddenTests`` and ``ClearMarkScheme``
preprocessors (nbgrader documentation, "Developing assignments" and "nbgrader generate_assignment"),
run on each notebook without a course or its database, with the course's ``ClearSolutions``
settings (:data:`CLEAR_SOLUTIONS`, which ``labkit-nbgrader-course`` writes into the course's
``nbgrader_config.py``). A solution region becomes :data:`CODE_STUB`, an Ellipsis statement
indented like the region, so the placeholder ``answer = ...`` reaches the check, which answers
"not answered yet", and an unwritten function body still runs. Every output is cleared (the full
notebooks store the checks' "Correct" lines, which would give answers away).

nbgrader removes any line that contains a marker, ignores an END without a BEGIN and would put its
text stub into a markdown cell; so the lab checks first that markers are alone on their lines,
balanced and only in code cells, and turns nbgrader's own errors (a nested or unclosed region) into
:class:`MarkerError`: a typo can never leak a solution into the student copies, nor lose a line.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
# importing nbgrader loads its server extensions too: about 0.9 s on the 2-core CI machine under load
# (python -X importtime), paid once by the tools and tests that import this module, never by a notebook
from nbgrader.preprocessors import ClearHiddenTests, ClearMarkScheme, ClearOutput, ClearSolutions
from traitlets.config import Config

from labkit.course import notebook_paths as course_notebooks

ROOT = Path(__file__).resolve().parent.parent

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
#: nbgrader's delimiters (``ClearSolutions.begin_solution_delimeter``): any line holding one is a marker
_DELIMITERS = ("BEGIN SOLUTION", "END SOLUTION")
PLACEHOLDER = "# (your solution here)"
#: What a solution region becomes: an Ellipsis statement (valid Python at any indentation) and a comment.
CODE_STUB = "...  " + PLACEHOLDER
#: What a solution cell of markdown would become (the lab keeps markers out of markdown: never used today).
TEXT_STUB = "YOUR ANSWER HERE"
#: The course's ``ClearSolutions`` settings: the student copies and nbgrader's releases use these.
CLEAR_SOLUTIONS = {"code_stub": {"python": CODE_STUB}, "text_stub": TEXT_STUB}

__all__ = ["BEGIN", "END", "PLACEHOLDER", "CODE_STUB", "TEXT_STUB", "CLEAR_SOLUTIONS", "MarkerError",
           "strip_solutions", "student_notebook", "exercise_cells", "notebook_paths", "main"]


class MarkerError(ValueError):
    """Solution markers that are unbalanced, nested or misplaced."""


def _preprocessors() -> list:
    """nbgrader's clearing steps of ``generate_assignment``, in its order, with the course's settings.

    The instructor notebooks carry no nbgrader cell metadata (no course database gives cells ids), so
    ``ClearSolutions`` runs as nbgrader's stand-alone use allows (``enforce_metadata=False``); a hidden
    test or mark scheme region in an instructor notebook is still an error, as nbgrader raises it.
    """
    config = Config({"ClearSolutions": dict(CLEAR_SOLUTIONS, enforce_metadata=False)})
    return [ClearSolutions(config=config), ClearOutput(config=config), ClearHiddenTests(config=config),
            ClearMarkScheme(config=config)]


def _check_markers(source: str, where: str) -> int:
    """The lab's rules nbgrader does not enforce; the number of regions. Nesting and unclosed regions
    are left to nbgrader (:func:`_nbgrader_error`)."""
    begins = ends = 0
    for number, line in enumerate(source.splitlines(), start=1):
        if not any(delimiter in line for delimiter in _DELIMITERS):
            continue
        if line.strip() not in (BEGIN, END):
            raise MarkerError(f"{where}, line {number}: a solution marker must be alone on its line "
                              f"({BEGIN!r} or {END!r}): {line!r}")
        begins += line.strip() == BEGIN
        ends += line.strip() == END
        if ends > begins:
            raise MarkerError(f"{where}, line {number}: {END!r} without a matching {BEGIN!r}")
    return begins


def _nbgrader_error(err: RuntimeError, where: str) -> MarkerError:
    """nbgrader's error about a cell, said in the lab's words (nbgrader's own text kept)."""
    text = str(err)
    if "nested" in text:
        return MarkerError(f"{where}: nested {BEGIN!r} (the previous region is not closed); nbgrader: {text}")
    if "no end solution" in text.lower():
        return MarkerError(f"{where}: {BEGIN!r} is never closed by {END!r}; nbgrader: {text}")
    return MarkerError(f"{where}: nbgrader refuses this cell: {text}")


def _clear(nb: nbformat.NotebookNode, where: str) -> nbformat.NotebookNode:
    resources: dict = {}
    try:
        for preprocessor in _preprocessors():
            nb, resources = preprocessor.preprocess(nb, resources)
    except RuntimeError as err:  # nbgrader's preprocessors raise RuntimeError for a malformed region
        raise _nbgrader_error(err, where) from err
    return nb


def strip_solutions(source: str, *, where: str = "cell") -> tuple[str, int]:
    """A code cell's source as nbgrader releases it (every solution region replaced by the stub),
    and the number of regions; :class:`MarkerError` on an unclosed, stray, nested or inline marker."""
    regions = _check_markers(source, where)
    nb = _clear(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)]), where)
    return nb.cells[0].source, regions


def student_notebook(nb: nbformat.NotebookNode, *, name: str = "notebook") -> tuple[nbformat.NotebookNode, int]:
    """A student copy of ``nb`` (solutions stripped, outputs cleared) and the number of regions."""
    copy = nbformat.from_dict(nb)
    copy.metadata.pop("widgets", None)
    total = 0
    for index, cell in enumerate(copy.cells):
        where = f"{name}, cell {index}"
        if cell.cell_type != "code":
            if any(delimiter in cell.source for delimiter in _DELIMITERS):
                raise MarkerError(f"{where}: solution markers belong in code cells only")
            continue
        total += _check_markers(cell.source, where)
        cell.metadata.pop("execution", None)
    try:
        return _clear(copy, name), total
    except MarkerError:
        for index, cell in enumerate(nb.cells):  # say which cell nbgrader refused
            if cell.cell_type == "code":
                strip_solutions(cell.source, where=f"{name}, cell {index}")
        raise


def exercise_cells(nb: nbformat.NotebookNode) -> list[int]:
    """Indices of the code cells holding a solution region (the exercise cells)."""
    return [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code" and BEGIN in cell.source]


def notebook_paths(args: list[str]) -> list[Path]:
    """The notebooks named on the command line, or every unit in course order."""
    return [Path(a) for a in args] or course_notebooks(ROOT / "notebooks")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="labkit-make-student", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="notebooks to convert (default: every unit)")
    parser.add_argument("--out", default=str(ROOT / "student"), help="output folder (default: student/)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    failures = 0
    for path in notebook_paths(args.notebooks):
        nb = nbformat.read(path, as_version=4)
        try:
            copy, regions = student_notebook(nb, name=path.name)
        except MarkerError as err:
            print(f"error: {err}", file=sys.stderr)
            failures += 1
            continue
        nbformat.write(copy, out / path.name)
        print(f"{path.name}: {regions} solution region(s) removed -> {out / path.name}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
