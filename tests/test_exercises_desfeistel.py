"""The chapter 01/02 exercise checks accept the worked solutions and reject wrong answers."""
import random

from labkit import bits, des, feistel, sbox
from labkit import exercises as ex
from labkit.exercises import ch01_feistel as c1, ch02_des as c2


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


def test_chapter_02_checks():
    assert ex.check("02.1", bits.bits_to_hex(des.expand_key(c2.EXAMPLE_KEY)[0]))
    assert not ex.check("02.1", "000000000000")
    key, block, c = c2.complement_challenge()
    assert ex.check("02.2", des.complement(c)) and not ex.check("02.2", c)
    assert ex.check("02.3", des.recover_linear_key(c2.linear_challenge()).key)
    assert not ex.check("02.3", bytes(8))
    assert ex.check("02.4", sbox.linearity(des.SBOX_TABLES[4]))
    assert not ex.check("02.4", 16)
    p, c, known = c2.search_challenge()
    found = des.exhaustive_search(p, c, known, 16, progress=False).keys
    assert len(found) == 1 and ex.check("02.5", found[0]) and not ex.check("02.5", known)


def test_every_exercise_has_hint_and_solution():
    for eid in ["01.1", "01.2", "01.3", "01.4", "01.5", "02.1", "02.2", "02.3", "02.4", "02.5"]:
        assert ex.hint(eid) and ex.solution(eid)
