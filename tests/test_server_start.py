"""A student's server starts with less (deploy/jupyter/jupyter_server_config.py), and still serves
everything a student uses: the configuration read as traitlets reads it, for a student and for an
instructor; every hub marks who is which; JupyterLab imported without starting Node.js; a real
``jupyterhub-singleuser`` started as a hub starts it (``labkit-server-start``'s stand-in hub); and
the byte-code check that keeps a read-only environment from compiling at every start."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from labkit_tools import server_start

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = ROOT / "deploy" / "jupyter"
STUDENT_OFF = {"nbgrader.server_extensions.formgrader", "nbgrader.server_extensions.course_list", "jupyter_lsp",
               "jupyterlab_jupytext", "jupyter_server_mathjax", "notebook"}


def _server_config(monkeypatch, role: str | None):
    from traitlets.config.loader import PyFileConfigLoader

    if role is None:
        monkeypatch.delenv("LAB_INSTRUCTOR", raising=False)
    else:
        monkeypatch.setenv("LAB_INSTRUCTOR", role)
    return PyFileConfigLoader("jupyter_server_config.py", path=str(SETTINGS)).load_config()


@pytest.mark.parametrize("role", [None, "0"])
def test_a_students_server_leaves_out_what_no_student_feature_needs(monkeypatch, role):
    config = _server_config(monkeypatch, role)
    extensions = config.ServerApp.jpserver_extensions.get_value({"jupyterlab": True, "nbgitpuller": True})
    assert {name for name, on in extensions.items() if not on} == STUDENT_OFF
    # what students use stays as installed: JupyterLab, nbgitpuller links, the assignment list
    assert extensions["jupyterlab"] and extensions["nbgitpuller"]
    assert not any(name.startswith("nbgrader.server_extensions.assignment_list") for name in STUDENT_OFF)
    assert config.LabApp.extension_manager == "readonly"
    assert config.LabApp.news_url is None and config.LabApp.check_for_updates_class.endswith("NeverCheckForUpdate")


def test_an_instructors_server_keeps_everything_and_gets_the_formgrader(monkeypatch):
    config = _server_config(monkeypatch, "1")
    extensions = config.ServerApp.jpserver_extensions.get_value({})
    assert extensions == {"nbgrader.server_extensions.formgrader": True, "nbgrader.server_extensions.course_list": True}
    assert "extension_manager" not in config.LabApp
    assert config.LabApp.news_url is None


@pytest.mark.parametrize("role", ["", "yes", "true", "2"])
def test_an_unknown_role_stops_the_server_with_the_reason(monkeypatch, role):
    with pytest.raises(ValueError, match="LAB_INSTRUCTOR"):
        _server_config(monkeypatch, role)


def test_jupyterlab_page_does_not_ask_for_a_build_check():
    import json

    page = json.loads((SETTINGS / "labconfig" / "page_config.json").read_text())
    assert page == {"buildAvailable": False, "buildCheck": False}


def _run_with_fake_node(tmp_path: Path, code: str) -> tuple[subprocess.CompletedProcess, Path]:
    fake = tmp_path / "bin"
    fake.mkdir()
    marker = tmp_path / "node-ran"
    (fake / "node").write_text(f"#!/bin/sh\ntouch {marker}\necho '{{}}'\n")
    (fake / "node").chmod(0o755)
    env = dict(os.environ, PATH=os.pathsep.join([str(fake), os.environ.get("PATH", "")]), LAB_INSTRUCTOR="0")
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    return done, marker


def test_jupyterlab_is_imported_without_starting_nodejs(tmp_path):
    """Loading the configuration imports JupyterLab's server with no node on the PATH, then restores it."""
    done, marker = _run_with_fake_node(tmp_path, f"""
        import os, sys
        before = os.environ["PATH"]
        from traitlets.config.loader import PyFileConfigLoader
        PyFileConfigLoader("jupyter_server_config.py", path={str(SETTINGS)!r}).load_config()
        assert os.environ["PATH"] == before, "the PATH is put back"
        assert "jupyterlab.labapp" in sys.modules
        import jupyterlab.labapp  # what the server does next: no second import
    """)
    assert done.returncode == 0, done.stderr
    assert not marker.exists(), "node ran while JupyterLab was imported"


def test_without_the_configuration_jupyterlab_runs_nodejs_at_import(tmp_path):
    """The control: the fake node is found and run when JupyterLab is imported plainly."""
    done, marker = _run_with_fake_node(tmp_path, "import jupyterlab.labapp")
    assert done.returncode == 0, done.stderr
    assert marker.exists()


def test_a_students_server_starts_under_a_hub_and_serves_what_students_use():
    """A real jupyterhub-singleuser, started as a hub starts it, with the lab's settings: JupyterLab's
    first page and its first API calls, the assignment list and nbgitpuller answer; the formgrader,
    the classic interface and the language servers are not there."""
    run = server_start.start_once(probe=("assignments?course_id=deep-neural-crypto-lab", "git-pull",
                                         "formgrader", "tree", "lsp/status", "api/terminals"))
    assert run["statuses"] == {path: 200 for path in server_start.FIRST_PAGE}, "no build check is asked for"
    assert run["probed"]["assignments?course_id=deep-neural-crypto-lab"] == 200
    assert run["probed"]["git-pull"] == 400  # nbgitpuller's handler is there: a link without ?repo= is refused
    assert run["probed"]["api/terminals"] == 200
    assert run["probed"]["formgrader"] == run["probed"]["tree"] == run["probed"]["lsp/status"] == 404
    assert not set(run["extensions"]) & STUDENT_OFF
    assert {"jupyterhub", "jupyterlab", "nbgitpuller", "nbgrader.server_extensions.assignment_list",
            "nbgrader.server_extensions.validate_assignment"} <= set(run["extensions"])
    assert "GET /hub/api" in run["hub_requests"]  # the version check: it started as under a hub
    assert any(r.startswith("GET /hub/api/user") for r in run["hub_requests"]), "the browser's token was checked"
    assert run["cpu_ready_s"] > 0 and run["cpu_page_s"] >= run["cpu_ready_s"] and run["rss_mib"] > 0


def test_an_instructors_server_gets_the_formgrader_the_image_disables_for_everyone(tmp_path):
    """postBuild disables nbgrader's instructor extensions system-wide (a jupyter_server_config.d file
    of lower priority, as here); LAB_INSTRUCTOR=1 turns them on again for the lecturer's server."""
    import json

    system = tmp_path / "system"
    (system / "jupyter_server_config.d").mkdir(parents=True)
    (system / "jupyter_server_config.d" / "nbgrader.json").write_text(json.dumps({"ServerApp": {"jpserver_extensions": {
        "nbgrader.server_extensions.formgrader": False, "nbgrader.server_extensions.course_list": False}}}))
    run = server_start.start_once(config_path=Path(f"{SETTINGS}{os.pathsep}{system}"), instructor=True,
                                  probe=("formgrader",))
    assert run["probed"] == {"formgrader": 200}  # 404 without the lab's configuration (the system file wins)
    assert run["statuses"] == {path: 200 for path in server_start.FIRST_PAGE}


def test_the_stand_in_hub_refuses_unknown_tokens():
    import json
    import urllib.error
    import urllib.request

    hub = server_start.StandInHub()
    try:
        def ask(token: str) -> tuple[int, dict]:
            request = urllib.request.Request(hub.api_url + "/user", headers={"Authorization": f"token {token}"})
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    return response.status, json.loads(response.read())
            except urllib.error.HTTPError as err:
                return err.code, {}

        assert ask(hub.user_token) == (200, {"kind": "user", "name": "student", "admin": False, "groups": [],
                                             "scopes": hub.scopes, "session_id": ""})
        assert ask(hub.server_token)[0] == ask("0" * 32)[0] == ask("")[0] == 403
    finally:
        hub.close()


def test_stale_bytecode_finds_missing_and_outdated_pyc_and_compile_fixes_them(tmp_path):
    import py_compile

    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name in ("fresh", "missing", "edited"):
        (package / f"{name}.py").write_text(f"NAME = {name!r}\n")
    for name in ("__init__", "fresh", "edited"):
        py_compile.compile(str(package / f"{name}.py"), doraise=True)
    (package / "edited.py").write_text("NAME = 'edited, longer now'\n")  # the size in the header no longer matches
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    names = ["pkg", "pkg.fresh", "pkg.missing", "pkg.edited", "sys", "no.such.module"]
    stale = server_start.stale_bytecode(names, env=env)
    assert [entry["name"] for entry in stale] == ["pkg.missing", "pkg.edited"]
    assert not (package / "__pycache__" / f"missing.{sys.implementation.cache_tag}.pyc").exists(), "the probe wrote nothing"
    server_start.compile_bytecode(stale)
    assert server_start.stale_bytecode(names, env=env) == []


def test_importtime_rows_read_python_x_importtime():
    log = ("[I 2026-12-05 ServerApp] started\n"
           "import time: self [us] | cumulative | imported package\n"
           "import time:       120 |        120 |   _io\n"
           "import time:      3300 |     331000 | jupyterlab.labapp\n")
    assert server_start.importtime_rows(log) == [(120, 120, "_io"), (3300, 331000, "jupyterlab.labapp")]


# -- every hub tells the server who is an instructor ---------------------------------------------
def _spawner(name: str, admin: bool = False):
    return SimpleNamespace(user=SimpleNamespace(name=name, admin=admin))


def test_every_hub_marks_instructors_and_reads_the_lab_settings(monkeypatch, tmp_path):
    import yaml
    from traitlets.config.loader import PyFileConfigLoader

    # the single-machine hub: admins and LAB_INSTRUCTORS
    (tmp_path / "students.txt").write_text("alice\n")
    monkeypatch.setenv("LAB_STUDENTS", str(tmp_path / "students.txt"))
    monkeypatch.setenv("LAB_INSTRUCTORS", "grader, tutor")
    config = PyFileConfigLoader("jupyterhub_config.py", path=str(ROOT / "deploy")).load_config()
    env = config.Spawner.environment
    assert Path(env["JUPYTER_CONFIG_PATH"]) == SETTINGS
    assert config.Spawner.http_timeout >= 60  # a class starting at once needs more than the default 30 s
    role = env["LAB_INSTRUCTOR"]
    assert [role(_spawner("lecturer", admin=True)), role(_spawner("grader")), role(_spawner("tutor")),
            role(_spawner("alice")), role(_spawner("graders"))] == ["1", "1", "1", "0", "0"]

    # Kubernetes: the values' extraConfig, run as the chart runs it
    values = yaml.safe_load((ROOT / "deploy" / "z2jh" / "config.yaml").read_text())
    assert values["singleuser"]["extraEnv"]["JUPYTER_CONFIG_PATH"] == "/srv/lab/deploy/jupyter"
    c = SimpleNamespace(KubeSpawner=SimpleNamespace(environment={}))
    exec(values["hub"]["extraConfig"]["labInstructor"], {"c": c})
    role = c.KubeSpawner.environment["LAB_INSTRUCTOR"]
    assert [role(_spawner("lecturer", admin=True)), role(_spawner("alice"))] == ["1", "0"]

    # TLJH: the file linked into jupyterhub_config.d
    folder = tmp_path / "jupyterhub_config.d"
    folder.mkdir()
    (folder / "lab_servers.py").symlink_to(ROOT / "deploy" / "tljh" / "lab_servers.py")
    (tmp_path / "jupyterhub_config.py").write_text(
        "from glob import glob\nimport os\n"
        "for path in sorted(glob(os.path.join(os.path.dirname(__file__), 'jupyterhub_config.d', '*.py'))):\n"
        "    load_subconfig(path)\n")
    env = PyFileConfigLoader("jupyterhub_config.py", path=str(tmp_path)).load_config().Spawner.environment.get_value({})
    assert Path(env["JUPYTER_CONFIG_PATH"]) == SETTINGS and env["TRAITLETS_APPLICATION_RAISE_CONFIG_FILE_ERROR"] == "1"
    assert [env["LAB_INSTRUCTOR"](_spawner("lecturer", admin=True)), env["LAB_INSTRUCTOR"](_spawner("alice"))] == ["1", "0"]


def test_percentile_is_the_nearest_rank():
    values = [float(v) for v in range(20, 0, -1)]  # unsorted on purpose
    assert [server_start.percentile(values, q) for q in (5, 50, 95, 100)] == [1.0, 10.0, 19.0, 20.0]
    assert server_start.percentile([3.5], 95) == 3.5
