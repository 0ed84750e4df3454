"""The chapter 01/02 exercise checks accept the worked solutions and reject wrong answers."""
import numpy as np

from labkit import bits, des, des_security, feistel, sbox
from labkit import exercises as ex
from labkit.exercises import _session, ch01_feistel as c1, ch02_des as c2


def test_chapter_01_checks():
    net = c1.exercise_network()
    assert ex.check("01.1", net.encrypt(0x1234))
    assert not ex.check("01.1", 0x1234)
    assert ex.check("01.2", net.reversed().encrypt(0xBEEF))
    assert not ex.check("01.2", 0xBEEF)
    assert ex.check("01.3", feistel.two_round_distinguisher)
    assert not ex.check("01.3", feistel.one_round_distinguisher)
    assert not ex.check("01.3", 42)


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
    _session.new_run()
    oracle, target = c2.complement_challenge()
    assert ex.check("02.3", des.complement(oracle(des.complement(target))))
    assert not ex.check("02.3", des.complement(oracle(target)))
    assert ex.check("02.5", sbox.linearity(des.SBOX_TABLES[4]))
    assert not ex.check("02.5", 16)
    assert ex.check("02.6", des.recover_linear_key(c2.linear_challenge()).key)
    assert not ex.check("02.6", bytes(8))
    p, c, known = c2.search_challenge()
    found = des.exhaustive_search(p, c, known, 16, progress=False).keys
    assert len(found) == 1 and ex.check("02.7", found[0]) and not ex.check("02.7", known)


def test_sweet32_challenge_shape_and_check():
    # solving it from a collision is tests/test_exercises_secrets.py's job; here, the data and the check
    _session.new_run()
    challenge = c2.sweet32_challenge()
    assert len(challenge["ciphertext"]) == len(challenge["plaintext"]) == c2.SWEET32_BLOCKS
    assert challenge["plaintext"][1::2] == [None] * (c2.SWEET32_BLOCKS // 2)
    cookie = c2._sweet32_secret()["cookie"]
    assert ex.check("02.9", cookie) and not ex.check("02.9", cookie ^ 1)


def test_chapter_02_kinds():
    kinds = {e: ex.registry()[e].kind for e in ex.registry() if e.startswith("02.")}
    assert kinds == {"02.1": "implement", "02.2": "implement", "02.3": "attack", "02.10": "quiz",
                     "02.11": "quiz", "02.4": "implement", "02.5": "value", "02.6": "attack",
                     "02.12": "quiz", "02.7": "attack", "02.8": "implement", "02.9": "attack"}


def test_every_exercise_has_hint_and_solution():
    for eid in ["01.1", "01.2", "01.3"] + [f"02.{k}" for k in range(1, 13)]:
        assert ex.hint(eid) and ex.solution(eid)
