"""Attack exercises (issue 15): a fresh CSPRNG secret per run, never returned by the challenge.

The attacker here is a student who reads the source or reruns the challenge: an answer recovered
in one run must fail in the next (so it is not derivable from the source), and the challenges hand
out only public data.
"""
import inspect
import re

import challenge_state
import numpy as np
import pytest
import torch

from labkit import bits, des, des_linear, des_security, exercises as ex, gcm
from labkit import padding_oracle
from labkit.exercises import (service_handles, ch02_des, ch03_aes, ch04_modes_gcm, ch04b_modes_practice,
                              ch06_aes256, ch06_attacks, ch09_weights)


def _solve_0203() -> bytes:
    oracle, target = ch02_des.complement_challenge()
    return des.complement(oracle(des.complement(target)))


def _solve_0206() -> bytes:
    return des_linear.recover_linear_key(ch02_des.linear_challenge()).key


def _solve_0207() -> bytes:
    p, c, known = ch02_des.search_challenge()
    return des_security.exhaustive_search(p, c, known, 16, progress=False).keys[0]


def _solve_0209() -> int:
    ch = ch02_des.sweet32_challenge()
    chain, plain = [ch["iv"]] + ch["ciphertext"], ch["plaintext"]
    i, j = next((i, j) for i, j, _ in des_security.cbc_collisions(ch["iv"], ch["ciphertext"])
                if (plain[i] is None) != (plain[j] is None))
    return (plain[i] if plain[j] is None else plain[j]) ^ chain[i] ^ chain[j]


def _solve_0403() -> bytes:
    ch = ch04_modes_gcm.keystream_challenge()
    n = min(len(ch["ct1"]), len(ch["ct2"]))
    return bits.xor_bytes(bits.xor_bytes(ch["ct1"][:n], ch["ct2"][:n]), ch["known_plaintext1"][:n])


def _solve_0406() -> list[bytes]:
    ch = ch04_modes_gcm.forgery_challenge()
    return [gcm.forge_tag(h, ch["aad1"], ch["ct1"], ch["tag1"], ch["target_ciphertext"], ch["target_aad"])
            for h in gcm.recover_auth_key(ch["ct1"], ch["tag1"], ch["ct2"], ch["tag2"], ch["aad1"], ch["aad2"])]


def _solve_0410() -> bytes:
    ch = ch04b_modes_practice.padding_oracle_challenge()
    previous, last = ([ch["iv"]] + [ch["ciphertext"][i: i + 16] for i in range(0, len(ch["ciphertext"]), 16)])[-2:]
    return padding_oracle.decrypt_block(ch["oracle"], previous, last)[0]


def _solve_0904() -> torch.Tensor:
    known, c1, c2 = ch09_weights.reuse_challenge()
    raw = bits.xor_bytes(bits.xor_bytes(c1, c2), known.numpy().tobytes())
    return torch.frombuffer(bytearray(raw), dtype=torch.float32).reshape(4, 4)


SOLVERS = {"02.3": _solve_0203, "02.6": _solve_0206, "02.7": _solve_0207, "02.9": _solve_0209,
           "04.3": _solve_0403, "04.10": _solve_0410, "09.4": _solve_0904}


@pytest.mark.parametrize("exercise_id", sorted(SOLVERS))
def test_an_answer_from_one_run_fails_in_the_next(exercise_id):
    service_handles.new_run()
    answer = SOLVERS[exercise_id]()
    assert ex.check(exercise_id, answer)
    service_handles.new_run()  # a fresh kernel: fresh secrets
    assert not ex.check(exercise_id, answer)
    assert ex.check(exercise_id, SOLVERS[exercise_id]())


def test_forgery_from_one_run_fails_in_the_next():
    service_handles.new_run()
    tags = _solve_0406()
    assert sum(bool(ex.check("04.6", t)) for t in tags) == 1
    service_handles.new_run()
    assert not any(ex.check("04.6", t) for t in tags)


def test_square_key_is_fresh_per_run_and_the_oracle_alone_is_returned():
    service_handles.new_run()
    oracle = ch03_aes.square_challenge()
    assert callable(oracle) and not isinstance(oracle, tuple)
    probe = np.zeros((1, 16), dtype=np.uint8)
    first = oracle(probe)
    service_handles.new_run()
    assert not np.array_equal(first, ch03_aes.square_challenge()(probe))


@pytest.mark.parametrize("challenge", [ch06_attacks.aes128_challenge, ch06_aes256.toy_spn_challenge])
def test_network_challenges_return_only_an_oracle_take_no_seed_and_change_per_run(challenge):
    service_handles.new_run()
    oracle = challenge()
    assert callable(oracle) and not isinstance(oracle, tuple)
    assert not inspect.signature(challenge).parameters  # no seed to choose the key with
    probe = np.eye(oracle.n_inputs)[:4]  # four answers: equal under two keys with negligible odds
    first = oracle(probe)
    service_handles.new_run()
    assert not np.array_equal(first, challenge()(probe))


def _secrets_shown(exercise_id: str, challenge) -> list[str]:
    """A fresh run's secrets (what the service keeps, white box) that appear in what the kernel
    gets: bytes as their repr or hex, integers as a whole number (not inside a longer one)."""
    service_handles.new_run()
    shown = repr(challenge())
    secret = challenge_state.run_state(exercise_id)
    # a GCM nonce is public by design; the key and the hidden message are not
    found = []
    for name, part in secret.items():
        if name in ("nonce", "plaintext", "ciphertext", "target"):
            continue
        if isinstance(part, (bytes, bytearray)) and (repr(bytes(part)) in shown or bytes(part).hex() in shown):
            found.append(name)
        if isinstance(part, int) and re.search(rf"(?<!\d){part}(?!\d)", shown):
            found.append(name)
    return found


@pytest.mark.parametrize("exercise_id, challenge", [
    ("02.3", ch02_des.complement_challenge), ("02.6", ch02_des.linear_challenge),
    ("02.7", ch02_des.search_challenge), ("02.9", ch02_des.sweet32_challenge),
    ("04.3", ch04_modes_gcm.keystream_challenge), ("04.6", ch04_modes_gcm.forgery_challenge),
    ("04.10", ch04b_modes_practice.padding_oracle_challenge), ("09.4", ch09_weights.reuse_challenge)])
def test_challenges_hand_out_no_secret(exercise_id, challenge):
    """A leak shows in every run; a coincidence does not. 02.9's secret is a 24-bit cookie beside
    about 49,000 public 24-bit numbers, so it equals one of them in a run with probability about
    0.3 %: only a secret found in three fresh runs in a row fails (a false alarm < 3e-8)."""
    for _ in range(3):
        found = _secrets_shown(exercise_id, challenge)
        if not found:
            return
    raise AssertionError(f"{exercise_id} hands out {found} in three fresh runs")


def test_the_scan_finds_a_secret_that_is_handed_out():
    """The control: a challenge that also returned its cookie is caught, run after run."""
    def leaky():
        handed = ch02_des.sweet32_challenge()
        return handed, challenge_state.run_state("02.9")["cookie"]

    assert all(_secrets_shown("02.9", leaky) == ["cookie"] for _ in range(2))


def test_linear_challenge_rejects_a_bad_pair_count():
    with pytest.raises(ValueError, match="pairs"):
        ch02_des.linear_challenge(0)


def test_padding_oracle_answer_always_holds_fresh_secret_bytes():
    """04.10's answer is the last padded block: it must never be padding only or a near-constant
    tail (a run whose answer repeats an earlier run's would let an old answer pass)."""
    from labkit import modes

    answers, pads = set(), set()
    from labkit.challenges.defs_ciphers import PaddingOracle

    import secrets

    for _ in range(2000):
        secret, _ = PaddingOracle().new_state(secrets.token_bytes, False)  # the service's draw
        block = modes.pkcs7_pad(secret["message"])[-modes.BLOCK_SIZE:]
        answers.add(block)
        pads.add(block[-1])
    assert len(answers) == 2000 and pads == set(range(1, 9))
