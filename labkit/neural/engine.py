"""How fast ``net(x)`` runs: the one place where evaluation speed lives.

:class:`~labkit.neural.layers.ReluNetwork` defines *what* a network computes (its plain torch
``reference_forward``); this module decides *how* it is evaluated, and the builders attach it
(:func:`attach`, called by :func:`labkit.neural.compile_circuit`) so ``net(x)`` is fast by default:

- the fused C kernel (:mod:`labkit.neural.kernel`, about 3-5x faster than torch operations) when it
  is built and the network fits its limits, in slices of rows over the threads (each ctypes call
  releases the GIL; the threads are started once). Plans are cached per network and rebuilt when
  a weight buffer is replaced, or a buffer the plan had to copy is changed in place (the kernel
  reads every other buffer in place). Checking that costs a few microseconds a call, not a walk
  over the network's ~160 buffers, which at batch 1 cost as much as the evaluation;
- otherwise (``net.kernel = False``, ``LABKIT_KERNEL=0``, no C compiler) torch operations, whole
  chunks side by side on the threads, each with single-threaded products.

:func:`evaluate_stack` does the same for a :class:`~labkit.neural.stack.NetworkStack`: one network
per key that differ only in some biases (the paper's Table 1 pools thousands of keys).
Layering: engine imports ``kernel`` and is imported by the builders; ``layers`` imports neither.
"""
from __future__ import annotations

import copy
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from labkit.neural import kernel
from labkit.parallel import parallel_map, torch_threads

__all__ = ["attach", "evaluate", "evaluate_stack", "kernel_plan", "has_plan", "buffer_versions"]

# per network (or stack): its cached kernel plan(s); a copy or a pickled clone starts empty
_PLANS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def buffer_versions(module: torch.nn.Module) -> tuple:
    """Identity and in-place modification counter of every buffer (-1 for inference tensors,
    which have none)."""
    return tuple((id(t), _version(t)) for t in module.buffers())


def _version(t: torch.Tensor) -> int:
    try:
        return t._version
    except RuntimeError:  # an inference tensor has no version counter
        return -1


# Every buffer or submodule assigned to any module anywhere (register_buffer, ``m.bias = t``,
# ``net.layers[3] = layer``) advances this generation; a cached plan compares the identities of
# its network's buffers again only after it moved, so a call costs no walk over ~160 buffers.
_generation = [0]


def _moved(*_args) -> None:  # returns None: the registration itself goes on unchanged
    _generation[0] += 1


torch.nn.modules.module.register_module_buffer_registration_hook(_moved)
torch.nn.modules.module.register_module_module_registration_hook(_moved)


def _buffer_ids(module: torch.nn.Module) -> tuple:
    return tuple(id(t) for t in module.buffers())


def attach(net):
    """Make ``net(x)`` evaluate through this engine (the builders call this); returns ``net``."""
    net.evaluator = evaluate
    return net


def has_plan(obj) -> bool:
    """True if a kernel plan of ``obj`` (a network or a stack) is cached: ``net(x)`` used the kernel."""
    entry = _PLANS.get(obj) or {}
    return "plan" in entry or bool(entry.get("kernel"))


def _threads(requested: int | None) -> int:
    return max(1, requested or torch.get_num_threads())


def _plan_is_current(net, cached: dict) -> bool:
    """A cached plan still describes ``net``: same dtype, the same buffer objects (checked again
    only when some module registered a buffer or submodule since), and the buffers it had to
    copy (a transposed decode table) unchanged in place. Buffers it reads in place need no check:
    the kernel sees their current values."""
    plan = cached["plan"]
    if plan.dtype != net.dtype:  # net.float() / net.double() replace every buffer
        return False
    if cached["generation"] != _generation[0]:
        generation = _generation[0]
        if _buffer_ids(net) != cached["ids"]:
            return False
        cached["generation"] = generation
    return all(_version(t) == v for t, v in plan.copied)


def kernel_plan(net):
    """``(compiled C function, plan of net's current weights)``, or None when the network is to be
    evaluated with torch operations (``net.kernel`` False, no kernel here, or outside its limits)."""
    if not getattr(net, "kernel", False):
        return None
    fn = kernel.load(net.dtype)
    if fn is None:
        return None
    with _lock:
        cached = _PLANS.get(net)
        if cached is not None and "plan" in cached and _plan_is_current(net, cached):
            return fn, cached["plan"]
    generation = _generation[0]
    try:
        plan = kernel.KernelPlan(net)
    except ValueError:  # a gate outside the kernel's limits: torch operations
        return None
    with _lock:
        _PLANS[net] = {"generation": generation, "ids": _buffer_ids(net), "plan": plan}
    return fn, plan


# Worker threads for kernel slices, started once: a pool per call costs ~0.1-0.2 ms, as much as
# a whole batch-1 evaluation. Each ctypes call releases the GIL, so slices run in parallel.
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_lock = threading.Lock()


def _workers(n: int) -> ThreadPoolExecutor:
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size < n:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool, _pool_size = ThreadPoolExecutor(max_workers=n, thread_name_prefix="labkit-kernel"), n
        return _pool


def _run_slices(run, starts: list, threads: int) -> None:
    """``run(start)`` for every start, the calling thread and ``threads - 1`` pool threads taking
    the next slice in turn; the first exception propagates once every taken slice has finished,
    and no slice starts after it."""
    if threads <= 1 or len(starts) <= 1:
        for start in starts:
            run(start)
        return
    queue = iter(starts)
    take = threading.Lock()
    failure: list = []

    def worker() -> None:
        while True:
            with take:
                start = None if failure else next(queue, None)
            if start is None:
                return
            try:
                run(start)
            except BaseException as err:  # noqa: BLE001 - handed to the caller below
                with take:
                    failure.append(err)

    helpers = [_workers(threads - 1).submit(worker) for _ in range(min(threads, len(starts)) - 1)]
    worker()
    for h in helpers:
        h.result()
    if failure:
        raise failure[0]


def evaluate(net, x: torch.Tensor) -> torch.Tensor:
    """``net(x)`` for a validated, contiguous (n, n_inputs) tensor of the network's dtype."""
    n = x.shape[0]
    out = torch.empty((n, net.n_outputs), dtype=net.dtype)
    threads = _threads(net.threads)
    fused = kernel_plan(net) if n else None
    if fused is not None:
        fn, plan = fused
        tile = kernel.TILE  # rows per tile of the kernel (16: a multiple of every dtype's lanes)
        step = max(tile, min(1024, -(-n // (4 * threads)) + tile - 1) // tile * tile)  # ~4 slices a thread
        _run_slices(lambda a: plan(fn, x[a : a + step], out[a : a + step]), list(range(0, n, step)), threads)
        return out
    chunk = net.chunk_size or net.default_chunk_size()

    def run(start: int) -> None:
        with torch.inference_mode():
            out[start : start + chunk] = net.evaluate_chunk(x[start : start + chunk])

    with torch_threads(1):  # parallel chunks, single-threaded products
        parallel_map(run, range(0, n, chunk), threads)
    return out


# --- many keys at once: a NetworkStack -------------------------------------------------------------


def evaluate_stack(stack, key_ids: torch.Tensor, x: torch.Tensor) -> np.ndarray:
    """Row r of ``x`` through the network of key ``key_ids[r]`` of ``stack``; numpy outputs."""
    fused = _stack_plans(stack, key_ids)
    if fused is not None:
        return _stack_kernel(stack, *fused, key_ids, x)
    return _stack_torch(stack, key_ids, x)


def _stack_plans(stack, key_ids):
    """(C function, {key id: plan reading that key's biases in place}), or None (torch)."""
    fused = kernel_plan(stack.template) if hasattr(stack.template, "layers") else None
    if fused is None:
        return None
    fn, base = fused
    with _lock:
        plans = _PLANS.setdefault(stack, {}).setdefault("kernel", {})
        if plans.get("base") is not base:
            plans.clear()
            plans["base"] = base
    try:
        for k in np.unique(key_ids.numpy()).tolist():
            if k not in plans:
                plans[k] = base.with_biases({slot: stacked[k] for slot, stacked in stack.biases.items()})
    except (ValueError, IndexError):
        return None
    return fn, plans


def _stack_kernel(stack, fn, plans, key_ids, x) -> np.ndarray:
    """Rows sorted by key, each key's rows through its own plan, in slices over the threads."""
    ids = key_ids.numpy()
    order = np.argsort(ids, kind="stable")
    xs = x[torch.from_numpy(order)].contiguous()
    sorted_ids = ids[order]
    out = torch.empty((len(x), stack.template.n_outputs), dtype=stack.dtype)
    cuts = [0, *(np.flatnonzero(np.diff(sorted_ids)) + 1).tolist(), len(x)]
    size = max(8, stack.chunk_size)
    slices = [(a, min(a + size, b), int(sorted_ids[a])) for lo, b in zip(cuts, cuts[1:]) for a in range(lo, b, size)]

    def run(piece) -> None:
        a, b, k = piece
        plans[k](fn, xs[a:b], out[a:b])

    parallel_map(run, slices, _threads(stack.workers))
    result = torch.empty_like(out)
    result[torch.from_numpy(order)] = out
    return result.numpy()


def _stack_torch(stack, key_ids, x) -> np.ndarray:
    """Torch operations: each worker owns a copy of the template whose key biases it swaps for
    the rows' own (gathered per row) chunk by chunk."""
    size = stack.chunk_size
    starts = list(range(0, len(x), size))
    workers = max(1, min(_threads(stack.workers), len(starts)))
    with _lock:
        replicas = _PLANS.setdefault(stack, {}).setdefault("replicas", [])
        while len(replicas) < workers:
            replicas.append(copy.deepcopy(stack.template) if replicas else stack.template)
    outputs: list = [None] * len(starts)

    def work(index: int) -> None:
        network = replicas[index]
        groups = {slot: network.layers[slot[0]].groups[slot[1]] for slot in stack.biases}
        saved = {slot: g.bias for slot, g in groups.items()}
        try:
            with torch.inference_mode():
                for k in range(index, len(starts), workers):
                    ids = key_ids[starts[k] : starts[k] + size]
                    for slot, stacked in stack.biases.items():
                        groups[slot].bias = _rows_of(stacked, ids)
                    outputs[k] = network.evaluate_chunk(x[starts[k] : starts[k] + size])
        finally:
            for slot, value in saved.items():
                groups[slot].bias = value

    with torch_threads(1):  # parallel chunks, single-threaded products (as evaluate)
        parallel_map(work, range(workers), workers)
    return torch.cat(outputs).numpy()


def _rows_of(stacked: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Per-row biases from a (keys, neurons, gates, 1) stack, in the layout the network adds them
    in: (neurons, gates, batch)."""
    return stacked[ids][..., 0].permute(1, 2, 0)
