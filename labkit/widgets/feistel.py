"""Chapter 01 widget: step through a Feistel network, encryption and decryption side by side."""
from __future__ import annotations

import html

import ipywidgets as w
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from labkit import bits, feistel
from labkit.widgets import COLORS, LabWidget, hex_text

__all__ = ["FeistelStepper", "round_keys"]


def round_keys(master: int, rounds: int, half_bits: int) -> list[int]:
    """Toy key schedule for the demo: K_i = rotate_left(master, 3 i) xor i (an n-bit int each)."""
    mask = (1 << half_bits) - 1
    out = []
    for i in range(1, rounds + 1):
        s = (3 * i) % half_bits
        out.append((((master << s) | (master >> (half_bits - s))) & mask) ^ (i & mask))
    return out


class FeistelStepper(LabWidget):
    """Choose a round function, a block and the number of rounds; see L_i and R_i of every round
    for encryption (left) and for decryption of the result (right), which runs the same circuit
    with the round keys reversed and ends at the plaintext."""

    HALF_BITS = 16

    def __init__(self, kind: str = "x and k", block: str = "0123abcd", key: str = "5a3c",
                 rounds: int = 4) -> None:
        super().__init__()
        n = self.HALF_BITS
        self.kind = w.Dropdown(options=list(feistel.ROUND_FUNCTION_KINDS), value=kind,
                               description="f(x)")
        self.block = hex_text("block (hex)", block, width="18em")
        self.key = hex_text("key (hex)", key, width="14em")
        self.rounds = w.IntSlider(value=rounds, min=1, max=16, description="rounds")
        self.table = w.HTML()
        self.network: feistel.Feistel | None = None
        self.enc_states: list[tuple[int, int]] = []
        self.dec_states: list[tuple[int, int]] = []
        self.ciphertext: int | None = None
        self.recovered: int | None = None
        fig = make_subplots(rows=1, cols=2, subplot_titles=("encryption", "decryption (keys reversed)"),
                            horizontal_spacing=0.12)
        light = "#f1f3f5"
        scale = [[0, light], [0.25, light], [0.25, COLORS["left"]], [0.5, COLORS["left"]],
                 [0.5, light], [0.75, light], [0.75, COLORS["right"]], [1, COLORS["right"]]]
        for col in (1, 2):
            fig.add_trace(go.Heatmap(z=[[0]], colorscale=scale, zmin=0, zmax=3, showscale=False,
                                     hovertemplate="%{y}, bit %{x}<extra></extra>"), row=1, col=col)
        fig.update_yaxes(autorange="reversed")
        fig.update_xaxes(tickvals=[n / 2 - 0.5, 1.5 * n - 0.5], ticktext=["L", "R"])
        fig.update_layout(height=420, margin=dict(l=50, r=10, t=40, b=30))
        self.figure = go.FigureWidget(fig)
        self.watch(self.kind, self.block, self.key, self.rounds)
        self.refresh()

    def _grid(self, states):
        """Rows of L|R bits coded 0/2 (L) and 1/3 (R) with 0 the light colour."""
        n = self.HALF_BITS
        rows = []
        for left, right in states:
            lb, rb = bits.int_to_bits(left, n), bits.int_to_bits(right, n)
            rows.append(np.concatenate([lb * 1, rb * 3]))
        return np.array(rows)

    def update(self) -> None:
        n = self.HALF_BITS
        block = int.from_bytes(bits.parse_hex(self.block.value, length=2 * n // 8, what="block"), "big")
        master = int.from_bytes(bits.parse_hex(self.key.value, length=n // 8, what="key"), "big")
        keys = round_keys(master, self.rounds.value, n)
        functions = [feistel.make_round_function(self.kind.value, k, n) for k in keys]
        self.network = feistel.Feistel(functions, n)
        self.enc_states = self.network.trace(block)
        self.ciphertext = self.network.encrypt(block)
        self.dec_states = self.network.decrypt_trace(self.ciphertext)
        self.recovered = self.network.decrypt(self.ciphertext)
        labels = [f"{i}" for i in range(len(self.enc_states))]
        with self.figure.batch_update():
            for trace, states in zip(self.figure.data, (self.enc_states, self.dec_states)):
                trace.z = self._grid(states)
                trace.y = labels
        self.table.value = self._html_table(keys)

    def _html_table(self, keys) -> str:
        n = self.HALF_BITS
        digits = n // 4

        def hx(v):
            return f"<code>{v:0{digits}x}</code>"

        head = ("<tr><th>i</th><th>K_i</th><th>L_i</th><th>R_i</th><th></th>"
                "<th>K used</th><th>L_i</th><th>R_i</th></tr>")
        body = []
        for i, ((el, er), (dl, dr)) in enumerate(zip(self.enc_states, self.dec_states)):
            k_enc = hx(keys[i - 1]) if i else ""
            k_dec = hx(keys[::-1][i - 1]) if i else ""
            body.append(f"<tr><td>{i}</td><td>{k_enc}</td><td>{hx(el)}</td><td>{hx(er)}</td>"
                        f"<td></td><td>{k_dec}</td><td>{hx(dl)}</td><td>{hx(dr)}</td></tr>")
        ok = self.recovered == self.network.join(*self.enc_states[0])
        verdict = (f'<b style="color:{COLORS["ok" if ok else "error"]}">'
                   f'ciphertext {self.ciphertext:0{2 * digits}x} decrypts to '
                   f'{self.recovered:0{2 * digits}x}</b> '
                   f'({html.escape(feistel.ROUND_FUNCTION_KINDS[self.kind.value][0])})')
        return f"{verdict}<table style='font-size:90%'>{head}{''.join(body)}</table>"

    def build(self) -> w.Widget:
        controls = w.VBox([w.HBox([self.kind, self.rounds]), w.HBox([self.block, self.key])])
        return w.VBox([controls, self.message, self.figure, self.table])
