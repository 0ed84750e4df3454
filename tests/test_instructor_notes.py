"""Instructor notes: one per unit (chapter, part or appendix), with every required part, and a timing
plan from the lab's timing model (labkit-unit-timing): the in-class sections with their
exercises and minutes, at most 45 in all, and the homework exercises (the graded assignment).
The model itself and the 45-minute cap of every unit are tested in tests/test_timing.py."""
from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from labkit import course

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = course.notebook_paths(ROOT / "notebooks")
NUMBERS = [course.unit_number(p) for p in NOTEBOOKS]
REQUIRED = ["## Objectives", "## Prerequisites", "## Timing plan", "## Discussion questions",
            "## Common mistakes", "## If short of time, skip"]

from labkit_tools import unit_timing  # noqa: E402


def _tables(notes: str) -> tuple[list[tuple[str, str, int]], int, list[str]]:
    """(in-class rows (section, exercises, minutes), in-class total, homework exercise ids)."""
    plan = notes.split("## Timing plan", 1)[1].split("\n## ", 1)[0]
    in_class, _, homework = plan.partition("Homework")
    rows = [(a, b, int(m)) for a, b, m in re.findall(r"^\| (?!\*\*)(.+?) \| (.*?) \| (\d+) \|$", in_class, re.M)]
    total = re.search(r"^\| \*\*total in class\*\* \| \| \*\*(\d+)\*\* \|$", in_class, re.M)
    work = re.findall(r"^\| (\d\d\.\d+) \| \w+ \| \d+ \|$", homework, re.M)
    return rows, int(total.group(1)) if total else -1, work


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notes_have_every_part_and_the_models_plan(path):
    notes = (ROOT / "notebooks" / "instructor" / (path.stem + ".md")).read_text()
    for heading in REQUIRED:
        body = notes.split(heading, 1)[1].split("\n## ", 1)[0] if heading in notes else ""
        assert body.strip(), f"{path.stem}: {heading} missing or empty"
    rows, total, work = _tables(notes)
    sections = unit_timing.sections(path)
    hint = "rerun: labkit-unit-timing --notes"
    assert [r[0] for r in rows] == [s.title.replace("|", "/") for s in sections], f"plan follows the notebook; {hint}"
    for (title, listed, minutes), s in zip(rows, sections):
        assert abs(minutes - math.ceil(s.minutes)) <= 1, f"{path.stem} / {title}: {minutes} min; {hint}"
        here = [t.id for t in s.tasks if t.where == "class"]
        assert re.findall(r"\d\d\.\d+", listed) == here, f"{path.stem} / {title}: in class {here}; {hint}"
    assert total == sum(r[2] for r in rows) <= unit_timing.UNIT_BUDGET_MINUTES, (total, hint)
    assert work == [t.id for t in unit_timing.homework(path)], f"homework; {hint}"


def test_split_chapters_and_appendix_are_units():
    numbers = set(NUMBERS)
    assert {"02", "02b", "03", "03b", "06", "06b", "A1"} <= numbers
    notes = {p.stem for p in (ROOT / "notebooks" / "instructor").glob("*.md")}
    assert {p.stem for p in NOTEBOOKS} <= notes, "every unit has its instructor notes"


class _Fake:
    def __init__(self, kind, where):
        self.kind, self.where = kind, where


def test_plan_printed_by_the_tool_passes_the_notes_check(tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    nb = new_notebook(cells=[new_markdown_cell("# 98b · T\n\n" + "word " * 400), new_code_cell("x = 1"),
                             new_markdown_cell("## A | B\n\ntext"), new_markdown_cell("**98.1** (value, class) Say."),
                             new_code_cell('answer = ...\n### BEGIN SOLUTION\n### END SOLUTION\nex.check("98.1", answer)'),
                             new_markdown_cell("**98.2** (attack, homework) Break it."),
                             new_code_cell('answer = ...\n### BEGIN SOLUTION\n### END SOLUTION\nex.check("98.2", answer)')])
    path = tmp_path / "98b_t.ipynb"
    nbformat.write(nb, path)
    registry = {"98.1": _Fake("value", "class"), "98.2": _Fake("attack", "homework")}
    plan = unit_timing.plan(path, registry)
    rows, total, work = _tables("## Timing plan\n" + plan)
    # 402 words / 130 + 0.75 = 3.8 -> 4; "A | B" and "text": 3 words -> 0.02, + 98.1's 3 minutes -> 4
    assert rows == [("Introduction", "-", 4), ("A / B", "98.1 value", 4)]
    assert total == 8 and work == ["98.2"]
    assert "| 98.2 | attack | 30 |" in plan and "| **total homework** | | **30** |" in plan


def test_estimate_counts_words_code_and_exercises_by_kind(tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    nb = new_notebook(cells=[new_markdown_cell("# T\n\nfour words are here"), new_code_cell("x = 1"),
                             new_markdown_cell("## Next\n\n`code span` and $x^2$"),
                             new_markdown_cell("**99.1** (implement, class) these words are the exercise's own"),
                             new_code_cell('answer = ...\n### BEGIN SOLUTION\n### END SOLUTION\nex.check("99.1", answer)'),
                             new_code_cell('answer = ...\n### BEGIN SOLUTION\n### END SOLUTION\nex.check("99.2", answer)')])
    path = tmp_path / "99_t.ipynb"
    nbformat.write(nb, path)
    registry = {"99.1": _Fake("implement", "class"), "99.2": _Fake("game", "homework")}
    intro, nxt = unit_timing.sections(path, registry)
    assert (intro.title, intro.words, intro.code_cells, intro.tasks) == ("Introduction", 5, 1, [])
    assert (nxt.title, nxt.words, nxt.code_cells) == ("Next", 4, 0)
    assert [(t.id, t.kind, t.where) for t in nxt.tasks] == [("99.1", "implement", "class"), ("99.2", "game", "homework")]
    assert nxt.minutes == pytest.approx(4 / unit_timing.WORDS_PER_MINUTE + unit_timing.KIND_MINUTES["implement"])
    assert [t.id for t in unit_timing.homework(path, registry)] == ["99.2"]
    with pytest.raises(ValueError, match="unknown exercise"):
        unit_timing.sections(path, {})
