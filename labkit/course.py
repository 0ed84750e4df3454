"""The course's structure: its chapters (number, title, notebook) read from a notebooks folder,
and each chapter's share of exercises passed.

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

__all__ = ["notebook_title", "chapters", "ChapterProgress", "summary"]

_TITLE = re.compile(r"#\s+\d\d\s*[·:.\-–]\s*(.+)")


def notebook_title(nb, path: str | os.PathLike) -> str:
    """A chapter's title: its first markdown line ``# NN · Title``, else made from the file name."""
    for cell in (nb.cells if nb is not None else []):
        if cell.cell_type == "markdown" and cell.source.strip():
            match = _TITLE.match(cell.source.strip().splitlines()[0])
            if match:
                return match.group(1).strip()
            break
    return Path(path).stem[3:].replace("_", " ").capitalize()


def chapters(folder: str | os.PathLike) -> list[tuple[str, str, str]]:
    """``(number, title, file name)`` of every chapter notebook (``NN_name.ipynb``) in ``folder``."""
    import nbformat

    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"notebooks folder {str(folder)!r} is not a directory")
    found = []
    for nb_path in sorted(folder.glob("[0-9][0-9]_*.ipynb")):
        try:
            nb = nbformat.read(nb_path, as_version=4)
        except (OSError, ValueError):
            nb = None
        found.append((nb_path.name[:2], notebook_title(nb, nb_path), nb_path.name))
    return found


@dataclass(frozen=True)
class ChapterProgress:
    """One chapter's line in the progress table."""

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
    """Per chapter in ``folder``: which of ``exercise_ids`` (``"NN.k"``) are among ``passed``.

    Chapters whose exercises exist but whose notebook is not (yet) in the folder still count.
    """
    ids = sorted(exercise_ids)
    passed = set(passed)
    listed = chapters(folder)
    numbers = {n for n, _, _ in listed}
    listed += [(n, f"Chapter {n}", "") for n in sorted({i[:2] for i in ids} - numbers)]
    rows = []
    for number, title, notebook in sorted(listed):
        mine = [i for i in ids if i.startswith(number + ".")]
        rows.append(ChapterProgress(number, title, notebook, tuple(i for i in mine if i in passed), len(mine)))
    return rows
