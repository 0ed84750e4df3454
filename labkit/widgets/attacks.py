"""Widgets of chapters 06 (key recovery) and 07 (the STEP/RECT/MASK defence)."""
from __future__ import annotations

from fractions import Fraction

import ipywidgets as w
import numpy as np
import plotly.graph_objects as go
import torch

from labkit.neural.defence import rect, step
from labkit.widgets import COLORS, LabWidget

__all__ = ["KeyRecoveryView", "DefenceShapesView"]

_PALETTE = [COLORS["accent"], COLORS["changed"], COLORS["ok"], COLORS["left"], COLORS["error"]]


class KeyRecoveryView(LabWidget):
    """Key bits recovered against queries, for attack results computed beforehand.

    ``results`` maps a label to an :class:`labkit.attacks.AttackResult`; the slider picks a query
    budget and the view reports, per attack, how many key bits were settled within it (the
    authors' 512-query budget is drawn for comparison).
    """

    def __init__(self, results: dict, *, paper_budget: int = 512):
        super().__init__()
        if not results:
            raise ValueError("results must hold at least one AttackResult")
        self.results = dict(results)
        longest = max(r.queries for r in self.results.values())
        self.budget = w.IntSlider(value=longest, min=0, max=max(longest, paper_budget), step=1,
                                  description="queries", continuous_update=True,
                                  layout=w.Layout(width="32em"))
        self.summary = w.HTML()
        self.figure = go.FigureWidget()
        for i, (label, result) in enumerate(self.results.items()):
            q, b = self._steps(result)
            self.figure.add_scatter(x=q, y=b, mode="lines", line_shape="hv", name=label,
                                    line=dict(color=_PALETTE[i % len(_PALETTE)]))
        self.figure.add_scatter(x=[paper_budget, paper_budget], y=[0, 128], mode="lines",
                                name=f"authors' budget ({paper_budget})",
                                line=dict(color="#868e96", dash="dot"))
        self.figure.add_scatter(x=[longest, longest], y=[0, 128], mode="lines", name="your budget",
                                line=dict(color=COLORS["error"], dash="dash"))
        self.figure.update_layout(height=340, margin=dict(l=50, r=10, t=40, b=40),
                                  title="Key bits settled against queries",
                                  xaxis_title="queries to the network", yaxis_title="key bits",
                                  yaxis_range=[0, 132])
        self.bits_at_budget: dict[str, int] = {}
        self.watch(self.budget)
        self.refresh()

    @staticmethod
    def _steps(result):
        history = sorted(result.history) or [(0, 0)]
        q = [h[0] for h in history]
        b = [h[1] for h in history]
        return q, b

    def bits_within(self, result, budget: int) -> int:
        """Key bits settled by the time ``budget`` queries had been answered."""
        best = 0
        for q, b in result.history:
            if q <= budget:
                best = max(best, b)
        return best

    def update(self) -> None:
        budget = int(self.budget.value)
        if budget < 0:
            raise ValueError("the query budget must be non-negative")
        self.bits_at_budget = {label: self.bits_within(r, budget) for label, r in self.results.items()}
        with self.figure.batch_update():
            self.figure.data[-1].x = [budget, budget]
        rows = "".join(
            f"<tr><td>{label}</td><td style='text-align:right'>{bits}/128</td>"
            f"<td style='text-align:right'>{r.queries}</td>"
            f"<td>{'key confirmed' if r.success else 'no key'}</td></tr>"
            for (label, r), bits in zip(self.results.items(), self.bits_at_budget.values())
        )
        self.summary.value = ("<table><tr><th>attack</th><th>bits within budget</th>"
                              f"<th>queries used</th><th></th></tr>{rows}</table>")

    def build(self) -> w.Widget:
        return w.VBox([self.budget, self.summary, self.figure, self.message])


class DefenceShapesView(LabWidget):
    """STEP, RECT and the output gate of the defence, with an epsilon slider and a probe value."""

    EPSILONS = [Fraction(1, 8), Fraction(1, 6), Fraction(1, 5), Fraction(1, 4), Fraction(1, 3),
                Fraction(2, 5)]

    def __init__(self, epsilon=Fraction(1, 3)):
        super().__init__()
        options = [(str(e), e) for e in self.EPSILONS]
        self.epsilon = w.SelectionSlider(options=options, value=Fraction(epsilon),
                                         description="epsilon", layout=w.Layout(width="28em"))
        self.probe = w.FloatSlider(value=0.2, min=-0.5, max=1.5, step=0.01, description="x",
                                   layout=w.Layout(width="28em"))
        self.readout = w.HTML()
        self.x = np.linspace(-0.5, 1.5, 401)
        self.figure = go.FigureWidget()
        self.figure.add_scatter(x=self.x, y=self.x * 0, name="STEP(x)", line=dict(color=COLORS["accent"]))
        self.figure.add_scatter(x=self.x, y=self.x * 0, name="RECT(x)", line=dict(color=COLORS["changed"]))
        self.figure.add_scatter(x=[0], y=[0], mode="markers", name="probe",
                                marker=dict(size=10, color=COLORS["error"]))
        self.figure.update_layout(height=320, margin=dict(l=40, r=10, t=40, b=40),
                                  title="STEP rounds to a bit, RECT flags the middle",
                                  xaxis_title="input coordinate x", yaxis_range=[-0.1, 1.15])
        self.step_value = self.rect_value = None
        self.watch(self.epsilon, self.probe)
        self.refresh()

    def update(self) -> None:
        e = self.epsilon.value
        xs = torch.as_tensor(self.x, dtype=torch.float64)
        probe = torch.tensor([self.probe.value], dtype=torch.float64)
        self.step_value = float(step(probe, e)[0])
        self.rect_value = float(rect(probe, e)[0])
        with self.figure.batch_update():
            self.figure.data[0].y = step(xs, e).numpy()
            self.figure.data[1].y = rect(xs, e).numpy()
            self.figure.data[2].x = [self.probe.value, self.probe.value]
            self.figure.data[2].y = [self.step_value, self.rect_value]
        verdict = ("MASK >= 1: every output of D_S is 0" if self.rect_value >= 1
                   else "the inner network sees the bit " + f"{self.step_value:g}; MASK adds {self.rect_value:.3f}")
        self.readout.value = (f"e = {e}: STEP({self.probe.value:.2f}) = {self.step_value:.3f}, "
                              f"RECT({self.probe.value:.2f}) = {self.rect_value:.3f} &mdash; {verdict}")

    def build(self) -> w.Widget:
        return w.VBox([self.epsilon, self.probe, self.readout, self.figure, self.message])
