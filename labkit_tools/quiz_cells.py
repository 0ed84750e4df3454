"""Write each concept question's markdown cell from labkit, the one place its text lives.

A quiz's question and choices are registered once, in ``labkit/exercises/chNN_*.py`` (see
``labkit.exercises.quiz``). The notebooks show them in a markdown cell (so the student copies, the
book and nbgrader show the question without running anything), and that cell is generated:
``labkit.exercises.quiz.markdown(id)``, written by this tool. Edit the question in labkit, then run

    labkit-quiz-cells            # rewrite the quiz cells of every notebook
    labkit-quiz-cells --check    # list stale cells, exit 1 if any (what the tests assert)

A quiz cell is the markdown cell that starts with ``**NN.k** (concept)``.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

from labkit import course
from labkit import exercises as ex
from labkit.exercises import quiz as qz

ROOT = Path(__file__).resolve().parent.parent

_HEAD = re.compile(r"^\*\*(\d\d\.\d+)\*\* \(concept\)")


def sync(path: Path, *, write: bool = True) -> list[str]:
    """The ids of the quiz cells of ``path`` whose text differs from labkit's (rewritten if ``write``)."""
    dict(ex.registry())  # imports every chapter module: registers every question
    nb = nbformat.read(path, as_version=4)
    stale = []
    for cell in nb.cells:
        match = _HEAD.match(cell.source) if cell.cell_type == "markdown" else None
        if not match:
            continue
        exercise_id = match.group(1)
        if exercise_id not in qz.QUESTIONS:
            raise ValueError(f"{path.name}: a quiz cell for {exercise_id}, which labkit does not register")
        text = qz.markdown(exercise_id)
        if cell.source != text:
            stale.append(exercise_id)
            cell.source = text
    if stale and write:
        nbformat.write(nb, path)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="labkit-quiz-cells", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every unit notebook")
    parser.add_argument("--check", action="store_true", help="report stale cells, change nothing")
    args = parser.parse_args(argv)
    paths = args.notebooks or course.notebook_paths(ROOT / "notebooks")
    stale = {p.name: s for p in paths if (s := sync(p, write=not args.check))}
    for name, ids in stale.items():
        print(f"{name}: {'stale' if args.check else 'rewrote'} {', '.join(ids)}")
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
