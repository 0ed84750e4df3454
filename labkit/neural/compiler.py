"""Compile a Boolean circuit (:class:`labkit.circuits.Circuit`) into a ReLU network.

The rules (Deep Neural Cryptography, ePrint 2025/288, section 3):

- every gate becomes its corner neurons (:func:`labkit.circuits.corner_neurons`) in the layer
  given by its depth; the gate's outputs are a 0/1 linear map of those neurons;
- constant inputs (key bits) are folded into the neurons' biases: ``x XOR k`` is the pair
  ``ReLU((x - k - 1 + c)/c) + ReLU((k - x - 1 + c)/c)``, the key bit sitting in the bias;
- affine gates (NOT, wiring, constants) cost no neuron: ``NOT x = 1 - x`` joins the next affine map;
- a value needed more than one layer later is carried by an identity neuron ``ReLU(x)`` (exact on
  bits, which are never negative);
- identical gates of a layer (same function, same constant positions) share one weight matrix.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch

from labkit.circuits import Circuit, check_c, corner_neurons
from labkit.neural.engine import attach
from labkit.neural.layers import NeuronGroup, ReluLayer, ReluNetwork

__all__ = ["compile_circuit"]


def _aliases(circuit: Circuit):
    """Resolve affine gates: every wire -> (base wire or None for a constant, sign, offset)."""
    alias = {w: (w, 1, 0) for w in circuit.inputs}
    alias.update({w: (None, 0, b) for w, b in circuit.constants.items()})
    for gate in circuit.gates:
        ins = [alias[i] for i in gate.inputs]
        form = gate.function.affine_form() if gate.kind == "corners" else None
        if form is not None:
            for o, (i, s, off) in zip(gate.outputs, form):
                if i < 0:
                    alias[o] = (None, 0, off)
                else:
                    base, s2, off2 = ins[i]
                    alias[o] = (base, s * s2, s * off2 + off)
        elif all(base is None for base, _, _ in ins):  # constant folding
            bits = gate.function(np.array([off for _, _, off in ins], dtype=np.int64))
            for o, b in zip(gate.outputs, bits):
                alias[o] = (None, 0, int(b))
        else:
            for o in gate.outputs:
                alias[o] = (o, 1, 0)
    return alias


def compile_circuit(circuit: Circuit, *, c: float = 1.0, dtype: torch.dtype = torch.float64,
                    name: str | None = None, network_class: type[ReluNetwork] = ReluNetwork,
                    **attributes) -> ReluNetwork:
    """The ReLU network computing ``circuit`` on bits: one ReLU layer per level of gates.

    ``c`` in (0, 1] is the corner parameter (1: back-to-back ReLUs; < 1: separated ReLUs).
    ``network_class`` and ``attributes`` let the cipher builders return a richer module. The network
    evaluates through :mod:`labkit.neural.engine` (its ``reference_forward`` is the plain torch form).
    """
    if not isinstance(circuit, Circuit):
        raise TypeError(f"expected a labkit.circuits.Circuit, got {type(circuit).__name__}")
    if dtype not in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        raise TypeError(f"dtype must be a torch floating-point type, got {dtype}")
    c = check_c(c)
    alias = _aliases(circuit)
    neuron_gates = [g for g in circuit.gates if alias[g.outputs[0]][0] == g.outputs[0]]

    # level of every base wire, and the last vector in which each must be present
    level = {w: 0 for w in circuit.inputs}
    for gate in neuron_gates:
        lv = 1 + max((level[alias[i][0]] for i in gate.inputs if alias[i][0] is not None), default=0)
        for o in gate.outputs:
            level[o] = lv
    depth = max(level.values(), default=0)
    need: dict[int, int] = defaultdict(int)
    for gate in neuron_gates:
        for i in gate.inputs:
            base = alias[i][0]
            if base is not None:
                need[base] = max(need[base], level[gate.outputs[0]] - 1)
    for w in circuit.outputs:
        if alias[w][0] is not None:
            need[alias[w][0]] = depth

    by_level = defaultdict(list)
    for gate in neuron_gates:
        by_level[level[gate.outputs[0]]].append(gate)

    position = {w: i for i, w in enumerate(circuit.inputs)}  # base wire -> index in current vector
    n_in = len(circuit.inputs)
    layers = []
    for lv in range(1, depth + 1):
        groups: dict[tuple, list] = {}
        for gate in by_level[lv]:
            consts = tuple(j for j, i in enumerate(gate.inputs) if alias[i][0] is None)
            # one-hot lookups with the same shape share their corners, whatever their tables
            f = gate.function
            shape = ("one-hot", f.k, f.m) if (f.one_hot and gate.kind == "corners") else f
            groups.setdefault((gate.kind, shape, consts), []).append(gate)
        carried = sorted(w for w, lw in level.items() if lw < lv <= need.get(w, -1))
        modules, new_position, n_out, sections = [], {}, 0, []
        for (kind, _, consts), gates in groups.items():
            function = gates[0].function
            modules.append(_neuron_group(kind, function, consts, gates, alias, position, c, dtype, n_in))
            for g_i, gate in enumerate(gates):
                for t, o in enumerate(gate.outputs):
                    new_position[o] = n_out + t * len(gates) + g_i  # output-major rows
                if gate.section and gate.section not in sections:
                    sections.append(gate.section)
            n_out += len(gates) * function.m
        if carried:
            modules.append(NeuronGroup(index=[[position[w]] for w in carried], signs=[[1.0]], bias=[0.0],
                                       decode=[[1.0]], n_in=n_in, name="carry ReLU(x)", dtype=dtype))
            for t, w in enumerate(carried):
                new_position[w] = n_out + t
            n_out += len(carried)
        layer_name = " + ".join(sections) or f"layer {lv}"
        layers.append(ReluLayer(modules, n_in, layer_name))
        position, n_in = new_position, n_out

    out_index, out_sign, out_offset = [], [], []
    for w in circuit.outputs:
        base, s, off = alias[w]
        out_index.append(0 if base is None else position[base])
        out_sign.append(s)
        out_offset.append(off)
    if not circuit.outputs:
        raise ValueError("the circuit has no outputs: call circuit.set_outputs(...) first")
    net = network_class(layers, n_inputs=len(circuit.inputs), out_index=out_index, out_sign=out_sign,
                        out_offset=out_offset, c=c, name=name or circuit.name, dtype=dtype, **attributes)
    return attach(net)  # net(x) through the engine: the fused kernel, or torch chunks over the threads


def _neuron_group(kind, function, consts, gates, alias, position, c, dtype, n_in) -> NeuronGroup:
    variables = [j for j in range(function.k) if j not in consts]
    index, in_sign, in_offset = [], [], []
    for gate in gates:
        row_i, row_s, row_o = [], [], []
        for j in variables:
            base, s, off = alias[gate.inputs[j]]
            row_i.append(position[base]), row_s.append(s), row_o.append(off)
        index.append(row_i), in_sign.append(row_s), in_offset.append(row_o)
    if kind == "clip":  # ReLU(x) - ReLU(x - 1)
        return NeuronGroup(index=index, signs=[[1.0, 1.0]], bias=[0.0, -1.0], decode=[[1.0], [-1.0]],
                           in_sign=in_sign, in_offset=in_offset, n_in=n_in, name="clip ReLU(x)-ReLU(x-1)",
                           dtype=dtype)
    cn = corner_neurons(function, c)
    functions = list(dict.fromkeys(g.function for g in gates))
    if len(functions) == 1:
        decode, name = cn.decode.T, function.name
    else:  # one-hot lookups of different tables: same corners, one decode table per gate
        tables = {f: corner_neurons(f, c).decode.T for f in functions}
        decode = np.stack([tables[g.function] for g in gates])
        name = "/".join(f.name for f in functions)
    signs = cn.signs.astype(np.float64)
    bias = np.array([cn.offsets + signs[:, list(consts)] @ np.array([alias[g.inputs[j]][2] for j in consts])
                     for g in gates]) if consts else cn.offsets[None, :]
    split = None
    if function.one_hot and not consts and function.k >= 4:
        split = function.k // 2
    return NeuronGroup(index=index, signs=signs[:, variables].T, bias=bias, decode=decode,
                       scale=1.0 / c, shift=1.0, in_sign=in_sign, in_offset=in_offset, split=split,
                       n_in=n_in, name=name, dtype=dtype)
