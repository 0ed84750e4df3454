"""labkit AES and GCM against pycryptodome, measured in the same run (informational ratios).

labkit's AES is written to be read (numpy, one function per FIPS-197 step), so it is far slower
than pycryptodome's C code for one block; batching many blocks through the same code
(encrypt_blocks, as ECB/CTR do) closes much of the gap.

Usage: python benchmarks/bench_aes.py
"""
from __future__ import annotations

import time

import numpy as np
from Crypto.Cipher import AES

from labkit import aes, gcm


def per_call(fn, *, min_time: float = 0.3) -> float:
    """Seconds per call of ``fn``, repeating until ``min_time`` has passed (best of 3 runs)."""
    best = float("inf")
    for _ in range(3):
        n, start = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_time / 3:
                break
        best = min(best, elapsed / n)
    return best


def main() -> None:
    rng = np.random.default_rng(0)
    key, block = rng.bytes(16), rng.bytes(16)
    ecb = AES.new(key, AES.MODE_ECB)
    rows = []

    ours = per_call(lambda: aes.encrypt_block(key, block))
    ref = per_call(lambda: ecb.encrypt(block))
    rows.append(("one block, AES-128 (incl. key expansion)", ours, ref))

    blocks = rng.integers(0, 256, (4096, 16), dtype=np.uint8)
    data = blocks.tobytes()
    ours = per_call(lambda: aes.encrypt_blocks(key, blocks), min_time=1.0)
    ref = per_call(lambda: ecb.encrypt(data))
    rows.append(("4096 blocks batched (64 KiB ECB)", ours, ref))

    keys = rng.integers(0, 256, (1024, 16), dtype=np.uint8)
    ours = per_call(lambda: aes.encrypt_blocks(keys, blocks[:1024]), min_time=1.0)
    ref = per_call(lambda: [AES.new(k.tobytes(), AES.MODE_ECB).encrypt(b.tobytes())
                            for k, b in zip(keys, blocks[:1024])], min_time=1.0)
    rows.append(("1024 (key, block) pairs, a key each", ours, ref))

    nonce, message = rng.bytes(12), rng.bytes(1024)

    def reference_gcm():
        AES.new(key, AES.MODE_GCM, nonce=nonce).encrypt_and_digest(message)

    ours = per_call(lambda: gcm.encrypt(key, nonce, message), min_time=1.0)
    ref = per_call(reference_gcm)
    rows.append(("AES-GCM, 1 KiB message", ours, ref))

    print("time per call; ratio = labkit time / pycryptodome time (how many times slower)")
    print(f"{'workload':44s} {'labkit':>12s} {'pycryptodome':>14s} {'ratio':>10s}")
    for name, mine, theirs in rows:
        print(f"{name:44s} {mine * 1e6:10.1f}us {theirs * 1e6:12.2f}us {mine / theirs:9.2f}x")


if __name__ == "__main__":
    main()
