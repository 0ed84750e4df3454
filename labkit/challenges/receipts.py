"""Receipts: the challenge service's signed statement that a student solved an exercise.

A receipt is one line of text the answer cell keeps and the grader checks, outside the student's
process: ``labkit-receipt-v1.<payload>.<signature>``, both parts unpadded base64url. The payload is
canonical JSON (sorted keys, no spaces) of ``student``, ``exercise``, ``time`` (Unix seconds),
``attempts`` (answers the service saw, this one included) and ``service`` (the service's name);
the signature is Ed25519 (RFC 8032, pycryptodome) by the service's key over ``b"labkit-receipt-v1." +
payload bytes``, verified strictly (:func:`labkit.ed25519.verify_strict`: no small-order or
non-canonical points, no identity key, ``S < L``), so a receipt has exactly one valid signature.
The grader pins the service's public key (raw 32 bytes, :func:`labkit.ed25519.public_key_bytes` of
the service's key) and the submission's student id, so a copied, edited or forged receipt fails
:func:`verify_receipt`.
"""
from __future__ import annotations

import base64
import json
import time as _time
from dataclasses import dataclass

from Crypto.PublicKey import ECC
from Crypto.Signature import eddsa

from labkit import ed25519

__all__ = ["Receipt", "ReceiptError", "PREFIX", "sign_receipt", "verify_receipt"]

PREFIX = "labkit-receipt-v1"
_FIELDS = {"student": str, "exercise": str, "time": int, "attempts": int, "service": str}
_MAX_TEXT = 2048  # a receipt is about 250 characters; anything far longer is not one


class ReceiptError(ValueError):
    """A receipt that is malformed, signed by another key, or issued to another student or exercise."""


@dataclass(frozen=True)
class Receipt:
    """What a valid receipt says."""

    student: str
    exercise: str
    time: int
    attempts: int
    service: str


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    if not text or set(text) - set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"):
        raise ReceiptError("receipt parts must be unpadded base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64encode(data) != text:
        raise ReceiptError("receipt parts must be canonical base64url")
    return data


def _canonical(payload: dict) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def sign_receipt(signing_key: ECC.EccKey, *, student: str, exercise: str, attempts: int,
                 service: str, time: int | None = None) -> str:
    """A receipt for ``student`` solving ``exercise`` after ``attempts`` answers (the service's side)."""
    if not isinstance(signing_key, ECC.EccKey) or not signing_key.has_private():
        raise TypeError("signing a receipt needs the service's private Ed25519 key")
    payload = {"student": student, "exercise": exercise, "attempts": attempts, "service": service,
               "time": int(_time.time()) if time is None else time}
    _check_fields(payload)
    body = _canonical(payload)
    signature = eddsa.new(signing_key, "rfc8032").sign(PREFIX.encode() + b"." + body)
    return f"{PREFIX}.{_b64encode(body)}.{_b64encode(signature)}"


def _check_fields(payload: dict) -> None:
    if set(payload) != set(_FIELDS):
        raise ReceiptError(f"a receipt holds exactly the fields {sorted(_FIELDS)}")
    for name, kind in _FIELDS.items():
        value = payload[name]
        if type(value) is not kind:  # bool is not an int here
            raise ReceiptError(f"receipt field {name!r} must be {kind.__name__}")
        if kind is str and not 0 < len(value) <= 200:
            raise ReceiptError(f"receipt field {name!r} must be 1 to 200 characters")
        if kind is int and value < 0:
            raise ReceiptError(f"receipt field {name!r} must not be negative")


def verify_receipt(text: str, public_key: bytes, *, student: str, exercise: str | None = None) -> Receipt:
    """The receipt's content if ``text`` is a receipt signed by ``public_key`` (raw 32 bytes) for
    ``student`` (and ``exercise``, when given); otherwise :class:`ReceiptError` (the grader's side)."""
    if not isinstance(text, str) or len(text) > _MAX_TEXT:
        raise ReceiptError("a receipt is a short string")
    if not isinstance(public_key, (bytes, bytearray)) or len(public_key) != 32:
        raise TypeError("public_key must be the service's raw 32-byte Ed25519 public key")
    parts = text.strip().split(".")
    if len(parts) != 3 or parts[0] != PREFIX:
        raise ReceiptError(f"not a receipt: expected {PREFIX}.<payload>.<signature>")
    body, signature = _b64decode(parts[1]), _b64decode(parts[2])
    if not ed25519.verify_strict(bytes(public_key), PREFIX.encode() + b"." + body, signature):
        raise ReceiptError("the receipt's signature is not the service's")
    try:
        payload = json.loads(body.decode("ascii"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ReceiptError("the receipt's payload is not JSON") from None
    if not isinstance(payload, dict):
        raise ReceiptError("the receipt's payload must be a JSON object")
    _check_fields(payload)
    if _canonical(payload) != body:
        raise ReceiptError("the receipt's payload is not canonical JSON")
    if payload["student"] != student:
        raise ReceiptError("the receipt was issued to another student")
    if exercise is not None and payload["exercise"] != exercise:
        raise ReceiptError("the receipt is for another exercise")
    return Receipt(**payload)
