"""Files, memory and threads for the container: atomic writes, positional reads and writes,
buffers, the private copy-on-write mapping :func:`~labkit.weights.open` decrypts in, wiping,
and the small thread pool that runs chunks in parallel."""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import mmap
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

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


def run_tasks(tasks: list[Callable[[], Any]], workers: int) -> list:
    """Results of ``tasks`` run on ``workers`` threads; the first exception cancels the rest."""
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
    """Fill ``buf`` from ``offset``; IntegrityError if the file ends first (truncated)."""
    got = 0
    while got < len(buf):
        n = os.preadv(fd, [buf[got:]], offset + got)
        if n == 0:
            raise IntegrityError("file ends inside tensor data (truncated)")
        got += n


MAP_FILE = hasattr(mmap, "MAP_POPULATE")  # Linux: decrypt in a private copy-on-write mapping
_MADV_POPULATE_WRITE = 23  # Linux 5.14+: copy-on-write a range now, in one call
POPULATE_AT_MAP = 0  # set to mmap.MAP_POPULATE to copy the whole file up front instead
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


def populate(arena, start: int, end: int) -> None:
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
