"""Build the lab's static, readable rendering with Sphinx and MyST-NB: one page per notebook, an index.

Usage: labkit-build-book [--out _book] [--edition student|instructor|both] [notebooks/NN_name.ipynb ...]

Two editions (``make book`` builds both, into ``_book/student`` and ``_book/instructor``):

- **student** (the one to publish): every notebook as a student gets it (``labkit-make-student``:
  solutions removed, checks kept, so an exercise shows "not answered yet"), no instructor notes;
- **instructor**: the notebooks with their worked solutions, and each unit's instructor notes.

Rendering, navigation, contents and search are Sphinx's (https://www.sphinx-doc.org), notebooks
and markdown are read by MyST-NB (https://myst-nb.readthedocs.io) with its own execution off. This
tool only prepares what the engine cannot: the repository stores just the outputs nbval compares
(``labkit-execute-notebooks``), so each notebook is first executed here in a kernel whose widgets
show static snapshots of their state (``labkit.widgets.static``: plotly figures stay interactive
charts, controls are drawn disabled with their values); MyST-NB cannot register that display
hook. Nothing is downloaded (the lab is offline by design): the pages load one local copy of
plotly.js and of MathJax 2 (from ``jupyter-server-mathjax``). ``index.html`` lists every unit in
course order (chapters, their parts such as ``06b``, appendices such as ``A1``) with its sections,
a table of exercises per unit and, in the instructor edition, each unit's instructor notes
(``notebooks/instructor/NN_name.md``, rendered to ``NN_name.notes.html``).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from sphinx.cmd.build import build_main

from labkit.course import notebook_paths, notebook_title, unit_number
from labkit_tools import make_student

ROOT = Path(__file__).resolve().parent.parent

EDITIONS = ("student", "instructor")

SETUP = ("from labkit.widgets.static import enable_static_display\n"
         "import plotly.io\n"
         "enable_static_display()\n"
         "plotly.io.renderers.default = 'plotly_mimetype'")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
PLOTLY_JSON = "application/vnd.plotly.v1+json"
NOTES_DIR = ROOT / "notebooks" / "instructor"
#: a link to a unit notebook (``06_x.ipynb``, ``06b_y.ipynb``, ``A1_z.ipynb``) from the notes' folder
UNIT_LINK = r"\]\(\.\./((?:\d\d[a-z]?|A\d)_[\w.-]+\.ipynb)\)"

#: Sphinx's configuration of the book (written as conf.py into the build's source folder).
CONF = """
project = "Deep Neural Crypto Lab"
html_title = "Deep Neural Crypto Lab ({edition} edition)"
extensions = ["myst_nb"]
nb_execution_mode = "off"            # outputs as this tool stored them: the engine executes nothing
nb_ipywidgets_js = {{}}               # widgets are static snapshots: no widget manager from a CDN
myst_enable_extensions = ["dollarmath", "amsmath"]
html_theme = "alabaster"
html_theme_options = {{"show_powered_by": False, "nosidebar": False}}
html_show_sphinx = False
html_show_copyright = False
html_show_sourcelink = False
html_copy_source = False
html_static_path = ["_static"]
html_js_files = ["plotly.min.js"]    # loaded before the pages' figures call Plotly.newPlot
mathjax_path = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"
exclude_patterns = ["_static", ".doctrees"]
suppress_warnings = ["myst.header", "mystnb.unknown_mime_type"]
"""

EDITION_NOTE = {
    "student": "This is the student edition: exercises are open (a check says \u201cnot answered yet\u201d "
               "until you solve it).",
    "instructor": "**Instructor edition**: worked solutions and instructor notes. Do not publish it; "
                  "the student edition is the public one.",
}


@dataclass
class Page:
    """One unit of the book: its notebook, number, title and exercise count, and its notes if built."""

    notebook: str
    number: str
    title: str
    exercises: int = 0
    seconds: float = 0.0
    notes: str | None = None  # the notes' document name (``NN_name.notes``) in the instructor edition

    @property
    def docname(self) -> str:
        return Path(self.notebook).stem


def execute(path: Path, *, edition: str = "instructor") -> nbformat.NotebookNode:
    """Run ``path`` (as the ``edition`` has it) in its folder with static widget snapshots on
    (progress recording off)."""
    nb = nbformat.read(path, as_version=4)
    if edition == "student":
        nb, _ = make_student.student_notebook(nb, name=path.name)
    nb.cells.insert(0, nbformat.v4.new_code_cell(SETUP))
    env_progress = os.environ.get("LABKIT_PROGRESS")
    os.environ["LABKIT_PROGRESS"] = "off"  # the book shows a fresh reader's progress
    try:
        NotebookClient(nb, timeout=300, kernel_name="python3", store_widget_state=False,
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        if env_progress is None:
            os.environ.pop("LABKIT_PROGRESS", None)
        else:
            os.environ["LABKIT_PROGRESS"] = env_progress
    nb.cells.pop(0)
    for index, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                raise RuntimeError(f"{path.name}, cell {index}: {out.get('ename')}: {out.get('evalue')}")
    return nb


def make_static(nb: nbformat.NotebookNode) -> None:
    """Prefer each widget's static snapshot and turn plotly JSON outputs into charts."""
    import plotly.io as pio

    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data")
            if not data:
                continue
            if WIDGET_VIEW in data and "text/html" in data:
                del data[WIDGET_VIEW]
            if PLOTLY_JSON in data and "text/html" not in data:
                figure = pio.from_json(json.dumps(data[PLOTLY_JSON]), skip_invalid=True)
                data["text/html"] = pio.to_html(figure, full_html=False, include_plotlyjs=False)
                del data[PLOTLY_JSON]


def notes_markdown(notes: Path, built: set[str]) -> str:
    """A unit's instructor notes as a page of the book: links to built units point at their pages."""
    return re.sub(UNIT_LINK, lambda m: f"]({m.group(1)})" if m.group(1) in built else m.group(0),
                  notes.read_text(encoding="utf-8"))


def index_markdown(pages: list[Page], edition: str = "instructor") -> str:
    """The book's root document: the units in course order (Sphinx lists their sections), the
    exercises per unit and, when built, the instructor notes."""
    units = "\n".join(page.docname for page in pages)
    rows = "\n".join(f"| {page.number} · {page.title} | {page.exercises} |" for page in pages)
    notes = "\n".join(f"{page.number} · instructor notes <{page.notes}>" for page in pages if page.notes)
    text = f"""# Deep Neural Crypto Lab

A Jupyter-first course on cryptography inside and around neural networks. This is the read-only
rendering of the notebooks as executed; run them yourself with `make lab` to move the widgets and
solve the exercises. Figures are interactive; controls are shown as they stood.

{EDITION_NOTE[edition]}

## Contents

```{{toctree}}
:maxdepth: 2

{units}
```

## Exercises per unit

| unit | exercises |
|---|---|
{rows}
"""
    if notes:
        text += f"""
## Instructor notes

```{{toctree}}
:maxdepth: 1

{notes}
```
"""
    return text


def build(paths: list[Path], out: Path, edition: str = "instructor") -> list[Page]:
    """Execute ``paths`` (as ``edition`` has them) and have Sphinx render them into ``out``; the pages."""
    import jupyter_server_mathjax
    import plotly

    if edition not in EDITIONS:
        raise ValueError(f"edition must be one of {EDITIONS}, got {edition!r}")
    pages = []
    with tempfile.TemporaryDirectory(prefix="labkit-book-") as tmp:
        src = Path(tmp)
        static = src / "_static"
        static.mkdir()
        shutil.copy(Path(plotly.__file__).parent / "package_data" / "plotly.min.js", static / "plotly.min.js")
        shutil.copytree(Path(jupyter_server_mathjax.__file__).parent / "static", static / "mathjax",
                        ignore=shutil.ignore_patterns("*.md", "LICENSE*"))
        for path in paths:
            begin = time.perf_counter()
            exercises = len(make_student.exercise_cells(nbformat.read(path, as_version=4)))
            nb = execute(path, edition=edition)
            make_static(nb)
            nbformat.write(nb, src / path.name)
            pages.append(Page(path.name, unit_number(path) or path.stem, notebook_title(nb, path),
                              exercises=exercises, seconds=time.perf_counter() - begin))
        built = {page.notebook for page in pages}
        for page in pages if edition == "instructor" else []:  # the notes stay out of the student edition
            notes = NOTES_DIR / (page.docname + ".md")
            if notes.is_file():
                page.notes = page.docname + ".notes"
                (src / (page.notes + ".md")).write_text(notes_markdown(notes, built), encoding="utf-8")
        (src / "index.md").write_text(index_markdown(pages, edition), encoding="utf-8")
        (src / "conf.py").write_text(CONF.format(edition=edition), encoding="utf-8")
        status = build_main(["-b", "html", "-q", "-E", "-d", str(src / ".doctrees"), str(src), str(out)])
        if status:
            raise RuntimeError(f"sphinx-build failed (exit {status}) on the {edition} edition")
    return pages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="labkit-build-book", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="notebooks to render (default: every unit)")
    parser.add_argument("--out", default=str(ROOT / "_book"), help="output folder (default: _book/)")
    parser.add_argument("--edition", choices=[*EDITIONS, "both"], default="both",
                        help="student (public: no solutions, no notes), instructor, or both (default) in subfolders")
    args = parser.parse_args(argv)
    paths = [Path(a).resolve() for a in args.notebooks] or notebook_paths(ROOT / "notebooks")
    editions = EDITIONS if args.edition == "both" else (args.edition,)
    for edition in editions:
        out = Path(args.out) / edition if args.edition == "both" else Path(args.out)
        for page in build(paths, out, edition):
            print(f"{edition}/{page.docname}.html: {page.exercises} exercises, {page.seconds:.1f} s")
        print(f"open {out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
