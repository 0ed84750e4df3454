"""The service's database layer: the same contract on SQLite (always) and on PostgreSQL (when
``LABKIT_TEST_POSTGRES_URL`` names a server, e.g. ``postgresql://postgres@/postgres?host=/tmp/pg``),
including the budget's atomicity under concurrent spenders."""
from __future__ import annotations

import os
import threading

import pytest
from Crypto.PublicKey import ECC

from labkit.challenges import receipts, wire
from labkit.challenges.core import ChallengeService
from labkit.challenges.db import Database

URLS = ["sqlite"] + (["postgres"] if os.environ.get("LABKIT_TEST_POSTGRES_URL") else [])


@pytest.fixture(params=URLS)
def db(request, tmp_path):
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'state.db'}")
    else:
        database = Database(os.environ["LABKIT_TEST_POSTGRES_URL"])
        with database.transaction() as run:
            run("DELETE FROM attempts")
            run("DELETE FROM solves")
    yield database
    database.close()


def test_attempts_budgets_and_solves(db):
    db.new_attempt("a1", "ada", "06.8", "fresh", "{}", 10)
    assert db.attempt("a1")["budget"] == 10 and db.attempt("nope") is None
    assert db.spend("a1", 6) == (True, 6, 10)
    assert db.spend("a1", 5) == (False, 6, 10)  # refused: nothing counted
    assert db.spend("a1", 4) == (True, 10, 10)
    assert db.record_answer("a1", "ada", "06.8", False) == 1
    assert db.record_answer("a1", "ada", "06.8", True) == 2
    db.record_solve("ada", "06.8", 1234, "r")
    row = db.attempt("a1")
    assert (row["answers"], row["wrong"]) == (2, 1) and row["solved"] is not None
    assert [(r["student"], r["exercise"], r["answers"], r["solved"]) for r in db.solves()] == [("ada", "06.8", 2, 1234)]
    assert db.solves("bob") == []


def test_concurrent_spenders_never_pass_the_budget(db):
    db.new_attempt("b1", "ada", "06.8", "fresh", "{}", 512)
    granted = []

    def spend():
        for _ in range(40):
            ok, _, _ = db.spend("b1", 8)
            granted.append(ok)

    threads = [threading.Thread(target=spend) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(granted) * 8 == 512 == db.attempt("b1")["queries"]


def test_the_service_runs_on_this_database(db):
    service = ChallengeService(db, ECC.generate(curve="Ed25519"))
    start = service.start("ada", "02.9")
    cookie = wire.loads(db.attempt(start["attempt"])["state"])["cookie"]  # white box
    assert not service.answer("ada", "02.9", cookie ^ 1, start["attempt"])["correct"]
    verdict = service.answer("ada", "02.9", cookie, start["attempt"])
    assert verdict["correct"] and verdict["attempts"] == 2
    assert receipts.verify_receipt(verdict["receipt"], service.public_key, student="ada").attempts == 2
