"""Three defences built on the signature backdoor (Ngo, Chattopadhyay, Maitra 2025, §4-§6).

Each protocol keeps its roles apart: who holds the signing key, who holds only a black box, who
decides. A black box here is a *label oracle*: it answers class labels and nothing else.

1. **Ownership watermark.** The owner signs ``n`` triggers with secret, uniformly random target
   labels. A judge checks the signatures with the owner's public key (so nobody but the key holder
   can make a claim), queries the suspect model and counts how often it answers the target. A model
   that does not contain the watermark answers the random target with probability exactly
   ``p0 = 1/10`` whatever it is, so the count is Binomial(n, 1/10); the judge decides "owned" from
   ``detection_threshold(n, alpha)`` matches, a rule with false-positive rate at most ``alpha``.
2. **User authentication.** An issuer signs tokens over (user id, expiry, nonce); a client writes
   its token into the query's LSB field; the service answers only queries with a valid, unexpired,
   unused token. Forged, modified, replayed and expired tokens fail.
3. **IP tracking.** A licensor gives every licensee a copy whose verifier has that licensee's own
   key and identity. Given a leaked black box, it queries triggers of every licensee: only the
   leaker's triggers switch the output.
"""
from __future__ import annotations

import copy
import math
import os
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from Crypto.Signature import eddsa
from torch import nn

from labkit.backdoor.models import NUM_CLASSES, from_pixels, predict
from labkit.backdoor.trigger import (
    FIELD_BYTES,
    HEADER_BYTES,
    KIND_TOKEN,
    MAGIC,
    SIGNATURE_SLICE,
    VERSION,
    BackdooredModel,
    _as_batch,
    _identity,
    _signing_key,
    _verify_key,
    embed_field,
    embed_trigger,
    generate_keys,
    read_fields,
    signed_message,
    verify_key_bytes,
    verify_triggers,
)

__all__ = [
    "binomial_tail",
    "detection_threshold",
    "label_oracle",
    "OwnershipClaim",
    "OwnershipVerdict",
    "ModelOwner",
    "judge_ownership",
    "Token",
    "TokenIssuer",
    "attach_token",
    "AuthResult",
    "AuthenticatedModel",
    "Licensor",
    "TraceResult",
]

Oracle = Callable[[torch.Tensor], np.ndarray]


# -- statistics ----------------------------------------------------------------------------------
def binomial_tail(n: int, k: int, p: float) -> float:
    """``P[X >= k]`` for ``X ~ Binomial(n, p)``, summed exactly term by term."""
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be a probability in [0, 1], got {p}")
    k = max(int(k), 0)
    return float(sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1)))


def detection_threshold(n: int, *, p0: float = 1 / NUM_CLASSES, alpha: float = 1e-6) -> int:
    """The fewest matches out of ``n`` whose chance under Binomial(n, p0) is at most ``alpha``.

    Deciding "watermarked" from this many matches wrongly accuses a model without the watermark
    with probability at most ``alpha``. Raises ValueError when even ``n`` matches are not enough.
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

    def oracle(x: torch.Tensor) -> np.ndarray:
        return predict(model, x)

    return oracle


def _sample_images(images: torch.Tensor, n: int, rng: np.random.Generator) -> torch.Tensor:
    if not 0 < n <= len(images):
        raise ValueError(f"n must be between 1 and {len(images)} (the number of images), got {n}")
    return torch.from_numpy(images.numpy()[np.sort(rng.permutation(len(images))[:n])])  # numpy: no thread pool


# -- 1. ownership watermark ----------------------------------------------------------------------
@dataclass(frozen=True)
class OwnershipClaim:
    """What the owner hands the judge: signed queries, their targets and the public key."""

    queries: torch.Tensor
    targets: np.ndarray
    verify_key: bytes


@dataclass(frozen=True)
class OwnershipVerdict:
    """The judge's decision and the numbers behind it."""

    n: int
    matches: int
    threshold: int
    alpha: float
    p_value: float
    signatures_valid: bool
    owned: bool

    def __str__(self) -> str:
        if not self.signatures_valid:
            return "claim rejected: a query does not carry a valid signature under the claimed key"
        verdict = "OWNED" if self.owned else "not shown"
        return (f"{self.matches}/{self.n} queries answered the signed target (threshold "
                f"{self.threshold}, false-positive rate <= {self.alpha:g}): {verdict}")


class ModelOwner:
    """The owner: holds the signing key and some natural images; makes ownership claims."""

    def __init__(self, signing_key, images: torch.Tensor, *, seed: int | None = None) -> None:
        self.signing_key = _signing_key(signing_key)
        self.images = images
        self.rng = np.random.default_rng(seed)

    @property
    def verify_key(self) -> bytes:
        return verify_key_bytes(self.signing_key)

    def watermark(self, classifier: nn.Module) -> BackdooredModel:
        """The model the owner deploys: ``classifier`` with the owner's verifier beside it."""
        return BackdooredModel(classifier, self.verify_key)

    def claim(self, n: int = 32) -> OwnershipClaim:
        """``n`` triggers on distinct images, each with a fresh uniformly random target label."""
        queries = _sample_images(self.images, n, self.rng)
        targets = self.rng.integers(0, NUM_CLASSES, n)
        return OwnershipClaim(embed_trigger(queries, targets, self.signing_key), targets, self.verify_key)


def judge_ownership(claim: OwnershipClaim, oracle: Oracle, *, alpha: float = 1e-6) -> OwnershipVerdict:
    """The judge: check the claim's signatures, query the suspect's black box, apply the threshold."""
    n = len(claim.targets)
    threshold = detection_threshold(n, alpha=alpha)
    valid = bool(np.array_equal(verify_triggers(claim.queries, claim.verify_key), claim.targets))
    if not valid:
        return OwnershipVerdict(n, 0, threshold, alpha, 1.0, False, False)
    matches = int(np.sum(np.asarray(oracle(claim.queries)) == claim.targets))
    p_value = binomial_tail(n, matches, 1 / NUM_CLASSES)
    return OwnershipVerdict(n, matches, threshold, alpha, p_value, True, matches >= threshold)


# -- 2. user authentication ----------------------------------------------------------------------
def token_header(user_id: bytes | str, expiry: int, nonce: bytes) -> bytes:
    """The 64 signed header bytes of a token: magic, version, kind 2, user id, expiry, nonce."""
    if isinstance(expiry, bool) or not isinstance(expiry, (int, np.integer)) or not 0 <= expiry < 2**64:
        raise ValueError(f"expiry must be an int number of seconds in [0, 2^64), got {expiry!r}")
    if not isinstance(nonce, (bytes, bytearray)) or len(nonce) != 16:
        raise ValueError("nonce must be 16 bytes")
    head = MAGIC + bytes([VERSION, KIND_TOKEN]) + _identity(user_id) + int(expiry).to_bytes(8, "big")
    return (head + bytes(nonce)).ljust(HEADER_BYTES, b"\x00")


@dataclass(frozen=True)
class Token:
    """An access token: user id, expiry (Unix seconds), a 16-byte nonce and the issuer's signature."""

    user_id: bytes
    expiry: int
    nonce: bytes
    signature: bytes

    @property
    def header(self) -> bytes:
        return token_header(self.user_id, self.expiry, self.nonce)

    @classmethod
    def from_field(cls, field_bytes: bytes) -> "Token | None":
        """Parse a 128-byte field as a token; ``None`` if it is not one."""
        f = bytes(field_bytes)
        if len(f) != FIELD_BYTES or f[:4] != MAGIC or f[4] != VERSION or f[5] != KIND_TOKEN:
            return None
        return cls(f[6:22].rstrip(b"\x00"), int.from_bytes(f[22:30], "big"), f[30:46], f[SIGNATURE_SLICE])


class TokenIssuer:
    """The issuer: holds the signing key and hands out tokens to registered users."""

    def __init__(self, signing_key, *, seed: int | None = None) -> None:
        self.signing_key = _signing_key(signing_key)
        self._rng = None if seed is None else np.random.default_rng(seed)

    @property
    def verify_key(self) -> bytes:
        return verify_key_bytes(self.signing_key)

    def issue(self, user_id: bytes | str, expiry: int) -> Token:
        nonce = os.urandom(16) if self._rng is None else self._rng.bytes(16)
        uid = _identity(user_id).rstrip(b"\x00")
        signature = eddsa.new(self.signing_key, "rfc8032").sign(signed_message(token_header(uid, expiry, nonce)))
        return Token(uid, int(expiry), nonce, signature)


def attach_token(x, token: Token):
    """The client's step: write ``token`` into the LSB field of every image of ``x``."""
    if not isinstance(token, Token):
        raise TypeError(f"token must be a Token, got {type(token).__name__}")
    return embed_field(x, token.header, token.signature)


@dataclass(frozen=True)
class AuthResult:
    """The service's answer to one query: the label if accepted, else why not."""

    accepted: bool
    reason: str
    label: int | None = None
    user_id: bytes | None = None


class AuthenticatedModel:
    """The service: a classifier that answers only queries carrying a valid token.

    Checks, in order: a token is present; its signature verifies under the issuer's key (a token
    signed by anyone else, or modified after signing, fails); it has not expired at ``clock()``;
    its nonce was not used before (each token buys one answer, so a replayed token fails).
    """

    def __init__(self, classifier: nn.Module, verify_key, *, clock: Callable[[], float] = time.time):
        self.classifier = classifier
        self.verify_key = _verify_key(verify_key)
        self.clock = clock
        self.used_nonces: set[bytes] = set()

    def query(self, x) -> list[AuthResult]:
        pixels = _as_batch(x)
        fields = read_fields(pixels)
        verifier = eddsa.new(self.verify_key, "rfc8032")
        labels = None
        results = []
        for i, f in enumerate(fields):
            token = Token.from_field(f.tobytes())
            if token is None:
                results.append(AuthResult(False, "no token"))
                continue
            try:
                verifier.verify(signed_message(f[:HEADER_BYTES].tobytes()), token.signature)
            except ValueError:
                results.append(AuthResult(False, "bad signature", user_id=token.user_id))
                continue
            if self.clock() >= token.expiry:
                results.append(AuthResult(False, "expired", user_id=token.user_id))
                continue
            if token.nonce in self.used_nonces:
                results.append(AuthResult(False, "replayed", user_id=token.user_id))
                continue
            self.used_nonces.add(token.nonce)
            if labels is None:
                labels = predict(self.classifier, from_pixels(pixels).unsqueeze(1))
            results.append(AuthResult(True, "accepted", int(labels[i]), token.user_id))
        return results


# -- 3. IP tracking ------------------------------------------------------------------------------
@dataclass(frozen=True)
class TraceResult:
    """Match counts of every licensee's triggers on the leaked model, and who is identified."""

    licensees: list[str]
    matches: dict[str, int]
    n: int
    threshold: int
    alpha: float
    identified: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        counts = ", ".join(f"{name}: {self.matches[name]}/{self.n}" for name in self.licensees)
        who = ", ".join(self.identified) or "nobody"
        return f"{counts} (threshold {self.threshold}) -> leaked by {who}"


class Licensor:
    """The licensor: gives each licensee a copy with its own key pair and identity; traces leaks.

    The keys stay with the licensor (licensees see at most the public key inside their copy).
    Tracing tests every licensee at false-positive rate ``alpha / L`` (Bonferroni), so the chance
    of accusing anyone innocent is at most ``alpha`` in total.
    """

    def __init__(self, classifier: nn.Module, images: torch.Tensor, *, seed: int | None = None) -> None:
        self.classifier = classifier
        self.images = images
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.keys: dict[str, object] = {}

    @property
    def licensees(self) -> list[str]:
        return list(self.keys)

    def issue(self, licensee: str) -> BackdooredModel:
        """A licensed copy for ``licensee`` (a name of at most 16 bytes)."""
        name = _identity(licensee).rstrip(b"\x00").decode()
        if not name or name in self.keys:
            raise ValueError(f"licensee name must be new and non-empty, got {licensee!r}")
        seed = None if self.seed is None else f"{self.seed}:{name}".encode()
        signing_key, verify_key = generate_keys(seed)
        self.keys[name] = signing_key
        return BackdooredModel(copy.deepcopy(self.classifier), verify_key, identity=name)

    def trace(self, oracle: Oracle, *, n: int = 16, alpha: float = 1e-6) -> TraceResult:
        """Query ``n`` triggers of every licensee on the leaked black box; name those above threshold."""
        if not self.keys:
            raise ValueError("no licences issued yet")
        threshold = detection_threshold(n, alpha=alpha / len(self.keys))
        matches = {}
        for name, key in self.keys.items():
            images = _sample_images(self.images, n, self.rng)
            targets = self.rng.integers(0, NUM_CLASSES, n)
            queries = embed_trigger(images, targets, key, identity=name)
            matches[name] = int(np.sum(np.asarray(oracle(queries)) == targets))
        identified = [name for name in self.keys if matches[name] >= threshold]
        return TraceResult(self.licensees, matches, n, threshold, alpha, identified)
