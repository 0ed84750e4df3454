"""Attack exercises (issue 15): a fresh CSPRNG secret per run, never returned by the challenge.

The attacker here is a student who reads the source or reruns the challenge: an answer recovered
in one run must fail in the next (so it is not derivable from the source), and the challenges hand
out only public data.
"""
import inspect

import numpy as np
import pytest
import torch

from labkit import bits, des, exercises as ex, gcm
from labkit.exercises import _session, ch02_des, ch03_aes, ch04_modes_gcm, ch06_attacks, ch09_weights


def _solve_0613() -> list[int]:
    oracle = ch06_attacks.demo_oracle()
    q = np.zeros((17, 16))
    q[np.arange(1, 17), np.arange(16)] = 2.0
    out = oracle(q)
    return np.isclose(out[1:], out[0], rtol=0, atol=1e-9).all(axis=1).astype(int).tolist()


def _solve_0203() -> bytes:
    return des.recover_linear_key(ch02_des.linear_challenge()).key


def _solve_0205() -> bytes:
    p, c, known = ch02_des.search_challenge()
    return des.exhaustive_search(p, c, known, 16, progress=False).keys[0]


def _solve_0402() -> bytes:
    ch = ch04_modes_gcm.keystream_challenge()
    n = min(len(ch["ct1"]), len(ch["ct2"]))
    return bits.xor_bytes(bits.xor_bytes(ch["ct1"][:n], ch["ct2"][:n]), ch["known_plaintext1"][:n])


def _solve_0404() -> list[bytes]:
    ch = ch04_modes_gcm.forgery_challenge()
    return [gcm.forge_tag(h, ch["aad1"], ch["ct1"], ch["tag1"], ch["target_ciphertext"], ch["target_aad"])
            for h in gcm.recover_auth_key(ch["ct1"], ch["tag1"], ch["ct2"], ch["tag2"], ch["aad1"], ch["aad2"])]


def _solve_0904() -> torch.Tensor:
    known, c1, c2 = ch09_weights.reuse_challenge()
    raw = bits.xor_bytes(bits.xor_bytes(c1, c2), known.numpy().tobytes())
    return torch.frombuffer(bytearray(raw), dtype=torch.float32).reshape(4, 4)


SOLVERS = {"02.3": _solve_0203, "02.5": _solve_0205, "04.2": _solve_0402, "06.13": _solve_0613,
           "09.4": _solve_0904}


@pytest.mark.parametrize("exercise_id", sorted(SOLVERS))
def test_an_answer_from_one_run_fails_in_the_next(exercise_id):
    _session.new_run()
    answer = SOLVERS[exercise_id]()
    assert ex.check(exercise_id, answer)
    _session.new_run()  # a fresh kernel: fresh secrets
    assert not ex.check(exercise_id, answer)
    assert ex.check(exercise_id, SOLVERS[exercise_id]())


def test_forgery_from_one_run_fails_in_the_next():
    _session.new_run()
    tags = _solve_0404()
    assert sum(bool(ex.check("04.4", t)) for t in tags) == 1
    _session.new_run()
    assert not any(ex.check("04.4", t) for t in tags)


def test_square_key_is_fresh_per_run_and_the_oracle_alone_is_returned():
    _session.new_run()
    oracle = ch03_aes.square_challenge()
    assert callable(oracle) and not isinstance(oracle, tuple)
    probe = np.zeros((1, 16), dtype=np.uint8)
    first = oracle(probe)
    _session.new_run()
    assert not np.array_equal(first, ch03_aes.square_challenge()(probe))


def test_demo_oracle_returns_only_the_oracle_and_takes_no_seed():
    oracle = ch06_attacks.demo_oracle()
    assert callable(oracle) and not isinstance(oracle, tuple)
    assert not inspect.signature(ch06_attacks.demo_oracle).parameters  # no seed to choose the key with


@pytest.mark.parametrize("challenge", [ch02_des.linear_challenge, ch02_des.search_challenge,
                                       ch04_modes_gcm.keystream_challenge, ch04_modes_gcm.forgery_challenge,
                                       ch09_weights.reuse_challenge])
def test_challenges_hand_out_no_secret(challenge):
    _session.new_run()
    shown = repr(challenge())
    for secret in _session._SECRETS.values():
        # a GCM nonce is public by design; the key and the hidden message are not
        parts = ([v for k, v in secret.items() if k != "nonce"] if isinstance(secret, dict)
                 else secret if isinstance(secret, tuple) else [secret])
        for part in parts:
            if isinstance(part, (bytes, bytearray)):
                assert repr(bytes(part)) not in shown and bytes(part).hex() not in shown


def test_linear_challenge_rejects_a_bad_pair_count():
    with pytest.raises(ValueError, match="pairs"):
        ch02_des.linear_challenge(0)
