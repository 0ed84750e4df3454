"""Class time of a unit under the lab's timing model: the in-class part and the homework.

Usage: labkit-unit-timing [--mark] [--notes] [--plan] [notebooks/NN_name.ipynb ...]
(default: every unit)

Without options it prints a table: per unit, the minutes in class and as homework. ``--plan``
prints each unit's timing plan; ``--notes`` writes it into the "## Timing plan" section of the
unit's instructor notes (``notebooks/instructor/NN_name.md``). ``--mark`` rewrites the tag after
each exercise's id in the notebooks' markdown (``**06.8** (attack, homework)``) from the registry,
so the notebook shows what ``labkit.exercises.registry()[id].where`` says. After changing a
notebook or moving an exercise between class and homework, run ``--mark`` and ``--notes``.

The model. A section starts at each level-2 heading (``## ...``). Its class minutes are the words
of its markdown read and discussed at ``WORDS_PER_MINUTE``, plus ``MINUTES_PER_CODE_CELL`` per
code cell run and looked at, plus the cost of each in-class exercise by its kind
(``KIND_MINUTES``). An exercise's own cells (its statement, a markdown cell that starts with
``**NN.k**``, and its solution cell) are covered by that cost, not counted again. Homework
exercises cost the same minutes, outside class. The kind costs are what a median student needs
(an implement exercise 15 minutes, an attack 30, a design 45; a game, an adversary of a few queries
against a given challenger, 20: more than an implement exercise because the advantage has to be
argued, less than an attack because the oracle and the winning condition are given), not the
time an instructor needs; the notes round each section up. Every unit's in-class part must fit
``UNIT_BUDGET_MINUTES``.
"""
from __future__ import annotations

import argparse
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from labkit.course import notebook_paths

ROOT = Path(__file__).resolve().parent.parent

WORDS_PER_MINUTE = 130
MINUTES_PER_CODE_CELL = 0.75
#: Minutes a median student spends on one exercise of each kind (statement, work, check).
KIND_MINUTES = {"implement": 15, "attack": 30, "design": 45, "game": 20, "value": 3, "quiz": 2}
UNIT_BUDGET_MINUTES = 45
#: How the notebooks name a kind beside an exercise's id (a quiz is a "concept" question).
KIND_LABELS = {"quiz": "concept"}

_CHECK = re.compile(r"""\bex\.check\(\s*["'](\d\d\.\d+)["']""")
_STATEMENT = re.compile(r"^\s*\*\*(\d\d\.\d+)\*\*")
_LABEL = r"\((?:implement|attack|design|game|value|concept|quiz)(?:,\s*(?:class|homework|design))?\)"
#: an exercise's id in bold and the tag after it; also the older form with the tag inside the bold
_TAG = re.compile(rf"\*\*(\d\d\.\d+)\*\*(?:\s*{_LABEL})?|\*\*(\d\d\.\d+)\s*{_LABEL}\*\*")


@dataclass(frozen=True)
class Task:
    """One exercise of a unit as the model sees it: id, kind and where it is done."""

    id: str
    kind: str
    where: str

    @property
    def minutes(self) -> int:
        return KIND_MINUTES[self.kind]


@dataclass
class Section:
    """One ``##`` section of a notebook: its reading, its code cells and its exercises."""

    title: str
    words: int = 0
    code_cells: int = 0
    tasks: list[Task] = field(default_factory=list)

    @property
    def minutes(self) -> float:
        """Class minutes: reading, code cells and the in-class exercises."""
        return (self.words / WORDS_PER_MINUTE + self.code_cells * MINUTES_PER_CODE_CELL
                + sum(t.minutes for t in self.tasks if t.where == "class"))

    @property
    def homework(self) -> list[Task]:
        return [t for t in self.tasks if t.where == "homework"]


def _words(markdown: str) -> int:
    text = re.sub(r"\$[^$]*\$|`[^`]*`|https?://\S+", " x ", markdown)  # a formula or code span: one word
    return len(re.findall(r"[\w'-]+", text))


def _registry() -> dict:
    from labkit import exercises

    return exercises.registry()


def sections(path: Path, registry: dict | None = None) -> list[Section]:
    """The notebook's sections in order (what precedes the first ``##`` is "Introduction").

    ``registry`` maps exercise ids to objects with ``.kind`` and ``.where`` (default: labkit's)."""
    registry = _registry() if registry is None else registry
    nb = nbformat.read(path, as_version=4)
    found = [Section("Introduction")]
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            heading = re.search(r"^## (.+)$", cell.source, flags=re.M)
            if heading:
                found.append(Section(heading.group(1).strip()))
            if not (_STATEMENT.match(cell.source) and _STATEMENT.match(cell.source).group(1) in registry):
                found[-1].words += _words(cell.source)
        elif cell.cell_type == "code":
            ids = _CHECK.findall(cell.source) if "### BEGIN SOLUTION" in cell.source else []
            if not ids:
                found[-1].code_cells += 1
            for exercise_id in ids:
                if exercise_id not in registry:
                    raise ValueError(f"{path.name}: ex.check of unknown exercise {exercise_id}")
                e = registry[exercise_id]
                found[-1].tasks.append(Task(exercise_id, e.kind, e.where))
    return [s for s in found if s.words or s.code_cells or s.tasks]


def class_minutes(path: Path, registry: dict | None = None) -> int:
    """The unit's in-class minutes as the plan shows them: each section rounded up, summed."""
    return sum(math.ceil(s.minutes) for s in sections(path, registry))


def homework(path: Path, registry: dict | None = None) -> list[Task]:
    """The unit's homework exercises in notebook order: its graded assignment."""
    return [t for s in sections(path, registry) for t in s.homework]


def table(paths: list[Path]) -> str:
    """A plain-text table: per unit, in-class exercises and minutes, homework exercises and minutes."""
    registry = _registry()
    lines = [f"{'notebook':28} {'class ex.':>9} {'class min':>9} {'homework ex.':>12} {'hw min':>6}"]
    for path in paths:
        secs = sections(path, registry)
        tasks = [t for s in secs for t in s.tasks]
        work = [t for t in tasks if t.where == "homework"]
        lines.append(f"{path.name:28} {len(tasks) - len(work):9d} {class_minutes(path, registry):9d} "
                     f"{len(work):12d} {sum(t.minutes for t in work):6d}")
    return "\n".join(lines)


def _label(kind: str) -> str:
    return KIND_LABELS.get(kind, kind)


def plan(path: Path, registry: dict | None = None) -> str:
    """The timing plan of the unit's instructor notes: in class, minutes per section rounded up
    (with the section's in-class exercises), then the homework exercises and their minutes."""
    registry = _registry() if registry is None else registry
    secs = sections(path, registry)
    rows = []
    for s in secs:
        here = ", ".join(f"{t.id} {_label(t.kind)}" for t in s.tasks if t.where == "class") or "-"
        rows.append(f"| {s.title.replace('|', '/')} | {here} | {math.ceil(s.minutes)} |")
    work = [t for s in secs for t in s.homework]
    out = ["In class:", "", "| section | exercises in class | minutes |", "|---|---|---|", *rows,
           f"| **total in class** | | **{class_minutes(path, registry)}** |", "",
           "Homework (the unit's graded assignment):", ""]
    if work:
        out += ["| exercise | kind | minutes |", "|---|---|---|",
                *[f"| {t.id} | {_label(t.kind)} | {t.minutes} |" for t in work],
                f"| **total homework** | | **{sum(t.minutes for t in work)}** |"]
    elif any(s.tasks for s in secs):
        out.append("None: every exercise of this unit is done in class.")
    else:
        out.append("None: this unit has no exercises.")
    return "\n".join(out)


def mark(path: Path, registry: dict | None = None) -> int:
    """Rewrite the tag after each exercise's id to ``(kind, where)`` from the registry, at the
    first bold ``**NN.k**`` in the markdown of every exercise the notebook checks; returns the
    number of cells changed (the notebook is written only then)."""
    registry = _registry() if registry is None else registry
    nb = nbformat.read(path, as_version=4)
    pending = {i for c in nb.cells if c.cell_type == "code" and "### BEGIN SOLUTION" in c.source
               for i in _CHECK.findall(c.source) if i in registry}
    changed = 0
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue

        def tag(match):
            exercise_id = match.group(1) or match.group(2)
            if exercise_id not in pending:
                return match.group(0)
            pending.discard(exercise_id)
            e = registry[exercise_id]
            return f"**{e.id}** ({_label(e.kind)}, {e.where})"

        source = _TAG.sub(tag, cell.source)
        if source != cell.source:
            cell.source, changed = source, changed + 1
    if changed:
        nbformat.write(nb, path)
    return changed


NOTES_INTRO = (
    "Minutes under the lab's timing model (`labkit-unit-timing --plan {name}` prints "
    "this): reading at {wpm} words a minute, {cell} min per code cell, and each exercise by its "
    "kind ({kinds}), each section rounded up. The class part fits {budget} minutes; the homework "
    "is the unit's graded nbgrader assignment. Adjust to your class."
)


def notes_section(path: Path, registry: dict | None = None) -> str:
    """The body of the "## Timing plan" section of the unit's instructor notes."""
    kinds = ", ".join(f"{_label(k)} {m}" for k, m in KIND_MINUTES.items())
    intro = NOTES_INTRO.format(name=f"notebooks/{path.name}", wpm=WORDS_PER_MINUTE, cell=MINUTES_PER_CODE_CELL,
                               kinds=kinds, budget=UNIT_BUDGET_MINUTES)
    return f"{intro}\n\n{plan(path, registry)}\n"


def write_notes(path: Path, registry: dict | None = None) -> bool:
    """Replace the timing-plan section of the unit's instructor notes; True if it changed."""
    notes = path.parent / "instructor" / (path.stem + ".md")
    text = notes.read_text()
    head, sep, rest = text.partition("## Timing plan\n")
    if not sep:
        raise ValueError(f"{notes} has no '## Timing plan' section")
    _, nxt, tail = rest.partition("\n## ")
    new = f"{head}## Timing plan\n\n{notes_section(path, registry)}" + (f"\n## {tail}" if nxt else "")
    if new != text:
        notes.write_text(new)
    return new != text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="labkit-unit-timing", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="unit notebooks (default: every unit)")
    parser.add_argument("--mark", action="store_true", help="retag each exercise's id in the notebooks' markdown")
    parser.add_argument("--notes", action="store_true", help="write each unit's plan into its instructor notes")
    parser.add_argument("--plan", action="store_true", help="print each unit's timing plan")
    args = parser.parse_args(argv)
    paths = args.notebooks or notebook_paths(ROOT / "notebooks")
    if args.mark:  # first, so that --mark --notes plans from the retagged notebooks
        for p in paths:
            print(f"{p.name}: {mark(p)} exercise cell(s) retagged")
    if args.notes:
        registry = _registry()
        for p in paths:
            print(f"{p.name}: timing plan {'rewritten' if write_notes(p, registry) else 'unchanged'}")
    if args.plan:
        print("\n\n".join(f"{p.name}\n{plan(p)}" for p in paths))
    if not (args.mark or args.notes or args.plan):
        print(table(paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
