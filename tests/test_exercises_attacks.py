import challenge_state
import numpy as np
import pytest

from labkit import aes, bits
from labkit import exercises as ex
from labkit.attacks import rounds
from labkit.attacks.oracle import CountingOracle
from labkit.checks import QueryBudgetExceeded
from labkit.attacks.strategies import probe_rows
from labkit.challenges import client
from labkit.exercises import service_handles, ch06_aes256, ch06_attacks, ch07_secure
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
    assert not feedback and f"more than {ch06_attacks.AES128_QUERY_BUDGET} queries" in str(feedback)
    assert ch06_attacks.AES128_QUERY_BUDGET == 2 * 512  # the paper's 512 per key, and one retry's worth
    assert not ex.check("06.8", lambda oracle: bits.bits_to_hex(np.zeros(128)))  # not bytes
    assert not ex.check("06.8", 42)


def test_challenge_oracles_hand_out_outputs_only():
    service_handles.new_run()  # a new attempt: the service counts its queries from 0
    oracle = ch06_attacks.aes128_challenge()
    assert isinstance(oracle, client.Oracle) and not hasattr(oracle, "__dict__")
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


def _relu(v):
    return max(v, 0.0)


def _step_by_hand(x, e):
    """STEP from its definition in the paper (Sec. 6), independently of labkit.neural.defence."""
    return (_relu(x - e) - _relu(x - (1 - e))) / (1 - 2 * e)


def _mask_by_hand(p, e):
    return sum((_relu(x) - _relu(x - e) - _relu(x - (1 - e)) + _relu(x - 1)) / e for x in p)


def test_chapter_07_step_and_mask_are_checked_on_fresh_inputs():
    assert ex.check("07.1", _step_by_hand) and ex.check("07.2", _mask_by_hand)
    unscaled = ex.check("07.1", lambda x, e: _relu(x - e) - _relu(x - (1 - e)))  # forgot / (1 - 2e)
    assert not unscaled and "expected" in str(unscaled)
    assert not ex.check("07.1", lambda x, e: float(x >= 0.5))  # rounds instead of a ramp
    clipped = ex.check("07.2", lambda p, e: sum(min(_relu(x), 1.0) for x in p))  # a clamp is not RECT
    assert not clipped and "expected" in str(clipped)
    assert not ex.check("07.2", lambda p, e: _mask_by_hand(p[:-1], e))  # skips the last coordinate


def test_chapter_07_trigger_value():
    assert ex.check("07.3", 2**23 + 1) and not ex.check("07.3", 0.5) and not ex.check("07.3", 1.0)


def _float_trigger_attack(oracle):
    """Kim and Lee's attack written here from the paper: the all-zero base and one float64
    trigger 2^52 + 1 per bit; a collision with the base means key bit 1."""
    queries = np.zeros((129, 128))
    queries[np.arange(1, 129), np.arange(128)] = 2.0**52 + 1
    out = oracle(queries)
    return bits.bits_to_bytes((out[1:] == out[0]).all(axis=1).astype(np.uint8))


def test_chapter_07_trigger_attack_uses_a_fresh_key_and_only_the_oracle():
    service_handles.new_run()
    oracle = ch07_secure.trigger_challenge()
    assert callable(oracle) and not isinstance(oracle, tuple)
    key = _float_trigger_attack(oracle)
    assert ex.check("07.4", _float_trigger_attack)
    assert not ex.check("07.4", lambda o: bytes(16))
    # the float32 trigger does not fit a float64 network: the key XOR never sees a 2
    assert not ex.check("07.4", lambda o: _float_trigger_attack(lambda q: o(np.where(q > 0, 2.0**23 + 1, q))))
    # reading the attempt's secret from the service's own files (what self-study cannot prevent)
    # passes the unclamped oracle and fails the clamped one
    cheat = ex.check("07.4", lambda o: challenge_state.attempt_state(o._attempt.id)["key"])
    assert not cheat and "clamped" in str(cheat)
    service_handles.new_run()  # a fresh kernel: a fresh key, so a key from the last run fails
    assert not ex.check("07.4", lambda o: key)
    assert ex.check("07.4", _float_trigger_attack)
    assert _float_trigger_attack(ch07_secure.trigger_challenge()) != key
    with pytest.raises(ValueError, match=r"\(n, 128\)"):
        ch07_secure.trigger_challenge()(np.zeros((1, 64)))
