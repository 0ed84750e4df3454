"""The static book builds without network: notebook 00 and the index (``make book`` does all)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent

# Loaded by every Python process of the build (the tool and its kernel) through PYTHONPATH:
# any connection or name lookup that is not local is refused and logged.
GUARD = textwrap.dedent('''
    import os, socket
    _LOG = os.environ["NETWORK_GUARD_LOG"]
    _LOCAL = {"127.0.0.1", "::1", "localhost", "0.0.0.0", "", None}

    def _refuse(what):
        with open(_LOG, "a") as log:
            log.write(repr(what) + "\\n")
        raise OSError("network access refused by the test's guard: %r" % (what,))

    def _check(address):
        if isinstance(address, tuple) and address[0] not in _LOCAL:
            _refuse(address)

    _connect, _connect_ex, _getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo

    def connect(self, address):
        _check(address)
        return _connect(self, address)

    def connect_ex(self, address):
        _check(address)
        return _connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if host not in _LOCAL:
            _refuse(host)
        return _getaddrinfo(host, *args, **kwargs)

    socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = connect, connect_ex, getaddrinfo
''')


def test_book_builds_offline_with_index_and_static_widgets(tmp_path):
    guard_dir = tmp_path / "guard"
    guard_dir.mkdir()
    (guard_dir / "sitecustomize.py").write_text(GUARD)
    log = tmp_path / "network.log"
    out = tmp_path / "book"
    env = dict(os.environ, NETWORK_GUARD_LOG=str(log),
               PYTHONPATH=os.pathsep.join([str(guard_dir), str(ROOT), os.environ.get("PYTHONPATH", "")]))
    probe = subprocess.run([sys.executable, "-c", "import urllib.request as u; u.urlopen('http://example.org', timeout=5)"],
                           env=env, capture_output=True, text=True)
    assert probe.returncode != 0 and "refused by the test's guard" in probe.stderr, "the guard must be active"
    log.unlink()

    notebook = ROOT / "notebooks" / "00_start_here.ipynb"
    maths = tmp_path / "99_maths.ipynb"  # notebook 00 has no formula: a unit that has one
    nbformat.write(nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# 99 · Maths\n\nThe corner neuron $\\mathrm{ReLU}(x - y)$."),
        nbformat.v4.new_code_cell("print(6 * 7)")]), maths)
    run = subprocess.run([sys.executable, "-m", "labkit_tools.build_book", "--out", str(out), "--edition",
                          "instructor", str(notebook), str(maths)], env=env, capture_output=True, text=True,
                         timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    assert not log.exists(), f"the build tried the network: {log.read_text()}"

    index = (out / "index.html").read_text()
    assert 'href="00_start_here.html"' in index and "Start here" in index
    assert re.search(r'href="00_start_here.html#[^"]+">Your progress<', index), "sections listed in the contents"
    assert index.index("Start here") < index.index("Maths"), "units in the order given"
    assert (out / "_static" / "plotly.min.js").stat().st_size > 1_000_000, "plotly.js ships with the book"

    page = (out / "00_start_here.html").read_text()
    assert page.index('src="_static/plotly.min.js') < page.index("</head>")
    assert not re.search(r'(src|href)="https?://', page), "every script and stylesheet is local"
    assert page.count('class="plotly-graph-div"') >= 2, "both figures of notebook 00 are drawn as plotly charts"
    assert "Widgets work" in page and re.search(r"type=[\"']range[\"']", page), "the widget check is shown with its state"
    assert "application/vnd.jupyter.widget-view+json" not in page and "IntSlider(value=" not in page
    assert "Correct" in page and "Traceback" not in page
    assert 'href="index.html"' in page
    formula = (out / "99_maths.html").read_text()
    assert 'src="_static/mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe' in formula, "maths renders offline"
    assert r"\(\mathrm{ReLU}(x - y)\)" in formula and "42" in formula
    assert not re.search(r'(src|href)="https?://', formula)
    assert (out / "_static" / "mathjax" / "MathJax.js").is_file()
    assert (out / "_static" / "mathjax" / "config" / "TeX-AMS-MML_HTMLorMML-full.js").is_file()
    notes = (out / "00_start_here.notes.html").read_text()
    assert 'href="00_start_here.notes.html">00 · instructor notes<' in index, "the index links the notes"
    assert "Timing plan" in notes and "<table" in notes and 'href="00_start_here.html"' in notes
    assert not re.search(r'(src|href)="https?://', notes)


def _load_build_book():
    from labkit_tools import build_book

    return build_book


def test_book_lists_parts_and_appendices_and_links_their_notes(tmp_path):
    build_book = _load_build_book()
    from labkit import course

    names = [p.name for p in course.notebook_paths(ROOT / "notebooks")]
    assert {"02b_des_analysis.ipynb", "03b_aes_analysis.ipynb", "06b_key_recovery.ipynb", "A1_performance.ipynb"} <= set(names)
    for name in names:  # the book renders each unit's notes beside its page
        assert (build_book.NOTES_DIR / name.replace(".ipynb", ".md")).is_file(), name
    notes = tmp_path / "06b_key_recovery.md"
    notes.write_text("# Notes\n\n[part 2](../06b_key_recovery.ipynb), [appendix](../A1_performance.ipynb), "
                     "[part 1](../06_cipher_networks.ipynb)\n")
    text = build_book.notes_markdown(notes, built={"06b_key_recovery.ipynb", "A1_performance.ipynb"})
    assert "[part 2](06b_key_recovery.ipynb)" in text and "[appendix](A1_performance.ipynb)" in text
    assert "[part 1](../06_cipher_networks.ipynb)" in text, "a unit not built keeps its link"
    pages = [build_book.Page("06b_key_recovery.ipynb", "06b", "Key recovery", exercises=3,
                             notes="06b_key_recovery.notes"),
             build_book.Page("A1_performance.ipynb", "A1", "Performance")]
    index = build_book.index_markdown(pages)
    toc = index.split("```{toctree}", 1)[1].split("```", 1)[0]
    assert toc.index("06b_key_recovery") < toc.index("A1_performance"), "course order"
    assert "| 06b · Key recovery | 3 |" in index and "| A1 · Performance | 0 |" in index
    assert "06b · instructor notes <06b_key_recovery.notes>" in index
    student = build_book.index_markdown([pages[1]], "student")
    assert "instructor notes" not in student and "student edition" in student


def test_student_edition_has_no_solution_and_no_instructor_notes(tmp_path):
    """The public edition: every exercise open (its check says "not answered yet"), no line of any
    worked solution, no instructor notes; the instructor edition keeps both (the test above)."""
    build_book = _load_build_book()
    path = ROOT / "notebooks" / "00_start_here.ipynb"
    nb = nbformat.read(path, as_version=4)
    solution_lines = {line.strip() for cell in nb.cells if "### BEGIN SOLUTION" in cell.source
                      for region in cell.source.split("### BEGIN SOLUTION")[1:]
                      for line in region.split("### END SOLUTION")[0].splitlines() if len(line.strip()) > 12}
    assert solution_lines, "notebook 00 has worked solutions to look for"
    pages = build_book.build([path], tmp_path, edition="student")
    page = (tmp_path / "00_start_here.html").read_text()
    import html as html_module

    text = html_module.unescape(re.sub(r"<[^>]+>", "", page))
    leaked = [line for line in solution_lines if line in text]
    assert not leaked, f"solutions in the student edition: {leaked[:3]}"
    assert "not answered yet" in text and pages[0].exercises > 0
    assert not list(tmp_path.glob("*.notes.html")) and "instructor notes" not in (tmp_path / "index.html").read_text()
    assert "student edition" in (tmp_path / "index.html").read_text()


def test_make_book_builds_both_editions():
    out = subprocess.run(["make", "-n", "-o", ".venv/.installed", "book"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    assert "labkit-build-book --edition both" in out
