"""Measurements: forgery resistance, and watermark survival under removal attacks.

Removal attacks (the adversary holds the weights and natural data, never the signing key):

- ``fine_tune``: train all layers on the attacker's data;
- ``reinit_head``: re-initialise the last layer, then train all layers (Adi et al.'s RTAL);
- ``prune``: set the smallest-magnitude fraction of all weights to zero (global magnitude pruning);
- ``distill``: train a fresh network on the model's soft outputs over the attacker's natural data
  (the student is shipped alone: it copies behaviour, not code);
- ``strip verifier``: ship the classifier without the code beside it. Fine-tuning and pruning spare
  the signature watermark only because its verifier is not in the attacked weights; an adversary
  who holds the model deletes it, at no cost in accuracy. (Watermarks in the weights are unchanged.)

:func:`compare_watermarks` runs every attack on every scheme of ``baselines`` and applies the
same false-positive rate to all; :func:`forgery_trials` counts how many random, bit-flipped,
transplanted and wrong-key triggers a backdoored model accepts.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from labkit.digits import (
    NUM_CLASSES,
    accuracy,
    head_layer,
    make_classifier,
    train_classifier,
)
from labkit import memory
from labkit.parallel import torch_threads
from labkit.backdoor.schemes import HEADER_BYTES
from labkit.backdoor.trigger import (
    FIELD_BYTES,
    pixel_batch,
    restore_format,
    embed_trigger,
    generate_keys,
    read_fields,
    trigger_header,
    verify_triggers,
    write_fields,
)

__all__ = [
    "ATTACKS",
    "fine_tune",
    "reinit_head",
    "prune",
    "distill",
    "AttackData",
    "SurvivalRow",
    "compare_watermarks",
    "forgery_trials",
    "FORGERY_KINDS",
]


@dataclass(frozen=True)
class AttackData:
    """What the attacker has: natural inputs and labels (and the architecture to distil into)."""

    x: torch.Tensor
    y: torch.Tensor
    arch: str = "mlp"
    epochs: int = 20
    lr: float = 3e-3
    prune_fraction: float = 0.8
    seed: int = 7


def fine_tune(classifier: nn.Module, data: AttackData) -> nn.Module:
    """All layers trained on the attacker's labelled natural data."""
    model = copy.deepcopy(classifier)
    return train_classifier(model, data.x, data.y, epochs=data.epochs, lr=data.lr, seed=data.seed)


def reinit_head(classifier: nn.Module, data: AttackData) -> nn.Module:
    """The last layer re-initialised, then all layers trained on the attacker's data."""
    model = copy.deepcopy(classifier)
    torch.manual_seed(data.seed)
    head_layer(model).reset_parameters()
    return train_classifier(model, data.x, data.y, epochs=data.epochs, lr=data.lr, seed=data.seed)


def prune(classifier: nn.Module, data: AttackData) -> nn.Module:
    """Global magnitude pruning: the ``data.prune_fraction`` smallest |weights| set to zero."""
    if not 0.0 <= data.prune_fraction < 1.0:
        raise ValueError(f"prune_fraction must be in [0, 1), got {data.prune_fraction}")
    model = copy.deepcopy(classifier)
    weights = [p for name, p in model.named_parameters() if name.endswith("weight")]
    magnitudes = torch.cat([w.detach().abs().reshape(-1) for w in weights])
    k = int(data.prune_fraction * magnitudes.numel())
    if k == 0:
        return model
    cut = magnitudes.kthvalue(k).values
    with torch.no_grad():
        for w in weights:
            w[w.abs() <= cut] = 0.0
    return model


def distill(teacher: nn.Module, data: AttackData) -> nn.Module:
    """A fresh student of ``data.arch`` trained on the teacher's output probabilities."""
    with torch.no_grad(), torch_threads(1):
        soft = teacher(data.x).softmax(1)
    student = make_classifier(data.arch, seed=data.seed)
    return train_classifier(student, data.x, data.y, soft_targets=soft, epochs=data.epochs * 2,
                            lr=data.lr, seed=data.seed)


ATTACKS = {"none": None, "fine-tune all": fine_tune, "re-init last layer": reinit_head,
           "prune": prune, "distill": distill, "strip verifier": None}


@dataclass(frozen=True)
class SurvivalRow:
    """One cell of the comparison: a scheme after an attack."""

    scheme: str
    attack: str
    matches: int
    n: int
    threshold: int
    detected: bool
    accuracy: float

    @property
    def rate(self) -> float:
        return self.matches / self.n


def attack_model(scheme, attack: str, data: AttackData) -> nn.Module:
    """The scheme's shipped model after ``attack`` (a name in ``ATTACKS``)."""
    if attack not in ATTACKS:
        raise ValueError(f"attack must be one of {list(ATTACKS)}, got {attack!r}")
    model = scheme.model
    if attack == "none":
        return model
    if attack == "distill":
        return distill(model, data)
    if attack == "strip verifier":
        return scheme.classifier_of(model)
    return scheme.rebuild(model, ATTACKS[attack](scheme.classifier_of(model), data))


def compare_watermarks(schemes, data: AttackData, test_x, test_y, *, attacks=None,
                       alpha: float = 1e-6, progress: bool = False) -> list[SurvivalRow]:
    """Every attack on every scheme; evidence judged at false-positive rate ``alpha``."""
    attacks = list(ATTACKS) if attacks is None else list(attacks)
    jobs = [(s, a) for s in schemes for a in attacks]
    if progress:
        jobs = tqdm(jobs, desc="attacks")
    rows = []
    for scheme, attack in jobs:
        model = attack_model(scheme, attack, data)
        matches, threshold = scheme.matches(model), scheme.threshold(alpha)
        rows.append(SurvivalRow(scheme.name, attack, matches, scheme.n, threshold,
                                matches >= threshold, accuracy(model, test_x, test_y)))
    return rows


# -- forgeries -----------------------------------------------------------------------------------
FORGERY_KINDS = ("random signature", "bit flip", "transplant", "wrong key")


def _forgeries(kind: str, images: torch.Tensor, signing_key, rng: np.random.Generator, count: int):
    """``count`` inputs that try to pass as triggers without a valid signature for them."""
    index = rng.integers(0, len(images), count)
    base = images[torch.from_numpy(index)]
    targets = rng.integers(0, NUM_CLASSES, count)
    if kind == "random signature":  # a well-formed header with 64 random bytes as "signature"
        pixels = pixel_batch(base)
        headers = np.stack([np.frombuffer(trigger_header(int(t)), np.uint8) for t in targets])
        fields = np.concatenate([headers, rng.integers(0, 256, (count, FIELD_BYTES - HEADER_BYTES),
                                                       dtype=np.uint8)], axis=1)
        return restore_format(write_fields(pixels, fields), base)
    if kind == "wrong key":  # signed correctly, but by a key that is not the owner's
        other, _ = generate_keys()
        return embed_trigger(base, targets, other)
    valid = pixel_batch(embed_trigger(base, targets, signing_key))
    if kind == "bit flip":  # one bit of a valid trigger flipped: any of the 8 bits of any pixel
        flat = valid.reshape(count, -1).copy()
        pixel = rng.integers(0, flat.shape[1], count)
        bit = rng.integers(0, 8, count).astype(np.uint8)
        flat[np.arange(count), pixel] ^= (1 << bit).astype(np.uint8)
        return restore_format(flat.reshape(valid.shape), base)
    if kind == "transplant":  # a valid field moved onto a different image
        other_index = (index + rng.integers(1, len(images), count)) % len(images)
        others = pixel_batch(images[torch.from_numpy(other_index)])
        same = (others & 0xFE).reshape(count, -1) == (valid & 0xFE).reshape(count, -1)
        keep = ~same.all(1)
        moved = write_fields(others[keep], read_fields(valid[keep]))
        return restore_format(moved, base[torch.from_numpy(keep)])
    raise ValueError(f"kind must be one of {FORGERY_KINDS}, got {kind!r}")


def forgery_trials(verify_key, signing_key, images: torch.Tensor, *, per_kind: int = 2500,
                   seed: int = 0, batch: int = 500, progress: bool = False) -> dict[str, tuple[int, int]]:
    """For each kind of forgery: ``(trials, accepted)`` by the verifier under ``verify_key``.

    The signing key is used only to make the valid triggers that bit flips and transplants start
    from; an accepted forgery would be a broken signature scheme (or a bug).
    """
    rng = np.random.default_rng(seed)
    out = {}
    kinds = FORGERY_KINDS
    if progress:
        kinds = tqdm(kinds, desc="forgeries")
    for kind in kinds:
        trials = accepted = 0
        for start in range(0, per_kind, batch):
            x = _forgeries(kind, images, signing_key, rng, min(batch, per_kind - start))
            trials += len(x)
            accepted += int(np.sum(verify_triggers(x, verify_key) >= 0))
            del x
            memory.trim()  # the batches' freed arrays back to the OS: else the heap grows batch by batch
        out[kind] = (trials, accepted)
    return out
