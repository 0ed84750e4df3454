"""The thread helpers: a torch thread count for a block of code (every evaluator uses it) or for a
whole notebook session, and a map over worker threads (work that releases the GIL: ctypes calls,
torch operations)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator, TypeVar

from labkit import checks

__all__ = ["torch_threads", "session_torch_threads", "parallel_map"]

T = TypeVar("T")
R = TypeVar("R")


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)``, restoring the previous count after.

    Parallel chunks with single-threaded operations scale better than multi-threaded small
    products, which only spin on a busy machine: the evaluators use ``torch_threads(1)``.
    """
    # Here, not on top: the torch-free chapters import labkit.parallel too (importing torch: 1.2 s
    # of CPU and 192 MiB, measured).
    import torch

    n = checks.check_int(n, "the thread count", low=1)
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def session_torch_threads(n: int) -> int:
    """Set torch's thread count for the rest of the session (a notebook's first cell); the previous count.

    The evaluators pin their own blocks with :func:`torch_threads`, but the chapters' small models
    also run outside them (in the notebooks' own cells and in library code not pinned block by
    block), where torch's default of one thread per core only spins on a shared machine. Measured
    here, notebook 08c top to bottom on a loaded 2-core machine (load ~5): 21 s and 28 s with one
    thread for the session, 73 s and 49 s with the evaluators' pins alone.
    """
    import torch  # here, not on top: as in torch_threads

    n = checks.check_int(n, "the thread count", low=1)
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    return previous


def parallel_map(fn: Callable[[T], R], items: Iterable[T], workers: int) -> list[R]:
    """``[fn(item) for item in items]``, spread over at most ``workers`` threads, in order.

    One worker or one item runs in the calling thread. If a call raises, the first exception
    (in item order) propagates once the calls already running have finished, and the calls not yet
    started never run: a caller's clean-up (wiping a buffer) runs after the last write to it.
    """
    items = list(items)
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive int, got {workers!r}")
    workers = min(workers, len(items))
    if workers <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, items))
