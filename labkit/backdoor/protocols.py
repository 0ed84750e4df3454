"""Ownership and leak tracing with the signature backdoor, built to survive their attackers.

Ngo, Chattopadhyay and Maitra (arXiv 2509.20714, 2025, §4 and §6) turn the signature backdoor into
an ownership watermark and an IP tracker; their natural form (``labkit.backdoor.naive``) falls to
adaptive targets, echo models and framing leakers. The versions here:

- :func:`judge_ownership`: a challenge-response with controls: the judge draws images and targets
  with a CSPRNG, the claimant signs exactly those, and triggers under the judge's throwaway keys
  go in the same shuffled batch; a unique signature (BLS12-381, :data:`schemes.OWNERSHIP_LAYOUT`)
  by default. Its docstring states the bound and what it assumes.
- :class:`Licensor`: tracing; every copy answers a valid trigger with HMAC-SHA256 under its own
  secret response key, so a leaker holding one copy gets an innocent accused with probability
  <= alpha; any scheme works (the answer is the secret PRF, not the signature).
- :func:`label_oracle` (black-box access) and :class:`ModelOwner` (the honest claimant).

Why each step is needed, the proof sketch and the limits (removal, key custody) are taught in
notebooks 08 (section 3) and 08b (sections 5-7). No key here is derived from a seed: every key
comes from the OS CSPRNG.
"""
from __future__ import annotations

import copy
import math
import os
import secrets
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

from labkit.digits import NUM_CLASSES, from_pixels, predict, to_pixels
from labkit.backdoor.schemes import (DEFAULT_LAYOUT, ED25519, HEADER_BYTES, OWNERSHIP_LAYOUT, TriggerLayout,
                                     scheme_of)
from labkit.backdoor.nonce_signing import sign_with_throwaway_key
from labkit.backdoor.trigger import (
    RESPONSE_KEY_BYTES,
    BackdooredModel,
    pixel_batch,
    identity_bytes,
    content_bytes,
    embed_trigger,
    generate_keys,
    read_fields,
    signed_message,
    trigger_header,
    verify_triggers,
    write_fields,
)

__all__ = [
    "binomial_tail",
    "exchangeable_tail",
    "detection_threshold",
    "TARGET_HIT_NULL",
    "label_oracle",
    "OwnershipVerdict",
    "ModelOwner",
    "judge_ownership",
    "Licensor",
    "TraceResult",
]

Oracle = Callable[[torch.Tensor], np.ndarray]
TARGET_HIT_NULL = 1 / (NUM_CLASSES - 1)  # a target drawn among the 9 labels the suspect did not give


# -- statistics ----------------------------------------------------------------------------------
def binomial_tail(n: int, k: int, p: float) -> float:
    """``P[X >= k]`` for ``X ~ Binomial(n, p)``, summed exactly term by term."""
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be a probability in [0, 1], got {p}")
    k = max(int(k), 0)
    return float(sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1)))


def exchangeable_tail(n: int, claim_hits: int, control_hits: int) -> float:
    """``P[claim hits >= claim_hits]`` given the total, when the n claim queries are a uniformly
    random half of the 2n queries and the suspect treats both halves alike (hypergeometric tail).

    This bound holds whatever the suspect computes from a query (echoing a field, hashing the
    bits), as long as it cannot tell the claimant's signatures from the judge's.
    """
    if not 0 <= claim_hits <= n or not 0 <= control_hits <= n:
        raise ValueError(f"hits must be between 0 and n = {n}, got {claim_hits}, {control_hits}")
    total = claim_hits + control_hits
    favourable = sum(math.comb(total, i) * math.comb(2 * n - total, n - i)
                     for i in range(claim_hits, min(total, n) + 1))
    return favourable / math.comb(2 * n, n)  # int / int: correctly rounded


def detection_threshold(n: int, *, p0: float = 1 / NUM_CLASSES, alpha: float = 1e-6) -> int:
    """The fewest matches out of ``n`` whose chance under Binomial(n, p0) is at most ``alpha``.

    Deciding "watermarked" from this many matches wrongly accuses a model whose answers ignore the
    secret with probability at most ``alpha``. Raises ValueError when even ``n`` matches are not
    enough.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    for k in range(n + 1):
        if binomial_tail(n, k, p0) <= alpha:
            return k
    raise ValueError(
        f"{n} queries cannot reach false-positive rate {alpha}: even {n}/{n} matches has "
        f"probability {p0 ** n:.3g}; use more queries"
    )


def label_oracle(model: nn.Module) -> Oracle:
    """Black-box access to ``model``: a function from inputs to class labels, nothing more."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch nn.Module, got {type(model).__name__}")

    def oracle(x: torch.Tensor) -> np.ndarray:
        return predict(model, x)

    return oracle


def ask_suspect(suspect: Oracle, pixels: np.ndarray) -> np.ndarray:
    """Send canonical queries (8-bit grid) to the suspect in a CSPRNG-shuffled order; labels back."""
    if isinstance(suspect, nn.Module):
        suspect = label_oracle(suspect)
    if not callable(suspect):
        raise TypeError(f"suspect must map a batch of images to labels, got {type(suspect).__name__}")
    order = np.array(secrets.SystemRandom().sample(range(len(pixels)), len(pixels)), dtype=np.int64)
    answers = np.asarray(suspect(from_pixels(pixels[order]).unsqueeze(1))).reshape(-1)
    if len(answers) != len(pixels):
        raise ValueError(f"the suspect answered {len(answers)} labels for {len(pixels)} queries")
    labels = np.full(len(pixels), -1, dtype=np.int64)
    labels[order] = answers.astype(np.int64)
    return labels


def draw_images(images, count: int, layout: TriggerLayout = DEFAULT_LAYOUT) -> np.ndarray:
    """``count`` distinct images drawn with the OS CSPRNG, as pixel bytes ``(count, s, s)``."""
    pixels = pixel_batch(images, layout)
    if not 0 < count <= len(pixels):
        raise ValueError(f"need {count} distinct images, got {len(pixels)}")
    return pixels[secrets.SystemRandom().sample(range(len(pixels)), count)]


def draw_labels(count: int) -> np.ndarray:
    return np.array([secrets.randbelow(NUM_CLASSES) for _ in range(count)], dtype=np.int64)


def _check_n(n, minimum: int = 1) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < minimum:
        raise ValueError(f"n must be an int >= {minimum}, got {n!r}")
    return int(n)


# -- 1. ownership --------------------------------------------------------------------------------
@dataclass(frozen=True)
class OwnershipVerdict:
    """The judge's decision and the numbers behind it.

    ``false_positive_bound``: the larger of the binomial tail of the claim hits (a model ignoring
    the targets: hit rate 1/9) and their exchangeable tail against the controls (any key-less model
    when the scheme is unique, see :func:`judge_ownership`; with Ed25519 only against a claimant
    grinding at most ``control_tries`` random nonces). A control counts as a hit when any of its
    ``control_tries`` copies hit.
    """

    owned: bool
    n: int
    claim_matches: int
    control_matches: int
    threshold: int
    alpha: float
    false_positive_bound: float
    reason: str
    control_tries: int = 1

    def __str__(self) -> str:
        if self.reason != "judged":
            return f"claim rejected: {self.reason}"
        verdict = "OWNED" if self.owned else "not owned"
        return (f"claim {self.claim_matches}/{self.n}, controls {self.control_matches}/{self.n} "
                f"(a hit on any of {self.control_tries} signatures) "
                f"threshold {self.threshold}; false-positive bound {self.false_positive_bound:.2g} "
                f"<= {self.alpha:g}? -> {verdict}")


class ModelOwner:
    """The owner: holds the signing key; watermarks its model and answers a judge's challenges."""

    def __init__(self, signing_key, *, layout: TriggerLayout | None = None) -> None:
        if layout is None:  # the key's scheme: BLS12-381 keys get the judge's layout, Ed25519 the chapter's
            layout = OWNERSHIP_LAYOUT if scheme_of(signing_key) is OWNERSHIP_LAYOUT.scheme else DEFAULT_LAYOUT
        if not isinstance(layout, TriggerLayout):
            raise TypeError(f"layout must be a schemes.TriggerLayout, got {type(layout).__name__}")
        self.layout = layout
        self.signing_key = layout.scheme.signing_key(signing_key)

    @property
    def verify_key(self) -> bytes:
        return self.layout.scheme.public_bytes(self.signing_key)

    def watermark(self, classifier: nn.Module) -> BackdooredModel:
        """The model the owner deploys: ``classifier`` with the owner's verifier beside it."""
        return BackdooredModel(classifier, self.verify_key, layout=self.layout)

    def respond(self, images, targets):
        """Triggers for exactly the challenged images and targets, signed with the owner's key."""
        return embed_trigger(images, np.asarray(targets), self.signing_key, layout=self.layout)


def _claim_fields(response, challenge: np.ndarray, targets: np.ndarray, verify_key: bytes,
                  layout: TriggerLayout = DEFAULT_LAYOUT):
    """The claimant's fields if every one is the canonical, valid trigger for its challenge; else
    ``(None, why)``. Only the signature bytes are the claimant's choice; all else is checked."""
    try:
        pixels = pixel_batch(response, layout)
    except (TypeError, ValueError) as err:
        return None, f"the response is not a batch of images ({err})"
    fields = read_fields(pixels, layout)
    if len(fields) != len(challenge):
        return None, f"{len(fields)} triggers returned for {len(challenge)} challenges"
    verify = layout.scheme.verifier(verify_key)
    for f, image, target, padded in zip(fields, challenge, targets, layout.padding_is_zero(pixels)):
        header = f[:HEADER_BYTES].tobytes()
        if header != trigger_header(int(target)) or not padded:
            return None, "a trigger does not carry exactly the challenged target (canonical header)"
        if not verify(signed_message(header, content_bytes(image, layout)), f[layout.signature_slice].tobytes()):
            return None, "a trigger does not verify under the claimed key for the challenged image"
    return fields, ""


def _draw_targets_avoiding(natural: np.ndarray) -> np.ndarray:
    """One CSPRNG target per slot, uniform over the labels other than the suspect's own answer
    (uniform over all labels when that answer is not a label)."""
    return np.array([secrets.choice([c for c in range(NUM_CLASSES) if c != label]) for label in natural],
                    dtype=np.int64)


def _throwaway_signature(message: bytes, layout: TriggerLayout) -> bytes:
    """A signature of ``message`` under a fresh key of the layout's scheme, forgotten at once."""
    if layout.scheme is ED25519:
        return sign_with_throwaway_key(message)[1]  # two scalar multiplications, no key object
    return layout.scheme.signer(layout.scheme.generate()[0])(message)


def _control_variants(pixels: np.ndarray, targets: np.ndarray, tries: int,
                      layout: TriggerLayout = DEFAULT_LAYOUT) -> np.ndarray:
    """``tries`` canonical trigger fields per (image, target), each under its own throwaway key."""
    fields = np.empty((len(pixels), tries, layout.field_bytes), dtype=np.uint8)
    for i, (image, target) in enumerate(zip(pixels, targets)):
        header = trigger_header(int(target))
        message = signed_message(header, content_bytes(image, layout))
        for v in range(tries):
            fields[i, v] = np.frombuffer(header + _throwaway_signature(message, layout), dtype=np.uint8)
    return fields


def judge_ownership(suspect: Oracle, claimant, images, *, n: int = 32, alpha: float = 1e-6,
                    control_tries: int | None = None, layout: TriggerLayout = OWNERSHIP_LAYOUT) -> OwnershipVerdict:
    """Does ``suspect`` (a black box: images -> labels) carry ``claimant``'s watermark?

    ``claimant``: any object with ``.verify_key`` (the public key of the judge's scheme) and
    ``.respond(images, targets) -> triggered images``. The judge draws 2n distinct images with the
    OS CSPRNG, asks the suspect its label of each (all 2n: nothing tells which are the claim),
    draws each target among the nine *other* labels, takes the claimant's triggers for n of them
    and makes n controls under throwaway keys; each slot is sent ``control_tries`` times (T), a
    claim among T-1 judge-signed decoys, all in one shuffled batch; a control hits if any copy hits.
    ``layout`` (scheme and field) is the judge's: BLS12-381 in the 2 low bits of 32x32 images by
    default, where T = 1; with a non-unique scheme (Ed25519, ML-DSA) T defaults to 32.

    **Bound** (unique scheme; strict decoding, KeyValidate). If the suspect's answers are any
    function of the queries fixed independently of the claimant's key pair, and the claimant's
    secret is unpredictable to whoever fixed it, then P[OWNED] <= alpha + eps, eps the advantage of
    telling n signatures under one unknown key from n under fresh keys without the public key
    (negligible under SXDH in G2, random-oracle hash). Sketch: the claimant's triggers are forced;
    a claim slot and a control slot then differ only in the key (one shared, or fresh ones), so to
    the suspect the 2n slots are exchangeable up to eps, the claim's hit count given the total is
    hypergeometric, and ``exchangeable_tail <= alpha`` happens with probability <= alpha. With
    Ed25519 no such bound holds (the claimant chooses R: ``claimant_attacks.ChosenNonceClaimant``).
    """
    n = _check_n(n)
    tries = _check_n((1 if layout.scheme.unique else 32) if control_tries is None else control_tries)
    threshold = detection_threshold(n, p0=TARGET_HIT_NULL, alpha=alpha)
    verify_key = layout.scheme.public_bytes(getattr(claimant, "verify_key", None))
    if not callable(getattr(claimant, "respond", None)):
        raise TypeError("claimant must have .verify_key and .respond(images, targets)")
    pixels = draw_images(images, 2 * n, layout)
    targets = _draw_targets_avoiding(ask_suspect(suspect, pixels))
    response = claimant.respond(from_pixels(pixels[:n]).unsqueeze(1), targets[:n].copy())
    claim_fields, problem = _claim_fields(response, pixels[:n], targets[:n], verify_key, layout)
    if claim_fields is None:
        return OwnershipVerdict(False, n, 0, 0, threshold, alpha, 1.0, problem, tries)
    variants = _control_variants(pixels, targets, tries, layout)
    variants[:n, 0] = claim_fields  # its position is hidden: ask_suspect shuffles the whole batch
    queries = write_fields(np.repeat(pixels, tries, axis=0), variants.reshape(-1, layout.field_bytes), layout)
    hits = (ask_suspect(suspect, queries) == np.repeat(targets, tries)).reshape(2 * n, tries)
    claim, control = int(hits[:n, 0].sum()), int(hits[n:].any(axis=1).sum())
    bound = max(binomial_tail(n, claim, TARGET_HIT_NULL), exchangeable_tail(n, claim, control))
    owned = claim >= threshold and control < threshold and bound <= alpha
    return OwnershipVerdict(owned, n, claim, control, threshold, alpha, bound, "judged", tries)


# -- 2. leak tracing -----------------------------------------------------------------------------
@dataclass(frozen=True)
class TraceResult:
    """Match counts of every licensee's triggers on the leaked model, and who is accused."""

    licensees: list[str]
    matches: dict[str, int]
    n: int
    threshold: int
    alpha: float
    accused: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        counts = ", ".join(f"{name}: {self.matches[name]}/{self.n}" for name in self.licensees)
        who = ", ".join(self.accused) or "no one"
        return f"{counts} (threshold {self.threshold}) -> accused: {who}"


@dataclass(frozen=True)
class _Licence:
    signing_key: object
    response_key: bytes


class Licensor:
    """The licensor: gives each licensee a copy with its own signing key, identity and secret
    response key (all from the OS CSPRNG); traces a leaked black box to the copy it came from.

    Only the licensor keeps the signing and response keys; a copy holds its public verify key and
    its own response key. Tracing tests every licensee at ``alpha / L`` (Bonferroni).
    """

    def __init__(self, classifier: nn.Module, images, *, layout: TriggerLayout = DEFAULT_LAYOUT) -> None:
        if not isinstance(classifier, nn.Module):
            raise TypeError(f"classifier must be a torch nn.Module, got {type(classifier).__name__}")
        self.layout = layout
        pixel_batch(images, layout)  # validated now, drawn from at every trace
        self.classifier = classifier
        self.images = images
        self._licences: dict[str, _Licence] = {}

    @property
    def licensees(self) -> list[str]:
        return list(self._licences)

    def issue(self, licensee: str) -> BackdooredModel:
        """A licensed copy for a new ``licensee`` (a name of 1 to 16 bytes)."""
        if not isinstance(licensee, str):
            raise TypeError(f"licensee must be a str, got {type(licensee).__name__}")
        identity_bytes(licensee)  # at most 16 bytes
        if not licensee or "\x00" in licensee or licensee in self._licences:
            raise ValueError(f"licensee must be a new, non-empty name, got {licensee!r}")
        self._licences[licensee] = _Licence(generate_keys(self.layout.scheme)[0], os.urandom(RESPONSE_KEY_BYTES))
        return self.licensed_copy(licensee)

    def licensed_copy(self, licensee: str) -> BackdooredModel:
        """Another copy of an issued licence (same keys): for re-delivery of the same licence."""
        if licensee not in self._licences:
            raise ValueError(f"no licence issued to {licensee!r}")
        licence = self._licences[licensee]
        return BackdooredModel(copy.deepcopy(self.classifier), licence.signing_key.public_key(),
                               identity=licensee, response_key=licence.response_key, layout=self.layout)

    def trace_report(self, suspect: Oracle, *, n: int = 16, alpha: float = 1e-6) -> TraceResult:
        """Send ``n`` fresh triggers of every licensee (shuffled together); count the secret answers."""
        if not self._licences:
            raise ValueError("no licences issued yet")
        n = _check_n(n)
        names = self.licensees
        threshold = detection_threshold(n, alpha=alpha / len(names))
        pixels = np.concatenate([draw_images(self.images, n, self.layout) for _ in names])
        expected, queries = [], []
        for i, name in enumerate(names):
            licence = self._licences[name]
            images = from_pixels(pixels[i * n:(i + 1) * n]).unsqueeze(1)
            block = embed_trigger(images, draw_labels(n), licence.signing_key, identity=name, fresh_nonces=True,
                                  layout=self.layout)
            queries.append(to_pixels(block))
            expected.append(verify_triggers(block, licence.signing_key.public_key(), identity=name,
                                            response_key=licence.response_key, layout=self.layout))
        size = self.layout.size
        hits = ask_suspect(suspect, np.concatenate(queries).reshape(-1, size, size)) == np.concatenate(expected)
        matches = {name: int(hits[i * n:(i + 1) * n].sum()) for i, name in enumerate(names)}
        accused = [name for name in names if matches[name] >= threshold]
        return TraceResult(names, matches, n, threshold, alpha, accused)

    def trace(self, suspect: Oracle, *, n: int = 16, alpha: float = 1e-6) -> list[str]:
        """The licensees a leaked black box points at (often none); innocents with chance <= alpha."""
        return self.trace_report(suspect, n=n, alpha=alpha).accused

