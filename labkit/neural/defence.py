"""The provably secure wrapper of Gerault, Hambitzer, Ronen and Shamir (ePrint 2025/288, Sec. 6).

Any ReLU network ``D`` that is correct on binary inputs becomes

    D_S(p) = ReLU(STEP(D(STEP(p))) - MASK(p))

    STEP(x) = (ReLU(x - e) - ReLU(x - (1 - e))) / (1 - 2e)              rounds x to 0 or 1
    RECT(x) = (ReLU(x) - ReLU(x - e) - ReLU(x - (1 - e)) + ReLU(x - 1)) / e   1 on [e, 1 - e]
    MASK(p) = sum_i RECT(p_i)

so every output is 0 as soon as one coordinate sits in [e, 1 - e], and otherwise equals
``ReLU(B(round(p)) - MASK(p))``: a value anyone can compute from the binary cipher ``B`` alone.
Queries off the binary cube therefore teach nothing the binary cipher would not (the simulator
argument). Kim and Lee (ePrint 2026/1919) showed that floating point breaks this for huge
coordinates (``STEP(2**(f-1) + 1) == 2`` with ``MASK == 0`` for e = 1/4); clamping the input to
[0, 1] first, ``clamp01(x) = 1 - ReLU(1 - ReLU(x))``, closes that hole.

The unclamped form exists only to demonstrate that attack, and is asked for by name:
``protect(D, unsafe_unclamped=True)``; the default is clamped.

Every pre-activation is written with integer weights (for e = a/b: ``ReLU(b*x - a)``), so binary
inputs produce exact 0/1 values in any floating-point format. The wrapper only adds elementwise
affine maps, sums and ReLUs around ``D``: the result is still an affine+ReLU network.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Callable

import numpy as np
import torch
from torch import nn

__all__ = [
    "protect",
    "ProtectedNetwork",
    "Overhead",
    "as_epsilon",
    "clamp01",
    "step",
    "rect",
    "mask",
    "simulate",
    "float_trigger",
    "structure_overhead",
]


def as_epsilon(epsilon) -> Fraction:
    """Validate epsilon (a Fraction, an int ratio or a float such as 1/3) and return it exactly.

    Floats are read as the nearest fraction with a small denominator, so ``1/3`` means 1/3.
    """
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float, Fraction)):
        raise TypeError(f"epsilon must be a number such as Fraction(1, 3), got {type(epsilon).__name__}")
    if isinstance(epsilon, float):
        if not np.isfinite(epsilon):
            raise ValueError(f"epsilon must be finite, got {epsilon}")
        epsilon = Fraction(epsilon).limit_denominator(1000)
    epsilon = Fraction(epsilon)
    if not 0 < epsilon < Fraction(1, 2):
        raise ValueError(f"epsilon must lie strictly between 0 and 1/2, got {epsilon}")
    return epsilon


def _ab(epsilon) -> tuple[int, int]:
    e = as_epsilon(epsilon)
    return e.numerator, e.denominator


def clamp01(x: torch.Tensor) -> torch.Tensor:
    """``1 - ReLU(1 - ReLU(x))``: x clipped to [0, 1] with two ReLU layers (Kim and Lee's fix)."""
    return 1 - torch.relu(1 - torch.relu(x))


def step(x: torch.Tensor, epsilon=Fraction(1, 3)) -> torch.Tensor:
    """STEP: 0 below e, 1 above 1 - e, linear in between; ``(ReLU(bx-a) - ReLU(bx-(b-a)))/(b-2a)``."""
    a, b = _ab(epsilon)
    return (torch.relu(b * x - a) - torch.relu(b * x - (b - a))) / (b - 2 * a)


def rect(x: torch.Tensor, epsilon=Fraction(1, 3)) -> torch.Tensor:
    """RECT: 1 on [e, 1-e], 0 outside [0, 1], linear ramps of width e in between."""
    a, b = _ab(epsilon)
    bx = b * x
    return (torch.relu(bx) - torch.relu(bx - a) - torch.relu(bx - (b - a)) + torch.relu(bx - b)) / a


def mask(p: torch.Tensor, epsilon=Fraction(1, 3)) -> torch.Tensor:
    """MASK(p) = sum_i RECT(p_i), shape ``(n, 1)``: at least 1 when any coordinate is in [e, 1-e].

    The sum is a product with a column of ones: an affine map like any other layer.
    """
    return rect(p, epsilon) @ p.new_ones((p.shape[-1], 1))


def _network_dtype(network: nn.Module, default=torch.float64) -> torch.dtype:
    for tensor in list(network.parameters()) + list(network.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype
    return default


def _as_tensor(p, dtype: torch.dtype) -> torch.Tensor:
    if isinstance(p, torch.Tensor):
        return p.to(dtype)
    return torch.as_tensor(np.asarray(p), dtype=dtype)


@dataclass(frozen=True)
class Overhead:
    """What the wrapper adds to a network with ``n_in`` input and ``n_out`` output bits."""

    n_in: int
    n_out: int
    clamp: bool

    @property
    def relu_layers(self) -> int:
        """Extra ReLU layers: [clamp: 2] + input STEP/RECT + output STEP + final ReLU."""
        return (2 if self.clamp else 0) + 3

    @property
    def relu_neurons(self) -> int:
        """Extra ReLU neurons: [2 per input bit] + 4 per input bit + 2 + 1 per output bit."""
        return (2 * self.n_in if self.clamp else 0) + 4 * self.n_in + 3 * self.n_out

    def carried_neurons(self, inner_layers: int) -> int:
        """Neurons needed to carry the scalar MASK beside D when D is drawn as a plain stack."""
        return inner_layers


class ProtectedNetwork(nn.Module):
    """``D_S(p) = ReLU(STEP(D(STEP(p))) - MASK(p))`` around ``inner``, clamped first unless
    ``unsafe_unclamped`` (the naive form that Kim and Lee's floating-point trigger breaks)."""

    def __init__(self, inner: nn.Module, *, epsilon=Fraction(1, 3), unsafe_unclamped: bool = False,
                 n_in: int | None = None, n_out: int | None = None):
        super().__init__()
        if not isinstance(inner, nn.Module):
            raise TypeError(f"protect() needs a torch.nn.Module, got {type(inner).__name__}")
        self.inner = inner
        self.epsilon = as_epsilon(epsilon)
        if not isinstance(unsafe_unclamped, bool):
            raise TypeError("unsafe_unclamped must be True or False")
        self.clamp = not unsafe_unclamped
        self.dtype = _network_dtype(inner)
        self.n_in = n_in if n_in is not None else getattr(inner, "n_inputs", None)
        self.n_out = n_out if n_out is not None else getattr(inner, "n_outputs", None)

    def extra_repr(self) -> str:
        return f"epsilon={self.epsilon}" + ("" if self.clamp else ", UNSAFE: unclamped (breaks in floating point)")

    def preprocess(self, p: torch.Tensor) -> torch.Tensor:
        """The input as the wrapper sees it: clamped to [0, 1] when ``clamp`` is on."""
        return clamp01(p) if self.clamp else p

    def mask(self, p) -> torch.Tensor:
        """MASK of the (clamped) input: the only place real-valued coordinates reach the output."""
        return mask(self.preprocess(_as_tensor(p, self.dtype)), self.epsilon)

    def forward(self, p) -> torch.Tensor:
        p = self.preprocess(_as_tensor(p, self.dtype))
        if self.n_in is not None and p.shape[-1] != self.n_in:
            raise ValueError(f"expected {self.n_in} input bits, got {p.shape[-1]}")
        inner_out = self.inner(step(p, self.epsilon))
        return torch.relu(step(inner_out, self.epsilon) - mask(p, self.epsilon))

    def graph(self) -> torch.fx.GraphModule:
        """The computation alone (no input checks), traced with torch.fx: what
        :func:`labkit.neural.check_affine_relu` inspects to prove it is affine maps and ReLU."""
        if self.n_in is None:
            raise ValueError("graph() needs n_in (pass it to protect())")
        inner = self.inner.graph() if hasattr(self.inner, "graph") else self.inner
        return torch.fx.symbolic_trace(_ProtectedCore(inner, self.epsilon, self.clamp, self.n_in, self.dtype))

    def overhead(self) -> Overhead:
        if self.n_in is None or self.n_out is None:
            raise ValueError("overhead() needs n_in and n_out (pass them to protect())")
        return Overhead(self.n_in, self.n_out, self.clamp)


class _ProtectedCore(nn.Module):
    """D_S without input handling, so that torch.fx can trace it."""

    def __init__(self, inner: nn.Module, epsilon: Fraction, clamp: bool, n_in: int, dtype):
        super().__init__()
        self.inner, self.epsilon, self.clamp = inner, epsilon, clamp
        self.register_buffer("ones", torch.ones((n_in, 1), dtype=dtype))

    def forward(self, p):
        if self.clamp:
            p = clamp01(p)
        masked = rect(p, self.epsilon) @ self.ones
        return torch.relu(step(self.inner(step(p, self.epsilon)), self.epsilon) - masked)


def protect(network: nn.Module, *, epsilon=Fraction(1, 3), unsafe_unclamped: bool = False,
            n_in: int | None = None, n_out: int | None = None) -> ProtectedNetwork:
    """Wrap a bits->bits ReLU network in the STEP/RECT/MASK construction (paper Sec. 6).

    ``epsilon`` is 1/3 in the paper and 1/4 in the authors' code (both exact here). The input is
    clamped to [0, 1] first; ``unsafe_unclamped=True`` leaves the clamp out, only to demonstrate
    the floating-point trigger of Kim and Lee that breaks it.
    ``n_in``/``n_out`` (bit widths) are optional and only used for checks and :meth:`overhead`.
    """
    return ProtectedNetwork(network, epsilon=epsilon, unsafe_unclamped=unsafe_unclamped, n_in=n_in, n_out=n_out)


def simulate(p, binary_cipher: Callable, *, epsilon=Fraction(1, 3), unsafe_unclamped: bool = False,
             dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """What ``protect(D)`` returns on ``p``, computed from the binary cipher alone.

    ``ReLU(B(round(clamp(p))) - MASK(clamp(p)))``: ``binary_cipher`` only ever sees 0/1 inputs,
    which is the simulator argument of the paper made executable. ``unsafe_unclamped`` simulates
    the unclamped network (exactly, in real arithmetic).
    """
    p = _as_tensor(p, dtype)
    x = p if unsafe_unclamped else clamp01(p)
    rounded = (x >= 0.5).to(dtype)
    out = _as_tensor(binary_cipher(rounded), dtype)
    return torch.relu(out - mask(x, epsilon))


def float_trigger(dtype: torch.dtype) -> float:
    """Kim and Lee's coordinate ``2**(f-1) + 1`` (f = mantissa bits with the implicit one).

    With e = 1/4 and no clamp, STEP of it is 2 (an input the inner network was never meant to
    see) while RECT of it is 0, so MASK does not hide the output.
    """
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a torch floating-point dtype, got {dtype!r}")
    mantissa_bits = 1 - int(np.log2(torch.finfo(dtype).eps))
    return float(2 ** (mantissa_bits - 1) + 1)


def structure_overhead(protected: ProtectedNetwork) -> dict:
    """Layers and neurons of the inner network and what the wrapper adds (paper Sec. 6.3).

    The inner network must report ``n_relu_layers`` and ``n_neurons`` (as
    :class:`labkit.neural.ReluNetwork` does). The scalar MASK rides beside the inner network: one
    extra neuron per inner layer if the whole thing is drawn as a plain layered network.
    """
    inner = protected.inner
    if not hasattr(inner, "n_relu_layers") or not hasattr(inner, "n_neurons"):
        raise TypeError("the inner network must report n_relu_layers and n_neurons")
    extra = protected.overhead()
    layers, neurons = int(inner.n_relu_layers), int(inner.n_neurons)
    carried = extra.carried_neurons(layers)
    return {
        "layers": layers, "extra_layers": extra.relu_layers,
        "neurons": neurons, "extra_neurons": extra.relu_neurons + carried,
        "layer_overhead": extra.relu_layers / layers,
        "neuron_overhead": (extra.relu_neurons + carried) / neurons,
    }
