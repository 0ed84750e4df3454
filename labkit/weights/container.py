"""Encrypted model containers: per-tensor AES-256-GCM inside a valid safetensors file.

The file is an ordinary safetensors file (8-byte little-endian header length, JSON header, data),
so any safetensors reader lists its tensors and metadata; encrypted tensors appear as opaque
``U8`` byte strings. Everything the format adds lives in ``__metadata__``:

``labkit.manifest``   canonical JSON: model id and version, chunk size, signer, recipients, and per
                      tensor its dtype, shape, offsets and either (encrypted) a wrapped DEK, a nonce
                      base and one GCM tag per chunk, or (plaintext) a SHA-256 digest;
``labkit.mac``        HMAC-SHA256 of the manifest under a key derived from the content key;
``labkit.signature``  Ed25519 (RFC 8032) signature of the manifest and the MAC.

Key hierarchy (envelope encryption, the notes' "hybrid key architecture")::

    recipient key  --HPKE (RFC 9180) or HKDF(device fingerprint, licence)-->  content key CK
    CK  --AES-256-GCM-->  one random DEK per tensor
    DEK --AES-256-GCM, chunked, nonce_i = base XOR i (RFC 9180 sec. 5.2)-->  tensor chunks

Each chunk's associated data binds the format version, model id, tensor name, dtype, shape, chunk
index and chunk count, so moving, swapping or truncating chunks or tensors breaks a tag. A random
DEK per tensor per seal means each (key, nonce) pair is used once, by construction; callers never
see or supply a nonce.

Why both a signature and a MAC: the signature (the publisher's key, which apps pin) tells anyone,
even without a key, who made the header; the MAC tells each recipient that the header was made by
someone holding the content key, so a header re-signed by an attacker with their own key (for
instance to change a plaintext tensor and its digest, the gap CryptoTensors leaves) fails even
for a reader that pinned nothing.

The bulk AES-256-GCM runs in OpenSSL (package ``cryptography``) when installed, else pycryptodome:
the file format is identical, only the speed differs (``benchmarks/bench_weights.py``).

Opening is all-or-nothing: the signature, the MAC, every tag and every digest are checked before a
single tensor is returned; any failure raises :class:`IntegrityError` (or a subclass) and every
decrypted buffer is overwritten with zeros (best effort: see :func:`zeroise`).
"""
from __future__ import annotations

import errno
import ctypes
import ctypes.util
import hashlib
import hmac
import json
import math
import mmap
import os
import struct
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch
from Crypto.Cipher import AES
from Crypto.Hash import SHA256
from Crypto.Protocol import HPKE
from Crypto.Protocol.DH import import_x25519_private_key, import_x25519_public_key
from Crypto.Protocol.KDF import HKDF
from Crypto.PublicKey import ECC
from Crypto.PublicKey.ECC import EccKey
from Crypto.Random import get_random_bytes
from Crypto.Signature import eddsa

try:  # OpenSSL's AES-GCM, used for the bulk of the data when installed (same format)
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
except ImportError:  # pragma: no cover - the lab installs it; pycryptodome does the same job
    Cipher = AESGCM = None
    InvalidTag = ValueError

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "DEFAULT_CHUNK_SIZE",
    "MAX_HEADER_BYTES",
    "WeightsError",
    "IntegrityError",
    "FormatError",
    "RollbackError",
    "NotARecipientError",
    "RecipientKeyPair",
    "SigningKeyPair",
    "DeviceLicence",
    "SealedModel",
    "Header",
    "generate_recipient_keypair",
    "generate_signing_keypair",
    "recipient_id",
    "seal",
    "open",
    "load_into",
    "read_header",
    "parse_header",
    "unwrap_content_key",
    "add_recipients",
    "revoke_recipients",
    "rotate_content_key",
    "chunk_aad",
    "chunk_nonce",
    "zeroise",
    "aead_backends",
]

FORMAT = "labkit.weights"
FORMAT_VERSION = 1
DEFAULT_CHUNK_SIZE = 4 << 20  # 4 MiB: large enough to amortise Python, small for threads
MAX_HEADER_BYTES = 32 << 20  # refuse to parse bigger headers (safetensors itself allows 100 MB)
AEAD_NAME = "AES-256-GCM"
HPKE_SUITE = "DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM"
TAG_BYTES = 16
NONCE_BYTES = 12
KEY_BYTES = 32
_SIG_DOMAIN = b"labkit.weights/1 header signature\x00"


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------------
# keys
# ---------------------------------------------------------------------------------------------
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


def _x25519_public(key) -> EccKey:
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


def _x25519_private(key) -> EccKey:
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


def _signing_key(key) -> EccKey:
    if isinstance(key, SigningKeyPair):
        key = key.private_key
    if isinstance(key, EccKey):
        if key.curve != "Ed25519" or not key.has_private():
            raise ValueError("expected an Ed25519 private key")
        return key
    if isinstance(key, (bytes, bytearray)) and len(key) == 32:
        return eddsa.import_private_key(bytes(key))
    raise TypeError("signing_key must be an Ed25519 private key (32-byte seed or SigningKeyPair)")


def _verify_key_bytes(key) -> bytes:
    if isinstance(key, SigningKeyPair):
        return key.public_key
    if isinstance(key, EccKey):
        return key.public_key().export_key(format="raw")
    if isinstance(key, (bytes, bytearray)) and len(key) == 32:
        return bytes(key)
    raise TypeError("signer must be an Ed25519 public key (32 bytes or SigningKeyPair)")


def recipient_id(public_key) -> str:
    """A short public identifier of an X25519 recipient: SHA-256 of its raw key, 8 bytes hex."""
    raw = _x25519_public(public_key).export_key(format="raw")
    return hashlib.sha256(b"labkit.weights recipient\x00" + raw).hexdigest()[:16]


def zeroise(buffer) -> None:
    """Overwrite a writable buffer (bytearray, memoryview, tensor) with zeros.

    Best effort only: Python's ``bytes`` are immutable and may have been copied (slicing, JSON,
    pycryptodome's key schedule, the garbage collector), so this clears *our* buffers, not every
    copy a CPython process ever made. Real deployments keep keys in a KMS, HSM or secure enclave.
    """
    if isinstance(buffer, torch.Tensor):
        buffer.zero_()
    elif isinstance(buffer, (bytearray, memoryview, mmap.mmap)):
        mv = memoryview(buffer).cast("B")
        if len(mv):
            torch.frombuffer(mv, dtype=torch.uint8).zero_()
    else:
        raise TypeError(f"cannot zeroise an immutable {type(buffer).__name__}")


# ---------------------------------------------------------------------------------------------
# small encodings
# ---------------------------------------------------------------------------------------------
def _lp(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + bytes(data)


def _canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def chunk_aad(model_id: str, name: str, dtype: str, shape: Sequence[int], index: int,
              count: int) -> bytes:
    """Associated data of one chunk: format, version, model id, tensor name, dtype, shape,
    chunk index and count, each length-prefixed so no two contexts share an encoding."""
    return (
        b"labkit.weights\x00"
        + struct.pack(">H", FORMAT_VERSION)
        + _lp(model_id.encode())
        + _lp(name.encode())
        + _lp(dtype.encode())
        + struct.pack(">I", len(shape))
        + b"".join(struct.pack(">Q", d) for d in shape)
        + struct.pack(">QQ", index, count)
    )


def chunk_nonce(nonce_base: bytes, index: int) -> bytes:
    """The nonce of chunk ``index``: ``nonce_base XOR I2OSP(index, 12)`` (RFC 9180 sec. 5.2)."""
    return (int.from_bytes(nonce_base, "big") ^ index).to_bytes(NONCE_BYTES, "big")


def _dek_aad(model_id: str, name: str) -> bytes:
    return b"labkit.weights/1 dek\x00" + _lp(model_id.encode()) + _lp(name.encode())


def _ck_aad(model_id: str, kid: str) -> bytes:
    return b"labkit.weights/1 content key\x00" + _lp(model_id.encode()) + _lp(kid.encode())


def _mac_key(content_key: bytes, model_id: str) -> bytes:
    return HKDF(content_key, 32, b"", SHA256,
                context=b"labkit.weights/1 header mac\x00" + model_id.encode())


# ---------------------------------------------------------------------------------------------
# dtypes: torch <-> safetensors
# ---------------------------------------------------------------------------------------------
_SAFETENSORS_CODES = {
    "float64": "F64", "float32": "F32", "float16": "F16", "bfloat16": "BF16",
    "int64": "I64", "int32": "I32", "int16": "I16", "int8": "I8",
    "uint64": "U64", "uint32": "U32", "uint16": "U16", "uint8": "U8", "bool": "BOOL",
    "float8_e4m3fn": "F8_E4M3", "float8_e5m2": "F8_E5M2", "complex64": "C64",
}


def _torch_dtypes() -> dict[str, torch.dtype]:
    """Every plain (non-quantized) dtype this torch offers, by name."""
    out = {}
    for name in dir(torch):
        value = getattr(torch, name)
        if isinstance(value, torch.dtype):
            canonical = str(value).removeprefix("torch.")
            if not canonical.startswith(("qint", "quint")):
                out[canonical] = value
    return out


DTYPES = _torch_dtypes()


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


def _dtype_name(tensor: torch.Tensor) -> str:
    return str(tensor.dtype).removeprefix("torch.")


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


# ---------------------------------------------------------------------------------------------
# the header
# ---------------------------------------------------------------------------------------------
@dataclass
class Header:
    """A parsed container header: the safetensors table, the manifest and where data starts.

    ``manifest_bytes`` are the exact bytes that were signed and MAC'd; ``manifest`` their JSON.
    Nothing here is authenticated until :func:`open` (or :func:`unwrap_content_key`) checks it.
    """

    table: dict
    manifest: dict
    manifest_bytes: bytes
    mac: bytes
    signature: bytes
    data_start: int
    header_bytes: int

    @property
    def model_id(self) -> str:
        return self.manifest["model_id"]

    @property
    def version(self) -> int:
        return self.manifest["version"]

    @property
    def tensors(self) -> dict:
        return self.manifest["tensors"]

    @property
    def recipients(self) -> list:
        return self.manifest["recipients"]

    @property
    def signer(self) -> bytes:
        return bytes.fromhex(self.manifest["signer"])


def _fail(msg: str):
    raise FormatError(msg)


def _hex(value, n: int | None, what: str) -> bytes:
    if not isinstance(value, str) or (n is not None and len(value) != 2 * n):
        _fail(f"{what} must be {n} bytes of hex")
    try:
        return bytes.fromhex(value)
    except ValueError:
        _fail(f"{what} is not hex")


def _int(value, what: str, lo: int = 0, hi: int = 2**63 - 1) -> int:
    if type(value) is not int or not lo <= value <= hi:
        _fail(f"{what} must be an integer in [{lo}, {hi}]")
    return value


def _check_manifest(m) -> None:
    """Schema check of a manifest; raises FormatError naming the first problem."""
    if not isinstance(m, dict):
        _fail("manifest must be a JSON object")
    keys = {"format", "format_version", "model_id", "version", "aead", "chunk_size", "signer",
            "recipients", "tensors", "metadata"}
    if set(m) != keys:
        _fail(f"manifest keys must be {sorted(keys)}, got {sorted(m)}")
    if m["format"] != FORMAT:
        _fail(f"not a {FORMAT} container")
    if type(m["format_version"]) is not int or m["format_version"] != FORMAT_VERSION:
        _fail(f"unknown format version {m['format_version']!r} (this code reads {FORMAT_VERSION})")
    if not isinstance(m["model_id"], str) or not m["model_id"]:
        _fail("model_id must be a non-empty string")
    _int(m["version"], "version")
    if m["aead"] != AEAD_NAME:
        _fail(f"unsupported AEAD {m['aead']!r}")
    _int(m["chunk_size"], "chunk_size", 16, 1 << 30)
    _hex(m["signer"], 32, "signer")
    if not isinstance(m["metadata"], dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in m["metadata"].items()
    ):
        _fail("metadata must map strings to strings")
    if not isinstance(m["recipients"], list):
        _fail("recipients must be a list")
    kids = set()
    for r in m["recipients"]:
        if not isinstance(r, dict) or r.get("type") not in ("hpke", "licence"):
            _fail("each recipient must be an object with type 'hpke' or 'licence'")
        want = {"type", "kid", "ct"} | ({"enc", "pk"} if r["type"] == "hpke"
                                        else {"salt", "nonce"})
        if set(r) != want:
            _fail(f"{r['type']} recipient keys must be {sorted(want)}")
        _hex(r["kid"], 8, "recipient kid")
        if r["kid"] in kids:
            _fail("duplicate recipient kid")
        kids.add(r["kid"])
        _hex(r["ct"], KEY_BYTES + TAG_BYTES, "wrapped content key")
        if r["type"] == "hpke":
            _hex(r["enc"], 32, "HPKE enc")
            _hex(r["pk"], 32, "recipient public key")
        else:
            _hex(r["salt"], 16, "licence salt")
            _hex(r["nonce"], NONCE_BYTES, "licence nonce")
    if not isinstance(m["tensors"], list):
        _fail("tensors must be a list")
    end, names = 0, set()
    for t in m["tensors"]:
        if not isinstance(t, dict):
            _fail("each tensor must be an object")
        name = t.get("name")
        if not isinstance(name, str) or not name or name == "__metadata__" or name in names:
            _fail(f"invalid or duplicate tensor name {name!r}")
        names.add(name)
        common = {"name", "dtype", "shape", "offsets", "encrypted"}
        extra = {"wrapped_dek", "nonce_base", "tags"} if t.get("encrypted") is True else {"sha256"}
        if t.get("encrypted") not in (True, False) or set(t) != common | extra:
            _fail(f"tensor {name!r} keys must be {sorted(common | extra)}")
        if t["dtype"] not in DTYPES:
            _fail(f"tensor {name!r} has unknown dtype {t['dtype']!r}")
        if not isinstance(t["shape"], list) or len(t["shape"]) > 64:
            _fail(f"tensor {name!r} shape must be a list of at most 64 sizes")
        for d in t["shape"]:
            _int(d, f"tensor {name!r} shape entry", 0, 2**48)
        itemsize = DTYPES[t["dtype"]].itemsize
        nbytes = math.prod(t["shape"]) * itemsize
        offs = t["offsets"]
        if not isinstance(offs, list) or len(offs) != 2:
            _fail(f"tensor {name!r} offsets must be [begin, end]")
        b, e = (_int(o, f"tensor {name!r} offset") for o in offs)
        if b != end or e - b != nbytes:
            _fail(f"tensor {name!r} offsets {offs} do not follow the previous tensor or match "
                  f"its {nbytes} bytes")
        end = e
        if t["encrypted"]:
            _hex(t["wrapped_dek"], NONCE_BYTES + KEY_BYTES + TAG_BYTES, f"{name!r} wrapped DEK")
            _hex(t["nonce_base"], NONCE_BYTES, f"{name!r} nonce base")
            n_chunks = max(1, -(-nbytes // m["chunk_size"]))
            if not isinstance(t["tags"], list) or len(t["tags"]) != n_chunks:
                _fail(f"tensor {name!r} needs {n_chunks} tags")
            for tag in t["tags"]:
                _hex(tag, TAG_BYTES, f"{name!r} tag")
        else:
            _hex(t["sha256"], 32, f"{name!r} digest")


def _encode_manifest(manifest: dict) -> bytes:
    """Canonical bytes of a manifest; tensors become a list so their order is kept."""
    tensors = [{"name": name, **entry} for name, entry in manifest["tensors"].items()]
    return _canonical({**manifest, "tensors": tensors})


def _decode_manifest(manifest_bytes: bytes) -> dict:
    """Inverse of :func:`_encode_manifest` after a schema check (FormatError on any problem)."""
    try:
        manifest = json.loads(manifest_bytes)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        _fail(f"manifest is not valid JSON: {err}")
    _check_manifest(manifest)
    tensors = {}
    for t in manifest["tensors"]:
        entry = dict(t)
        tensors[entry.pop("name")] = entry
    return {**manifest, "tensors": tensors}


def _table_entry(name: str, t: dict) -> dict:
    """The safetensors table entry a manifest entry implies."""
    nbytes = t["offsets"][1] - t["offsets"][0]
    code = None if t["encrypted"] else _SAFETENSORS_CODES.get(t["dtype"])
    if code is None:
        return {"dtype": "U8", "shape": [nbytes], "data_offsets": list(t["offsets"])}
    return {"dtype": code, "shape": list(t["shape"]), "data_offsets": list(t["offsets"])}


def parse_header(prefix: bytes, file_size: int | None = None) -> Header:
    """Parse the first bytes of a container (8-byte length + JSON header) without any key.

    Every malformed input raises :class:`FormatError` (never another exception): wrong length
    field, header over :data:`MAX_HEADER_BYTES`, bad JSON, a safetensors table inconsistent with
    the manifest, unknown format version. With ``file_size`` the data size must match exactly
    (no truncation, nothing appended).
    """
    if not isinstance(prefix, (bytes, bytearray, memoryview)):
        raise TypeError(f"prefix must be bytes, got {type(prefix).__name__}")
    prefix = bytes(prefix)
    if len(prefix) < 8:
        _fail("file shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", prefix[:8])
    if n > MAX_HEADER_BYTES:
        _fail(f"header of {n} bytes exceeds the limit of {MAX_HEADER_BYTES}")
    if len(prefix) < 8 + n:
        _fail(f"header announces {n} bytes but only {len(prefix) - 8} are present")
    try:
        table = json.loads(prefix[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        _fail(f"header is not valid JSON: {err}")
    if not isinstance(table, dict) or not isinstance(table.get("__metadata__"), dict):
        _fail("header must be a JSON object with __metadata__")
    meta = table["__metadata__"]
    if meta.get("labkit.format") != f"{FORMAT}/{FORMAT_VERSION}":
        _fail(f"not a {FORMAT} container of version {FORMAT_VERSION} "
              f"(labkit.format = {meta.get('labkit.format')!r})")
    manifest_text = meta.get("labkit.manifest")
    if not isinstance(manifest_text, str):
        _fail("missing labkit.manifest")
    manifest_bytes = manifest_text.encode("utf-8", "surrogatepass")
    manifest = _decode_manifest(manifest_bytes)
    mac = _hex(meta.get("labkit.mac"), 32, "labkit.mac")
    signature = _hex(meta.get("labkit.signature"), 64, "labkit.signature")
    if set(meta) != {"labkit.format", "labkit.manifest", "labkit.mac", "labkit.signature"}:
        _fail("unexpected keys in __metadata__")
    names = [k for k in table if k != "__metadata__"]
    if set(names) != set(manifest["tensors"]):
        _fail("safetensors table and manifest list different tensors (or a different order)")
    for name in names:
        if table[name] != _table_entry(name, manifest["tensors"][name]):
            _fail(f"safetensors entry of {name!r} does not match the manifest")
    data_len = max((t["offsets"][1] for t in manifest["tensors"].values()), default=0)
    if file_size is not None and file_size != 8 + n + data_len:
        _fail(f"file has {file_size} bytes, the header describes {8 + n + data_len} "
              "(truncated or appended data)")
    return Header(table, manifest, manifest_bytes, mac, signature, 8 + n, n)


def read_header(path) -> Header:
    """Parse a container's header from disk (no key needed, nothing verified yet)."""
    fd = os.open(Path(path), os.O_RDONLY)
    try:
        return _read_header_fd(fd)
    finally:
        os.close(fd)


def _read_header_fd(fd: int) -> Header:
    size = os.fstat(fd).st_size
    head = os.pread(fd, 8, 0)
    if len(head) == 8:
        (n,) = struct.unpack("<Q", head)
        if n <= MAX_HEADER_BYTES:
            head += os.pread(fd, n, 8)
    return parse_header(head, size)


def _verify_signature(header: Header, signer) -> None:
    if signer is not None and _verify_key_bytes(signer) != header.signer:
        raise IntegrityError("the header is signed by a different key than the pinned signer")
    try:
        key = eddsa.import_public_key(header.signer)
        eddsa.new(key, "rfc8032").verify(_SIG_DOMAIN + header.manifest_bytes + header.mac,
                                         header.signature)
    except ValueError:
        raise IntegrityError("header signature does not verify") from None


# ---------------------------------------------------------------------------------------------
# the content key: wrapping for recipients
# ---------------------------------------------------------------------------------------------
def _wrap_for(recipient, content_key: bytes, model_id: str) -> dict:
    if isinstance(recipient, DeviceLicence):
        salt = get_random_bytes(16)
        kek = recipient.derive_key(salt, model_id)
        kid = _licence_kid(kek)
        nonce = get_random_bytes(NONCE_BYTES)
        cipher = AES.new(kek, AES.MODE_GCM, nonce=nonce)
        cipher.update(_ck_aad(model_id, kid))
        ct, tag = cipher.encrypt_and_digest(content_key)
        return {"type": "licence", "kid": kid, "salt": salt.hex(), "nonce": nonce.hex(),
                "ct": (ct + tag).hex()}
    public = _x25519_public(recipient)
    kid = recipient_id(public)
    sender = HPKE.new(receiver_key=public, aead_id=HPKE.AEAD.AES256_GCM,
                      info=b"labkit.weights/1 content key\x00" + model_id.encode())
    ct = sender.seal(content_key, _ck_aad(model_id, kid))
    return {"type": "hpke", "kid": kid, "pk": public.export_key(format="raw").hex(),
            "enc": sender.enc.hex(), "ct": ct.hex()}


def _licence_kid(kek: bytes) -> str:
    return hashlib.sha256(b"labkit.weights licence id\x00" + kek).hexdigest()[:16]


def _unwrap(header: Header, private_key) -> bytes:
    model_id = header.model_id
    if isinstance(private_key, DeviceLicence):
        for r in header.recipients:
            if r["type"] != "licence":
                continue
            kek = private_key.derive_key(bytes.fromhex(r["salt"]), model_id)
            kid = _licence_kid(kek)
            if hmac.compare_digest(kid, r["kid"]):
                ct = bytes.fromhex(r["ct"])
                cipher = AES.new(kek, AES.MODE_GCM, nonce=bytes.fromhex(r["nonce"]))
                cipher.update(_ck_aad(model_id, kid))
                try:
                    return cipher.decrypt_and_verify(ct[:-TAG_BYTES], ct[-TAG_BYTES:])
                except ValueError:
                    raise IntegrityError("wrapped content key fails authentication") from None
        raise NotARecipientError("this device licence is not among the file's recipients")
    key = _x25519_private(private_key)
    kid = recipient_id(key.public_key())
    for r in header.recipients:
        if r["type"] == "hpke" and r["kid"] == kid:
            try:
                receiver = HPKE.new(receiver_key=key, aead_id=HPKE.AEAD.AES256_GCM,
                                    enc=bytes.fromhex(r["enc"]),
                                    info=b"labkit.weights/1 content key\x00" + model_id.encode())
                return receiver.unseal(bytes.fromhex(r["ct"]), _ck_aad(model_id, kid))
            except ValueError:
                raise IntegrityError("wrapped content key fails authentication") from None
    raise NotARecipientError(f"key {kid} is not among the file's recipients "
                             f"({', '.join(r['kid'] for r in header.recipients) or 'none'})")


def _check_mac(header: Header, content_key: bytes) -> None:
    mac = hmac.new(_mac_key(content_key, header.model_id), header.manifest_bytes,
                   hashlib.sha256).digest()
    if not hmac.compare_digest(mac, header.mac):
        raise IntegrityError("header MAC does not verify under the content key")


def unwrap_content_key(path, private_key, *, signer=None) -> bytes:
    """Verify a container's header and return its content key (for recipient management)."""
    header = read_header(path)
    _verify_signature(header, signer)
    ck = _unwrap(header, private_key)
    _check_mac(header, ck)
    return ck


# One DEK is wrapped per tensor, so a model with hundreds of tensors makes hundreds of these
# calls: a fresh pycryptodome GCM object costs ~58 us (it precomputes its GHASH table), OpenSSL's
# ~2 us: ~7 ms less per 128 tensors, ~4% of sealing or opening 512 MiB. Same bytes either way.
def _wrap_dek(content_key: bytes, dek: bytes, model_id: str, name: str) -> str:
    nonce = get_random_bytes(NONCE_BYTES)
    if AESGCM is not None:
        return (nonce + AESGCM(content_key).encrypt(nonce, dek, _dek_aad(model_id, name))).hex()
    cipher = AES.new(content_key, AES.MODE_GCM, nonce=nonce)
    cipher.update(_dek_aad(model_id, name))
    ct, tag = cipher.encrypt_and_digest(dek)
    return (nonce + ct + tag).hex()


def _unwrap_dek(content_key: bytes, wrapped_hex: str, model_id: str, name: str) -> bytes:
    blob = bytes.fromhex(wrapped_hex)
    try:
        if AESGCM is not None:
            return AESGCM(content_key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:],
                                               _dek_aad(model_id, name))
        cipher = AES.new(content_key, AES.MODE_GCM, nonce=blob[:NONCE_BYTES])
        cipher.update(_dek_aad(model_id, name))
        return cipher.decrypt_and_verify(blob[NONCE_BYTES:-TAG_BYTES], blob[-TAG_BYTES:])
    except (ValueError, InvalidTag):
        raise IntegrityError(f"wrapped DEK of {name!r} fails authentication") from None


# ---------------------------------------------------------------------------------------------
# bulk AEAD over chunks (threads: the kernel's copies and page faults, and pycryptodome's AES, run
# without the GIL; OpenSSL's AES holds it, see _backend)
# ---------------------------------------------------------------------------------------------
_PIECE = 256 << 10  # decrypt a chunk in pieces that stay in the L2 cache between copy and AES


def _pieces(n: int):
    """``(a, b)`` spans of at most :data:`_PIECE` bytes (multiples of 16 but the last) over n."""
    return [(a, min(a + _PIECE, n)) for a in range(0, n, _PIECE)]


class _PycryptodomeGCM:
    """AES-256-GCM through pycryptodome (the lab's reference library)."""

    name = "pycryptodome"

    @staticmethod
    def encrypt_into(key: bytes, nonce: bytes, aad: bytes, src, dst,
                     emit: Callable[[int, memoryview], None] | None = None) -> bytes:
        """Encrypt ``src`` and return the tag. Without ``emit`` the ciphertext goes to ``dst``;
        with it, ``dst`` (at least :data:`_PIECE` + 16 bytes) is reused for every piece and
        ``emit(a, piece)`` receives the ciphertext of bytes ``a:a + len(piece)`` (cache-hot)."""
        cipher = AES.new(key, AES.MODE_GCM, nonce=nonce)
        cipher.update(aad)
        for a, b in _pieces(len(src)):
            out = dst[a:b] if emit is None else dst[: b - a]
            cipher.encrypt(src[a:b], output=out)
            if emit is not None:
                emit(a, out)
        return cipher.digest()

    @staticmethod
    def decrypt_into(key: bytes, nonce: bytes, aad: bytes, src, dst, tag: bytes,
                     prepare: Callable[[int, int], None] | None = None) -> bool:
        """Decrypt ``src`` into ``dst`` (may be the same memory); True if the tag verifies.
        ``prepare(a, b)``, if given, is called just before bytes ``a:b`` are decrypted (to
        fetch them), so each piece is still in cache when it is decrypted."""
        cipher = AES.new(key, AES.MODE_GCM, nonce=nonce)
        cipher.update(aad)
        for a, b in _pieces(len(src)):
            if prepare is not None:
                prepare(a, b)
            cipher.decrypt(src[a:b], output=dst[a:b])
        try:
            cipher.verify(tag)
        except ValueError:
            return False
        return True


class _OpenSSLGCM:
    """The same AES-256-GCM through ``cryptography`` (OpenSSL, AES-NI/VAES assembly)."""

    name = "cryptography"

    @staticmethod
    def encrypt_into(key: bytes, nonce: bytes, aad: bytes, src, dst,
                     emit: Callable[[int, memoryview], None] | None = None) -> bytes:
        """As :meth:`_PycryptodomeGCM.encrypt_into` (``dst`` needs 15 spare bytes)."""
        enc = Cipher(algorithms.AES(key), modes.GCM(nonce)).encryptor()
        enc.authenticate_additional_data(aad)
        for a, b in _pieces(len(src)):  # update_into wants 15 spare bytes; GCM writes b - a
            if emit is None:
                enc.update_into(src[a:b], dst[a : b + 15])
            else:
                enc.update_into(src[a:b], dst[: b - a + 15])
                emit(a, dst[: b - a])
        enc.finalize()
        return enc.tag

    @staticmethod
    def decrypt_into(key: bytes, nonce: bytes, aad: bytes, src, dst, tag: bytes,
                     prepare: Callable[[int, int], None] | None = None) -> bool:
        """As :meth:`_PycryptodomeGCM.decrypt_into`, straight into ``dst`` (no new bytes)."""
        dec = Cipher(algorithms.AES(key), modes.GCM(nonce, tag)).decryptor()
        dec.authenticate_additional_data(aad)
        for a, b in _pieces(len(src)):
            if prepare is not None:
                prepare(a, b)
            if len(dst) >= b + 15:  # update_into wants 15 spare bytes; GCM writes exactly b - a
                dec.update_into(src[a:b], dst[a : b + 15])
            else:  # no spare bytes after dst (the file's last piece): go through a copy
                tmp = bytearray(b - a + 15)
                dec.update_into(src[a:b], tmp)
                dst[a:b] = memoryview(tmp)[: b - a]
        try:
            dec.finalize()
        except InvalidTag:
            return False
        return True


def aead_backends() -> list[str]:
    """Names of the AES-256-GCM engines available here (the file format is the same for all)."""
    return ["pycryptodome"] + (["cryptography"] if Cipher is not None else [])


def _backend(name: str | None):
    """``None`` picks the fastest available: OpenSSL (package ``cryptography``) if installed.

    Measured on the lab's 2-core AVX-512/VAES machine (cryptography 48 with OpenSSL 4.0,
    pycryptodome 4.4), one core, 256 KiB pieces: OpenSSL ~14 GB/s when the input is in cache
    and ~6.5 GB/s streaming it from memory, pycryptodome ~1.6-2.3 GB/s either way (3-9x).
    OpenSSL's calls hold the GIL (a second thread adds no AES throughput) while pycryptodome's
    release it; with OpenSSL the second thread earns its keep by running the kernel's share
    meanwhile (page faults, copies into the page cache), which is most of the time of
    :func:`seal` and :func:`open`."""
    available = aead_backends()
    if name is None:
        name = "cryptography" if "cryptography" in available else "pycryptodome"
    if name not in ("pycryptodome", "cryptography"):
        raise ValueError(f"backend must be 'pycryptodome' or 'cryptography', got {name!r}")
    if name not in available:
        raise ValueError(f"backend {name!r} is not installed")
    return _OpenSSLGCM if name == "cryptography" else _PycryptodomeGCM


_SLACK = 16  # spare bytes after every buffer (OpenSSL's update_into asks for 15)


def _alloc(nbytes: int):
    """A writable buffer of ``nbytes + _SLACK`` bytes; large ones pre-faulted in one system call
    (MAP_POPULATE), which on a busy VM is much faster than one page fault per 4 KiB."""
    size = nbytes + _SLACK
    if size >= 1 << 20 and hasattr(mmap, "MAP_POPULATE"):
        return mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | mmap.MAP_POPULATE)
    return bytearray(size)


def _chunks(nbytes: int, chunk_size: int) -> list[tuple[int, int]]:
    if nbytes == 0:
        return [(0, 0)]  # one empty chunk: its tag still authenticates name, dtype and shape
    return [(a, min(a + chunk_size, nbytes)) for a in range(0, nbytes, chunk_size)]


def _run(tasks: list[Callable[[], Any]], workers: int) -> list:
    if workers <= 1 or len(tasks) <= 1:
        return [task() for task in tasks]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(task) for task in tasks]
        try:
            return [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            raise


def _default_workers(workers: int | None) -> int:
    if workers is None:
        return min(2, os.cpu_count() or 1)
    if type(workers) is not int or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    return workers


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


def _atomic_write(path: Path, write: Callable[[int], None]) -> None:
    """Write through ``write(fd)`` into a temporary file beside ``path``, fsync, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        write(fd)
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        Path(tmp).unlink(missing_ok=True)
        raise


def _pwrite_all(fd: int, data, offset: int) -> None:
    mv = memoryview(data).cast("B")
    while mv:
        n = os.pwrite(fd, mv, offset)
        mv, offset = mv[n:], offset + n


def _preadv_all(fd: int, buf: memoryview, offset: int) -> None:
    got = 0
    while got < len(buf):
        n = os.preadv(fd, [buf[got:]], offset + got)
        if n == 0:
            raise IntegrityError("file ends inside tensor data (truncated)")
        got += n


def _header_bytes(table: dict, manifest_bytes: bytes, mac: bytes, signature: bytes) -> bytes:
    meta = {"labkit.format": f"{FORMAT}/{FORMAT_VERSION}",
            "labkit.manifest": manifest_bytes.decode(), "labkit.mac": mac.hex(),
            "labkit.signature": signature.hex()}
    body = json.dumps({"__metadata__": meta, **table}, separators=(",", ":")).encode()
    body += b" " * (-len(body) % 8)  # safetensors pads the header to 8-byte alignment
    return struct.pack("<Q", len(body)) + body


def _finish_header(manifest: dict, content_key: bytes, signing_key) -> bytes:
    manifest_bytes = _encode_manifest(manifest)
    mac = hmac.new(_mac_key(content_key, manifest["model_id"]), manifest_bytes,
                   hashlib.sha256).digest()
    signature = eddsa.new(signing_key, "rfc8032").sign(_SIG_DOMAIN + manifest_bytes + mac)
    table = {name: _table_entry(name, t) for name, t in manifest["tensors"].items()}
    return _header_bytes(table, manifest_bytes, mac, signature)


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
    ``workers`` threads and the AEAD ``backend`` (see :func:`aead_backends`) change speed only.
    The file appears atomically: a crash leaves the old file (or none), never half of a new one.
    """
    state = _as_state_dict(tensors)
    path = Path(path)
    if isinstance(recipients, (bytes, bytearray, DeviceLicence, RecipientKeyPair, EccKey)):
        recipients = [recipients]
    recipients = list(recipients)
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
    workers = _default_workers(workers)
    aead = _backend(backend)
    sk = _signing_key(signing_key) if signing_key is not None else ECC.generate(curve="Ed25519")
    chosen = _select(encrypt, list(state))

    content_key = bytearray(get_random_bytes(KEY_BYTES))
    deks: dict[str, bytearray] = {}
    try:
        wrapped = [_wrap_for(r, bytes(content_key), model_id) for r in recipients]
        kids = [r["kid"] for r in wrapped]
        if len(set(kids)) != len(kids):
            raise ValueError("the same recipient is listed twice")
        views, entries, offset = {}, {}, 0
        for name, tensor in state.items():
            t, mv = _tensor_bytes(name, tensor)
            views[name] = (t, mv)
            entry = {"dtype": _dtype_name(t), "shape": list(t.shape),
                     "offsets": [offset, offset + len(mv)], "encrypted": name in chosen}
            if name in chosen:
                deks[name] = bytearray(get_random_bytes(KEY_BYTES))
                entry["wrapped_dek"] = _wrap_dek(bytes(content_key), bytes(deks[name]), model_id,
                                                 name)
                entry["nonce_base"] = get_random_bytes(NONCE_BYTES).hex()
                entry["tags"] = ["00" * TAG_BYTES] * len(_chunks(len(mv), chunk_size))
            else:
                entry["sha256"] = "00" * 32
            entries[name] = entry
            offset += len(mv)
        manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "model_id": model_id,
                    "version": version, "aead": AEAD_NAME, "chunk_size": chunk_size,
                    "signer": sk.public_key().export_key(format="raw").hex(),
                    "recipients": wrapped, "tensors": entries, "metadata": metadata}
        placeholder = _finish_header(manifest, bytes(content_key), sk)
        data_start = len(placeholder)
        local = threading.local()

        def encrypt_chunk(fd, name, index, count, a, b):
            entry = entries[name]
            out = getattr(local, "buf", None)
            if out is None:  # one cache-sized piece buffer per thread, reused
                out = local.buf = memoryview(bytearray(_PIECE + _SLACK))
            start = data_start + entry["offsets"][0] + a
            tag = aead.encrypt_into(
                bytes(deks[name]), chunk_nonce(bytes.fromhex(entry["nonce_base"]), index),
                chunk_aad(model_id, name, entry["dtype"], entry["shape"], index, count),
                views[name][1][a:b], out, lambda p, piece: _pwrite_all(fd, piece, start + p))
            entry["tags"][index] = tag.hex()

        def write_plain(fd, name):
            mv = views[name][1]
            _pwrite_all(fd, mv, data_start + entries[name]["offsets"][0])
            entries[name]["sha256"] = hashlib.sha256(mv).hexdigest()

        def write(fd):
            tasks = []
            for name, entry in entries.items():
                if entry["encrypted"]:
                    spans = _chunks(len(views[name][1]), chunk_size)
                    tasks += [partial(encrypt_chunk, fd, name, i, len(spans), a, b)
                              for i, (a, b) in enumerate(spans)]
                else:
                    tasks.append(partial(write_plain, fd, name))
            _run(tasks, workers)
            header = _finish_header(manifest, bytes(content_key), sk)
            if len(header) != data_start:  # every field is fixed-width hex: cannot happen
                raise RuntimeError("header size changed between placeholder and final header")
            _pwrite_all(fd, header, 0)

        _atomic_write(path, write)
    finally:
        zeroise(content_key)
        for dek in deks.values():
            zeroise(dek)
    return SealedModel(path, model_id, version, sk.public_key().export_key(format="raw"),
                       tuple(kids), tuple(n for n in state if n in chosen),
                       tuple(n for n in state if n not in chosen))


def open(path, private_key, *, signer=None, model_id: str | None = None,
         min_version: int | None = None, workers: int | None = None,
         backend: str | None = None) -> dict[str, torch.Tensor]:
    """Verify and decrypt a container; return ``{name: tensor}`` or raise, never anything partial.

    ``private_key``: the recipient's X25519 private key (32 bytes or :class:`RecipientKeyPair`)
    or its :class:`DeviceLicence`. ``signer``: the publisher's Ed25519 public key to pin (without
    it the signature only proves the header was not changed by someone lacking *a* signing key;
    the MAC under the content key still authenticates it to you). ``model_id`` and
    ``min_version`` refuse a different model or a replayed older version.
    Raises :class:`FormatError`, :class:`IntegrityError`, :class:`RollbackError` or
    :class:`NotARecipientError`.

    On Linux the tensors are decrypted in place in one private copy-on-write mapping of the
    file (no extra copy, peak memory about the model size); they share it, so it is freed when
    the last of them is. Changing the file afterwards cannot change them.
    """
    path = Path(path)
    workers = _default_workers(workers)
    aead = _backend(backend)
    fd = os.open(path, os.O_RDONLY)  # one descriptor: the header and data come from one file
    try:
        return _open_fd(fd, private_key, signer, model_id, min_version, workers, aead)
    finally:
        os.close(fd)


_MAP_FILE = hasattr(mmap, "MAP_POPULATE")  # Linux: decrypt in a private copy-on-write mapping
_MADV_POPULATE_WRITE = 23  # Linux 5.14+: copy-on-write a range now, in one call
_POPULATE_AT_MAP = 0  # set to mmap.MAP_POPULATE to copy the whole file up front instead
_PAGE = mmap.PAGESIZE


def _libc_madvise():
    """libc's ``madvise`` through ctypes, which releases the GIL during the call (the mmap
    method holds it): the copy-on-write of one chunk then overlaps another thread's decryption."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fn = libc.madvise
    except (OSError, AttributeError):  # pragma: no cover - no libc: the mmap method is used
        return None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


_MADVISE = _libc_madvise()


def _madvise(arena, offset: int, length: int, advice: int) -> None:
    """``arena.madvise(advice, offset, length)``, without holding the GIL when libc is at hand."""
    if _MADVISE is None:
        arena.madvise(advice, offset, length)
        return
    anchor = ctypes.c_char.from_buffer(arena)  # the mapping's address (a short-lived export)
    address = ctypes.addressof(anchor)
    del anchor
    if _MADVISE(address + offset, length, advice) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def _populate(arena, start: int, end: int) -> None:
    """Make ``arena[start:end]`` private (copied from the file) just before it is verified, so
    the copy is still in cache for the decryption and later changes to the file cannot reach
    what was checked. Without MADV_POPULATE_WRITE (older kernels), one write per page forces
    the same copy-on-write."""
    global _MADV_POPULATE_WRITE
    if end <= start:
        return
    first = start - start % _PAGE
    if _MADV_POPULATE_WRITE:
        try:
            _madvise(arena, first, end - first, _MADV_POPULATE_WRITE)
            return
        except OSError as err:
            if err.errno != errno.EINVAL:
                raise IntegrityError(f"the file changed while it was opened ({err})") from None
            _MADV_POPULATE_WRITE = 0
    region = torch.frombuffer(arena, dtype=torch.uint8, count=end - start, offset=start)
    # one store into every page the range touches (and only inside the range: other threads
    # decrypt the neighbouring bytes); the kernel copies each page on the first store
    touch = torch.tensor([0] + list(range(first + _PAGE - start, end - start, _PAGE)))
    region[touch] = region[touch].clone()


def _open_fd(fd, private_key, signer, model_id, min_version, workers, aead):
    header = _read_header_fd(fd)
    _verify_signature(header, signer)
    if model_id is not None and header.model_id != model_id:
        raise IntegrityError(f"file holds model {header.model_id!r}, expected {model_id!r}")
    if min_version is not None and header.version < min_version:
        raise RollbackError(f"file holds version {header.version}, older than {min_version}")
    content_key = bytearray(_unwrap(header, private_key))
    m = header.manifest
    places: dict[str, tuple[Any, int]] = {}  # name -> (buffer, where the tensor's bytes start)
    deks: dict[str, bytearray] = {}
    ok = False
    try:
        _check_mac(header, bytes(content_key))
        for name, entry in m["tensors"].items():
            if entry["encrypted"]:
                deks[name] = bytearray(_unwrap_dek(bytes(content_key), entry["wrapped_dek"],
                                                   header.model_id, name))
        size = os.fstat(fd).st_size
        if _MAP_FILE and size > header.data_start:
            # A private writable mapping pre-faulted by MAP_POPULATE is a private copy of the
            # file made by the kernel in one pass (no zero-filling, no read() copy); tensors
            # are decrypted in place in it. Later changes to the file cannot reach it.
            arena = mmap.mmap(fd, size, flags=mmap.MAP_PRIVATE | _POPULATE_AT_MAP,
                              prot=mmap.PROT_READ | mmap.PROT_WRITE)
            for name, entry in m["tensors"].items():
                places[name] = (arena, header.data_start + entry["offsets"][0])
            copied = False
        else:
            for name, entry in m["tensors"].items():
                places[name] = (_alloc(entry["offsets"][1] - entry["offsets"][0]), 0)
            copied = True

        def decrypt_chunk(name, index, count, a, b):
            entry = m["tensors"][name]
            buf, base = places[name]
            dst = memoryview(buf)[base + a :]
            src = dst[: b - a]

            def fetch(p, q):  # bring ciphertext bytes p:q of the chunk into private memory
                if copied:
                    _preadv_all(fd, src[p:q], header.data_start + entry["offsets"][0] + a + p)
                else:
                    _populate(buf, base + a + p, base + a + q)

            if not aead.decrypt_into(
                bytes(deks[name]), chunk_nonce(bytes.fromhex(entry["nonce_base"]), index),
                chunk_aad(header.model_id, name, entry["dtype"], entry["shape"], index, count),
                src, dst, bytes.fromhex(entry["tags"][index]), fetch,
            ):
                raise IntegrityError(f"tensor {name!r} chunk {index} fails authentication "
                                     "(tampered, swapped or truncated)")

        def check_plain(name):
            entry = m["tensors"][name]
            buf, base = places[name]
            dst = memoryview(buf)[base : base + entry["offsets"][1] - entry["offsets"][0]]
            if copied:
                _preadv_all(fd, dst, header.data_start + entry["offsets"][0])
            else:
                _populate(buf, base, base + len(dst))
            if not hmac.compare_digest(hashlib.sha256(dst).hexdigest(), entry["sha256"]):
                raise IntegrityError(f"plaintext tensor {name!r} does not match its digest")

        tasks = []
        for name, entry in m["tensors"].items():
            if entry["encrypted"]:
                spans = _chunks(entry["offsets"][1] - entry["offsets"][0], m["chunk_size"])
                tasks += [partial(decrypt_chunk, name, i, len(spans), a, b)
                          for i, (a, b) in enumerate(spans)]
            else:
                tasks.append(partial(check_plain, name))
        _run(tasks, workers)
        result = {name: _as_tensor(places[name], entry) for name, entry in m["tensors"].items()}
        ok = True
        return result
    finally:
        zeroise(content_key)
        for dek in deks.values():
            zeroise(dek)
        if not ok:  # decrypted-but-unverified plaintext must not linger
            for buf in {id(b): b for b, _ in places.values()}.values():
                zeroise(buf)


def _as_tensor(place: tuple[Any, int], entry: dict) -> torch.Tensor:
    """The tensor over ``nbytes`` at ``place`` (copied if its start is not aligned for the dtype)."""
    buf, base = place
    dtype, shape = DTYPES[entry["dtype"]], entry["shape"]
    nbytes = entry["offsets"][1] - entry["offsets"][0]
    if nbytes == 0:
        return torch.empty(shape, dtype=dtype)
    raw = torch.frombuffer(buf, dtype=torch.uint8, count=nbytes, offset=base)
    if base % dtype.itemsize:
        raw = raw.clone()
    return raw.view(dtype).reshape(shape)


def load_into(module: torch.nn.Module, path, private_key, **kwargs) -> torch.nn.Module:
    """Open a container and load it into ``module`` (strict: every key must match)."""
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    module.load_state_dict(open(path, private_key, **kwargs), strict=True)
    return module


# ---------------------------------------------------------------------------------------------
# recipient management: rewrite the header, copy the data untouched
# ---------------------------------------------------------------------------------------------
def _rewrite(path: Path, header: Header, manifest: dict, content_key: bytes, signing_key) -> None:
    new_header = _finish_header(manifest, content_key, _signing_key(signing_key))
    with path.open("rb") as src:
        def write(fd):
            _pwrite_all(fd, new_header, 0)
            src.seek(header.data_start)
            pos = len(new_header)
            while block := src.read(8 << 20):
                _pwrite_all(fd, block, pos)
                pos += len(block)
        _atomic_write(path, write)


def _managed(path, private_key, signing_key, signer):
    path = Path(path)
    header = read_header(path)
    _verify_signature(header, signer if signer is not None else _signing_pub(signing_key))
    ck = _unwrap(header, private_key)
    _check_mac(header, ck)
    return path, header, _decode_manifest(header.manifest_bytes), ck


def _signing_pub(signing_key) -> bytes:
    return _signing_key(signing_key).public_key().export_key(format="raw")


def add_recipients(path, recipients, *, private_key, signing_key, signer=None) -> list[str]:
    """Give more recipients the content key; no tensor is re-encrypted. Returns the new kids.

    ``private_key`` is any current recipient's key (the publisher typically keeps one for
    itself); ``signing_key`` must be the key that signed the file. The version is incremented.
    """
    path, header, manifest, ck = _managed(path, private_key, signing_key, signer)
    if isinstance(recipients, (bytes, bytearray, DeviceLicence, RecipientKeyPair, EccKey)):
        recipients = [recipients]
    new = [_wrap_for(r, ck, header.model_id) for r in recipients]
    kids = [r["kid"] for r in manifest["recipients"] + new]
    if len(set(kids)) != len(kids):
        raise ValueError("a recipient is already in the file")
    manifest["recipients"] += new
    manifest["version"] += 1
    _rewrite(path, header, manifest, ck, signing_key)
    return [r["kid"] for r in new]


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
    path, header, manifest, ck = _managed(path, private_key, signing_key, signer)
    present = {r["kid"] for r in manifest["recipients"]}
    if not kids <= present:
        raise ValueError(f"not recipients of this file: {sorted(kids - present)}")
    manifest["recipients"] = [r for r in manifest["recipients"] if r["kid"] not in kids]
    if not manifest["recipients"]:
        raise ValueError("cannot revoke every recipient")
    if rotate:
        ck = _rotate(manifest, ck, licences)
    manifest["version"] += 1
    _rewrite(path, header, manifest, ck, signing_key)


def _rotate(manifest: dict, ck: bytes, licences: Sequence[DeviceLicence]) -> bytes:
    """New content key: rewrap every DEK, re-deliver to every remaining recipient."""
    model_id = manifest["model_id"]
    new_ck = get_random_bytes(KEY_BYTES)
    for name, t in manifest["tensors"].items():
        if t["encrypted"]:
            dek = _unwrap_dek(ck, t["wrapped_dek"], model_id, name)
            t["wrapped_dek"] = _wrap_dek(new_ck, dek, model_id, name)
    by_kid = {}
    for lic in licences:
        for r in manifest["recipients"]:
            if r["type"] == "licence":
                kek = lic.derive_key(bytes.fromhex(r["salt"]), model_id)
                if _licence_kid(kek) == r["kid"]:
                    by_kid[r["kid"]] = lic
    new = []
    for r in manifest["recipients"]:
        if r["type"] == "hpke":
            new.append(_wrap_for(bytes.fromhex(r["pk"]), new_ck, model_id))
        elif r["kid"] in by_kid:
            new.append(_wrap_for(by_kid[r["kid"]], new_ck, model_id))
        else:
            raise ValueError(f"licence recipient {r['kid']} needs its DeviceLicence in licences= "
                             "to receive the new content key (or revoke it too)")
    manifest["recipients"] = new
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
    path, header, manifest, ck = _managed(path, private_key, signing_key, signer)
    ck = _rotate(manifest, ck, licences)
    manifest["version"] += 1
    if not reencrypt:
        _rewrite(path, header, manifest, ck, signing_key)
        return
    tensors = open(path, private_key, signer=signer, workers=workers)
    recipients = [bytes.fromhex(r["pk"]) if r["type"] == "hpke" else _find_licence(r, licences,
                  manifest["model_id"]) for r in manifest["recipients"]]
    seal(tensors, path, recipients, signing_key=signing_key,
         encrypt=[n for n, t in manifest["tensors"].items() if t["encrypted"]],
         model_id=header.model_id, version=manifest["version"], chunk_size=manifest["chunk_size"],
         metadata=manifest["metadata"], workers=workers)


def _find_licence(entry: dict, licences, model_id: str) -> DeviceLicence:
    for lic in licences:
        if _licence_kid(lic.derive_key(bytes.fromhex(entry["salt"]), model_id)) == entry["kid"]:
            return lic
    raise ValueError(f"licence recipient {entry['kid']} needs its DeviceLicence in licences=")
