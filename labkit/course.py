"""The course's structure: its units (chapters, their parts and the appendices, each with number,
title and notebook) read from a notebooks folder, and each unit's share of exercises passed.

A unit is one notebook of at most ~45 minutes of class: ``NN_name.ipynb`` is chapter NN (or its
part 1), ``NNb_name.ipynb`` its part 2 (``c``, ... further parts), ``A1_name.ipynb`` an appendix.
Course order: chapters and their parts by number, then the appendices.

Nothing here knows where the notebooks live or where progress is stored: callers pass the folder
(the landing notebook passes its own, ``"."``), the exercise ids (``labkit.exercises.registry()``)
and the passed ids (:func:`labkit.progress.load`), so this module imports nothing from labkit.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

__all__ = ["unit_number", "notebook_paths", "notebook_title", "chapters", "ChapterProgress", "summary"]

_NUMBER = r"(?:\d\d[a-z]?|A\d)"
_FILE = re.compile(rf"^({_NUMBER})_\w+\.ipynb$")
_TITLE = re.compile(rf"#\s+{_NUMBER}\s*[·:.\-–]\s*(.+)")
_CHECK = re.compile(r"""\bex\.check\(\s*["'](\d\d\.\d+)["']""")


def unit_number(path: str | os.PathLike) -> str | None:
    """The unit number of a notebook file name (``"06"``, ``"06b"``, ``"A1"``), None if it is no unit."""
    match = _FILE.match(Path(path).name)
    return match.group(1) if match else None


def _course_order(number: str) -> tuple[bool, str]:
    return number.startswith("A"), number  # chapters (06 before 06b) first, then the appendices


def notebook_paths(folder: str | os.PathLike) -> list[Path]:
    """Every unit notebook in ``folder``, in course order (06, 06b, 07, ..., then A1, A2)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"notebooks folder {str(folder)!r} is not a directory")
    units = [p for p in folder.glob("*.ipynb") if unit_number(p)]
    return sorted(units, key=lambda p: _course_order(unit_number(p)))


def notebook_title(nb, path: str | os.PathLike) -> str:
    """A unit's title: its first markdown line ``# NN · Title``, else made from the file name."""
    for cell in (nb.cells if nb is not None else []):
        if cell.cell_type == "markdown" and cell.source.strip():
            match = _TITLE.match(cell.source.strip().splitlines()[0])
            if match:
                return match.group(1).strip()
            break
    stem = Path(path).stem
    return stem.split("_", 1)[-1].replace("_", " ").capitalize()


def _read(path: Path):
    # Here, not on top: only reading notebooks needs nbformat (1.2 s of CPU and 31 MiB to import,
    # measured), and a progress record or a unit's number does not.
    import nbformat

    try:
        return nbformat.read(path, as_version=4)
    except (OSError, ValueError):
        return None


def chapters(folder: str | os.PathLike) -> list[tuple[str, str, str]]:
    """``(number, title, file name)`` of every unit notebook in ``folder``, in course order."""
    return [(unit_number(p), notebook_title(_read(p), p), p.name) for p in notebook_paths(folder)]


def _checked_ids(nb) -> set[str]:
    """The exercise ids a notebook checks (``ex.check("NN.k", ...)`` in its code cells)."""
    cells = nb.cells if nb is not None else []
    return {i for c in cells if c.cell_type == "code" for i in _CHECK.findall(c.source)}


@dataclass(frozen=True)
class ChapterProgress:
    """One unit's line in the progress table (a chapter, a part of one, or an appendix)."""

    number: str
    title: str
    notebook: str
    passed: tuple[str, ...]
    total: int

    @property
    def done(self) -> int:
        return len(self.passed)

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


def summary(folder: str | os.PathLike, exercise_ids: Iterable[str],
            passed: Mapping[str, str] | Iterable[str]) -> list[ChapterProgress]:
    """Per unit in ``folder``: which of ``exercise_ids`` (``"NN.k"``) are among ``passed``.

    An exercise belongs to the unit whose notebook checks it (a split chapter's parts share the
    chapter's ids, ``06.k``), otherwise to the chapter's first part. Chapters whose exercises
    exist but whose notebook is not (yet) in the folder still count.
    """
    ids = sorted(exercise_ids)
    passed = set(passed)
    units = []
    for path in notebook_paths(folder):
        nb = _read(path)
        units.append((unit_number(path), notebook_title(nb, path), path.name, _checked_ids(nb)))
    numbers = {number for number, _, _, _ in units}
    units += [(n, f"Chapter {n}", "", set()) for n in sorted({i[:2] for i in ids} - numbers)]
    units.sort(key=lambda unit: _course_order(unit[0]))
    owner = {}
    for number, _, _, checked in units:
        for i in checked:
            owner.setdefault(i, number)
    rows = []
    for number, title, notebook, _ in units:
        mine = [i for i in ids if owner.get(i, i[:2]) == number]
        rows.append(ChapterProgress(number, title, notebook, tuple(i for i in mine if i in passed), len(mine)))
    return rows
