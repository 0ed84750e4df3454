"""Selective encryption: which tensors matter, encrypting only those, and a CoreLocker-style key.

The notes' recipe: perturb each tensor (randomise or zero it), measure the quality drop, encrypt
the few tensors whose loss breaks the model. CoreLocker (Wang et al., IEEE S&P 2024,
arXiv:2303.12397) goes further: withhold a small set of the most important weights (by
BatchNorm |gamma| per channel, or by magnitude) as the *key*; the public model keeps everything
else and is nearly useless without them.

Everything here works on the small digit classifier of :func:`train_digits_classifier` (8x8
scikit-learn digits, trained in about a second, through :mod:`labkit.digits`), so notebooks can
run it live; accuracies are :func:`labkit.digits.accuracy`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from labkit import digits

__all__ = [
    "DigitsTask",
    "train_digits_classifier",
    "sensitivity",
    "critical_tensors",
    "withhold",
    "restore",
    "key_size",
]


@dataclass
class DigitsTask:
    """A trained classifier and its held-out test set."""

    model: nn.Module
    x_test: torch.Tensor
    y_test: torch.Tensor
    x_train: torch.Tensor
    y_train: torch.Tensor


def train_digits_classifier(seed: int = 0, epochs: int = 100) -> DigitsTask:
    """Train :class:`labkit.digits.BatchNormMLP` on the 8x8 digits (70% / 30% stratified split,
    full-batch Adam, one thread: for matrices this small extra threads only add synchronisation)."""
    x, y = digits.load_digits_images(digits.NATIVE_SIZE)
    train, test = digits.stratified_split(y.numpy(), 0.3, seed)
    model = digits.make_classifier("bn_mlp", seed=seed, size=digits.NATIVE_SIZE)
    digits.train_classifier(model, x[train], y[train], epochs=epochs, lr=0.02, batch_size=None)
    return DigitsTask(model, x[test], y[test], x[train], y[train])


def _perturbed(tensor: torch.Tensor, mode: str, gen: torch.Generator) -> torch.Tensor:
    if mode == "zero":
        return torch.zeros_like(tensor)
    if mode == "randomize":  # same mean and spread, no information: what an attacker can guess
        std = tensor.float().std() if tensor.numel() > 1 else tensor.float().abs().mean()
        noise = torch.randn(tensor.shape, generator=gen) * std + tensor.float().mean()
        return noise.to(tensor.dtype)
    raise ValueError(f"mode must be 'randomize' or 'zero', got {mode!r}")


def sensitivity(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, mode: str = "randomize",
                seed: int = 0) -> dict[str, float]:
    """Accuracy drop when each floating-point tensor of the state_dict alone is replaced.

    ``mode="randomize"``: random values with the tensor's mean and standard deviation;
    ``mode="zero"``: zeros. Integer buffers (BatchNorm's step counter) are skipped.
    """
    base = digits.accuracy(model, x, y)
    gen = torch.Generator().manual_seed(seed)
    state = model.state_dict()
    drops = {}
    for name, tensor in state.items():
        if not tensor.is_floating_point():
            continue
        trial = dict(state)
        trial[name] = _perturbed(tensor, mode, gen)
        drops[name] = base - digits.accuracy(model, x, y, trial)
    return drops


def critical_tensors(drops: dict[str, float], threshold: float = 0.2) -> list[str]:
    """Names whose perturbation costs at least ``threshold`` accuracy, most damaging first."""
    if not 0 <= threshold <= 1:
        raise ValueError(f"threshold must be an accuracy drop in [0, 1], got {threshold}")
    return sorted((n for n, d in drops.items() if d >= threshold), key=lambda n: -drops[n])


def withhold(model: nn.Module, fraction: float = 0.01, *, by: str = "magnitude"):
    """Split a model into a public locked state and a small secret key (CoreLocker-style).

    ``by="magnitude"``: the ``fraction`` largest-|w| entries of every weight matrix;
    ``by="channel"``: the ``fraction`` of hidden channels with the largest BatchNorm |gamma|
    (at least one), withholding their incoming weights, bias and BatchNorm parameters
    (CoreLocker's criterion). Withheld entries are zero in the locked state.
    Returns ``(locked_state, key)``; ``key`` maps ``"<tensor>.index"``/``"<tensor>.value"`` to
    tensors, so it can itself be sealed with :func:`labkit.weights.seal`.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    masks: dict[str, torch.Tensor] = {}
    if by == "magnitude":
        for name, t in state.items():
            if name.endswith("weight") and t.ndim == 2:
                k = max(1, round(fraction * t.numel()))
                idx = t.abs().reshape(-1).topk(k).indices
                masks[name] = idx
    elif by == "channel":
        modules = dict(model.named_modules())
        previous_linear = None
        for mname, module in model.named_modules():
            if isinstance(module, nn.Linear):
                previous_linear = mname
            if isinstance(module, nn.BatchNorm1d) and previous_linear is not None:
                gamma = module.weight.detach().abs()
                k = max(1, round(fraction * gamma.numel()))
                channels = gamma.topk(k).indices
                lin = modules[previous_linear]
                rows = (channels[:, None] * lin.in_features
                        + torch.arange(lin.in_features)[None, :]).reshape(-1)
                masks[f"{previous_linear}.weight"] = rows
                for p in ("bias",):
                    masks[f"{previous_linear}.{p}"] = channels
                for p in ("weight", "bias"):
                    masks[f"{mname}.{p}"] = channels
    else:
        raise ValueError(f"by must be 'magnitude' or 'channel', got {by!r}")
    key = {}
    for name, idx in masks.items():
        flat = state[name].reshape(-1)
        key[f"{name}.index"] = idx.clone()
        key[f"{name}.value"] = flat[idx].clone()
        flat[idx] = 0
    return state, key


def restore(locked_state: dict, key: dict) -> dict:
    """Put the withheld values of ``key`` back into a copy of ``locked_state``."""
    state = {k: v.clone() for k, v in locked_state.items()}
    for kname, idx in key.items():
        if not kname.endswith(".index"):
            continue
        name = kname[: -len(".index")]
        if name not in state or f"{name}.value" not in key:
            raise ValueError(f"key entry {kname!r} does not match the locked state")
        state[name].reshape(-1)[idx] = key[f"{name}.value"]
    return state


def key_size(key: dict, state: dict) -> float:
    """Fraction of the model's floating-point values that the key withholds."""
    withheld = sum(v.numel() for k, v in key.items() if k.endswith(".value"))
    total = sum(t.numel() for t in state.values() if t.is_floating_point())
    return withheld / total
