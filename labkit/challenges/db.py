"""The challenge service's state: attempts, their secrets, budgets and counters, and solves.

One small layer over two databases: SQLite (the standard library's ``sqlite3``) by default, for
self-study and tests, and PostgreSQL for a class, by URL (``postgresql://user@host/db``, through
``psycopg`` 3, imported only then). Queries are written once with ``?`` placeholders and the
layer rewrites them for PostgreSQL. Every access runs in its own transaction under a lock, so
the service's request handlers (one thread) and its query workers see consistent counts.

Tables: ``attempts`` (one per fresh secret: its student, exercise, state as wire JSON, the query
rows used and the budget, the answers and wrong answers so far, when it was solved) and ``solves``
(per student and exercise: answers over all attempts, first solve, last receipt) for the
lecturer's page and its CSV.
"""
from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path

__all__ = ["Database", "SCHEMA"]

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS attempts (
        id TEXT PRIMARY KEY, student TEXT NOT NULL, exercise TEXT NOT NULL, kind TEXT NOT NULL,
        created DOUBLE PRECISION NOT NULL, state TEXT NOT NULL, queries BIGINT NOT NULL,
        budget BIGINT, answers BIGINT NOT NULL, wrong BIGINT NOT NULL, solved DOUBLE PRECISION)""",
    "CREATE INDEX IF NOT EXISTS attempts_student ON attempts (student, exercise)",
    """CREATE TABLE IF NOT EXISTS solves (
        student TEXT NOT NULL, exercise TEXT NOT NULL, answers BIGINT NOT NULL,
        first_answer DOUBLE PRECISION NOT NULL, solved DOUBLE PRECISION, receipt TEXT,
        PRIMARY KEY (student, exercise))""",
)


class Database:
    """``Database("sqlite:///path/state.db")``, ``Database(":memory:")`` or ``Database("postgresql://...")``."""

    def __init__(self, url: str):
        if not isinstance(url, str) or not url:
            raise ValueError("database URL must be a non-empty string")
        self.url = url
        self._lock = threading.RLock()
        if url.startswith(("postgresql://", "postgres://")):
            import psycopg  # only a class deployment needs it

            self._conn = psycopg.connect(url, autocommit=False)
            self._postgres = True
        else:
            path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._postgres = False
        with self.transaction() as run:
            for statement in SCHEMA:
                run(statement)

    @contextmanager
    def transaction(self):
        """``with db.transaction() as run: rows = run(sql, params)``: all or nothing."""
        with self._lock:
            cursor = self._conn.cursor()
            if not self._postgres:
                cursor.execute("BEGIN IMMEDIATE")

            def run(sql: str, params: tuple = ()) -> list[tuple]:
                cursor.execute(sql.replace("?", "%s") if self._postgres else sql, params)
                return cursor.fetchall() if cursor.description else []

            try:
                yield run
            except BaseException:
                self._conn.rollback() if self._postgres else cursor.execute("ROLLBACK")
                raise
            else:
                self._conn.commit() if self._postgres else cursor.execute("COMMIT")

    # --- attempts ---------------------------------------------------------------------------

    def new_attempt(self, attempt_id: str, student: str, exercise: str, kind: str, state: str,
                    budget: int | None) -> None:
        with self.transaction() as run:
            run("INSERT INTO attempts VALUES (?, ?, ?, ?, ?, ?, 0, ?, 0, 0, NULL)",
                (attempt_id, student, exercise, kind, time.time(), state, budget))

    def attempt(self, attempt_id: str) -> dict | None:
        with self.transaction() as run:
            rows = run("SELECT id, student, exercise, kind, created, state, queries, budget, answers, "
                       "wrong, solved FROM attempts WHERE id = ?", (attempt_id,))
        if not rows:
            return None
        keys = ("id", "student", "exercise", "kind", "created", "state", "queries", "budget",
                "answers", "wrong", "solved")
        return dict(zip(keys, rows[0]))

    def spend(self, attempt_id: str, rows: int) -> tuple[bool, int, int | None]:
        """Count ``rows`` query rows against the attempt's budget, atomically: ``(allowed, used, budget)``;
        past the budget nothing is counted and ``allowed`` is False."""
        with self.transaction() as run:
            lock = " FOR UPDATE" if self._postgres else ""  # SQLite: BEGIN IMMEDIATE locks already
            used, budget = run("SELECT queries, budget FROM attempts WHERE id = ?" + lock, (attempt_id,))[0]
            if budget is not None and used + rows > budget:
                return False, used, budget
            run("UPDATE attempts SET queries = queries + ? WHERE id = ?", (rows, attempt_id))
            return True, used + rows, budget

    def record_answer(self, attempt_id: str, student: str, exercise: str, correct: bool) -> int:
        """Count one answer (on the attempt, if any, and on the student's exercise): the answers of
        this student to this exercise so far, this one included."""
        now = time.time()
        with self.transaction() as run:
            if attempt_id:
                run("UPDATE attempts SET answers = answers + 1, wrong = wrong + ?, "
                    "solved = CASE WHEN ? = 1 AND solved IS NULL THEN ? ELSE solved END WHERE id = ?",
                    (0 if correct else 1, 1 if correct else 0, now, attempt_id))
            rows = run("SELECT answers FROM solves WHERE student = ? AND exercise = ?", (student, exercise))
            if rows:
                run("UPDATE solves SET answers = answers + 1 WHERE student = ? AND exercise = ?",
                    (student, exercise))
                return rows[0][0] + 1
            run("INSERT INTO solves VALUES (?, ?, 1, ?, NULL, NULL)", (student, exercise, now))
            return 1

    def record_solve(self, student: str, exercise: str, when: float, receipt: str) -> None:
        with self.transaction() as run:
            run("UPDATE solves SET solved = CASE WHEN solved IS NULL THEN ? ELSE solved END, receipt = ? "
                "WHERE student = ? AND exercise = ?", (when, receipt, student, exercise))

    def solves(self, student: str | None = None) -> list[dict]:
        """Every (student, exercise) row, ordered, for the lecturer's page (one student's if given)."""
        sql = "SELECT student, exercise, answers, first_answer, solved FROM solves"
        params: tuple = ()
        if student is not None:
            sql, params = sql + " WHERE student = ?", (student,)
        with self.transaction() as run:
            rows = run(sql + " ORDER BY student, exercise", params)
        keys = ("student", "exercise", "answers", "first_answer", "solved")
        return [dict(zip(keys, row)) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
