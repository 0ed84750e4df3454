"""Give a kernel's freed memory back to the operating system.

glibc's ``malloc`` keeps memory a program has freed for its next allocations instead of returning
it: it gives back only the top of its heap, and only when more than a threshold is free there,
and that threshold rises (up to 64 MiB) each time a large block is freed. A torch kernel that
trains a model or evaluates a large batch frees tens of MiB of tensors and keeps holding them
(resident, counted in its RSS and PSS), so its memory only ratchets up from cell to cell.
``malloc_trim(0)`` (glibc 2.8+) returns every free page of every arena, the middle of the heap
included (``madvise(MADV_DONTNEED)``), without moving live data; it takes about 10 ms.

Measured on notebook 08c (labkit-notebook-memory): after training the digit CNN, 26 MiB of RSS go
back; after measuring a backdoor's evasion on 450 images, 35 MiB. The alternative, fixing
``MALLOC_TRIM_THRESHOLD_`` or ``MALLOC_MMAP_THRESHOLD_`` in the kernel's environment, turns off
glibc's adaptive thresholds for the whole process: every large tensor is then a fresh ``mmap``
whose pages fault in again, and training the CNN took 4.2-4.7 s instead of 2.0 s. So the lab
trims once after each cell instead (:func:`release_after_each_cell`, one line in a unit's first
cell), where a student waits anyway.

Where ``malloc_trim`` does not exist (macOS, musl-based Linux), :func:`release` only collects
garbage, and says so by returning False.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys
from functools import lru_cache


@lru_cache(maxsize=1)
def _glibc():
    """The C library if it is glibc (it has ``malloc_trim`` and ``mallopt``), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
        libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    except (OSError, AttributeError):  # no libc found, or musl (Alpine): neither function
        return None
    return libc


def _malloc_trim():
    """glibc's ``int malloc_trim(size_t pad)``, or None where the C library has none."""
    libc = _glibc()
    return libc.malloc_trim if libc is not None else None


def release() -> bool:
    """Collect garbage (cycles keep tensors alive), then return the C heap's free pages to the OS.

    True when the C library returned memory (glibc's ``malloc_trim``: 1 if it released any), False
    when it had nothing to return or cannot (no glibc)."""
    gc.collect()
    return trim()


def trim() -> bool:
    """Return the C heap's free pages to the OS now (``malloc_trim(0)``), without collecting
    garbage: for a loop whose every step frees large temporaries. True if memory was returned.

    Within one cell, glibc serves each step's arrays from pages the previous steps freed only in
    part, and the heap grows step after step: 20 batches of 500 forged triggers (chapter 08's
    forgery count) peaked 31 MiB above where they started, and 17 MiB with a trim after each
    batch, which cost 0.1 s of their 3.7 s. Where glibc is missing it does nothing (False)."""
    fn = _malloc_trim()
    return bool(fn(0)) if fn is not None else False


def _after_cell(*_args) -> None:  # IPython passes the cell's result to post_run_cell callbacks
    release()


def release_after_each_cell(shell=None) -> bool:
    """In a Jupyter kernel: call :func:`release` after every cell from now on (once per session,
    however often it is called). Returns whether a kernel was found; outside IPython it does nothing.

    A unit's first cell calls it, as it sets torch's threads: the peak of a unit is then the memory
    its cells hold plus one cell's temporaries, not what earlier cells left in the heap."""
    if shell is None:
        ipython = sys.modules.get("IPython")
        shell = ipython.get_ipython() if ipython is not None else None
    if shell is None:
        return False
    callbacks = shell.events.callbacks["post_run_cell"]
    if _after_cell not in callbacks:
        shell.events.register("post_run_cell", _after_cell)
    return True


# mallopt(3) parameters (glibc's malloc.h)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8
SERVER_MMAP_THRESHOLD = 64 * 1024  # a block this large or larger is its own mapping, unmapped when freed
SERVER_TRIM_THRESHOLD = 128 * 1024  # glibc's default, kept fixed instead of rising to 64 MiB
SERVER_ARENAS = 2


def tune_server_heap() -> bool:
    """Make glibc return a Jupyter server's freed memory at once (call it early in the server process:
    ``deploy/jupyter/jupyter_server_config.py`` does). Returns whether the settings took.

    A server relays every message a kernel sends as Python strings (the websocket's JSON, the
    nbformat validation of a save); large ones are freed soon after, but with glibc's adaptive
    thresholds they are carved from the heaps of several threads' arenas and stay resident. Measured
    here (jupyter lab, notebook 02 run twice through the kernel websocket as the load test does):
    the server grew from 112 to 172 MiB RSS, and a ``malloc_trim(0)`` afterwards gave 46 MiB back;
    with these settings it stayed at 123 MiB (peak 151 instead of 181). Fixed thresholds cost a
    fresh mapping per large message, nothing a server relaying a class's cells notices; they are not
    for kernels, where training a model then took twice as long (see the module docstring). Set in
    the process with ``mallopt``, not through ``MALLOC_*`` environment variables, which every kernel
    the server starts would inherit."""
    if _malloc_trim() is None:  # not glibc: no mallopt either
        return False
    mallopt = _glibc().mallopt
    return all(mallopt(param, value) == 1 for param, value in (
        (M_ARENA_MAX, SERVER_ARENAS), (M_MMAP_THRESHOLD, SERVER_MMAP_THRESHOLD), (M_TRIM_THRESHOLD, SERVER_TRIM_THRESHOLD)))
