"""Timing: labkit.timing's wall-clock helper, and the class-time model of labkit-unit-timing (per-kind
exercise costs, every unit's in-class part within 45 minutes, the in-class/homework tag beside every
exercise in the notebooks)."""
import shutil
from pathlib import Path

import nbformat
import pytest

from labkit import course
from labkit import exercises as ex
from labkit import timing


def test_best_time_is_the_shortest_run(monkeypatch):
    clock = iter([0.0, 5.0, 10.0, 12.0, 20.0, 23.0])  # runs of 5, 2 and 3 seconds
    monkeypatch.setattr(timing.time, "perf_counter", lambda: next(clock))
    calls = []
    assert timing.best_time(lambda: calls.append(1), repeats=3) == 2.0
    assert len(calls) == 3


@pytest.mark.parametrize("repeats", [0, -1, 1.5])
def test_best_time_rejects_bad_repeats(repeats):
    with pytest.raises(ValueError):
        timing.best_time(lambda: None, repeats)


# --- the class-time model of labkit-unit-timing -------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = course.notebook_paths(ROOT / "notebooks")
from labkit_tools import unit_timing  # noqa: E402
HANDS_ON = ("implement", "attack", "design", "game")


def test_exercises_cost_what_a_median_student_needs():
    assert unit_timing.KIND_MINUTES == {"implement": 15, "attack": 30, "design": 45, "game": 20,
                                        "value": 3, "quiz": 2}
    assert set(unit_timing.KIND_MINUTES) == set(ex.KINDS)
    assert set(ex.KINDS) >= {"implement", "attack", "design", "game", "value", "quiz"}
    assert ex.WHERE == ("class", "homework")
    for e in ex.registry().values():
        assert e.kind in ex.KINDS and e.where in ex.WHERE, e.id


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_units_class_part_fits_45_minutes(path):
    minutes = unit_timing.class_minutes(path)
    assert minutes <= unit_timing.UNIT_BUDGET_MINUTES, (
        f"{path.name}: {minutes} min in class; move an exercise to homework (where=) and rerun "
        "labkit-unit-timing --mark --notes")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_hands_on_exercise_stays_in_class_where_one_fits(path):
    tasks = [t for s in unit_timing.sections(path) for t in s.tasks]
    hands_on = [t for t in tasks if t.kind in HANDS_ON]
    if not hands_on or any(t.where == "class" for t in hands_on):
        return
    # none in class: then even the cheapest must not fit with every other exercise sent home
    registry = {t.id: ex.Exercise(t.id, "", abs, ("x",), t.kind, "homework") for t in tasks}
    cheapest = min(hands_on, key=lambda t: t.minutes)
    registry[cheapest.id] = ex.Exercise(cheapest.id, "", abs, ("x",), cheapest.kind, "class")
    assert unit_timing.class_minutes(path, registry) > unit_timing.UNIT_BUDGET_MINUTES, (
        f"{path.name}: {cheapest.id} ({cheapest.kind}) would fit in class")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_notebook_shows_kind_and_place_beside_each_exercise(path, tmp_path):
    markdown = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown")
    for s in unit_timing.sections(path):
        for t in s.tasks:
            label = unit_timing.KIND_LABELS.get(t.kind, t.kind)
            assert f"**{t.id}** ({label}, {t.where})" in markdown, f"{path.name}: {t.id}; run --mark"
    copy = tmp_path / path.name
    shutil.copy(path, copy)
    assert unit_timing.mark(copy) == 0  # the tags are what the registry says: nothing to rewrite


def test_mark_rewrites_old_and_stale_tags(tmp_path):
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    class Fake:
        def __init__(self, id, kind, where):
            self.id, self.kind, self.where = id, kind, where

    cells = [new_markdown_cell("**97.1 (implement)** Write it."), new_markdown_cell("**97.2** Compute it."),
             new_markdown_cell("**97.3** (concept, class) Why? See **97.1** above."),
             *[new_code_cell(f'answer = ...\n### BEGIN SOLUTION\n### END SOLUTION\nex.check("97.{i}", answer)')
               for i in (1, 2, 3)]]
    path = tmp_path / "97_t.ipynb"
    nbformat.write(new_notebook(cells=cells), path)
    registry = {"97.1": Fake("97.1", "implement", "homework"), "97.2": Fake("97.2", "value", "class"),
                "97.3": Fake("97.3", "quiz", "homework")}
    assert unit_timing.mark(path, registry) == 3
    sources = [c.source for c in nbformat.read(path, as_version=4).cells[:3]]
    assert sources == ["**97.1** (implement, homework) Write it.", "**97.2** (value, class) Compute it.",
                       "**97.3** (concept, homework) Why? See **97.1** above."]
    assert unit_timing.mark(path, registry) == 0
