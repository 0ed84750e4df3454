"""Proof that a traced torch graph computes only affine maps and ReLU (what makes a "ReLU network").

:func:`check_affine_relu` walks a ``torch.fx`` graph (:meth:`ReluNetwork.graph`, the protected
network's ``graph()``, or any module it can trace) and raises :class:`NonAffineOperation` on
anything else: rounding, comparisons, clamps, products of two input-dependent values.
"""
from __future__ import annotations

from collections import Counter

import torch
from torch import nn

__all__ = ["check_affine_relu", "NonAffineOperation"]


class NonAffineOperation(ValueError):
    """A traced graph contains an operation that is neither affine nor ReLU."""


_STRUCTURAL = {"view", "reshape", "unsqueeze", "squeeze", "flatten", "permute", "transpose", "contiguous",
               "expand", "getitem", "index_select", "cat", "stack", "narrow", "clone", "size", "getattr",
               "split", "chunk", "t", "to"}
_ADDITIVE = {"add", "add_", "sub", "sub_", "neg", "iadd", "isub", "__add__", "__sub__", "__radd__", "sum"}
_MULTIPLICATIVE = {"mul", "mul_", "matmul", "__matmul__", "einsum", "linear", "truediv", "div", "imul", "bmm", "mm",
                   "addmm", "baddbmm"}
_RELU = {"relu", "relu_"}


def _op_name(node) -> str:
    if node.op == "call_method":
        return str(node.target)
    return getattr(node.target, "__name__", str(node.target))


def check_affine_relu(module: nn.Module) -> Counter:
    """Trace ``module`` with torch.fx and prove it computes only affine maps and ReLU.

    Walks the graph tracking which values depend on the input: additions and structural ops are
    always allowed, products only when at most one factor depends on the input (so they are
    linear), ReLU is the one nonlinearity, and anything else (rounding, comparisons, ``where``,
    ``abs``, clamps, data-dependent indexing) raises :class:`NonAffineOperation`.
    Returns a count of the operations seen.
    """
    gm = module if isinstance(module, torch.fx.GraphModule) else torch.fx.symbolic_trace(module)
    modules = dict(gm.named_modules())
    depends: dict = {}
    counts: Counter = Counter()

    def dep(arg) -> bool:
        if isinstance(arg, torch.fx.Node):
            return depends.get(arg, False)
        if isinstance(arg, (list, tuple)):
            return any(dep(a) for a in arg)
        if isinstance(arg, dict):
            return any(dep(a) for a in arg.values())
        return False

    for node in gm.graph.nodes:
        if node.op == "placeholder":
            depends[node] = True
            continue
        if node.op in ("get_attr", "output"):
            depends[node] = node.op == "output" and dep(node.args)
            continue
        if node.op == "call_module":
            mod = modules[node.target]
            name = "relu" if isinstance(mod, nn.ReLU) else ("linear" if isinstance(mod, nn.Linear) else type(mod).__name__)
        else:
            name = _op_name(node)
        args = list(node.args) + list(node.kwargs.values())
        is_dep = dep(args)
        depends[node] = is_dep
        counts[name] += 1
        if not is_dep:
            continue  # computed from constants only
        if name in _STRUCTURAL:
            if name in ("getitem", "index_select") and len(args) > 1 and dep(args[1:]):
                raise NonAffineOperation(f"{node.format_node()}: indexing by an input-dependent value")
            continue
        if name in _ADDITIVE or name in _RELU:
            continue
        if name in _MULTIPLICATIVE:
            if name == "linear" and node.op == "call_module":
                continue
            factors = [a for a in args if dep(a)]
            if name in ("truediv", "div") and dep(args[1:]):
                raise NonAffineOperation(f"{node.format_node()}: division by an input-dependent value")
            if len(factors) > 1:
                raise NonAffineOperation(f"{node.format_node()}: product of two input-dependent values")
            continue
        raise NonAffineOperation(f"{node.format_node()}: {name} is neither affine nor ReLU")
    return counts
