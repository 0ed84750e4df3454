"""The chapter 01/02 exercise checks accept the worked solutions and reject wrong answers."""
import random

import numpy as np

from labkit import bits, des, des_linear, des_security, feistel, sbox
from labkit import exercises as ex
from labkit.challenges import defs_ciphers
from labkit.exercises import service_handles, ch01_feistel as c1, ch02_des as c2
import challenge_state


def test_chapter_01_checks():
    net = c1.exercise_network()
    assert ex.check("01.3", net.encrypt(0xC0DE))
    assert not ex.check("01.3", 0xC0DE) and not ex.check("01.3", net.encrypt(0x1234))
    assert ex.check("01.4", net.reversed().encrypt(0xBEEF))
    assert not ex.check("01.4", 0xBEEF)
    assert ex.check("01.5", feistel.two_round_distinguisher)
    assert not ex.check("01.5", feistel.one_round_distinguisher)
    assert not ex.check("01.5", lambda oracle, half_bits, rng: True)  # says "Feistel" in both worlds
    assert not ex.check("01.5", lambda oracle, half_bits, rng: isinstance(oracle, feistel.Feistel))
    calls = []
    assert not ex.check("01.5", lambda oracle, half_bits, rng: calls.append(1) or len(calls) % 2 == 1)
    assert not ex.check("01.5", 42)


def _round_by_hand(left, right, f):
    """One round written from the definition, independently of labkit.feistel."""
    return right, left ^ f(right)


def _round_inverse_by_hand(left, right, f):
    return right ^ f(left), left


def test_chapter_01_round_exercises_accept_the_definition_and_reject_near_misses():
    assert ex.check("01.1", _round_by_hand)
    assert ex.check("01.2", _round_inverse_by_hand)
    swapped = ex.check("01.1", lambda left, right, f: (left ^ f(right), right))  # forgot the swap
    assert not swapped and "expected (" in str(swapped)
    assert not ex.check("01.1", _round_inverse_by_hand)
    assert not ex.check("01.2", _round_by_hand)
    # f applied to the wrong half: right only when f ignores its input, which random kinds rarely do
    assert not ex.check("01.2", lambda left, right, f: (right ^ f(right), left))


def test_chapter_01_round_check_uses_functions_that_cannot_be_inverted():
    draws = [c1._draw_round(random.Random(seed)) for seed in range(200)]
    kinds = {f.kind for _, _, f in draws}
    assert {"constant k", "x and k", "x^2 + k mod 2^n"} <= kinds
    assert all(0 <= left < 1 << f.half_bits and 0 <= right < 1 << f.half_bits for left, right, f in draws)
    assert "constant k" in repr(next(f for _, _, f in draws if f.kind == "constant k"))


def _round_key(key, r):
    return bits.bits_to_bytes(des.expand_key(key)[r - 1])


def _f(right, subkey):
    return bits.bits_to_bytes(des.round_function(bits.bytes_to_bits(right), bits.bytes_to_bits(subkey)))


def _f_without_p(right, subkey):
    """E, key, S-boxes from the 64-entry tables, but no P: a near miss written independently."""
    x = des.permute(bits.bytes_to_bits(right), des.E) ^ bits.bytes_to_bits(subkey)
    out = [bits.int_to_bits(des.SBOX_TABLES[i][bits.bits_to_int(six)], 4) for i, six in enumerate(x.reshape(8, 6))]
    return bits.bits_to_bytes(np.concatenate(out))


def test_chapter_02_implement_checks_accept_labkit_and_reject_near_misses():
    assert ex.check("02.1", _round_key)
    off_by_one = ex.check("02.1", lambda key, r: bits.bits_to_bytes(des.expand_key(key)[r % 16]))
    assert not off_by_one and "expected bytes.fromhex(" in str(off_by_one)
    assert ex.check("02.2", _f)
    no_p = ex.check("02.2", _f_without_p)
    assert not no_p and "expected" in str(no_p)
    assert ex.check("02.2", lambda right, k: bits.bits_to_bytes(des.permute(bits.bytes_to_bits(_f_without_p(right, k)), des.P)))
    assert ex.check("02.4", lambda table, a: sbox.ddt(table, out_bits=4)[a])
    assert not ex.check("02.4", lambda table, a: [sum(1 for x in range(64) if table[x] ^ table[a] == b)
                                                  for b in range(16)])
    assert ex.check("02.8", lambda pairs, k: des_security.meet_in_the_middle(pairs, k).candidates)
    assert not ex.check("02.8", lambda pairs, k: [(0, 0)])


def test_chapter_02_value_and_attack_checks():
    service_handles.new_run()
    oracle, target = c2.complement_challenge()
    assert ex.check("02.3", des.complement(oracle(des.complement(target))))
    assert not ex.check("02.3", des.complement(oracle(target)))
    assert ex.check("02.5", sbox.linearity(des.SBOX_TABLES[4]))
    assert not ex.check("02.5", 16)
    assert ex.check("02.6", des_linear.recover_linear_key(c2.linear_challenge()).key)
    assert not ex.check("02.6", bytes(8))
    p, c, known = c2.search_challenge()
    found = des_security.exhaustive_search(p, c, known, 16, progress=False).keys
    assert len(found) == 1 and ex.check("02.7", found[0]) and not ex.check("02.7", known)


def test_sweet32_challenge_shape_and_check():
    # solving it from a collision is tests/test_exercises_secrets.py's job; here, the data and the check
    service_handles.new_run()
    challenge = c2.sweet32_challenge()
    assert len(challenge["ciphertext"]) == len(challenge["plaintext"]) == defs_ciphers.SWEET32_BLOCKS
    assert challenge["plaintext"][1::2] == [None] * (defs_ciphers.SWEET32_BLOCKS // 2)
    cookie = challenge_state.run_state("02.9")["cookie"]  # white box: read from the service's database
    assert ex.check("02.9", cookie) and not ex.check("02.9", cookie ^ 1)


def test_chapter_02_kinds():
    kinds = {e: ex.registry()[e].kind for e in ex.registry() if e.startswith("02.")}
    assert kinds == {"02.1": "implement", "02.2": "implement", "02.3": "attack", "02.10": "quiz",
                     "02.11": "quiz", "02.4": "implement", "02.5": "value", "02.6": "attack",
                     "02.12": "quiz", "02.7": "attack", "02.8": "implement", "02.9": "attack"}


def test_every_exercise_has_hint_and_solution():
    for eid in [f"01.{k}" for k in range(1, 9)] + [f"02.{k}" for k in range(1, 13)]:
        assert ex.hint(eid) and ex.solution(eid)
