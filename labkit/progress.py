"""Progress through the lab: the exercises a student has passed, kept in one small JSON file.

:func:`labkit.exercises.check` calls :func:`record` on every correct answer; the landing notebook
(``00_start_here``) shows what :func:`load` returns per chapter (:func:`labkit.course.summary`).
This module is storage only: it knows nothing about chapters, notebooks or exercises. The file lives in
the user's data folder as platformdirs names it (on Linux ``$XDG_DATA_HOME/labkit/progress.json``,
default ``~/.local/share/labkit/progress.json``) so that full and student copies share it; the
environment variable ``LABKIT_PROGRESS`` redirects it to another file (tests do), and
``LABKIT_PROGRESS=off`` turns recording off. Two kernels may record at once: the read-modify-write
runs under a file lock (filelock) beside the file, so neither loses the other's record.

Recording must never get in a student's way: an unreadable or corrupt file counts as empty, and a
file that cannot be written (or locked within a few seconds) is skipped (:func:`record` returns False).
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import platformdirs
from filelock import FileLock, Timeout

__all__ = ["ENV", "progress_path", "load", "record", "reset"]

ENV = "LABKIT_PROGRESS"
_OFF = {"", "0", "off", "none", "false"}
_ID = re.compile(r"^(\d\d)\.\w+$")


def progress_path() -> Path | None:
    """The progress file in use, or None when recording is turned off."""
    value = os.environ.get(ENV)
    if value is not None:
        return None if value.strip().lower() in _OFF else Path(value).expanduser()
    return platformdirs.user_data_path("labkit", appauthor=False) / "progress.json"


def _resolve(path: str | os.PathLike | None) -> Path | None:
    return progress_path() if path is None else Path(path)


def load(path: str | os.PathLike | None = None) -> dict[str, str]:
    """Passed exercise ids mapped to when they were first passed (UTC, ISO 8601)."""
    path = _resolve(path)
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    passed = data.get("passed") if isinstance(data, dict) else None
    if not isinstance(passed, dict):
        return {}
    return {str(k): str(v) for k, v in passed.items() if isinstance(k, str) and _ID.match(k)}


def _write(path: Path, passed: dict[str, str]) -> None:
    """Replace the file atomically, so a crash or a second kernel never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".progress-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"version": 1, "passed": dict(sorted(passed.items()))}, handle, indent=1)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def record(exercise_id: str, path: str | os.PathLike | None = None) -> bool:
    """Remember that ``exercise_id`` (like ``"03.2"``) was passed; False if not recorded."""
    if not isinstance(exercise_id, str) or not _ID.match(exercise_id):
        raise ValueError(f"exercise id must look like '03.2', got {exercise_id!r}")
    target = _resolve(path)
    if target is None:
        return False
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(target.with_name(target.name + ".lock"), timeout=5):
            passed = load(target)
            if exercise_id not in passed:
                passed[exercise_id] = datetime.now(timezone.utc).isoformat(timespec="seconds")
                _write(target, passed)
    except (OSError, Timeout):
        return False
    return True


def reset(path: str | os.PathLike | None = None) -> None:
    """Forget all progress (delete the file)."""
    target = _resolve(path)
    if target is not None:
        target.unlink(missing_ok=True)
