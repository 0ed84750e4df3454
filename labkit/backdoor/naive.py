"""The first, natural forms of the ownership judge and the leak tracer. UNSAFE: kept to be attacked.

Chapter 08 builds them, breaks them (``labkit.backdoor.attackers``) and replaces them by the sound
versions of :mod:`labkit.backdoor.protocols`. What goes wrong:

- :func:`naive_judge_ownership_UNSAFE` checks only that the claim's triggers verify under the key
  the claim names. The claimant chooses the targets, so a claimant with a fresh key who first asks
  the suspect and then signs the labels it got "proves" ownership of any model; and the target is
  in cleartext, so a key-less model that answers it matches every honest claim.
- :class:`NaiveLicensor_UNSAFE` expects each copy to answer the cleartext target of its own
  triggers: a leaker who answers the cleartext targets of everybody else's triggers gets them all
  accused.

Keys are fresh (OS CSPRNG): the flaws are in the protocols, not in the keys.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from labkit.digits import from_pixels, to_pixels
from labkit.backdoor.protocols import (
    Oracle,
    TraceResult,
    ask_suspect,
    draw_images,
    draw_labels,
    detection_threshold,
)
from labkit.backdoor.schemes import ED25519
from labkit.backdoor.trigger import (
    BackdooredModel,
    embed_trigger,
    generate_keys,
    verify_key_bytes,
    verify_triggers,
)

__all__ = ["OwnershipClaim", "NaiveVerdict", "naive_claim_UNSAFE", "naive_judge_ownership_UNSAFE",
           "NaiveLicensor_UNSAFE"]


@dataclass(frozen=True)
class OwnershipClaim:
    """What the claimant hands the naive judge: signed queries, their targets and a public key."""

    queries: torch.Tensor
    targets: np.ndarray
    verify_key: bytes


@dataclass(frozen=True)
class NaiveVerdict:
    owned: bool
    matches: int
    n: int
    threshold: int
    signatures_valid: bool

    def __str__(self) -> str:
        if not self.signatures_valid:
            return "claim rejected: a query does not carry a valid signature under the claimed key"
        return (f"{self.matches}/{self.n} queries answered the signed target (threshold {self.threshold}): "
                f"{'OWNED' if self.owned else 'not shown'}")


def naive_claim_UNSAFE(signing_key, images, n: int = 32) -> OwnershipClaim:
    """The honest owner's naive claim: ``n`` triggers on random images with random targets."""
    key = ED25519.signing_key(signing_key)
    pixels = draw_images(images, n)
    targets = draw_labels(n)
    queries = embed_trigger(from_pixels(pixels).unsqueeze(1), targets, key)
    return OwnershipClaim(queries, targets, verify_key_bytes(key))


def naive_judge_ownership_UNSAFE(claim: OwnershipClaim, suspect: Oracle, *, alpha: float = 1e-6) -> NaiveVerdict:
    """UNSAFE: valid signatures under the claimed key, then count hits against Binomial(n, 1/10)."""
    n = len(claim.targets)
    threshold = detection_threshold(n, alpha=alpha)
    if not np.array_equal(verify_triggers(claim.queries, claim.verify_key), claim.targets):
        return NaiveVerdict(False, 0, n, threshold, False)
    matches = int(np.sum(ask_suspect(suspect, to_pixels(claim.queries).reshape(n, 32, 32)) == claim.targets))
    return NaiveVerdict(matches >= threshold, matches, n, threshold, True)


class NaiveLicensor_UNSAFE:
    """UNSAFE: each copy verifies its licensee's key and identity and answers the cleartext target."""

    def __init__(self, classifier: nn.Module, images) -> None:
        self.classifier = classifier
        self.images = images
        self.keys: dict[str, object] = {}

    def issue(self, licensee: str) -> BackdooredModel:
        if not isinstance(licensee, str) or not licensee or licensee in self.keys:
            raise ValueError(f"licensee must be a new, non-empty name, got {licensee!r}")
        self.keys[licensee] = generate_keys()[0]
        return BackdooredModel(copy.deepcopy(self.classifier), self.keys[licensee].public_key(), identity=licensee)

    def trace_report(self, suspect: Oracle, *, n: int = 16, alpha: float = 1e-6) -> TraceResult:
        names = list(self.keys)
        threshold = detection_threshold(n, alpha=alpha / len(names))
        matches = {}
        for name in names:
            targets = draw_labels(n)
            queries = embed_trigger(from_pixels(draw_images(self.images, n)).unsqueeze(1), targets,
                                    self.keys[name], identity=name)
            matches[name] = int(np.sum(ask_suspect(suspect, to_pixels(queries).reshape(n, 32, 32)) == targets))
        return TraceResult(names, matches, n, threshold, alpha, [m for m in names if matches[m] >= threshold])

    def trace(self, suspect: Oracle, *, n: int = 16, alpha: float = 1e-6) -> list[str]:
        return self.trace_report(suspect, n=n, alpha=alpha).accused
