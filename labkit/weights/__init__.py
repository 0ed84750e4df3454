"""Encrypted model weights (chapter 09): containers, key delivery, selective encryption.

The public API (used by chapter 10's capstone)::

    from labkit import weights
    device = weights.generate_recipient_keypair()           # on the device; send .public_key
    publisher = weights.generate_signing_keypair()          # once, on the server
    weights.seal(model.state_dict(), "model.lkw", [device.public_key],
                 signing_key=publisher.private_key, model_id="user-42", version=3)
    state = weights.open("model.lkw", device.private_key,
                         signer=publisher.public_key, min_version=3)   # dict[str, torch.Tensor]

Failures raise :class:`IntegrityError` (tampering, truncation, wrong signer; subclasses
:class:`FormatError` and :class:`RollbackError`) or :class:`NotARecipientError`; nothing partial
is ever returned. ``container`` holds the file format; ``selective`` the sensitivity analysis,
selective encryption and the CoreLocker-style key.
"""
from labkit.weights.container import (  # noqa: F401
    DEFAULT_CHUNK_SIZE,
    DTYPES,
    FORMAT,
    FORMAT_VERSION,
    MAX_HEADER_BYTES,
    DeviceLicence,
    FormatError,
    Header,
    IntegrityError,
    NotARecipientError,
    RecipientKeyPair,
    RollbackError,
    SealedModel,
    SigningKeyPair,
    WeightsError,
    add_recipients,
    aead_backends,
    chunk_aad,
    chunk_nonce,
    generate_recipient_keypair,
    generate_signing_keypair,
    load_into,
    open,
    parse_header,
    read_header,
    recipient_id,
    revoke_recipients,
    rotate_content_key,
    seal,
    unwrap_content_key,
    zeroise,
)
from labkit.weights.container import __all__ as _container_all

__all__ = list(_container_all) + ["DTYPES"]
