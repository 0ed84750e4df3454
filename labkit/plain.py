"""Plain data: the only values that cross between a student's code and a grader.

A check compares what a student's function returned with labkit's answer. If the returned object
can be anything, it can also answer ``True`` to every ``==`` (a class whose ``__eq__`` always says
yes). So a checker first turns the result into *plain data* (exact builtin types, numpy arrays of
numbers, torch tensors as arrays) and refuses everything else; what it compares then has no code of
the student's in it.

The same rule is a wire format: :func:`dumps` / :func:`loads` write plain data as JSON (bytes as hex,
arrays as dtype, shape and hex bytes, never pickle), so a grader can send inputs to a sandboxed
process and read its outputs back without ever unpickling or executing anything it receives.

Types: ``None``, ``bool``, ``int``, ``float`` (also nan and infinities), ``str``, ``bytes`` (and
``bytearray``, which arrives as ``bytes``),
``fractions.Fraction``, ``list``, ``tuple``, ``dict`` (keys plain too), numpy arrays of bool, int,
uint, float or complex dtype and numpy scalars of those, and torch tensors (sent as arrays, back as
tensors). Subclasses are refused: their methods would be the student's. labkit's own objects
that a grader hands to a student's function (a round function, a key pair) travel as the labkit
call that rebuilds them, which only the receiving sandbox runs.
"""
from __future__ import annotations

import dataclasses
import importlib
import json
import math
from fractions import Fraction
from typing import Any

import numpy as np

__all__ = ["PlainDataError", "encode", "decode", "dumps", "loads", "to_plain", "plain_equal", "MAX_DEPTH"]

#: How deeply plain data may nest (lists of lists ...); deeper is refused, not recursed into.
MAX_DEPTH = 32
#: The array dtype kinds that are plain: bool, signed, unsigned, float, complex (never object).
_ARRAY_KINDS = "biufc"
_ARRAY_MAX_BYTES = 64 << 20


class PlainDataError(TypeError):
    """A value that is not plain data (another type, a subclass, an object array, too deep)."""


def _name(value: Any) -> str:
    kind = type(value)
    return kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def _array(value: np.ndarray) -> dict:
    if value.dtype.kind not in _ARRAY_KINDS or value.dtype.fields is not None:
        raise PlainDataError(f"a numpy array of dtype {value.dtype} is not plain data")
    array = value.copy(order="C")  # (ascontiguousarray would make a 0-d array 1-d)
    return {"dtype": array.dtype.str, "shape": list(array.shape), "hex": array.tobytes().hex()}


def encode(value: Any, *, depth: int = 0) -> Any:
    """``value`` as JSON-ready data with tags for the non-JSON types; :class:`PlainDataError` if it
    is not plain data. Objects with a ``__plain__()`` method encode as the call that rebuilds them
    (``{"$call": ["labkit.module:function", args]}``): only a sandbox decodes those."""
    if depth > MAX_DEPTH:
        raise PlainDataError(f"plain data nests at most {MAX_DEPTH} levels")
    kind = type(value)
    if value is None or kind in (bool, int, str):
        return value
    if kind is float:
        return value if math.isfinite(value) else {"$float": repr(value)}
    if kind is bytes or kind is bytearray:  # a bytearray arrives as bytes (its content, no methods)
        return {"$bytes": value.hex()}
    if kind is Fraction:
        return {"$fraction": [value.numerator, value.denominator]}
    if kind is list:
        return [encode(v, depth=depth + 1) for v in value]
    if kind is tuple:
        return {"$tuple": [encode(v, depth=depth + 1) for v in value]}
    if kind is dict:
        return {"$dict": [[encode(k, depth=depth + 1), encode(v, depth=depth + 1)] for k, v in value.items()]}
    if kind is np.ndarray:
        return {"$array": _array(value)}
    if isinstance(value, np.generic) and kind.__module__ == "numpy" and value.dtype.kind in _ARRAY_KINDS:
        return {"$scalar": _array(np.asarray(value))}
    if kind.__module__ == "torch" and kind.__name__ == "Tensor":
        return {"$tensor": _array(value.detach().cpu().numpy())}
    plain = getattr(kind, "__plain__", None)
    if plain is not None and kind.__module__.startswith("labkit."):
        target, args = plain(value)
        return {"$call": [str(target), encode(tuple(args), depth=depth + 1)]}
    if dataclasses.is_dataclass(kind) and kind.__module__.startswith("labkit.") and "." not in kind.__qualname__:
        fields = tuple(getattr(value, f.name) for f in dataclasses.fields(kind) if f.init)
        return {"$call": [f"{kind.__module__}:{kind.__qualname__}", encode(fields, depth=depth + 1)]}
    raise PlainDataError(f"a {_name(value)} is not plain data (expected numbers, bytes, str, lists, "
                         "tuples, dicts or numpy arrays)")


def _decode_array(spec: Any) -> np.ndarray:
    if not (isinstance(spec, dict) and set(spec) == {"dtype", "shape", "hex"}):
        raise PlainDataError("malformed array")
    dtype = np.dtype(str(spec["dtype"]))
    shape = spec["shape"]
    if dtype.kind not in _ARRAY_KINDS or dtype.fields is not None or not isinstance(shape, list) \
            or not all(type(n) is int and n >= 0 for n in shape) or len(shape) > MAX_DEPTH:
        raise PlainDataError("malformed array")
    raw = bytes.fromhex(str(spec["hex"]))
    if len(raw) > _ARRAY_MAX_BYTES or len(raw) != dtype.itemsize * math.prod(shape):
        raise PlainDataError("array size does not match its shape")
    return np.frombuffer(raw, dtype=dtype).reshape(tuple(shape)).copy()


def decode(data: Any, *, calls: bool = False, depth: int = 0) -> Any:
    """The plain value ``data`` encodes. ``calls=True`` (a sandbox rebuilding a grader's inputs)
    also runs ``$call`` tags, and only for functions of labkit; a grader decodes with ``calls=False``
    and so builds nothing but plain data from what a student's process sends."""
    if depth > MAX_DEPTH:
        raise PlainDataError(f"plain data nests at most {MAX_DEPTH} levels")
    kind = type(data)
    if data is None or kind in (bool, int, str, float):
        return data
    if kind is list:
        return [decode(v, calls=calls, depth=depth + 1) for v in data]
    if kind is not dict or len(data) != 1:
        raise PlainDataError(f"malformed plain data: {kind.__name__}")
    (tag, body), = data.items()
    if tag == "$float" and body in ("nan", "inf", "-inf"):
        return float(body)
    if tag == "$bytes" and type(body) is str:
        return bytes.fromhex(body)
    if tag == "$fraction" and type(body) is list and len(body) == 2 and all(type(v) is int for v in body) \
            and body[1] > 0:
        return Fraction(*body)
    if tag == "$tuple" and type(body) is list:
        return tuple(decode(v, calls=calls, depth=depth + 1) for v in body)
    if tag == "$dict" and type(body) is list and all(type(p) is list and len(p) == 2 for p in body):
        return {decode(k, calls=calls, depth=depth + 1): decode(v, calls=calls, depth=depth + 1) for k, v in body}
    if tag == "$array":
        return _decode_array(body)
    if tag == "$scalar":
        array = _decode_array(body)
        if array.shape != ():
            raise PlainDataError("malformed scalar")
        return array[()]
    if tag == "$tensor":
        # Here, not on top: the torch-free units decode plain data too (importing torch: 1.2 s of
        # CPU and 192 MiB, measured), and a tensor arrives only where torch is loaded already.
        import torch

        return torch.from_numpy(_decode_array(body))
    if tag == "$call" and calls and type(body) is list and len(body) == 2:
        return _rebuild(body[0], decode(body[1], calls=calls, depth=depth + 1))
    raise PlainDataError(f"malformed plain data: tag {tag!r}")


def _rebuild(target: Any, args: Any) -> Any:
    module, _, name = str(target).partition(":")
    if not module.startswith("labkit.") or not name.isidentifier() or type(args) is not tuple:
        raise PlainDataError(f"cannot rebuild {target!r}")
    return getattr(importlib.import_module(module), name)(*args)


def dumps(value: Any) -> str:
    """``value`` as a JSON string of plain data (:func:`encode`)."""
    return json.dumps(encode(value), separators=(",", ":"), allow_nan=False)


def loads(text: str | bytes, *, calls: bool = False) -> Any:
    """The plain value of a JSON string written by :func:`dumps` (:func:`decode`)."""
    return decode(json.loads(text), calls=calls)


def to_plain(value: Any) -> Any:
    """A plain copy of ``value`` (exact builtin types, fresh arrays): :class:`PlainDataError` if
    ``value`` is not plain data. What a checker compares instead of the object it was handed."""
    return decode(encode(value))


def plain_equal(expected: Any, got: Any) -> bool:
    """``got`` equals ``expected`` as plain data, ``expected`` (labkit's answer) deciding the type:
    ints and numpy integers are interchangeable (bool is neither), as are floats and integers
    compared by value; bytes, str, lists and tuples must be of the same type, arrays of the same
    shape and values."""
    if isinstance(expected, (bool, np.bool_)):
        return type(got) in (bool, np.bool_) and bool(got) == bool(expected)
    if isinstance(expected, (int, np.integer)):
        return isinstance(got, (int, np.integer)) and not isinstance(got, (bool, np.bool_)) \
            and int(got) == int(expected)
    if isinstance(expected, (float, np.floating, Fraction)):
        return isinstance(got, (int, float, np.integer, np.floating, Fraction)) \
            and not isinstance(got, (bool, np.bool_)) and got == expected
    if isinstance(expected, np.ndarray):
        return isinstance(got, np.ndarray) and got.shape == expected.shape and bool(np.array_equal(got, expected))
    if isinstance(expected, (list, tuple)):
        return type(got) is type(expected) and len(got) == len(expected) \
            and all(plain_equal(e, g) for e, g in zip(expected, got))
    if isinstance(expected, dict):
        return type(got) is dict and set(got) == set(expected) and all(plain_equal(expected[k], got[k]) for k in expected)
    return type(got) is type(expected) and got == expected
