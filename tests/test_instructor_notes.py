"""Instructor notes: one per unit (chapter, part or appendix), with every required part, and a timing
plan that covers the notebook's sections and fits 45 minutes per part (estimates from
tools/unit_timing.py)."""
from __future__ import annotations

import importlib.util
import re
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from labkit import course

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = course.notebook_paths(ROOT / "notebooks")
#: units that are a part of a split chapter (06 and 06b both exist) or an appendix: each was sized
#: to fit one class, so its estimate itself must fit, not only its timing plan
NUMBERS = [course.unit_number(p) for p in NOTEBOOKS]
SIZED = [p for p, n in zip(NOTEBOOKS, NUMBERS)
         if n.startswith("A") or any(m != n and m[:2] == n[:2] for m in NUMBERS)]
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


@pytest.mark.parametrize("path", SIZED, ids=lambda p: p.stem)
def test_parts_and_appendices_fit_one_class_by_the_estimate(path):
    minutes = sum(s.minutes for s in unit_timing.sections(path))
    assert minutes <= unit_timing.UNIT_BUDGET_MINUTES, f"{path.name}: {minutes:.1f} min"


def test_split_chapters_and_appendix_are_units():
    numbers = set(NUMBERS)
    assert {"02", "02b", "03", "03b", "06", "06b", "A1"} <= numbers
    notes = {p.stem for p in (ROOT / "notebooks" / "instructor").glob("*.md")}
    assert {p.stem for p in NOTEBOOKS} <= notes, "every unit has its instructor notes"


def test_plan_printed_by_the_tool_passes_the_notes_check(tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    nb = new_notebook(cells=[new_markdown_cell("# 98b · T\n\n" + "word " * 400), new_code_cell("x = 1"),
                             new_markdown_cell("## A | B\n\ntext"), new_code_cell("y = 2")])
    path = tmp_path / "98b_t.ipynb"
    nbformat.write(nb, path)
    plan = _plan(unit_timing.plan(path))
    assert [s for _, s, _ in plan] == ["Introduction", "A / B"]
    assert [m for _, _, m in plan] == [4, 1]  # 400+2 words / 130 + 0.75 = 3.8 -> 4; 0.75 -> 1, rounded up
    assert "| 1 | **total** | **5** |" in unit_timing.plan(path)


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
