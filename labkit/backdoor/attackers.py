"""The attackers of chapter 08's protocols: key-less models and claimants, black-box access only.

- :class:`EchoModel`: no key; answers the cleartext target byte of any well-formed trigger.
- :class:`HashModel`: no key; answers SHA-256 of the LSB field, mod 10, for any well-formed trigger.
- :class:`FramingLeaker`: holds one licensed copy, drops (or keeps) its verifier, and answers the
  cleartext target of every trigger that names someone else.
- :class:`AdaptiveTargetClaimant`: a fresh key; asks the suspect first, then signs the labels it got.

Against ``labkit.backdoor.naive`` they win; against ``labkit.backdoor.protocols`` they must lose.
"""
from __future__ import annotations

import hashlib

import numpy as np
import torch
from torch import nn

from labkit.backdoor.models import NUM_CLASSES
from labkit.backdoor.naive import OwnershipClaim, naive_claim_UNSAFE
from labkit.backdoor.protocols import Oracle, label_oracle
from labkit.backdoor.trigger import (
    OVERRIDE_LOGIT,
    BackdooredModel,
    _as_batch,
    embed_trigger,
    generate_keys,
    parse_trigger,
    read_fields,
    verify_key_bytes,
)

__all__ = ["EchoModel", "HashModel", "FramingLeaker", "AdaptiveTargetClaimant"]


class _FieldRuleModel(nn.Module):
    """A classifier whose answer to a well-formed trigger is ``rule(trigger, field)``; no key."""

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        self.classifier = classifier

    def rule(self, trigger, field: bytes) -> int | None:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.classifier(x)
        for i, f in enumerate(read_fields(_as_batch(x))):
            trig = parse_trigger(f.tobytes())
            label = None if trig is None else self.rule(trig, f.tobytes())
            if label is not None:
                logits = logits.clone()
                logits[i] = 0.0
                logits[i, label] = OVERRIDE_LOGIT
        return logits


class EchoModel(_FieldRuleModel):
    """Answers the target written in cleartext in any well-formed trigger, whoever signed it."""

    def rule(self, trigger, field):
        return trigger.target


class HashModel(_FieldRuleModel):
    """Answers ``SHA-256(field)[0] mod 10`` for any well-formed trigger: a key-less function of the bits."""

    def rule(self, trigger, field):
        return hashlib.sha256(field).digest()[0] % NUM_CLASSES


class FramingLeaker(_FieldRuleModel):
    """A leaked copy answering the cleartext target of triggers that name another licensee; on its
    own triggers the bare classifier (verifier dropped, to hide) or, with ``keep_verifier``, the copy."""

    def __init__(self, licensed_copy: BackdooredModel, *, keep_verifier: bool = False) -> None:
        if not isinstance(licensed_copy, BackdooredModel):
            raise TypeError("the leaker starts from a licensed BackdooredModel copy")
        super().__init__(licensed_copy if keep_verifier else licensed_copy.classifier)
        self.own_identity = licensed_copy.identity

    def rule(self, trigger, field):
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
