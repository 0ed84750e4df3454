"""The landing notebook's table of contents with the student's progress per unit (chapter, part, appendix)."""
from __future__ import annotations

import html

import ipywidgets as w
import plotly.graph_objects as go

from labkit import course, progress
from labkit.widgets import COLORS, LabWidget

__all__ = ["ProgressView"]


class ProgressView(LabWidget):
    """Units as links with exercises passed / registered, and a bar per unit, in course order.

    ``folder`` holds the unit notebooks (chapters, parts such as ``06b``, appendices such as ``A1``;
    the landing notebook passes its own, ``"."``),
    ``exercise_ids`` the registered exercises (``labkit.exercises.registry()``), ``path`` the
    progress file (None: :func:`labkit.progress.progress_path`).
    State: :attr:`rows` (a list of :class:`labkit.course.ChapterProgress`), re-read from the
    progress file by the *Refresh* button (checks passed in other notebooks appear then).
    """

    def __init__(self, folder, exercise_ids, path=None) -> None:
        super().__init__()
        self.path, self.folder, self.exercise_ids = path, folder, sorted(exercise_ids)
        self.rows: list[course.ChapterProgress] = []
        self.button = w.Button(description="Refresh", icon="refresh", tooltip="re-read the progress file")
        self.button.on_click(lambda _: self.refresh())
        self.table = w.HTML()
        self.figure = go.FigureWidget(go.Bar(orientation="h", marker_color=COLORS["ok"]))
        self.figure.update_layout(height=320, margin=dict(l=10, r=10, t=30, b=30),
                                  title="exercises passed per unit", xaxis=dict(range=[0, 100], ticksuffix=" %"),
                                  yaxis=dict(autorange="reversed"))
        self.refresh()

    @property
    def done(self) -> int:
        return sum(row.done for row in self.rows)

    @property
    def total(self) -> int:
        return sum(row.total for row in self.rows)

    def update(self) -> None:
        self.rows = course.summary(self.folder, self.exercise_ids, progress.load(self.path))
        labels = [f"{row.number} {row.title}" for row in self.rows]
        with self.figure.batch_update():
            bar = self.figure.data[0]
            bar.y = labels
            bar.x = [100 * row.fraction for row in self.rows]
            bar.text = [f"{row.done}/{row.total}" for row in self.rows]
            self.figure.layout.height = max(320, 22 * len(self.rows) + 80)  # one readable bar per unit
        self.table.value = self._table_html()

    def _table_html(self) -> str:
        lines = ['<table style="border-collapse:collapse">',
                 "<tr><th style='text-align:left'>#</th><th style='text-align:left'>unit</th>"
                 "<th style='text-align:left'>exercises passed</th></tr>"]
        for row in self.rows:
            title = html.escape(row.title)
            link = f'<a href="{html.escape(row.notebook)}">{title}</a>' if row.notebook else title
            mark = " ✔" if row.total and row.done == row.total else ""
            lines.append(f"<tr><td>{row.number}</td><td>{link}</td><td>{row.done} / {row.total}{mark}</td></tr>")
        where = progress.progress_path() if self.path is None else self.path
        lines.append(f"</table><p style='color:#666'>{self.done} of {self.total} exercises passed; "
                     f"progress file: <code>{html.escape(str(where or 'recording off'))}</code></p>")
        return "".join(lines)

    def build(self) -> w.Widget:
        return w.VBox([w.HBox([self.button]), self.table, self.figure, self.message])
