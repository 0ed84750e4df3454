"""Chapter 02 widgets: DES diffusion (avalanche) per round, in the style of CrypTool 2's view."""
from __future__ import annotations

import ipywidgets as w
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from labkit import bits, des
from labkit.widgets import COLORS, LabWidget, hex_text

__all__ = ["DESDiffusion", "diffusion_grid", "STEP_LABELS"]

#: Row labels of the diffusion grid: the state after IP, after each round, and the ciphertext.
STEP_LABELS = ["IP"] + [f"round {i}" for i in range(1, 17)] + ["output"]


def diffusion_grid(result: des.Avalanche) -> np.ndarray:
    """Cells coded 0 = bit 0 in both runs, 1 = bit 1 in both, 2 = the runs differ."""
    first = np.vstack([result.trace_a.states(), result.trace_a.output[None, :]])
    return np.where(result.diff == 1, 2, first).astype(int)


class DESDiffusion(LabWidget):
    """Flip one plaintext or key bit and watch the difference spread through the 16 rounds:
    a grid of the 64-bit state per round (changed bits in orange) and the count per round."""

    def __init__(self, key: str = "133457799bbcdff1", plaintext: str = "0123456789abcdef",
                 flip: str = "plaintext", bit: int = 0) -> None:
        super().__init__()
        self.key = hex_text("key (hex)", key, width="22em")
        self.plaintext = hex_text("plaintext (hex)", plaintext, width="24em")
        self.flip = w.ToggleButtons(options=["plaintext", "key"], value=flip, description="flip a")
        self.bit = w.IntSlider(value=bit, min=0, max=63, description="bit")
        self.summary = w.HTML()
        self.result: des.Avalanche | None = None
        fig = make_subplots(rows=1, cols=2, column_widths=[0.72, 0.28], shared_yaxes=True,
                            subplot_titles=("state bits (orange: differ)", "bits that differ"),
                            horizontal_spacing=0.03)
        scale = [[0, "#f1f3f5"], [0.33, "#f1f3f5"], [0.33, "#adb5bd"], [0.66, "#adb5bd"],
                 [0.66, COLORS["changed"]], [1, COLORS["changed"]]]
        fig.add_trace(go.Heatmap(z=np.zeros((18, 64)), y=STEP_LABELS, colorscale=scale, zmin=0,
                                 zmax=2, showscale=False, xgap=1, ygap=1,
                                 hovertemplate="%{y}, bit %{x}<extra></extra>"), row=1, col=1)
        fig.add_trace(go.Bar(x=np.zeros(18), y=STEP_LABELS, orientation="h",
                             marker_color=COLORS["changed"], text=np.zeros(18),
                             textposition="outside"), row=1, col=2)
        fig.update_yaxes(autorange="reversed")
        fig.update_xaxes(range=[0, 64], row=1, col=2)
        fig.update_layout(height=480, margin=dict(l=70, r=20, t=40, b=30), showlegend=False)
        self.figure = go.FigureWidget(fig)
        self.watch(self.key, self.plaintext, self.flip, self.bit)
        self.refresh()

    def update(self) -> None:
        key = bits.parse_hex(self.key.value, length=8, what="key")
        block = bits.parse_hex(self.plaintext.value, length=8, what="plaintext")
        self.result = des.avalanche(key, block, self.bit.value, flip=self.flip.value)
        counts = self.result.counts
        with self.figure.batch_update():
            self.figure.data[0].z = diffusion_grid(self.result)
            self.figure.data[1].x = counts
            self.figure.data[1].text = counts
        note = " (a parity bit: ignored by DES)" if self.flip.value == "key" and self.bit.value % 8 == 7 else ""
        c1, c2 = self.result.trace_a.ciphertext, self.result.trace_b.ciphertext
        self.summary.value = (
            f"Flipping {self.flip.value} bit {self.bit.value}{note}: ciphertexts "
            f"<code>{c1.hex()}</code> and <code>{c2.hex()}</code> differ in "
            f"<b>{int(counts[-1])}</b> of 64 bits.")

    def build(self) -> w.Widget:
        return w.VBox([w.HBox([self.key, self.plaintext]), w.HBox([self.flip, self.bit]),
                       self.message, self.summary, self.figure])
