"""The challenge service under a class: N students run the 06.8 attack through it at once.

Usage: python benchmarks/bench_challenge_service.py [--students 20]

Each student (a thread of this process: the client's work is a few numpy calls per batch) starts
a fresh 06.8 attempt in one self-study service process and runs the worked solution of 06.8 in
``notebooks/06b_key_recovery.ipynb`` (:func:`recover_key` below) through the served oracle, in its
batches: the base (1 row), a probe pair around 0 for every bit (256 rows), a pair around 1 for
the bits that collided (about 128 rows): about 385 of the 512 rows the budget allows. Reported: the latency of each query
batch as the student's kernel sees it (p50, p95, max), the service process's CPU seconds and peak
resident memory (psutil, sampled every 50 ms), and the same latencies for one student alone.
The service is started and has imported torch before the clock runs; latencies include
building each attempt's network on its first batch (about 0.2-0.4 s of CPU).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def recover_key(oracle) -> bytes:
    """The worked solution of exercise 06.8 (notebook 06b), as a student runs it."""
    from labkit import aes, bits

    e = 0.25

    def collide(positions, v):
        n = len(positions)
        rows = np.zeros((2 * n, 128))
        rows[2 * np.arange(n), positions] = v - e
        rows[2 * np.arange(n) + 1, positions] = v + e
        out = oracle(rows)
        return np.all(out[0::2] == out[1::2], axis=1)

    base_ciphertext = bits.bits_to_bytes(oracle(np.zeros((1, 128)))[0].astype(np.uint8))
    key_bits = np.ones(128, dtype=np.uint8)
    maybe_zero = np.flatnonzero(collide(np.arange(128), 0.0))
    around_one = collide(maybe_zero, 1.0)
    key_bits[maybe_zero[~around_one]] = 0
    unsure = maybe_zero[around_one]
    for guess in range(2 ** len(unsure)):
        key_bits[unsure] = [(guess >> j) & 1 for j in range(len(unsure))]
        key = bits.bits_to_bytes(key_bits)
        if aes.encrypt_block(key, bytes(16)) == base_ciphertext:
            return key
    raise ValueError("no candidate key encrypts the base plaintext as the network does")


def _run(students: int) -> dict:
    import psutil

    from labkit.challenges import client

    latencies: list[float] = []
    rows: list[int] = []
    correct = []
    lock = threading.Lock()

    def student():
        attempt = client.attempt("06.8", fresh=True)
        oracle = client.Oracle(attempt, "network", 128)

        def timed(queries):
            start = time.perf_counter()
            out = oracle(queries)
            with lock:
                latencies.append(time.perf_counter() - start)
                rows.append(len(np.atleast_2d(queries)))
            return out

        key = recover_key(timed)
        verdict = attempt.answer(bytes(key))
        with lock:
            correct.append(verdict[0])

    warm = client.Oracle(client.attempt("06.8"), "network", 128)
    warm(np.zeros((1, 128)))  # starts the service and imports torch there before the clock runs
    service = psutil.Process(client._endpoint().process.pid)
    cpu0 = sum(service.cpu_times()[:2])
    peak = [service.memory_info().rss]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], service.memory_info().rss)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    threads = [threading.Thread(target=student) for _ in range(students)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    cpu = sum(service.cpu_times()[:2]) - cpu0
    ms = np.array(latencies) * 1000
    return {"students": students, "solved": int(sum(correct)), "batches": len(ms),
            "rows_per_student": sum(rows) / students, "batch_rows_p50": float(np.median(rows)),
            "latency_ms_p50": round(float(np.percentile(ms, 50)), 1),
            "latency_ms_p95": round(float(np.percentile(ms, 95)), 1), "latency_ms_max": round(float(ms.max()), 1),
            "wall_s": round(wall, 2), "service_cpu_s": round(cpu, 2),
            "service_cpu_s_per_student": round(cpu / students, 3),
            "service_peak_rss_mb": round(peak[0] / 2**20, 1), "load_average": [round(x, 2) for x in os.getloadavg()]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--students", type=int, default=20)
    args = parser.parse_args(argv)
    os.environ.setdefault("LABKIT_CHALLENGES_STATE", tempfile.mkdtemp(prefix="bench-challenges-"))
    os.environ.setdefault("LABKIT_PROGRESS", "off")
    from labkit.challenges import client

    report = {"machine_cores": os.cpu_count(), "one_student": _run(1)}
    client.stop_local_service()  # a fresh service process: its memory and CPU are the class's own
    report["class"] = _run(args.students)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
