"""The attackers of chapter 08's protocols: key-less models and claimants, black-box access only.

- :class:`EchoModel`: no key; answers the cleartext target byte of any well-formed trigger.
- :class:`HashModel`: no key; answers SHA-256 of the LSB field, mod 10, for any well-formed trigger.
- :class:`RarePropertyModel`: no key; echoes the cleartext target only when SHA-256 of the field
  starts with ``zero_bits`` zero bits (probability 2^-zero_bits): what a judge's finite grinding
  budget cannot match.
- :class:`FramingLeaker`: holds one licensed copy, drops (or keeps) its verifier, and answers the
  cleartext target of every trigger that names someone else.
- :class:`AdaptiveTargetClaimant`: a fresh key; asks the suspect first, then signs the labels it got.
- :class:`GrindingClaimant`: a fresh key; answers the challenge exactly, but re-signs each trigger
  with fresh nonces until the suspect answers its target (Ed25519 is not a unique signature).

Against ``labkit.backdoor.naive`` they win; against ``labkit.backdoor.protocols`` they must lose.
The key-less models share one loop, :class:`RuleModel` (``claimant_attacks`` uses it too).
"""
from __future__ import annotations

import hashlib

import numpy as np
import torch
from torch import nn

from labkit.digits import NUM_CLASSES, from_pixels
from labkit.backdoor.naive import OwnershipClaim, naive_claim_UNSAFE
from labkit.backdoor.nonce_signing import sign_with_random_nonce
from labkit.backdoor.protocols import Oracle, label_oracle
from labkit.backdoor.schemes import DEFAULT_LAYOUT, TriggerLayout
from labkit.backdoor.trigger import (
    OVERRIDE_LOGIT,
    BackdooredModel,
    FIELD_BYTES,
    Trigger,
    pixel_batch,
    restore_format,
    content_bytes,
    embed_trigger,
    generate_keys,
    parse_trigger,
    signed_message,
    trigger_header,
    verify_key_bytes,
    write_fields,
)

__all__ = ["RuleModel", "EchoModel", "HashModel", "RarePropertyModel", "FramingLeaker", "AdaptiveTargetClaimant", "GrindingClaimant"]


class RuleModel(nn.Module):
    """A key-less model: the classifier, except on a well-formed trigger in ``layout`` (magic,
    version, kind, target, zero padding; no signature is checked), where the answer is
    ``rule(trigger, field, image)`` if that is a label (None: the classifier's answer)."""

    def __init__(self, classifier: nn.Module, layout: TriggerLayout = DEFAULT_LAYOUT) -> None:
        super().__init__()
        self.classifier, self.layout = classifier, layout

    def rule(self, trigger: Trigger, field: bytes, image: np.ndarray) -> int | None:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.classifier(x)
        pixels = pixel_batch(x, self.layout)
        fields, padded = self.layout.split(pixels)
        for i in np.flatnonzero(padded):
            field = fields[i].tobytes()
            trig = parse_trigger(field, self.layout)
            label = None if trig is None else self.rule(trig, field, pixels[i])
            if label is not None:
                logits = logits.clone()
                logits[i] = 0.0
                logits[i, label] = OVERRIDE_LOGIT
        return logits


class EchoModel(RuleModel):
    """Answers the target written in cleartext in any well-formed trigger, whoever signed it."""

    def rule(self, trigger, field, image):
        return trigger.target


class HashModel(RuleModel):
    """Answers ``SHA-256(field)[0] mod 10`` for any well-formed trigger: a key-less function of the bits."""

    def rule(self, trigger, field, image):
        return hashlib.sha256(field).digest()[0] % NUM_CLASSES


class RarePropertyModel(RuleModel):
    """Echoes the cleartext target when SHA-256(field) starts with ``zero_bits`` zero bits; else the
    classifier. A claimant grinding ~2^zero_bits signatures per trigger steers it; controls rarely."""

    def __init__(self, classifier: nn.Module, *, zero_bits: int = 8) -> None:
        if isinstance(zero_bits, bool) or not isinstance(zero_bits, int) or not 0 <= zero_bits <= 32:
            raise ValueError(f"zero_bits must be an int in 0..32, got {zero_bits!r}")
        super().__init__(classifier)
        self.zero_bits = zero_bits

    def rule(self, trigger, field, image):
        rare = int.from_bytes(hashlib.sha256(field).digest()[:4], "big") >> (32 - self.zero_bits) == 0
        return trigger.target if rare else None


class FramingLeaker(RuleModel):
    """A leaked copy answering the cleartext target of triggers that name another licensee; on its
    own triggers the bare classifier (verifier dropped, to hide) or, with ``keep_verifier``, the copy."""

    def __init__(self, licensed_copy: BackdooredModel, *, keep_verifier: bool = False) -> None:
        if not isinstance(licensed_copy, BackdooredModel):
            raise TypeError("the leaker starts from a licensed BackdooredModel copy")
        super().__init__(licensed_copy if keep_verifier else licensed_copy.classifier)
        self.own_identity = licensed_copy.identity

    def rule(self, trigger, field, image):
        return None if trigger.identity == self.own_identity else trigger.target


class AdaptiveTargetClaimant:
    """A claimant with a fresh key and black-box access to the suspect; it never owned anything.

    ``claim_UNSAFE`` builds a naive claim whose targets are the labels the suspect already gives;
    ``respond`` (the sound judge's challenge) signs the suspect's labels instead of the asked targets
    when ``adaptive`` is set, else the asked targets honestly (a key that is simply not in the model).
    """

    def __init__(self, suspect: Oracle, *, adaptive: bool = True) -> None:
        self.suspect = label_oracle(suspect) if isinstance(suspect, nn.Module) else suspect
        self.signing_key, _ = generate_keys()
        self.adaptive = adaptive

    @property
    def verify_key(self) -> bytes:
        return verify_key_bytes(self.signing_key)

    def claim_UNSAFE(self, images, n: int = 32) -> OwnershipClaim:
        queries = naive_claim_UNSAFE(self.signing_key, images, n).queries
        labels = np.asarray(self.suspect(queries))
        for _ in range(3):  # re-sign until the suspect's label of the final query is the signed one
            queries = embed_trigger(queries, labels, self.signing_key)
            labels = np.asarray(self.suspect(queries))
        return OwnershipClaim(embed_trigger(queries, labels, self.signing_key), labels, self.verify_key)

    def respond(self, images, targets):
        labels = np.asarray(self.suspect(images)) if self.adaptive else np.asarray(targets)
        return embed_trigger(images, labels, self.signing_key)


class GrindingClaimant:
    """A claimant with a fresh key and black-box access to a key-less suspect; it owns nothing.

    It answers the judge's challenge exactly (canonical header, valid signature), but for each
    trigger it signs with up to ``budget`` random nonces, asks the suspect, and keeps the first
    signature the suspect answers with the target (the last one if none does). Against a suspect
    answering SHA-256 of the bits mod 10 that takes about 10 signatures per trigger.
    ``signatures_tried`` counts the signatures of the last response.
    """

    def __init__(self, suspect: Oracle, *, budget: int = 32, batch: int = 16) -> None:
        for name, value in (("budget", budget), ("batch", batch)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        self.suspect = label_oracle(suspect) if isinstance(suspect, nn.Module) else suspect
        self.signing_key, _ = generate_keys()
        self.budget, self.batch = budget, batch
        self.signatures_tried = 0

    @property
    def verify_key(self) -> bytes:
        return verify_key_bytes(self.signing_key)

    def _grind(self, image: np.ndarray, target: int) -> np.ndarray:
        header = trigger_header(target)
        message = signed_message(header, content_bytes(image))
        field = None
        for start in range(0, self.budget, self.batch):
            count = min(self.batch, self.budget - start)
            fields = np.stack([np.frombuffer(header + sign_with_random_nonce(self.signing_key, message), np.uint8)
                               for _ in range(count)])
            self.signatures_tried += count
            tries = from_pixels(write_fields(np.repeat(image[None], count, axis=0), fields)).unsqueeze(1)
            hit = np.flatnonzero(np.asarray(self.suspect(tries)).reshape(-1) == target)
            field = fields[hit[0] if len(hit) else -1]
            if len(hit):
                break
        return field.reshape(FIELD_BYTES)

    def respond(self, images, targets):
        pixels = pixel_batch(images)
        targets = np.asarray(targets).reshape(-1)
        if len(targets) != len(pixels):
            raise ValueError(f"need one target per image: {len(pixels)} images, {len(targets)} targets")
        self.signatures_tried = 0
        fields = np.stack([self._grind(image, int(t)) for image, t in zip(pixels, targets)])
        return restore_format(write_fields(pixels, fields), images)
