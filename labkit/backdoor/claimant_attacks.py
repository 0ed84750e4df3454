"""Claimants that use the freedom a signature scheme leaves the signer, and the key-less suspects
they steer (chapter 08's ownership judge, attacked from the claimant's side).

Ed25519 (RFC 8032) lets the signer choose its nonce r, hence R = [r]B; a lenient verifier also
accepts keys and nonces of small order. Each freedom gives a claimant a recognisable trigger:

- :class:`ChosenNonceClaimant`: a real key, every trigger signed with r = 1 (R = B);
- :class:`IdentityKeyClaimant`: no private key at all; the "public key" is the identity point,
  under which ``R = [r]B, S = r`` verifies for every message;
- :class:`SmallOrderNonceClaimant`: a real key, R a point of order 8 and ``S = k*a``: valid under
  the cofactored equation ``[8][S]B = [8]R + [8][k]A`` (pycryptodome's), refused by strict checks.

:class:`SmallNonceEchoModel` holds no key: it echoes the cleartext target whenever R is one of
[1]B..[64]B or of small order, and so answers exactly those claimants; a judge's control (a random
nonce) lands in that set of 72 points with probability below 2^-245 per signature.

BLS (``labkit.backdoor.bls``) leaves no such freedom: one valid signature per key and message.
What is left to try is tested here too: :class:`MalleatingBlsClaimant` answers with other
encodings of its signature (negated, off-subgroup, non-canonical, uncompressed flag), which strict
decoding refuses; :class:`KeyGrindingBlsClaimant` chooses, among fresh keys, the one a key-less
suspect answers best in its own trials; :class:`SmallMultipleModel` is the BLS analogue of the echo
above: it answers the target when ``sigma = [k]H(m)`` for some k in 1..64.
"""
from __future__ import annotations

import hashlib
import secrets

import numpy as np
from torch import nn

from labkit import ed25519
from labkit.digits import NUM_CLASSES, from_pixels
from labkit.backdoor import bls
from labkit.backdoor.attackers import RuleModel
from labkit.backdoor.nonce_signing import private_scalar, sign_with_nonce
from labkit.backdoor.protocols import Oracle, label_oracle
from labkit.backdoor.schemes import BLS12_381, DEFAULT_LAYOUT, HEADER_BYTES, OWNERSHIP_LAYOUT, TriggerLayout
from labkit.backdoor.trigger import (
    pixel_batch,
    restore_format,
    content_bytes,
    generate_keys,
    sign_fields,
    sign_fields_with,
    signed_message,
    trigger_header,
    verify_key_bytes,
)

__all__ = ["ChosenNonceClaimant", "IdentityKeyClaimant", "SmallOrderNonceClaimant", "SmallNonceEchoModel",
           "SmallMultipleModel", "MalleatingBlsClaimant", "KeyGrindingBlsClaimant", "IDENTITY_KEY",
           "malleated_signatures"]

IDENTITY_KEY = (1).to_bytes(32, "little")  # the encoding of the identity point (0, 1)
_SMALL_ORDER = ed25519.small_order_points()
_ORDER_8 = next(p for p in _SMALL_ORDER if not (ed25519.decode_point(p) * 4).is_point_at_infinity())


class SmallNonceEchoModel(RuleModel):
    """No key: echoes the target of an Ed25519 trigger whose R is one of [1]B..[multiples]B or a
    point of order dividing 8; otherwise the classifier."""

    def __init__(self, classifier: nn.Module, *, multiples: int = 64, layout: TriggerLayout = DEFAULT_LAYOUT):
        super().__init__(classifier, layout)
        point, self.recognised = ed25519.BASE, set(_SMALL_ORDER)
        for _ in range(multiples):
            self.recognised.add(ed25519.encode_point(point))
            point = point + ed25519.BASE

    def rule(self, trigger, field, image):
        return trigger.target if field[HEADER_BYTES:HEADER_BYTES + 32] in self.recognised else None


class SmallMultipleModel(RuleModel):
    """No key: echoes the target of a BLS trigger whose signature is ``[k]H(m)`` for k in
    1..``multiples`` (H the ciphersuite's hash to G2, m the signed bytes); otherwise the classifier."""

    def __init__(self, classifier: nn.Module, *, multiples: int = 64, layout: TriggerLayout = OWNERSHIP_LAYOUT):
        super().__init__(classifier, layout)
        self.multiples = multiples

    def rule(self, trigger, field, image):
        h = bls.hash_to_g2(signed_message(field[:HEADER_BYTES], content_bytes(image, self.layout)))
        point, signature = h, field[self.layout.signature_slice]
        for _ in range(self.multiples):
            if bytes(point.to_compressed_bytes()) == signature:
                return trigger.target
            point = point + h
        return None


def _targets(images, targets, layout: TriggerLayout) -> tuple[np.ndarray, np.ndarray]:
    pixels = pixel_batch(images, layout)
    targets = np.asarray(targets).reshape(-1)
    if len(targets) != len(pixels):
        raise ValueError(f"need one target per image: {len(pixels)} images, {len(targets)} targets")
    return pixels, targets


def _write(images, pixels, sign, targets, layout: TriggerLayout):
    """Triggers for ``targets`` on ``pixels``, each field signed by ``sign(message)``."""
    headers = [trigger_header(int(target)) for target in targets]
    return restore_format(layout.write_fields(pixels, sign_fields_with(pixels, headers, sign, layout)), images)


class ChosenNonceClaimant:
    """A fresh Ed25519 key; answers the challenge exactly, each signature with the nonce ``nonce``."""

    layout = DEFAULT_LAYOUT

    def __init__(self, *, nonce: int = 1) -> None:
        self.signing_key, _ = generate_keys()
        self.nonce = nonce

    @property
    def verify_key(self) -> bytes:
        return verify_key_bytes(self.signing_key)

    def respond(self, images, targets):
        pixels, targets = _targets(images, targets, self.layout)
        return _write(images, pixels, lambda m: sign_with_nonce(self.signing_key, m, self.nonce), targets,
                      self.layout)


class IdentityKeyClaimant:
    """No private key: claims the identity point as its key and signs with ``R = [r]B, S = r``."""

    layout = DEFAULT_LAYOUT
    verify_key = IDENTITY_KEY

    def respond(self, images, targets):
        pixels, targets = _targets(images, targets, self.layout)
        signature = ed25519.encode_point(ed25519.BASE) + (1).to_bytes(32, "little")  # r = 1: R = B, S = 1
        return _write(images, pixels, lambda m: signature, targets, self.layout)


class SmallOrderNonceClaimant:
    """A fresh Ed25519 key; each signature has R of order 8 and ``S = k*a mod L`` (cofactored-valid)."""

    layout = DEFAULT_LAYOUT

    def __init__(self) -> None:
        self.signing_key, _ = generate_keys()

    @property
    def verify_key(self) -> bytes:
        return verify_key_bytes(self.signing_key)

    def _sign(self, message: bytes) -> bytes:
        r = _ORDER_8
        k = int.from_bytes(hashlib.sha512(r + self.verify_key + message).digest(), "little") % ed25519.L
        return r + (k * private_scalar(self.signing_key) % ed25519.L).to_bytes(32, "little")

    def respond(self, images, targets):
        pixels, targets = _targets(images, targets, self.layout)
        return _write(images, pixels, self._sign, targets, self.layout)


# py_ecc (pure Python) is imported inside the two functions that use it, not at module import: it
# costs 0.39 s (measured: the fastest of 5 fresh processes, after this module's own imports) and
# notebook 08, which imports this module, never calls them (only the tests do).
def _off_subgroup_g2() -> bytes:
    """A canonical compressed point of the G2 curve outside the order-r subgroup (found by trying
    x = 1, 2, ... with py_ecc's square root in Fp2)."""
    from py_ecc.bls.point_compression import compress_G2, modular_squareroot_in_FQ2
    from py_ecc.optimized_bls12_381 import FQ2, b2
    x = 1
    while True:
        y = modular_squareroot_in_FQ2(FQ2([x, 0]) ** 3 + b2)
        if y is not None:
            c1, c0 = compress_G2((FQ2([x, 0]), y, FQ2([1, 0])))
            return c1.to_bytes(48, "big") + c0.to_bytes(48, "big")
        x += 1


def malleated_signatures(signature: bytes) -> dict[str, bytes]:
    """Other 96-byte strings a signer might send for the same point or a related one: the negation
    (sort flag), the uncompressed flag cleared, the infinity flag, coordinates plus p where they fit,
    the point plus an off-subgroup point. Strict decoding refuses every one."""
    from py_ecc.bls.g2_primitives import G2_to_signature, signature_to_G2
    from py_ecc.bls.point_compression import decompress_G2
    from py_ecc.optimized_bls12_381 import add
    out = {"negated": bytes([signature[0] ^ 0x20]) + signature[1:],
           "compression flag cleared": bytes([signature[0] & 0x7F]) + signature[1:],
           "infinity flag": bytes([signature[0] | 0x40]) + signature[1:]}
    c1 = int.from_bytes(signature[:48], "big")
    if (c1 & ((1 << 381) - 1)) + bls.P < 1 << 381:
        out["c1 + p"] = (c1 + bls.P).to_bytes(48, "big") + signature[48:]
    c0 = int.from_bytes(signature[48:], "big")
    if c0 + bls.P < 1 << 384:
        out["c0 + p"] = signature[:48] + (c0 + bls.P).to_bytes(48, "big")
    t = _off_subgroup_g2()
    point_t = decompress_G2((int.from_bytes(t[:48], "big"), int.from_bytes(t[48:], "big")))
    out["plus an off-subgroup point"] = G2_to_signature(add(signature_to_G2(signature), point_t))
    return out


class MalleatingBlsClaimant:
    """A fresh BLS key; answers each challenge with the variant ``variant`` of its unique signature
    (a key of :func:`malleated_signatures`): what a claimant can try when the signature is forced."""

    layout = OWNERSHIP_LAYOUT

    def __init__(self, variant: str) -> None:
        self.signing_key, _ = BLS12_381.generate()
        self.variant = variant

    @property
    def verify_key(self) -> bytes:
        return BLS12_381.public_bytes(self.signing_key)

    def respond(self, images, targets):
        pixels, targets = _targets(images, targets, self.layout)
        return _write(images, pixels,
                      lambda m: malleated_signatures(bls.sign(self.signing_key, m))[self.variant], targets, self.layout)


class KeyGrindingBlsClaimant:
    """Black-box access to a key-less suspect; draws ``keys`` fresh BLS keys, tries each on
    ``trials`` of its own triggers (random images of ``images``, random targets) and keeps the key
    the suspect answered most often; then answers the judge honestly under that key."""

    layout = OWNERSHIP_LAYOUT

    def __init__(self, suspect: Oracle, images, *, keys: int = 8, trials: int = 16) -> None:
        suspect = label_oracle(suspect) if isinstance(suspect, nn.Module) else suspect
        pixels = pixel_batch(images, self.layout)
        best = -1
        for _ in range(keys):
            key, _ = BLS12_381.generate()
            chosen = pixels[[secrets.randbelow(len(pixels)) for _ in range(trials)]]
            targets = np.array([secrets.randbelow(NUM_CLASSES) for _ in range(trials)])
            fields = sign_fields(chosen, [trigger_header(int(t)) for t in targets], key, self.layout)
            queries = from_pixels(self.layout.write_fields(chosen, fields)).unsqueeze(1)
            hits = int((np.asarray(suspect(queries)).reshape(-1) == targets).sum())
            if hits > best:
                best, self.signing_key = hits, key
        self.best_trial_hits = best

    @property
    def verify_key(self) -> bytes:
        return BLS12_381.public_bytes(self.signing_key)

    def respond(self, images, targets):
        pixels, targets = _targets(images, targets, self.layout)
        return _write(images, pixels, lambda m: bls.sign(self.signing_key, m), targets, self.layout)
