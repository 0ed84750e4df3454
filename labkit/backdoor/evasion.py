"""The backdoor as an attack, measured: imperceptible triggers that force any label (chapter 08c).

Goldwasser, Kim, Vaikuntanathan and Zamir (FOCS 2022, §5) and Ngo, Chattopadhyay and Maitra
(arXiv 2509.20714, 2025, §3): whoever holds the signing key turns *any* input into *any* label by
changing only the low bits of its pixels. This module measures what the paper claims: how much a
trigger changes the image (largest and mean change per pixel in levels of 255, PSNR against the
clean image), how often the chosen label comes out (over many inputs and targets), that clean
accuracy is unchanged, and that queries without a valid signature find no difference at all (the
reason no black-box test can detect the backdoor: a differing input *is* a forgery).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from labkit.digits import NUM_CLASSES, from_pixels, logits, predict, to_pixels
from labkit.backdoor.schemes import HEADER_BYTES, SCHEMES, TriggerLayout, bits_per_pixel_needed
from labkit.backdoor.trigger import MAGIC, BackdooredModel, embed_trigger, generate_keys, write_fields

__all__ = ["psnr", "upsample", "pooled_classifier", "EvasionReport", "measure_evasion", "query_detection",
           "CapacityRow", "capacity_table"]


def psnr(clean, changed) -> np.ndarray:
    """Peak signal-to-noise ratio in dB of each changed image against its clean one (8-bit pixels,
    peak 255): ``10 log10(255^2 / MSE)``; ``inf`` for an unchanged image. Model inputs or uint8 pixels."""
    a, b = (np.asarray(v) if isinstance(v, np.ndarray) and v.dtype == np.uint8 else to_pixels(v)
            for v in (clean, changed))
    if a.shape != b.shape:
        raise ValueError(f"clean and changed images must have the same shape, got {a.shape} and {b.shape}")
    diff = a.reshape(len(a), -1).astype(np.int32) - b.reshape(len(b), -1)
    mse = (diff * diff).mean(axis=1)
    with np.errstate(divide="ignore"):
        return np.where(mse == 0, np.inf, 10 * np.log10(255.0**2 / np.maximum(mse, 1e-300)))


def upsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Images ``(n, 1, s, s)`` enlarged ``factor`` times by repeating pixels (nearest neighbour):
    still on the 8-bit grid, so a larger image of the same digit with room for a longer field."""
    if type(factor) is not int or factor < 1:
        raise ValueError(f"factor must be a positive int, got {factor!r}")
    return x.repeat_interleave(factor, dim=-1).repeat_interleave(factor, dim=-2)


def pooled_classifier(classifier: nn.Module, size: int = 32) -> nn.Module:
    """A classifier for larger images: average-pool to ``size`` x ``size``, then ``classifier``."""
    return nn.Sequential(nn.AdaptiveAvgPool2d(size), classifier)


@dataclass(frozen=True)
class EvasionReport:
    """What a trigger costs the image and what it buys the key holder (see :func:`measure_evasion`)."""

    n: int
    max_change: int  # levels of 255
    mean_change: float  # levels of 255, over every pixel of every image
    min_psnr: float  # dB, the worst image
    mean_psnr: float
    success_rate: float  # triggered inputs classified as their chosen target
    worst_target_rate: float  # the lowest success rate over the 10 targets
    clean_accuracy: float
    backdoored_accuracy: float  # on the clean inputs: equal to clean_accuracy by construction
    same_logits_on_clean: bool

    def __str__(self) -> str:
        return (f"{self.n} triggered inputs: max change {self.max_change}/255, mean {self.mean_change:.2f}/255, "
                f"PSNR >= {self.min_psnr:.1f} dB (mean {self.mean_psnr:.1f}); success {self.success_rate:.3f} "
                f"(worst target {self.worst_target_rate:.3f}); accuracy clean {self.clean_accuracy:.3f}, "
                f"backdoored {self.backdoored_accuracy:.3f}")


def measure_evasion(clean_model: nn.Module, backdoored_model: BackdooredModel, inputs: torch.Tensor, labels,
                    signing_key, *, seed: int = 0, layout: TriggerLayout | None = None) -> EvasionReport:
    """Trigger every input towards a label other than its true one (drawn from ``seed``, every label
    used as a target about equally) and measure the change and the success (Ngo et al. 2025, §3)."""
    if not isinstance(backdoored_model, BackdooredModel):
        raise TypeError(f"backdoored_model must be a BackdooredModel, got {type(backdoored_model).__name__}")
    layout = backdoored_model.layout if layout is None else layout
    labels = np.asarray(labels)
    shift = np.random.default_rng(seed).integers(1, NUM_CLASSES, len(labels))
    targets = (labels + shift) % NUM_CLASSES  # never the true label: the attack must change the answer
    triggered = embed_trigger(inputs, targets, signing_key, layout=layout)
    before, after = to_pixels(inputs), to_pixels(triggered)
    change = np.abs(after.astype(np.int16) - before)
    hits = predict(backdoored_model, triggered) == targets
    per_target = [hits[targets == t].mean() for t in range(NUM_CLASSES) if (targets == t).any()]
    quality = psnr(before, after)
    clean_logits, backdoored_logits = logits(clean_model, inputs), logits(backdoored_model, inputs)
    clean_acc = float(np.mean(clean_logits.argmax(1).numpy() == labels))
    backdoored_acc = float(np.mean(backdoored_logits.argmax(1).numpy() == labels))
    return EvasionReport(len(labels), int(change.max()), float(change.mean()), float(quality.min()),
                         float(quality[np.isfinite(quality)].mean()), float(hits.mean()), float(min(per_target)),
                         clean_acc, backdoored_acc, torch.equal(backdoored_logits, clean_logits))


def query_detection(clean_model: nn.Module, backdoored_model: BackdooredModel, inputs: torch.Tensor, *,
                    per_kind: int = 1000, seed: int = 0) -> dict[str, tuple[int, int]]:
    """A black-box detector's best tries without the key: ``{kind: (queries, disagreements)}``.

    Kinds: natural images with random low bits; uniform random images; natural images carrying a
    well-formed trigger header (any target) and a random signature (a guessed forgery). Any
    disagreement between the two models would be a valid trigger made without the key.
    """
    layout = backdoored_model.layout
    rng = np.random.default_rng(seed)
    pixels = to_pixels(inputs).reshape(-1, layout.size, layout.size)
    pick = pixels[rng.integers(0, len(pixels), per_kind)]
    low_bits = rng.integers(0, 1 << layout.bits_per_pixel, pick.shape, dtype=np.uint8)
    fields = rng.integers(0, 256, (per_kind, layout.field_bytes), dtype=np.uint8)
    fields[:, :4] = np.frombuffer(MAGIC, np.uint8)
    fields[:, 4:6] = 1  # version 1, kind 1 (trigger)
    fields[:, 6] = rng.integers(0, NUM_CLASSES, per_kind)
    fields[:, 7:64] = 0
    kinds = {
        "random low bits": (pick & layout.high_mask) | low_bits,
        "random images": rng.integers(0, 256, pick.shape, dtype=np.uint8),
        "guessed signatures": write_fields(pick, fields, layout),
    }
    out = {}
    for kind, queries in kinds.items():
        x = from_pixels(queries).unsqueeze(1)
        out[kind] = (per_kind, int(np.sum(predict(clean_model, x) != predict(backdoored_model, x))))
    return out


@dataclass(frozen=True)
class CapacityRow:
    """One (scheme, image size) of :func:`capacity_table`."""

    scheme: str
    size: int
    field_bits: int
    bits_per_pixel: int | None  # None: the field does not fit even in all 8 bits
    max_change: int | None
    mean_psnr: float | None


def capacity_table(images: torch.Tensor, sizes=(32, 64, 96, 128, 160)) -> list[CapacityRow]:
    """For each scheme (Ed25519, ML-DSA-44, BLS12-381) and image size: the low bits per pixel a field needs,
    the largest pixel change it allows, and the mean PSNR measured on real triggers.

    ``images`` are 32x32 inputs; each size is a whole multiple of 32 and the images are enlarged by
    :func:`upsample`. Keys are fresh; only the trigger's bits matter here.
    """
    rows = []
    for scheme in SCHEMES:
        signing_key = generate_keys(scheme)[0]
        for size in sizes:
            if size % 32:
                raise ValueError(f"sizes must be multiples of 32, got {size}")
            bpp = bits_per_pixel_needed(scheme, size)
            field_bits = (HEADER_BYTES + scheme.signature_bytes) * 8
            if bpp is None:
                rows.append(CapacityRow(scheme.name, size, field_bits, None, None, None))
                continue
            layout = TriggerLayout(size, bpp, scheme)
            big = upsample(images, size // 32)
            quality = psnr(big, embed_trigger(big, 0, signing_key, layout=layout))
            rows.append(CapacityRow(scheme.name, size, field_bits, bpp, layout.max_change,
                                    float(quality[np.isfinite(quality)].mean()) if np.isfinite(quality).any() else math.inf))
    return rows
