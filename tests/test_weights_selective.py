"""Tests of labkit.weights.selective: sensitivity analysis and the CoreLocker-style key."""
import pytest
import torch

from labkit import digits
from labkit import weights as W
from labkit.weights import selective as S


@pytest.fixture(scope="module")
def task():
    return S.train_digits_classifier(seed=0)


def test_classifier_learns_digits(task):
    assert digits.accuracy(task.model, task.x_test, task.y_test) > 0.9


def test_sensitivity_finds_the_weight_matrices(task):
    drops = S.sensitivity(task.model, task.x_test, task.y_test, mode="zero")
    floating = [n for n, t in task.model.state_dict().items() if t.is_floating_point()]
    assert sorted(drops) == sorted(floating)
    # zeroing any weight matrix leaves a constant output: accuracy falls to about 1/10
    for name in ("0.weight", "3.weight", "6.weight"):
        assert drops[name] > 0.7
    critical = S.critical_tensors(drops, threshold=0.5)
    assert {"0.weight", "3.weight", "6.weight"} <= set(critical)
    assert all(drops[a] >= drops[b] for a, b in zip(critical, critical[1:]))
    # the sensitivity is the accuracy of the perturbed model, recomputed independently
    state = dict(task.model.state_dict())
    state["0.bias"] = torch.zeros_like(state["0.bias"])
    base = digits.accuracy(task.model, task.x_test, task.y_test)
    assert drops["0.bias"] == pytest.approx(base - digits.accuracy(task.model, task.x_test,
                                                               task.y_test, state))


@pytest.mark.parametrize("by", ["magnitude", "channel"])
def test_withhold_and_restore_round_trip(task, by, tmp_path):
    locked, key = S.withhold(task.model, 0.05, by=by)
    original = task.model.state_dict()
    restored = S.restore(locked, key)
    assert all(torch.equal(restored[n], original[n]) for n in original)
    changed = [n for n in original if not torch.equal(locked[n], original[n])]
    assert changed and all(f"{n}.index" in key for n in changed)
    assert 0 < S.key_size(key, locked) < 0.1
    if by == "magnitude":  # the withheld entries are the largest ones of each matrix
        idx, w = key["0.weight.index"], original["0.weight"].reshape(-1).abs()
        assert w[idx].min() >= w[~torch.isin(torch.arange(w.numel()), idx)].max()
    # the key is a state_dict-like mapping: it travels in a sealed container
    device = W.generate_recipient_keypair()
    publisher = W.generate_signing_keypair()
    W.seal(key, tmp_path / "key.lkw", [device.public_key], signing_key=publisher)
    back = W.open(tmp_path / "key.lkw", device.private_key, signer=publisher.public_key)
    acc = digits.accuracy(task.model, task.x_test, task.y_test, S.restore(locked, back))
    assert acc == digits.accuracy(task.model, task.x_test, task.y_test)


def test_more_withheld_hurts_more(task):
    accs = [digits.accuracy(task.model, task.x_test, task.y_test, S.withhold(task.model, f)[0])
            for f in (0.01, 0.1, 0.2)]
    assert accs[0] > accs[2]


def test_validation(task):
    with pytest.raises(ValueError, match="fraction"):
        S.withhold(task.model, 1.5)
    with pytest.raises(ValueError, match="by"):
        S.withhold(task.model, 0.1, by="entropy")
    with pytest.raises(ValueError, match="mode"):
        S.sensitivity(task.model, task.x_test, task.y_test, mode="flip")
    with pytest.raises(ValueError, match="threshold"):
        S.critical_tensors({}, threshold=2)
