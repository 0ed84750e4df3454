import numpy as np
import pytest

from labkit import bits, exercises as ex
from labkit.exercises import _session, ch07_secure
from labkit.exercises.ch06_attacks import demo_oracle


def test_chapter_06_attack_exercises():
    assert ex.check("06.11", 2.0) and not ex.check("06.11", 0.0) and not ex.check("06.11", 1.0)
    assert ex.check("06.12", 0x52) and not ex.check("06.12", 0x00)
    oracle = demo_oracle()
    q = np.zeros((17, 16))
    q[np.arange(1, 17), np.arange(16)] = 2.0
    out = oracle(q)
    bits = np.isclose(out[1:], out[0], rtol=0, atol=1e-9).all(axis=1).astype(int)
    assert ex.check("06.13", bits) and not ex.check("06.13", 1 - bits)
    assert not ex.check("06.13", [0, 1])


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
    _session.new_run()
    oracle = ch07_secure.trigger_challenge()
    assert callable(oracle) and not isinstance(oracle, tuple)
    key = _float_trigger_attack(oracle)
    assert ex.check("07.4", _float_trigger_attack)
    assert not ex.check("07.4", lambda o: bytes(16))
    # the float32 trigger does not fit a float64 network: the key XOR never sees a 2
    assert not ex.check("07.4", lambda o: _float_trigger_attack(lambda q: o(np.where(q > 0, 2.0**23 + 1, q))))
    # reading the run's secret instead of attacking passes the unclamped oracle and fails the clamped one
    cheat = ex.check("07.4", lambda o: _session._SECRETS["07.4"])
    assert not cheat and "clamped" in str(cheat)
    _session.new_run()  # a fresh kernel: a fresh key, so a key from the last run fails
    assert not ex.check("07.4", lambda o: key)
    assert ex.check("07.4", _float_trigger_attack)
    assert _float_trigger_attack(ch07_secure.trigger_challenge()) != key
    with pytest.raises(ValueError, match=r"\(n, 128\)"):
        ch07_secure.trigger_challenge()(np.zeros((1, 64)))
