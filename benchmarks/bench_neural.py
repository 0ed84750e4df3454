"""Speed of the AES-128 ReLU network (labkit.neural), against references measured in the same run.

Prints blocks/second at batch 1, 256 and 10,000 in float32 and float64 for the natural network
(and the T-table variant at 10,000), the process's peak memory, and ratios against

- **the authors' code** (Gerault, Hambitzer, Ronen, Shamir, *Deep Neural Cryptography*,
  ePrint 2025/288; https://github.com/DavidGerault/deep_neural_cryptography, GPL-3.0, so it is
  never part of the lab): ``NeuralAESBase``, the natural network, with the same key and the same
  plaintexts, in inference mode, at the same batch sizes, with torch's default threads and with
  one torch thread (the reference is the faster of the two: on a loaded machine torch's
  OpenMP threads wait for each other at every operation, and theirs are ~500 per call). It is
  loaded from a local copy given by ``--authors-code DIR`` or ``LABKIT_AUTHORS_CODE`` (the
  repository or its ``deep_neural_cryptography/`` folder; its ``utils.py`` imports pandas);
  without one these rows are skipped with a message. Their module sets its dtype in a global
  (``nn_aes.DTYPE``), set here before each network is built. Both outputs are checked against
  pycryptodome on all 10,000 blocks before anything is timed;
- the same network evaluated with torch operations (``kernel=False``: every layer as separate
  operations, the implementation before the fused C kernel);
- the same network evaluated naively as dense ``nn.Linear`` layers (``net.to_dense()``);
- pycryptodome's AES (C, AES-NI), the cipher itself;
- the ceiling set by the decode matrix products alone (their flops at the GEMM rate measured here).

The machine is shared, so the script also prints the load average and the rate per CPU-second
(blocks / process CPU time), which is less sensitive to other processes than wall-clock time.
``--profile`` prints where a call spends its time (below).

Where the time goes (``--profile``; 2-core AMD EPYC with AVX-512, load average 11-15 from other
jobs, so CPU time of one thread; measured 2026-12-05):

- *Per call.* float64, batch 1: ``net(x)`` 111 us = the kernel 79 us + input check 2.4 us + plan
  check 6 us + ~24 us of the rest (output allocation, slicing, the ctypes call). Before: 710 us =
  kernel 490 us + plan check 180-450 us: the check walked all ~160 weight buffers on every call,
  more than the evaluation itself. It now compares a global counter that moves only when some
  module registers a buffer or submodule, plus the versions of the few buffers the plan copies
  (the kernel reads every other buffer in place); slices run on threads started once (a thread
  pool per call cost 0.1-0.2 ms). Batch 256: 4.87 ms = kernel 4.61 ms + ~10 us per call.
- *Per layer* (batch 256, each layer run alone on the wires the network feeds it): float64
  MixColumns lookups (256 corner neurons x 24 outputs per byte) 47%, SubBytes lookups (256 x 8)
  30%, XOR4 17%, AddRoundKey XOR 7%; float32 48/27/17/8%. Before the sparse decode the lookups'
  decode multiply-adds were nearly all of it, almost all of them multiplying a 0: on bits exactly
  one of a lookup's 256 corner neurons is non-zero per block, so a tile of 8 (float64) or 16
  (float32) blocks touches at most 8 or 16 of them. The kernel now skips every neuron that is +0
  in all lanes (bit-identical: adding 0 * d leaves a sum unchanged; NaN counts as non-zero),
  ruling out whole rows of the 16 x 16 corner grid first by a monotone bound and collecting the
  tests into bit masks (one mispredicted branch per active row rather than one per test). What
  is left in a lookup is its 32 half-sums (8 inputs each) and the tests. Kernel alone, one
  thread, float64: batch 256 16.0 -> 4.6 ms, batch 1 490 -> 79 us; float32 9.3 -> 3.0 ms.
- *Batch 1* costs one tile: a short tile repeats its last row (zeros would add active neurons of
  their own), so batch 1 costs as much as batch 8 and 1/32 of batch 256.

float32 against float64: float32 runs 16 lanes per 512-bit vector against float64's 8, yet
measures 1.4-1.7x in CPU time (batch 256 to 10,000), not 2x: with the decode skipped, the work per tile is mostly the half-sums
(which do halve per block) and mask tests and branches (which do not: one test covers a tile
either way, and a tile of 16 distinct blocks has up to twice as many active corner neurons,
hence twice the decode work and mispredicted branches, as a tile of 8). ``--profile`` prints both.

Usage: PYTHONPATH=. python benchmarks/bench_neural.py [--quick] [--profile] [--authors-code DIR]
"""
from __future__ import annotations

import argparse
import ctypes
import importlib
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch
from Crypto.Cipher import AES

from labkit.neural import aes128_network, engine, kernel
from labkit.parallel import torch_threads

GOAL = 25_000  # blocks/s, float64, batch 10,000 (issue 4)
AUTHORS_GOALS = {1: 5.0, 256: 8.0, 10_000: 25.0}  # x the authors' NeuralAESBase, both dtypes
BATCHES = (1, 256, 10_000)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(fn, blocks: int, *, min_time: float = 1.0, repeats: int = 3) -> tuple[float, float]:
    """Best wall-clock and CPU-time rates (blocks/s) over ``repeats`` runs of >= ``min_time`` s."""
    return side_by_side({"": fn}, blocks, min_time=min_time, repeats=repeats)[""]


def side_by_side(fns: dict, blocks: int, *, min_time: float = 1.0, repeats: int = 3) -> dict:
    """``measure`` for several functions in alternation (A, B, C, A, B, C, ...), so that a load
    that comes and goes on a shared machine hits each of them alike: name -> (wall, CPU) rates."""
    for fn in fns.values():
        fn()  # warm-up
    best = {name: (0.0, 0.0) for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            runs, wall0, cpu0 = 0, time.perf_counter(), time.process_time()
            while True:
                fn()
                runs += 1
                wall = time.perf_counter() - wall0
                if wall >= min_time:
                    break
            cpu = time.process_time() - cpu0
            best[name] = (max(best[name][0], runs * blocks / wall), max(best[name][1], runs * blocks / max(cpu, 1e-9)))
    return best


def load_authors_code(path: str | None):
    """The authors' ``nn_aes`` module from a local copy, or (None, why not)."""
    if not path:
        return None, ("no local copy of the authors' code: pass --authors-code DIR or set LABKIT_AUTHORS_CODE "
                      "(git clone https://github.com/DavidGerault/deep_neural_cryptography; GPL-3.0, keep it "
                      "outside the lab)")
    root = Path(path).expanduser()
    folder = root / "deep_neural_cryptography" if (root / "deep_neural_cryptography").is_dir() else root
    if not (folder / "nn_aes.py").is_file():
        return None, f"{folder} has no nn_aes.py (expected the authors' repository or its deep_neural_cryptography/)"
    sys.path.insert(0, str(folder))
    try:
        module = importlib.import_module("nn_aes")
    except ImportError as err:
        return None, f"the authors' code could not be imported ({err}); their utils.py needs pandas"
    finally:
        sys.path.remove(str(folder))
    return module, ""


def authors_network(nn_aes, key: bytes, dtype: torch.dtype):
    """``NeuralAESBase`` (natural network, encryption) under ``key``, built in ``dtype`` on the CPU."""
    nn_aes.DTYPE, nn_aes.DEVICE = dtype, torch.device("cpu")  # module globals read while building
    return nn_aes.NeuralAESBase(int.from_bytes(key, "big")).eval()


def evaluate_as(net, mode: str, x: torch.Tensor) -> torch.Tensor:
    """``net(x)`` with the fused kernel (``kernel``) or as torch operations (``eager``)."""
    net.kernel = mode == "kernel"
    return net(x)


def matches_aes(out: torch.Tensor, reference: np.ndarray) -> bool:
    return np.array_equal(np.packbits(out.numpy().astype(np.uint8), axis=1).reshape(-1), reference)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (for a smoke test)")
    parser.add_argument("--profile", action="store_true", help="where a call spends its time: per call, per layer")
    parser.add_argument("--authors-code", default=os.environ.get("LABKIT_AUTHORS_CODE"),
                        help="local copy of github.com/DavidGerault/deep_neural_cryptography (or LABKIT_AUTHORS_CODE)")
    args = parser.parse_args()
    min_time, repeats = (0.2, 1) if args.quick else (1.0, 3)

    rng = np.random.default_rng(0)
    key = rng.bytes(16)
    plaintexts = rng.integers(0, 256, (10_000, 16), dtype=np.uint8)
    reference = np.frombuffer(AES.new(key, AES.MODE_ECB).encrypt(plaintexts.tobytes()), dtype=np.uint8)
    bit_input = np.unpackbits(plaintexts, axis=1)
    nn_aes, why_not = load_authors_code(args.authors_code)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f} (shared machine: compare ratios, not absolutes)")
    print(f"key {key.hex()}, 10,000 plaintexts from numpy's default_rng(0); batch b = the first b of them")
    if nn_aes is None:
        print(f"authors' code: skipped: {why_not}")
    print(f"{'network':30} {'dtype':8} {'batch':>6} {'blocks/s':>10} {'per CPU-s':>10} {'peak RSS':>10}")

    def row(name, dtype, batch, wall, cpu):
        print(f"{name:30} {str(dtype)[6:]:8} {batch:6} {wall:10,.0f} {cpu:10,.0f} {peak_rss_mib():8.0f} MiB",
              flush=True)

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
            if not matches_aes(net(x_all), reference):
                raise SystemExit(f"the {dtype} network ({mode}) disagrees with AES")
        theirs = None
        if nn_aes is not None:
            theirs = authors_network(nn_aes, key, dtype)
            with torch.inference_mode():
                if not matches_aes(theirs(x_all), reference):
                    raise SystemExit(f"the authors' {dtype} network disagrees with AES (same key, same plaintexts)")
        for batch in BATCHES:
            x = x_all[:batch].clone()
            fns = {}
            if theirs is not None:
                def run_theirs(threads=None):
                    with torch.inference_mode(), torch_threads(threads or torch.get_num_threads()):
                        theirs(x)
                fns["authors' NeuralAESBase"] = run_theirs
                fns["authors', 1 torch thread"] = lambda: run_theirs(1)
            for mode in modes:
                fns["AES-128 natural " + mode] = lambda mode=mode: evaluate_as(net, mode, x)
            # one authors' call at batch 10,000 takes seconds (float64: ~15 s on a quiet machine): best of 2
            rates = side_by_side(fns, batch, min_time=min_time,
                                 repeats=min(repeats, 2) if batch == 10_000 and theirs is not None else repeats)
            for name, (wall, cpu) in rates.items():
                if name.startswith("authors"):  # the reference: their faster thread setting
                    results[("authors", dtype, batch)] = max(wall, results.get(("authors", dtype, batch), 0.0))
                else:
                    results[("natural", dtype, batch, name.split()[-1])] = wall
                row(name, dtype, batch, wall, cpu)
        del theirs
        net.kernel, net.threads = True, 1
        wall, cpu = measure(lambda: net(x_all), 10_000, min_time=min_time, repeats=repeats)
        results[("natural 1 thread", dtype)] = wall
        row("  ... kernel, 1 thread", dtype, 10_000, wall, cpu)
        ttable = aes128_network(key, dtype=dtype, variant="ttable")
        wall, cpu = measure(lambda: ttable(x_all), 10_000, min_time=min_time, repeats=repeats)
        results[("ttable", dtype, 10_000)] = wall
        row("AES-128 T-table kernel", dtype, 10_000, wall, cpu)
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
        print(f"{'dense nn.Linear form':30} {str(dtype)[6:]:8} {dense_batch:6} {wall:10,.0f} {cpu:10,.0f} "
              f"{peak_rss_mib():8.0f} MiB   ({n_params:,} parameters)")
        del dense
    data = plaintexts.tobytes()
    wall, cpu = measure(lambda: AES.new(key, AES.MODE_ECB).encrypt(data), 10_000, min_time=min_time, repeats=repeats)
    results["pycryptodome"] = wall
    print(f"{'pycryptodome AES-ECB':30} {'bytes':8} {10_000:6} {wall:10,.0f} {cpu:10,.0f}")

    ceiling = gemm_ceiling(key, min_time=min_time)
    r = {m: (results[("natural", torch.float64, 10_000, m)], results[("natural", torch.float32, 10_000, m)])
         for m in modes}
    f64, f32 = r["kernel"]
    print("\nratios at batch 10,000 (float64, float32):")
    print(f"  kernel / torch eager      : {f64 / r['eager'][0]:5.2f}x, {f32 / r['eager'][1]:5.2f}x")
    print(f"  kernel / dense nn.Linear  : {f64 / results[('dense', torch.float64)]:5.1f}x, "
          f"{f32 / results[('dense', torch.float32)]:5.1f}x")
    print(f"  float32 / float64 (kernel): {f32 / f64:5.2f}x (goal >= 1.5x; see the docstring for what limits it)")
    print(f"  pycryptodome / network    : {results['pycryptodome'] / f64:,.0f}x faster than the float64 network")
    print(f"  float64 decode products alone as torch GEMMs ({ceiling['mflop']:.2f} MFlop/block at "
          f"{ceiling['gflops']:.0f} GFlop/s on one core): at most {ceiling['blocks']:,.0f} blocks/s per core; "
          f"the kernel, 1 thread: {results[('natural 1 thread', torch.float64)]:,.0f}")
    verdict = "met" if f64 >= GOAL else "NOT met"
    print(f"  goal {GOAL:,} blocks/s (float64, batch 10,000): measured {f64:,.0f} blocks/s = {f64 / GOAL:.0%} "
          f"of the goal -> {verdict} (load average now {os.getloadavg()[0]:.1f})")
    if nn_aes is not None:
        print("\nagainst the authors' NeuralAESBase (same key, same plaintexts, measured above):")
        print(f"  {'batch':>6} {'float64':>9} {'float32':>9}   goal")
        for batch in BATCHES:
            ratios = [results[("natural", dt, batch, "kernel")] / results[("authors", dt, batch)]
                      for dt in (torch.float64, torch.float32)]
            met = "met" if min(ratios) >= AUTHORS_GOALS[batch] else "NOT met"
            print(f"  {batch:6} {ratios[0]:8.1f}x {ratios[1]:8.1f}x   >= {AUTHORS_GOALS[batch]:.0f}x: {met}")
    if args.profile:
        profile(key, bit_input)


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


def cpu_time(fn, reps: int) -> float:
    """Best CPU seconds per call over 5 rounds of ``reps`` calls (one thread: CPU time ~ its work)."""
    fn()
    best = float("inf")
    for _ in range(5):
        c0 = time.process_time()
        for _ in range(reps):
            fn()
        best = min(best, (time.process_time() - c0) / reps)
    return best


def profile(key: bytes, bit_input: np.ndarray) -> None:
    """Per call: what ``net(x)`` adds to the kernel; per layer: the kernel's time in each layer,
    each run alone on its real input wires (the previous layer's outputs), one thread."""
    print("\nprofile (CPU time, one thread):")
    for dtype in (torch.float64, torch.float32):
        net = aes128_network(key, dtype=dtype)
        net.threads = 1
        fused = engine.kernel_plan(net)
        if fused is None:
            print("  no kernel here: nothing to profile")
            return
        fn, plan = fused
        for batch in (1, 256):
            x = torch.from_numpy(bit_input[:batch]).to(dtype).contiguous()
            out = torch.empty(batch, 128, dtype=dtype)
            reps = 200 if batch == 1 else 10
            whole = cpu_time(lambda: net(x), reps)
            alone = cpu_time(lambda: plan(fn, x, out), reps)
            check = cpu_time(lambda: engine.kernel_plan(net), 1000)
            valid = cpu_time(lambda: net._as_input(x).contiguous(), 1000)
            print(f"  {str(dtype)[6:]} batch {batch:3}: net(x) {1e6 * whole:8.1f} us = kernel {1e6 * alone:8.1f} us "
                  f"+ input check {1e6 * valid:4.1f} us + plan check {1e6 * check:4.1f} us + the rest "
                  f"({1e6 * alone / max(batch, 1):.1f} us of kernel per block)")
        layer_profile(net, plan, fn, torch.from_numpy(bit_input[:256]).to(dtype))


def layer_profile(net, plan, fn, x: torch.Tensor) -> None:
    """Kernel time per layer kind at batch 256: each layer as a one-layer network over the wires
    the full network feeds it (so its neurons are as sparse as in the real evaluation)."""
    with torch.inference_mode():
        wires = x.t().contiguous()
        inputs = []
        for layer in net.layers:
            inputs.append(wires.t().contiguous())
            wires = layer(wires)
    size = ctypes.sizeof(kernel._Layer)
    totals: dict[str, float] = {}
    for li, (layer, xin) in enumerate(zip(net.layers, inputs)):
        n_out = layer.n_out
        out_index = torch.arange(n_out, dtype=torch.int64)
        one = kernel._Network(1, xin.shape[1], n_out, plan.network.width, 1,
                              ctypes.cast(ctypes.addressof(plan._layers) + li * size, ctypes.POINTER(kernel._Layer)),
                              out_index.data_ptr(), None, None)
        out = torch.empty(len(xin), n_out, dtype=x.dtype)
        seconds = cpu_time(lambda: fn(ctypes.byref(one), xin.data_ptr(), out.data_ptr(), len(xin)), 5)
        kind = layer.groups[0].name
        totals[kind] = totals.get(kind, 0.0) + seconds
    whole = sum(totals.values())
    print(f"  {str(x.dtype)[6:]} batch {len(x)}, per layer kind: " + ", ".join(
        f"{kind} {100 * t / whole:.0f}%" for kind, t in sorted(totals.items(), key=lambda kv: -kv[1]))
        + f" of {1e3 * whole:.2f} ms ({1e6 * whole / len(x):.1f} us per block)")


if __name__ == "__main__":
    main()
