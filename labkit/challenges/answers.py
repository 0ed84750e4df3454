"""The service's answer key for concept questions, and its checks of value answers.

Quiz answers are not stored in labkit (a student can read the package) nor in student images:
the service builds its key from the instructor notebooks of a configured folder, where each quiz
cell holds its answer between the solution markers::

    answer = ...
    ### BEGIN SOLUTION
    answer = "c"
    ### END SOLUTION
    ex.check("02.10", answer)

Value exercises (an answer computed from public inputs, e.g. a table's largest entry) are checked
here too, by the exercise's own checker from :mod:`labkit.exercises` run in the service's process
on the decoded plain-data answer, so the verdict (and the receipt) never comes from the kernel.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

__all__ = ["NOTEBOOKS_ENV", "default_notebooks", "answer_key", "normalize_letter", "check_value"]

NOTEBOOKS_ENV = "LABKIT_NOTEBOOKS"
_SOLUTION = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.S)
_ANSWER = re.compile(r"""^\s*answer\s*=\s*(["'])\s*\(?([A-Za-z])[).]?\s*\1\s*(?:#.*)?$""", re.M)
_CHECK = re.compile(r"""ex\.check\(\s*["'](\d\d\.\w+)["']\s*,\s*answer\s*\)""")


def default_notebooks() -> Path | None:
    """``$LABKIT_NOTEBOOKS``, else the clone's ``notebooks/`` beside the package (self-study)."""
    configured = os.environ.get(NOTEBOOKS_ENV)
    if configured:
        return Path(configured)
    here = Path(__file__).resolve().parent.parent.parent / "notebooks"
    return here if here.is_dir() else None


def normalize_letter(answer) -> str:
    """A choice as one lower-case letter: ``"B"``, ``" b "``, ``"(b)"`` and ``"b."`` are all ``"b"``."""
    if not isinstance(answer, str):
        raise TypeError(f"answer with the letter of one choice as a string, got {type(answer).__name__}")
    return answer.strip().strip("().").strip().lower()


def answer_key(folder: str | os.PathLike | None) -> dict[str, str]:
    """``{quiz id: letter}`` from the solution cells of the notebooks in ``folder``."""
    key: dict[str, str] = {}
    if folder is None or not Path(folder).is_dir():
        return key
    for path in sorted(Path(folder).glob("*.ipynb")):
        try:
            cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
        except (OSError, ValueError):
            continue
        for cell in cells:
            if cell.get("cell_type") != "code":
                continue
            source = cell.get("source", "")
            source = "".join(source) if isinstance(source, list) else str(source)
            checks = _CHECK.findall(source)
            solutions = _SOLUTION.findall(source)
            letters = [m.group(2).lower() for s in solutions for m in _ANSWER.finditer(s)]
            if len(checks) == 1 and len(letters) == 1:
                key[checks[0]] = letters[0]
    return key


def check_value(exercise: str, answer) -> tuple[bool, str, str]:
    """``(ok, message, title)`` of a value exercise's own checker on a plain-data answer."""
    from labkit import exercises

    entry = exercises.get_exercise(exercise)
    if entry.kind == "quiz":
        raise ValueError(f"the service's answer key has no answer for quiz {exercise}: its instructor "
                         "notebooks folder lacks that solution cell")
    if entry.kind != "value":
        raise ValueError(f"exercise {exercise} is a {entry.kind} exercise, not a value one")
    try:
        result = entry.checker(answer)
    except Exception as err:
        if not exercises.answers_fault(err, entry.checker):
            raise  # a bug in the checker: the request fails and the service logs it, never a verdict
        return False, f"could not check that answer ({type(err).__name__}: {err})", entry.title
    ok, message = result if isinstance(result, tuple) else (bool(result), "")
    return bool(ok), str(message), entry.title
