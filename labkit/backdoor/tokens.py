"""User authentication with the backdoor's field: tokens bound to the query, replay store on disk.

Ngo, Chattopadhyay and Maitra (2025, §5) let a service answer only queries that carry a valid
token in the trigger field. A token that signs only (user, expiry, nonce) is a bearer ticket:
moved onto another image it still passes, and a replay cache kept in one process forgets
everything on a restart and is not seen by a second replica. Here:

- the issuer's Ed25519 signature covers ``DOMAIN || header || content``, where ``content`` is the
  query image with its LSB field cleared (as for triggers), so a token authorises one query;
- the header carries the user id, the expiry (Unix seconds) and a 16-byte random nonce;
- the service records every accepted nonce with its expiry in a :class:`ReplayStore`, a SQLite
  file shared by all replicas and kept across restarts; tokens valid for longer than
  ``max_lifetime`` are refused, so the store stays small.

Clock skew. A replica refuses a token once *its* clock passes the expiry, but replicas' clocks
differ. If a replica whose clock runs ahead deleted a nonce at expiry, a replica running behind
would still take the token as unexpired and accept it again (a one-time token replayed). So the
store keeps every nonce until ``expiry + max_clock_skew`` (a property of the store file, the same
for every replica). If every two replicas' clocks differ by at most ``max_clock_skew`` and no clock
runs backward, a nonce deleted at real time t by replica P (clock >= expiry + skew) is never asked
for again: any replica Q at t' >= t has clock(Q, t') >= clock(Q, t) >= clock(P, t) - skew >= expiry,
and refuses the token as expired before it looks at the store.

The signature scheme and where the field lives are a parameter (``layout``,
:class:`labkit.backdoor.schemes.TriggerLayout`): Ed25519 (verified strictly, ``labkit.ed25519``)
in the LSBs of a 32x32 image by default, ML-DSA-44 on a larger image for post-quantum tokens.
Tokens need no unique signature: a replay is caught by the signed nonce, not by the signature bytes.
"""
from __future__ import annotations

import math
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from torch import nn

from labkit.digits import from_pixels, predict
from labkit.backdoor.schemes import DEFAULT_LAYOUT, HEADER_BYTES, TriggerLayout
from labkit.backdoor.trigger import (
    KIND_TOKEN,
    MAGIC,
    VERSION,
    pixel_batch,
    identity_bytes,
    content_bytes,
    embed_field,
    read_fields,
    signed_message,
)

__all__ = ["token_header", "Token", "TokenIssuer", "attach_token", "ReplayStore", "AuthResult",
           "AuthenticatedModel", "DEFAULT_MAX_CLOCK_SKEW"]

NONCE_BYTES = 16


def token_header(user_id: bytes | str, expiry: int, nonce: bytes) -> bytes:
    """The 64 signed header bytes of a token: magic, version, kind 2, user id, expiry, nonce."""
    if isinstance(expiry, bool) or not isinstance(expiry, (int, np.integer)) or not 0 <= expiry < 2**64:
        raise ValueError(f"expiry must be an int number of seconds in [0, 2^64), got {expiry!r}")
    if not isinstance(nonce, (bytes, bytearray)) or len(nonce) != NONCE_BYTES:
        raise ValueError(f"nonce must be {NONCE_BYTES} bytes")
    head = MAGIC + bytes([VERSION, KIND_TOKEN]) + identity_bytes(user_id) + int(expiry).to_bytes(8, "big")
    return (head + bytes(nonce)).ljust(HEADER_BYTES, b"\x00")


@dataclass(frozen=True)
class Token:
    """An access token for one image: user id, expiry (Unix seconds), nonce, issuer's signature."""

    user_id: bytes
    expiry: int
    nonce: bytes
    signature: bytes

    @property
    def header(self) -> bytes:
        return token_header(self.user_id, self.expiry, self.nonce)

    @classmethod
    def from_field(cls, field_bytes: bytes, layout: TriggerLayout = DEFAULT_LAYOUT) -> "Token | None":
        """Parse a field (128 bytes by default) as a token; ``None`` if it is not one."""
        f = bytes(field_bytes)
        if len(f) != layout.field_bytes or f[:4] != MAGIC or f[4] != VERSION or f[5] != KIND_TOKEN:
            return None
        return cls(f[6:22].rstrip(b"\x00"), int.from_bytes(f[22:30], "big"), f[30:46], f[layout.signature_slice])


def _one_image(x, layout: TriggerLayout = DEFAULT_LAYOUT) -> np.ndarray:
    pixels = pixel_batch(x, layout)
    if len(pixels) != 1:
        raise ValueError(f"a token authorises one image, got a batch of {len(pixels)}")
    return pixels[0]


class TokenIssuer:
    """The issuer: holds the signing key; signs a user's query image into a one-time token."""

    def __init__(self, signing_key, *, layout: TriggerLayout = DEFAULT_LAYOUT) -> None:
        self.layout = layout
        self.signing_key = layout.scheme.signing_key(signing_key)

    @property
    def verify_key(self) -> bytes:
        return self.layout.scheme.public_bytes(self.signing_key)

    def issue(self, user_id: bytes | str, image, *, expiry: int) -> Token:
        """A token for ``user_id`` valid on ``image`` only (its LSB field aside) until ``expiry``."""
        nonce = os.urandom(NONCE_BYTES)
        uid = identity_bytes(user_id).rstrip(b"\x00")
        image = _one_image(image, self.layout)
        message = signed_message(token_header(uid, expiry, nonce), content_bytes(image, self.layout))
        return Token(uid, int(expiry), nonce, self.layout.scheme.signer(self.signing_key)(message))


def attach_token(image, token: Token, layout: TriggerLayout = DEFAULT_LAYOUT):
    """The client's step: write ``token`` into the LSB field of the image it was issued for."""
    if not isinstance(token, Token):
        raise TypeError(f"token must be a Token, got {type(token).__name__}")
    _one_image(image, layout)
    return embed_field(image, token.header, token.signature, layout)


DEFAULT_MAX_CLOCK_SKEW = 300  # seconds two replicas' clocks may differ by


class ReplayStore:
    """The nonces of accepted tokens, in a SQLite file shared by every replica of the service.

    :meth:`record` inserts a nonce in one transaction (``BEGIN IMMEDIATE`` serialises writers across
    processes); it returns False when the nonce is already there. Entries are deleted once
    ``expiry + max_clock_skew`` has passed (module docstring: why the skew). ``max_clock_skew``
    (whole seconds) is written into the file when it is created; opening it again with another
    value raises ValueError, and ``None`` takes the file's (or 300 s for a new file).
    """

    def __init__(self, path: str | os.PathLike, *, max_clock_skew: int | None = None) -> None:
        if max_clock_skew is not None and (isinstance(max_clock_skew, bool) or not isinstance(max_clock_skew, int)
                                           or max_clock_skew < 0):
            raise ValueError(f"max_clock_skew must be a non-negative int of seconds, got {max_clock_skew!r}")
        self.path = Path(path)
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")
            db.execute("CREATE TABLE IF NOT EXISTS used (nonce BLOB PRIMARY KEY, expiry INTEGER NOT NULL)")
            db.execute("CREATE INDEX IF NOT EXISTS used_expiry ON used (expiry)")
            db.execute("CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value INTEGER NOT NULL)")
            wanted = DEFAULT_MAX_CLOCK_SKEW if max_clock_skew is None else max_clock_skew
            db.execute("INSERT OR IGNORE INTO settings VALUES ('max_clock_skew', ?)", (wanted,))
            stored = db.execute("SELECT value FROM settings WHERE name = 'max_clock_skew'").fetchone()[0]
            db.execute("COMMIT")
        finally:
            db.close()
        if max_clock_skew is not None and stored != max_clock_skew:
            raise ValueError(f"this replay store keeps nonces for max_clock_skew={stored} s after expiry; "
                             f"every replica must use the same value, got {max_clock_skew}")
        self.max_clock_skew = int(stored)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30.0, isolation_level=None)

    def record(self, nonce: bytes, expiry: int, now: float) -> bool:
        """Store ``nonce`` (valid until ``expiry``) unless already used; prune entries whose
        ``expiry + max_clock_skew`` has passed at ``now``."""
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")
            db.execute("DELETE FROM used WHERE expiry <= ?", (math.floor(now) - self.max_clock_skew,))
            fresh = db.execute("INSERT OR IGNORE INTO used VALUES (?, ?)", (bytes(nonce), int(expiry))).rowcount == 1
            db.execute("COMMIT")
            return fresh
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        finally:
            db.close()

    def prune(self, now: float) -> int:
        """Delete the entries whose ``expiry + max_clock_skew`` has passed at ``now``; return how many."""
        db = self._connect()
        try:
            return db.execute("DELETE FROM used WHERE expiry <= ?", (math.floor(now) - self.max_clock_skew,)).rowcount
        finally:
            db.close()

    def __len__(self) -> int:
        db = self._connect()
        try:
            return db.execute("SELECT COUNT(*) FROM used").fetchone()[0]
        finally:
            db.close()


@dataclass(frozen=True)
class AuthResult:
    """The service's answer to one query: the label if accepted, else why not."""

    accepted: bool
    reason: str
    label: int | None = None
    user_id: bytes | None = None


class AuthenticatedModel:
    """The service: a classifier that answers only queries carrying a valid token for that image.

    Checks, in order: a token is present; the issuer's signature verifies over the header and this
    image (a token moved to another image, signed by anyone else or modified fails); it has not
    expired at ``clock()``; it is not valid for more than ``max_lifetime`` seconds; its nonce is new
    to ``replay_store`` (a path or :class:`ReplayStore`; shared by replicas, kept across restarts,
    holding each nonce until ``expiry + max_clock_skew``: the bound on how far replicas' clocks differ).
    """

    def __init__(self, classifier: nn.Module, verify_key, *, replay_store, max_lifetime: float = 3600.0,
                 clock: Callable[[], float] = time.time, layout: TriggerLayout = DEFAULT_LAYOUT):
        if not isinstance(classifier, nn.Module):
            raise TypeError(f"classifier must be a torch nn.Module, got {type(classifier).__name__}")
        self.classifier = classifier
        self.layout = layout
        self.verify_key = layout.scheme.verify_key(verify_key)
        self.replay_store = replay_store if isinstance(replay_store, ReplayStore) else ReplayStore(replay_store)
        if not max_lifetime > 0:
            raise ValueError(f"max_lifetime must be positive seconds, got {max_lifetime!r}")
        self.max_lifetime = float(max_lifetime)
        self.clock = clock

    def _check(self, field: np.ndarray, image: np.ndarray) -> AuthResult:
        token = Token.from_field(field.tobytes(), self.layout)
        if token is None or not self.layout.padding_is_zero(image)[0]:
            return AuthResult(False, "no token")
        message = signed_message(field[:HEADER_BYTES].tobytes(), content_bytes(image, self.layout))
        if not self.layout.scheme.verifier(self.verify_key)(message, token.signature):
            return AuthResult(False, "bad signature", user_id=token.user_id)
        now = self.clock()
        if now >= token.expiry:
            return AuthResult(False, "expired", user_id=token.user_id)
        if token.expiry - now > self.max_lifetime:
            return AuthResult(False, "lifetime too long", user_id=token.user_id)
        if not self.replay_store.record(token.nonce, token.expiry, now):
            return AuthResult(False, "replayed", user_id=token.user_id)
        return AuthResult(True, "accepted", user_id=token.user_id)

    def query(self, x) -> list[AuthResult]:
        pixels = pixel_batch(x, self.layout)
        results = [self._check(f, image) for f, image in zip(read_fields(pixels, self.layout), pixels)]
        if any(r.accepted for r in results):
            labels = predict(self.classifier, from_pixels(pixels).unsqueeze(1))
            results = [AuthResult(True, r.reason, int(labels[i]), r.user_id) if r.accepted else r
                       for i, r in enumerate(results)]
        return results
