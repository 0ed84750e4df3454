"""Chapter 10's view: change one byte of a delivered model anywhere and watch the phone refuse it."""
from __future__ import annotations

import html

import ipywidgets as w
import plotly.graph_objects as go

from labkit import weights
from labkit.widgets import COLORS, LabWidget

__all__ = ["TamperView", "file_layout"]


def file_layout(sealed: bytes) -> list[tuple[str, int, int]]:
    """``(part, start, end)`` byte ranges of a sealed container: its header, then each tensor."""
    header = weights.parse_header(sealed, len(sealed))
    parts = [("header (signed, MAC'd)", 0, header.data_start)]
    for t in header.parsed.tensors:
        parts.append((t.name, header.data_start + t.begin, header.data_start + t.end))
    return parts


class TamperView(LabWidget):
    """Flip bits of one byte of a sealed model in transit; the device opens it or says why not.

    State: :attr:`part` (which part of the file the byte belongs to), :attr:`outcome` ("opened" or
    the refusal's class name) and :attr:`detail`.
    """

    def __init__(self, sealed: bytes, device) -> None:
        super().__init__()
        self.sealed, self.device = bytes(sealed), device
        self.layout = file_layout(self.sealed)
        self.offset = w.IntSlider(value=self.layout[1][1] + 100, min=0, max=len(self.sealed) - 1,
                                  description="byte offset", continuous_update=False,
                                  layout=w.Layout(width="40em"), style={"description_width": "initial"})
        self.mask = w.Dropdown(options=[("flip the lowest bit", 0x01), ("flip the highest bit", 0x80),
                                        ("flip all bits", 0xFF), ("change nothing", 0x00)],
                               value=0x01, description="change")
        self.result = w.HTML()
        sizes = [end - start for _, start, end in self.layout]
        self.figure = go.FigureWidget(
            [go.Bar(y=["file"] * len(self.layout), x=sizes, orientation="h", name=name,
                    text=[name], hovertemplate=f"{name}: %{{x}} bytes<extra></extra>")
             for (name, _, _), _size in zip(self.layout, sizes)]
            + [go.Scatter(x=[0], y=["file"], mode="markers", name="changed byte",
                          marker=dict(symbol="line-ns", size=40, line=dict(width=3, color=COLORS["error"])))])
        self.figure.update_layout(barmode="stack", height=180, showlegend=False,
                                  margin=dict(l=40, r=10, t=30, b=30), title="the delivered file, byte by byte",
                                  xaxis=dict(title="offset (bytes)"))
        self.part = self.outcome = self.detail = ""
        self.watch(self.offset, self.mask)
        self.refresh()

    def update(self) -> None:
        offset = self.offset.value
        self.part = next(name for name, start, end in self.layout if start <= offset < end) \
            if offset < self.layout[-1][2] else "end of file"
        tampered = bytearray(self.sealed)
        tampered[offset] ^= self.mask.value
        try:
            self.device.check(bytes(tampered))
        except weights.WeightsError as err:
            self.outcome, self.detail = type(err).__name__, str(err)
        else:
            self.outcome, self.detail = "opened", "the device accepted the file"
        with self.figure.batch_update():
            self.figure.data[-1].x = [offset]
        colour = COLORS["ok"] if (self.outcome == "opened") == (self.mask.value == 0) else COLORS["error"]
        self.result.value = (f"byte {offset} lies in <b>{html.escape(self.part)}</b>; the phone: "
                             f"<b style='color:{colour}'>{html.escape(self.outcome)}</b> "
                             f"<span style='color:#666'>({html.escape(self.detail[:160])})</span>")

    def build(self) -> w.Widget:
        return w.VBox([w.HBox([self.offset, self.mask]), self.result, self.figure, self.message])
