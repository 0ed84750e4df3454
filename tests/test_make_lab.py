"""The README's `make lab NOBROWSER=1` in a fresh clone serves JupyterLab, as root or not, and the
README's `make test` (what CI runs) includes the second CPU path.

The clone (of the committed state) reuses the running interpreter's environment (its ``bin/``
linked into the clone's ``.venv``, with the install stamp newer than ``pyproject.toml``) so make
skips the install; all traffic stays on the loopback interface.
"""
import http.client
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STARTUP_S = 60
JUPYTER = Path(sys.prefix) / "bin" / "jupyter"

pytestmark = pytest.mark.skipif(not (shutil.which("git") and shutil.which("make")), reason="needs git and make")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status(port: int, path: str) -> int | None:
    """The HTTP status of GET ``path`` (redirects not followed), or None if nothing answers yet."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    except OSError:
        return None
    finally:
        conn.close()


@pytest.fixture
def clone(tmp_path):
    """A fresh `git clone` of this repository whose .venv is the running environment."""
    if not JUPYTER.exists():
        pytest.skip(f"no JupyterLab next to the running interpreter ({JUPYTER})")
    target = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(target)], check=True, timeout=120)
    venv = target / ".venv"
    venv.mkdir()
    (venv / "bin").symlink_to(Path(sys.prefix) / "bin")
    stamp = venv / ".installed"
    stamp.touch()
    later = (target / "pyproject.toml").stat().st_mtime + 10
    os.utime(stamp, (later, later))
    return target


def test_make_lab_serves_jupyterlab_in_a_fresh_clone(clone, tmp_path):
    port, token = _free_port(), secrets.token_hex(16)
    lab_args = f"--IdentityProvider.token={token} --ServerApp.ip=127.0.0.1 --ServerApp.port_retries=0"
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    log_path = tmp_path / "make_lab.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(["make", "lab", "NOBROWSER=1", f"PORT={port}", f"LAB_ARGS={lab_args}"],
                                cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline, status = time.monotonic() + STARTUP_S, None
        while time.monotonic() < deadline and proc.poll() is None:
            status = _status(port, f"/lab?token={token}")
            if status == 200:
                break
            time.sleep(0.5)
        output = log_path.read_text(errors="replace")
        assert status == 200, (f"`make lab` did not serve /lab within {STARTUP_S} s (last status {status}, "
                               f"exit code {proc.poll()}); its output:\n{output[-3000:]}")
        assert _status(port, "/lab?token=wrong") != 200, "the server answered without the token"
        as_root = os.geteuid() == 0
        assert ("--allow-root" in output) == as_root, output[-3000:]
        if as_root:
            assert sum("running as root" in line for line in output.splitlines()) == 1, output[-3000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # make and JupyterLab: the whole session
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    assert _status(port, "/lab") is None, "JupyterLab kept running after its process group was stopped"


def test_make_lab_adds_allow_root_only_for_root(tmp_path):
    """The command make would run, for uid 0 and for an ordinary uid (a fake `id` on PATH)."""
    commands = {}
    for uid in ("0", "1000"):
        fake = tmp_path / uid
        fake.mkdir()
        (fake / "id").write_text(f"#!/bin/sh\necho {uid}\n")
        (fake / "id").chmod(0o755)
        env = dict(os.environ, PATH=f"{fake}{os.pathsep}{os.environ['PATH']}")
        out = subprocess.run(["make", "-n", "-o", ".venv/.installed", "lab", "NOBROWSER=1"],
                             cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout
        commands[uid] = out
    assert "--allow-root" in commands["0"] and "running as root" in commands["0"]
    assert "--allow-root" not in commands["1000"] and "root" not in commands["1000"]
    assert all("jupyter lab notebooks/00_start_here.ipynb" in c and "--no-browser" in c for c in commands.values())


def test_make_test_also_runs_the_second_cpu_path():
    """CI runs `make test` (.ci/run); it must end with the rounding-sensitive tests on portable kernels."""
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("make test")
    out = subprocess.run(["make", "-n", "-o", ".venv/.installed", "test"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    portable = [line for line in out.splitlines() if "ATEN_CPU_CAPABILITY=default" in line]
    assert len(portable) == 1 and "LABKIT_KERNEL_ISA=baseline" in portable[0], out
    for target in ("tests/test_neural_kernel.py", "tests/test_defence.py", "tests/test_backdoor_neural.py",
                   *(f"notebooks/{nb}.ipynb" for nb in ("05_relu_circuits", "06_cipher_networks",
                                                         "07_secure_networks", "08_backdoors"))):
        assert target in portable[0] and (ROOT / target).exists(), target
