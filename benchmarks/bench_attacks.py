"""Speed of the key-recovery experiments (chapter 06) and of the defence (chapter 07).

1. Table 1 (paper Sec. 5): N random AES-128 keys x three settings with labkit.attacks.table1,
   which pools the queries of all keys into shared batches (NetworkStack). Printed against a
   reference measured in this run: the naive attack, one query per call, four queries per bit
   (the authors' procedure), on a few keys.
2. The defence's time overhead at batch 1 and batch 10,000 (paper: +2.8% and +0.3%).

    python benchmarks/bench_attacks.py                 # N = 50 keys, extrapolated to 1000
    python benchmarks/bench_attacks.py --keys 1000     # the full table
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from labkit.attacks import format_table1, query_oracle, table1
from labkit.timing import best_time
from labkit.neural import aes128_network


def naive_back_to_back(network, e: float = 0.25) -> tuple[bytes, int]:
    """The authors' procedure without batching: per bit, four queries sent one by one."""
    base = np.zeros(128)
    bits, queries = [], 0
    for i in range(128):
        outs = []
        for value in (-e, e, 1 - e, 1 + e):
            q = base.copy()
            q[i] = value
            outs.append(query_oracle(network, q[None, :])[0])
            queries += 1
        low, high = np.array_equal(outs[0], outs[1]), np.array_equal(outs[2], outs[3])
        bits.append(0 if low and not high else 1)
    return np.packbits(bits).tobytes(), queries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=50, help="random keys per setting (paper: 1000)")
    parser.add_argument("--naive-keys", type=int, default=2, help="keys for the naive reference")
    parser.add_argument("--big-batch", type=int, default=10_000, help="large batch for the overhead")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="worker threads for the table (default: one per core; 1 can win on a busy machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    print(f"torch threads: {torch.get_num_threads()}")
    print("\n== Reference: naive back-to-back attack, one query per call ==")
    start = time.perf_counter()
    for _ in range(args.naive_keys):
        key = os.urandom(16)
        found, naive_queries = naive_back_to_back(aes128_network(key))
        assert found == key
    naive_per_key = (time.perf_counter() - start) / args.naive_keys
    print(f"{naive_per_key:.2f} s per key ({naive_queries} queries)")

    print(f"\n== Table 1 on {args.keys} keys per setting ==")
    start = time.perf_counter()
    rows = table1(args.keys, seed=0, progress=True)
    total = time.perf_counter() - start
    print(format_table1(rows, seconds=True))
    print(f"\ntable time: {total:.1f} s for {args.keys} keys x 3 settings "
          f"({total / args.keys:.2f} s per key for all three)")
    b2b = rows[0]["seconds"] / args.keys
    print(f"back-to-back: {b2b:.3f} s per key = {naive_per_key / b2b:.1f}x faster than the naive reference")
    print(f"extrapolated to 1000 keys: {total / args.keys * 1000 / 60:.1f} min "
          f"(goal: 8 min; naive back-to-back alone: {naive_per_key * 1000 / 60:.1f} min)")

    print("\n== Defence overhead (AES-128, float64) ==")
    key = os.urandom(16)
    natural = aes128_network(key)
    protected = aes128_network(key, protected=True)
    # the wrapper (STEP, RECT, MASK) always runs as torch operations; the network inside runs in
    # the fused kernel (default) or as torch operations, as the paper's implementation does
    for kernel in (True, False):
        natural.kernel = protected.inner.kernel = kernel
        print("network evaluated by " + ("the fused kernel" if kernel else "torch operations"))
        for batch, repeats in ((1, 30), (args.big_batch, 2)):
            x = torch.randint(0, 2, (batch, 128), dtype=torch.float64)
            t_nat = best_time(lambda: natural(x), repeats)
            t_pro = best_time(lambda: protected(x), repeats)
            print(f"  batch {batch:>6}: natural {t_nat * 1e3:9.2f} ms, protected {t_pro * 1e3:9.2f} ms, "
                  f"overhead {100 * (t_pro / t_nat - 1):+.1f}%  (paper: {'+2.8' if batch == 1 else '+0.3'}%)")


if __name__ == "__main__":
    main()
