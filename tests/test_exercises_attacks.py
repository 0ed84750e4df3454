import numpy as np
import pytest

from labkit import aes, bits
from labkit import exercises as ex
from labkit.attacks import rounds
from labkit.attacks.oracle import CountingOracle, QueryBudgetExceeded
from labkit.attacks.strategies import probe_rows
from labkit.exercises import ch06_aes256, ch06_attacks
from labkit.neural import spn


def test_chapter_06_part2_values():
    assert ex.check("06.5", 2.0) and not ex.check("06.5", 0.0) and not ex.check("06.5", 1.0)
    assert ex.check("06.7", 0x52) and not ex.check("06.7", 0x00)
    assert [ex.registry()[i].kind for i in ("06.5", "06.6", "06.7", "06.8", "06.9")] == \
        ["value", "implement", "value", "attack", "attack"]


def test_probe_pair_checker_accepts_a_pair_built_independently_and_rejects_a_swap():
    def probe_pair(base, i, e):
        rows = np.array([base, base], dtype=float)
        rows[:, i] += [-e, e]
        return rows

    assert ex.check("06.6", probe_pair)
    assert ex.check("06.6", lambda base, i, e: probe_rows(base, np.array([i, i]),
                                                          np.array([base[i] - e, base[i] + e])))
    swapped = ex.check("06.6", lambda base, i, e: probe_pair(base, i, e)[::-1])
    assert not swapped and "expected array(" in str(swapped)


def _recover_key_b2b(oracle):
    """The lab's own attack (labkit.attacks), as a student's recover_key that passes."""
    from labkit import attacks

    return attacks.recover_key(oracle).key


def test_aes128_attack_check_runs_on_a_fresh_key_and_counts_queries():
    assert ex.check("06.8", _recover_key_b2b)
    # an attacker who answers with the key of another run (this run's challenge) fails
    remembered = _recover_key_b2b(ch06_attacks.aes128_challenge())
    assert not ex.check("06.8", lambda oracle: remembered)

    def greedy(oracle):  # over the linear budget: refused, whatever it would have found
        oracle(np.zeros((ch06_attacks.AES128_QUERY_BUDGET, 128)))
        oracle(np.zeros((1, 128)))

    feedback = ex.check("06.8", greedy)
    assert not feedback and "more than 512 queries" in str(feedback)
    assert not ex.check("06.8", lambda oracle: bits.bits_to_hex(np.zeros(128)))  # not bytes
    assert not ex.check("06.8", 42)


def test_challenge_oracles_hand_out_outputs_only():
    oracle = ch06_attacks.aes128_challenge()
    assert isinstance(oracle, CountingOracle) and not hasattr(oracle, "__dict__")
    out = oracle(np.zeros((2, 128)))
    assert out.shape == (2, 128) and oracle.queries == 2
    key = _recover_key_b2b(ch06_attacks.aes128_challenge())  # same run, same network
    assert aes.encrypt_block(key, bytes(16)) == bits.bits_to_bytes(out[0].astype(np.uint8))
    assert key.hex() not in repr(oracle)
    with pytest.raises(ValueError, match=r"\(n, 128\)"):
        oracle(np.zeros((1, 127)))
    with pytest.raises(ValueError, match="finite"):
        oracle(np.full((1, 128), np.nan))
    limited = CountingOracle(lambda q: q, 4, budget=3)
    limited(np.zeros((3, 4)))
    with pytest.raises(QueryBudgetExceeded):
        limited(np.zeros((1, 4)))
    assert limited.queries == 3


def _recover_k1(oracle, k0):
    pairs = rounds.mirror_pairs(spn.toy_spn_prefix_network(k0))
    return bits.bits_to_int(rounds.second_round_key_bits(oracle, pairs)[0])


def test_second_round_attack_check_on_a_fresh_toy_network():
    assert ex.check("06.9", _recover_k1)
    toy = ch06_aes256.toy_spn_challenge()
    k0 = int.from_bytes(rounds.recover_first_round_key(toy, 16, seed=0).key, "big")
    remembered = _recover_k1(toy, k0)  # this run's k1: useless against the checker's fresh keys
    assert not ex.check("06.9", lambda oracle, k0: remembered)
    feedback = ex.check("06.9", lambda oracle, k0: oracle(np.zeros((65, 16))))
    assert not feedback and "more than 64 queries" in str(feedback)
    assert not ex.check("06.9", lambda oracle, k0: float(k0))


def test_chapter_07_exercises():
    assert ex.check("07.1", 0.3) and not ex.check("07.1", 0.4)
    assert ex.check("07.2", 1.9) and not ex.check("07.2", 2.0)
    assert ex.check("07.3", 2**23 + 1) and not ex.check("07.3", 0.5) and not ex.check("07.3", 1.0)
