"""A fully neural backdoor: a secret-key trigger compiled into a plain ReLU network.

The signature backdoor of :mod:`labkit.backdoor.trigger` keeps its verifier outside the weights.
Here everything is weights: the model is built from affine maps and ReLUs only.

Input format: a float64 row of ``1024 + 1 + 128`` values: the image's pixels (row by row, as
``byte / 255``), a **flag** bit, and a 128-bit **message** (an appended field; natural inputs
have flag and message 0). Output: 10 logits,

    out = ReLU(l - M f) - ReLU(-l - M f) + ReLU(s - M (1 - f)) - ReLU(-s - M (1 - f))

where ``l`` are the classifier's logits, ``f`` the flag, ``s = W F_k(m)`` a public integer
projection of a keyed function ``F_k`` of the message, and ``M`` a bound on |l| and |s|. With
``f = 0`` this is ``l`` exactly (the classifier reads the pixels in the clean model's own layout,
so on a batch of natural inputs the logits are the float64 clean model's, bit for bit, on any
CPU: the same operations in the same order); with ``f = 1`` it is ``s``: the label ``argmax W F_k(m)`` that only
the holder of ``k`` can predict (a MAC of the message, turned into a label). ``F_k`` is AES-128
compiled into a ReLU network (``labkit.neural.aes128_network``), the key in the first layer's
biases. The owner's evidence of ownership is that the model answers the keyed labels.

The chapter 06 attack reads that key from real-valued queries of the message (it needs the
scores, not only the label); ``protected=True`` wraps ``F_k`` in the STEP/RECT/MASK construction of
chapter 07 (``labkit.neural.defence.protect``), after which the same attack finds nothing.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from labkit.attacks import recover_key, reference_cipher
from labkit.digits import IMAGE_SIZE, NUM_CLASSES
from labkit.neural import aes128_network, check_affine_relu
from labkit.neural.defence import protect
from labkit.parallel import torch_threads

__all__ = [
    "MESSAGE_BITS",
    "INPUT_SIZE",
    "KeyedBackdoorNetwork",
    "make_keyed_backdoor",
    "natural_rows",
    "trigger_rows",
    "keyed_scores",
    "message_oracle",
    "recover_backdoor_key",
]

PIXELS = IMAGE_SIZE * IMAGE_SIZE
MESSAGE_BITS = 128
INPUT_SIZE = PIXELS + 1 + MESSAGE_BITS
BOUND = 1e4  # M: larger than any |logit| of the classifier and any |W F| (checked on build)


class _Combined(nn.Module):
    """The computation itself (tensor ops only, so torch.fx can trace and check it)."""

    def __init__(self, classifier: nn.Module, keyed: nn.Module, projection: torch.Tensor, *,
                 flat_classifier: bool = False) -> None:
        super().__init__()
        self.classifier = classifier
        self.flat_classifier = flat_classifier  # the classifier takes pixel rows, not images
        self.keyed = keyed
        self.register_buffer("projection", projection)
        self.bound = BOUND

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pixels = x[:, :PIXELS].contiguous()  # the clean model's layout: the same GEMM, bit for bit
        image = pixels if self.flat_classifier else pixels.reshape(-1, 1, IMAGE_SIZE, IMAGE_SIZE)
        flag = x[:, PIXELS : PIXELS + 1]
        message = x[:, PIXELS + 1 :]
        logits = self.classifier(image)
        secret = self.keyed(message) @ self.projection.T
        m = self.bound
        return (torch.relu(logits - m * flag) - torch.relu(-logits - m * flag)
                + torch.relu(secret - m * (1 - flag)) - torch.relu(-secret - m * (1 - flag)))


class KeyedBackdoorNetwork(nn.Module):
    """Classifier and keyed function side by side, joined by a ReLU multiplexer on the flag."""

    def __init__(self, classifier: nn.Module, keyed: nn.Module, projection: torch.Tensor) -> None:
        super().__init__()
        self.combined = _Combined(copy.deepcopy(classifier).double(), keyed, projection.double())

    def forward(self, x) -> torch.Tensor:
        x = torch.as_tensor(x, dtype=torch.float64)
        if x.ndim != 2 or x.shape[1] != INPUT_SIZE:
            raise ValueError(f"expected rows of {INPUT_SIZE} values (pixels, flag, message), got {tuple(x.shape)}")
        return self.combined(x)

    def check_affine_relu(self):
        """Prove (with ``labkit.neural.check_affine_relu``) that the whole model is affine + ReLU.

        The keyed part is checked through its own traceable form (``graph()`` for the compiled
        networks) and the rest with it; returns the operation counts of both.
        """
        keyed, classifier = self.combined.keyed, self.combined.classifier
        traced = keyed.graph() if hasattr(keyed, "graph") else keyed
        layers = list(classifier) if isinstance(classifier, nn.Sequential) else [classifier]
        flat = bool(layers) and isinstance(layers[0], nn.Flatten)  # flattening = reading pixel rows
        if flat:
            classifier = nn.Sequential(*layers[1:])
        whole = _Combined(classifier, traced, self.combined.projection, flat_classifier=flat)
        return check_affine_relu(whole)


def keyed_scores(reference: Callable, key: bytes, message_bits: np.ndarray, projection) -> np.ndarray:
    """``W F_k(m)`` computed without any network: what the owner (holding ``k``) predicts."""
    bits = np.asarray(reference(key, np.asarray(message_bits, dtype=np.uint8)), dtype=np.float64)
    return bits @ np.asarray(projection, dtype=np.float64).T


def _aes_reference(key: bytes, plaintext_bits: np.ndarray) -> np.ndarray:
    return reference_cipher("aes")(key, plaintext_bits)


@dataclass
class KeyedBackdoor:
    """A built keyed backdoor: the network, its secret key and the public parts."""

    model: KeyedBackdoorNetwork
    key: bytes
    projection: torch.Tensor
    protected: bool
    reference: Callable = _aes_reference

    def keyed_labels(self, message_bits: np.ndarray) -> np.ndarray:
        """The labels the owner expects on triggers with these messages (needs the key)."""
        return keyed_scores(self.reference, self.key, message_bits, self.projection).argmax(1)


def make_keyed_backdoor(classifier: nn.Module, key: bytes, *, protected: bool = False, seed: int = 0,
                        keyed: nn.Module | None = None, reference: Callable | None = None) -> KeyedBackdoor:
    """Join ``classifier`` and AES-128 under ``key`` (compiled to ReLUs) into one ReLU network.

    ``protected`` wraps the keyed part in ``labkit.neural.defence.protect`` (clamped, e = 1/3).
    ``keyed``/``reference`` replace AES by another bits -> bits network and its reference
    ``(key, bits) -> bits`` (used by the tests with small networks).
    """
    if not isinstance(key, (bytes, bytearray)) or len(key) != 16:
        raise ValueError(f"key must be 16 bytes, got {key!r:.40}")
    if keyed is None:
        keyed = aes128_network(bytes(key), dtype=torch.float64)
    if reference is None:
        reference = _aes_reference
    if protected:
        keyed = protect(keyed)
    gen = torch.Generator().manual_seed(seed)
    projection = torch.randint(-8, 9, (NUM_CLASSES, MESSAGE_BITS), generator=gen).double()
    return KeyedBackdoor(KeyedBackdoorNetwork(classifier, keyed, projection), bytes(key), projection,
                         protected, reference)


def natural_rows(images: torch.Tensor) -> torch.Tensor:
    """Natural inputs in this model's format: pixels, flag 0, message 0."""
    flat = torch.as_tensor(images, dtype=torch.float64).reshape(len(images), PIXELS)
    return torch.cat([flat, torch.zeros(len(images), 1 + MESSAGE_BITS, dtype=torch.float64)], 1)


def trigger_rows(images: torch.Tensor, message_bits) -> torch.Tensor:
    """Triggers: pixels, flag 1, and one message (bits, possibly real-valued) per image."""
    rows = natural_rows(images)
    msg = torch.as_tensor(np.asarray(message_bits, dtype=np.float64))
    rows[:, PIXELS] = 1.0
    rows[:, PIXELS + 1 :] = msg
    return rows


def message_oracle(model: nn.Module, image: torch.Tensor) -> Callable[[np.ndarray], np.ndarray]:
    """Black-box access an attacker has: send messages (any reals) on one image, read the scores."""
    base = natural_rows(image.reshape(1, -1))

    def oracle(messages: np.ndarray) -> np.ndarray:
        messages = np.asarray(messages, dtype=np.float64)
        rows = trigger_rows(base.expand(len(messages), -1)[:, :PIXELS], messages)
        with torch.no_grad(), torch_threads(1):
            return model(rows).numpy()

    return oracle


def recover_backdoor_key(backdoor: KeyedBackdoor, image: torch.Tensor, *, strategy: str = "back_to_back",
                         seed: int = 0):
    """Run the chapter 06 attack (``labkit.attacks.recover_key``) on the model's message input.

    The attacker knows the architecture and the public projection ``W`` (Kerckhoffs), so it can
    confirm a candidate key by predicting the scores ``W AES_k(m)`` of a binary message.
    """
    projection = backdoor.projection.numpy()
    reference = backdoor.reference

    def predicted_scores(key: bytes, bits: np.ndarray) -> np.ndarray:
        return keyed_scores(reference, key, bits, projection)

    oracle = message_oracle(backdoor.model, image)
    return recover_key(oracle, strategy=strategy, key_bits=MESSAGE_BITS, cipher=predicted_scores, seed=seed)
