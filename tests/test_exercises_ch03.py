"""Chapter 03's exercises (03, 03b, 03c): the checkers accept solutions written here from the
standards and the paper (not labkit's code), reject near misses with the failing input and the
expected output, and the attack challenges draw a fresh key per run and hand out only an oracle."""
import inspect

import numpy as np
import pytest

from labkit import exercises as ex, spn, vectors
from labkit.exercises import service_handles, ch03_spn
import challenge_state

HEYS_SBOX = [0xE, 0x4, 0xD, 0x1, 0x2, 0xF, 0xB, 0x8, 0x3, 0xA, 0x6, 0xC, 0x5, 0x9, 0x0, 0x7]


# --- independent solutions, from FIPS-197 and Heys' paper -------------------------------------

def gf_multiply(a, b):  # FIPS-197 4.2: shift-and-add modulo x^8 + x^4 + x^3 + x + 1
    product = 0
    for _ in range(8):
        if b & 1:
            product ^= a
        a = ((a << 1) ^ (0x11B if a & 0x80 else 0)) & 0xFF
        b >>= 1
    return product


def sub_byte(b):  # FIPS-197 5.1.1: inverse (by search), then equation 5.1
    inverse = next((x for x in range(1, 256) if gf_multiply(b, x) == 1), 0)
    bit = [(inverse >> i) & 1 for i in range(8)]
    return sum((bit[i] ^ bit[(i + 4) % 8] ^ bit[(i + 5) % 8] ^ bit[(i + 6) % 8] ^ bit[(i + 7) % 8]
                ^ (0x63 >> i) & 1) << i for i in range(8))


def mix_single_column(column):  # FIPS-197 5.1.3
    s = list(column)
    return bytes(gf_multiply(2, s[r]) ^ gf_multiply(3, s[(r + 1) % 4]) ^ s[(r + 2) % 4] ^ s[(r + 3) % 4]
                 for r in range(4))


def next_round_key(round_key, round_number):  # FIPS-197 5.2, Nk = 4
    w = [list(round_key[4 * j: 4 * j + 4]) for j in range(4)]
    rcon = 1
    for _ in range(round_number - 1):
        rcon = gf_multiply(rcon, 2)
    temp = [sub_byte(x) for x in w[3][1:] + w[3][:1]]
    temp[0] ^= rcon
    new = [[a ^ b for a, b in zip(w[0], temp)]]
    for j in range(1, 4):
        new.append([a ^ b for a, b in zip(w[j], new[-1])])
    return bytes(sum(new, []))


def ddt_row(table, a):
    row = [0] * 16
    for x in range(16):
        row[table[x] ^ table[x ^ a]] += 1
    return row


def count_right_pairs(pairs, guess):  # Heys 4.4: filter nibbles 1 and 3, test nibbles 2 and 4
    inverse = [HEYS_SBOX.index(y) for y in range(16)]
    count = 0
    for c1, c2 in pairs:
        if (c1 ^ c2) & 0xF0F0:
            continue
        v1, v2 = c1 ^ guess, c2 ^ guess
        if all(inverse[(v1 >> s) & 0xF] ^ inverse[(v2 >> s) & 0xF] == 6 for s in (8, 0)):
            count += 1
    return count


SOLUTIONS = {"03.1": gf_multiply, "03.2": sub_byte, "03.3": mix_single_column, "03.4": next_round_key,
             "03.7": ddt_row, "03.8": count_right_pairs}


def test_independent_solutions_match_the_standards():
    assert gf_multiply(0x57, 0x83) == 0xC1 and gf_multiply(0x57, 0x13) == 0xFE  # FIPS-197 4.2
    assert sub_byte(0x53) == 0xED and sub_byte(0x00) == 0x63  # FIPS-197 5.1.1
    assert mix_single_column(bytes.fromhex("db135345")) == bytes.fromhex("8e4da1bc")  # FIPS-197 5.1.3 example
    keys = vectors.lab_vectors("fips197")["key_expansion"][0]
    schedule = bytes.fromhex(keys["key"])  # Appendix A.1: w0..w43
    rks = [bytes.fromhex(keys["key"])]
    for i in range(1, 11):
        rks.append(next_round_key(rks[-1], i))
    words = [w.hex() for rk in rks for w in (rk[0:4], rk[4:8], rk[8:12], rk[12:16])]
    assert words[4] == "a0fafe17" and words[43] == "b6630ca6" and schedule == rks[0]
    assert ddt_row(HEYS_SBOX, 0xB)[0x2] == 8 and ddt_row(HEYS_SBOX, 0x4)[0x6] == 6  # Heys Table 7


@pytest.mark.parametrize("exercise_id", sorted(SOLUTIONS))
def test_implement_checkers_accept_the_solution_and_reject_a_near_miss(exercise_id):
    assert ex.registry()[exercise_id].kind == "implement"
    assert ex.check(exercise_id, SOLUTIONS[exercise_id])
    right = SOLUTIONS[exercise_id]

    def off_by_one_bit(*args):
        out = right(*args)
        if isinstance(out, bytes):
            return bytes([out[0] ^ 1]) + out[1:]
        if isinstance(out, list):
            return [out[0] + 1] + out[1:]
        return out ^ 1

    feedback = ex.check(exercise_id, off_by_one_bit)
    assert not feedback and "expected" in feedback.message and "returned" in feedback.message


def test_kinds_of_chapter_03():
    kinds = {i: e.kind for i, e in ex.registry().items() if i.startswith("03.")}
    assert kinds == {"03.1": "implement", "03.2": "implement", "03.3": "implement", "03.4": "implement",
                     "03.5": "value", "03.6": "attack", "03.7": "implement", "03.8": "implement",
                     "03.9": "attack", "03.10": "quiz", "03.11": "quiz", "03.12": "quiz", "03.13": "quiz"}


def _attack_spn_challenge() -> int:
    return spn.differential_attack(ch03_spn.spn_challenge(), 2000, np.random.default_rng()).best


def test_spn_attack_recovers_this_runs_key_bits_and_fails_in_the_next_run():
    service_handles.new_run()
    answer = _attack_spn_challenge()
    assert ex.check("03.9", answer)
    assert not ex.check("03.9", answer ^ 0x0100)
    feedback = ex.check("03.9", answer | 0x1000)  # a bit outside nibbles 2 and 4
    assert not feedback and "nibbles 2 and 4" in feedback.message
    service_handles.new_run()  # a fresh kernel draws a fresh key; the old answer fails (1/256 may repeat)
    fresh = _attack_spn_challenge()
    assert ex.check("03.9", fresh)
    assert bool(ex.check("03.9", answer)) == (answer == fresh)


def test_spn_challenge_hands_out_only_an_oracle():
    service_handles.new_run()
    oracle = ch03_spn.spn_challenge()
    assert callable(oracle) and not isinstance(oracle, tuple)
    assert not inspect.signature(ch03_spn.spn_challenge).parameters  # no seed to choose the key with
    secret = challenge_state.run_state("03.9")["key"]
    assert secret.hex() not in repr(oracle) and repr(secret) not in repr(oracle)
    first = oracle(np.arange(8, dtype=np.uint16))
    service_handles.new_run()
    assert not np.array_equal(first, ch03_spn.spn_challenge()(np.arange(8, dtype=np.uint16)))


def test_spn_check_is_no_guessing_oracle():
    """8 key bits could be found by asking the check 256 times: after MAX_WRONG wrong answers a run
    refuses every answer, the right one included, until a fresh run draws a fresh key."""
    service_handles.new_run()
    ch03_spn.spn_challenge()  # draws this run's key
    right = spn.round_keys(challenge_state.run_state("03.9")["key"])[4] & ch03_spn.TARGET_MASK
    wrong = [g for g in (0x0000, 0x0101, 0x0202, 0x0303, 0x0404) if g != right][: ch03_spn.MAX_WRONG]
    for guess in wrong:
        assert not ex.check("03.9", guess)
    refused = ex.check("03.9", right)
    assert not refused and "restart the kernel" in refused.message
    service_handles.new_run()
    ch03_spn.spn_challenge()
    assert ex.check("03.9", spn.round_keys(challenge_state.run_state("03.9")["key"])[4] & ch03_spn.TARGET_MASK)
