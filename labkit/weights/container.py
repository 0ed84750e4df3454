"""Sealing and opening encrypted model containers: per-tensor AES-256-GCM in a safetensors file.

Key hierarchy (envelope encryption, the notes' "hybrid key architecture")::

    recipient key  --HPKE (RFC 9180) or HKDF(device fingerprint, licence)-->  content key CK
    CK  --AES-256-GCM-->  one random DEK per tensor
    DEK --AES-256-GCM, chunked, nonce_i = base XOR i (RFC 9180 sec. 5.2)-->  tensor chunks

Each chunk's associated data binds the format version, model id, tensor name, dtype, shape, chunk
index and chunk count, so moving, swapping or truncating chunks or tensors breaks a tag. A random
DEK per tensor per seal means each (key, nonce) pair is used once, by construction; callers never
see or supply a nonce. The header format is in :mod:`labkit.weights.format`.

Why both a signature and a MAC: the signature under the publisher's key, which readers must pin
(``open(..., signer=...)``), is what says who made the file; the MAC tells each recipient that the
header was made by someone holding the content key, so an existing file whose header was edited
and re-signed by someone without that key (for instance to change a plaintext tensor and its
digest, the gap CryptoTensors leaves) fails even the MAC. The MAC alone proves nothing about
origin: anyone with a recipient's public key can seal a whole new file with a content key of
their own. Hence ``open`` refuses to run without an expected signer.

Opening is all-or-nothing: the signature, the MAC, every tag and every digest are checked before a
single tensor is returned; any failure raises :class:`IntegrityError` (or a subclass) and every
decrypted buffer is overwritten with zeros (best effort: see :func:`zeroise`).
"""
from __future__ import annotations

import hashlib
import hmac
import operator
import os
import threading
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Mapping

import torch
from Crypto.PublicKey import ECC
from Crypto.PublicKey.ECC import EccKey
from Crypto.Random import get_random_bytes

from labkit.parallel import parallel_map
from labkit.weights import aead, fileio
from labkit.weights import format as fmt
from labkit.weights.encoding import (AEAD_NAME, DEFAULT_CHUNK_SIZE, DTYPES, FORMAT,
                                     FORMAT_VERSION, KEY_BYTES, NONCE_BYTES, TAG_BYTES, chunk_aad,
                                     chunk_nonce, chunk_spans)
from labkit.weights.errors import IntegrityError, RollbackError
from labkit.weights.keys import (REQUIRED, DeviceLicence, RecipientKeyPair, expected_signer,
                                 unwrap_content_key_for, wrap_content_key)
from labkit.weights.keys import signing_key as _signing_key
from labkit.weights.schema import TensorRecord

__all__ = ["SealedModel", "seal", "open", "load_into", "unwrap_content_key"]


@dataclass(frozen=True)
class SealedModel:
    """What :func:`seal` wrote: the path, ids, version and the signer's public key to pin."""

    path: Path
    model_id: str
    version: int
    signer_public_key: bytes
    recipients: tuple[str, ...]
    encrypted: tuple[str, ...]
    plaintext: tuple[str, ...]


def _tensor_bytes(name: str, tensor) -> tuple[torch.Tensor, memoryview]:
    """A contiguous CPU copy (or view) of ``tensor`` and a byte view of its storage."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"tensor {name!r} must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.is_quantized:
        raise TypeError(f"tensor {name!r} is quantized; dequantize it (scale and zero point "
                        "are not plain data)")
    if tensor.layout != torch.strided:
        raise TypeError(f"tensor {name!r} has layout {tensor.layout}; convert with .to_dense()")
    t = tensor.detach().cpu().contiguous()
    if t.numel() == 0:
        return t, memoryview(b"")
    return t, memoryview(t.reshape(-1).view(torch.uint8).numpy())


def _as_state_dict(tensors) -> dict[str, torch.Tensor]:
    if isinstance(tensors, torch.nn.Module):
        tensors = tensors.state_dict()
    if not isinstance(tensors, Mapping):
        raise TypeError("tensors must be a mapping name -> torch.Tensor (a state_dict) or an "
                        f"nn.Module, got {type(tensors).__name__}")
    for name in tensors:
        if not isinstance(name, str) or not name:
            raise TypeError(f"tensor names must be non-empty strings, got {name!r}")
        if name == "__metadata__":
            raise ValueError("'__metadata__' is reserved by safetensors and cannot name a tensor")
    return dict(tensors)


def _select(encrypt, names: list[str]) -> set[str]:
    if encrypt is None or encrypt is True:
        return set(names)
    if encrypt is False:
        return set()
    if callable(encrypt):
        return {n for n in names if encrypt(n)}
    if isinstance(encrypt, str):
        raise TypeError("encrypt must be a collection of tensor names, not one string")
    chosen = set(encrypt)
    unknown = chosen - set(names)
    if unknown:
        raise ValueError(f"encrypt names tensors that do not exist: {sorted(unknown)}")
    return chosen


def as_recipient_list(recipients) -> list:
    """One recipient or an iterable of them, as a list."""
    if isinstance(recipients, (bytes, bytearray, DeviceLicence, RecipientKeyPair, EccKey)):
        return [recipients]
    return list(recipients)


def seal(tensors, path, recipients, *, signing_key=None, encrypt=None, model_id: str | None = None,
         version: int = 1, chunk_size: int = DEFAULT_CHUNK_SIZE,
         metadata: Mapping[str, str] | None = None, workers: int | None = None,
         backend: str | None = None) -> SealedModel:
    """Encrypt ``tensors`` (a state_dict or an nn.Module) into the container file ``path``.

    ``recipients``: X25519 public keys (32 bytes, :class:`RecipientKeyPair`) and/or
    :class:`DeviceLicence` objects; each gets the content key wrapped for it.
    ``signing_key``: the publisher's Ed25519 key (a fresh one if omitted: then pin the returned
    ``signer_public_key``). ``encrypt``: which tensors to encrypt (names or a predicate; default
    all); the others stay plaintext, readable by any safetensors tool, still integrity protected.
    ``version`` is signed and lets readers refuse replays (``open(..., min_version=...)``).
    ``workers`` threads and the AEAD ``backend`` (see :func:`aead_backends`) change speed only;
    by default one thread with OpenSSL's AES, which holds the GIL: writes to one file take its
    lock in turn, so a second thread added hand-overs rather than overlap (one thread was faster
    in 6 of 8 runs of ``benchmarks/bench_weights.py``: median 3.1x CryptoTensors' save against
    2.3x), and up to two with pycryptodome's.
    The file appears atomically: a crash leaves the old file (or none), never half of a new one.
    """
    state = _as_state_dict(tensors)
    path = Path(path)
    recipients = as_recipient_list(recipients)
    if not recipients:
        raise ValueError("seal needs at least one recipient")
    if type(chunk_size) is not int or not 16 <= chunk_size <= 1 << 30 or chunk_size % 16:
        raise ValueError(f"chunk_size must be a multiple of 16 in [16, 2**30], got {chunk_size!r}")
    if type(version) is not int or version < 0:
        raise ValueError(f"version must be a non-negative integer, got {version!r}")
    model_id = model_id if model_id is not None else get_random_bytes(16).hex()
    if not isinstance(model_id, str) or not model_id:
        raise ValueError("model_id must be a non-empty string")
    metadata = dict(metadata or {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise TypeError("metadata must map str to str")
    engine = aead.backend(backend)
    workers = 1 if workers is None and engine.holds_gil else fileio.default_workers(workers)
    sk = _signing_key(signing_key) if signing_key is not None else ECC.generate(curve="Ed25519")
    chosen = _select(encrypt, list(state))

    content_key = bytearray(get_random_bytes(KEY_BYTES))
    deks: dict[str, bytearray] = {}
    try:
        wrapped = [wrap_content_key(r, bytes(content_key), model_id) for r in recipients]
        kids = [r.kid.hex() for r in wrapped]
        if len(set(kids)) != len(kids):
            raise ValueError("the same recipient is listed twice")
        views, entries, nonce_bases, offset = {}, {}, {}, 0
        for name, tensor in state.items():
            t, mv = _tensor_bytes(name, tensor)
            views[name] = (t, mv)
            entry = {"dtype": str(t.dtype).removeprefix("torch."), "shape": list(t.shape),
                     "offsets": [offset, offset + len(mv)], "encrypted": name in chosen}
            if name in chosen:
                deks[name] = bytearray(get_random_bytes(KEY_BYTES))
                entry["wrapped_dek"] = aead.wrap_dek(bytes(content_key), bytes(deks[name]),
                                                     model_id, name)
                nonce_bases[name] = get_random_bytes(NONCE_BYTES)
                entry["nonce_base"] = nonce_bases[name].hex()
                entry["tags"] = ["00" * TAG_BYTES] * len(chunk_spans(len(mv), chunk_size))
            else:
                entry["sha256"] = "00" * 32
            entries[name] = entry
            offset += len(mv)
        manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "model_id": model_id,
                    "version": version, "aead": AEAD_NAME, "chunk_size": chunk_size,
                    "signer": sk.public_key().export_key(format="raw").hex(),
                    "recipients": [r.as_json() for r in wrapped], "tensors": entries,
                    "metadata": metadata}
        # every field is fixed-width hex, so the header's size is known before the tags are:
        # the data goes after it, and the header is built (MAC'd, signed) once, at the end
        data_start = len(fmt.serialize_header(manifest, mac=bytes(32), signature=bytes(64)))
        local = threading.local()

        def encrypt_chunk(fd, name, index, count, a, b):
            entry = entries[name]
            out = getattr(local, "buf", None)
            if out is None:  # one buffer per thread, reused: one pwrite per chunk (<= 4 MiB)
                size = max(aead.PIECE, min(chunk_size, fileio.WRITE_BUFFER))
                out = local.buf = memoryview(bytearray(size + fileio.SLACK))
            start = data_start + entry["offsets"][0] + a
            tag = engine.encrypt_into(
                bytes(deks[name]), chunk_nonce(nonce_bases[name], index),
                chunk_aad(model_id, name, entry["dtype"], entry["shape"], index, count),
                views[name][1][a:b], out,
                lambda p, piece: fileio.pwrite_all(fd, piece, start + p))
            entry["tags"][index] = tag.hex()

        def write_plain(fd, name):
            mv = views[name][1]
            fileio.pwrite_all(fd, mv, data_start + entries[name]["offsets"][0])
            entries[name]["sha256"] = hashlib.sha256(mv).hexdigest()

        def write(fd):
            tasks = []
            for name, entry in entries.items():
                if entry["encrypted"]:
                    spans = chunk_spans(len(views[name][1]), chunk_size)
                    tasks += [partial(encrypt_chunk, fd, name, i, len(spans), a, b)
                              for i, (a, b) in enumerate(spans)]
                else:
                    tasks.append(partial(write_plain, fd, name))
            parallel_map(operator.call, tasks, workers)
            header = fmt.build_header(manifest, bytes(content_key), sk)
            if len(header) != data_start:  # every field is fixed-width hex: cannot happen
                raise RuntimeError("header size changed between layout and final header")
            fileio.pwrite_all(fd, header, 0)

        fileio.atomic_write(path, write)
    finally:
        fileio.zeroise(content_key)
        for dek in deks.values():
            fileio.zeroise(dek)
    return SealedModel(path, model_id, version, sk.public_key().export_key(format="raw"),
                       tuple(kids), tuple(n for n in state if n in chosen),
                       tuple(n for n in state if n not in chosen))


def unwrap_content_key(path, private_key, *, signer=REQUIRED) -> bytes:
    """Verify a container's header (signed by ``signer``, as in :func:`open`) and return its
    content key (for recipient management and for the chapter's by-hand decryption)."""
    pinned = expected_signer(signer)
    fd = os.open(Path(path), os.O_RDONLY)
    try:
        header, content_key = verified_header(fd, private_key, pinned)
    finally:
        os.close(fd)
    return bytes(content_key)


def open(path, private_key, *, signer=REQUIRED, model_id: str | None = None,
         min_version: int | None = None, workers: int | None = None,
         backend: str | None = None) -> dict[str, torch.Tensor]:
    """Verify and decrypt a container; return ``{name: tensor}`` or raise, never anything partial.

    ``private_key``: the recipient's X25519 private key (32 bytes or :class:`RecipientKeyPair`)
    or its :class:`DeviceLicence`. ``signer`` (required): the publisher's Ed25519 public key the
    header must be signed by. It is what authenticates the file's origin: the MAC under the
    content key does not, since anyone who knows the recipient's *public* key can seal a whole
    new file (own weights, any model id, any version) with a content key of their own. Without
    a signer the call is refused (:class:`SignerRequiredError`); ``signer=weights.UNVERIFIED``
    opens a file signed by anyone, with an :class:`UnverifiedSignerWarning`.
    ``model_id`` and ``min_version`` (signed values) refuse a different model or a replayed
    older version: a device passes the id it expects and the highest version it has seen.

    Raises only :class:`WeightsError` subclasses for anything the file holds:
    :class:`FormatError`, :class:`IntegrityError` (also when the file is truncated or changed
    while it is read), :class:`RollbackError`, :class:`NotARecipientError`. The tensors are
    decrypted into one private buffer (peak memory about the model size, plus a 4 MiB read
    buffer per worker) and share it; changing or truncating the file afterwards cannot affect them.
    """
    pinned = expected_signer(signer)
    if model_id is not None and not isinstance(model_id, str):
        raise TypeError(f"model_id must be a string, got {type(model_id).__name__}")
    if min_version is not None and type(min_version) is not int:
        raise TypeError(f"min_version must be an integer, got {type(min_version).__name__}")
    workers = fileio.default_workers(workers)
    engine = aead.backend(backend)
    fd = os.open(Path(path), os.O_RDONLY)  # one descriptor: the header and data come from one file
    try:
        header, content_key = verified_header(fd, private_key, pinned, model_id, min_version)
        try:
            return decrypt_tensors(fd, header, content_key, workers, engine)
        finally:
            fileio.zeroise(content_key)
    finally:
        os.close(fd)


def verified_header(fd: int, private_key, pinned: bytes | None, model_id: str | None = None,
                    min_version: int | None = None) -> tuple[fmt.Header, bytearray]:
    """Read the header from ``fd`` and authenticate it: signature (by ``pinned``), expected
    model and version, the content key unwrapped with ``private_key``, the MAC. Returns the
    header and the content key (a bytearray the caller zeroises)."""
    header = fmt.read_header_fd(fd)
    fmt.verify_signature(header, pinned)
    if model_id is not None and header.model_id != model_id:
        raise IntegrityError(f"file holds model {header.model_id!r}, expected {model_id!r}")
    if min_version is not None and header.version < min_version:
        raise RollbackError(f"file holds version {header.version}, older than {min_version}")
    content_key = bytearray(unwrap_content_key_for(header.parsed.recipients, header.model_id,
                                                   private_key))
    try:
        fmt.check_mac(header, bytes(content_key))
    except BaseException:
        fileio.zeroise(content_key)
        raise
    return header, content_key


def decrypt_tensors(fd: int, header: fmt.Header, content_key, workers: int,
                    engine) -> dict[str, torch.Tensor]:
    """Read and decrypt the data of an authenticated ``header`` from ``fd`` into one private
    buffer, verifying every tag and digest; all tensors or an IntegrityError (then the buffer
    is wiped).

    Each worker faults in the pages of the chunk it is about to fill (one call without the
    GIL), reads the ciphertext with ``preadv`` (without the GIL) into its own reused buffer of
    :data:`~labkit.weights.fileio.READ_BUFFER` bytes, and decrypts it from there in cache-sized
    pieces into the chunk's place: the plaintext is written once, into the memory the tensors
    then share, and the kernel's work (page faults, the copy out of the page cache) of one
    thread overlaps the AES of the other. (Decrypting in place, which saved the buffer, is
    refused by ``cryptography`` 51 and later.) One read per chunk rather than per piece: 16
    times fewer system calls and GIL hand-overs, measured 2% less CPU time
    (``benchmarks/bench_weights.py``).
    """
    m = header.parsed
    arena = fileio.alloc(m.data_len)
    deks: dict[str, bytearray] = {}
    ok = False
    try:
        for t in m.tensors:
            if t.encrypted:
                deks[t.name] = bytearray(aead.unwrap_dek(bytes(content_key), t.wrapped_dek,
                                                         m.model_id, t.name))

        buffers = threading.local()  # each worker's ciphertext buffer, reused chunk after chunk

        def ciphertext_buffer() -> bytearray:
            if not hasattr(buffers, "buf"):
                buffers.buf = bytearray(max(1, min(fileio.READ_BUFFER, m.chunk_size, m.data_len)))
            return buffers.buf

        def decrypt_chunk(t, index, count, a, b):
            begin = t.begin + a
            arena.populate(begin, begin + b - a)  # fault in, then read and decrypt the chunk

            def read(view, offset):  # without the GIL
                fileio.preadv_all(fd, view, header.data_start + begin + offset)

            if not aead.decrypt_read(
                engine, bytes(deks[t.name]), chunk_nonce(t.nonce_base, index),
                chunk_aad(m.model_id, t.name, t.dtype, t.shape, index, count), t.tags[index],
                b - a, read, ciphertext_buffer(), arena.view[begin:],
            ):
                raise IntegrityError(f"tensor {t.name!r} chunk {index} fails authentication "
                                     "(tampered, swapped or truncated)")

        def check_plain(t):
            dst = arena.view[t.begin : t.end]
            arena.populate(t.begin, t.end)
            fileio.preadv_all(fd, dst, header.data_start + t.begin)
            if not hmac.compare_digest(hashlib.sha256(dst).digest(), t.sha256):
                raise IntegrityError(f"plaintext tensor {t.name!r} does not match its digest")

        tasks = []
        for t in m.tensors:
            if t.encrypted:
                spans = chunk_spans(t.nbytes, m.chunk_size)
                tasks += [partial(decrypt_chunk, t, i, len(spans), a, b)
                          for i, (a, b) in enumerate(spans)]
            else:
                tasks.append(partial(check_plain, t))
        parallel_map(operator.call, tasks, workers)
        result = {t.name: as_tensor((arena.view, t.begin), t) for t in m.tensors}
        ok = True
        return result
    finally:
        for dek in deks.values():
            fileio.zeroise(dek)
        if not ok:  # decrypted-but-unverified plaintext must not linger
            fileio.zeroise(arena.view)


def as_tensor(place: tuple[Any, int], t: TensorRecord) -> torch.Tensor:
    """The tensor of record ``t`` over its bytes at ``place`` (copied if the start is not
    aligned for the dtype)."""
    buf, base = place
    dtype, shape, nbytes = DTYPES[t.dtype], t.shape, t.nbytes
    if nbytes == 0:
        return torch.empty(shape, dtype=dtype)
    raw = torch.frombuffer(buf, dtype=torch.uint8, count=nbytes, offset=base)
    if base % dtype.itemsize:
        raw = raw.clone()
    return raw.view(dtype).reshape(shape)


def load_into(module: torch.nn.Module, path, private_key, *, signer=REQUIRED,
              model_id: str | None = None, min_version: int | None = None,
              **options) -> torch.nn.Module:
    """:func:`open` a container (same arguments: the signer is required) and load it into
    ``module`` (strict: every key must match)."""
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    state = open(path, private_key, signer=signer, model_id=model_id, min_version=min_version,
                 **options)
    module.load_state_dict(state, strict=True)
    return module

