"""The exceptions of :mod:`labkit.weights`: every failure to open or manage a container is one
of these, whatever the file holds (nothing else escapes, nothing partial is returned)."""
from __future__ import annotations

__all__ = ["WeightsError", "IntegrityError", "FormatError", "RollbackError",
           "NotARecipientError", "SignerRequiredError", "UnverifiedSignerWarning"]


class WeightsError(Exception):
    """Base class of every failure to open or manage an encrypted model."""


class IntegrityError(WeightsError):
    """Authentication failed: a tag, digest, MAC or signature does not verify, or data is missing."""


class FormatError(IntegrityError):
    """The file is not a well-formed container (bad header, unknown version, wrong sizes)."""


class RollbackError(IntegrityError):
    """A valid but older model version than the caller accepts (a replayed file)."""


class NotARecipientError(WeightsError):
    """The key given is not one of the file's recipients (or the licence does not match)."""


class SignerRequiredError(WeightsError, TypeError):
    """``open`` was called without naming the publisher whose signature it must accept.

    A call mistake (hence also a ``TypeError``), refused before the file is read: without a
    pinned signer anyone holding the recipient's *public* key can seal a whole file of their own
    (their weights, any model id, any version) that passes every check. Pass
    ``signer=<publisher's Ed25519 public key>``, or ``signer=weights.UNVERIFIED`` to accept any.
    """


class UnverifiedSignerWarning(UserWarning):
    """A container was opened with ``signer=weights.UNVERIFIED``: its origin is not checked."""
