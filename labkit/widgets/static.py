"""Static snapshots of widgets, for the lab's read-only HTML rendering (``make book``).

A live widget needs a kernel. In the book, each widget is shown as it stood when its cell ran:
plotly figures stay interactive plotly charts (plotly.js is loaded once by the page), controls are
drawn disabled with their values, HTML and output widgets show their content. (Embedding the
ipywidgets state instead would need the widget manager from a CDN, would repeat plotly's 5 MB
anywidget bundle for every figure, and would miss the in-place updates figures receive.)

:func:`enable_static_display` registers :func:`snapshot_html` as the ``text/html`` formatter of
every ipywidgets widget in the running IPython kernel; the book (``labkit-build-book``) calls it.
"""
from __future__ import annotations

import html
import itertools
from collections.abc import Mapping

import ipywidgets as w
import plotly.io as pio
from IPython import get_ipython
from plotly.basewidget import BaseFigureWidget

__all__ = ["snapshot_html", "enable_static_display"]

_ids = itertools.count()


#: ipywidgets' public single-choice widgets (they share ``options`` and ``label``).
_SINGLE_SELECTIONS = (w.Dropdown, w.RadioButtons, w.Select, w.ToggleButtons, w.SelectionSlider)


def _option_labels(options) -> list[str]:
    """The labels ipywidgets shows for ``options``: a mapping's keys, the first item of each
    ``(label, value)`` pair, or ``str`` of a plain option (ipywidgets' documented forms)."""
    if isinstance(options, Mapping):
        return [str(label) for label in options]
    return [str(o[0]) if isinstance(o, (tuple, list)) and len(o) == 2 else str(o) for o in options]


def _label(widget) -> str:
    text = getattr(widget, "description", "") or ""
    return f'<span class="lab-static-label">{html.escape(text)}</span> ' if text else ""


def _figure_html(figure) -> str:
    return pio.to_html(figure, full_html=False, include_plotlyjs=False,
                       div_id=f"lab-figure-{next(_ids)}", config={"displaylogo": False})


def _output_html(widget: w.Output) -> str:
    parts = []
    for out in widget.outputs:
        if out.get("output_type") == "stream":
            parts.append(f"<pre>{html.escape(out.get('text', ''))}</pre>")
            continue
        data = out.get("data", {})
        if "text/html" in data:
            parts.append(data["text/html"])
        elif "text/plain" in data:
            parts.append(f"<pre>{html.escape(data['text/plain'])}</pre>")
    return "".join(parts)


def snapshot_html(widget) -> str:
    """HTML showing ``widget`` (and its children) as it is now, without a kernel."""
    if isinstance(widget, BaseFigureWidget):
        return f'<div class="lab-static-figure">{_figure_html(widget)}</div>'
    if isinstance(widget, (w.Tab, w.Accordion, w.Stack)):
        titles = list(getattr(widget, "titles", ()) or ())
        parts = []
        for i, child in enumerate(widget.children):
            title = titles[i] if i < len(titles) and titles[i] else f"{i + 1}"
            parts.append(f"<details open><summary>{html.escape(str(title))}</summary>{snapshot_html(child)}</details>")
        return "".join(parts)
    if isinstance(widget, w.Box):
        direction = "row" if isinstance(widget, w.HBox) else "column"
        children = "".join(snapshot_html(child) for child in widget.children)
        return (f'<div class="lab-static-box" style="display:flex;flex-direction:{direction};'
                f'flex-wrap:wrap;gap:4px 12px;align-items:flex-start">{children}</div>')
    if isinstance(widget, w.Output):
        return _output_html(widget)
    if isinstance(widget, (w.HTML, w.HTMLMath)):
        return f"<div>{_label(widget)}{widget.value}</div>"
    if isinstance(widget, w.Label):
        return f"<div>{html.escape(str(widget.value))}</div>"
    if isinstance(widget, w.Button):
        return f"<button disabled>{html.escape(widget.description or '')}</button>"
    if isinstance(widget, w.Checkbox):
        checked = " checked" if widget.value else ""
        return f"<label><input type='checkbox' disabled{checked}> {html.escape(widget.description)}</label>"
    if isinstance(widget, (w.IntSlider, w.FloatSlider, w.FloatLogSlider)):
        return (f"<div>{_label(widget)}<input type='range' disabled min='{widget.min}' max='{widget.max}' "
                f"value='{widget.value}'> <code>{html.escape(str(widget.value))}</code></div>")
    if isinstance(widget, (w.IntRangeSlider, w.FloatRangeSlider, w.SelectionRangeSlider)):
        return f"<div>{_label(widget)}<code>{html.escape(str(widget.value))}</code></div>"
    if isinstance(widget, (w.Text, w.Textarea)) and not isinstance(widget, w.Password):
        value = html.escape(str(widget.value), quote=True)
        if isinstance(widget, w.Textarea):
            return f"<div>{_label(widget)}<textarea disabled rows='3' cols='60'>{value}</textarea></div>"
        return f"<div>{_label(widget)}<input type='text' disabled size='{max(20, len(widget.value) + 2)}' value=\"{value}\"></div>"
    if isinstance(widget, _SINGLE_SELECTIONS):
        labels = _option_labels(widget.options)
        options = "".join(f"<option{' selected' if label == widget.label else ''}>{html.escape(label)}</option>" for label in labels)
        return f"<div>{_label(widget)}<select disabled>{options}</select></div>"
    if hasattr(widget, "value"):
        return f"<div>{_label(widget)}<code>{html.escape(str(widget.value))}</code></div>"
    return f"<div><code>{html.escape(type(widget).__name__)}</code></div>"


def enable_static_display() -> None:
    """Make every widget displayed from now on carry a static ``text/html`` snapshot."""
    shell = get_ipython()
    if shell is None:
        raise RuntimeError("enable_static_display() needs a running IPython kernel")
    formatter = shell.display_formatter.formatters["text/html"]
    formatter.for_type(w.Widget, snapshot_html)
