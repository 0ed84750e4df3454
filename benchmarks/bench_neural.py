"""Speed of the AES-128 ReLU network (labkit.neural), against references measured in the same run.

Prints blocks/second at batch 1, 256 and 10,000 in float32 and float64 for the natural network
(and the T-table variant at 10,000), the process's peak memory, and ratios against
- the same network evaluated with torch operations (``kernel=False``: every layer as separate
  operations, the implementation before the fused C kernel). (A TorchInductor-compiled torch path
  existed until issue 14: measured here it ran 2-2.8x slower than the kernel at batch 256 and
  10,000 and never won, so it was removed.)
- the same network evaluated naively as dense ``nn.Linear`` layers (``net.to_dense()``), the way a
  straightforward implementation stores it;
- pycryptodome's AES (C, AES-NI), the cipher itself;
- the ceiling set by the decode matrix products alone (their flops at the GEMM rate measured here).

The machine is shared, so the script also prints the load average and the rate per CPU-second
(blocks / process CPU time), which is less sensitive to other processes than wall-clock time.

Usage: PYTHONPATH=. python benchmarks/bench_neural.py [--quick]
"""
from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np
import torch
from Crypto.Cipher import AES

from labkit.neural import aes128_network
from labkit.parallel import torch_threads

GOAL = 25_000  # blocks/s, float64, batch 10,000 (issue 4)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(fn, blocks: int, *, min_time: float = 1.0, repeats: int = 3) -> tuple[float, float]:
    """Best wall-clock and CPU-time rates (blocks/s) over ``repeats`` runs of >= ``min_time`` s."""
    fn()  # warm-up
    best_wall = best_cpu = 0.0
    for _ in range(repeats):
        runs, wall0, cpu0 = 0, time.perf_counter(), time.process_time()
        while True:
            fn()
            runs += 1
            wall = time.perf_counter() - wall0
            if wall >= min_time:
                break
        cpu = time.process_time() - cpu0
        best_wall = max(best_wall, runs * blocks / wall)
        best_cpu = max(best_cpu, runs * blocks / max(cpu, 1e-9))
    return best_wall, best_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (for a smoke test)")
    args = parser.parse_args()
    min_time, repeats = (0.2, 1) if args.quick else (1.0, 3)

    rng = np.random.default_rng(0)
    key = rng.bytes(16)
    plaintexts = rng.integers(0, 256, (10_000, 16), dtype=np.uint8)
    reference = np.frombuffer(AES.new(key, AES.MODE_ECB).encrypt(plaintexts.tobytes()), dtype=np.uint8)
    bit_input = np.unpackbits(plaintexts, axis=1)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f} (shared machine: compare ratios, not absolutes)")
    print(f"{'network':26} {'dtype':8} {'batch':>6} {'blocks/s':>10} {'per CPU-s':>10} {'peak RSS':>10}")

    # kernel: the default fused C kernel; eager: torch operations layer by layer (the
    # implementation before the kernel), both through labkit.neural.engine
    modes = {"kernel": dict(kernel=True), "eager": dict(kernel=False)}
    results = {}
    for dtype in (torch.float32, torch.float64):
        net = aes128_network(key, dtype=dtype)
        x_all = torch.from_numpy(bit_input).to(dtype)
        for mode, settings in modes.items():
            for name, value in settings.items():
                setattr(net, name, value)
            out = net(x_all)
            ok = np.array_equal(np.packbits(out.numpy().astype(np.uint8), axis=1).reshape(-1), reference)
            if not ok:
                raise SystemExit(f"the {dtype} network ({mode}) disagrees with AES")
        for batch in (1, 256, 10_000):
            x = x_all[:batch]
            for mode, settings in modes.items():
                for name, value in settings.items():
                    setattr(net, name, value)
                wall, cpu = measure(lambda: net(x), batch, min_time=min_time, repeats=repeats)
                results[("natural", dtype, batch, mode)] = wall
                print(f"{'AES-128 natural ' + mode:26} {str(dtype)[6:]:8} {batch:6} {wall:10,.0f} {cpu:10,.0f} "
                      f"{peak_rss_mib():8.0f} MiB")
        net.kernel, net.threads = True, 1
        wall, cpu = measure(lambda: net(x_all), 10_000, min_time=min_time, repeats=repeats)
        results[("natural 1 thread", dtype)] = wall
        print(f"{'  ... kernel, 1 thread':26} {str(dtype)[6:]:8} {10_000:6} {wall:10,.0f} {cpu:10,.0f} "
              f"{peak_rss_mib():8.0f} MiB")
        ttable = aes128_network(key, dtype=dtype, variant="ttable")
        wall, cpu = measure(lambda: ttable(x_all), 10_000, min_time=min_time, repeats=repeats)
        results[("ttable", dtype, 10_000)] = wall
        print(f"{'AES-128 T-table kernel':26} {str(dtype)[6:]:8} {10_000:6} {wall:10,.0f} {cpu:10,.0f} "
              f"{peak_rss_mib():8.0f} MiB")
        del ttable

    print("\nreferences measured in this run:")
    dense_batch = 2_000 if args.quick else 10_000
    for dtype in (torch.float64, torch.float32):
        dense = aes128_network(key, dtype=dtype).to_dense()
        x = torch.from_numpy(bit_input[:dense_batch]).to(dtype)
        with torch.inference_mode():
            wall, cpu = measure(lambda: dense(x), dense_batch, min_time=min_time, repeats=1)
        results[("dense", dtype)] = wall
        n_params = sum(p.numel() for p in dense.parameters())
        print(f"{'dense nn.Linear form':26} {str(dtype)[6:]:8} {dense_batch:6} {wall:10,.0f} {cpu:10,.0f} "
              f"{peak_rss_mib():8.0f} MiB   ({n_params:,} parameters)")
        del dense
    data = plaintexts.tobytes()
    wall, cpu = measure(lambda: AES.new(key, AES.MODE_ECB).encrypt(data), 10_000, min_time=min_time, repeats=repeats)
    results["pycryptodome"] = wall
    print(f"{'pycryptodome AES-ECB':26} {'bytes':8} {10_000:6} {wall:10,.0f} {cpu:10,.0f}")

    ceiling = gemm_ceiling(key, min_time=min_time)
    r = {m: (results[("natural", torch.float64, 10_000, m)], results[("natural", torch.float32, 10_000, m)])
         for m in modes}
    f64, f32 = r["kernel"]
    print("\nratios at batch 10,000 (float64, float32):")
    print(f"  kernel / torch eager      : {f64 / r['eager'][0]:5.2f}x, {f32 / r['eager'][1]:5.2f}x")
    print(f"  kernel / dense nn.Linear  : {f64 / results[('dense', torch.float64)]:5.1f}x, "
          f"{f32 / results[('dense', torch.float32)]:5.1f}x")
    print(f"  pycryptodome / network    : {results['pycryptodome'] / f64:,.0f}x faster than the float64 network")
    print(f"  float64 decode products alone as torch GEMMs ({ceiling['mflop']:.2f} MFlop/block at "
          f"{ceiling['gflops']:.0f} GFlop/s on one core): at most {ceiling['blocks']:,.0f} blocks/s per core; "
          f"the kernel, 1 thread: {results[('natural 1 thread', torch.float64)]:,.0f}")
    verdict = "met" if f64 >= GOAL else "NOT met"
    print(f"  goal {GOAL:,} blocks/s (float64, batch 10,000): measured {f64:,.0f} blocks/s = {f64 / GOAL:.0%} "
          f"of the goal -> {verdict} (load average now {os.getloadavg()[0]:.1f})")


def gemm_ceiling(key: bytes, *, min_time: float) -> dict:
    """Flops of the lookup layers' decode products per block, and the rate this core runs them at."""
    net = aes128_network(key, dtype=torch.float64)
    chunk = net.default_chunk_size()
    flop, shapes = 0, []
    for layer in net.layers:
        for g in layer.groups:
            if g.split is not None:
                flop += 2 * g.m * g.n_per_gate * g.n_gates
                shapes.append((g.decode, torch.rand(g.n_per_gate, g.n_gates * chunk, dtype=torch.float64)))
    with torch_threads(1):
        wall, _ = measure(lambda: [d @ h for d, h in shapes], chunk, min_time=min_time, repeats=3)
    return {"mflop": flop / 1e6, "blocks": wall, "gflops": wall * flop / 1e9}

if __name__ == "__main__":
    main()
