"""Three watermark schemes behind one interface, so the same attacks and thresholds apply to all.

- :class:`SignatureWatermark`: the signature backdoor of ``trigger`` (black-box evidence);
- :class:`TriggerSetWatermark`: Adi, Baum, Cisse, Pinkas, Keshet, "Turning your weakness into a
  strength", USENIX Security 2018: the model is trained to give secret random labels to a set of
  abstract images (here uniform noise); evidence = how many of them it still labels so;
- :class:`WeightWatermark`: Uchida, Nagai, Sakazawa, Satoh, "Embedding watermarks into deep neural
  networks", ICMR 2017: a regulariser writes ``T`` bits into ``sign(X w)``, where ``w`` is one
  layer's weights averaged over its output units and ``X`` a secret Gaussian matrix; evidence = how
  many bits still read correctly (white box: needs the weights).

Every scheme states ``n`` (evidence size) and ``p0`` (the chance of one match for a model that
does not carry the watermark), so ``protocols.detection_threshold(n, p0=p0, alpha=...)`` gives a
decision rule with the same false-positive rate for all three.
"""
from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from labkit.digits import (
    NUM_CLASSES,
    DigitSplits,
    from_pixels,
    make_classifier,
    predict,
    train_classifier,
)
from labkit.backdoor.protocols import ModelOwner, detection_threshold
from labkit.backdoor.trigger import BackdooredModel

__all__ = [
    "WatermarkScheme",
    "SignatureWatermark",
    "TriggerSetWatermark",
    "WeightWatermark",
    "watermark_layer",
]


class WatermarkScheme:
    """A watermarked model plus the owner's secret evidence test.

    ``model`` is what the owner ships; an attacker edits ``classifier_of(model)`` (the weights) and
    the result is ``rebuild(model, classifier)``; ``matches(model)`` counts the evidence.
    """

    name = "scheme"
    p0 = 1 / NUM_CLASSES
    n = 0
    black_box = True
    model: nn.Module

    def classifier_of(self, model: nn.Module) -> nn.Module:
        return model

    def rebuild(self, model: nn.Module, classifier: nn.Module) -> nn.Module:
        return classifier

    def matches(self, model: nn.Module) -> int:
        raise NotImplementedError

    def threshold(self, alpha: float = 1e-6) -> int:
        return detection_threshold(self.n, p0=self.p0, alpha=alpha)


class SignatureWatermark(WatermarkScheme):
    """The backdoored model and ``n`` signed queries with secret random targets."""

    name = "signature backdoor"

    def __init__(self, classifier: nn.Module, signing_key, images: torch.Tensor, *, n: int = 32,
                 seed: int = 0) -> None:
        owner = ModelOwner(signing_key)
        self.model = owner.watermark(copy.deepcopy(classifier))
        rng = np.random.default_rng(seed)  # chooses the evidence images and targets; no key
        self.targets = rng.integers(0, NUM_CLASSES, n)
        self.queries = owner.respond(images[np.sort(rng.permutation(len(images))[:n])], self.targets)
        self.n = n

    def classifier_of(self, model):
        return model.classifier if isinstance(model, BackdooredModel) else model

    def rebuild(self, model, classifier):
        return model.with_classifier(classifier) if isinstance(model, BackdooredModel) else classifier

    def matches(self, model) -> int:
        return int(np.sum(predict(model, self.queries) == self.targets))


class TriggerSetWatermark(WatermarkScheme):
    """Adi et al. 2018: train on the data plus ``n`` noise images with secret random labels."""

    name = "trigger set (Adi 2018)"

    def __init__(self, splits: DigitSplits, *, arch: str = "mlp", n: int = 32, repeats: int = 8,
                 epochs: int = 30, seed: int = 0) -> None:
        rng = np.random.default_rng(seed + 1000)
        self.n = n
        self.images = from_pixels(rng.integers(0, 256, (n, 1, 32, 32), dtype=np.uint8))
        self.labels = torch.from_numpy(rng.integers(0, NUM_CLASSES, n))
        x = torch.cat([splits.train_x] + [self.images] * repeats)
        y = torch.cat([splits.train_y] + [self.labels] * repeats)
        self.model = train_classifier(make_classifier(arch, seed=seed), x, y, epochs=epochs, seed=seed)

    def matches(self, model) -> int:
        return int(np.sum(predict(model, self.images) == self.labels.numpy()))


def watermark_layer(model: nn.Module) -> nn.Module:
    """The first Linear/Conv2d layer with at least 128 weights per output unit (Uchida's carrier)."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)) and m.weight[0].numel() >= 128:
            return m
    raise TypeError("model has no Linear/Conv2d layer with >= 128 weights per output unit")


class WeightWatermark(WatermarkScheme):
    """Uchida et al. 2017: ``T`` bits in ``sign(X mean_out(W))`` via a BCE regulariser."""

    name = "weight (Uchida 2017)"
    p0 = 0.5
    black_box = False

    def __init__(self, splits: DigitSplits, *, arch: str = "mlp", bits: int = 64, strength: float = 0.1,
                 epochs: int = 30, seed: int = 0) -> None:
        model = make_classifier(arch, seed=seed)
        size = watermark_layer(model).weight[0].numel()
        gen = torch.Generator().manual_seed(seed + 2000)
        self.projection = torch.randn(bits, size, generator=gen)
        self.bits = torch.randint(0, 2, (bits,), generator=gen).float()
        self.n = bits

        def regulariser(m):
            logits = self.projection @ self._carrier(m)
            return strength * nn.functional.binary_cross_entropy_with_logits(logits, self.bits)

        self.model = train_classifier(model, splits.train_x, splits.train_y, epochs=epochs, seed=seed,
                                      extra_loss=regulariser)

    @staticmethod
    def _carrier(model) -> torch.Tensor:
        weight = watermark_layer(model).weight
        return weight.reshape(weight.shape[0], -1).mean(0)

    def extract(self, model) -> np.ndarray:
        """The bits read from the weights: ``X mean_out(W) > 0``."""
        with torch.no_grad():
            return (self.projection @ self._carrier(self.classifier_of(model)) > 0).numpy().astype(np.uint8)

    def matches(self, model) -> int:
        return int(np.sum(self.extract(model) == self.bits.numpy()))
