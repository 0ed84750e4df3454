"""Plain data between the kernel and the challenge service: JSON with tagged bytes and arrays.

Everything that crosses the boundary is one of: None, bool, int, float, str, bytes, a list, a dict
with string keys, or a numpy array of a small set of numeric dtypes. Decoding builds fresh values
of exactly these types, so whatever object a student hands to ``ex.check`` (one whose ``__eq__``
always answers True, say), the service compares plain values it made itself. Bytes and arrays are
base64 (RFC 4648) inside one-key objects ``{"$bytes": ...}`` and ``{"$array": ..., "dtype": ...,
"shape": [...]}``; a dict whose keys start with ``$`` is refused, so no tag can be smuggled in.
"""
from __future__ import annotations

import base64
import json
import math
from typing import Any

import numpy as np

__all__ = ["WireError", "encode", "decode", "dumps", "loads", "DTYPES", "MAX_DEPTH"]

#: The array dtypes that cross the boundary (little-endian on the wire).
DTYPES = ("float64", "float32", "uint8", "uint16", "int64", "bool")
MAX_DEPTH = 16
MAX_ELEMENTS = 1 << 24  # an array of at most 16 M elements: far above any query batch of the lab


class WireError(ValueError):
    """A value that is not plain data, or a message that is not a well-formed encoding of one."""


def encode(value: Any, _depth: int = 0) -> Any:
    """``value`` as JSON-able data (see the module docstring); :class:`WireError` for anything else."""
    if _depth > MAX_DEPTH:
        raise WireError("value nested too deeply")
    if value is None or isinstance(value, bool):
        return None if value is None else bool(value)
    if isinstance(value, (int, np.integer)) and not isinstance(value, np.bool_):
        return int.__index__(int(value)) if isinstance(value, np.integer) else int.__int__(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if not math.isfinite(number):
            raise WireError("numbers must be finite")
        return number
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, np.bool_):
        return bool(value)
    if type(value).__module__.startswith("torch") and hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return _encode_array(value)
    if isinstance(value, (list, tuple)):
        return [encode(v, _depth + 1) for v in value]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str) or key.startswith("$"):
                raise WireError("dict keys must be strings not starting with $")
            out[str.__str__(key)] = encode(item, _depth + 1)
        return out
    raise WireError(f"expected plain data (numbers, strings, bytes, lists, dicts, arrays), "
                    f"got {type(value).__name__}")


def _encode_array(array: np.ndarray) -> dict:
    name = array.dtype.name
    if name not in DTYPES:
        raise WireError(f"array dtype must be one of {DTYPES}, got {name}")
    data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    return {"$array": base64.b64encode(data.tobytes()).decode("ascii"), "dtype": name,
            "shape": [int(n) for n in array.shape]}


def decode(data: Any, _depth: int = 0) -> Any:
    """The plain value of an encoding made by :func:`encode` (fresh objects of the plain types)."""
    if _depth > MAX_DEPTH:
        raise WireError("message nested too deeply")
    if data is None or type(data) in (bool, str):
        return data
    if type(data) is int:
        return data
    if type(data) is float:
        if not math.isfinite(data):
            raise WireError("numbers must be finite")
        return data
    if type(data) is list:
        return [decode(v, _depth + 1) for v in data]
    if type(data) is not dict:
        raise WireError(f"unexpected {type(data).__name__} in a message")
    if "$bytes" in data:
        if set(data) != {"$bytes"}:
            raise WireError("a bytes value has exactly one key")
        return _b64(data["$bytes"])
    if "$array" in data:
        return _decode_array(data)
    if any(not isinstance(k, str) or k.startswith("$") for k in data):
        raise WireError("dict keys must be strings not starting with $")
    return {k: decode(v, _depth + 1) for k, v in data.items()}


def _b64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise WireError("base64 payload must be a string")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raise WireError("bad base64 payload") from None


def _decode_array(data: dict) -> np.ndarray:
    if set(data) != {"$array", "dtype", "shape"} or data["dtype"] not in DTYPES:
        raise WireError(f"an array has keys $array, dtype (one of {DTYPES}) and shape")
    shape = data["shape"]
    if (type(shape) is not list or len(shape) > 8
            or not all(type(n) is int and 0 <= n <= MAX_ELEMENTS for n in shape)):
        raise WireError("array shape must be a list of at most 8 non-negative ints")
    size = math.prod(shape)
    raw = _b64(data["$array"])
    dtype = np.dtype(data["dtype"]).newbyteorder("<")
    if size > MAX_ELEMENTS or len(raw) != size * dtype.itemsize:
        raise WireError("array payload does not match its shape and dtype")
    return np.frombuffer(raw, dtype=dtype).astype(data["dtype"]).reshape(shape)


def dumps(value: Any) -> bytes:
    """``value`` encoded as compact JSON bytes."""
    return json.dumps(encode(value), separators=(",", ":"), allow_nan=False).encode("utf-8")


def loads(raw: bytes | str) -> Any:
    """The value of :func:`dumps` output (:class:`WireError` on malformed input)."""
    try:
        data = json.loads(raw, parse_constant=_no_constant)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise WireError("message is not JSON") from None
    return decode(data)


def _no_constant(name: str):
    raise WireError(f"{name} is not a number here")
