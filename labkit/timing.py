"""Wall-clock timing for the notebooks' live speed comparisons (benchmarks/ measures properly)."""
from __future__ import annotations

import time
from typing import Callable

__all__ = ["best_time"]


def best_time(fn: Callable[[], object], repeats: int = 3) -> float:
    """The shortest of ``repeats`` wall-clock runs of ``fn()``, in seconds: the run least
    disturbed by other work on the machine."""
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best
