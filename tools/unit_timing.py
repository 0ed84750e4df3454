"""Class-time estimate of a notebook, per section: the basis of the instructor notes' timing plans.

Usage: python tools/unit_timing.py [--plan] [notebooks/NN_name.ipynb ...]   (default: every unit)

``--plan`` prints each notebook's timing-plan table for its instructor notes instead.

A section starts at each level-2 heading (``## ...``). Its minutes are the words of its markdown
read and discussed at ``WORDS_PER_MINUTE``, plus ``MINUTES_PER_CODE_CELL`` per code cell run and
looked at, plus ``MINUTES_PER_EXERCISE`` more per exercise cell (one with a solution region). The
constants are a teaching rule of thumb, not a measurement; the notes round the result.
"""
from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from a clone: use its labkit
from labkit.course import notebook_paths  # noqa: E402

WORDS_PER_MINUTE = 130
MINUTES_PER_CODE_CELL = 0.75
MINUTES_PER_EXERCISE = 1.5
UNIT_BUDGET_MINUTES = 45


@dataclass
class Section:
    """One ``##`` section of a notebook and its estimated class time."""

    title: str
    words: int = 0
    code_cells: int = 0
    exercises: int = 0

    @property
    def minutes(self) -> float:
        return (self.words / WORDS_PER_MINUTE + self.code_cells * MINUTES_PER_CODE_CELL
                + self.exercises * MINUTES_PER_EXERCISE)


def _words(markdown: str) -> int:
    text = re.sub(r"\$[^$]*\$|`[^`]*`|https?://\S+", " x ", markdown)  # a formula or code span: one word
    return len(re.findall(r"[\w'-]+", text))


def sections(path: Path) -> list[Section]:
    """The notebook's sections in order (what precedes the first ``##`` is "Introduction")."""
    nb = nbformat.read(path, as_version=4)
    found = [Section("Introduction")]
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            heading = re.search(r"^## (.+)$", cell.source, flags=re.M)
            if heading:
                found.append(Section(heading.group(1).strip()))
            found[-1].words += _words(cell.source)
        elif cell.cell_type == "code":
            found[-1].code_cells += 1
            found[-1].exercises += "### BEGIN SOLUTION" in cell.source
    return [s for s in found if s.words or s.code_cells]


def table(paths: list[Path]) -> str:
    """A plain-text table: per notebook, words, code cells, exercises and estimated minutes."""
    lines = [f"{'notebook':28} {'cells':>5} {'code':>5} {'words':>6} {'exer.':>5} {'minutes':>7}"]
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        secs = sections(path)
        lines.append(f"{path.name:28} {len(nb.cells):5d} {sum(s.code_cells for s in secs):5d} "
                     f"{sum(s.words for s in secs):6d} {sum(s.exercises for s in secs):5d} "
                     f"{sum(s.minutes for s in secs):7.1f}")
    return "\n".join(lines)


def plan(path: Path) -> str:
    """The timing-plan table of the notebook's instructor notes: minutes per section, rounded up."""
    secs = sections(path)
    rows = [f"| 1 | {s.title.replace('|', '/')} | {math.ceil(s.minutes)} |" for s in secs]
    total = sum(math.ceil(s.minutes) for s in secs)
    return "\n".join(["| part | section | minutes |", "|---|---|---|", *rows, f"| 1 | **total** | **{total}** |"])


def main(argv: list[str]) -> int:
    show_plan = "--plan" in argv
    paths = [Path(a) for a in argv if a != "--plan"] or notebook_paths(ROOT / "notebooks")
    print("\n\n".join(f"{p.name}\n{plan(p)}" for p in paths) if show_plan else table(paths))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
