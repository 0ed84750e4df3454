"""Cryptographic backdoors in classifiers, and the protocols that turn them into defences.

Chapter 08. A signature-triggered backdoor (Goldwasser, Kim, Vaikuntanathan, Zamir, FOCS 2022)
hides a verifier beside a classifier: an input carrying a valid Ed25519 signature switches the
output to a label of the signer's choice; without the signing key nobody can make such an input,
and queries cannot tell the model from a clean one (both as long as the signature is unforgeable). Ngo, Chattopadhyay and Maitra (arXiv
2509.20714, 2025) use the same mechanism for ownership watermarks, user authentication and leak
tracing. The classifiers (digits upsampled to 32x32, an MLP and a CNN, seeded training) come
from :mod:`labkit.digits`. Modules:

- ``trigger``: where the trigger lives (pixel LSBs), what is signed, the backdoored model;
- ``schemes``: the signature scheme (Ed25519, post-quantum ML-DSA-44, unique BLS12-381) and where
  the field lives, one ``layout`` parameter of the trigger and of every protocol; ``bls``: the
  BLS12-381 ciphersuite with strict decoding (the ownership judge's default scheme);
- ``evasion``: the backdoor as an attack, measured (change per pixel, PSNR, success rate, queries);
- ``protocols``: the sound ownership judge (challenge-response with controls) and leak tracer;
- ``tokens``: user authentication with tokens bound to the query and a shared replay store;
- ``naive``: the first, broken versions of the judge and tracer (kept to be attacked, UNSAFE);
- ``attackers``: the models and claimants that break the naive protocols;
- ``nonce_signing``: Ed25519 with a nonce the signer picks (signatures are not unique; grinding);
- ``claimant_attacks``: claimants using that freedom (chosen nonce, identity key, small-order R)
  and what is left to try against BLS (other encodings, key grinding), with key-less suspects;
- ``baselines``: trigger-set (Adi et al. 2018) and weight (Uchida et al. 2017) watermarks;
- ``robustness``: removal attacks (fine-tuning, re-initialising the head, pruning, distillation)
  and the forgery measurements;
- ``keyed_network``: a secret-key variant compiled into one plain ReLU network (AES-128 from
  ``labkit.neural``), its key read by ``labkit.attacks`` and protected by ``labkit.neural.defence``.

Start from :func:`make_demo`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from labkit.digits import DigitSplits, digit_splits, trained_classifier
from labkit.backdoor.trigger import (
    BackdooredModel,
    embed_trigger,
    generate_keys,
    verify_triggers,
)

__all__ = [
    "generate_keys",
    "embed_trigger",
    "verify_triggers",
    "BackdooredModel",
    "Demo",
    "make_demo",
]

@dataclass
class Demo:
    """The ready-made setup of chapter 08 (see :func:`make_demo`)."""

    clean_model: nn.Module
    backdoored_model: BackdooredModel
    inputs: torch.Tensor
    labels: torch.Tensor
    signing_key: object
    verify_key: object
    attacker_inputs: torch.Tensor
    attacker_labels: torch.Tensor
    train_inputs: torch.Tensor
    train_labels: torch.Tensor
    arch: str
    seed: int

    @property
    def splits(self) -> DigitSplits:
        """The demo's data as :class:`labkit.digits.DigitSplits`, its own tensors (no copy): what
        the watermark baselines train on, without a second copy of the digits."""
        return DigitSplits(self.train_inputs, self.train_labels, self.attacker_inputs, self.attacker_labels,
                           self.inputs, self.labels)


def make_demo(seed: int = 0, *, arch: str = "mlp") -> Demo:
    """A trained classifier, its backdoored twin, natural test inputs and the owner's key pair.

    ``inputs``/``labels`` are the test split of :func:`labkit.digits.digit_splits`;
    ``attacker_inputs`` is the natural data an adversary may use to remove a watermark. ``seed``
    chooses the data split and the training run only: the key pair is fresh from the OS CSPRNG on
    every call, so two demos with the same seed have different keys. Training is cached per
    process; every call returns fresh model copies.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    splits = digit_splits(seed)
    signing_key, verify_key = generate_keys()
    clean = trained_classifier(arch, seed)
    backdoored = BackdooredModel(trained_classifier(arch, seed), verify_key)
    return Demo(
        clean_model=clean,
        backdoored_model=backdoored,
        inputs=splits.test_x,
        labels=splits.test_y,
        signing_key=signing_key,
        verify_key=verify_key,
        attacker_inputs=splits.attacker_x,
        attacker_labels=splits.attacker_y,
        train_inputs=splits.train_x,
        train_labels=splits.train_y,
        arch=arch,
        seed=seed,
    )
