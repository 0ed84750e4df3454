"""Real-browser check: every unit runs in JupyterLab in headless Chromium and draws; the units
with exercises run as their student copies, unanswered.

One JupyterLab server (loopback, random free port, token) serves a scratch copy of the units;
one Chromium (Debian's ``chromium`` package, driven by Playwright without any browser download)
opens each notebook, runs *Run All Cells*, and the test asserts that no cell errored, every widget
output rendered (no "Error displaying widget", no raw ``IntSlider(...)``-style repr) and plotly
figures drew (``.js-plotly-plot``). Screenshots go to ``artifacts/browser/`` (ignored by git).

A unit with exercises is served as its student copy (``labkit-make-student``: solutions removed),
which is what a student opens, and one execution then checks two things: the drawing, and that a
self-study student can run the whole copy before answering anything (no later cell depends on an
answer; every check says "not answered yet", never a hint), after which the full version of the
first exercise cell, run in the same kernel, says "Correct". No solution region draws anything, so
the copy draws every figure the full notebook draws; the full notebooks themselves run end to end
under nbval. Without a browser the student copies still run, in nbclient, and only the drawing is
skipped.

The test installs what it needs: ``apt-get install chromium`` when the browser is missing (as
root, after ``apt-get update``) and ``pip install playwright`` when the driver is missing. It skips,
saying why, only when the browser truly cannot be installed (no apt-get, or not root and no
password-less sudo). ``make browser`` runs it alone; ``make test`` runs it with everything else.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import nbformat
import pytest

from labkit import course
from labkit_tools import make_student
from student_work import output_text as _output_text

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = course.notebook_paths(ROOT / "notebooks")  # every unit: chapters, parts, appendices
#: the units with exercises, served as student copies: every chapter and part (appendices have none)
EXERCISED = [p for p in NOTEBOOKS if not course.unit_number(p).startswith("A")]
ARTIFACTS = ROOT / "artifacts" / "browser"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage"]
RAW_REPRS = ("IntSlider(", "FloatSlider(", "FigureWidget(", "VBox(children", "HBox(children", "Dropdown(", "Button(")
RUN_TIMEOUT_S = 240  # one notebook; each must finish well under a minute on its own

pytestmark = pytest.mark.browser




# -- installing what the test needs --------------------------------------------------------------
def _run_quietly(command: list[str], timeout: float) -> subprocess.CompletedProcess:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    return subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, env=env)


def ensure_chromium() -> str:
    """Path of a Chromium binary, installing Debian's package if needed (skip if impossible)."""
    for candidate in (CHROMIUM, shutil.which("chromium") or "", shutil.which("chromium-browser") or ""):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    if not shutil.which("apt-get"):
        pytest.skip("no Chromium at /usr/bin/chromium and no apt-get to install it")
    if os.geteuid() == 0:
        prefix = []
    elif shutil.which("sudo") and _run_quietly(["sudo", "-n", "true"], 30).returncode == 0:
        prefix = ["sudo", "-n"]
    else:
        pytest.skip("Chromium is missing and cannot be installed: not root and no password-less sudo "
                    "(install it with: sudo apt-get install chromium)")
    update = _run_quietly(prefix + ["apt-get", "update", "-qq"], 900)
    assert update.returncode == 0, f"apt-get update failed:\n{update.stderr[-2000:]}"
    install = _run_quietly(prefix + ["apt-get", "install", "-y", "-qq", "chromium"], 1800)
    assert install.returncode == 0, f"apt-get install chromium failed:\n{install.stderr[-2000:]}"
    assert os.access(CHROMIUM, os.X_OK), "the chromium package did not provide /usr/bin/chromium"
    return CHROMIUM


def ensure_playwright():
    """Playwright's sync API, pip-installing the package if needed (it never downloads a browser)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pip = _run_quietly([sys.executable, "-m", "pip", "install", "--quiet", "playwright"], 900)
        assert pip.returncode == 0, f"pip install playwright failed:\n{pip.stderr[-2000:]}"
        from playwright.sync_api import sync_playwright
    return sync_playwright


# -- a private JupyterLab ------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_server_config(folder: Path) -> None:
    """No websocket keep-alive pings: browser and server share the loopback, and on a loaded machine
    a starved browser that misses its pongs for 90 s had its kernel connection closed mid-run (the
    replies lost on it left *Run All Cells* waiting forever)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "jupyter_server_config.json").write_text(json.dumps({"ServerApp": {"tornado_settings": {"ws_ping_interval": 0}}}))


def _write_settings(folder: Path) -> None:
    """Lab settings for a test: render every cell (no windowing), no news, no autosave."""
    settings = {
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
        "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    }
    for name, value in settings.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))


SELF_TEST = "zz_browser_self_test.ipynb"


def _write_self_test(path: Path) -> None:
    import nbformat

    cells = ["import ipywidgets as w\nimport plotly.graph_objects as go\n"
             "w.VBox([w.IntSlider(value=3), go.FigureWidget(go.Bar(y=[1, 2]))])",
             "print(w.IntSlider(value=3))",
             "1 / 0"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """``(base_url, token)`` of a JupyterLab serving a scratch copy of the notebooks."""
    home = tmp_path_factory.mktemp("lab")
    (home / "notebooks").mkdir()
    for path in NOTEBOOKS:
        if path in EXERCISED:
            nbformat.write(_student_copy(path)[1], home / "notebooks" / path.name)
        else:
            shutil.copy(path, home / "notebooks" / path.name)
    _write_self_test(home / "notebooks" / SELF_TEST)
    if (ROOT / "data").exists():
        (home / "data").symlink_to(ROOT / "data", target_is_directory=True)
    _write_settings(home / "settings")
    _write_server_config(home / "config")
    port, token = _free_port(), uuid.uuid4().hex
    env = dict(os.environ,
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
               LABKIT_PROGRESS=str(home / "progress.json"),
               JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_DATA_DIR=str(home / "data_dir"),
               JUPYTER_RUNTIME_DIR=str(home / "runtime"), JUPYTERLAB_SETTINGS_DIR=str(home / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"))
    log = open(home / "jupyterlab.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={home}",
         "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None", "--LabApp.check_for_updates_class="
         "jupyterlab.NeverCheckForUpdate", "--LabApp.extension_manager=readonly"]
        + (["--allow-root"] if os.geteuid() == 0 else []),
        cwd=home, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("JupyterLab did not start:\n" + (home / "jupyterlab.log").read_text()[-3000:])
                time.sleep(0.5)
        yield base, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """A Chromium context, or the reason (a string) why no browser can be had."""
    try:
        executable = ensure_chromium()
    except pytest.skip.Exception as reason:
        yield str(reason)
        return
    sync_playwright = ensure_playwright()
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile), executable_path=executable, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900})
        try:
            yield context
        finally:
            context.close()


# -- what runs inside the page -------------------------------------------------------------------
OPEN_AND_RUN = """
async ([name, timeoutMs]) => {
  const app = window.jupyterapp;
  await app.started; await app.restored;
  const deadline = Date.now() + timeoutMs;
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  // never wait forever: a reply lost on the way would leave a promise pending for good
  const within = async (promise, what) => {
    const late = await Promise.race([promise.then(() => false),
                                     new Promise(r => setTimeout(() => r(true), Math.max(0, deadline - Date.now())))]);
    if (late) throw new Error(what + ' did not finish in time');
  };
  let panel = null;
  while (!panel) {
    const w = app.shell.currentWidget;
    if (w && w.context && w.content && w.context.path.endsWith(name)) panel = w;
    else if (Date.now() > deadline) throw new Error('the notebook did not open');
    else await sleep(100);
  }
  await within(panel.context.ready, 'opening the notebook');
  await within(panel.sessionContext.ready, 'starting the kernel');
  while (!panel.sessionContext.session || !panel.sessionContext.session.kernel) {
    if (Date.now() > deadline) throw new Error('no kernel');
    await sleep(100);
  }
  await within(app.commands.execute('notebook:run-all-cells'), 'run all cells');
  // run-all resolves once the last cell replied; wait for the kernel to settle too
  while (panel.sessionContext.session.kernel.status !== 'idle') {
    if (Date.now() > deadline) throw new Error('kernel still busy');
    await sleep(100);
  }
  return panel.content.widgets.length;
}
"""

COLLECT = """
() => {
  const panel = window.jupyterapp.shell.currentWidget;
  return panel.content.widgets.map((cell, index) => {
    if (cell.model.type !== 'code') return null;
    const outputs = cell.model.outputs.toJSON();
    const node = cell.node.querySelector('.jp-OutputArea') || cell.node;
    const text = t => Array.isArray(t) ? t.join('') : (t || '');
    return {
      index,
      count: cell.model.executionCount,
      errors: outputs.filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue),
      widgetOutputs: outputs.filter(o => o.data && o.data['application/vnd.jupyter.widget-view+json']).length,
      figureReprs: outputs.filter(o => o.data && text(o.data['text/plain']).startsWith('FigureWidget')).length,
      usesFigures: /FigureWidget|LabWidget|labkit\\.widgets|\\bheatmap\\(|bit_grid(_panels)?\\(|go\\.Figure/.test(cell.model.sharedModel.getSource()),
      widgetNodes: node.querySelectorAll('.jupyter-widgets').length,
      plotly: node.querySelectorAll('.js-plotly-plot').length,
      plotlySvg: node.querySelectorAll('.js-plotly-plot svg.main-svg').length,
      outputText: node.innerText.slice(0, 4000),
      plainText: outputs.map(o => o.output_type === 'stream' ? text(o.text)
                                  : (o.data ? text(o.data['text/plain']) : '')).join(''),
    };
  }).filter(c => c !== null);
}
"""

# the student answers one exercise: the cell's source replaced, run in the same kernel
SOLVE = """
async ([index, source, timeoutMs]) => {
  const app = window.jupyterapp;
  const panel = app.shell.currentWidget;
  const deadline = Date.now() + timeoutMs;
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  const cell = panel.content.widgets[index];
  cell.model.sharedModel.setSource(source);
  panel.content.activeCellIndex = index;
  const late = await Promise.race([app.commands.execute('notebook:run-cell').then(() => false),
                                   new Promise(r => setTimeout(() => r(true), timeoutMs))]);
  if (late) throw new Error('the solved cell did not finish in time');
  while (panel.sessionContext.session.kernel.status !== 'idle') {
    if (Date.now() > deadline) throw new Error('kernel still busy');
    await sleep(100);
  }
  const text = t => Array.isArray(t) ? t.join('') : (t || '');
  return {
    count: cell.model.executionCount,
    plainText: cell.model.outputs.toJSON().map(o => o.output_type === 'stream' ? text(o.text)
                 : (o.data ? text(o.data['text/plain']) : '')).join(''),
  };
}
"""


def _open_and_run(context, base: str, token: str, name: str, solve: tuple[int, str] | None = None):
    """The cells of notebook ``name`` after *Run All Cells* (see ``COLLECT``), the page's errors and,
    if ``solve`` is ``(index, source)``, that cell after its source was replaced and run again."""
    page = context.new_page()
    console_errors: list[str] = []
    page.on("pageerror", lambda err: console_errors.append(str(err)))
    try:
        page.goto(f"{base}/lab/workspaces/{Path(name).stem}/tree/notebooks/{name}?reset&token={token}",
                  wait_until="domcontentloaded", timeout=60_000)
        page.wait_for_function("() => window.jupyterapp !== undefined", timeout=60_000)
        page.evaluate(OPEN_AND_RUN, [name, RUN_TIMEOUT_S * 1000])
        # widgets and figures render asynchronously after their output arrives: wait until every
        # cell with a figure drew it (or the time is up, and the assertions below say what is missing)
        deadline = time.monotonic() + 30
        while True:
            cells = page.evaluate(COLLECT)
            pending = [c for c in cells if c["figureReprs"] and c["plotlySvg"] < c["figureReprs"]]
            pending += [c for c in cells if c["widgetOutputs"] and not (c["widgetNodes"] or c["plotly"])]
            if not pending or time.monotonic() > deadline:
                break
            page.wait_for_timeout(250)
        _screenshots(page, name, cells)
        solved = page.evaluate(SOLVE, [solve[0], solve[1], RUN_TIMEOUT_S * 1000]) if solve else None
        # the kernel is shut down with its page: 23 idle kernels (torch loaded) would hold gigabytes
        page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.shutdown()")
        return cells, console_errors, solved
    finally:
        page.close()


def _screenshots(page, name: str, cells: list[dict]) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    stem = Path(name).stem
    page.screenshot(path=str(ARTIFACTS / f"{stem}.png"))
    shown = [c for c in cells if c["widgetOutputs"]][:3]
    for k, cell in enumerate(shown, start=1):
        locator = page.locator(".jp-Notebook .jp-Cell").nth(cell["index"])
        try:
            locator.scroll_into_view_if_needed(timeout=5_000)
            locator.screenshot(path=str(ARTIFACTS / f"{stem}_widget{k}.png"), timeout=10_000)
        except Exception:  # a screenshot is an artefact, not the test: never fail on it
            pass


def _problems(name: str, cells: list[dict]) -> list[str]:
    """Everything wrong with a notebook run, one line each."""
    problems = []
    for cell in cells:
        where = f"{name} cell {cell['index']}"
        if cell["count"] is None:
            problems.append(f"{where}: not executed")
        problems += [f"{where}: raised {error}" for error in cell["errors"]]
        text = cell["outputText"]
        if "Error displaying widget" in text:
            problems.append(f"{where}: Error displaying widget")
        if cell["widgetOutputs"] and not (cell["widgetNodes"] or cell["plotly"]):
            problems.append(f"{where}: a widget output did not render")
        problems += [f"{where}: raw widget repr {raw!r} shown" for raw in RAW_REPRS if raw in text]
        if cell["plotly"] > cell["plotlySvg"] or cell["plotlySvg"] < cell["figureReprs"]:
            problems.append(f"{where}: a plotly figure did not draw")
    if any(c["usesFigures"] for c in cells if c["widgetOutputs"]) and not any(c["plotlySvg"] for c in cells):
        problems.append(f"{name}: no plotly figure drew at all")
    return problems


# -- student copies ------------------------------------------------------------------------------
def _student_copy(path: Path):
    """``(full, student)``: the unit's notebook and its student copy (same cells, solutions removed)."""
    full = nbformat.read(path, as_version=4)
    return full, make_student.student_notebook(full, name=path.name)[0]




def _unanswered_problems(name: str, full, said: dict[int, str], solved: str) -> list[str]:
    """What is wrong with a student copy run unanswered: ``said`` maps each exercise cell to the
    text its check printed, ``solved`` is what the first exercise cell said once solved."""
    problems = [f"{name} cell {index}: {text!r} (expected 'not answered yet', no hint)"
                for index, text in said.items() if "not answered yet" not in text or "Hint" in text]
    exercises = make_student.exercise_cells(full)
    if sorted(said) != exercises:
        problems.append(f"{name}: exercise cells {exercises}, checked {sorted(said)}")
    if "Correct" not in solved:
        problems.append(f"{name} cell {exercises[0]} solved: {solved!r} (expected 'Correct')")
    return problems


def _run_student_copy_in_nbclient(path: Path, tmp_path: Path, monkeypatch) -> list[str]:
    """The student copy run top to bottom in a plain kernel (no browser), then the first exercise
    solved in the same kernel: its problems, as ``_unanswered_problems`` gives them."""
    from nbclient import NotebookClient

    full, student = _student_copy(path)
    monkeypatch.setenv("LABKIT_PROGRESS", str(tmp_path / "progress.json"))  # the kernel inherits it
    client = NotebookClient(student, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    exercises = make_student.exercise_cells(full)
    with client.setup_kernel():
        for index, cell in enumerate(student.cells):
            if cell.cell_type == "code":
                client.execute_cell(cell, index)  # raises CellExecutionError on any error
        said = {i: _output_text(student.cells[i].outputs) for i in exercises}  # before the solved cell replaces one
        solved = nbformat.v4.new_code_cell(full.cells[exercises[0]].source)
        client.execute_cell(solved, exercises[0])
    return _unanswered_problems(path.name, full, said, _output_text(solved.outputs))


# -- the tests -----------------------------------------------------------------------------------
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_and_draws_in_a_real_browser(browser, request, path, tmp_path, monkeypatch):
    """The unit (a unit with exercises: its student copy, unanswered) runs in JupyterLab and draws;
    then its first exercise, solved in the same kernel, says "Correct"."""
    if isinstance(browser, str):  # no browser: the student copy still runs, in nbclient
        if path in EXERCISED:
            problems = _run_student_copy_in_nbclient(path, tmp_path, monkeypatch)
            assert not problems, "\n".join(problems)
        pytest.skip(f"drawing not checked: {browser}")
    base, token = request.getfixturevalue("lab")
    full = nbformat.read(path, as_version=4)
    exercises = make_student.exercise_cells(full) if path in EXERCISED else []
    solve = (exercises[0], full.cells[exercises[0]].source) if exercises else None
    cells, page_errors, solved = _open_and_run(browser, base, token, path.name, solve)
    problems = _problems(path.name, cells)
    if path in EXERCISED:
        said = {c["index"]: c["plainText"] for c in cells if c["index"] in exercises}
        problems += _unanswered_problems(path.name, full, said, solved["plainText"])
        if solved["count"] is None:
            problems.append(f"{path.name} cell {exercises[0]}: the solved cell did not run")
    assert not problems, "\n".join(problems + [f"page error: {e}" for e in page_errors])


def test_the_browser_check_sees_errors_and_raw_widget_reprs(browser, request):
    """A notebook that prints a widget's repr and then raises must be reported, never pass."""
    if isinstance(browser, str):
        pytest.skip(browser)
    base, token = request.getfixturevalue("lab")
    cells, _, _ = _open_and_run(browser, base, token, SELF_TEST)
    problems = "\n".join(_problems(SELF_TEST, cells))
    assert "raw widget repr 'IntSlider('" in problems
    assert "raised ZeroDivisionError" in problems
    assert "cell 0" not in problems, "the well-displayed slider and figure are fine"
