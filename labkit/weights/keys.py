"""Keys of the container: recipients' X25519 key pairs (RFC 7748), device licences (HKDF,
RFC 5869), the publisher's Ed25519 key pair (RFC 8032), and the delivery of a file's content key
to each recipient (HPKE, RFC 9180, or AES-256-GCM under the licence's derived key)."""
from __future__ import annotations

import hashlib
import hmac
import warnings
from dataclasses import dataclass, field

from Crypto.Cipher import AES
from Crypto.Hash import SHA256
from Crypto.Protocol import HPKE
from Crypto.Protocol.DH import import_x25519_private_key, import_x25519_public_key
from Crypto.Protocol.KDF import HKDF
from Crypto.PublicKey import ECC
from Crypto.PublicKey.ECC import EccKey
from Crypto.Random import get_random_bytes

from labkit import ed25519
from labkit.weights.encoding import KEY_BYTES, NONCE_BYTES, TAG_BYTES, content_key_aad
from labkit.weights.encoding import length_prefixed as _lp
from labkit.weights.errors import (IntegrityError, NotARecipientError, SignerRequiredError,
                                   UnverifiedSignerWarning)
from labkit.weights.schema import HpkeRecipient, LicenceRecipient, RecipientRecord

__all__ = ["RecipientKeyPair", "SigningKeyPair", "DeviceLicence", "generate_recipient_keypair",
           "generate_signing_keypair", "recipient_id", "UNVERIFIED"]

_HPKE_INFO = b"labkit.weights/1 content key\x00"


@dataclass(frozen=True)
class RecipientKeyPair:
    """An X25519 key pair (raw 32-byte keys, RFC 7748): the device keeps ``private_key``."""

    private_key: bytes = field(repr=False)
    public_key: bytes

    def __iter__(self):  # allows ``sk, pk = generate_recipient_keypair()``
        return iter((self.private_key, self.public_key))


@dataclass(frozen=True)
class SigningKeyPair:
    """An Ed25519 key pair (32-byte seed and 32-byte public key, RFC 8032) of the publisher."""

    private_key: bytes = field(repr=False)
    public_key: bytes

    def __iter__(self):
        return iter((self.private_key, self.public_key))


@dataclass(frozen=True)
class DeviceLicence:
    """A recipient identified by a device fingerprint and a licence key instead of a key pair.

    The key-encryption key is ``HKDF-SHA256(len || fingerprint || len || licence, salt, info)``
    (RFC 5869); the lengths make the concatenation unambiguous (``ab|c`` differs from ``a|bc``).
    A fingerprint is not secret, so the licence key must carry the entropy (>= 16 bytes).
    """

    device_fingerprint: bytes
    licence_key: bytes = field(repr=False)

    def __post_init__(self):
        for name in ("device_fingerprint", "licence_key"):
            if not isinstance(getattr(self, name), (bytes, bytearray)):
                raise TypeError(f"{name} must be bytes, got {type(getattr(self, name)).__name__}")
        if len(self.licence_key) < 16:
            raise ValueError(f"licence_key must be at least 16 bytes, got {len(self.licence_key)}")

    def derive_key(self, salt: bytes, model_id: str) -> bytes:
        ikm = _lp(self.device_fingerprint) + _lp(self.licence_key)
        info = b"labkit.weights/1 licence key\x00" + model_id.encode()
        return HKDF(ikm, KEY_BYTES, salt, SHA256, context=info)


def generate_recipient_keypair() -> RecipientKeyPair:
    """A fresh X25519 key pair for a device that will receive models (HPKE, RFC 9180)."""
    key = ECC.generate(curve="X25519")
    return RecipientKeyPair(bytes(key.seed), key.public_key().export_key(format="raw"))


def generate_signing_keypair() -> SigningKeyPair:
    """A fresh Ed25519 key pair for the publisher who signs container headers."""
    key = ECC.generate(curve="Ed25519")
    return SigningKeyPair(bytes(key.seed), key.public_key().export_key(format="raw"))


def x25519_public(key) -> EccKey:
    """A recipient's X25519 public key from raw bytes, a key pair or an EccKey (else an error)."""
    if isinstance(key, RecipientKeyPair):
        key = key.public_key
    if isinstance(key, EccKey):
        if key.curve != "Curve25519":
            raise ValueError(f"recipient keys must be X25519, got curve {key.curve}")
        return key.public_key()
    if isinstance(key, (bytes, bytearray)):
        if len(key) != 32:
            raise ValueError(f"an X25519 public key is 32 bytes, got {len(key)}")
        try:
            return import_x25519_public_key(bytes(key))
        except ValueError as err:
            raise ValueError(f"invalid X25519 public key: {err}") from None
    raise TypeError(f"expected an X25519 public key (32 bytes), got {type(key).__name__}")


def x25519_private(key) -> EccKey:
    """A recipient's X25519 private key from raw bytes, a key pair or an EccKey."""
    if isinstance(key, RecipientKeyPair):
        key = key.private_key
    if isinstance(key, EccKey):
        if key.curve != "Curve25519" or not key.has_private():
            raise ValueError("expected an X25519 private key")
        return key
    if isinstance(key, (bytes, bytearray)):
        if len(key) != 32:
            raise ValueError(f"an X25519 private key is 32 bytes, got {len(key)}")
        return import_x25519_private_key(bytes(key))
    raise TypeError(f"expected an X25519 private key (32 bytes), got {type(key).__name__}")


def signing_key(key) -> EccKey:
    """The publisher's Ed25519 private key: a :class:`SigningKeyPair`, or an EccKey or 32-byte
    private key (:func:`labkit.ed25519.private_key`)."""
    return ed25519.private_key(key.private_key if isinstance(key, SigningKeyPair) else key)


def signing_public(key) -> bytes:
    """The raw public key of a signing key given as :func:`signing_key` accepts."""
    return ed25519.public_key_bytes(signing_key(key))


def signer_public_bytes(signer) -> bytes:
    """A publisher's raw Ed25519 public key, to pin: a :class:`SigningKeyPair`, or an EccKey or
    32 bytes, checked strictly (:func:`labkit.ed25519.public_key_bytes`): the identity, a point of
    small or mixed order or a non-canonical encoding raises ``ed25519.StrictnessError`` (a
    ValueError), so no pinned signer is a key under which forged signatures verify."""
    return ed25519.public_key_bytes(signer.public_key if isinstance(signer, SigningKeyPair) else signer)


class _Unverified:
    """The type of :data:`UNVERIFIED` (one instance; compare with ``is``)."""

    def __repr__(self) -> str:
        return "weights.UNVERIFIED"


UNVERIFIED = _Unverified()
"""``signer=weights.UNVERIFIED`` opens a container signed by *anyone* (with a warning). Only for
inspecting files of unknown origin: the result may be an outsider's weights."""

REQUIRED = type("Required", (), {"__repr__": lambda self: "<required>"})()
"""Default of ``signer=`` parameters: naming the signer is required (see
:class:`SignerRequiredError`)."""


def expected_signer(signer, *, stacklevel: int = 3) -> bytes | None:
    """The raw public key a caller pins, or None for :data:`UNVERIFIED` (after a warning);
    :class:`SignerRequiredError` if the caller named no signer."""
    if signer is UNVERIFIED:
        warnings.warn("opening a container with signer=weights.UNVERIFIED: anyone who knows the "
                      "recipient's public key can have sealed it (any weights, model id and "
                      "version); pin the publisher's key in real use", UnverifiedSignerWarning,
                      stacklevel=stacklevel)
        return None
    if signer is REQUIRED or signer is None:
        raise SignerRequiredError(
            "name the expected signer: signer=<the publisher's Ed25519 public key> (or "
            "signer=weights.UNVERIFIED to accept a file sealed by anyone, with a warning); "
            "without it an outsider with the recipient's public key can seal a file that opens")
    return signer_public_bytes(signer)


def recipient_kid(public_key) -> bytes:
    """The 8-byte key id of an X25519 recipient, as the header stores it: SHA-256 of a domain
    string and its raw key, truncated."""
    raw = x25519_public(public_key).export_key(format="raw")
    return hashlib.sha256(b"labkit.weights recipient\x00" + raw).digest()[:8]


def recipient_id(public_key) -> str:
    """A short public identifier of an X25519 recipient: its key id (:func:`recipient_kid`) in
    hex, the form users name recipients by (and the one bound into the wrapped key's AAD)."""
    return recipient_kid(public_key).hex()


def licence_kid(kek: bytes) -> bytes:
    """The 8-byte key id of a licence recipient: a hash of its derived key."""
    return hashlib.sha256(b"labkit.weights licence id\x00" + kek).digest()[:8]


def find_licence(entry: LicenceRecipient, licences, model_id: str) -> DeviceLicence:
    """The licence among ``licences`` that a header's licence recipient ``entry`` was made for."""
    for lic in licences:
        if licence_kid(lic.derive_key(entry.salt, model_id)) == entry.kid:
            return lic
    raise ValueError(f"licence recipient {entry.kid.hex()} needs its DeviceLicence in licences= "
                     "to receive the new content key (or revoke it too)")


def wrap_content_key(recipient, content_key: bytes, model_id: str) -> RecipientRecord:
    """The header's recipient record: ``content_key`` sealed to one recipient (HPKE base mode
    for a public key, AES-256-GCM under the HKDF-derived key for a :class:`DeviceLicence`).
    The associated data binds the model id and the key id (:func:`content_key_aad`)."""
    if isinstance(recipient, DeviceLicence):
        salt = get_random_bytes(16)
        kek = recipient.derive_key(salt, model_id)
        kid = licence_kid(kek)
        nonce = get_random_bytes(NONCE_BYTES)
        cipher = AES.new(kek, AES.MODE_GCM, nonce=nonce)
        cipher.update(content_key_aad(model_id, kid.hex()))
        ct, tag = cipher.encrypt_and_digest(content_key)
        return LicenceRecipient(kid=kid, salt=salt, nonce=nonce, ct=ct + tag)
    public = x25519_public(recipient)
    kid = recipient_kid(public)
    sender = HPKE.new(receiver_key=public, aead_id=HPKE.AEAD.AES256_GCM,
                      info=_HPKE_INFO + model_id.encode())
    ct = sender.seal(content_key, content_key_aad(model_id, kid.hex()))
    return HpkeRecipient(kid=kid, pk=public.export_key(format="raw"), enc=sender.enc, ct=ct)


def unwrap_content_key_for(recipients, model_id: str, private_key) -> bytes:
    """The content key from the recipient record (of ``recipients``, a manifest's) made for
    ``private_key`` (an X25519 key or a :class:`DeviceLicence`)."""
    if isinstance(private_key, DeviceLicence):
        for r in recipients:
            if not isinstance(r, LicenceRecipient):
                continue
            kek = private_key.derive_key(r.salt, model_id)
            kid = licence_kid(kek)
            if hmac.compare_digest(kid, r.kid):
                cipher = AES.new(kek, AES.MODE_GCM, nonce=r.nonce)
                cipher.update(content_key_aad(model_id, kid.hex()))
                try:
                    return cipher.decrypt_and_verify(r.ct[:-TAG_BYTES], r.ct[-TAG_BYTES:])
                except ValueError:
                    raise IntegrityError("wrapped content key fails authentication") from None
        raise NotARecipientError("this device licence is not among the file's recipients")
    key = x25519_private(private_key)
    kid = recipient_kid(key.public_key())
    for r in recipients:
        if isinstance(r, HpkeRecipient) and r.kid == kid:
            try:
                receiver = HPKE.new(receiver_key=key, aead_id=HPKE.AEAD.AES256_GCM, enc=r.enc,
                                    info=_HPKE_INFO + model_id.encode())
                return receiver.unseal(r.ct, content_key_aad(model_id, kid.hex()))
            except ValueError:
                raise IntegrityError("wrapped content key fails authentication") from None
    raise NotARecipientError(f"key {kid.hex()} is not among the file's recipients "
                             f"({', '.join(r.kid.hex() for r in recipients) or 'none'})")
