"""Real-browser check: every notebook runs in JupyterLab in headless Chromium and draws.

One JupyterLab server (loopback, random free port, token) serves a scratch copy of the notebooks;
one Chromium (Debian's ``chromium`` package, driven by Playwright without any browser download)
opens each notebook, runs *Run All Cells*, and the test asserts that no cell errored, every widget
output rendered (no "Error displaying widget", no raw ``IntSlider(...)``-style repr) and plotly
figures drew (``.js-plotly-plot``). Screenshots go to ``artifacts/browser/`` (ignored by git).

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

import pytest

from labkit import course

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = course.notebook_paths(ROOT / "notebooks")  # every unit: chapters, parts, appendices
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
        shutil.copy(path, home / "notebooks" / path.name)
    _write_self_test(home / "notebooks" / SELF_TEST)
    if (ROOT / "data").exists():
        (home / "data").symlink_to(ROOT / "data", target_is_directory=True)
    _write_settings(home / "settings")
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
    executable = ensure_chromium()
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
  let panel = null;
  while (!panel) {
    const w = app.shell.currentWidget;
    if (w && w.context && w.content && w.context.path.endsWith(name)) panel = w;
    else if (Date.now() > deadline) throw new Error('the notebook did not open');
    else await sleep(100);
  }
  await panel.context.ready;
  await panel.sessionContext.ready;
  while (!panel.sessionContext.session || !panel.sessionContext.session.kernel) {
    if (Date.now() > deadline) throw new Error('no kernel');
    await sleep(100);
  }
  await app.commands.execute('notebook:run-all-cells');
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
    };
  }).filter(c => c !== null);
}
"""


def _open_and_run(context, base: str, token: str, name: str) -> list[dict]:
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
        return cells, console_errors
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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_and_draws_in_a_real_browser(lab, browser, path):
    base, token = lab
    cells, page_errors = _open_and_run(browser, base, token, path.name)
    problems = _problems(path.name, cells)
    assert not problems, "\n".join(problems + [f"page error: {e}" for e in page_errors])


def test_the_browser_check_sees_errors_and_raw_widget_reprs(lab, browser):
    """A notebook that prints a widget's repr and then raises must be reported, never pass."""
    base, token = lab
    cells, _ = _open_and_run(browser, base, token, SELF_TEST)
    problems = "\n".join(_problems(SELF_TEST, cells))
    assert "raw widget repr 'IntSlider('" in problems
    assert "raised ZeroDivisionError" in problems
    assert "cell 0" not in problems, "the well-displayed slider and figure are fine"
