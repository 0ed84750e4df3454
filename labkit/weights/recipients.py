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
from pathlib import Path
from typing import Iterable, Sequence

from Crypto.Random import get_random_bytes

from labkit.weights import aead, fileio
from labkit.weights import format as fmt
from labkit.weights.container import as_recipient_list, decrypt_tensors, seal, verified_header
from labkit.weights.encoding import KEY_BYTES
from labkit.weights.keys import (DeviceLicence, find_licence, signing_public, signer_public_bytes,
                                 wrap_content_key)
from labkit.weights.schema import HpkeRecipient, RecipientRecord

__all__ = ["add_recipients", "revoke_recipients", "rotate_content_key"]


def _rewrite(path: Path, fd: int, header: fmt.Header, manifest: dict, content_key: bytes,
             signing_key) -> None:
    """Replace ``path`` by the new header and the data region copied from ``fd`` (the file
    whose header was verified), atomically."""
    new_header = fmt.build_header(manifest, content_key, signing_key)
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
    ``(path, fd, header, manifest copy, content key)``; everything later reads that ``fd``.
    The operations read the header's typed records and edit the JSON copy, which
    :func:`~labkit.weights.format.build_header` writes back canonically and signs."""
    path = Path(path)
    pinned = signer_public_bytes(signer) if signer is not None else signing_public(signing_key)
    fd = os.open(path, os.O_RDONLY)
    try:
        header, ck = verified_header(fd, private_key, pinned)
        try:
            yield path, fd, header, header.parsed.as_json(), bytes(ck)
        finally:
            fileio.zeroise(ck)
    finally:
        os.close(fd)


def add_recipients(path, recipients, *, private_key, signing_key, signer=None) -> list[str]:
    """Give more recipients the content key; no tensor is re-encrypted. Returns the new kids.

    ``private_key`` is any current recipient's key (the publisher typically keeps one for
    itself); ``signing_key`` must be the key that signed the file. The version is incremented.
    """
    with _managed(path, private_key, signing_key, signer) as (path, fd, header, manifest, ck):
        new = [wrap_content_key(r, ck, header.model_id) for r in as_recipient_list(recipients)]
        kids = [r.kid for r in header.parsed.recipients + tuple(new)]
        if len(set(kids)) != len(kids):
            raise ValueError("a recipient is already in the file")
        manifest["recipients"] += [r.as_json() for r in new]
        manifest["version"] += 1
        _rewrite(path, fd, header, manifest, ck, signing_key)
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
    with _managed(path, private_key, signing_key, signer) as (path, fd, header, manifest, ck):
        present = {r.kid.hex() for r in header.parsed.recipients}
        if not kids <= present:
            raise ValueError(f"not recipients of this file: {sorted(kids - present)}")
        kept = [r for r in header.parsed.recipients if r.kid.hex() not in kids]
        if not kept:
            raise ValueError("cannot revoke every recipient")
        manifest["recipients"] = [r.as_json() for r in kept]
        if rotate:
            ck = _rotate(manifest, ck, _seal_recipients(kept, licences, header.model_id))
        manifest["version"] += 1
        _rewrite(path, fd, header, manifest, ck, signing_key)


def _seal_recipients(records: Sequence[RecipientRecord], licences: Sequence[DeviceLicence],
                     model_id: str) -> list:
    """Recipient records as :func:`seal` takes recipients: an HPKE recipient's public key as
    the header stores it, a licence recipient's :class:`DeviceLicence` (which must be given)."""
    return [r.pk if isinstance(r, HpkeRecipient) else find_licence(r, licences, model_id)
            for r in records]


def _rotate(manifest: dict, ck: bytes, recipients: list) -> bytes:
    """New content key: rewrap every DEK, re-deliver to ``recipients`` (as :func:`seal` takes
    them) in the JSON ``manifest``."""
    model_id = manifest["model_id"]
    new_ck = get_random_bytes(KEY_BYTES)
    for name, t in manifest["tensors"].items():
        if t["encrypted"]:
            dek = aead.unwrap_dek(ck, t["wrapped_dek"], model_id, name)
            t["wrapped_dek"] = aead.wrap_dek(new_ck, dek, model_id, name)
    manifest["recipients"] = [wrap_content_key(r, new_ck, model_id).as_json() for r in recipients]
    return new_ck


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
    with _managed(path, private_key, signing_key, signer) as (path, fd, header, manifest, ck):
        current = _seal_recipients(header.parsed.recipients, licences, header.model_id)
        if reencrypt:  # the tensors of the header just verified, read from the same descriptor
            tensors = decrypt_tensors(fd, header, ck, workers, aead.backend(None))
        ck = _rotate(manifest, ck, current)
        manifest["version"] += 1
        if not reencrypt:
            _rewrite(path, fd, header, manifest, ck, signing_key)
            return
    seal(tensors, path, current, signing_key=signing_key,
         encrypt=[n for n, t in manifest["tensors"].items() if t["encrypted"]],
         model_id=header.model_id, version=manifest["version"], chunk_size=manifest["chunk_size"],
         metadata=manifest["metadata"], workers=workers)
