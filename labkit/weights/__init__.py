"""Encrypted model weights (chapter 09): containers, key delivery, selective encryption.

The public API (used by chapter 10's capstone)::

    from labkit import weights
    device = weights.generate_recipient_keypair()           # on the device; send .public_key
    publisher = weights.generate_signing_keypair()          # once, on the server
    weights.seal(model.state_dict(), "model.lkw", [device.public_key],
                 signing_key=publisher.private_key, model_id="user-42", version=3)
    state = weights.open("model.lkw", device.private_key,
                         signer=publisher.public_key, model_id="user-42", min_version=3)

Always pass ``model_id`` and ``min_version`` too. The signature proves only who sealed the file,
and every model the publisher ever sealed for this device verifies: without ``model_id`` a
substituted file (another of its models) opens, without ``min_version`` a rolled-back one (an
older signed version, say with a known flaw). A device keeps the id it expects and the highest
version it has installed (as ``labkit.capstone.Device`` does).

The expected signer is required: ``open`` without it raises :class:`SignerRequiredError`, and
``signer=weights.UNVERIFIED`` (for inspecting files of unknown origin) opens with an
:class:`UnverifiedSignerWarning`. Failures raise :class:`IntegrityError` (tampering, truncation,
wrong signer; subclasses :class:`FormatError` and :class:`RollbackError`) or
:class:`NotARecipientError`, whatever the file holds; nothing partial is ever returned.

Modules, one concern each: ``errors``; ``keys`` (key pairs, licences, content-key delivery);
``encoding`` (constants, associated data, nonces, dtypes); ``schema`` (the manifest's frozen
typed records and the one reader that builds them, in bounded memory); ``format`` (the header:
parse, write, authenticate, byte regions); ``aead`` (AES-256-GCM engines, DEK
wrapping); ``fileio`` (files, memory, threads); ``container`` (seal, open); ``recipients``
(add, revoke, rotate); ``selective`` (sensitivity, selective encryption, CoreLocker-style keys);
``pitfalls`` (counter-examples). ``weights.open`` is an attribute of the package but not in
``__all__``, so ``from labkit.weights import *`` does not shadow the built-in ``open``; the
helpers the chapter shows (``chunk_aad``, ``chunk_nonce``, ``dek_aad``, ``zeroise``, ``parse_header``) are
attributes too, not part of the star-import API.
"""
from labkit.weights.aead import aead_backends
from labkit.weights.container import open  # noqa: F401  (an attribute, not in __all__)
from labkit.weights.container import SealedModel, load_into, seal, unwrap_content_key
from labkit.weights.encoding import (DEFAULT_CHUNK_SIZE, DTYPES, FORMAT, FORMAT_VERSION,
                                     MAX_HEADER_BYTES)
from labkit.weights.encoding import chunk_aad, chunk_nonce, dek_aad  # noqa: F401
from labkit.weights.errors import (FormatError, IntegrityError, NotARecipientError,
                                   RollbackError, SignerRequiredError, UnverifiedSignerWarning,
                                   WeightsError)
from labkit.weights.fileio import zeroise  # noqa: F401
from labkit.weights.format import Header, read_header
from labkit.weights.format import file_regions, parse_header
from labkit.weights.keys import (UNVERIFIED, DeviceLicence, RecipientKeyPair, SigningKeyPair,
                                 generate_recipient_keypair, generate_signing_keypair,
                                 recipient_id)
from labkit.weights.recipients import add_recipients, revoke_recipients, rotate_content_key

__all__ = [
    "FORMAT", "FORMAT_VERSION", "DEFAULT_CHUNK_SIZE", "MAX_HEADER_BYTES", "DTYPES",
    "WeightsError", "IntegrityError", "FormatError", "RollbackError", "NotARecipientError",
    "SignerRequiredError", "UnverifiedSignerWarning", "UNVERIFIED",
    "RecipientKeyPair", "SigningKeyPair", "DeviceLicence", "SealedModel", "Header",
    "generate_recipient_keypair", "generate_signing_keypair", "recipient_id",
    "seal", "load_into", "read_header", "file_regions", "parse_header", "unwrap_content_key",
    "add_recipients", "revoke_recipients", "rotate_content_key", "aead_backends",
]
