"""Files, memory and threads for the container: atomic writes, positional reads and writes,
private buffers, wiping, and the worker count (the chunks run on :func:`labkit.parallel.parallel_map`).

:func:`~labkit.weights.open` reads the file with ``preadv`` into anonymous private memory and
never maps the file itself: a file truncated while (or after) it is opened would make any access
to a mapped page past the new end of file kill the process with SIGBUS, and this holds even for
pages already copied on write (the kernel drops them on truncation). A read that comes up short
is an :class:`~labkit.weights.IntegrityError` instead.
"""
from __future__ import annotations

import ctypes
import mmap
import os
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch

from labkit.weights.errors import IntegrityError

__all__ = ["zeroise"]

SLACK = 16  # spare bytes after every buffer (OpenSSL's update_into asks for 15)
WRITE_BUFFER = 4 << 20  # seal encrypts into a buffer of this size per thread, one pwrite each
READ_BUFFER = 4 << 20  # open reads ciphertext into a buffer of this size per thread, one preadv each


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


_MADV_POPULATE_WRITE = 23  # Linux 5.14+: fault pages in, writable, in one call
try:
    _libc = ctypes.CDLL(None, use_errno=True)  # ctypes calls release the GIL
    _madvise = _libc.madvise
    _madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    _madvise.restype = ctypes.c_int
except (OSError, AttributeError):  # pragma: no cover - not Linux: pages fault in on first write
    _madvise = None
_PAGE = mmap.PAGESIZE


_MADV_HUGEPAGE, _MADV_NOHUGEPAGE = 14, 15
HUGE_PAGE = 2 << 20  # x86-64 and arm64 (4 KiB base pages): a PMD-sized transparent huge page
HUGE_MIN_BYTES = 16 << 20  # smaller arenas keep 4 KiB pages (no probe, no rounding)
HUGE_MIN_RATE = 2e9  # bytes/s: huge pages populating slower than 4 KiB pages do here are off


class Arena:
    """Private anonymous memory of ``nbytes + SLACK`` bytes (``.view``, a memoryview of the
    mapping ``.buf``) whose pages are faulted in chunk by chunk by :meth:`populate`, so that the
    threads that decrypt also pay the page faults, off the GIL, while another thread runs AES
    (faulting all of it first, one thread, ``MAP_POPULATE``, took as long as reading and
    decrypting everything afterwards; one fault per page during the copy costs 15% more CPU
    than one call per chunk).

    Arenas of :data:`HUGE_MIN_BYTES` or more are aligned to :data:`HUGE_PAGE` and ask for
    transparent huge pages (``MADV_HUGEPAGE``): one fault, one zeroing call and one memcg
    charge per 2 MiB instead of per 4 KiB, 0.35 ms against 1.35 ms per 4 MiB here. But a huge
    page needs a free 2 MiB block the host still backs, and in a VM whose balloon returns free
    memory to the host (free page reporting) it may not: such a populate ran at 8.7 ms per 4 MiB.
    So the first huge page is faulted in at once and timed (CPU time of the calling thread, so
    that waiting for a busy core is not counted), and so is every later populate; the first that
    runs below :data:`HUGE_MIN_RATE` (a call for less than a huge page counts as one) turns huge
    pages off for the rest of the arena (``MADV_NOHUGEPAGE``): a lost bet costs about 4 ms per
    thread (one slow huge page), a won one saves 55-60 ms of a 256 MiB open's 160 ms of CPU
    (``benchmarks/bench_weights.py``).
    PyTorch's own CPU allocator does the same for large tensors when asked
    (``THP_MEM_ALLOC_ENABLE=1``), without the probe.
    """

    def __init__(self, nbytes: int, huge: bool | None = None):
        size = nbytes + SLACK
        if size < 1 << 20 or not hasattr(mmap, "MAP_ANONYMOUS"):
            self.buf, self._address, self.huge, self.base = bytearray(size), None, False, 0
            self.view = memoryview(self.buf)
            return
        self.huge = (size >= HUGE_MIN_BYTES if huge is None else huge) and _madvise is not None
        pad = HUGE_PAGE if self.huge else 0
        self.buf = mmap.mmap(-1, size + pad, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        view = ctypes.c_char.from_buffer(self.buf)
        start = ctypes.addressof(view)
        del view  # the address stays valid as long as self.buf lives (never closed or resized)
        self.base = -start % HUGE_PAGE if self.huge else 0
        self._address, self._span = start + self.base, size
        self.view = memoryview(self.buf)[self.base : self.base + size]
        if self.huge:
            self.huge = _madvise(self._address, size, _MADV_HUGEPAGE) == 0
            self.populate(0, min(size, HUGE_PAGE))  # the probe: one huge page, before any worker starts

    def populate(self, begin: int, end: int) -> None:
        """Fault in the pages of bytes ``begin:end`` of :attr:`view` (one system call,
        without the GIL); a no-op where ``MADV_POPULATE_WRITE`` is missing (then the first
        write faults them in)."""
        if self._address is None or _madvise is None or end <= begin:
            return
        a = (self._address + begin) // _PAGE * _PAGE
        b = self._address + end
        huge = self.huge
        start = time.thread_time() if huge else 0.0
        if _madvise(a, b - a, _MADV_POPULATE_WRITE) != 0:
            self._address = None  # unsupported kernel (EINVAL): stop asking
            return
        # a call for a few bytes may fault in a whole huge page: judged as one at least
        if huge and (time.thread_time() - start) * HUGE_MIN_RATE > max(b - a, HUGE_PAGE):
            self.huge = False  # the pages already in stay huge; the rest come 4 KiB at a time
            _madvise(self._address, self._span, _MADV_NOHUGEPAGE)


def alloc(nbytes: int, huge: bool | None = None) -> Arena:
    """An :class:`Arena` of ``nbytes`` (+ :data:`SLACK`) bytes; ``huge``: try transparent huge
    pages (None: for arenas of :data:`HUGE_MIN_BYTES` or more)."""
    return Arena(nbytes, huge)


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
