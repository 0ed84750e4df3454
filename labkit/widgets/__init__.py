"""Interactive views, one per concept, all built on :class:`LabWidget`.

The pattern (every chapter's widget follows it):

- state lives in plain attributes (``self.trace``, ``self.error``...), computed by ``update()``
  from the controls' values, so tests drive a widget by setting ``control.value`` and asserting on
  the state and on the figure's data, with no browser;
- controls are ordinary ipywidgets; figures are plotly ``FigureWidget``s updated in place;
- bad input never raises out of a callback: ``ValueError``/``TypeError`` from ``update()`` is
  shown in the widget's message line and kept in ``self.error``.
"""
from __future__ import annotations

import html
from typing import Iterable, Sequence

import ipywidgets as w
import numpy as np
import plotly.graph_objects as go
from IPython.display import display
from plotly.subplots import make_subplots

from labkit.widgets import bundle

bundle.use_ascii_bundle()  # each FigureWidget's front end held and sent as ASCII: half the bytes (bundle)

__all__ = [
    "LabWidget",
    "hex_text",
    "heatmap",
    "bit_grid",
    "WidgetSelfCheck",
    "COLORS",
]

COLORS = {
    "ok": "#1a7f37",
    "error": "#b3261e",
    "accent": "#3b5bdb",
    "changed": "#e8590c",
    "same": "#dee2e6",
    "left": "#4c6ef5",
    "right": "#f08c00",
}


class LabWidget:
    """Base class: subclasses build controls, call :meth:`watch`, and implement :meth:`update`."""

    def __init__(self) -> None:
        self.error: str | None = None
        self.message = w.HTML(layout=w.Layout(min_height="1.5em"))
        self._widget: w.Widget | None = None

    # -- subclass hooks ---------------------------------------------------------------------------
    def update(self) -> None:
        """Recompute the state from the controls and redraw; raise ValueError on bad input."""
        raise NotImplementedError

    def build(self) -> w.Widget:
        """Arrange controls, figures and :attr:`message` into one widget."""
        raise NotImplementedError

    # -- machinery --------------------------------------------------------------------------------
    def watch(self, *controls: w.Widget) -> None:
        """Refresh whenever one of ``controls`` changes value."""
        for control in controls:
            control.observe(self.refresh, names="value")

    def refresh(self, change=None) -> None:
        try:
            self.update()
        except (ValueError, TypeError) as err:
            self.show_error(str(err))
        else:
            self.error = None
            self.message.value = ""

    def show_error(self, text: str) -> None:
        self.error = text
        self.message.value = (
            f'<span style="color:{COLORS["error"]}">&#9888; {html.escape(text)}</span>'
        )

    @property
    def widget(self) -> w.Widget:
        if self._widget is None:
            self._widget = self.build()
        return self._widget

    def _ipython_display_(self) -> None:
        display(self.widget)


def hex_text(description: str, value: str, *, width: str = "34em") -> w.Text:
    """A monospace text box for hex input."""
    return w.Text(
        value=value,
        description=description,
        continuous_update=False,
        layout=w.Layout(width=width),
        style={"description_width": "initial"},
    )


def heatmap(
    z,
    *,
    title: str = "",
    x: Sequence | None = None,
    y: Sequence | None = None,
    text: Iterable | None = None,
    colorscale: str = "Blues",
    zmin: float | None = None,
    zmax: float | None = None,
    height: int = 360,
    width: int | None = None,
    showscale: bool = True,
):
    """A plotly FigureWidget heatmap with cell labels, the building block of most views."""
    z = np.asarray(z)
    if (zmin is None) != (zmax is None):  # plotly.js ignores a lone bound: complete it from the data
        zmin = float(np.nanmin(z)) if zmin is None else zmin
        zmax = float(np.nanmax(z)) if zmax is None else zmax
    trace = go.Heatmap(
        z=z,
        x=x,
        y=y,
        text=None if text is None else np.asarray(text),
        texttemplate="%{text}" if text is not None else None,
        colorscale=colorscale,
        zmin=zmin,
        zmax=zmax,
        showscale=showscale,
        hoverongaps=False,
    )
    fig = go.FigureWidget(trace)
    fig.update_layout(
        title=title,
        height=height,
        width=width,
        margin=dict(l=40, r=20, t=40 if title else 10, b=30),
        yaxis=dict(autorange="reversed"),
    )
    return fig


#: The two colours of a bit grid: 0 light, 1 dark.
BIT_COLORSCALE = [[0, "#f1f3f5"], [1, "#364fc7"]]


def bit_grid(bits_rows, *, title: str = "", row_labels=None, height: int | None = None):
    """Rows of bits as a grid of coloured squares (0 = light, 1 = dark)."""
    z = np.asarray(bits_rows, dtype=float)
    if z.ndim == 1:
        z = z[None, :]
    fig = heatmap(
        z,
        title=title,
        y=row_labels,
        colorscale=BIT_COLORSCALE,
        zmin=0,
        zmax=1,
        showscale=False,
        height=height or max(120, 28 * z.shape[0] + 60),
    )
    fig.data[0].update(xgap=1, ygap=1)
    return fig


def bit_grid_panels(panels: dict, *, title: str = "", row_title: str = "", height: int = 330):
    """Several bit grids side by side, one per ``{panel title: rows of bits}``, for comparing them."""
    fig = go.FigureWidget(make_subplots(rows=1, cols=len(panels), subplot_titles=list(panels)))
    for col, rows in enumerate(panels.values(), start=1):
        fig.add_trace(go.Heatmap(z=np.asarray(rows, dtype=float), colorscale=BIT_COLORSCALE, zmin=0, zmax=1,
                                 showscale=False), row=1, col=col)
    fig.update_yaxes(autorange="reversed")
    fig.update_yaxes(title_text=row_title, col=1)
    fig.update_layout(title=title, height=height, margin=dict(t=60, b=30))
    return fig


class WidgetSelfCheck(LabWidget):
    """Chapter 00's check that widgets render and call back into Python.

    Moving the slider squares the value in Python and redraws a plotly bar; if the student sees
    the number and the bar change, the widget and plotly front-ends are both working.
    """

    def __init__(self) -> None:
        super().__init__()
        self.slider = w.IntSlider(value=3, min=0, max=10, description="x")
        self.result = w.HTML()
        self.figure = go.FigureWidget(go.Bar(x=["x", "x²"], y=[0, 0], marker_color=COLORS["accent"]))
        self.figure.update_layout(height=260, width=360, margin=dict(l=30, r=10, t=30, b=30),
                                  title="If this bar moves, plotly works")
        self.squared = None
        self.watch(self.slider)
        self.refresh()

    def update(self) -> None:
        x = self.slider.value
        self.squared = x * x
        self.result.value = (
            f'<b style="color:{COLORS["ok"]}">Widgets work:</b> Python computed {x}² = {self.squared}'
        )
        self.figure.data[0].y = [x, self.squared]

    def build(self) -> w.Widget:
        return w.VBox([self.slider, self.result, self.figure, self.message])
