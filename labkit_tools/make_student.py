"""Write student copies of the notebooks: solutions removed, checks kept.

Usage: labkit-make-student [--out student] [notebooks/NN_name.ipynb ...]   (default: every unit)

Exercise cells mark their solution nbgrader-style::

    answer = ...
    ### BEGIN SOLUTION
    answer = <solution>
    ### END SOLUTION
    ex.check("NN.k", answer)

The student copy keeps everything outside the markers, so the placeholder ``answer = ...``
reaches the check, which answers "not answered yet" instead of crashing. A region indented inside a
block (say, the body of a function the student writes) becomes ``...``, so the cell still runs. Every output is cleared (the
full notebooks store the checks' "Correct" lines, which would give answers away). Markers must
be balanced, on lines of their own, and only in code cells: anything else is an error, so a
typo can never leak a solution into the student copies.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

from labkit.course import notebook_paths as course_notebooks

ROOT = Path(__file__).resolve().parent.parent

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
PLACEHOLDER = "# (your solution here)"

__all__ = ["MarkerError", "strip_solutions", "student_notebook", "exercise_cells", "main"]


class MarkerError(ValueError):
    """Solution markers that are unbalanced, nested or misplaced."""


def strip_solutions(source: str, *, where: str = "cell") -> tuple[str, int]:
    """Remove every ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` region from a cell's source.

    Returns the new source and the number of regions removed; raises :class:`MarkerError` on an
    unclosed region, an END without BEGIN, nested regions or a marker sharing its line with code.
    """
    kept: list[str] = []
    regions = 0
    inside = False
    for number, line in enumerate(source.splitlines(), start=1):
        stripped = line.strip()
        has_begin, has_end = BEGIN in line, END in line
        if (has_begin or has_end) and stripped not in (BEGIN, END):
            raise MarkerError(f"{where}, line {number}: a solution marker must be alone on its line: {line!r}")
        if has_begin:
            if inside:
                raise MarkerError(f"{where}, line {number}: nested {BEGIN!r} (the previous region is not closed)")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            # inside a block (a function to write) the body must stay valid Python: `...` does
            kept.append(indent + ("...  " if indent else "") + PLACEHOLDER)
            continue
        if has_end:
            if not inside:
                raise MarkerError(f"{where}, line {number}: {END!r} without a matching {BEGIN!r}")
            inside = False
            regions += 1
            continue
        if not inside:
            kept.append(line)
    if inside:
        raise MarkerError(f"{where}: {BEGIN!r} is never closed by {END!r}")
    return "\n".join(kept), regions


def student_notebook(nb: nbformat.NotebookNode, *, name: str = "notebook") -> tuple[nbformat.NotebookNode, int]:
    """A student copy of ``nb`` (solutions stripped, outputs cleared) and the number of regions."""
    copy = nbformat.from_dict(nb)
    copy.metadata.pop("widgets", None)
    total = 0
    for index, cell in enumerate(copy.cells):
        where = f"{name}, cell {index}"
        if cell.cell_type != "code":
            if BEGIN in cell.source or END in cell.source:
                raise MarkerError(f"{where}: solution markers belong in code cells only")
            continue
        cell.source, regions = strip_solutions(cell.source, where=where)
        total += regions
        cell.outputs = []
        cell.execution_count = None
        cell.metadata.pop("execution", None)
    return copy, total


def exercise_cells(nb: nbformat.NotebookNode) -> list[int]:
    """Indices of the code cells holding a solution region (the exercise cells)."""
    return [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code" and BEGIN in cell.source]


def notebook_paths(args: list[str]) -> list[Path]:
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
