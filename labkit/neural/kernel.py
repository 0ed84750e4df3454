"""A fused C forward pass for :class:`~labkit.neural.layers.ReluNetwork`: the C ABI (build, load,
the network laid out as C structures). When and how it runs is :mod:`labkit.neural.engine`'s job.

``relu_kernel.c`` walks a tile of inputs (one 512-bit vector: 8 in float64, 16 in float32) through
every layer with the wire values in the L1 cache, skipping the ReLU neurons that are 0 for the whole
tile (most of a one-hot lookup's), reading the network's own weight buffers: the same affine maps and ReLUs as
:meth:`ReluNetwork.evaluate_chunk` (which :func:`check_affine_relu` proves), without the round
trips through memory that separate torch operations make for every layer. It is compiled once
per machine and dtype with the system C compiler (``cc``/``gcc``) into ``~/.cache/labkit`` (a
folder of ready builds, such as an image's, is looked in first: ``LABKIT_KERNEL_CACHE``) and called through ctypes, which releases the GIL, so
chunks run in parallel threads. Without a compiler networks evaluate with torch operations as
before, 3-6x slower, and say so once (a warning naming the fix); ``LABKIT_KERNEL=0`` in the
environment asks for that path explicitly and silently.

The build targets this CPU (``-march=native`` where the compiler accepts it, else the
architecture's baseline, else the compiler's default). ``LABKIT_KERNEL_ISA=baseline`` builds for
the baseline ISA (x86-64 without AVX, generic armv8-a) without FMA contraction: the second CPU
path on which CI reruns the rounding-sensitive tests (``make test-portable``).
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import warnings
from pathlib import Path

import torch

__all__ = ["available", "load", "KernelPlan"]

SOURCE = Path(__file__).with_name("relu_kernel.c")


def _limits(source: str) -> dict[str, int]:
    """The size limits ``relu_kernel.c`` is built for, read from its ``#define`` lines (one place)."""
    found = dict(re.findall(r"^#define\s+(MAX_\w+)\s+(\d+)", source, re.MULTILINE))
    return {name: int(found[name]) for name in ("MAX_K", "MAX_M", "MAX_HALF")}


_LIMITS = _limits(SOURCE.read_text())
MAX_K, MAX_M, MAX_HALF = _LIMITS["MAX_K"], _LIMITS["MAX_M"], _LIMITS["MAX_HALF"]
#: rows of a tile: one 512-bit vector holds 8 float64 or 16 float32 lanes; slices of a batch are
#: whole multiples of 16 so no slice ends in a part-filled tile but the batch's last
TILE = 16

_DTYPES = {torch.float64: ("double", ""), torch.float32: ("float", "-DREAL_IS_FLOAT")}
_loaded: dict = {}
_lock = threading.Lock()


class _Group(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int64) for name in
                ("n_gates", "k", "n_neurons", "m", "split", "out_base", "bias_stride", "decode_kind", "fold_shift")]
    _fields_ += [("scale", ctypes.c_double), ("shift", ctypes.c_double), ("index", ctypes.c_void_p),
                 ("in_sign", ctypes.c_void_p), ("in_offset", ctypes.c_void_p), ("weight", ctypes.c_void_p),
                 ("bias", ctypes.c_void_p), ("decode", ctypes.c_void_p)]


class _Layer(ctypes.Structure):
    _fields_ = [("n_groups", ctypes.c_int64), ("groups", ctypes.POINTER(_Group))]


class _Network(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int64) for name in ("n_layers", "n_inputs", "n_outputs", "width", "plain_readout")]
    _fields_ += [("layers", ctypes.POINTER(_Layer)), ("out_index", ctypes.c_void_p),
                 ("out_sign", ctypes.c_void_p), ("out_offset", ctypes.c_void_p)]


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "labkit"


def _cpu_id() -> str:
    """What -march=native depends on: the CPU's feature flags (a shared home across machines)."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((line for line in f if line.startswith(("flags", "Features"))), "")
    except OSError:
        return sys.platform


_BASELINE_ARCH = {"x86_64": "-march=x86-64", "amd64": "-march=x86-64", "aarch64": "-march=armv8-a",
                  "arm64": "-march=armv8-a"}


def arch_flags(isa: str | None = None, machine: str | None = None) -> list[list[str]]:
    """The architecture flags to try in order (the last, empty, lets the compiler choose).

    ``isa`` is ``LABKIT_KERNEL_ISA``: ``native`` (default) or ``baseline``; ``machine`` is
    ``platform.machine()``. Compilers that reject ``-march=native`` (some aarch64 gcc, clang on
    odd targets) fall through to the next entry rather than to torch operations.
    """
    if isa is None:
        isa = os.environ.get("LABKIT_KERNEL_ISA", "").strip().lower() or "native"
    machine = (platform.machine() if machine is None else machine).lower()
    baseline = _BASELINE_ARCH.get(machine)
    if isa == "baseline":
        return [[baseline], []] if baseline else [[]]
    if isa != "native":
        raise ValueError(f"LABKIT_KERNEL_ISA must be 'native' or 'baseline', got {isa!r}")
    return [["-march=native"], [baseline], []] if baseline else [["-march=native"], []]


def build_flags(dtype: torch.dtype, arch: list[str]) -> list[str]:
    """The whole compiler command line but the file names (part of the build's cache key).

    The native build lets the compiler fuse multiply-adds (``-ffp-contract=fast``): measured on an
    AVX-512 EPYC, float64 batch 4,000, one thread, it runs 1.4-1.5x faster than
    ``-ffp-contract=off``, and on binary inputs the results are exact either way. The baseline
    build turns contraction off, so the second CPU path rounds every product and sum separately.
    """
    real, define = _DTYPES[dtype]
    contract = "-ffp-contract=fast" if "-march=native" in arch else "-ffp-contract=off"
    flags = ["-O3", *arch, contract, "-fPIC", "-shared", f"-DREAL={real}"]
    return flags + ([define] if define else [])


def _compile(dtype: torch.dtype) -> tuple[Path | None, str]:
    """The built kernel for ``dtype`` (from the cache or compiled now), or None and why not."""
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None, "no C compiler (cc/gcc) found"
    real = _DTYPES[dtype][0]
    source = SOURCE.read_bytes()
    source_tag = hashlib.sha256(source).hexdigest()[:8]
    for arch in arch_flags():
        flags = build_flags(dtype, arch)
        build_tag = hashlib.sha256(" ".join([compiler, *flags, _cpu_id()]).encode()).hexdigest()[:8]
        name = f"relu_kernel_{real}_{source_tag}_{build_tag}.so"
        prebuilt = Path(os.environ.get("LABKIT_KERNEL_CACHE") or _cache_dir()) / name  # e.g. built into an image
        if prebuilt.exists():
            return prebuilt, ""
        target = _cache_dir() / name
        if target.exists() or _build(compiler, flags, target):
            for stale in target.parent.glob(f"relu_kernel_{real}_*.so"):  # builds of older sources
                if not stale.name.startswith(f"relu_kernel_{real}_{source_tag}_"):
                    stale.unlink(missing_ok=True)
            return target, ""
    return None, f"{compiler} failed on {SOURCE.name}"


def _build(compiler: str, flags: list[str], target: Path) -> bool:
    """Compile into ``target`` (atomically: several processes may race); False if the compiler fails."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    try:
        subprocess.run([compiler, *flags, str(SOURCE), "-o", partial], check=True, capture_output=True, timeout=600)
        os.replace(partial, target)
        return True
    except (OSError, subprocess.SubprocessError):
        return False
    finally:
        if os.path.exists(partial):
            os.unlink(partial)


_warned = False


def _warn_fallback(reason: str) -> None:
    """Say once per process that networks run as torch operations, and how to get the kernel."""
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(f"labkit: the fused ReLU kernel is unavailable ({reason}); cipher networks run as "
                      "torch operations, 3-6x slower. Install a C compiler (e.g. `apt-get install gcc`), "
                      "or set LABKIT_KERNEL=0 to choose this path without this warning.",
                      RuntimeWarning, stacklevel=3)


def load(dtype: torch.dtype):
    """The compiled ``relu_network_forward`` for ``dtype`` (float32/float64), or None if unavailable.

    Unavailable means torch operations, 3-6x slower: warned about once per process, unless
    ``LABKIT_KERNEL=0`` chose it.
    """
    if os.environ.get("LABKIT_KERNEL", "1") == "0" or dtype not in _DTYPES:
        return None
    with _lock:
        if dtype not in _loaded:
            fn = None
            path, reason = _compile(dtype)
            if path is not None:
                try:
                    fn = ctypes.CDLL(str(path)).relu_network_forward
                    fn.argtypes = [ctypes.POINTER(_Network), ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
                    fn.restype = ctypes.c_int
                except (OSError, AttributeError) as err:
                    fn, reason = None, f"{path.name} could not be loaded: {err}"
            _loaded[dtype] = fn
            if fn is None:
                _warn_fallback(reason)
        return _loaded[dtype]


def available(dtype: torch.dtype = torch.float64) -> bool:
    """True if the fused kernel can be used here for ``dtype``."""
    return load(dtype) is not None


def _version(t: torch.Tensor) -> int:
    try:
        return t._version
    except RuntimeError:  # an inference tensor has no version counter
        return -1


def _ptr(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


class KernelPlan:
    """A network's layers as the C structures ``relu_kernel.c`` reads (pointers into the weight
    buffers, kept alive here). Raises ValueError if a group is outside the kernel's limits.
    Reads ``net`` by its attributes (``layers``, ``groups``, buffers); imports no network class."""

    def __init__(self, net):
        self.dtype = net.dtype
        self._keep: list = []
        #: (buffer, version) of each buffer the plan holds a converted copy of (a transposed decode
        #: table): the plan is stale once one changes in place. Every other buffer is read in place.
        self.copied: list = []
        layers = []
        width = wires = net.n_inputs
        self._layer_groups: list = []  # per layer, its ctypes array of groups
        self._bias_numel: dict[tuple[int, int], int] = {}  # (layer, group) -> elements of its bias
        for li, layer in enumerate(net.layers):
            groups, base = [], 0
            for gi, g in enumerate(layer.groups):
                if g.split is None:
                    self._bias_numel[li, gi] = g.bias.numel()
                if g.index.numel() and not 0 <= int(g.index.min()) <= int(g.index.max()) < wires:
                    raise ValueError(f"group {g.name!r} reads wires outside the previous layer's {wires}")
                groups.append(self._group(g, base))
                base += g.n_out
            width, wires = max(width, base), base
            array = (_Group * len(groups))(*groups)
            self._layer_groups.append(array)
            layers.append(_Layer(len(groups), array))
        self._layers = (_Layer * len(layers))(*layers)
        if net.out_index.numel() and not 0 <= int(net.out_index.min()) <= int(net.out_index.max()) < wires:
            raise ValueError(f"the read-out takes wires outside the last layer's {wires}")
        out_index = self._hold(net.out_index, torch.int64)
        self.network = _Network(len(layers), net.n_inputs, net.n_outputs, width, int(net.plain_readout),
                                self._layers, _ptr(out_index), _ptr(self._hold(net.out_sign)),
                                _ptr(self._hold(net.out_offset)))

    def with_biases(self, biases: dict) -> "KernelPlan":
        """The same network reading other bias tensors, in place, for some gate groups:
        ``{(layer index, group index): tensor}``, each with that group's bias layout and number of
        elements. Everything else is shared with this plan (no weights are copied)."""
        plan = object.__new__(KernelPlan)
        plan.dtype, plan._bias_numel, plan.copied = self.dtype, self._bias_numel, self.copied
        plan._keep = [self]  # the shared weights live in this plan
        arrays = list(self._layer_groups)
        for slot, tensor in biases.items():
            if slot not in self._bias_numel:
                raise ValueError(f"{slot!r} is not the (layer, group) of a gate group with a replaceable bias")
            li, gi = slot
            numel = self._bias_numel[slot]
            if tensor.numel() != numel or tensor.dtype != self.dtype or not tensor.is_contiguous():
                raise ValueError(f"{slot!r}: expected a contiguous {self.dtype} tensor of {numel} elements")
            if arrays[li] is self._layer_groups[li]:
                arrays[li] = (_Group * len(arrays[li]))(*arrays[li])  # copies the structures
            arrays[li][gi].bias = tensor.data_ptr()
            plan._keep.append(tensor)
        plan._layer_groups = arrays
        plan._layers = (_Layer * len(arrays))(*[_Layer(len(a), a) for a in arrays])
        n = self.network
        plan.network = _Network(n.n_layers, n.n_inputs, n.n_outputs, n.width, n.plain_readout, plan._layers,
                                n.out_index, n.out_sign, n.out_offset)
        return plan

    def _hold(self, t: torch.Tensor | None, dtype=None) -> torch.Tensor | None:
        if t is None:
            return None
        held = t.detach().to(dtype or self.dtype).contiguous()  # the buffer itself when it already fits
        if held.data_ptr() != t.data_ptr() or held.dtype != t.dtype:
            base = t._base if t._base is not None else t  # a view's version is its base's
            self.copied.append((base, _version(base)))
        self._keep.append(held)
        return held

    def _group(self, g, out_base: int) -> _Group:
        if g.k > MAX_K or g.m > MAX_M:
            raise ValueError(f"group {g.name!r}: k={g.k}, m={g.m} exceed the kernel's limits")
        split = -1 if g.split is None else int(g.split)
        if split >= 0:
            if (1 << split) + (1 << (g.k - split)) > MAX_HALF:
                raise ValueError(f"group {g.name!r}: too many partial corner sums for the kernel")
            weight, bias = g.halves, g.half_bias.reshape(-1)
            bias_stride, fold = 1, 0
        else:
            weight, bias = g.signs_t, g.bias.reshape(g.n_per_gate, -1)
            bias_stride, fold = bias.shape[1], int(g.fold_shift)
        if g.sum_decode:
            kind, decode = 0, None
        elif g.shared_decode:
            kind, decode = 1, g.decode.t()  # (neurons, m): one row of m outputs per neuron
        else:
            kind, decode = 2, g.decode  # (gates, neurons, m)
        index = self._hold(g.index, torch.int64)
        return _Group(g.n_gates, g.k, g.n_per_gate, g.m, split, out_base, bias_stride, kind, fold,
                      g.scale, g.shift, _ptr(index), _ptr(self._hold(g.in_sign)), _ptr(self._hold(g.in_offset)),
                      _ptr(self._hold(weight)), _ptr(self._hold(bias)), _ptr(self._hold(decode)))

    def __call__(self, fn, x: torch.Tensor, out: torch.Tensor) -> None:
        """``out[:] = network(x)`` for contiguous row-major ``x`` and ``out`` of this dtype."""
        if fn(ctypes.byref(self.network), x.data_ptr(), out.data_ptr(), x.shape[0]) != 0:
            raise MemoryError("the ReLU kernel could not allocate its wire buffers")
