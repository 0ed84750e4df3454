"""The challenge service under a class: N students run the 06.8 attack through it at once.

Usage: python benchmarks/bench_challenge_service.py [--students 20]

Each student (a thread of this process: the client's work is a few numpy calls per batch) starts
a fresh 06.8 attempt in one self-study service process and runs the lab's reference attack,
``labkit.attacks.recover_key`` (back-to-back probes: one batch of 257 query rows, then the retries
it needs, about 512 rows in all), through the served oracle. Reported: the latency of each query
batch as the student's kernel sees it (p50, p95, max), the service process's CPU seconds and peak
resident memory (psutil, sampled every 50 ms), and the same latencies for one student alone.
Latencies include building the attempt's network on its first batch (about 0.2-0.4 s).
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


def _run(students: int) -> dict:
    import psutil

    from labkit import attacks
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

        key = attacks.recover_key(timed).key
        verdict = attempt.answer(bytes(key))
        with lock:
            correct.append(verdict[0])

    client.run_attempt("02.3")  # starts the service before the clock runs
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
