"""Widgets of chapters 05-06: gates as ReLU surfaces, corner neurons, a cipher network's neurons.

- :class:`GateSurface`: a gate's network over [-0.5, 1.5]^2 as a 3-D surface; move ``c``;
- :class:`CornerExplorer`: a 3-bit function by its truth table, its corner neurons on a real input;
- :class:`NeuronActivity`: push one plaintext coordinate of a cipher network off {0, 1} and watch
  how many neurons of each layer light up and whether the outputs are still bits.
"""
from __future__ import annotations

import html

import ipywidgets as w
import numpy as np
import plotly.graph_objects as go
import torch

from labkit.circuits import AND, OR, XOR, BooleanFunction, corner_neurons
from labkit.widgets import COLORS, LabWidget

__all__ = ["GateSurface", "CornerExplorer", "NeuronActivity", "gate_surface"]

GATES = {"XOR": XOR(), "AND": AND(), "OR": OR(),
         "NAND": BooleanFunction("NAND", 2, 1, (1, 1, 1, 0)), "x AND NOT y": BooleanFunction("x>y", 2, 1, (0, 0, 1, 0))}


def gate_surface(function: BooleanFunction, c: float, *, lo: float = -0.5, hi: float = 1.5, steps: int = 41):
    """The network of a 2-input gate on a grid: (xs, ys, z) with z[i, j] = net(xs[j], ys[i])."""
    xs = np.linspace(lo, hi, steps)
    gx, gy = np.meshgrid(xs, xs)
    z = corner_neurons(function, c)(np.stack([gx, gy], axis=-1))[..., 0]
    return xs, xs, z


class GateSurface(LabWidget):
    """A 2-input gate as a ReLU network, drawn over [-0.5, 1.5]^2; change the gate and ``c``."""

    def __init__(self, gate: str = "XOR", c: float = 1.0) -> None:
        super().__init__()
        self.gate = w.Dropdown(options=list(GATES), value=gate, description="gate")
        self.c = w.FloatSlider(value=c, min=0.05, max=1.0, step=0.05, description="c", continuous_update=False)
        self.info = w.HTML()
        xs, ys, z = gate_surface(GATES[gate], c)
        corners = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
        self.figure = go.FigureWidget([
            go.Surface(x=xs, y=ys, z=z, colorscale="Viridis", showscale=False, opacity=0.95),
            go.Scatter3d(x=corners[:, 0], y=corners[:, 1], z=[0, 0, 0, 0], mode="markers",
                         marker=dict(size=5, color=COLORS["changed"]), name="corners"),
        ])
        self.figure.update_layout(height=420, width=560, margin=dict(l=0, r=0, t=30, b=0),
                                  scene=dict(xaxis_title="x", yaxis_title="y", zaxis_title="net(x, y)"))
        self.z = z
        self.watch(self.gate, self.c)
        self.refresh()

    def update(self) -> None:
        function = GATES[self.gate.value]
        net = corner_neurons(function, self.c.value)
        xs, ys, self.z = gate_surface(function, self.c.value)
        corners = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
        with self.figure.batch_update():
            self.figure.data[0].z = self.z
            self.figure.data[1].z = net(corners)[:, 0]
            self.figure.layout.title = f"{self.gate.value}, c = {self.c.value:.2f}: {net.n_neurons} ReLU neuron(s)"
        terms = " + ".join(_neuron_text(net.weight[j], net.bias[j]) for j in range(net.n_neurons))
        self.info.value = f"<code>{html.escape(self.gate.value)}(x, y) = {html.escape(terms)}</code>"

    def build(self) -> w.Widget:
        return w.VBox([w.HBox([self.gate, self.c]), self.info, self.figure, self.message])


def _neuron_text(weight, bias, names=("x", "y", "z")) -> str:
    parts = []
    for wi, name in zip(weight, names):
        if wi:
            sign = "-" if wi < 0 else ("+" if parts else "")
            mag = abs(wi)
            parts.append(f"{sign}{'' if mag == 1 else f'{mag:g}'}{name}")
    if bias:
        parts.append(f"{'-' if bias < 0 else '+'}{abs(bias):g}")
    return f"ReLU({''.join(parts) or '0'})"


class CornerExplorer(LabWidget):
    """Pick a 3-bit Boolean function by its truth table; see its corners on a real input.

    ``self.values`` holds each corner neuron's output at the input ``(x1, x2, x3)`` and
    ``self.output`` their sum: the network's value there.
    """

    def __init__(self, table=(0, 1, 1, 0, 1, 0, 0, 1), c: float = 1.0) -> None:
        super().__init__()
        self.bits = [w.ToggleButton(value=bool(t), description=f"f({v:03b})", layout=w.Layout(width="80px"))
                     for v, t in enumerate(table)]
        self.c = w.FloatSlider(value=c, min=0.05, max=1.0, step=0.05, description="c", continuous_update=False)
        self.x = [w.FloatSlider(value=float(v), min=-0.5, max=1.5, step=0.05, description=f"x{i + 1}",
                                continuous_update=False) for i, v in enumerate((1, 0, 0))]
        self.summary = w.HTML()
        self.figure = go.FigureWidget(go.Bar(x=[], y=[], marker_color=COLORS["accent"]))
        self.figure.update_layout(height=300, width=560, margin=dict(l=40, r=10, t=40, b=40),
                                  yaxis_title="neuron output", xaxis_title="corner (pattern)")
        self.values = np.zeros(0)
        self.output = 0.0
        self.watch(self.c, *self.bits, *self.x)
        self.refresh()

    @property
    def function(self) -> BooleanFunction:
        return BooleanFunction("f", 3, 1, tuple(int(b.value) for b in self.bits))

    def update(self) -> None:
        net = corner_neurons(self.function, self.c.value)
        point = np.array([s.value for s in self.x])
        self.values = net.hidden(point) if net.n_neurons else np.zeros(0)
        self.output = float(self.values.sum())
        with self.figure.batch_update():
            self.figure.data[0].x = [f"{p:03b}" for p in net.patterns]
            self.figure.data[0].y = self.values
            self.figure.layout.title = f"{net.n_neurons} corner neurons; their sum f(x) = {self.output:.3f}"
        on_corner = np.all(np.isin(point, (0.0, 1.0)))
        note = "on a corner of the cube: exactly the truth table" if on_corner else "off the corners: a real number"
        self.summary.value = f"f({', '.join(f'{v:g}' for v in point)}) = <b>{self.output:.3f}</b> ({note})"

    def build(self) -> w.Widget:
        return w.VBox([w.HBox(self.bits), w.HBox([self.c]), w.HBox(self.x), self.summary, self.figure, self.message])


class NeuronActivity(LabWidget):
    """Move one plaintext coordinate of a cipher network off {0, 1}; count active neurons per layer.

    ``network`` is a :class:`labkit.neural.ReluNetwork`; ``plaintext_bits`` the binary base input.
    State: ``self.active`` (neurons > 0 per layer), ``self.baseline`` (the same for the binary
    input) and ``self.non_bits`` (how many outputs are not 0 or 1).
    """

    def __init__(self, network, plaintext_bits, *, bit: int = 0, value: float = 1.2) -> None:
        super().__init__()
        self.network = network
        base = np.asarray(plaintext_bits, dtype=np.float64).reshape(1, -1)
        if base.shape[1] != network.n_inputs or not np.all(np.isin(base, (0.0, 1.0))):
            raise ValueError(f"plaintext_bits must be {network.n_inputs} bits")
        self.base = torch.tensor(base, dtype=network.dtype)
        self.baseline = np.array([int((a > 0).sum()) for a in network.activations(self.base)])
        self.bit = w.BoundedIntText(value=bit, min=0, max=network.n_inputs - 1, description="bit")
        self.value = w.FloatSlider(value=value, min=-0.5, max=1.5, step=0.05, description="value",
                                   continuous_update=False)
        self.summary = w.HTML()
        layers = list(range(1, network.n_relu_layers + 1))
        self.figure = go.FigureWidget([
            go.Bar(x=layers, y=self.baseline, name="binary input", marker_color=COLORS["same"]),
            go.Bar(x=layers, y=self.baseline, name="modified input", marker_color=COLORS["changed"]),
        ])
        self.figure.update_layout(barmode="overlay", height=320, margin=dict(l=40, r=10, t=40, b=40),
                                  xaxis_title="ReLU layer", yaxis_title="active neurons (> 0)", yaxis_type="log")
        self.active = self.baseline.copy()
        self.non_bits = 0
        self.watch(self.bit, self.value)
        self.refresh()

    def update(self) -> None:
        if not 0 <= self.bit.value < self.network.n_inputs:
            raise ValueError(f"bit must be in 0..{self.network.n_inputs - 1}")
        x = self.base.clone()
        x[0, self.bit.value] = self.value.value
        acts = self.network.activations(x)
        self.active = np.array([int((a > 0).sum()) for a in acts])
        out = self.network(x)
        self.non_bits = int(((out != 0) & (out != 1)).sum())
        self.figure.data[1].y = self.active
        self.figure.layout.title = f"bit {self.bit.value} = {self.value.value:g}"
        colour = COLORS["ok"] if self.non_bits == 0 else COLORS["error"]
        self.summary.value = (f'<span style="color:{colour}">{self.non_bits} of {out.shape[1]} outputs are not bits'
                              f"</span>; {int(self.active.sum())} active neurons (binary input: "
                              f"{int(self.baseline.sum())})")

    def build(self) -> w.Widget:
        return w.VBox([w.HBox([self.bit, self.value]), self.summary, self.figure, self.message])
