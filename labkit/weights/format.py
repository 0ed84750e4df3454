"""The container's header: parse and validate it, write it, authenticate it, list the byte regions.

A container is a safetensors file (8-byte little-endian header length, JSON header, data).
The header's ``__metadata__`` holds what the format adds:

``labkit.manifest``   canonical JSON: model id and version, chunk size, signer, recipients, and per
                      tensor its dtype, shape, offsets and either (encrypted) a wrapped DEK, a nonce
                      base and one GCM tag per chunk, or (plaintext) a SHA-256 digest;
``labkit.mac``        HMAC-SHA256 of the manifest under a key derived from the content key;
``labkit.signature``  Ed25519 (RFC 8032) signature of the manifest and the MAC.

:func:`build_header`, :func:`serialize_header` and :func:`frame_header` write headers (what :func:`~labkit.weights.seal`
uses, and what tests and the chapter's tamper demos use to forge one); :func:`parse_header` reads
one without any key and checks only its form; nothing in a :class:`Header` is authenticated until
:func:`verify_signature` and :func:`check_mac` pass.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import struct
from dataclasses import dataclass
from functools import cached_property
from json.decoder import scanstring
from pathlib import Path

from Crypto.Hash import SHA256
from Crypto.Protocol.KDF import HKDF
from Crypto.Signature import eddsa

from labkit import ed25519
from labkit.weights.encoding import (AEAD_NAME, FORMAT, FORMAT_VERSION, MAX_HEADER_BYTES,
                                     SAFETENSORS_CODES, SIG_DOMAIN, canonical_json)
from labkit.weights.errors import IntegrityError
from labkit.weights.keys import signing_key as _signing_key
from labkit.weights.schema import Manifest, TensorRecord, fail, parse_manifest

__all__ = ["Header", "parse_header", "read_header", "encode_manifest", "decode_manifest",
           "frame_header", "serialize_header", "build_header", "header_mac", "header_signature",
           "file_regions"]


@dataclass(frozen=True)
class Header:
    """A parsed container header: the typed manifest, its exact signed bytes, MAC, signature
    and where the data starts.

    ``parsed`` holds the typed records (hex decoded once, into bytes) that every reader of a
    container uses: the format is read in one place, :mod:`labkit.weights.schema`.
    ``manifest`` and ``table`` are JSON values written from them (hex strings, as in the
    file), built on first use, for what writes a header rather than reads one: the chapter's
    tamper demos and tests edit a copy and frame it again (:func:`serialize_header`,
    :func:`frame_header`). Nothing here is authenticated until :func:`~labkit.weights.open`
    (or :func:`~labkit.weights.unwrap_content_key`) checks it.
    """

    parsed: Manifest
    manifest_bytes: bytes
    mac: bytes
    signature: bytes
    data_start: int
    header_bytes: int

    @property
    def model_id(self) -> str:
        return self.parsed.model_id

    @property
    def version(self) -> int:
        return self.parsed.version

    @property
    def signer(self) -> bytes:
        return self.parsed.signer

    @cached_property
    def manifest(self) -> dict:
        return self.parsed.as_json()

    @cached_property
    def table(self) -> dict:
        return {t.name: table_entry(t.as_json()) for t in self.parsed.tensors}


# ---------------------------------------------------------------------------------------------
# manifest <-> bytes
# ---------------------------------------------------------------------------------------------
def encode_manifest(manifest: dict) -> bytes:
    """Canonical bytes of a manifest (``tensors`` a mapping name -> entry, as in
    :attr:`Header.manifest`); tensors become a list so their order is kept."""
    tensors = [{"name": name, **entry} for name, entry in manifest["tensors"].items()]
    return canonical_json({**manifest, "tensors": tensors})


def decode_manifest(manifest_bytes: bytes | str) -> dict:
    """Inverse of :func:`encode_manifest` (FormatError if the bytes are not a canonical manifest
    of the format, see :func:`~labkit.weights.schema.parse_manifest`)."""
    text = manifest_bytes
    if not isinstance(text, str):
        try:
            text = bytes(manifest_bytes).decode("ascii")
        except UnicodeDecodeError:
            fail("manifest is not ASCII (canonical JSON escapes every other character)")
    return parse_manifest(text).as_json()


def table_entry(t: dict | TensorRecord) -> dict:
    """The safetensors table entry a manifest entry (or record) implies (encrypted: opaque
    ``U8`` bytes)."""
    if isinstance(t, TensorRecord):
        offsets, encrypted, dtype, shape = [t.begin, t.end], t.encrypted, t.dtype, t.shape
    else:
        offsets, encrypted, dtype, shape = t["offsets"], t["encrypted"], t["dtype"], t["shape"]
    code = None if encrypted else SAFETENSORS_CODES.get(dtype)
    if code is None:
        return {"dtype": "U8", "shape": [offsets[1] - offsets[0]], "data_offsets": list(offsets)}
    return {"dtype": code, "shape": list(shape), "data_offsets": list(offsets)}


# ---------------------------------------------------------------------------------------------
# writing and authenticating
# ---------------------------------------------------------------------------------------------
def _mac_key(content_key: bytes, model_id: str) -> bytes:
    return HKDF(content_key, 32, b"", SHA256,
                context=b"labkit.weights/1 header mac\x00" + model_id.encode())


def header_mac(manifest_bytes: bytes, content_key: bytes, model_id: str) -> bytes:
    """HMAC-SHA256 of the manifest under ``HKDF(content_key, info=... || model_id)``."""
    return hmac.new(_mac_key(content_key, model_id), manifest_bytes, hashlib.sha256).digest()


def header_signature(manifest_bytes: bytes, mac: bytes, signing_key) -> bytes:
    """Ed25519 signature (RFC 8032) of a domain string, the manifest and its MAC."""
    return eddsa.new(_signing_key(signing_key), "rfc8032").sign(SIG_DOMAIN + manifest_bytes + mac)


def frame_header(manifest_bytes: bytes, table: dict, *, mac: bytes, signature: bytes) -> bytes:
    """The file's first bytes (length, JSON header padded to 8 bytes) around any manifest text
    and safetensors table, well-formed or not: how tests and demos forge headers."""
    meta = {"labkit.format": f"{FORMAT}/{FORMAT_VERSION}",
            "labkit.manifest": bytes(manifest_bytes).decode("utf-8", "surrogatepass"),
            "labkit.mac": mac.hex(), "labkit.signature": signature.hex()}
    body = json.dumps({"__metadata__": meta, **table}, separators=(",", ":")).encode()
    body += b" " * (-len(body) % 8)  # safetensors pads the header to 8-byte alignment
    return struct.pack("<Q", len(body)) + body


def serialize_header(manifest: dict, *, mac: bytes, signature: bytes) -> bytes:
    """The file's first bytes for a manifest (as in :attr:`Header.manifest`) with the given MAC
    and signature, valid or not; the safetensors table is the one the manifest implies."""
    table = {name: table_entry(t) for name, t in manifest["tensors"].items()}
    return frame_header(encode_manifest(manifest), table, mac=mac, signature=signature)


def build_header(manifest: dict, content_key: bytes, signing_key) -> bytes:
    """A genuine header: the manifest MAC'd under ``content_key`` and signed by ``signing_key``."""
    manifest_bytes = encode_manifest(manifest)
    mac = header_mac(manifest_bytes, content_key, manifest["model_id"])
    return serialize_header(manifest, mac=mac,
                            signature=header_signature(manifest_bytes, mac, signing_key))


def verify_signature(header: Header, expected_signer: bytes | None) -> None:
    """Check the header's signature, and that its signer is ``expected_signer`` (raw Ed25519
    public key; None accepts any signer: see :data:`~labkit.weights.UNVERIFIED`)."""
    if expected_signer is not None and expected_signer != header.signer:
        raise IntegrityError("the header is signed by a different key than the pinned signer")
    # strict RFC 8032 verification (labkit.ed25519): no small-order or non-canonical R or key, S < L
    if not ed25519.verify_strict(header.signer, SIG_DOMAIN + header.manifest_bytes + header.mac, header.signature):
        raise IntegrityError("header signature does not verify")


def check_mac(header: Header, content_key: bytes) -> None:
    """Check the header's MAC under the content key (IntegrityError if it fails)."""
    mac = header_mac(header.manifest_bytes, content_key, header.model_id)
    if not hmac.compare_digest(mac, header.mac):
        raise IntegrityError("header MAC does not verify under the content key")


# ---------------------------------------------------------------------------------------------
# parsing
# ---------------------------------------------------------------------------------------------
_META_START = '{"__metadata__":{"labkit.format":"'
_META_PREFIX = _META_START + f'{FORMAT}/{FORMAT_VERSION}","labkit.manifest":"'
_META_REST = re.compile(r',"labkit\.mac":"([0-9a-f]{64})","labkit\.signature":"([0-9a-f]{128})"\}')
# the manifest's first keys as the header spells them (inside a JSON string: quotes escaped)
_CHUNK_SIZE = re.compile(re.escape(json.dumps(f'{{"aead":"{AEAD_NAME}","chunk_size":')[1:-1])
                         + "([1-9][0-9]{1,9}),")
_TABLE_OFFSETS = '"data_offsets":['  # once per safetensors table entry, nowhere else
_OFFSETS = re.compile(r"(?:0|[1-9][0-9]{0,18}),(0|[1-9][0-9]{0,18})\]")


def header_limit(tensor_count: int, chunk_count: int) -> int:
    """The largest header accepted for a model of that many tensors and GCM chunks: 64 KiB
    (metadata, recipients) plus 1 KiB per tensor (a genuine entry, name twice included, takes
    about 500 bytes) and 48 bytes per tag, at most :data:`MAX_HEADER_BYTES`."""
    return min(MAX_HEADER_BYTES, (64 << 10) + 1024 * tensor_count + 48 * chunk_count)


def refuse_early(text: str, n: int, file_size: int | None) -> None:
    """Refuse, before the manifest is parsed, a header that cannot pass :func:`header_limit`
    or the file size, from what its safetensors table and chunk size say (C-speed scans of the
    text, no object built per entry): an attacker's header of 16 MiB of recipients and one
    tensor costs its text, not a record per recipient.

    Sound: it never refuses a header the full check accepts. In such a header ``"data_offsets":[``
    occurs exactly once per tensor, in its table entry (JSON strings cannot hold an unescaped
    quote, and a tensor named ``data_offsets`` is followed by ``:{``), and the last entry ends
    at the data's length; with ``chunk_size`` read as the manifest begins, the tensors need at
    most ``tensors + data_len // chunk_size`` tags (a tensor's ``ceil(b / c) <= b // c + 1``).
    Text that does not look like this is left to the full check (which refuses it)."""
    m = _CHUNK_SIZE.match(text, len(_META_PREFIX))
    if m is None or int(m.group(1)) < 16:
        return
    tensors = text.count(_TABLE_OFFSETS, m.end())
    data_len = 0
    if tensors:
        last = _OFFSETS.match(text, text.rfind(_TABLE_OFFSETS) + len(_TABLE_OFFSETS))
        if last is None:
            return
        data_len = int(last.group(1))
    if file_size is not None and file_size != 8 + n + data_len:
        fail(f"file has {file_size} bytes, the header describes {8 + n + data_len} "
             "(truncated or appended data)")
    limit = header_limit(tensors, tensors + data_len // int(m.group(1)))
    if n > limit:
        fail(f"header of {n} bytes exceeds the limit of {limit} for {tensors} tensors of "
             f"{data_len} bytes")


def parse_header(prefix: bytes, file_size: int | None = None) -> Header:
    """Parse the first bytes of a container (8-byte length + JSON header) without any key.

    Every malformed input raises :class:`FormatError` (never another exception): wrong length
    field, a header over :func:`header_limit` (or :data:`MAX_HEADER_BYTES`), a header that is
    not exactly the one :func:`serialize_header` writes for its manifest (the safetensors
    table, key order and padding are all implied by the manifest, and are compared piece by
    piece), a manifest that is not the format's canonical JSON or breaks its schema, an unknown
    format version. Only the manifest is parsed, by
    :func:`~labkit.weights.schema.parse_manifest`, which refuses any other JSON shape before
    building objects for it: memory stays within a small multiple of the header size. With
    ``file_size`` the data size must match exactly (no truncation, nothing appended).
    A header whose safetensors table already shows that it breaks the limit or the file size
    is refused before the manifest is parsed (:func:`refuse_early`).
    """
    if not isinstance(prefix, (bytes, bytearray, memoryview)):
        raise TypeError(f"prefix must be bytes, got {type(prefix).__name__}")
    prefix = memoryview(prefix).cast("B")
    if len(prefix) < 8:
        fail("file shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", prefix[:8])
    if n > MAX_HEADER_BYTES:
        fail(f"header of {n} bytes exceeds the limit of {MAX_HEADER_BYTES}")
    if len(prefix) < 8 + n:
        fail(f"header announces {n} bytes but only {len(prefix) - 8} are present")
    try:
        text = str(prefix[8 : 8 + n], "ascii")
    except UnicodeDecodeError:
        fail("header is not ASCII JSON (seal escapes every other character)")
    if not text.startswith(_META_PREFIX):
        if text.startswith(_META_START):
            found = text[len(_META_START) : len(_META_START) + 40].split('"')[0]
            fail(f"not a {FORMAT} container of version {FORMAT_VERSION} "
                 f"(labkit.format = {found!r})")
        fail(f"not a {FORMAT} container (the header does not start with its metadata)")
    refuse_early(text, n, file_size)
    try:
        manifest_text, end = scanstring(text, len(_META_PREFIX), True)
    except ValueError as err:
        fail(f"labkit.manifest is not a JSON string: {str(err)[:200]}")
    # json.dumps escapes only '"' and '\\' of an ASCII manifest: any other spelling is longer
    if not manifest_text.isascii() or end - 1 - len(_META_PREFIX) != (
            len(manifest_text) + manifest_text.count('"') + manifest_text.count("\\")):
        fail("labkit.manifest is not in canonical form (ASCII, escaped as json.dumps does)")
    parsed = parse_manifest(manifest_text)
    manifest_bytes = manifest_text.encode("ascii")
    del manifest_text
    rest = _META_REST.match(text, end)
    if rest is None:
        fail("labkit.mac and labkit.signature must follow the manifest (64 and 128 hex digits)")
    mac, signature = bytes.fromhex(rest.group(1)), bytes.fromhex(rest.group(2))
    pos = rest.end()
    for t in parsed.tensors:  # the safetensors table the manifest implies, entry by entry
        entry = "," + json.dumps({t.name: table_entry(t)}, separators=(",", ":"))[1:-1]
        if not text.startswith(entry, pos):
            fail(f"the safetensors entry of {t.name[:40]!r} differs from what the manifest "
                 "implies")
        pos += len(entry)
    if not text.startswith("}", pos) or text[pos + 1 :] != " " * (-(pos + 1) % 8):
        fail("the safetensors table, key order or padding differ from what the manifest implies")
    del text
    limit = header_limit(len(parsed.tensors), sum(len(t.tags) for t in parsed.tensors))
    if n > limit:
        fail(f"header of {n} bytes exceeds the limit of {limit} for {len(parsed.tensors)} "
             "tensors")
    if file_size is not None and file_size != 8 + n + parsed.data_len:
        fail(f"file has {file_size} bytes, the header describes {8 + n + parsed.data_len} "
             "(truncated or appended data)")
    return Header(parsed, manifest_bytes, mac, signature, 8 + n, n)


def read_header(path) -> Header:
    """Parse a container's header from disk (no key needed, nothing verified yet)."""
    fd = os.open(Path(path), os.O_RDONLY)
    try:
        return read_header_fd(fd)
    finally:
        os.close(fd)


def read_header_fd(fd: int) -> Header:
    """:func:`read_header` from an open file descriptor (the one the data is then read from)."""
    size = os.fstat(fd).st_size
    head = os.pread(fd, 8, 0)
    if len(head) < 8:
        return parse_header(head, size)
    (n,) = struct.unpack("<Q", head)
    if n > MAX_HEADER_BYTES or 8 + n > size:  # refused before reading (and allocating) n bytes
        return parse_header(head, size)
    buf = bytearray(8 + n)
    buf[:8] = head
    got = 8
    while got < len(buf):
        k = os.preadv(fd, [memoryview(buf)[got:]], got)
        if k == 0:
            break
        got += k
    return parse_header(memoryview(buf)[:got], size)


# ---------------------------------------------------------------------------------------------
# the file's byte regions (the inspector widgets and the tamper demos walk them)
# ---------------------------------------------------------------------------------------------
def file_regions(header: Header, *, split_chunks: bool = True) -> list[tuple[str, int, int, str]]:
    """``(label, start, end, kind)`` of every region of a container, in file order.

    Kinds: ``length``, ``header``, ``chunk`` (one encrypted chunk; with ``split_chunks=False``
    ``encrypted``, a whole encrypted tensor) and ``plain`` (a plaintext tensor). Empty tensors
    occupy no bytes and are left out.
    """
    out = [("header length (8 bytes, little-endian)", 0, 8, "length"),
           ("JSON header (manifest, MAC, signature)", 8, header.data_start, "header")]
    size = header.parsed.chunk_size
    for t in header.parsed.tensors:
        name, a, b = t.name, header.data_start + t.begin, header.data_start + t.end
        if t.encrypted and split_chunks:
            for i, start in enumerate(range(a, b, size)):
                out.append((f"{name} chunk {i}", start, min(start + size, b), "chunk"))
        elif b > a:
            out.append((f"{name} (encrypted)" if t.encrypted else f"{name} (plaintext)",
                        a, b, "encrypted" if t.encrypted else "plain"))
    return out
