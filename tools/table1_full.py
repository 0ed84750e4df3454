"""Regenerate data/results/table1_full.csv: the paper's Table 1 on 1000 random AES-128 keys.

Runs :func:`labkit.attacks.table1` (ePrint 2025/288 Sec. 5, seed 0: the keys and every query are
deterministic; only the seconds column depends on the machine) and writes one CSV row per setting.
Notebook 06 shows this table beside its live small run. About 5 minutes on 2 cores:

    nice .venv/bin/python tools/table1_full.py            # writes data/results/table1_full.csv
    .venv/bin/python tools/table1_full.py --keys 20 --out /tmp/t.csv   # a quick check
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from a clone: use its labkit
from labkit import data_path  # noqa: E402
from labkit.attacks import format_table1, save_table1, table1  # noqa: E402

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1000, help="random keys per setting (paper: 1000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=data_path("results", "table1_full.csv"))
    args = parser.parse_args()
    start = time.perf_counter()
    rows = table1(args.keys, seed=args.seed, progress=True)
    print(format_table1(rows, seconds=True))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_table1(rows, args.out)
    print(f"wrote {args.out} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
