"""The security-game exercises from the attacker's side: the challengers live in the challenge
service (labkit.challenges.defs_games), the adversary in the kernel.

Each test plays one shortcut: reading the challenger's bit or keys from the kernel (a scan of
every object reachable there, taken from inside a running check), replaying a winning transcript
or its receipt as another student, asking past a game's query budget, resetting counters (a second
guess, a forgotten session, attributes in the kernel) and adversaries that guess everything. A
solved check still earns a receipt the grader accepts.

Statistical bound, for every "must not pass" below: in each game the challenger's bit is fresh
from the CSPRNG and the adversary sees nothing that depends on it, so each of its guesses is right
with probability exactly 1/2, independently across games; the 04.14 check needs 94 wins of 100,
so such an adversary passes with probability P[Binomial(100, 1/2) >= 94] < 1.1e-21 (well below
1e-6), and the replayed transcript of a 100-game check likewise.
"""
from __future__ import annotations

import gc
import getpass
import os

import challenge_state
import kernel_scan
import pytest
from Crypto.PublicKey import ECC

from labkit import exercises as ex, games
from labkit.challenges import catalog, client, defs_games, receipts, wire
from labkit.challenges.core import ChallengeService, RequestRefused
from labkit.challenges.db import Database
from labkit.games import cpa

M, OTHER = bytes(16), b"\xff" * 16


def _student() -> str:
    return os.environ.get("LABKIT_STUDENT") or getpass.getuser()


@pytest.fixture
def service():
    """The service's logic in this process (no HTTP), on a fresh database and key."""
    svc = ChallengeService(Database(":memory:"), ECC.generate(curve="Ed25519"), notebooks=None)
    yield svc
    svc.db.close()


def _secrets(state: dict) -> list[dict]:
    return wire.loads(state["games"])


def _play_perfectly(svc, student: str, attempt: str, runs: int) -> list[list]:
    """The repeat adversary of 04.14 against every game, through the service's API: its transcript."""
    transcript = [[[i, "encrypt", [M, M]] for i in range(runs)], [[i, "encrypt", [M, OTHER]] for i in range(runs)]]
    first = svc.query(student, attempt, "play", transcript[0])["reply"]
    second = svc.query(student, attempt, "play", transcript[1])["reply"]
    guesses = [[i, "guess", [0 if a[1] == b[1] else 1]] for i, (a, b) in enumerate(zip(first, second))]
    assert svc.query(student, attempt, "play", guesses)["reply"] == [[True, None]] * runs
    return transcript + [guesses]


def test_a_solved_game_earns_a_receipt_only_its_student_can_use(capsys):
    feedback = ex.check("04.14", cpa.repeat_adversary)
    assert feedback and feedback.receipt and feedback.receipt in capsys.readouterr().out
    key = client.public_key()
    got = receipts.verify_receipt(feedback.receipt, key, student=_student(), exercise="04.14")
    assert got.exercise == "04.14"
    with pytest.raises(receipts.ReceiptError, match="another student"):  # replayed for someone else
        receipts.verify_receipt(feedback.receipt, key, student=_student() + "-friend", exercise="04.14")
    with pytest.raises(receipts.ReceiptError):  # nor for another game
        receipts.verify_receipt(feedback.receipt, key, student=_student(), exercise="01.9")


def _game_states() -> list[dict]:
    """Every dict in this process shaped like a challenger's state (``games.new_state``)."""
    return [o for o in gc.get_objects()
            if type(o) is dict and "b" in o and isinstance(o.get("seed"), (bytes, bytearray))]


def test_the_state_scan_finds_a_challenger_that_lives_in_the_kernel():
    local = games.new_state(os.urandom)  # the control: a challenger drawn here is found
    assert any(state is local for state in _game_states())


def test_the_kernel_never_holds_a_game_bit_or_key():
    seen = {}

    def scanning_adversary(oracles):
        if not seen:  # the first game scans the kernel mid-check, with every game drawn and live
            seen["scanning"] = True
            oracles.encrypt(M, M)
            seen["values"] = kernel_scan.reachable_values()
            seen["states"] = _game_states()
            seen["public"] = dict(oracles.public)
        return 0

    assert not ex.check("04.14", scanning_adversary)
    buffers, ints, strings = seen["values"]
    assert seen["states"] == [], "a challenger's state is reachable in the kernel"
    assert "b" not in seen["public"] and "key" not in seen["public"]
    db = Database(f"sqlite:///{client.state_dir() / 'challenges.db'}")
    try:
        with db.transaction() as run:
            attempt_id = run("SELECT id FROM attempts WHERE exercise = '04.14' ORDER BY created DESC LIMIT 1")[0][0]
    finally:
        db.close()
    drawn = _secrets(challenge_state.attempt_state(attempt_id))
    assert len(drawn) == 100 and {g["b"] for g in drawn} == {0, 1}
    joined, text = b"\x00".join(buffers), "\x00".join(strings)
    for game in drawn:
        for name in ("key", "seed"):  # (the fixed IV is public: every ciphertext starts with it)
            assert game[name] not in joined and game[name].hex() not in text, f"a game's {name} is in the kernel"
            assert int.from_bytes(game[name], "big") not in ints


def test_a_replayed_transcript_or_attempt_earns_nothing_for_another_student(service):
    won = service.start("alice", "04.14", True)
    transcript = _play_perfectly(service, "alice", won["attempt"], won["public"]["runs"])
    verdict = service.answer("alice", "04.14", "done", won["attempt"])
    assert verdict["correct"] and verdict["receipt"]
    # bob cannot touch alice's attempt, nor use her receipt
    with pytest.raises(RequestRefused):
        service.query("bob", won["attempt"], "play", transcript[0])
    with pytest.raises(RequestRefused):
        service.answer("bob", "04.14", "done", won["attempt"])
    with pytest.raises(receipts.ReceiptError):
        receipts.verify_receipt(verdict["receipt"], service.public_key, student="bob", exercise="04.14")
    # alice's answered attempt takes no more queries and no second answer
    with pytest.raises(Exception, match="no longer in the service|answered"):
        service.query("alice", won["attempt"], "play", transcript[0])
    with pytest.raises(RequestRefused, match="one answer"):
        service.answer("alice", "04.14", "done", won["attempt"])
    # bob replays alice's winning transcript (her queries and her guesses) on his own fresh games
    mine = service.start("bob", "04.14", True)
    for batch in transcript:
        service.query("bob", mine["attempt"], "play", batch)
    replayed = service.answer("bob", "04.14", "done", mine["attempt"])
    assert not replayed["correct"] and replayed["receipt"] is None  # fresh bits: < 1.1e-21 to pass


def test_the_query_budget_is_counted_in_the_service(service):
    attempt = service.start("alice", "04.14", True)
    budget = attempt["public"]["public"]["budget"]
    assert budget == 8
    for _ in range(budget):
        assert service.query("alice", attempt["attempt"], "play", [[0, "encrypt", [M, M]]])["reply"][0][0]
    over = service.query("alice", attempt["attempt"], "play", [[0, "encrypt", [M, M]], [1, "encrypt", [M, M]]])
    assert over["reply"][0] == [False, "oracle 'encrypt' allows 8 queries in a game"]
    assert over["reply"][1][0] is True  # the other games keep their own budgets
    # from the kernel: a ninth query raises in the adversary, whatever it sets on its handles
    def greedy(oracles):
        oracles.public["budget"] = 10 ** 9
        oracles.budget = oracles.queries = 0
        for _ in range(9):
            oracles.encrypt(M, M)
        return 0

    feedback = ex.check("04.14", greedy)
    assert not feedback and "allows 8 queries" in feedback.message and feedback.receipt is None


def test_counters_cannot_be_reset(service):
    attempt = service.start("alice", "04.14", True)
    aid = attempt["attempt"]
    # a second guess in the same game is refused; the first one stands
    assert service.query("alice", aid, "play", [[0, "guess", [0]]])["reply"] == [[True, None]]
    assert service.query("alice", aid, "play", [[0, "guess", [1]]])["reply"] == [[False, "this game already has its guess"]]
    assert service.query("alice", aid, "play", [[0, "encrypt", [M, M]]])["reply"][0] == [False, "the game is over: no queries after the guess"]
    # a session the service lost is refused, never rebuilt from the database with fresh counts
    session = service.db.attempt(aid)
    state = wire.loads(session["state"])
    with defs_games._SESSIONS_LOCK:
        kept = defs_games._SESSIONS.pop(state["session"])
    try:
        with pytest.raises(Exception, match="no longer in the service"):
            service.query("alice", aid, "play", [[1, "encrypt", [M, M]]])
        assert not service.answer("alice", "04.14", "done", aid)["correct"]
    finally:
        kept.states.clear()
    # a new attempt is new games: fresh bits and keys, never the old ones with their counts reset
    fresh = service.start("alice", "04.14", True)
    old, new = _secrets(state), _secrets(wire.loads(service.db.attempt(fresh["attempt"])["state"]))
    assert not {g["key"] for g in old} & {g["key"] for g in new}
    # malformed batches are refused whole
    for bad in ([], [[100, "encrypt", [M, M]]], [[0, "encrypt", "not a list"]], [["0", "guess", [0]]], "x"):
        with pytest.raises(Exception):
            service.query("alice", fresh["attempt"], "play", bad)


@pytest.mark.parametrize("name", ["always 1", "coin", "both bits", "not a bit", "guess twice"])
def test_guess_everything_adversaries_do_not_pass(service, name):
    """Bound in the module docstring: each passes with probability < 1.1e-21."""
    attempt = service.start("alice", "04.14", True)
    aid, runs = attempt["attempt"], attempt["public"]["runs"]
    assert attempt["public"]["needed"] == 94 == games.required_wins(defs_games.game_of("04.14"), runs, 0.5)
    import secrets

    guesses = {"always 1": lambda i: [1], "coin": lambda i: [secrets.randbits(1)], "both bits": lambda i: [[0, 1]],
               "not a bit": lambda i: [2], "guess twice": lambda i: [0]}[name]
    service.query("alice", aid, "play", [[i, "encrypt", [M, M]] for i in range(runs)])
    service.query("alice", aid, "play", [[i, "guess", guesses(i)] for i in range(runs)])
    if name == "guess twice":
        again = service.query("alice", aid, "play", [[i, "guess", [1]] for i in range(runs)])["reply"]
        assert all(not ok for ok, _ in again)
    verdict = service.answer("alice", "04.14", "done", aid)
    assert not verdict["correct"] and verdict["receipt"] is None
    if name in ("both bits", "not a bit"):
        assert "0 of 100" in verdict["message"]  # a malformed guess loses its game


def test_an_adversary_in_the_kernel_sees_the_games_replies_as_the_local_game_gives_them():
    shapes = {}

    def probe(oracles):
        reply = oracles.encrypt(M, M)
        shapes.setdefault("reply", type(reply))
        shapes.setdefault("public", dict(oracles.public))
        with pytest.raises(games.GameError, match="plain data"):
            oracles.encrypt(object(), M)
        return cpa.repeat_adversary(oracles)

    assert ex.check("04.14", probe)
    assert shapes["reply"] is bytes and shapes["public"]["scheme"] == "cbc-fixed-iv"
    crashed = ex.check("04.14", lambda oracles: 1 / 0)
    assert not crashed and "ZeroDivisionError" in crashed.message


def test_chapter_08c_warms_its_game_up_and_notebook_08_does_not():
    from labkit.challenges import catalog

    detection, cpa_game = catalog.get("08.15"), catalog.get("04.14")
    assert detection.warms_with("08.12") and not detection.warms_with("08.5")  # the CNN trains for 08c only
    assert cpa_game.warms_with("04.3") and not cpa_game.warms_with("03.6")


def test_one_student_cannot_end_another_students_running_check(service, monkeypatch):
    """The live games are bounded per student and in all: mallory's flood of checks drops only
    mallory's own sessions, and a full service refuses the flood, never alice's running check."""
    monkeypatch.setattr(defs_games, "MAX_SESSIONS", 8)
    monkeypatch.setattr(defs_games, "_SESSIONS", type(defs_games._SESSIONS)())  # this test's sessions only
    alice = service.start("alice", "04.14", True)
    runs = alice["public"]["runs"]
    service.query("alice", alice["attempt"], "play", [[i, "encrypt", [M, M]] for i in range(runs)])
    floods = [service.start("mallory", "04.14", True)["attempt"] for _ in range(20)]
    for old in floods[:-defs_games.MAX_SESSIONS_PER_STUDENT]:  # mallory's own oldest went first
        with pytest.raises(Exception, match="no longer in the service"):
            service.query("mallory", old, "play", [[0, "encrypt", [M, M]]])
    refused = 0
    for name in [f"sybil{i}" for i in range(20)]:  # many accounts fill the service, then are refused
        try:
            service.start(name, "04.14", True)
        except Exception as err:
            assert "check again in a minute" in str(err)
            refused += 1
    assert refused == 20 - (defs_games.MAX_SESSIONS - 1 - defs_games.MAX_SESSIONS_PER_STUDENT)
    with defs_games._SESSIONS_LOCK:
        assert len(defs_games._SESSIONS) <= defs_games.MAX_SESSIONS
    # alice's games are all still there: her check finishes with her transcript
    reply = service.query("alice", alice["attempt"], "play", [[i, "guess", [0]] for i in range(runs)])["reply"]
    assert reply == [[True, None]] * runs
    assert "correct" in service.answer("alice", "04.14", "done", alice["attempt"])


def test_a_game_session_belongs_to_a_named_student():
    challenge = catalog.get("04.14")
    with pytest.raises(Exception, match="belongs to a student"):
        challenge.new_state(os.urandom, True)
    with pytest.raises(Exception, match="needs the student"):
        challenge.new_attempt(os.urandom, True, "")
