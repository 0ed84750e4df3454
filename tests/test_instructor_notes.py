"""Instructor notes: one per unit, with every required part, and a timing plan that covers the
notebook's sections and fits 45 minutes per part (estimates from tools/unit_timing.py)."""
from __future__ import annotations

import importlib.util
import re
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
REQUIRED = ["## Objectives", "## Prerequisites", "## Timing plan", "## Discussion questions",
            "## Common mistakes", "## If short of time, skip"]

_spec = importlib.util.spec_from_file_location("unit_timing", ROOT / "tools" / "unit_timing.py")
unit_timing = sys.modules["unit_timing"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(unit_timing)


def _plan(notes: str) -> list[tuple[int, str, int]]:
    rows = re.findall(r"^\| (\d+) \| (?!\*\*total)(.+?) \| (\d+) \|$", notes, flags=re.M)
    return [(int(part), section, int(minutes)) for part, section, minutes in rows]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notes_have_every_part_and_a_plan_within_budget(path):
    notes = (ROOT / "notebooks" / "instructor" / (path.stem + ".md")).read_text()
    for heading in REQUIRED:
        body = notes.split(heading, 1)[1].split("\n## ", 1)[0] if heading in notes else ""
        assert body.strip(), f"{path.stem}: {heading} missing or empty"
    plan = _plan(notes)
    per_part = defaultdict(int)
    for part, _, minutes in plan:
        per_part[part] += minutes
    assert plan and all(m <= unit_timing.UNIT_BUDGET_MINUTES for m in per_part.values()), dict(per_part)
    assert sorted(per_part) == list(range(1, len(per_part) + 1)) and len(per_part) <= 2
    sections = unit_timing.sections(path)
    assert [s for _, s, _ in plan] == [s.title.replace("|", "/") for s in sections], "plan follows the notebook"
    assert sum(per_part.values()) >= 0.8 * sum(s.minutes for s in sections), "plan not far below the estimate"


def test_estimate_counts_words_code_and_exercises(tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    nb = new_notebook(cells=[new_markdown_cell("# T\n\nfour words are here"), new_code_cell("x = 1"),
                             new_markdown_cell("## Next\n\n`code span` and $x^2$"),
                             new_code_cell("answer = ...\n### BEGIN SOLUTION\n### END SOLUTION")])
    path = tmp_path / "99_t.ipynb"
    nbformat.write(nb, path)
    intro, nxt = unit_timing.sections(path)
    assert (intro.title, intro.words, intro.code_cells, intro.exercises) == ("Introduction", 5, 1, 0)
    assert (nxt.title, nxt.words, nxt.code_cells, nxt.exercises) == ("Next", 4, 1, 1)
    assert nxt.minutes == pytest.approx(4 / unit_timing.WORDS_PER_MINUTE + unit_timing.MINUTES_PER_CODE_CELL
                                        + unit_timing.MINUTES_PER_EXERCISE)
