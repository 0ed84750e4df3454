"""Recipient management of a sealed container: add and revoke recipients, rotate the content key.

Only the header changes (re-signed, version + 1) unless ``rotate_content_key(...,
reencrypt=True)`` seals every tensor again. Every operation first verifies the header with the
pinned signer (``signer=``, by default the public half of ``signing_key``: the publisher rewrites
only what it signed itself), and then reads only the open file it verified: a file swapped at
the path meanwhile is never read, one changed in place fails its tags.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Iterable, Sequence

from Crypto.Random import get_random_bytes

from labkit.weights import aead, fileio
from labkit.weights import format as fmt
from labkit.weights.container import as_recipient_list, decrypt_tensors, seal, verified_header
from labkit.weights.encoding import KEY_BYTES
from labkit.weights.keys import (DeviceLicence, find_licence, signing_public, signer_public_bytes,
                                 wrap_content_key)
from labkit.weights.schema import HpkeRecipient, Manifest, RecipientRecord, TensorRecord

__all__ = ["add_recipients", "revoke_recipients", "rotate_content_key"]


def _rewrite(path: Path, fd: int, header: fmt.Header, manifest: Manifest, content_key: bytes,
             signing_key) -> None:
    """Replace ``path`` by the header of the records ``manifest`` (written canonically, MAC'd
    and signed) and the data region copied from ``fd`` (the file whose header was verified),
    atomically."""
    new_header = fmt.build_header(manifest.as_json(), content_key, signing_key)
    data_len = os.fstat(fd).st_size - header.data_start

    def write(out):
        fileio.pwrite_all(out, new_header, 0)
        block = memoryview(bytearray(min(8 << 20, max(data_len, 1))))
        for pos in range(0, data_len, len(block)):
            piece = block[: min(len(block), data_len - pos)]
            fileio.preadv_all(fd, piece, header.data_start + pos)
            fileio.pwrite_all(out, piece, len(new_header) + pos)

    fileio.atomic_write(path, write)


@contextmanager
def _managed(path, private_key, signing_key, signer):
    """Open ``path`` once, verify its header with the pinned signer (default: the public half
    of ``signing_key``: the publisher only rewrites what it signed) and yield
    ``(path, fd, header, content key)``; everything later reads that ``fd``. The operations
    read the header's typed records and make new ones (:func:`dataclasses.replace`), which
    :func:`_rewrite` writes back canonically and signs."""
    path = Path(path)
    pinned = signer_public_bytes(signer) if signer is not None else signing_public(signing_key)
    fd = os.open(path, os.O_RDONLY)
    try:
        header, ck = verified_header(fd, private_key, pinned)
        try:
            yield path, fd, header, bytes(ck)
        finally:
            fileio.zeroise(ck)
    finally:
        os.close(fd)


def add_recipients(path, recipients, *, private_key, signing_key, signer=None) -> list[str]:
    """Give more recipients the content key; no tensor is re-encrypted. Returns the new kids.

    ``private_key`` is any current recipient's key (the publisher typically keeps one for
    itself); ``signing_key`` must be the key that signed the file. The version is incremented.
    """
    with _managed(path, private_key, signing_key, signer) as (path, fd, header, ck):
        m = header.parsed
        new = [wrap_content_key(r, ck, m.model_id) for r in as_recipient_list(recipients)]
        kids = [r.kid for r in m.recipients + tuple(new)]
        if len(set(kids)) != len(kids):
            raise ValueError("a recipient is already in the file")
        _rewrite(path, fd, header, replace(m, recipients=m.recipients + tuple(new),
                                           version=m.version + 1), ck, signing_key)
    return [r.kid.hex() for r in new]


def revoke_recipients(path, kids: Iterable[str], *, private_key, signing_key, signer=None,
                      licences: Sequence[DeviceLicence] = (), rotate: bool = True) -> None:
    """Remove recipients (by kid, see :func:`recipient_id`) and by default rotate the content key.

    What this can promise: the revoked party cannot unwrap the *new* content key, so it cannot
    open this header, nor later versions whose tensors are re-encrypted. What it cannot: the
    DEKs are unchanged (no tensor is re-encrypted), so anyone who once opened the file and kept
    its content key, DEKs or plaintext still reads the unchanged tensors; cryptography cannot
    make a device forget. For that, ``rotate_content_key(..., reencrypt=True)`` (fresh DEKs) and
    ``open(..., min_version=...)`` on devices, or simply publish a new model.
    """
    if isinstance(kids, str):
        kids = [kids]
    kids = set(kids)
    with _managed(path, private_key, signing_key, signer) as (path, fd, header, ck):
        m = header.parsed
        present = {r.kid.hex() for r in m.recipients}
        if not kids <= present:
            raise ValueError(f"not recipients of this file: {sorted(kids - present)}")
        kept = tuple(r for r in m.recipients if r.kid.hex() not in kids)
        if not kept:
            raise ValueError("cannot revoke every recipient")
        m = replace(m, recipients=kept, version=m.version + 1)
        if rotate:
            m, ck = _rotate(m, ck, _seal_recipients(kept, licences, m.model_id))
        _rewrite(path, fd, header, m, ck, signing_key)


def _seal_recipients(records: Sequence[RecipientRecord], licences: Sequence[DeviceLicence],
                     model_id: str) -> list:
    """Recipient records as :func:`seal` takes recipients: an HPKE recipient's public key as
    the header stores it, a licence recipient's :class:`DeviceLicence` (which must be given)."""
    return [r.pk if isinstance(r, HpkeRecipient) else find_licence(r, licences, model_id)
            for r in records]


def _rotate(m: Manifest, ck: bytes, recipients: list) -> tuple[Manifest, bytes]:
    """A new content key: the records ``m`` with every DEK rewrapped under it and the key
    delivered to ``recipients`` (as :func:`seal` takes them); returns them and the key."""
    new_ck = get_random_bytes(KEY_BYTES)

    def rewrap(t: TensorRecord) -> TensorRecord:
        if not t.encrypted:
            return t
        dek = aead.unwrap_dek(ck, t.wrapped_dek, m.model_id, t.name)
        return replace(t, wrapped_dek=bytes.fromhex(aead.wrap_dek(new_ck, dek, m.model_id,
                                                                  t.name)))

    return replace(m, tensors=tuple(rewrap(t) for t in m.tensors),
                   recipients=tuple(wrap_content_key(r, new_ck, m.model_id)
                                    for r in recipients)), new_ck


def rotate_content_key(path, *, private_key, signing_key, signer=None,
                       licences: Sequence[DeviceLicence] = (), reencrypt: bool = False,
                       workers: int | None = None) -> None:
    """Replace the content key: rewrap every DEK and re-deliver the new key to each recipient.

    HPKE recipients are re-keyed from the public keys stored in the header; licence recipients
    need their :class:`DeviceLicence` in ``licences``. No tensor is touched unless
    ``reencrypt=True``, which decrypts and seals everything again with fresh DEKs and nonces
    (the only way to cut off someone who kept the old DEKs). The version is incremented.
    """
    workers = fileio.default_workers(workers)
    with _managed(path, private_key, signing_key, signer) as (path, fd, header, ck):
        m = header.parsed
        current = _seal_recipients(m.recipients, licences, m.model_id)
        if not reencrypt:
            new, ck = _rotate(replace(m, version=m.version + 1), ck, current)
            _rewrite(path, fd, header, new, ck, signing_key)
            return
        # the tensors of the header just verified, read from the same descriptor
        tensors = decrypt_tensors(fd, header, ck, workers, aead.backend(None))
    seal(tensors, path, current, signing_key=signing_key,
         encrypt=[t.name for t in m.tensors if t.encrypted], model_id=m.model_id,
         version=m.version + 1, chunk_size=m.chunk_size, metadata=m.metadata, workers=workers)
