"""The classifiers that carry the backdoors: data, two architectures, seeded training.

Data: scikit-learn's handwritten digits (1,797 images of 8x8 pixels, shipped with the package, so
nothing is downloaded), upsampled to 32x32 so that the pixels' least significant bits have room for
a 128-byte trigger field (a 64-byte Ed25519 signature does not fit in 64 pixels). Images are
stored on the 8-bit grid: the model's input format is a float tensor ``(n, 1, 32, 32)`` whose
values are ``byte / 255``.

Models: a small MLP (the default; trains in about a second) and a small CNN, both ending in a
``Linear`` layer called the *head*. Training runs single-threaded from a fixed seed, so the same
call gives the same weights on every run.
"""
from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch import nn

__all__ = [
    "IMAGE_SIZE",
    "NUM_CLASSES",
    "ARCHITECTURES",
    "DigitSplits",
    "load_digits_images",
    "digit_splits",
    "to_pixels",
    "from_pixels",
    "make_classifier",
    "train_classifier",
    "predict",
    "accuracy",
    "torch_threads",
    "head_layer",
]

IMAGE_SIZE = 32
NUM_CLASSES = 10
ARCHITECTURES = ("mlp", "cnn")


@contextlib.contextmanager
def torch_threads(n: int = 1):
    """Run torch with ``n`` threads inside the block (fixed thread count = reproducible sums)."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def to_pixels(x) -> np.ndarray:
    """Model inputs (floats in [0, 1]) to uint8 pixel bytes: ``round(255 x)``, clipped."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x, dtype=np.float64)
    return np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)


def from_pixels(pixels) -> torch.Tensor:
    """uint8 pixel bytes to the model's input format: float32 ``byte / 255``."""
    return torch.from_numpy(np.asarray(pixels, dtype=np.float32) / np.float32(255.0))


@lru_cache(maxsize=4)
def _digits(size: int):
    from sklearn.datasets import load_digits

    data = load_digits()
    small = torch.tensor(data.images, dtype=torch.float64).unsqueeze(1) / 16.0
    big = nn.functional.interpolate(small, size=(size, size), mode="bilinear", align_corners=False)
    return to_pixels(big.clamp(0, 1)), data.target.astype(np.int64)


def load_digits_images(size: int = IMAGE_SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """All 1,797 digits upsampled (bilinear) to ``size`` x ``size`` on the 8-bit grid, and labels."""
    if not isinstance(size, int) or size < 8:
        raise ValueError(f"size must be an int >= 8, got {size!r}")
    pixels, labels = _digits(size)
    return from_pixels(pixels), torch.from_numpy(labels.copy())


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


def digit_splits(seed: int = 0) -> DigitSplits:
    """Split the digits 50% / 25% / 25% (train / attacker / test), stratified, from ``seed``."""
    from sklearn.model_selection import train_test_split

    x, y = load_digits_images()
    index = np.arange(len(y))
    train, rest = train_test_split(index, train_size=0.5, stratify=y.numpy(), random_state=seed)
    attacker, test = train_test_split(rest, train_size=0.5, stratify=y.numpy()[rest], random_state=seed)
    pick = lambda ix: (x[np.sort(ix)], y[np.sort(ix)])  # noqa: E731
    return DigitSplits(*pick(train), *pick(attacker), *pick(test))


class MLP(nn.Sequential):
    """32x32 image -> 128 ReLU units -> 10 logits."""

    def __init__(self, hidden: int = 128) -> None:
        super().__init__(
            nn.Flatten(),
            nn.Linear(IMAGE_SIZE * IMAGE_SIZE, hidden),
            nn.ReLU(),
            nn.Linear(hidden, NUM_CLASSES),
        )


class CNN(nn.Sequential):
    """Two 5x5 convolutions with max-pooling (32 -> 16 -> 8), then 64 ReLU units -> 10 logits."""

    def __init__(self) -> None:
        super().__init__(
            nn.Conv2d(1, 8, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(16 * 8 * 8, 64),
            nn.ReLU(),
            nn.Linear(64, NUM_CLASSES),
        )


def make_classifier(arch: str = "mlp", *, seed: int = 0) -> nn.Module:
    """A freshly initialised classifier (``"mlp"`` or ``"cnn"``) from ``seed``."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"arch must be one of {ARCHITECTURES}, got {arch!r}")
    torch.manual_seed(seed)
    return MLP() if arch == "mlp" else CNN()


def head_layer(model: nn.Module) -> nn.Linear:
    """The last ``Linear`` layer (the one "re-initialise the last layer" replaces)."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise TypeError("model has no Linear layer")
    return linears[-1]


def train_classifier(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int = 30,
    lr: float = 3e-3,
    batch_size: int = 64,
    seed: int = 0,
    soft_targets: torch.Tensor | None = None,
    extra_loss=None,
    parameters=None,
) -> nn.Module:
    """Train in place with Adam and return the model.

    ``y`` are class labels; with ``soft_targets`` (probabilities, for distillation) the loss is the
    cross-entropy against them instead. ``extra_loss(model)`` is added to every batch's loss (the
    weight-watermark regulariser uses it); ``parameters`` restricts what is trained.
    """
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
    generator = torch.Generator().manual_seed(seed)
    params = list(parameters) if parameters is not None else list(model.parameters())
    optimiser = torch.optim.Adam(params, lr=lr)
    with torch_threads(1):
        model.train()
        for _ in range(epochs):
            order = torch.randperm(len(x), generator=generator)
            for start in range(0, len(x), batch_size):
                batch = order[start : start + batch_size]
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


def predict(model, x: torch.Tensor, *, batch_size: int = 512) -> np.ndarray:
    """Class labels (argmax of the logits) as an int array."""
    out = []
    with torch.no_grad(), torch_threads(1):
        for start in range(0, len(x), batch_size):
            out.append(model(x[start : start + batch_size]).argmax(1).numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def accuracy(model, x: torch.Tensor, y) -> float:
    """Fraction of ``x`` classified as ``y``."""
    return float(np.mean(predict(model, x) == np.asarray(y)))


@lru_cache(maxsize=8)
def _trained_state(arch: str, seed: int):
    splits = digit_splits(seed)
    model = make_classifier(arch, seed=seed)
    epochs = 30 if arch == "mlp" else 12
    train_classifier(model, splits.train_x, splits.train_y, epochs=epochs, seed=seed)
    return copy.deepcopy(model.state_dict())


def trained_classifier(arch: str = "mlp", seed: int = 0) -> nn.Module:
    """A classifier trained on ``digit_splits(seed).train`` (cached per process; a fresh copy)."""
    model = make_classifier(arch, seed=seed)
    model.load_state_dict(_trained_state(arch, seed))
    model.eval()
    return model
