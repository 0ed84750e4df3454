"""The attacker's generic search of the kernel: every value reachable in this process.

:func:`reachable_values` walks what a student's code can reach without knowing where to look: every
object the garbage collector tracks and everything those refer to (so bytes and ints held by any
container, instance, slot, closure cell or frame), the locals of every live frame of every thread,
the globals of every module, and the raw bytes of numpy arrays and torch tensors.
"""
from __future__ import annotations

import gc
import sys

import numpy as np

try:
    import torch as _torch
except ImportError:  # pragma: no cover - torch is a dependency of the lab
    _torch = None


def _buffers_of(obj, cls):
    if issubclass(cls, (bytes, bytearray)):
        return bytes(obj)
    if issubclass(cls, np.ndarray) and obj.dtype != object and obj.nbytes <= 1 << 26:
        return np.ascontiguousarray(obj).tobytes()
    if _torch is not None and issubclass(cls, _torch.Tensor):
        try:
            if obj.numel() * obj.element_size() <= 1 << 26 and obj.device.type == "cpu":
                return obj.detach().contiguous().view(-1).view(_torch.uint8).numpy().tobytes()
        except Exception:  # sparse, quantized or meta tensors hold nothing we can read this way
            return None
    return None


def reachable_values():
    """``(buffers, ints, strings)``: every bytes-like buffer (bytes, bytearrays, array and tensor
    contents), every int and every str reachable in this process."""
    seen: set[int] = set()
    buffers: list[bytes] = []
    ints: set[int] = set()
    strings: set[str] = set()
    roots = gc.get_objects()
    for frame in sys._current_frames().values():
        while frame is not None:
            roots.append(frame)
            roots.extend(frame.f_locals.values())
            frame = frame.f_back
    roots.extend(vars(m) for m in list(sys.modules.values()) if m is not None and hasattr(m, "__dict__"))
    stack = list(roots)
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        cls = type(obj)  # never isinstance: a student's object could lie through __class__
        if cls is bool:
            continue
        if issubclass(cls, int):
            ints.add(int.__int__(obj))
            continue
        if issubclass(cls, str):
            if len(obj) <= 4096:
                strings.add(str.__str__(obj))
            continue
        data = _buffers_of(obj, cls)
        if data is not None:
            buffers.append(data)
            if issubclass(cls, (bytes, bytearray)):
                continue
        try:
            stack.extend(gc.get_referents(obj))
        except Exception:
            continue
    return buffers, ints, strings
