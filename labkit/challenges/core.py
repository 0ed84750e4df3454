"""The challenge service's logic, independent of HTTP: attempts, budgets, verdicts and receipts.

:class:`ChallengeService` is what the web handlers call, for an authenticated ``student``:

- :meth:`start` a fresh attempt of an attack exercise: its secret is drawn here (CSPRNG), stored
  in the database, and only the public part is returned;
- :meth:`query` one batch to an attempt's oracle: the rows are counted against the attempt's budget
  in the database *before* the oracle answers, so nothing in the kernel can lift a budget;
- :meth:`answer` an exercise: attack answers against the attempt's secret (with the wrong-answer
  limit), quiz answers against the answer key from the instructor notebooks, value answers with
  the exercise's own checker. Every answer is counted; an accepted one returns a receipt signed by
  the service's key over (student, exercise, time, answers so far).
"""
from __future__ import annotations

import os
import secrets
import threading
import time
from collections import OrderedDict
from pathlib import Path

from Crypto.PublicKey import ECC

from labkit import ed25519
from labkit.challenges import answers, catalog, receipts, wire
from labkit.challenges.db import Database
from labkit.challenges.definitions import ChallengeError

__all__ = ["ChallengeService", "RequestRefused", "BudgetExceeded", "load_service_key"]

KEY_FILE = "service_key.pem"
PUBLIC_FILE = "service_key.pub"


class RequestRefused(ValueError):
    """A request the service refuses (unknown exercise or attempt, another student's attempt...)."""


class BudgetExceeded(RequestRefused):
    """A query batch that would take an attempt past its budget: nothing was answered or counted."""


def load_service_key(state_dir: str | os.PathLike) -> ECC.EccKey:
    """The service's Ed25519 signing key from ``state_dir`` (made on first use, file mode 0600);
    its raw public key is written beside it (``service_key.pub``, hex) for graders."""
    folder = Path(state_dir)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / KEY_FILE
    if not path.exists():
        key = ECC.generate(curve="Ed25519")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another service process made it first
            pass
        else:
            with os.fdopen(fd, "w") as out:
                out.write(key.export_key(format="PEM"))
    key = ECC.import_key(path.read_text())
    public = folder / PUBLIC_FILE
    text = ed25519.public_key_bytes(key).hex() + "\n"
    if not public.exists() or public.read_text() != text:
        public.write_text(text)
    return key


class ChallengeService:
    """The service's state and verdicts (see the module docstring)."""

    def __init__(self, db: Database, signing_key: ECC.EccKey, *, name: str = "labkit-challenges",
                 notebooks: str | os.PathLike | None = None, memo_size: int = 64):
        if not isinstance(signing_key, ECC.EccKey):  # raw bytes would be the secret seed, never a public key
            raise TypeError("the service's signing key must be an Ed25519 key (Crypto.PublicKey.ECC), not "
                            f"{type(signing_key).__name__}")
        self.db, self.key, self.name = db, signing_key, name
        self.public_key = ed25519.public_key_bytes(signing_key)
        self.answer_key = answers.answer_key(notebooks)
        self._memo: OrderedDict[str, dict] = OrderedDict()
        self._memo_size = memo_size
        self._lock = threading.Lock()
        self._warmed: set[str] = set()

    def warm(self, exercise) -> None:
        """Start preparing the challenges of ``exercise``'s chapter in the background (once): a
        notebook's first check of chapter 10 lets the service train 10.3's classifier while the
        student's kernel trains its own, in parallel."""
        with self._lock:
            todo = [c for c in catalog.all_challenges() if c.warms_with(str(exercise))
                    and c.exercise not in self._warmed]
            self._warmed.update(c.exercise for c in todo)
        for challenge in todo:
            threading.Thread(target=_quietly, args=(challenge.prepare,), daemon=True).start()

    # --- attempts -----------------------------------------------------------------------------

    def _challenge(self, exercise: str):
        challenge = catalog.get(exercise) if isinstance(exercise, str) else None
        if challenge is None:
            raise RequestRefused(f"exercise {exercise!r} has no challenge in this service")
        return challenge

    def start(self, student: str, exercise: str, fresh: bool = False) -> dict:
        """A new attempt: ``{"attempt", "public", "budget", "queries"}``."""
        challenge = self._challenge(exercise)
        self.warm(exercise)
        fresh = bool(fresh) and challenge.answers == "fresh"
        state, public = challenge.new_attempt(secrets.token_bytes, fresh, student)
        attempt_id = secrets.token_urlsafe(18)
        budget = challenge.budget if fresh else challenge.run_budget
        self.db.new_attempt(attempt_id, student, exercise, "fresh" if fresh else "run",
                            wire.dumps(state).decode("ascii"), budget)
        return {"attempt": attempt_id, "public": public, "budget": budget, "queries": 0,
                "oracles": list(challenge.oracles)}

    def _attempt(self, student: str, attempt_id: str) -> dict:
        row = self.db.attempt(attempt_id) if isinstance(attempt_id, str) else None
        if row is None or not secrets.compare_digest(row["student"], student):
            raise RequestRefused("no such attempt for this student")
        return row

    def status(self, student: str, attempt_id: str) -> dict:
        row = self._attempt(student, attempt_id)
        return {"queries": row["queries"], "budget": row["budget"], "answers": row["answers"],
                "wrong": row["wrong"], "exercise": row["exercise"]}

    def _memo_for(self, attempt_id: str) -> dict:
        with self._lock:
            memo = self._memo.pop(attempt_id, None) or {}
            self._memo[attempt_id] = memo
            while len(self._memo) > self._memo_size:
                self._memo.popitem(last=False)
            return memo

    def query(self, student: str, attempt_id: str, oracle: str, request) -> dict:
        """One batch: ``{"reply", "queries", "budget"}``; :class:`BudgetExceeded` past the budget."""
        row = self._attempt(student, attempt_id)
        challenge = self._challenge(row["exercise"])
        if oracle not in challenge.oracles:
            raise RequestRefused(f"exercise {row['exercise']} has no oracle {oracle!r}")
        if row["solved"] is not None and row["kind"] == "fresh":
            raise RequestRefused("this attempt is answered: a check starts a fresh one")
        state = wire.loads(row["state"])
        rows = challenge.rows(oracle, request)
        if rows < 1:
            raise RequestRefused("a query batch holds at least one query")
        if challenge.counted:
            allowed, used, budget = self.db.spend(attempt_id, rows)
            if not allowed:
                raise BudgetExceeded(f"{used + rows} query rows asked; the budget is {budget}")
        else:  # the challenge counts (a game: per game, in the service's memory), not a database row
            used, budget = row["queries"], row["budget"]
        reply = challenge.query(state, oracle, request, self._memo_for(attempt_id))
        return {"reply": reply, "queries": used, "budget": budget}

    # --- answers ------------------------------------------------------------------------------

    def answer(self, student: str, exercise: str, answer, attempt_id: str | None = None) -> dict:
        """The verdict ``{"correct", "message", "receipt", "attempts"}`` on ``answer`` to ``exercise``."""
        if not isinstance(exercise, str):
            raise RequestRefused("exercise must be an id like '06.8'")
        self.warm(exercise)
        challenge = catalog.get(exercise)
        title = ""
        if challenge is not None:
            if attempt_id is None:
                raise RequestRefused(f"an answer to {exercise} names the attempt it answers")
            row = self._attempt(student, attempt_id)
            if row["exercise"] != exercise:
                raise RequestRefused("that attempt belongs to another exercise")
            if challenge.answers == "fresh" and row["kind"] != "fresh":
                raise RequestRefused(f"{exercise} is checked on a fresh attempt that the check starts")
            if row["kind"] == "fresh" and row["answers"]:
                raise RequestRefused("a fresh attempt takes one answer: check again for a new one")
            if challenge.max_wrong is not None and row["wrong"] >= challenge.max_wrong:
                return {"correct": False, "receipt": None, "attempts": None, "message": (
                    f"{challenge.max_wrong} wrong answers in this run: restart the kernel (a new key) and "
                    "run the attack again; guessing through the check is not the attack.")}
            try:
                ok, message = challenge.check(wire.loads(row["state"]), answer)
            except ChallengeError as err:
                ok, message = False, str(err)
        elif exercise in self.answer_key:
            attempt_id = None
            try:
                letter = answers.normalize_letter(answer)
            except TypeError as err:
                return {"correct": False, "message": str(err), "receipt": None, "attempts": None}
            ok = letter == self.answer_key[exercise]
            message = f"({letter}) is right." if ok else \
                f"({letter}) is not the best answer: reread the section and try again."
        else:
            attempt_id = None
            try:
                ok, message, title = answers.check_value(exercise, answer)
            except ValueError as err:
                raise RequestRefused(str(err)) from None
        count = self.db.record_answer(attempt_id, student, exercise, bool(ok))
        receipt = None
        if ok:
            now = int(time.time())
            receipt = receipts.sign_receipt(self.key, student=student, exercise=exercise, attempts=count,
                                            service=self.name, time=now)
            self.db.record_solve(student, exercise, now, receipt)
        return {"correct": bool(ok), "message": message or (title if ok else ""), "receipt": receipt, "attempts": count}

    def results(self, student: str | None = None) -> list[dict]:
        """Who answered what: answers, first answer and first solve times (the lecturer's page)."""
        return self.db.solves(student)


def _quietly(task) -> None:
    try:
        task()
    except Exception:  # a failed warm-up only means the first attempt builds it instead
        pass
