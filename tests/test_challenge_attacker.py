"""The kernel from the attacker's side: every shortcut a student can take inside the kernel earns
nothing, because the secrets, budgets, counters, answers and verdicts live in the challenge
service (a separate process), and a grade is a receipt only the service can sign.

Each test plays one shortcut of the threat model (reading module state, oracle attributes,
closures or the checker's frames; resetting budgets or counters; cracking quiz answers offline;
answers whose ``__eq__`` always says True; faking a Feedback), and the generic test searches every
value reachable in the process for one that works as a key against an oracle. A correct solution
still gets "Correct" with a receipt the grader's check accepts.
"""
from __future__ import annotations

import getpass
import os
import sys

import challenge_state
import kernel_scan
import numpy as np
import pytest
from Crypto.Cipher import AES, DES

from labkit import attacks, exercises as ex, spn
from labkit.challenges import client, receipts
from labkit.exercises import service_handles, ch02_des, ch03_aes, ch03_spn, ch06_attacks, ch07_secure


def _student() -> str:
    return os.environ.get("LABKIT_STUDENT") or getpass.getuser()


def _solve_aes128(oracle):
    return attacks.recover_key(oracle).key


def test_a_correct_solution_gets_a_receipt_the_grader_accepts(capsys):
    feedback = ex.check("06.8", _solve_aes128)
    assert feedback and feedback.receipt
    assert feedback.receipt in capsys.readouterr().out  # printed: it stays in the answer cell's output
    got = receipts.verify_receipt(feedback.receipt, client.public_key(), student=_student(), exercise="06.8")
    assert got.exercise == "06.8" and got.attempts >= 1
    with pytest.raises(receipts.ReceiptError):  # not a receipt for another exercise
        receipts.verify_receipt(feedback.receipt, client.public_key(), student=_student(), exercise="06.9")


def test_the_session_module_holds_no_secret():
    service_handles.new_run()
    ch02_des.complement_challenge()
    assert not hasattr(service_handles, "_SECRETS") and not hasattr(service_handles, "session_secret")
    key = challenge_state.run_state("02.3")["key"]
    assert all(key not in repr(v).encode() and key.hex() not in repr(v) for v in vars(service_handles).values())


def test_oracle_handles_hold_an_attempt_id_not_a_network():
    service_handles.new_run()
    oracle = ch06_attacks.aes128_challenge()
    assert not hasattr(oracle, "__dict__") and not hasattr(oracle, "_network")
    assert set(type(oracle).__slots__) == {"_attempt", "_name", "_bits"}
    assert set(type(oracle._attempt).__slots__) == {"exercise", "id", "public", "oracles"}
    assert oracle._attempt.public is None  # 06.8 has no public data at all
    served = ch03_spn.spn_challenge()  # a served oracle: no closure over a key, no instance dict
    assert not hasattr(served, "__closure__") and not hasattr(served, "__dict__")
    assert set(type(served).__slots__) == {"_attempt", "_name", "_encode", "_decode"}


def test_budget_attributes_cannot_be_reassigned_and_the_service_counts_anyway():
    def greedy(oracle):
        oracle(np.zeros((ch06_attacks.AES128_QUERY_BUDGET, 128)))
        for name, value in (("queries", 0), ("queries_used", 0), ("budget", 10**9)):
            with pytest.raises(AttributeError):
                setattr(oracle, name, value)
        with pytest.raises(AttributeError):
            oracle.__dict__["queries"] = 0
        oracle(np.zeros((1, 128)))  # the service refuses: over budget, whatever the kernel says

    feedback = ex.check("06.8", greedy)
    budget = ch06_attacks.AES128_QUERY_BUDGET
    assert not feedback and f"more than {budget} queries" in str(feedback) and feedback.receipt is None


def test_a_second_handle_on_the_same_attempt_shares_its_budget():
    def two_handles(oracle):
        twin = client.Oracle(oracle._attempt, "network", 128)  # object-level copy of the handle
        twin(np.zeros((ch06_attacks.AES128_QUERY_BUDGET, 128)))
        oracle(np.zeros((1, 128)))

    assert f"more than {ch06_attacks.AES128_QUERY_BUDGET}" in str(ex.check("06.8", two_handles))


def test_the_checkers_frames_hold_no_key():
    found = []

    def frame_reader(oracle):
        frame = sys._getframe(1)
        while frame is not None:  # every caller's locals, values in containers too
            for value in frame.f_locals.values():
                for item in (value if isinstance(value, (list, tuple)) else [value]):
                    if isinstance(item, (bytes, bytearray)) and len(item) == 16:
                        found.append(bytes(item))
            frame = frame.f_back
        base = oracle(np.zeros((1, 128)))[0].astype(np.uint8)
        return next((k for k in found if AES.new(k, AES.MODE_ECB).encrypt(bytes(16)) == np.packbits(base).tobytes()),
                    bytes(16))

    assert not ex.check("06.8", frame_reader)


def test_resetting_the_spn_wrong_answer_counter_in_the_kernel_changes_nothing():
    service_handles.new_run()
    ch03_spn.spn_challenge()
    right = spn.round_keys(challenge_state.run_state("03.9")["key"])[4] & ch03_spn.TARGET_MASK
    wrong = [g for g in range(0, 0x0F0F + 1, 0x0101) if g != right]
    first, rest = wrong[:ch03_spn.MAX_WRONG], wrong[ch03_spn.MAX_WRONG:]
    for guess in first:
        assert not ex.check("03.9", guess)
    ch03_spn.MAX_WRONG = 10**6  # the kernel's copy of the limit is for show only
    try:
        for guess in [*rest, right]:  # every other value of the 8 bits, the right one last
            feedback = ex.check("03.9", guess)
            assert not feedback and "restart the kernel" in feedback.message
    finally:
        ch03_spn.MAX_WRONG = 3


def test_guessing_through_fresh_attempts_shows_in_the_receipt():
    """A new run draws a new key (3 guesses of 8 bits each time); every answer counts, and the
    receipt says how many answers the student gave in all."""
    service_handles.new_run()
    ch03_spn.spn_challenge()
    before = challenge_state.run_state("03.9")
    wrong = (spn.round_keys(before["key"])[4] & ch03_spn.TARGET_MASK) ^ 0x0101
    assert not ex.check("03.9", wrong)
    service_handles.new_run()
    ch03_spn.spn_challenge()
    right = spn.round_keys(challenge_state.run_state("03.9")["key"])[4] & ch03_spn.TARGET_MASK
    feedback = ex.check("03.9", right)
    got = receipts.verify_receipt(feedback.receipt, client.public_key(), student=_student(), exercise="03.9")
    assert got.attempts >= 2


class _AlwaysEqual:
    def __eq__(self, other):
        return True

    __hash__ = object.__hash__


class _EqualBytes(bytes):
    def __eq__(self, other):
        return True

    __hash__ = bytes.__hash__


class _EqualInt(int):
    def __eq__(self, other):
        return True

    __hash__ = int.__hash__


class _EqualStr(str):
    def __eq__(self, other):
        return True

    __hash__ = str.__hash__

    def strip(self, *args):
        return self


@pytest.mark.parametrize("exercise_id, answer", [
    ("02.3", _EqualBytes(b"12345678")), ("02.9", _EqualInt(5)), ("03.6", _EqualBytes(bytes(16))),
    ("04.3", _EqualBytes(b"x")), ("02.5", _EqualInt(1)), ("02.5", _AlwaysEqual()), ("07.3", _AlwaysEqual()),
    ("02.10", _EqualStr("z")), ("02.10", _AlwaysEqual())])
def test_answers_whose_eq_is_always_true_earn_nothing(exercise_id, answer):
    service_handles.new_run()
    feedback = ex.check(exercise_id, answer)
    assert not feedback and feedback.receipt is None


def test_no_quiz_answer_is_in_the_kernel():
    """labkit holds no digest to crack; the answer key sits in the service (built from the
    instructor notebooks), so nothing in the kernel maps a quiz id to its letter."""
    from labkit.exercises import quiz

    dict(ex.registry())  # imports every chapter: registers every question
    assert not hasattr(quiz, "answer_digest")
    for exercise_id in quiz.QUESTIONS:
        entry = ex.registry()[exercise_id]
        assert entry.remote and entry.checker.__closure__ is not None
        for cell in entry.checker.__closure__:
            assert not (isinstance(cell.cell_contents, str) and len(cell.cell_contents) == 64)


def test_a_feedback_forged_in_the_kernel_has_no_valid_receipt():
    fake = ex.Feedback("06.8", True, "Correct", receipt="labkit-receipt-v1.e30.AA")
    with pytest.raises(receipts.ReceiptError):
        receipts.verify_receipt(fake.receipt, client.public_key(), student=_student(), exercise="06.8")
    own_key = __import__("Crypto.PublicKey.ECC", fromlist=["ECC"]).generate(curve="Ed25519")
    forged = receipts.sign_receipt(own_key, student=_student(), exercise="06.8", attempts=1, service="labkit-challenges")
    with pytest.raises(receipts.ReceiptError, match="signature"):
        receipts.verify_receipt(forged, client.public_key(), student=_student(), exercise="06.8")


# --- the generic scan -------------------------------------------------------------------------------

#: The fields of each attempt's stored state that are secret (the rest is public by design).
SECRET_FIELDS = {"02.3": ["key"], "02.6": ["key"], "02.7": ["key"], "03.6": ["key"], "03.9": ["key"],
                 "04.3": ["message"], "04.6": ["key"], "04.10": ["key", "message"], "06.8": ["key"],
                 "07.4": ["key"], "08.5": ["owner"], "09.4": ["secret"], "09.5": ["device"]}


def _secret_parts(exercise: str, state: dict) -> list[bytes]:
    parts = [state[f] for f in SECRET_FIELDS.get(exercise, [])]
    if exercise == "10.6":
        parts += [state["device"][0], state["publisher"][0]] + list(state["model"].values())
    if exercise == "10.3":
        parts += [p for case in state["cases"] for seed, response in case["licences"].values() for p in (seed, response)]
    out = []
    for part in parts:
        data = part.tobytes() if isinstance(part, np.ndarray) else bytes(part)
        out.append(data)
        if exercise == "04.3":  # the message's random folder name, as text
            out.append(data.split(b"folder ")[1][:16])
    return out


def _challenges():
    from labkit.exercises import (ch02_des as c2, ch03_aes as c3, ch03_spn as c3s, ch04_modes_gcm as c4,
                                  ch04b_modes_practice as c4b, ch06_aes256 as c6b, ch06_attacks as c6,
                                  ch07_secure as c7, ch08_backdoor as c8, ch09_weights as c9,
                                  ch10_capstone as c10)

    return {"02.3": c2.complement_challenge, "02.6": c2.linear_challenge, "02.7": c2.search_challenge,
            "02.9": c2.sweet32_challenge, "03.6": c3.square_challenge, "03.9": c3s.spn_challenge,
            "04.3": c4.keystream_challenge, "04.6": c4.forgery_challenge,
            "04.10": c4b.padding_oracle_challenge, "06.8": c6.aes128_challenge, "06.9": c6b.toy_spn_challenge,
            "07.4": c7.trigger_challenge, "08.5": c8.ownership_challenge, "09.4": c9.reuse_challenge,
            "09.5": c9.exercise_device, "10.3": c10.leak_challenge, "10.6": c10.swap_challenge}


def _works_as_key(candidates: dict[int, set[bytes]]) -> list[str]:
    """Which oracles any candidate value works against as the key (queried through the handles)."""
    hits = []
    oracle, target = ch02_des.complement_challenge()
    answer = oracle(bytes(8))
    hits += [f"02.3 {k.hex()}" for k in candidates[8] if DES.new(k, DES.MODE_ECB).encrypt(bytes(8)) == answer]
    zero_out = np.packbits(ch06_attacks.aes128_challenge()(np.zeros((1, 128)))[0].astype(np.uint8)).tobytes()
    trig_out = np.packbits(ch07_secure.trigger_challenge()(np.zeros((1, 128)))[0].astype(np.uint8)).tobytes()
    for k in candidates[16]:
        block = AES.new(k, AES.MODE_ECB).encrypt(bytes(16))
        hits += [f"06.8 {k.hex()}"] * (block == zero_out) + [f"07.4 {k.hex()}"] * (block == trig_out)
    square = ch03_aes.square_challenge()(np.zeros((1, 16), dtype=np.uint8))
    from labkit import aes

    for k in candidates[16]:
        if np.array_equal(aes.encrypt_blocks(k, np.zeros((1, 16), dtype=np.uint8), rounds=4), square):
            hits.append(f"03.6 {k.hex()}")
    spn_zero = int(ch03_spn.spn_challenge()(0))
    hits += [f"03.9 {k.hex()}" for k in candidates[spn.KEY_BYTES] if int(spn.encrypt(k, 0)) == spn_zero]
    return hits


def test_generic_scan_no_value_in_the_kernel_works_as_a_key_or_is_a_secret():
    service_handles.new_run()
    made = {eid: make() for eid, make in _challenges().items()}  # every challenge of this run
    made["06.8"](np.zeros((1, 128)))
    made["03.9"](np.arange(4))
    seen_inside = {}

    def scanning_attack(oracle):  # the scan, from inside a check's fresh attempt (the checker's frames too)
        oracle(np.zeros((2, 128)))
        seen_inside["values"] = kernel_scan.reachable_values()
        seen_inside["attempt"] = oracle._attempt.id
        return bytes(16)

    assert not ex.check("06.8", scanning_attack)  # one scan, from inside: it sees the run's challenges too
    buffers, ints, strings = seen_inside["values"]
    candidates = {n: set() for n in (8, spn.KEY_BYTES, 16)}
    for data in buffers:
        if len(data) in candidates:
            candidates[len(data)].add(data)
    for value in ints:
        if 0 <= value < 1 << 128:
            for n in candidates:
                if value.bit_length() > 8 * n - 16 and value < 1 << 8 * n:  # ints as big-endian keys
                    candidates[n].add(value.to_bytes(n, "big"))
    assert sum(map(len, candidates.values())) > 100  # the scan does see the kernel's values
    assert _works_as_key(candidates) == []
    # white box: no secret of any attempt (run attempts and the check's fresh one) is anywhere in the kernel
    joined = b"\x00".join(buffers)
    text = "\x00".join(strings)
    states = {eid: challenge_state.run_state(eid) for eid in made}
    states["06.8 fresh"] = challenge_state.attempt_state(seen_inside["attempt"])
    for eid, state in states.items():
        for secret in _secret_parts(eid.split()[0], state):
            assert secret not in joined, f"{eid}: a secret is in the kernel's memory"
            assert secret.hex() not in text, f"{eid}: a secret's hex is in the kernel's memory"
            if len(secret) >= 8:
                assert int.from_bytes(secret[:16], "big") not in ints
