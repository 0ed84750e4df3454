"""Files, memory and threads for the container: atomic writes, positional reads and writes,
private buffers, wiping, and the worker count (the chunks run on :func:`labkit.parallel.parallel_map`).

:func:`~labkit.weights.open` reads the file with ``preadv`` into anonymous private memory and
never maps the file itself: a file truncated while (or after) it is opened would make any access
to a mapped page past the new end of file kill the process with SIGBUS, and this holds even for
pages already copied on write (the kernel drops them on truncation). A read that comes up short
is an :class:`~labkit.weights.IntegrityError` instead.
"""
from __future__ import annotations

import mmap
import os
import tempfile
from pathlib import Path
from typing import Callable

import torch

from labkit.weights.errors import IntegrityError

__all__ = ["zeroise"]

SLACK = 16  # spare bytes after every buffer (OpenSSL's update_into asks for 15)


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


def alloc(nbytes: int):
    """A writable buffer of ``nbytes + SLACK`` bytes; large ones pre-faulted in one system call
    (MAP_POPULATE), which on a busy VM is much faster than one page fault per 4 KiB."""
    size = nbytes + SLACK
    if size >= 1 << 20 and hasattr(mmap, "MAP_POPULATE"):
        return mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | mmap.MAP_POPULATE)
    return bytearray(size)


def default_workers(workers: int | None) -> int:
    """Validated thread count (None: up to two, the lab machine's cores)."""
    if workers is None:
        return min(2, os.cpu_count() or 1)
    if type(workers) is not int or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    return workers


def atomic_write(path: Path, write: Callable[[int], None]) -> None:
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


def pwrite_all(fd: int, data, offset: int) -> None:
    """Write all of ``data`` at ``offset`` (``os.pwrite`` may write less than asked)."""
    mv = memoryview(data).cast("B")
    while mv:
        n = os.pwrite(fd, mv, offset)
        mv, offset = mv[n:], offset + n


def preadv_all(fd: int, buf: memoryview, offset: int) -> None:
    """Fill ``buf`` from ``offset``; IntegrityError if the file ends first (truncated while it
    was being read) or cannot be read."""
    got = 0
    while got < len(buf):
        try:
            n = os.preadv(fd, [buf[got:]], offset + got)
        except OSError as err:
            raise IntegrityError(f"the file could not be read ({err})") from None
        if n == 0:
            raise IntegrityError("file ends inside tensor data (truncated while opening)")
        got += n
