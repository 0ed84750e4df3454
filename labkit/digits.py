"""The digit classifiers of chapters 08-10: data at any size, stratified splits, three small
architectures, seeded single-threaded training, prediction and accuracy.

Data: scikit-learn's handwritten digits (1,797 images of 8x8 pixels with 17 grey levels, shipped
with the package, so nothing is downloaded). Every image is a float tensor ``(1, size, size)`` with
values in [0, 1]. At ``size=8`` they are the original pixels ``/ 16`` (exact in float32); larger
sizes are upsampled (bilinear) and stored on the 8-bit grid, ``byte / 255``, so that the pixels'
least significant bits can carry a signed trigger (chapter 08 uses 32x32: a 64-byte Ed25519
signature does not fit in 64 pixels).

The images are read from the data file scikit-learn ships and split with scikit-learn's algorithm
reimplemented here (``tests/test_digits.py`` checks both against scikit-learn), and training uses
its own Adam (:class:`Adam`, torch's update op for op): importing scikit-learn (with SciPy) and
running ``torch.optim`` (whose ``step`` imports ``torch._dynamo``) would cost every training
unit's kernel about 80 and 60 MiB, for the same numbers.

Models: an MLP and a CNN (chapters 08 and 10) and an MLP with BatchNorm after each hidden layer
(chapter 09: CoreLocker, Wang et al., IEEE S&P 2024, ranks channels by BatchNorm |gamma|). Each
ends in a ``Linear`` layer, the *head*. Training and prediction run on one torch thread from a
fixed seed, so the same call gives the same weights on every run.
"""
from __future__ import annotations

import copy
import gzip
import importlib.util
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from labkit.parallel import torch_threads

__all__ = [
    "IMAGE_SIZE",
    "NATIVE_SIZE",
    "NUM_CLASSES",
    "ARCHITECTURES",
    "DigitSplits",
    "load_digits_images",
    "stratified_split",
    "digit_splits",
    "to_pixels",
    "from_pixels",
    "MLP",
    "CNN",
    "BatchNormMLP",
    "make_classifier",
    "head_layer",
    "Adam",
    "train_classifier",
    "trained_classifier",
    "predict",
    "accuracy",
]

IMAGE_SIZE = 32  # chapter 08's size: room for a 128-byte trigger field in the pixels' low bits
NATIVE_SIZE = 8  # scikit-learn's digits
NUM_CLASSES = 10
ARCHITECTURES = ("mlp", "cnn", "bn_mlp")


PREDICT_ELEMENTS = 1 << 16  # input values per batch of predict() and logits(): 256 KiB of float32
_UPSAMPLE_BLOCK = 128  # images upsampled at a time: all 1,797 at once held 2 x 15 MiB of float64 at 32x32
_PIXEL_BLOCK = 1 << 18  # values converted at a time: 2 MiB of float64 scratch, not 4 copies of x


def to_pixels(x) -> np.ndarray:
    """Model inputs (floats in [0, 1]) to uint8 pixel bytes: ``round(255 x)`` in float64, clipped.

    Block by block, in place: a batch of 450 images of 96x96 as whole float64 arrays (one per
    step) peaked at 130 MiB more than the result."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    out = np.empty(arr.shape, dtype=np.uint8)
    flat, pixels = arr.reshape(-1), out.reshape(-1)
    for a in range(0, flat.size, _PIXEL_BLOCK):
        part = flat[a : a + _PIXEL_BLOCK].astype(np.float64)  # a copy, also for float64 input
        np.multiply(part, 255.0, out=part)
        np.rint(part, out=part)
        np.clip(part, 0, 255, out=part)
        pixels[a : a + _PIXEL_BLOCK] = part
    return out


def from_pixels(pixels) -> torch.Tensor:
    """uint8 pixel bytes to the model's input format: float32 ``byte / 255``.

    Divided in place in the float32 copy (``np.array`` always copies), the same values without a
    second array of the batch's size."""
    values = np.array(pixels, dtype=np.float32)
    values /= np.float32(255.0)
    return torch.from_numpy(values)


def _sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    """``(images, target)`` as scikit-learn's ``load_digits()`` gives them (float64 ``(1797, 8,
    8)``, int), read from its data file ``datasets/data/digits.csv.gz`` without importing
    scikit-learn (the UCI data: 64 pixels and the label per line)."""
    spec = importlib.util.find_spec("sklearn")  # finds the package, does not import it
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("scikit-learn (which ships the digits) is not installed")
    path = Path(spec.submodule_search_locations[0], "datasets", "data", "digits.csv.gz")
    with gzip.open(path, mode="rt", encoding="utf-8") as f:
        data = np.loadtxt(f, delimiter=",")
    return data[:, :-1].reshape(-1, NATIVE_SIZE, NATIVE_SIZE), data[:, -1].astype(int)


@lru_cache(maxsize=4)
def _digits(size: int) -> tuple[np.ndarray, np.ndarray]:
    """The digits as this process keeps them, and their labels: for ``size`` 8 the float32 images
    (pixels / 16); larger, the upsampled uint8 pixel bytes, a quarter of their float32 images
    (1.8 MiB instead of 7 MiB at 32x32), made into model inputs only where they are picked
    (:func:`_images`, the same values: :func:`from_pixels` is element by element)."""
    images, target = _sklearn_digits()
    labels = target.astype(np.int64)
    if size == NATIVE_SIZE:
        return (images.astype(np.float32) / np.float32(16))[:, None], labels
    small = torch.tensor(images, dtype=torch.float64).unsqueeze(1) / 16.0
    pixels = np.empty((len(small), 1, size, size), dtype=np.uint8)
    for start in range(0, len(small), _UPSAMPLE_BLOCK):  # image by image the same; float64 temporaries bounded
        part = nn.functional.interpolate(small[start : start + _UPSAMPLE_BLOCK], size=(size, size), mode="bilinear",
                                         align_corners=False)
        pixels[start : start + _UPSAMPLE_BLOCK] = to_pixels(part.clamp_(0, 1))
    return pixels, labels


def _images(size: int, index: np.ndarray | None = None) -> torch.Tensor:
    """The digits ``index`` (all by default) as float32 model inputs, a fresh tensor."""
    data, _ = _digits(size)
    part = data.copy() if index is None else data[index]  # fancy indexing copies
    return torch.from_numpy(part) if size == NATIVE_SIZE else from_pixels(part)


def load_digits_images(size: int = IMAGE_SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """All 1,797 digits as ``(n, 1, size, size)`` float32 in [0, 1], and their labels.

    ``size=8``: the original pixels / 16; larger: upsampled (bilinear) on the 8-bit grid.
    """
    size = _check_size(size)
    return _images(size), torch.from_numpy(_digits(size)[1].copy())


def _check_size(size) -> int:
    if type(size) is not int or size < NATIVE_SIZE:
        raise ValueError(f"size must be an int >= {NATIVE_SIZE}, got {size!r}")
    return size


def _approximate_mode(class_counts: np.ndarray, n_draws: int, rng) -> np.ndarray:
    """How many of ``n_draws`` to take from each class: the proportional share rounded down, the
    rest one each to the largest remainders (ties broken by ``rng``), as scikit-learn's
    ``utils.extmath._approximate_mode``."""
    continuous = class_counts / class_counts.sum() * n_draws
    floored = np.floor(continuous)
    need_to_add = int(n_draws - floored.sum())
    if need_to_add > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (inds,) = np.where(remainder == value)
            add_now = min(len(inds), need_to_add)
            floored[rng.choice(inds, size=add_now, replace=False)] += 1
            need_to_add -= add_now
            if need_to_add == 0:
                break
    return floored.astype(int)


def stratified_split(labels, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(first, second)`` of a stratified random split: ``second`` holds
    ``ceil(test_size * n)`` items, in the drawn order. The same indices as scikit-learn's
    ``train_test_split(arange(n), test_size=test_size, stratify=labels, random_state=seed)``
    (its ``StratifiedShuffleSplit`` algorithm, one split, with NumPy's ``RandomState(seed)``)."""
    labels = np.asarray(labels)
    if not 0 < test_size < 1:
        raise ValueError(f"test_size must be a fraction in (0, 1), got {test_size!r}")
    n_test = math.ceil(test_size * len(labels))
    n_train = len(labels) - n_test
    classes, y_indices, class_counts = np.unique(labels, return_inverse=True, return_counts=True)
    if len(labels) == 0 or class_counts.min() < 2 or min(n_train, n_test) < len(classes):
        raise ValueError("a stratified split needs 2 items of every class and at least one item "
                         "per class on each side")
    class_indices = np.split(np.argsort(y_indices, kind="stable"), np.cumsum(class_counts)[:-1])
    rng = np.random.RandomState(seed)
    n_i = _approximate_mode(class_counts, n_train, rng)
    t_i = _approximate_mode(class_counts - n_i, n_test, rng)
    first, second = [], []
    for i in range(len(classes)):
        drawn = class_indices[i].take(rng.permutation(class_counts[i]), mode="clip")
        first.extend(drawn[: n_i[i]])
        second.extend(drawn[n_i[i] : n_i[i] + t_i[i]])
    return rng.permutation(first), rng.permutation(second)


@dataclass(frozen=True)
class DigitSplits:
    """Three disjoint, stratified parts: the owner trains on ``train``; an attacker who removes a
    watermark has ``attacker`` (natural data only); every figure is measured on ``test``."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    attacker_x: torch.Tensor
    attacker_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor


def digit_splits(seed: int = 0, size: int = IMAGE_SIZE) -> DigitSplits:
    """Split the digits 50% / 25% / 25% (train / attacker / test), stratified, from ``seed``;
    each part in the data set's order.

    The parts are picked straight from the process's one copy of the digits (each a fresh tensor):
    a whole float32 copy first (:func:`load_digits_images`) cost 7 MiB more at the peak of every
    call, and every demo, baseline and trained model calls it."""
    size = _check_size(size)
    labels = _digits(size)[1]
    parts = (_pick(size, labels, ix) for ix in _split_indices(labels, seed))
    return DigitSplits(*(tensor for part in parts for tensor in part))


def _split_indices(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The train, attacker and test indices of :func:`digit_splits`, each sorted."""
    train, rest = stratified_split(labels, 0.5, seed)
    attacker, test = (rest[part] for part in stratified_split(labels[rest], 0.5, seed))
    return np.sort(train), np.sort(attacker), np.sort(test)


def _pick(size: int, labels: np.ndarray, index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    return _images(size, index), torch.from_numpy(labels[index])


class MLP(nn.Sequential):
    """``size`` x ``size`` image -> ``hidden`` ReLU units -> 10 logits."""

    def __init__(self, size: int = IMAGE_SIZE, hidden: int = 128) -> None:
        super().__init__(
            nn.Flatten(),
            nn.Linear(size * size, hidden),
            nn.ReLU(),
            nn.Linear(hidden, NUM_CLASSES),
        )


class CNN(nn.Sequential):
    """Two 5x5 convolutions with max-pooling (size -> size/2 -> size/4), then 64 ReLU units -> 10
    logits."""

    def __init__(self, size: int = IMAGE_SIZE) -> None:
        if size % 4:
            raise ValueError(f"the CNN needs a size divisible by 4, got {size}")
        super().__init__(
            nn.Conv2d(1, 8, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(16 * (size // 4) ** 2, 64),
            nn.ReLU(),
            nn.Linear(64, NUM_CLASSES),
        )


class BatchNormMLP(nn.Sequential):
    """``size`` x ``size`` pixels -> 96 -> 64 -> 10, BatchNorm after each hidden layer.

    Takes images or flat rows: it flattens in ``forward``, so its parameters are numbered
    ``0.weight`` (first Linear), ``1.weight`` (its BatchNorm), ... as chapter 09 names them.
    """

    def __init__(self, size: int = NATIVE_SIZE) -> None:
        super().__init__(
            nn.Linear(size * size, 96), nn.BatchNorm1d(96), nn.ReLU(),
            nn.Linear(96, 64), nn.BatchNorm1d(64), nn.ReLU(),
            nn.Linear(64, NUM_CLASSES),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.flatten(1))


def make_classifier(arch: str = "mlp", *, seed: int = 0, size: int | None = None) -> nn.Module:
    """A freshly initialised classifier from ``seed``: ``"mlp"``, ``"cnn"`` (for 32x32 images by
    default) or ``"bn_mlp"`` (8x8 by default)."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"arch must be one of {ARCHITECTURES}, got {arch!r}")
    torch.manual_seed(seed)
    build = {"mlp": MLP, "cnn": CNN, "bn_mlp": BatchNormMLP}[arch]
    return build() if size is None else build(size)


def head_layer(model: nn.Module) -> nn.Linear:
    """The last ``Linear`` layer (the one "re-initialise the last layer" replaces)."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise TypeError("model has no Linear layer")
    return linears[-1]


class Adam:
    """Adam (Kingma and Ba, ICLR 2015) over ``params``: ``torch.optim.Adam``'s update on CPU
    (its single-tensor path, no weight decay, no AMSGrad) operation for operation, so training
    gives the same bits; without ``torch.optim``, whose ``step`` imports ``torch._dynamo`` (about
    800 modules, 60 MiB in every kernel that trains)."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        self.params, self.lr, self.betas, self.eps = list(params), lr, betas, eps
        self.state: dict[int, list] = {}

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        beta1, beta2 = self.betas
        for p in self.params:
            if p.grad is None:
                continue
            state = self.state.setdefault(id(p), [0, torch.zeros_like(p), torch.zeros_like(p)])
            state[0] += 1
            step, exp_avg, exp_avg_sq = float(state[0]), state[1], state[2]
            exp_avg.lerp_(p.grad, 1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
            step_size = self.lr / (1 - beta1**step)
            denom = (exp_avg_sq.sqrt() / (1 - beta2**step) ** 0.5).add_(self.eps)
            p.addcdiv_(exp_avg, denom, value=-step_size)


def train_classifier(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int = 30,
    lr: float = 3e-3,
    batch_size: int | None = 64,
    seed: int = 0,
    soft_targets: torch.Tensor | None = None,
    extra_loss=None,
    parameters=None,
) -> nn.Module:
    """Train in place with Adam on one thread and return the model.

    Mini-batches of ``batch_size`` are drawn in a random order from ``seed``; ``batch_size=None``
    takes one full-batch step per epoch on ``x`` in its order. ``y`` are class labels; with
    ``soft_targets`` (probabilities, for distillation) the loss is the cross-entropy against them
    instead. ``extra_loss(model)`` is added to every batch's loss (the weight-watermark regulariser
    uses it); ``parameters`` restricts what is trained.
    """
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
    if batch_size is not None and (type(batch_size) is not int or batch_size < 1):
        raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}")
    generator = torch.Generator().manual_seed(seed)
    params = list(parameters) if parameters is not None else list(model.parameters())
    optimiser = Adam(params, lr=lr)
    with torch_threads(1):
        model.train()
        for _ in range(epochs):
            if batch_size is None:
                batches = [slice(None)]
            else:
                order = torch.randperm(len(x), generator=generator)
                batches = [order[start : start + batch_size] for start in range(0, len(x), batch_size)]
            for batch in batches:
                logits = model(x[batch])
                if soft_targets is None:
                    loss = nn.functional.cross_entropy(logits, y[batch])
                else:
                    loss = -(soft_targets[batch] * logits.log_softmax(1)).sum(1).mean()
                if extra_loss is not None:
                    loss = loss + extra_loss(model)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
        model.eval()
    return model


@lru_cache(maxsize=8)
def _trained_state(arch: str, seed: int):
    labels = _digits(IMAGE_SIZE)[1]
    train_x, train_y = _pick(IMAGE_SIZE, labels, _split_indices(labels, seed)[0])  # digit_splits(seed).train
    model = make_classifier(arch, seed=seed)
    epochs = 12 if arch == "cnn" else 30
    train_classifier(model, train_x, train_y, epochs=epochs, seed=seed)
    return copy.deepcopy(model.state_dict())


def trained_classifier(arch: str = "mlp", seed: int = 0) -> nn.Module:
    """A 32x32 classifier trained on ``digit_splits(seed).train`` (cached per process; a fresh
    copy)."""
    model = make_classifier(arch, seed=seed)
    model.load_state_dict(_trained_state(arch, seed))
    model.eval()
    return model


def batches(x: torch.Tensor, batch_size: int | None = None):
    """``x`` in slices of ``batch_size`` inputs; by default as many as hold PREDICT_ELEMENTS values
    (64 images of 32x32, 7 of 96x96). A model's intermediate tensors then stay a few MiB whatever the
    batch: the digit CNN on 450 images of 32x32 at once lifted a kernel's peak by 70 MiB (64 at a
    time: 12 MiB, in the same time). Each input's result does not depend on the others in its batch."""
    if batch_size is None:
        batch_size = max(1, PREDICT_ELEMENTS // max(1, math.prod(x.shape[1:])))
    return (x[start : start + batch_size] for start in range(0, len(x), batch_size))


def logits(model, x: torch.Tensor, *, batch_size: int | None = None) -> torch.Tensor:
    """``model(x)`` without gradients on one thread, evaluated in :func:`batches`."""
    with torch.no_grad(), torch_threads(1):
        out = [model(part) for part in batches(x, batch_size)] or [model(x)]  # an empty x: its (0, k) logits
    return torch.cat(out)


def predict(model, x: torch.Tensor, *, batch_size: int | None = None) -> np.ndarray:
    """Class labels (argmax of the :func:`logits`) as an int array."""
    return logits(model, x, batch_size=batch_size).argmax(1).numpy()


def accuracy(model, x: torch.Tensor, y, state: dict | None = None) -> float:
    """Fraction of ``x`` classified as ``y``; with ``state``, by ``model`` with that state_dict
    loaded for the call (the model's own state is restored after)."""
    if state is None:
        return float(np.mean(predict(model, x) == np.asarray(y)))
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    try:
        model.load_state_dict(state)
        model.eval()
        return float(np.mean(predict(model, x) == np.asarray(y)))
    finally:
        model.load_state_dict(saved)
