"""The paper's Table 1 (ePrint 2025/288 Sec. 5): many random AES-128 keys attacked in each setting,
their queries pooled through one :class:`~labkit.neural.stack.NetworkStack` per setting."""
from __future__ import annotations

import csv
import os
import time

import numpy as np

from labkit.attacks.recover import recover_keys
from labkit.neural.stack import NetworkStack
from labkit.parallel import torch_threads

__all__ = ["TABLE1_SETTINGS", "PAPER_TABLE1", "TABLE1_COLUMNS", "table1", "format_table1", "save_table1",
           "load_table1"]


#: The three settings of the paper's Table 1: strategy and how the natural network is built.
TABLE1_SETTINGS = {
    "back-to-back ReLUs (c = 1)": dict(strategy="back_to_back", c=1.0, clip_inputs=False),
    "separated ReLUs (c = 1/2)": dict(strategy="separated", c=0.5, clip_inputs=False),
    "clipped inputs (c = 1)": dict(strategy="clipped", c=1.0, clip_inputs=True),
}

#: What the authors report (ePrint 2025/288, Table 1): keys recovered and queries per key.
PAPER_TABLE1 = {
    "back-to-back ReLUs (c = 1)": dict(recovered="1000/1000", queries="512"),
    "separated ReLUs (c = 1/2)": dict(recovered="1000/1000", queries="512"),
    "clipped inputs (c = 1)": dict(recovered="1000/1000", queries="16 x 256 pairs"),
}


def table1(n_keys: int = 1000, *, seed: int = 0, settings: dict | None = None,
           progress: bool = True, dtype=None, max_batch: int = 8192,
           threads: int | None = None, candidates_per_round: int = 1) -> list[dict]:
    """Reproduce Table 1: ``n_keys`` random AES-128 keys attacked in each setting.

    Each row: setting, keys, recovered (confirmed and equal to the true key), success rate,
    mean/max queries per key, detected errors (caught by a failed check, then retried) and
    undetected errors (a confirmed key that is wrong: must be 0), and seconds. ``threads``
    workers evaluate query chunks side by side (None: torch's thread count, one per core; on
    an idle 2-core machine 2 workers run the clipped setting about 1.5x faster than 1).
    ``candidates_per_round`` > 1 sends several clipped-input tests per round trip: fewer, larger
    batches for a few more queries (all counted).
    """
    if threads is not None:
        with torch_threads(int(threads)):
            return table1(n_keys, seed=seed, settings=settings, progress=progress, dtype=dtype,
                          max_batch=max_batch, threads=None, candidates_per_round=candidates_per_round)

    if not isinstance(n_keys, (int, np.integer)) or n_keys < 1:
        raise ValueError(f"n_keys must be a positive int, got {n_keys!r}")
    settings = TABLE1_SETTINGS if settings is None else settings
    rng = np.random.default_rng(seed)
    keys = [rng.bytes(16) for _ in range(n_keys)]
    rows = []
    for label, setting in settings.items():
        start = time.perf_counter()
        stack = NetworkStack.aes128(keys, c=setting["c"], clip_inputs=setting["clip_inputs"], dtype=dtype)
        results = recover_keys(stack, n_keys, strategy=setting["strategy"], seed=seed,
                               max_batch=max_batch, progress=progress,
                               candidates_per_round=candidates_per_round)
        queries = np.array([r.queries for r in results])
        recovered = sum(r.key == k for r, k in zip(results, keys))
        rows.append(dict(
            setting=label, strategy=setting["strategy"], keys=n_keys, recovered=int(recovered),
            success_rate=recovered / n_keys, mean_queries=float(queries.mean()),
            max_queries=int(queries.max()),
            detected_errors=int(sum(r.detected_errors for r in results)),
            undetected_errors=int(sum(r.key is not None and r.key != k for r, k in zip(results, keys))),
            seconds=time.perf_counter() - start,
        ))
    return rows


def format_table1(rows: list[dict], *, seconds: bool = False) -> str:
    """Table 1 as aligned text, with the paper's figures beside ours."""
    header = f"{'setting':<28} {'recovered':>11} {'queries/key':>12} {'max':>6} {'detected':>9} {'undetected':>10}"
    header += f" {'seconds':>8}" if seconds else ""
    header += "   paper"
    lines = [header, "-" * len(header)]
    for row in rows:
        line = (f"{row['setting']:<28} {row['recovered']:>5}/{row['keys']:<5} {row['mean_queries']:>12.1f} "
                f"{row['max_queries']:>6} {row['detected_errors']:>9} {row['undetected_errors']:>10}")
        line += f" {row['seconds']:>8.1f}" if seconds else ""
        paper = PAPER_TABLE1.get(row["setting"])
        line += f"   {paper['recovered']}, {paper['queries']}" if paper else ""
        lines.append(line)
    return "\n".join(lines)


#: The columns of a saved Table 1 (one row per setting), with their types.
TABLE1_COLUMNS = {"setting": str, "strategy": str, "keys": int, "recovered": int, "success_rate": float,
                  "mean_queries": float, "max_queries": int, "detected_errors": int,
                  "undetected_errors": int, "seconds": float}


def save_table1(rows: list[dict], path: str | os.PathLike) -> None:
    """Write :func:`table1`'s rows as CSV (``data/results/table1_full.csv`` holds the 1000-key run)."""
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(TABLE1_COLUMNS), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({**{k: row[k] for k in TABLE1_COLUMNS}, "success_rate": f"{row['success_rate']:.4f}",
                             "mean_queries": f"{row['mean_queries']:.2f}", "seconds": f"{row['seconds']:.1f}"})


def load_table1(path: str | os.PathLike) -> list[dict]:
    """Rows saved by :func:`save_table1`, typed as :func:`table1` returns them (for :func:`format_table1`)."""
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames != list(TABLE1_COLUMNS):
            raise ValueError(f"{path}: expected the columns {list(TABLE1_COLUMNS)}, got {reader.fieldnames}")
        return [{name: kind(row[name]) for name, kind in TABLE1_COLUMNS.items()} for row in reader]
