"""deploy/: the single-machine hub configuration loads as JupyterHub reads it, and the image holds
no solution: postBuild, run as repo2docker runs it (in a copy
of the committed tree, after the environment is installed), leaves no solution region in any
notebook and none of the files that carry answers (git history, tests, instructor notes), builds
the C kernel, and still gives a student copy of every unit."""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from labkit import course

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def test_post_build_leaves_no_solution_in_the_image(tmp_path):
    tree = tmp_path / "repo"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(tree)], check=True, timeout=120)
    # the working tree's postBuild (what this change commits), nbgrader's `jupyter` commands stubbed:
    # they configure the environment, not the tree
    shutil.copy(ROOT / "postBuild", tree / "postBuild")
    stub = tmp_path / "bin"
    stub.mkdir()
    (stub / "jupyter").write_text("#!/bin/sh\necho jupyter \"$@\" >> \"$STUB_LOG\"\n")
    (stub / "jupyter").chmod(0o755)
    env = dict(os.environ, PATH=os.pathsep.join([str(stub), str(Path(sys.executable).parent), os.environ["PATH"]]),
               XDG_CACHE_HOME=str(tmp_path / "cache"), STUB_LOG=str(tmp_path / "jupyter.log"))
    assert os.stat(ROOT / "postBuild").st_mode & stat.S_IXUSR, "repo2docker runs postBuild only if executable"
    done = subprocess.run(["bash", "postBuild"], cwd=tree, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr

    assert not (tree / ".git").exists() and not (tree / "tests").exists()
    assert not (tree / "notebooks" / "instructor").exists()
    notebooks = sorted(p.name for p in (tree / "notebooks").glob("*.ipynb"))
    assert notebooks == [p.name for p in course.notebook_paths(ROOT / "notebooks")] != []
    leaking = [name for name in notebooks if "BEGIN SOLUTION" in (tree / "notebooks" / name).read_text()]
    assert not leaking, f"solutions left in the image: {leaking}"
    assert list((tmp_path / "cache" / "labkit").glob("relu_kernel_*.so")), "the C kernel was not built"
    assert "nbgrader.server_extensions.formgrader" in (tmp_path / "jupyter.log").read_text()


def test_single_machine_config_loads_with_culler_and_limits(monkeypatch, tmp_path):
    from traitlets.config.loader import PyFileConfigLoader

    (tmp_path / "students.txt").write_text("# class list\nalice\nbob\n")
    monkeypatch.setenv("LAB_STUDENTS", str(tmp_path / "students.txt"))
    config = PyFileConfigLoader("jupyterhub_config.py", path=str(ROOT / "deploy")).load_config()
    assert config.Authenticator.allowed_users == {"alice", "bob"}
    assert config.JupyterHub.authenticator_class == "pam"  # real accounts, never the dummy login
    culler = config.JupyterHub.services[0]
    assert culler["name"] == "idle-culler" and "jupyterhub_idle_culler" in culler["command"]
    sys.path.insert(0, str(ROOT / "deploy"))
    import capacity  # the limit is the one the committed load test gives (deploy/README.md, Capacity)

    need = capacity.guarantees(json.loads((ROOT / "deploy" / "results" / "loadtest.json").read_text()))
    assert config.Spawner.mem_limit == f"{need['memory_limit_mb']}M" and config.Spawner.cpu_limit == 1
