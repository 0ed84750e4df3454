"""Chapter 03 views: the AES round explorer, avalanche per round, byte dependencies.

The round explorer follows CrypTool 2's AES visualisation: the key expansion beside the state,
jump to any round, step through SubBytes / ShiftRows / MixColumns / AddRoundKey with the 4x4
state before and after each step (hex labels on a heatmap of byte values or of changed bytes).
"""
from __future__ import annotations

import ipywidgets as w
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from labkit import aes, bits
from labkit.widgets import COLORS, LabWidget, heatmap, hex_text

__all__ = ["RoundExplorer", "AvalancheView", "ByteDependencyView", "STEP_EXPLANATIONS"]

STEP_EXPLANATIONS = {
    "input": "the plaintext, written into the 4x4 state column by column",
    "add_round_key": "AddRoundKey: XOR with this round's key (the only step that uses the key)",
    "sub_bytes": "SubBytes: every byte b becomes S(b) = affine(b^-1 in GF(2^8)), the only non-linear step",
    "shift_rows": "ShiftRows: row r rotates left by r, so each column's bytes spread to four columns",
    "mix_columns": "MixColumns: each column is multiplied by a fixed 4x4 matrix over GF(2^8)",
}


def _grid_text(state: bytes) -> list[list[str]]:
    return [[f"{v:02x}" for v in row] for row in aes.state_matrix(state)]


def _read_key_and_block(key_text: str, block_text: str) -> tuple[bytes, bytes]:
    key = bits.parse_hex(key_text, what="key")
    if len(key) not in aes.KEY_SIZES:
        raise ValueError(f"key must be 16, 24 or 32 bytes (32, 48 or 64 hex digits), got {len(key)} bytes")
    return key, bits.parse_hex(block_text, length=16, what="plaintext")


class RoundExplorer(LabWidget):
    """Step through AES encryption: state before/after each step, round keys, play/step controls.

    State: ``key``, ``plaintext``, ``trace`` (:func:`labkit.aes.trace_encrypt`), ``round_keys``,
    ``before`` and ``after`` (the current step's :class:`~labkit.aes.TraceStep` pair).
    """

    def __init__(self, key: str = "000102030405060708090a0b0c0d0e0f",
                 plaintext: str = "00112233445566778899aabbccddeeff") -> None:
        super().__init__()
        self.key_box = hex_text("key (16/24/32 bytes)", key)
        self.plaintext_box = hex_text("plaintext (16 bytes)", plaintext)
        self.stage = w.IntSlider(value=0, min=0, max=40, description="step",
                                 continuous_update=False, layout=w.Layout(width="34em"))
        self.play = w.Play(value=0, min=0, max=40, interval=800, description="play")
        w.link((self.play, "value"), (self.stage, "value"))
        self.round_picker = w.Dropdown(options=list(range(11)), value=0, description="jump to round")
        self.previous = w.Button(description="◀ step", layout=w.Layout(width="7em"))
        self.next = w.Button(description="step ▶", layout=w.Layout(width="7em"))
        self.colour = w.ToggleButtons(options=["byte value", "changed bytes"], value="byte value",
                                      description="colour")
        self.info = w.HTML()
        self.previous.on_click(lambda _: self.step_by(-1))
        self.next.on_click(lambda _: self.step_by(+1))
        self.round_picker.observe(self._jump, names="value")

        self.figure = go.FigureWidget(make_subplots(rows=1, cols=2, subplot_titles=("before", "after"),
                                                    horizontal_spacing=0.08))
        for col in (1, 2):
            self.figure.add_trace(go.Heatmap(z=np.zeros((4, 4)), text=[[""] * 4] * 4,
                                             texttemplate="%{text}", zmin=0, zmax=255,
                                             colorscale="Viridis", showscale=False,
                                             textfont=dict(size=16)), row=1, col=col)
            self.figure.update_yaxes(autorange="reversed", tickvals=list(range(4)),
                                     ticktext=[f"row {r}" for r in range(4)], row=1, col=col)
            self.figure.update_xaxes(tickvals=list(range(4)), ticktext=[f"col {c}" for c in range(4)],
                                     row=1, col=col)
        self.figure.update_layout(height=330, width=720, margin=dict(l=50, r=20, t=40, b=30))
        self.key_figure = heatmap(np.zeros((11, 16)), text=[[""] * 16] * 11, title="round keys (key expansion)",
                                  colorscale="Greys", zmin=0, zmax=255, showscale=False, height=380,
                                  width=720)
        self.key_figure.data[0].textfont = dict(size=11)

        self.key = self.plaintext = None
        self.trace: list[aes.TraceStep] = []
        self.round_keys: list[bytes] = []
        self.before = self.after = None
        self._jumping = False
        self.watch(self.key_box, self.plaintext_box, self.stage, self.colour)
        self.refresh()

    # -- controls -------------------------------------------------------------------------------
    def step_by(self, delta: int) -> None:
        """Move one step forward or back (the step buttons)."""
        self.stage.value = int(np.clip(self.stage.value + delta, 0, self.stage.max))

    def _jump(self, change) -> None:
        if self._jumping or not self.trace:
            return
        rnd = change["new"]
        first = next(i for i, s in enumerate(self.trace) if s.round == rnd)
        self.stage.value = first + (1 if rnd == 0 else 0)

    # -- state ----------------------------------------------------------------------------------
    def update(self) -> None:
        key, plaintext = _read_key_and_block(self.key_box.value, self.plaintext_box.value)
        if (key, plaintext) != (self.key, self.plaintext):
            self.key, self.plaintext = key, plaintext
            self.trace = aes.trace_encrypt(key, plaintext)
            self.round_keys = aes.expand_key(key)
            last = len(self.trace) - 1
            self.stage.max = self.play.max = last
            self._jumping = True
            self.round_picker.options = list(range(len(self.round_keys)))
            self._jumping = False
            self._draw_keys()
        k = min(self.stage.value, len(self.trace) - 1)
        self.after = self.trace[k]
        self.before = self.trace[max(k - 1, 0)]
        self._jumping = True
        self.round_picker.value = self.after.round
        self._jumping = False
        self._draw_states()

    def _draw_keys(self) -> None:
        z = np.array([list(rk) for rk in self.round_keys])
        with self.key_figure.batch_update():
            self.key_figure.data[0].z = z
            self.key_figure.data[0].text = [[f"{v:02x}" for v in row] for row in z]
            self.key_figure.data[0].y = [f"k{r}" for r in range(len(z))]
            self.key_figure.layout.height = 60 + 28 * len(z)

    def _draw_states(self) -> None:
        before, after = self.before.state, self.after.state
        changed = (aes.state_matrix(before) != aes.state_matrix(after)).astype(float)
        by_value = self.colour.value == "byte value"
        with self.figure.batch_update():
            for trace, state in zip(self.figure.data, (before, after)):
                trace.z = aes.state_matrix(state) if by_value else changed
                trace.zmax = 255 if by_value else 1
                trace.colorscale = "Viridis" if by_value else [[0, COLORS["same"]], [1, COLORS["changed"]]]
                trace.text = _grid_text(state)
        with self.key_figure.batch_update():
            rnd = self.after.round
            self.key_figure.layout.shapes = [dict(type="rect", x0=-0.5, x1=15.5, y0=rnd - 0.5, y1=rnd + 0.5,
                                                  line=dict(color=COLORS["changed"], width=3))]
        rk = (f"<br>round key k{self.after.round} = <code>{bits.to_hex(self.after.round_key, group=4)}</code>"
              if self.after.round_key else "")
        self.info.value = (f"<b>round {self.after.round}, {self.after.step}</b> "
                           f"(step {self.stage.value} of {self.stage.max}): "
                           f"{STEP_EXPLANATIONS[self.after.step]}{rk}<br>state = "
                           f"<code>{bits.to_hex(self.after.state, group=4)}</code>")

    def build(self) -> w.Widget:
        return w.VBox([
            self.key_box, self.plaintext_box,
            w.HBox([self.play, self.previous, self.next, self.round_picker]),
            self.stage, self.colour, self.info, self.message, self.figure, self.key_figure,
        ])


class AvalancheView(LabWidget):
    """Flip one plaintext or key bit, see which state bits change after each round (averaged over
    random keys and blocks): ``flips`` is (rounds+1, 128), ``counts`` its row sums."""

    def __init__(self, samples: int = 256) -> None:
        super().__init__()
        self.target = w.ToggleButtons(options=["plaintext", "key"], value="plaintext", description="flip a")
        self.bit = w.IntSlider(value=0, min=0, max=127, description="bit", continuous_update=False)
        self.samples = w.IntSlider(value=samples, min=16, max=1024, step=16, description="samples",
                                   continuous_update=False)
        self.figure = heatmap(np.zeros((11, 128)), title="P(state bit changed) after each round",
                              y=[f"round {r}" for r in range(11)], zmin=0, zmax=1,
                              colorscale="Oranges", height=360)
        self.counts_figure = go.FigureWidget([
            go.Bar(x=list(range(11)), y=[0] * 11, marker_color=COLORS["accent"], name="changed bits"),
            go.Scatter(x=[0, 10], y=[64, 64], mode="lines", line=dict(dash="dash", color=COLORS["changed"]),
                       name="64 = half of the state"),
        ])
        self.counts_figure.update_layout(height=300, title="mean number of changed bits per round",
                                         xaxis_title="round", yaxis=dict(range=[0, 128]),
                                         margin=dict(l=40, r=20, t=40, b=40))
        self.flips = self.counts = None
        self.watch(self.target, self.bit, self.samples)
        self.refresh()

    def update(self) -> None:
        self.flips = aes.avalanche_per_round(self.bit.value, target=self.target.value,
                                             samples=self.samples.value)
        self.counts = self.flips.sum(axis=1)
        with self.figure.batch_update():
            self.figure.data[0].z = self.flips
        with self.counts_figure.batch_update():
            self.counts_figure.data[0].y = self.counts

    def build(self) -> w.Widget:
        return w.VBox([w.HBox([self.target, self.bit]), self.samples, self.message,
                       self.counts_figure, self.figure])


class ByteDependencyView(LabWidget):
    """Pick a byte of any intermediate state; every earlier byte it depends on lights up.

    ``masks`` is :func:`labkit.aes.byte_dependencies` (stage+1, 16); ``input_bytes`` lists the
    plaintext bytes the chosen byte depends on.
    """

    def __init__(self, rounds: int = 3) -> None:
        super().__init__()
        self.names = aes.stage_names(rounds)
        self.rounds = rounds
        labels = [f"r{r} {step}" for r, step in self.names]
        self.stage = w.SelectionSlider(options=list(zip(labels, range(len(labels)))),
                                       value=len(labels) - 1, description="state",
                                       continuous_update=False, layout=w.Layout(width="40em"))
        self.byte = w.IntSlider(value=0, min=0, max=15, description="byte", continuous_update=False)
        self.figure = heatmap(np.zeros((len(labels), 16)), y=labels,
                              x=[f"{b} (r{b % 4},c{b // 4})" for b in range(16)],
                              title="bytes the chosen byte depends on (orange) and the chosen byte (red)",
                              colorscale=[[0, "#f1f3f5"], [0.5, COLORS["changed"]], [1, COLORS["error"]]],
                              zmin=0, zmax=2, showscale=False, height=60 + 22 * len(labels))
        self.summary = w.HTML()
        self.masks = None
        self.input_bytes: list[int] = []
        self.watch(self.stage, self.byte)
        self.refresh()

    def update(self) -> None:
        stage = self.stage.value
        self.masks = aes.byte_dependencies(stage, self.byte.value, rounds=self.rounds)
        z = np.full((len(self.names), 16), np.nan)
        z[: stage + 1] = self.masks.astype(float)
        z[stage, self.byte.value] = 2
        self.input_bytes = np.nonzero(self.masks[0])[0].tolist()
        with self.figure.batch_update():
            self.figure.data[0].z = z
        r, step = self.names[stage]
        self.summary.value = (f"byte {self.byte.value} after round {r} {step} depends on "
                              f"<b>{len(self.input_bytes)}</b> of the 16 plaintext bytes: {self.input_bytes}")

    def build(self) -> w.Widget:
        return w.VBox([self.stage, self.byte, self.summary, self.message, self.figure])
