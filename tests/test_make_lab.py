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
        # the file browser starts at the repository's root: student/ copies open from the same lab
        assert _status(port, f"/api/contents/notebooks/00_start_here.ipynb?content=0&token={token}") == 200
        assert _status(port, f"/api/contents/README.md?content=0&token={token}") == 200
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
    assert "--allow-root" not in commands["1000"] and "as root" not in commands["1000"]
    assert all("jupyter lab notebooks/00_start_here.ipynb --ServerApp.root_dir=." in c and "--no-browser" in c
               for c in commands.values())


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


def test_make_lab_student_opens_the_student_copies():
    out = subprocess.run(["make", "-n", "-o", ".venv/.installed", "lab-student", "NOBROWSER=1"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    assert "labkit-make-student" in out and "jupyter lab student/00_start_here.ipynb --ServerApp.root_dir=." in out


# -- torch: the CPU build unless CUDA is asked for; an index that does not answer never stalls ---------
sys.path.insert(0, str(ROOT / "deploy"))
import install_torch  # noqa: E402


class _Index:
    """A local HTTP server: ``answer=True`` serves /torch/, ``answer=False`` accepts and never replies."""

    def __init__(self, answer: bool):
        import http.server
        import threading

        self.sock = None
        if answer:
            class Handler(http.server.BaseHTTPRequestHandler):
                def do_HEAD(self):
                    self.send_response(200 if self.path == "/whl/cpu/torch/" else 404)
                    self.end_headers()

                def log_message(self, *args):
                    pass

            self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
            threading.Thread(target=self.server.serve_forever, daemon=True).start()
            port = self.server.server_address[1]
        else:
            self.server = None
            self.sock = socket.socket()
            self.sock.bind(("127.0.0.1", 0))
            self.sock.listen(8)  # connections queue up, nothing ever answers
            port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/whl/cpu"

    def close(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
        if self.sock:
            self.sock.close()


def test_torch_variant_is_cpu_on_linux_without_a_gpu():
    assert install_torch.resolve("auto", system="Linux", gpu=False) == "cpu"
    assert install_torch.resolve("auto", system="Linux", gpu=True) == "cuda"
    assert install_torch.resolve("auto", system="Darwin", gpu=False) == "default"
    assert install_torch.resolve("cuda", system="Linux", gpu=False) == "cuda"
    with pytest.raises(ValueError, match="TORCH must be one of"):
        install_torch.resolve("rocm")


def test_torch_plan_uses_the_cpu_index_when_it_answers(monkeypatch):
    monkeypatch.setattr(install_torch, "installed_build", lambda: None)
    monkeypatch.setattr(install_torch, "has_nvidia_gpu", lambda: False)
    index = _Index(answer=True)
    try:
        args, why = install_torch.plan("cpu", index=index.url, timeout=5)
    finally:
        index.close()
    assert args == ["install", "--index-url", index.url, "torch==2.13.0"] and "CPU build" in why


def test_torch_plan_falls_back_quickly_when_the_index_does_not_answer(monkeypatch):
    monkeypatch.setattr(install_torch, "installed_build", lambda: None)
    for answer in (None, False):  # a closed port, then a server that accepts and stays silent
        index = _Index(answer=False) if answer is False else None
        url = index.url if index else f"http://127.0.0.1:{_free_port()}/whl/cpu"
        started = time.monotonic()
        try:
            args, why = install_torch.plan("cpu", index=url, timeout=1)
        finally:
            if index:
                index.close()
        assert time.monotonic() - started < 3, "the probe must not wait longer than its deadline"
        assert args == ["install", "torch==2.13.0"] and "did not answer" in why


def test_torch_plan_keeps_an_installed_build_without_asking_any_index(monkeypatch):
    silent = _Index(answer=False)
    try:
        monkeypatch.setattr(install_torch, "installed_build", lambda: "cpu")
        started = time.monotonic()
        assert install_torch.plan("cpu", index=silent.url, timeout=30)[0] is None
        assert time.monotonic() - started < 1
        args, _ = install_torch.plan("cuda", index=silent.url, timeout=30)
        assert args == ["install", "--force-reinstall", "torch===2.13.0"], "CUDA asked for: never +cpu again"
        monkeypatch.setattr(install_torch, "installed_build", lambda: "cuda")
        assert install_torch.plan("cuda", index=silent.url)[0] is None
    finally:
        silent.close()


def test_this_environment_has_the_pinned_cpu_torch_and_the_script_leaves_it():
    """What `make` runs on this machine: torch 2.13.0's CPU build is there, so nothing is installed."""
    if install_torch.installed_build() is None:
        pytest.skip("torch 2.13.0 is not installed in this environment")
    done = subprocess.run([sys.executable, str(ROOT / "deploy" / "install_torch.py"), "--print"], capture_output=True,
                          text=True, timeout=60, env=dict(os.environ, TORCH_INDEX_URL="http://127.0.0.1:9/x",
                                                          TORCH="auto"))
    assert done.returncode == 0 and "is installed" in done.stdout and "pip" not in done.stdout, done.stdout


def test_make_installs_torch_through_the_script():
    out = subprocess.run(["make", "-n", "-W", "pyproject.toml", ".venv/.installed"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert "TORCH=auto" in out and "deploy/install_torch.py" in out and "pip install --quiet torch" not in out
    out = subprocess.run(["make", "-n", "-o", ".venv/.installed", "lab", "TORCH=cuda", "NOBROWSER=1"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    assert "TORCH=cuda" in out and "install_torch.py" in out


def test_every_install_path_pins_the_same_torch_and_conda_takes_the_cpu_build():
    import re

    pins = set(re.findall(r'torch==([\d.]+)', (ROOT / "pyproject.toml").read_text()))
    environment = (ROOT / "environment.yml").read_text()
    assert pins == {install_torch.TORCH_VERSION} == set(re.findall(r"torch==([\d.]+)", environment))
    assert f"--extra-index-url {install_torch.CPU_INDEX}" in environment
