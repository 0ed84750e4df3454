"""labkit's DES against pycryptodome's on the same blocks, in one run; prints the ratios.

Informational only: labkit.des is written to be read (bit arrays, one table lookup at a time);
its vectorised batch path (encrypt_many) exists for the exhaustive-search experiment.
Usage: python benchmarks/bench_des.py [number_of_blocks]
"""
from __future__ import annotations

import sys
import time

import numpy as np
from Crypto.Cipher import DES

from labkit import des


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(n_blocks: int = 2000) -> None:
    rng = np.random.default_rng(0)
    key = rng.bytes(8)
    data = rng.bytes(8 * n_blocks)
    blocks = [data[i:i + 8] for i in range(0, len(data), 8)]

    reference = DES.new(key, DES.MODE_ECB).encrypt(data)
    readable = b"".join(des.encrypt_block(key, b) for b in blocks[:200])
    batch = des.from_words(des.encrypt_many(des.to_words(key), des.to_words(data)))
    if readable != reference[:1600] or batch != reference:
        raise SystemExit("labkit DES disagrees with pycryptodome")

    t_ref = best_of(lambda: DES.new(key, DES.MODE_ECB).encrypt(data)) / n_blocks
    t_ref_calls = best_of(lambda: [DES.new(key, DES.MODE_ECB).encrypt(b) for b in blocks]) / n_blocks
    t_readable = best_of(lambda: [des.encrypt_block(key, b) for b in blocks[:200]], repeat=1) / 200
    t_batch = best_of(lambda: des.encrypt_many(des.to_words(key), des.to_words(data))) / n_blocks
    keys = des.to_words(rng.bytes(8 * n_blocks))
    t_batch_keys = best_of(lambda: des.encrypt_many(keys, np.uint64(0))) / n_blocks

    print(f"DES on {n_blocks} blocks of 8 bytes (per-block times, best of 3)")
    print(f"  pycryptodome, one ECB call         {t_ref * 1e6:10.3f} us  (reference)")
    print(f"  pycryptodome, one call per block   {t_ref_calls * 1e6:10.3f} us  "
          f"{t_ref_calls / t_ref:8.1f} x reference")
    print(f"  labkit encrypt_block (readable)    {t_readable * 1e6:10.3f} us  "
          f"{t_readable / t_ref:8.1f} x reference, {t_readable / t_ref_calls:6.1f} x per-call")
    print(f"  labkit encrypt_many (one key)      {t_batch * 1e6:10.3f} us  "
          f"{t_batch / t_ref:8.1f} x reference")
    print(f"  labkit encrypt_many (many keys)    {t_batch_keys * 1e6:10.3f} us  "
          f"{t_batch_keys / t_ref:8.1f} x reference")
    print(f"  readable / batch speed-up          {t_readable / t_batch:10.1f} x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
