"""The Square attack on 4-round AES-128."""
import numpy as np
import pytest

from labkit import aes, square_attack


def test_three_rounds_balance_every_byte_four_do_not():
    key = bytes(range(16))
    texts = square_attack.lambda_set(b"\x42" * 16, active_byte=5)
    assert sorted(set(texts[:, 5].tolist())) == list(range(256))
    assert square_attack.balanced_bytes(aes.encrypt_blocks(key, texts, rounds=3)).all()
    assert square_attack.balanced_bytes(aes.encrypt_blocks(key, texts, rounds=4)).sum() < 8


def test_the_right_key_byte_is_always_a_candidate():
    key = bytes(range(100, 116))
    k4 = aes.expand_key(key)[4]
    cts = square_attack.four_round_oracle(key)(square_attack.lambda_set(bytes(16)))
    for j in range(16):
        assert k4[j] in square_attack.byte_candidates(cts, j)


@pytest.mark.parametrize("seed", range(3))
def test_attack_recovers_random_keys(seed):
    key = np.random.default_rng(100 + seed).bytes(16)
    result = square_attack.square_attack(square_attack.four_round_oracle(key), seed=seed, progress=False)
    assert result.master_key == key and result.verified
    assert result.round_key == aes.expand_key(key)[4]
    assert result.chosen_plaintexts == 256 * result.lambda_sets + 4


def test_attack_fails_loudly_on_a_wrong_oracle():
    key = bytes(16)
    with pytest.raises(ValueError, match="not determined"):
        square_attack.square_attack(lambda p: aes.encrypt_blocks(key, p, rounds=5), max_sets=3, progress=False)
    with pytest.raises(ValueError, match="16 bytes"):
        square_attack.four_round_oracle(bytes(24))


def test_byte_properties_follow_the_square_paper():
    key = bytes(range(16))
    texts = square_attack.lambda_set(bytes(16), active_byte=0)
    states = aes.round_states(key, texts)  # full rounds, MixColumns included
    props = [square_attack.byte_properties(states[r]) for r in (1, 2, 3)]
    assert (props[0][:, 0] == "A").all() and (props[0][:, 1:] == "C").all()  # one active column
    assert (props[1] == "A").all()
    assert set(props[2].ravel()) <= {"A", "B"} and "B" in props[2]
    assert (square_attack.byte_properties(states[4]) == "?").sum() > 8
    assert square_attack.byte_properties(texts)[0, 0] == "A" and square_attack.byte_properties(texts)[1, 0] == "C"
