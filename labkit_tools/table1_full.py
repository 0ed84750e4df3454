"""Regenerate data/results/table1_full.csv: the paper's Table 1 on 1000 random AES-128 keys.

Runs :func:`labkit.attacks.table1` (ePrint 2025/288 Sec. 5, seed 0: the keys and every query are
deterministic; only the seconds column depends on the machine) and writes one CSV row per setting.
Notebook 06 shows this table beside its live small run. About 5 minutes on 2 cores:

    nice .venv/bin/labkit-table1-full            # writes data/results/table1_full.csv
    .venv/bin/labkit-table1-full --keys 20 --out /tmp/t.csv   # a quick check
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from labkit import data_path
from labkit.attacks import format_table1, save_table1, table1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="labkit-table1-full", description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1000, help="random keys per setting (paper: 1000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=data_path("results", "table1_full.csv"))
    args = parser.parse_args(argv)
    start = time.perf_counter()
    rows = table1(args.keys, seed=args.seed, progress=True)
    print(format_table1(rows, seconds=True))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_table1(rows, args.out)
    print(f"wrote {args.out} ({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
