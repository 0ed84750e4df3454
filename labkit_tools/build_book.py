"""Build the lab's static, readable rendering: one HTML page per notebook plus an index.

Usage: labkit-build-book [--out _book] [--edition student|instructor|both] [notebooks/NN_name.ipynb ...]

Two editions (``make book`` builds both, into ``_book/student`` and ``_book/instructor``):

- **student** (the one to publish): every notebook as a student gets it (``labkit-make-student``:
  solutions removed, checks kept, so an exercise shows "not answered yet"), no instructor notes;
- **instructor**: the notebooks with their worked solutions, and each unit's instructor notes.

Each notebook is executed (nothing is downloaded: the lab is offline by design), its widgets are
captured as static snapshots of their state (``labkit.widgets.static``: plotly figures stay
interactive charts, controls are shown disabled with their values), and nbconvert renders it. The
pages load one local copy of plotly.js and of MathJax, so the book reads offline, maths included. ``index.html`` holds the table
of contents: every unit (chapters, their parts such as ``06b``, appendices such as ``A1``, in course
order) with its sections and its number of exercises, and a link to the unit's instructor notes
(``notebooks/instructor/NN_name.md``, rendered to ``NN_name.notes.html``).
"""
from __future__ import annotations

import argparse
import html
import json
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient

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
STYLE = """<style>
.lab-book-nav{position:sticky;top:0;z-index:10;background:#f6f8fa;border-bottom:1px solid #d0d7de;
 padding:6px 16px;font:14px sans-serif;display:flex;gap:18px}
.lab-book-nav a{text-decoration:none}
.lab-static-label{font-weight:600}
</style>"""


@dataclass
class Page:
    """One rendered notebook: where it is and what its table of contents shows."""

    notebook: str
    html_name: str
    number: str
    title: str
    sections: list[tuple[str, str]] = field(default_factory=list)  # (anchor, text) of ## headings
    exercises: int = 0
    seconds: float = 0.0
    notes_html: str | None = None  # the rendered instructor notes, when the chapter has them


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


#: MathJax 2.7 from the ``jupyter-server-mathjax`` package, copied into the book: maths renders offline
MATHJAX_URL = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"


def copy_mathjax(out: Path) -> None:
    """Put MathJax's static files in ``out/mathjax`` (from the installed jupyter-server-mathjax)."""
    import jupyter_server_mathjax

    source = Path(jupyter_server_mathjax.__file__).parent / "static"
    shutil.copytree(source, out / "mathjax", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("*.md", "LICENSE*"))


def render(nb: nbformat.NotebookNode, title: str, nav: str) -> str:
    """The notebook as a standalone HTML page that loads ``plotly.min.js`` from its folder."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab")
    exporter.mathjax_url = MATHJAX_URL  # the local copy build() puts beside the pages
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    # the template's require.js (from a CDN) serves live widgets only; the book has static snapshots
    body = re.sub(r'<script src="https?://[^"]*require(\.min)?\.js"></script>', "", body)
    # plotly.js first, before any AMD loader the template adds, so that it defines window.Plotly
    body = body.replace("<head>", '<head>\n<meta charset="utf-8">\n<script src="plotly.min.js"></script>\n' + STYLE, 1)
    return re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + nav, body, count=1)


def _sections(page_html: str) -> list[tuple[str, str]]:
    found = []
    for anchor, inner in re.findall(r'<h2 id="([^"]+)">(.*?)</h2>', page_html, flags=re.S):
        text = re.sub(r"<[^>]+>", "", inner).replace("¶", "").strip()
        found.append((anchor, html.unescape(text)))
    return found


def _nav(pages: list[tuple[str, str]], i: int) -> str:
    links = ['<a href="index.html">&#9776; Contents</a>']
    if i > 0:
        links.append(f'<a href="{pages[i - 1][0]}">&larr; {html.escape(pages[i - 1][1])}</a>')
    if i + 1 < len(pages):
        links.append(f'<a href="{pages[i + 1][0]}">{html.escape(pages[i + 1][1])} &rarr;</a>')
    return f'<nav class="lab-book-nav">{"".join(links)}</nav>'


EDITION_NOTE = {
    "student": "This is the student edition: exercises are open (a check says \u201cnot answered yet\u201d "
               "until you solve it).",
    "instructor": "<b>Instructor edition</b>: worked solutions and instructor notes. Do not publish it; "
                  "the student edition is the public one.",
}


def index_html(pages: list[Page], edition: str = "instructor") -> str:
    """The table of contents: chapters, their sections and exercise counts."""
    rows = []
    for page in pages:
        sections = "".join(f'<li><a href="{page.html_name}#{a}">{html.escape(t)}</a></li>' for a, t in page.sections)
        notes = f' · <a href="{page.notes_html}">instructor notes</a>' if page.notes_html else ""
        rows.append(f'<li class="chapter"><a href="{page.html_name}"><b>{page.number} · {html.escape(page.title)}</b></a>'
                    f' <span class="meta">({page.exercises} exercises{notes})</span><ul>{sections}</ul></li>')
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Deep Neural Crypto Lab</title>
<style>body{{font:16px/1.5 sans-serif;max-width:50em;margin:2em auto;padding:0 1em;color:#1f2328}}
.chapter{{margin:.6em 0}} .meta{{color:#666;font-size:90%}} ul ul{{font-size:92%}}</style></head>
<body><h1>Deep Neural Crypto Lab</h1>
<p>A Jupyter-first course on cryptography inside and around neural networks. This is the read-only
rendering of the notebooks as executed; run them yourself with <code>make lab</code> to move the
widgets and solve the exercises. Figures are interactive; controls are shown as they stood.</p>
<p>{EDITION_NOTE[edition]}</p>
<h2>Contents</h2>
<ul id="toc">{"".join(rows)}</ul>
</body></html>
"""


NOTES_DIR = ROOT / "notebooks" / "instructor"
#: a link to a unit notebook (``06_x.ipynb``, ``06b_y.ipynb``, ``A1_z.ipynb``), its stem captured
UNIT_LINK = r"((?:\d\d[a-z]?|A\d)_[\w.-]+)\.ipynb"


def render_notes(notes: Path, built: set[str]) -> str:
    """An instructor-notes markdown file as a standalone page; notebook links point at the book."""
    import mistune

    body = mistune.html(notes.read_text(encoding="utf-8"))
    body = re.sub(r'href="\.\./' + UNIT_LINK + '"',
                  lambda m: f'href="{m.group(1)}.html"' if m.group(1) + ".ipynb" in built else m.group(0), body)
    title = html.escape(notes.stem)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Instructor notes {title}</title>'
            f'{STYLE}<style>body{{font:16px/1.5 sans-serif;max-width:50em;margin:0 auto;padding:0 1em}}'
            f'table{{border-collapse:collapse}} td,th{{border:1px solid #d0d7de;padding:2px 8px}}</style></head>'
            f'<body><nav class="lab-book-nav"><a href="index.html">&#9776; Contents</a></nav>{body}</body></html>\n')


def build(paths: list[Path], out: Path, edition: str = "instructor") -> list[Page]:
    """Execute and render ``paths`` (as ``edition`` has them) into ``out`` with an index; the pages built."""
    import plotly

    if edition not in EDITIONS:
        raise ValueError(f"edition must be one of {EDITIONS}, got {edition!r}")
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(Path(plotly.__file__).parent / "package_data" / "plotly.min.js", out / "plotly.min.js")
    copy_mathjax(out)
    executed = []
    for path in paths:
        start = time.perf_counter()
        exercises = len(make_student.exercise_cells(nbformat.read(path, as_version=4)))
        nb = execute(path, edition=edition)
        make_static(nb)
        page = Page(path.name, path.stem + ".html", unit_number(path) or path.stem, notebook_title(nb, path),
                    exercises=exercises, seconds=time.perf_counter() - start)
        executed.append((page, nb))
    links = [(page.html_name, f"{page.number} {page.title}") for page, _ in executed]
    built = {page.notebook for page, _ in executed}
    for i, (page, nb) in enumerate(executed):
        text = render(nb, f"{page.number} · {page.title}", _nav(links, i))
        # links between notebooks point at their pages when those were built
        text = re.sub(r'href="' + UNIT_LINK, lambda m: f'href="{m.group(1)}.html' if m.group(1) + ".ipynb" in built else m.group(0), text)
        page.sections = _sections(text)
        (out / page.html_name).write_text(text, encoding="utf-8")
    pages = [page for page, _ in executed]
    for page in pages if edition == "instructor" else []:  # the notes stay out of the student edition
        notes = NOTES_DIR / (Path(page.notebook).stem + ".md")
        if notes.is_file():
            page.notes_html = notes.stem + ".notes.html"
            (out / page.notes_html).write_text(render_notes(notes, built), encoding="utf-8")
    (out / "index.html").write_text(index_html(pages, edition), encoding="utf-8")
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
        pages = build(paths, out, edition)
        for page in pages:
            print(f"{edition}/{page.html_name}: {len(page.sections)} sections, {page.exercises} exercises, "
                  f"{page.seconds:.1f} s")
        print(f"open {out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
