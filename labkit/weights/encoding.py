"""Constants and byte encodings of the container format: associated data, chunk nonces and
spans, canonical JSON, and the dtype names shared by torch and safetensors.

Everything here is a pure function of its arguments; :mod:`labkit.weights.format` parses and
writes headers with it, :mod:`labkit.weights.container` encrypts with it.
"""
from __future__ import annotations

import json
import struct
from typing import Sequence

import torch

__all__ = ["FORMAT", "FORMAT_VERSION", "DEFAULT_CHUNK_SIZE", "MAX_HEADER_BYTES", "DTYPES",
           "chunk_aad", "chunk_nonce", "chunk_spans"]

FORMAT = "labkit.weights"
FORMAT_VERSION = 1
DEFAULT_CHUNK_SIZE = 4 << 20  # 4 MiB: large enough to amortise Python, small for threads
MAX_HEADER_BYTES = 16 << 20  # absolute cap (safetensors allows 100 MB); see format.header_limit
AEAD_NAME = "AES-256-GCM"
HPKE_SUITE = "DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM"
TAG_BYTES = 16
NONCE_BYTES = 12
KEY_BYTES = 32
SIG_DOMAIN = b"labkit.weights/1 header signature\x00"


def length_prefixed(data: bytes) -> bytes:
    """``len(data)`` as 4 big-endian bytes, then ``data``: concatenations stay unambiguous."""
    return struct.pack(">I", len(data)) + bytes(data)


def canonical_json(obj) -> bytes:
    """Sorted keys, no spaces, ASCII only: one byte string per JSON value (what is signed)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def chunk_aad(model_id: str, name: str, dtype: str, shape: Sequence[int], index: int,
              count: int) -> bytes:
    """Associated data of one chunk: format, version, model id, tensor name, dtype, shape,
    chunk index and count, each length-prefixed so no two contexts share an encoding."""
    return (
        b"labkit.weights\x00"
        + struct.pack(">H", FORMAT_VERSION)
        + length_prefixed(model_id.encode())
        + length_prefixed(name.encode())
        + length_prefixed(dtype.encode())
        + struct.pack(">I", len(shape))
        + b"".join(struct.pack(">Q", d) for d in shape)
        + struct.pack(">QQ", index, count)
    )


def chunk_nonce(nonce_base: bytes, index: int) -> bytes:
    """The nonce of chunk ``index``: ``nonce_base XOR I2OSP(index, 12)`` (RFC 9180 sec. 5.2)."""
    return (int.from_bytes(nonce_base, "big") ^ index).to_bytes(NONCE_BYTES, "big")


def chunk_spans(nbytes: int, chunk_size: int) -> list[tuple[int, int]]:
    """``(begin, end)`` of each GCM chunk of a tensor of ``nbytes`` bytes (one empty chunk for
    an empty tensor: its tag still authenticates name, dtype and shape)."""
    if nbytes == 0:
        return [(0, 0)]
    return [(a, min(a + chunk_size, nbytes)) for a in range(0, nbytes, chunk_size)]


def dek_aad(model_id: str, name: str) -> bytes:
    """Associated data of a tensor's wrapped DEK (binds it to the model and the tensor)."""
    return (b"labkit.weights/1 dek\x00" + length_prefixed(model_id.encode())
            + length_prefixed(name.encode()))


def content_key_aad(model_id: str, kid: str) -> bytes:
    """Associated data of the content key wrapped for recipient ``kid``."""
    return (b"labkit.weights/1 content key\x00" + length_prefixed(model_id.encode())
            + length_prefixed(kid.encode()))


# dtypes: torch <-> safetensors
SAFETENSORS_CODES = {
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
