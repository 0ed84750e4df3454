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


# -- the privilege boundary of the single-machine hub (runs as root, students are real accounts) --
needs_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("useradd") is None,
    reason="needs root and useradd: the test creates real unprivileged accounts to cross the hub's privilege boundary")


@pytest.fixture
def accounts():
    """A factory of real, unprivileged accounts with homes in a fresh folder; all removed afterwards.

    The folder is traversable by everyone (a home under pytest's root-only tmp_path would not be).
    """
    import secrets
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="labkit-accounts-"))
    base.chmod(0o755)
    made = []

    def make(role: str):
        import pwd

        name = f"lk{role[:8]}{secrets.token_hex(3)}"
        subprocess.run(["useradd", "--create-home", "--home-dir", str(base / "home" / name), "--shell", "/bin/sh",
                        "--user-group", name], check=True, capture_output=True, timeout=60)
        made.append(name)
        return pwd.getpwnam(name)

    (base / "home").mkdir(mode=0o755)
    make.base = base
    yield make
    for name in made:
        subprocess.run(["userdel", name], capture_output=True, timeout=60)
        subprocess.run(["groupdel", name], capture_output=True, timeout=60)
    shutil.rmtree(base, ignore_errors=True)


def _interpreter_for(account) -> str:
    """A Python the account may run (this venv's may sit under a root-only folder)."""
    for candidate in (sys.executable, "/usr/bin/python3", shutil.which("python3") or ""):
        try:
            if candidate and subprocess.run([candidate, "-c", "0"], user=account.pw_uid, group=account.pw_gid,
                                            extra_groups=[], capture_output=True, timeout=60).returncode == 0:
                return candidate
        except OSError:
            continue
    pytest.skip("no Python interpreter the unprivileged account may run")


def _load_hub_config(monkeypatch, **env):
    from traitlets.config.loader import PyFileConfigLoader

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return PyFileConfigLoader("jupyterhub_config.py", path=str(ROOT / "deploy")).load_config()


def _spawner(name: str):
    import logging
    from types import SimpleNamespace

    return SimpleNamespace(user=SimpleNamespace(name=name), log=logging.getLogger("test-hook"))


def _fingerprint(folder: Path) -> dict:
    """Owner, mode, size and times of a folder and everything in it (nothing followed)."""
    found = {}
    for path in [folder, *sorted(folder.rglob("*"))]:
        st = os.lstat(path)
        found[str(path)] = (st.st_uid, st.st_gid, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    return found


WATCHER = r'''
import os, stat, sys, time
home, victim, stop = sys.argv[1:4]
lab = os.path.join(home, "lab")
swaps = 0
while not os.path.exists(stop):
    try:
        st = os.lstat(lab)
    except FileNotFoundError:
        continue
    if stat.S_ISDIR(st.st_mode):  # the hook just made ~/lab: swap it for a symlink to the victim
        try:
            os.rename(lab, f"{lab}.moved{swaps}")
            os.symlink(victim, lab)
            swaps += 1
        except OSError:
            pass
print(swaps)
'''


@needs_root
def test_pre_spawn_hook_never_acts_as_root_in_a_students_home(accounts, monkeypatch):
    """The attack of the issue: while the hub prepares ~/lab, the student swaps it for a symlink to a
    root-owned folder. Root must never write into or chown that folder or a root-only file in it,
    however the race falls; the student copies are made by the student's own process."""
    import asyncio

    student = accounts("student")
    home = Path(student.pw_dir)
    victim = accounts.base / "victim"
    victim.mkdir(mode=0o755)
    secret = victim / "root-only.txt"
    secret.write_text("root only\n")
    secret.chmod(0o600)
    copies = accounts.base / "copies"  # what `make student` would give, 200 files so the copy takes a while
    copies.mkdir(mode=0o755)
    for i in range(200):
        (copies / f"{i:03d}_unit.ipynb").write_text("{}\n" * 50)
    config = _load_hub_config(monkeypatch, LAB_STUDENT_COPIES=str(copies))
    hook = config.Spawner.pre_spawn_hook
    before = _fingerprint(victim)

    # without an attacker: ~/lab holds the copies, every file the student's
    asyncio.run(hook(_spawner(student.pw_name)))
    made = [home / "lab", *(home / "lab").rglob("*")]
    assert len(made) == 201 and all(os.lstat(p).st_uid == student.pw_uid for p in made)
    asyncio.run(hook(_spawner(student.pw_name)))  # a second login leaves an existing ~/lab alone
    assert len([home / "lab", *(home / "lab").rglob("*")]) == 201
    shutil.rmtree(home / "lab")

    # with the attacker: a watcher running as the student swaps ~/lab whenever it appears
    stop = accounts.base / "stop"
    watcher = subprocess.Popen([_interpreter_for(student), "-c", WATCHER, str(home), str(victim), str(stop)],
                               user=student.pw_uid, group=student.pw_gid, extra_groups=[], stdout=subprocess.PIPE,
                               text=True, cwd="/")
    try:
        for _ in range(40):
            asyncio.run(hook(_spawner(student.pw_name)))
            lab = home / "lab"
            if lab.is_symlink():
                lab.unlink()  # (the test's reset; unlink never follows the link)
            elif lab.exists():
                shutil.rmtree(lab)  # fd-based, never follows symlinks
    finally:
        stop.touch()
        swaps = int(watcher.communicate(timeout=60)[0] or 0)
    assert swaps > 0, "the watcher never swapped ~/lab: the race was not exercised"
    # the planted link itself: ~/lab already exists, the hook leaves it (and what it points at) alone
    (home / "lab").symlink_to(victim)
    asyncio.run(hook(_spawner(student.pw_name)))
    assert _fingerprint(victim) == before, "something wrote into or chowned the root-owned folder"
    assert secret.read_text() == "root only\n" and oct(secret.stat().st_mode & 0o777) == "0o600"


@needs_root
def test_pre_spawn_hook_runs_off_the_event_loop(accounts, monkeypatch):
    """The hook awaits the student's process: the hub's loop keeps answering while it runs."""
    import asyncio
    import time

    student = accounts("slow")
    hook = _load_hub_config(monkeypatch, LAB_STUDENT_COPIES=str(accounts.base)).Spawner.pre_spawn_hook
    hook.__globals__["populate_command"] = lambda: ["sleep", "2"]  # a copy that takes two seconds

    async def main():
        gaps, last, done = [], time.monotonic(), asyncio.Event()

        async def ticker():
            nonlocal last
            while not done.is_set():
                await asyncio.sleep(0.02)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        tick = asyncio.ensure_future(ticker())
        started = time.monotonic()
        await hook(_spawner(student.pw_name))
        took = time.monotonic() - started
        done.set()
        await tick
        return took, max(gaps), len(gaps)

    took, worst_gap, ticks = asyncio.run(main())
    assert took >= 2 and ticks > 20, (took, ticks)
    assert worst_gap < 0.5, f"the event loop stalled for {worst_gap:.2f} s while the hook ran"


def test_pre_spawn_hook_refuses_root_and_other_accounts(monkeypatch):
    config = _load_hub_config(monkeypatch)
    student_process = config.Spawner.pre_spawn_hook.__globals__["student_process"]
    with pytest.raises(PermissionError, match="as root"):
        student_process("root")
    kwargs = student_process("nobody")
    if os.geteuid() == 0:
        import pwd

        nobody = pwd.getpwnam("nobody")
        assert (kwargs["user"], kwargs["group"]) == (nobody.pw_uid, nobody.pw_gid)
        assert 0 not in kwargs["extra_groups"], "root's groups must not reach the student's process"
    assert kwargs["env"]["HOME"] and "JUPYTERHUB_API_TOKEN" not in kwargs["env"] and kwargs["cwd"] == "/"
