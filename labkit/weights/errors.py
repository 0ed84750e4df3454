"""The exceptions of :mod:`labkit.weights`: every failure to open or manage a container is one
of these, whatever the file holds (nothing else escapes, nothing partial is returned)."""
from __future__ import annotations

__all__ = ["WeightsError", "IntegrityError", "FormatError", "RollbackError",
           "NotARecipientError"]


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
