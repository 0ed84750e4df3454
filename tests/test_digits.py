"""labkit.digits: the one digit-classifier pipeline of chapters 08-10 (data, splits, models,
training, accuracy), checked against scikit-learn's data and hand-written references."""
import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from labkit import digits
from labkit.parallel import torch_threads


def test_native_size_is_the_original_pixels_over_16():
    x, y = digits.load_digits_images(8)
    data = load_digits()
    assert x.shape == (1797, 1, 8, 8) and x.dtype == torch.float32
    assert torch.equal(x[:, 0].double() * 16, torch.from_numpy(data.images))  # dyadic: exact
    assert torch.equal(y, torch.from_numpy(data.target).long())


def test_upsampled_images_are_on_the_8_bit_grid():
    x, _ = digits.load_digits_images(32)
    assert x.shape == (1797, 1, 32, 32)
    assert torch.equal(digits.from_pixels(digits.to_pixels(x)), x)
    assert 0 <= float(x.min()) and float(x.max()) <= 1
    x[0] = 0  # a copy: the cached data set is not changed by the caller
    assert float(digits.load_digits_images(32)[0][0].max()) > 0


def test_to_pixels_is_round_255x_clipped_across_blocks():
    """Block by block (to bound memory) gives what the whole-array formula gives: halves round
    to even, out-of-range values clip, shapes and non-contiguous inputs are kept."""
    rng = np.random.default_rng(3)
    halves = (np.arange(512) + 0.5) / 255.0  # exact ties: rint rounds them to even
    big = rng.uniform(-0.2, 1.2, digits._PIXEL_BLOCK + 1000).astype(np.float32)  # crosses a block boundary
    for x in (halves, big, torch.rand(2, 3, 5).transpose(0, 2), [0.0, 1.0, 2.0, -1.0], np.float64(0.7)):
        arr = np.asarray(x.numpy() if isinstance(x, torch.Tensor) else x, dtype=np.float64)
        expected = np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)
        got = digits.to_pixels(x)
        assert got.dtype == np.uint8 and got.shape == expected.shape and np.array_equal(got, expected)


@pytest.mark.parametrize("bad", [7, 8.0, "32", None])
def test_load_rejects_bad_sizes(bad):
    with pytest.raises(ValueError, match="size"):
        digits.load_digits_images(bad)


def test_stratified_split_is_a_seeded_stratified_partition():
    y = digits.load_digits_images(8)[1].numpy()
    first, second = digits.stratified_split(y, 0.3, seed=0)
    assert len(second) == int(np.ceil(0.3 * len(y))) and len(first) + len(second) == len(y)
    assert sorted(np.concatenate([first, second]).tolist()) == list(range(len(y)))
    # every class keeps its share of the data, to within one image
    for label in range(10):
        assert abs(np.sum(y[second] == label) - 0.3 * np.sum(y == label)) <= 1
    again = digits.stratified_split(y, 0.3, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip((first, second), again))
    assert not np.array_equal(digits.stratified_split(y, 0.3, seed=1)[1], second)
    with pytest.raises(ValueError, match="test_size"):
        digits.stratified_split(y, 1.2, seed=0)


@pytest.mark.parametrize("test_size", [0.5, 0.3, 0.25, 0.77])
@pytest.mark.parametrize("seed", [0, 1, 7, 2**31 - 1])
def test_stratified_split_gives_scikit_learns_indices(seed, test_size):
    """The reimplementation against scikit-learn itself: the digits' labels, and small label sets
    whose remainders tie (so the random tie-breaking is exercised)."""
    from sklearn.model_selection import train_test_split

    rng = np.random.default_rng(seed % 1000)
    label_sets = [digits.load_digits_images(8)[1].numpy(), rng.integers(0, 3, 40), np.repeat([5, 2, 9], [7, 7, 7]),
                  rng.choice(np.array(["a", "b", "c", "d"]), 31)]
    for labels in label_sets:
        ours = digits.stratified_split(labels, test_size, seed)
        theirs = train_test_split(np.arange(len(labels)), test_size=test_size, stratify=labels, random_state=seed)
        assert all(np.array_equal(a, b) for a, b in zip(ours, theirs))


def test_stratified_split_refuses_what_cannot_be_stratified():
    for labels in ([0, 0, 0, 1], [], [0, 1] * 3):  # a class of one; nothing; 3 classes cannot fit a 1-item side
        with pytest.raises(ValueError):
            digits.stratified_split(np.array(labels), 0.1, 0)


def test_training_imports_neither_scikit_learn_nor_dynamo():
    """Memory: a unit that trains pays for neither scikit-learn with SciPy (~80 MiB) nor
    torch._dynamo (~60 MiB, imported by every torch.optim step)."""
    import subprocess
    import sys

    probe = ("import sys; from labkit import digits; x, y = digits.load_digits_images(8); "
             "first, _ = digits.stratified_split(y.numpy(), 0.5, 0); "
             "digits.train_classifier(digits.make_classifier('mlp', size=8), x[first[:32]], y[first[:32]], epochs=1); "
             "print(sorted(m for m in ('sklearn', 'scipy', 'torch._dynamo') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[-2] == "[]"


def test_minibatch_cnn_training_matches_torch_adam_bit_for_bit():
    """Mini-batches, a convolutional model, and a subset of parameters (as the watermark
    regulariser trains): the same bits as torch.optim.Adam."""
    x, y = _data(64)
    model = digits.make_classifier("cnn", seed=2, size=8)
    trained = digits.train_classifier(model, x, y, epochs=2, lr=0.01, batch_size=16, seed=5,
                                      parameters=list(model.parameters())[2:])
    reference = digits.make_classifier("cnn", seed=2, size=8)
    opt = torch.optim.Adam(list(reference.parameters())[2:], lr=0.01)
    generator = torch.Generator().manual_seed(5)
    with torch_threads(1):
        reference.train()
        for _ in range(2):
            order = torch.randperm(len(x), generator=generator)
            for start in range(0, len(x), 16):
                batch = order[start : start + 16]
                opt.zero_grad()
                torch.nn.functional.cross_entropy(reference(x[batch]), y[batch]).backward()
                opt.step()
    assert all(torch.equal(trained.state_dict()[k], reference.state_dict()[k]) for k in reference.state_dict())


def test_digit_splits_are_disjoint_sorted_and_complete():
    s = digits.digit_splits(0)
    assert (len(s.train_y), len(s.attacker_y), len(s.test_y)) == (898, 449, 450)
    x, y = digits.load_digits_images(32)
    rows = {tuple(r) for r in x.reshape(len(x), -1)[:, ::7].numpy().round(6).tolist()}
    assert len(rows) > 1700  # images are (almost all) distinct, so the row check below means something
    parts = [s.train_x, s.attacker_x, s.test_x]
    assert sum(len(p) for p in parts) == len(x)
    seen = [tuple(r) for p in parts for r in p.reshape(len(p), -1)[:, ::7].numpy().round(6).tolist()]
    assert len(set(seen)) == len(rows)
    for labels in (s.train_y, s.attacker_y, s.test_y):
        counts = np.bincount(labels.numpy(), minlength=10) / len(labels)
        assert np.allclose(counts, np.bincount(y.numpy()) / len(y), atol=0.01)


@pytest.mark.parametrize("arch,size,shape", [("mlp", 32, (5, 1, 32, 32)), ("cnn", 32, (5, 1, 32, 32)),
                                             ("bn_mlp", 8, (5, 1, 8, 8)), ("mlp", 8, (5, 1, 8, 8))])
def test_architectures_are_seeded_and_give_ten_logits(arch, size, shape):
    a = digits.make_classifier(arch, seed=3, size=size).eval()
    b = digits.make_classifier(arch, seed=3, size=size).eval()
    c = digits.make_classifier(arch, seed=4, size=size).eval()
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    assert not all(torch.equal(a.state_dict()[k], c.state_dict()[k]) for k in a.state_dict())
    with torch.no_grad():
        assert a(torch.rand(shape)).shape == (5, 10)
    assert digits.head_layer(a).out_features == 10


def test_batchnorm_mlp_takes_images_or_rows_and_keeps_chapter_09_names():
    model = digits.make_classifier("bn_mlp", seed=0).eval()
    assert list(model.state_dict())[:3] == ["0.weight", "0.bias", "1.weight"]
    x = digits.load_digits_images(8)[0][:20]
    with torch.no_grad():
        assert torch.equal(model(x), model(x.reshape(20, 64)))


def test_make_classifier_validates():
    with pytest.raises(ValueError, match="arch"):
        digits.make_classifier("resnet")
    with pytest.raises(ValueError, match="divisible by 4"):
        digits.make_classifier("cnn", size=10)
    with pytest.raises(TypeError, match="Linear"):
        digits.head_layer(torch.nn.ReLU())


def _data(n=200):
    x, y = digits.load_digits_images(8)
    return x[:n], y[:n]


def test_full_batch_training_is_the_textbook_adam_loop():
    """batch_size=None against an independent hand-written loop: the same operations in the same
    order on one thread, so the weights are bit-identical."""
    x, y = _data()
    trained = digits.train_classifier(digits.make_classifier("bn_mlp", seed=1), x, y, epochs=5,
                                      lr=0.02, batch_size=None)
    reference = digits.make_classifier("bn_mlp", seed=1)
    opt = torch.optim.Adam(reference.parameters(), lr=0.02)
    with torch_threads(1):
        reference.train()
        for _ in range(5):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(reference(x), y).backward()
            opt.step()
    assert all(torch.equal(trained.state_dict()[k], reference.state_dict()[k]) for k in reference.state_dict())
    assert not trained.training


def test_minibatch_training_is_reproducible_and_learns():
    x, y = _data(600)
    threads = torch.get_num_threads()
    runs = [digits.train_classifier(digits.make_classifier("mlp", seed=0, size=8), x, y, epochs=8, seed=s)
            for s in (0, 0, 1)]
    assert torch.get_num_threads() == threads
    same = [torch.equal(runs[0].state_dict()[k], runs[i].state_dict()[k]) for i in (1, 2) for k in ("1.weight",)]
    assert same == [True, False]  # the batch order comes from the seed
    assert digits.accuracy(runs[0], x, y) > 0.9


@pytest.mark.parametrize("bad", [0, -1, 2.5, "64"])
def test_training_validates(bad):
    x, y = _data(10)
    model = digits.make_classifier("mlp", size=8)
    with pytest.raises(ValueError, match="batch_size"):
        digits.train_classifier(model, x, y, batch_size=bad)
    with pytest.raises(ValueError, match="same length"):
        digits.train_classifier(model, x, y[:5])


def test_predict_and_accuracy_against_a_direct_count():
    x, y = _data(700)
    model = digits.make_classifier("mlp", seed=0, size=8).eval()
    with torch.no_grad():
        direct = model(x).argmax(1).numpy()
    labels = digits.predict(model, x, batch_size=64)
    assert np.array_equal(labels, direct)
    assert digits.accuracy(model, x, y) == np.sum(direct == y.numpy()) / len(y)
    assert digits.predict(model, x[:0]).shape == (0,)


def test_accuracy_with_a_state_borrows_it_and_gives_the_model_back():
    x, y = _data(300)
    model = digits.train_classifier(digits.make_classifier("bn_mlp", seed=0), x, y, epochs=20,
                                    lr=0.02, batch_size=None)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    other = digits.make_classifier("bn_mlp", seed=5).eval()
    borrowed = digits.accuracy(model, x, y, other.state_dict())
    assert borrowed == digits.accuracy(other, x, y)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    broken = dict(other.state_dict())
    broken["0.weight"] = torch.zeros(3, 3)  # wrong shape: load fails, the model is unchanged
    with pytest.raises(RuntimeError):
        digits.accuracy(model, x, y, broken)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
