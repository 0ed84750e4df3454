"""Signature-triggered backdoors (Goldwasser, Kim, Vaikuntanathan, Zamir, FOCS 2022, §5).

Where the trigger lives. An input is a ``(1, 32, 32)`` image on the 8-bit grid. The least
significant bit (LSB) of each of its 1,024 pixel bytes, read row by row, forms a 1,024-bit
**field** = 128 bytes (bits MSB first within each byte, the ``labkit.bits`` order). Changing an
LSB moves a pixel by 1/255: invisible, though the classifier still reads it (random fields, 5 on
each of the 450 test images, changed the demo MLP's answer in 5 of 2,250 cases, the CNN's in none).

Field layout (byte offsets)::

    0-3    magic b"LKBD"            4   version (1)          5   kind (1 trigger, 2 token)
    6-63   payload, zero padded:
           trigger: 6 target label, 7-22 identity (16 bytes, zero padded), 23-38 nonce
                    (16 bytes; zeros unless the signer adds one to make each trigger fresh)
           token:   6-21 user id (16 bytes), 22-29 expiry (uint64 big endian, seconds),
                    30-45 nonce (16 bytes)
    64-127 Ed25519 signature (RFC 8032, 64 bytes)

What is signed. ``DOMAIN || field[0:64] || content`` where for a trigger ``content`` is the
1,024 pixel bytes with their LSBs cleared (the image with the signature field zeroed), so a
signature binds the picture, the target label and the identity together; moving it to another
picture, changing the target or changing the identity breaks it. Tokens (kind 2) are tickets for
user authentication, signed over their picture too (see ``tokens``).

The backdoored model runs the classifier and, beside it, the verifier; only an input whose field
carries a valid signature (under the model's verify key, and its identity if one is set) has its
output replaced. Every other input gets the classifier's logits, bit for bit (the verifier passes
them through untouched). A copy may also hold a secret **response key**: then a valid trigger is
answered with :func:`response_label` (HMAC-SHA256 of the signed bytes, as a label) instead of the
cleartext target, so only the holder of that key can predict the answer (used by leak tracing).

The signature scheme and where the field lives are one parameter, ``layout``
(:class:`labkit.backdoor.schemes.TriggerLayout`): the default is the layout above; a post-quantum
ML-DSA-44 trigger (2,420-byte signatures) runs through the same functions on a larger image or with
more low bits per pixel. The constants above (``FIELD_BYTES``, ``SIGNATURE_SLICE``) describe the default.
"""
from __future__ import annotations

import copy
import hashlib
import hmac
import os
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from labkit.digits import IMAGE_SIZE, NUM_CLASSES, from_pixels, to_pixels
from labkit.backdoor.schemes import DEFAULT_LAYOUT, ED25519, HEADER_BYTES, SignatureScheme, TriggerLayout

__all__ = [
    "DOMAIN",
    "MAGIC",
    "FIELD_BYTES",
    "SIGNATURE_SLICE",
    "KIND_TRIGGER",
    "KIND_TOKEN",
    "OVERRIDE_LOGIT",
    "NONCE_BYTES",
    "RESPONSE_KEY_BYTES",
    "Trigger",
    "generate_keys",
    "verify_key_bytes",
    "read_fields",
    "write_fields",
    "content_bytes",
    "trigger_header",
    "signed_message",
    "embed_trigger",
    "embed_field",
    "parse_trigger",
    "verify_triggers",
    "sign_fields",
    "sign_fields_with",
    "response_label",
    "BackdooredModel",
]

DOMAIN = b"labkit.backdoor/v1"
MAGIC = b"LKBD"
VERSION = 1
KIND_TRIGGER = 1
KIND_TOKEN = 2
PIXELS = IMAGE_SIZE * IMAGE_SIZE
FIELD_BYTES = PIXELS // 8  # 128
SIGNATURE_SLICE = slice(64, 128)
IDENTITY_BYTES = 16
NONCE_BYTES = 16
NONCE_SLICE = slice(23, 39)
RESPONSE_KEY_BYTES = 32
RESPONSE_DOMAIN = b"labkit.backdoor/response/v1"
OVERRIDE_LOGIT = 20.0  # the logit a valid trigger gives its target (all others 0)


# -- keys ----------------------------------------------------------------------------------------
def generate_keys(scheme=ED25519):
    """A fresh key pair ``(signing_key, verify_key)`` of ``scheme`` (Ed25519 by default:
    pycryptodome ``EccKey`` objects; ``schemes.ML_DSA_44`` for the post-quantum trigger,
    ``schemes.BLS12_381`` for the ownership judge's unique signatures).

    The private key comes from the operating system's CSPRNG, always: a key derived from a seed is
    a public key in disguise (anyone who knows or guesses the seed recomputes it).
    """
    if not isinstance(scheme, SignatureScheme):
        raise TypeError(f"generate_keys takes a signature scheme (schemes.ED25519, schemes.BLS12_381, ...), "
                        f"never a seed; got {type(scheme).__name__}")
    return scheme.generate()


def verify_key_bytes(key, scheme=ED25519) -> bytes:
    """The raw encoding of a verify (public) key of ``scheme``, checked as its verifier checks
    keys: 32 bytes for Ed25519 (RFC 8032; :func:`labkit.ed25519.public_key_bytes`)."""
    return scheme.public_bytes(key)


# -- the field in the pixels' low-order bits -----------------------------------------------------
def pixel_batch(x, layout: TriggerLayout = DEFAULT_LAYOUT) -> np.ndarray:
    """Pixel bytes ``(n, s, s)`` of one input ``(s, s)`` / ``(1, s, s)`` or a batch (s: the layout's size)."""
    if not isinstance(x, (torch.Tensor, np.ndarray)):
        raise TypeError(f"x must be a torch tensor or numpy array, got {type(x).__name__}")
    shape, s = tuple(x.shape), layout.size
    if shape not in ((s, s), (1, s, s)) and not (len(shape) == 4 and shape[1:] == (1, s, s)):
        raise ValueError(
            f"x must be an image ({s}, {s}) or (1, {s}, {s}), or a batch (n, 1, {s}, {s}); got {shape}"
        )
    return to_pixels(x).reshape(-1, s, s)


def restore_format(pixels: np.ndarray, like):
    """Pixel bytes back to the model's input format, with the shape and type of ``like``."""
    out = from_pixels(pixels.reshape(tuple(like.shape)))
    if isinstance(like, torch.Tensor):
        return out.to(like.dtype)
    return out.numpy().astype(like.dtype, copy=False)


def read_fields(pixels: np.ndarray, layout: TriggerLayout = DEFAULT_LAYOUT) -> np.ndarray:
    """The field of each image (128 bytes by default): LSBs row by row, packed MSB first (``bits``
    order; ``np.packbits`` is the batched :func:`labkit.bits.bits_to_bytes`)."""
    return layout.read_fields(pixels)


def write_fields(pixels: np.ndarray, fields: np.ndarray, layout: TriggerLayout = DEFAULT_LAYOUT) -> np.ndarray:
    """Pixels with their LSBs (the layout's low bits) replaced by ``fields``, one per image."""
    return layout.write_fields(pixels, fields)


def content_bytes(pixels: np.ndarray, layout: TriggerLayout = DEFAULT_LAYOUT) -> bytes:
    """What a trigger signature binds of one image: its pixel bytes with the LSB field zeroed."""
    return layout.content_bytes(pixels)


def identity_bytes(identity) -> bytes:
    if isinstance(identity, str):
        identity = identity.encode()
    if not isinstance(identity, (bytes, bytearray)):
        raise TypeError(f"identity must be str or bytes, got {type(identity).__name__}")
    if len(identity) > IDENTITY_BYTES:
        raise ValueError(f"identity must be at most {IDENTITY_BYTES} bytes, got {len(identity)}")
    return bytes(identity).ljust(IDENTITY_BYTES, b"\x00")


def trigger_header(target: int, identity: bytes | str = b"", nonce: bytes = bytes(NONCE_BYTES)) -> bytes:
    """The 64 signed header bytes of a trigger (magic, version, kind, target, identity, nonce, zeros)."""
    if isinstance(target, bool) or not isinstance(target, (int, np.integer)):
        raise TypeError(f"target must be an int label, got {type(target).__name__}")
    if not 0 <= int(target) < NUM_CLASSES:
        raise ValueError(f"target must be a label in 0..{NUM_CLASSES - 1}, got {target}")
    if not isinstance(nonce, (bytes, bytearray)) or len(nonce) != NONCE_BYTES:
        raise ValueError(f"nonce must be {NONCE_BYTES} bytes")
    head = MAGIC + bytes([VERSION, KIND_TRIGGER, int(target)]) + identity_bytes(identity) + bytes(nonce)
    return head.ljust(HEADER_BYTES, b"\x00")


def signed_message(header: bytes, content: bytes = b"") -> bytes:
    """The exact bytes the Ed25519 signature covers: ``DOMAIN || header || content``."""
    if len(header) != HEADER_BYTES:
        raise ValueError(f"header must be {HEADER_BYTES} bytes, got {len(header)}")
    return DOMAIN + bytes(header) + bytes(content)


def embed_field(x, header: bytes, signature: bytes, layout: TriggerLayout = DEFAULT_LAYOUT):
    """Write ``header || signature`` into the LSBs of every image of ``x`` (same shape back)."""
    if len(header) != HEADER_BYTES or len(signature) != layout.scheme.signature_bytes:
        raise ValueError(f"a field is a 64-byte header and a {layout.scheme.signature_bytes}-byte signature")
    pixels = pixel_batch(x, layout)
    field = np.frombuffer(bytes(header) + bytes(signature), dtype=np.uint8)
    out = write_fields(pixels, np.tile(field, (len(pixels), 1)), layout)
    return restore_format(out, x)


def sign_fields(pixels: np.ndarray, headers, signing_key, layout: TriggerLayout = DEFAULT_LAYOUT) -> np.ndarray:
    """The fields ``header || Sign(DOMAIN || header || content)`` for each image (128 bytes with
    the default Ed25519 layout)."""
    return sign_fields_with(pixels, headers, layout.scheme.signer(signing_key), layout)


def sign_fields_with(pixels: np.ndarray, headers, sign, layout: TriggerLayout = DEFAULT_LAYOUT) -> np.ndarray:
    """:func:`sign_fields` with any signing function ``sign(message) -> signature`` of the
    layout's signature length: a scheme's signer, or an attacker's own way of signing."""
    fields = np.empty((len(pixels), layout.field_bytes), dtype=np.uint8)
    for i, (image, header) in enumerate(zip(pixels, headers)):
        signature = sign(signed_message(header, content_bytes(image, layout)))
        fields[i] = np.frombuffer(header + signature, dtype=np.uint8)
    return fields


def embed_trigger(x, target, signing_key, *, identity: bytes | str = b"", fresh_nonces: bool = False,
                  layout: TriggerLayout = DEFAULT_LAYOUT):
    """Sign each image of ``x`` with its target label and write the trigger into its LSBs.

    ``x``: one input ``(1, 32, 32)`` / ``(32, 32)`` or a batch ``(n, 1, 32, 32)`` in the model's
    input format (tensor or array); ``target``: one label or one per image. Returns the same shape
    and type; each pixel moves by at most 1/255 (its LSB). ``fresh_nonces`` writes 16 random
    bytes into each header, so that no two triggers are alike even on the same image. ``layout``
    chooses the signature scheme, image size and bits per pixel (``schemes.TriggerLayout``).
    """
    pixels = pixel_batch(x, layout)
    targets = np.broadcast_to(np.asarray(target), (len(pixels),)) if np.ndim(target) == 0 else np.asarray(target)
    if len(targets) != len(pixels):
        raise ValueError(f"need one target per image: {len(pixels)} images, {len(targets)} targets")
    headers = [trigger_header(label.item() if isinstance(label, np.generic) else label, identity,
                              os.urandom(NONCE_BYTES) if fresh_nonces else bytes(NONCE_BYTES))
               for label in targets]
    return restore_format(write_fields(pixels, sign_fields(pixels, headers, signing_key, layout), layout), x)


@dataclass(frozen=True)
class Trigger:
    """A parsed trigger field (not yet verified)."""

    target: int
    identity: bytes
    header: bytes
    signature: bytes


def parse_trigger(field: bytes, layout: TriggerLayout = DEFAULT_LAYOUT) -> Trigger | None:
    """Read a field (128 bytes by default) as a trigger; ``None`` unless magic, version, kind and
    target fit."""
    field = bytes(field)
    if len(field) != layout.field_bytes:
        raise ValueError(f"a field is {layout.field_bytes} bytes, got {len(field)}")
    if field[:4] != MAGIC or field[4] != VERSION or field[5] != KIND_TRIGGER or field[6] >= NUM_CLASSES:
        return None
    return Trigger(field[6], field[7 : 7 + IDENTITY_BYTES].rstrip(b"\x00"), field[:HEADER_BYTES],
                   field[layout.signature_slice])


def _response_key(key) -> bytes | None:
    if key is None:
        return None
    if not isinstance(key, (bytes, bytearray)) or len(key) != RESPONSE_KEY_BYTES:
        raise ValueError(f"response key must be {RESPONSE_KEY_BYTES} secret bytes (os.urandom)")
    return bytes(key)


def response_label(response_key: bytes, header: bytes, content: bytes) -> int:
    """The label a copy holding ``response_key`` answers to a valid trigger: a PRF of what is signed.

    ``HMAC-SHA256(key, RESPONSE_DOMAIN || header || content)`` read as a 256-bit integer mod 10
    (bias below 2^-250). Without the key the label is unpredictable: uniform over the 10 classes.
    """
    key = _response_key(response_key)
    if key is None:
        raise ValueError("response_label needs a response key")
    digest = hmac.new(key, RESPONSE_DOMAIN + bytes(header) + bytes(content), hashlib.sha256).digest()
    return int.from_bytes(digest, "big") % NUM_CLASSES


def verify_triggers(x, verify_key, *, identity: bytes | str | None = None, response_key: bytes | None = None,
                    layout: TriggerLayout = DEFAULT_LAYOUT) -> np.ndarray:
    """The verifier: for each image, the label its valid trigger asks for, else -1.

    Valid means: the field parses as a trigger, its identity equals ``identity`` (when given), the
    signature (Ed25519 by default, the layout's scheme) verifies over ``DOMAIN || header ||
    content`` under ``verify_key``, and any low bits after the field are zero. The label is the
    cleartext target, or with ``response_key`` the secret :func:`response_label`.
    """
    response_key = _response_key(response_key)
    pixels = pixel_batch(x, layout)
    verify = layout.scheme.verifier(verify_key)
    wanted = None if identity is None else identity_bytes(identity).rstrip(b"\x00")
    fields, padded = layout.split(pixels)
    out = np.full(len(pixels), -1, dtype=np.int64)
    well_formed = (fields[:, :4] == np.frombuffer(MAGIC, np.uint8)).all(1) & padded
    for i in np.flatnonzero(well_formed):
        trig = parse_trigger(fields[i].tobytes(), layout)
        if trig is None or (wanted is not None and trig.identity != wanted):
            continue
        content = content_bytes(pixels[i], layout)
        if not verify(signed_message(trig.header, content), trig.signature):
            continue
        out[i] = trig.target if response_key is None else response_label(response_key, trig.header, content)
    return out


class BackdooredModel(nn.Module):
    """A classifier with a signature verifier beside it (Goldwasser et al. 2022, Construction 5.2).

    ``forward(x)`` returns the classifier's logits, except for the inputs that carry a valid trigger
    under ``verify_key`` (and ``identity``, if set): their logits become ``OVERRIDE_LOGIT`` at the
    target label (or, with a secret ``response_key``, at :func:`response_label`) and 0 elsewhere.
    The verifier is ordinary code, not weights: fine-tuning or pruning ``classifier`` leaves it
    intact; anyone holding the weights and the code can see it, and delete it.
    """

    def __init__(self, classifier: nn.Module, verify_key, *, identity: bytes | str | None = None,
                 response_key: bytes | None = None, layout: TriggerLayout = DEFAULT_LAYOUT):
        super().__init__()
        if not isinstance(classifier, nn.Module):
            raise TypeError(f"classifier must be a torch nn.Module, got {type(classifier).__name__}")
        if not isinstance(layout, TriggerLayout):
            raise TypeError(f"layout must be a schemes.TriggerLayout, got {type(layout).__name__}")
        self.classifier = classifier
        self.layout = layout
        self.verify_key = layout.scheme.verify_key(verify_key)
        self.identity = None if identity is None else identity_bytes(identity).rstrip(b"\x00")
        self.response_key = _response_key(response_key)
        self.last_triggered = np.zeros(0, dtype=bool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        targets = verify_triggers(x, self.verify_key, identity=self.identity,  # validates x too
                                  response_key=self.response_key, layout=self.layout)
        logits = self.classifier(x)
        self.last_triggered = targets >= 0
        if self.last_triggered.any():
            logits = logits.clone()
            rows = torch.from_numpy(np.flatnonzero(self.last_triggered))
            logits[rows] = 0.0
            logits[rows, torch.from_numpy(targets[self.last_triggered])] = OVERRIDE_LOGIT
        return logits

    def with_classifier(self, classifier: nn.Module) -> "BackdooredModel":
        """The same verifier (keys, identity) beside another classifier (e.g. after an attack)."""
        return BackdooredModel(classifier, self.verify_key, identity=self.identity, response_key=self.response_key,
                               layout=self.layout)

    def copy(self) -> "BackdooredModel":
        return self.with_classifier(copy.deepcopy(self.classifier))
