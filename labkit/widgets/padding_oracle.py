"""Unit 04b view: the padding-oracle attack recovering a CBC message byte by byte.

The attack runs once per message (:func:`labkit.padding_oracle.decrypt` against a
:class:`~labkit.padding_oracle.CbcPaddingServer`); the slider then replays it: which bytes are
known after each step, and how many oracle queries each byte cost (at most 256, about 128 on
average). The bar chart is an SVG in an ``ipywidgets.HTML``: no plotly, so it costs nothing to load.
"""
from __future__ import annotations

import html

import ipywidgets as w
import numpy as np

from labkit import modes, padding_oracle
from labkit.widgets import COLORS, LabWidget

__all__ = ["PaddingOracleView"]


def _shown(byte: int) -> str:
    return chr(byte) if 32 <= byte < 127 else "·"


class PaddingOracleView(LabWidget):
    """Type a message; the server encrypts it with AES-CBC under its own key and the attack
    decrypts it from padding answers alone. Move ``step`` to replay the recovery.

    State: ``result`` (the attack's :class:`~labkit.padding_oracle.PaddingOracleResult`),
    ``known`` (byte index -> recovered byte after ``step`` steps) and ``queries_so_far``.
    """

    MAX_LENGTH = 48  # three blocks: the attack takes about a second in pure Python AES

    def __init__(self, message: str = "PIN 4711, launch code in drawer 3", seed: int = 0) -> None:
        super().__init__()
        rng = np.random.default_rng(seed)
        self._key, self.iv = rng.bytes(16), rng.bytes(16)
        self.box = w.Text(value=message, description="message", continuous_update=False,
                          layout=w.Layout(width="40em"))
        self.step = w.IntSlider(value=0, min=0, max=16, description="bytes found")
        self.chart = w.HTML()
        self.bars: list[int] = []  # queries of each byte found so far (0 for bytes not found yet)
        self.text = w.HTML()
        self.result = None
        self.known: dict[int, int] = {}
        self.queries_so_far = 0
        self._message_bytes = b""
        self.box.observe(self._new_message, names="value")
        self.watch(self.step)
        self._new_message()

    def _attack(self) -> None:
        data = self.box.value.encode("utf-8")
        if not data:
            raise ValueError("message must not be empty")
        if len(data) > self.MAX_LENGTH:
            raise ValueError(f"message must be at most {self.MAX_LENGTH} bytes, got {len(data)}")
        ciphertext = modes.cbc_encrypt(self._key, self.iv, modes.pkcs7_pad(data))
        self.result = padding_oracle.decrypt(padding_oracle.CbcPaddingServer(self._key), self.iv, ciphertext)
        self._message_bytes = data
        self.step.max = len(ciphertext)

    def _new_message(self, change=None) -> None:
        try:
            self._attack()
        except (ValueError, TypeError) as err:
            self.show_error(str(err))
            return
        if self.step.value != self.step.max:
            self.step.value = self.step.max  # refreshes through the slider's observer
        else:
            self.refresh()

    def update(self) -> None:
        if self.result is None:
            raise ValueError("no message attacked yet")
        done = self.result.order[: self.step.value]
        self.known = {i: self.result.padded_plaintext[i] for i, _ in done}
        self.queries_so_far = sum(q for _, q in done)
        n = len(self.result.padded_plaintext)
        self.bars = [q if i in self.known else 0 for i, q in enumerate(self.result.queries_per_byte)]
        self.chart.value = _bar_chart(self.bars)
        shown = "".join(_shown(self.known[i]) if i in self.known else "_" for i in range(n))
        self.text.value = (
            f"<code>{html.escape(shown)}</code><br>{len(self.known)} of {n} bytes (padding included) after "
            f"{self.queries_so_far} queries; the whole message took {self.result.queries} "
            f"({self.result.queries / n:.0f} per byte). "
            + (f"<b style='color:{COLORS['ok']}'>recovered exactly</b>"
               if len(self.known) == n and self.result.plaintext == self._message_bytes else ""))

    def build(self) -> w.Widget:
        return w.VBox([self.box, self.message, self.step, self.text, self.chart])


def _bar_chart(bars: list[int], height: int = 120, width: int = 12) -> str:
    """Queries per byte as an SVG bar chart on a 0..256 scale (grey ticks mark bytes not found yet)."""
    shapes = []
    for i, q in enumerate(bars):
        h = max(2, round(height * q / 256))
        colour = COLORS["accent"] if q else COLORS["same"]
        shapes.append(f'<rect x="{i * width}" y="{height - h}" width="{width - 2}" height="{h}" fill="{colour}">'
                      f"<title>byte {i}: {q} queries</title></rect>")
    line = f'<line x1="0" x2="{len(bars) * width}" y1="0" y2="0" stroke="{COLORS["error"]}" stroke-dasharray="4"/>'
    return (f'<div>oracle queries per plaintext byte (dashed line: 256)</div>'
            f'<svg width="{len(bars) * width}" height="{height + 2}">{line}{"".join(shapes)}</svg>')
