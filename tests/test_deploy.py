"""deploy/: the single-machine hub configuration loads as JupyterHub reads it, and the image holds
no solution: postBuild, run as repo2docker runs it (in a copy
of the committed tree, after the environment is installed), leaves no solution region in any
notebook and none of the files that carry answers (git history, tests, instructor notes), builds
the C kernel, and still gives a student copy of every unit."""
from __future__ import annotations

import json
import re
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
    (stub / "pip").write_text("#!/bin/sh\necho pip \"$@\" >> \"$STUB_LOG\"\n")  # not this environment's pip
    (stub / "pip").chmod(0o755)
    env = dict(os.environ, PATH=os.pathsep.join([str(stub), str(Path(sys.executable).parent), os.environ["PATH"]]),
               XDG_CACHE_HOME=str(tmp_path / "cache"), STUB_LOG=str(tmp_path / "jupyter.log"))
    assert os.stat(ROOT / "postBuild").st_mode & stat.S_IXUSR, "repo2docker runs postBuild only if executable"
    done = done_build = subprocess.run(["bash", "postBuild"], cwd=tree, env=env, capture_output=True, text=True,
                                       timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr

    assert not (tree / ".git").exists() and not (tree / "tests").exists()
    assert not (tree / "notebooks" / "instructor").exists()
    notebooks = sorted(p.name for p in (tree / "notebooks").glob("*.ipynb"))
    assert notebooks == [p.name for p in course.notebook_paths(ROOT / "notebooks")] != []
    leaking = [name for name in notebooks if "BEGIN SOLUTION" in (tree / "notebooks" / name).read_text()]
    assert not leaking, f"solutions left in the image: {leaking}"
    assert list((tmp_path / "cache" / "labkit").glob("relu_kernel_*.so")), "the C kernel was not built"
    built = sorted(p.name for p in (tree / ".kernel-cache").glob("relu_kernel_*.so"))
    assert len(built) == 2, "both dtypes' kernels belong in the image, outside the home folder"

    # a student whose home hides the image's ~/.cache finds them there and compiles nothing
    home_cache = tmp_path / "student-cache"
    probe = ("import torch; from labkit.neural import kernel; "
             "print(kernel._compile(torch.float64)[0], kernel._compile(torch.float32)[0])")
    done = subprocess.run([sys.executable, "-c", probe], cwd=tree, capture_output=True, text=True, timeout=300,
                          env=dict(env, XDG_CACHE_HOME=str(home_cache), LABKIT_KERNEL_CACHE=str(tree / ".kernel-cache"),
                                   PYTHONPATH=str(tree)))
    assert done.returncode == 0, done.stderr
    assert sorted(Path(p).name for p in done.stdout.split()) == built and not home_cache.exists()
    assert "nbgrader.server_extensions.formgrader" in (tmp_path / "jupyter.log").read_text()
    # the image drops the parser jsonschema would build at every server start (postBuild step 4)
    assert "pip uninstall --yes --quiet rfc3987-syntax lark" in (tmp_path / "jupyter.log").read_text()
    # and holds the byte-code of every labkit module, which students' processes cannot write (step 5)
    import importlib.util

    sources = sorted((tree / "labkit").rglob("*.py"))
    assert sources and not [p for p in sources if not Path(importlib.util.cache_from_source(str(p))).is_file()]
    assert "0 without up-to-date byte-code" in done_build.stdout


def test_single_machine_config_loads_with_culler_and_limits(monkeypatch, tmp_path):
    from traitlets.config.loader import PyFileConfigLoader

    (tmp_path / "students.txt").write_text("# class list\nalice\nbob\n")
    monkeypatch.setenv("LAB_STUDENTS", str(tmp_path / "students.txt"))
    config = PyFileConfigLoader("jupyterhub_config.py", path=str(ROOT / "deploy")).load_config()
    assert config.Authenticator.allowed_users == {"alice", "bob"}
    assert config.JupyterHub.authenticator_class == "pam"  # real accounts, never the dummy login
    env = config.Spawner.environment  # every server reads the one nbgrader configuration, strictly
    assert Path(env["JUPYTER_CONFIG_PATH"], "nbgrader_config.py").is_file()
    assert env["TRAITLETS_APPLICATION_RAISE_CONFIG_FILE_ERROR"] == "1"
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


def _remove_lab(lab: Path) -> None:
    """The race test's reset between two logins: remove ~/lab, whatever the watcher has just swapped
    it for (a link is unlinked, never followed; a folder goes with fd-based rmtree, which refuses a
    folder swapped for a link under it), looking again when a swap lands between check and removal."""
    for _ in range(100):
        try:
            if lab.is_symlink():
                lab.unlink()
            elif lab.exists():
                shutil.rmtree(lab)
            return
        except OSError:  # swapped between the check and the removal
            continue


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
            _remove_lab(home / "lab")
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


# -- nbgrader's exchange with a uid per student -------------------------------------------------
def _nbgrader_as(account, *args: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    """Run ``nbgrader <args>`` as ``account`` (this environment's nbgrader, on a Python it may run)."""
    import sysconfig

    python = _interpreter_for(account)
    purelib = Path(sysconfig.get_paths()["purelib"])
    closed = [str(folder) for folder in (purelib, *purelib.parents) if not folder.stat().st_mode & stat.S_IXOTH]
    if closed:  # e.g. a clone in a `mktemp -d` folder (mode 0700): clone where every account can read
        pytest.skip(f"this environment's packages are out of other accounts' reach ({closed[-1]} is not "
                    "traversable by others), so the accounts cannot run its nbgrader")
    code = (f"import sys; sys.path.insert(0, {str(purelib)!r}); sys.argv[0] = 'nbgrader'; "
            "from nbgrader.apps.nbgraderapp import main; sys.exit(main())")
    return subprocess.run([python, "-c", code, *args], cwd=cwd, user=account.pw_uid, group=account.pw_gid,
                          extra_groups=[], env=env, capture_output=True, text=True, timeout=300)


ATTACK = r'''
import json, os, sys
inbound, outbound, alice_prefix, alice_full = sys.argv[1:5]
tried = {}
def attempt(name, action):
    try:
        action()
        tried[name] = "done"
    except OSError as err:
        tried[name] = type(err).__name__
attempt("list inbound", lambda: os.listdir(inbound))
attempt("read alice's submission by its guessable name", lambda: os.listdir(alice_prefix))
attempt("rename alice's submission", lambda: os.rename(alice_full, alice_full + "x"))
attempt("remove alice's submission", lambda: os.rmdir(alice_full))
release = os.path.join(outbound, "a1", "a1.ipynb")
attempt("change the release", lambda: open(release, "a").write("x"))
attempt("add to the release", lambda: open(os.path.join(outbound, "a1", "extra.ipynb"), "w").write("x"))
attempt("replace the release", lambda: os.rename(os.path.join(outbound, "a1"), os.path.join(outbound, "b1")))
attempt("read the release", lambda: open(release).read())
print(json.dumps(tried))
'''


@needs_root
def test_two_students_cannot_reach_each_others_submissions(accounts):
    """nbgrader's own commands, run by three real accounts on the layout of deploy/exchange.py:
    the instructor releases, alice and bob fetch and submit; bob then tries to read, rename or remove
    alice's submission and to change the release, and fails; what permissions cannot stop (a
    submission under alice's name, a file added to hers by someone who learnt its name) `check` names."""
    sys.path.insert(0, str(ROOT / "deploy"))
    import exchange

    instructor, alice, bob = accounts("teacher"), accounts("alice"), accounts("bob")
    root, course_id = accounts.base / "exchange", "deep-neural-crypto-lab"
    exchange.setup(root, course_id, instructor.pw_name)
    course = Path(instructor.pw_dir) / "course"
    release = course / "release" / "a1"
    release.mkdir(parents=True)
    (course / "nbgrader_config.py").write_text(f'c = get_config()\nc.CourseDirectory.course_id = "{course_id}"\n')
    (release / "a1.ipynb").write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    subprocess.run(["chown", "-R", f"{instructor.pw_uid}:{instructor.pw_gid}", str(course)], check=True)
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "JUPYTER_CONFIG_PATH": str(ROOT / "deploy" / "jupyter"),
           "TRAITLETS_APPLICATION_RAISE_CONFIG_FILE_ERROR": "1", "LAB_EXCHANGE_ROOT": str(root)}

    def as_(account, *args, cwd=None):
        done = _nbgrader_as(account, *args, cwd=cwd or Path(account.pw_dir), env=dict(env, HOME=account.pw_dir))
        assert done.returncode == 0, f"nbgrader {' '.join(args)} as {account.pw_name}:\n{done.stdout}\n{done.stderr}"
        return done

    as_(instructor, "release_assignment", "a1", cwd=course)
    for student in (alice, bob):
        as_(student, "fetch_assignment", "a1")
        as_(student, "submit", "a1")
    inbound, outbound = root / course_id / "inbound", root / course_id / "outbound"
    assert oct(inbound.stat().st_mode & 0o7777) == oct(exchange.INBOUND_MODE), "release_assignment changed inbound"
    assert oct(root.stat().st_mode & 0o7777) == oct(exchange.ROOT_MODE), "release_assignment changed the root"
    submissions = {p.name.split("+")[0]: p for p in inbound.iterdir()}
    assert set(submissions) == {alice.pw_name, bob.pw_name}
    theirs = submissions[alice.pw_name]
    assert theirs.stat().st_uid == alice.pw_uid and len(theirs.name.split("+")) == 4
    assert exchange.check(root, course_id) == []

    guessable = "+".join(theirs.name.split("+")[:3])  # student, assignment, time: all but the random part
    done = subprocess.run([_interpreter_for(bob), "-c", ATTACK, str(inbound), str(outbound), str(inbound / guessable),
                           str(theirs)], user=bob.pw_uid, group=bob.pw_gid, extra_groups=[], capture_output=True,
                          text=True, timeout=60, cwd="/")
    tried = json.loads(done.stdout)
    assert tried.pop("read the release") == "done", "students must be able to read the release"
    assert all(outcome in ("PermissionError", "FileNotFoundError") for outcome in tried.values()), tried
    assert tried["list inbound"] == "PermissionError" and tried["remove alice's submission"] == "PermissionError"

    # bob submits under alice's name, and adds a file to her folder (as if he had learnt its name)
    forged = _nbgrader_as(bob, "submit", "a1", f"--student={alice.pw_name}", cwd=Path(bob.pw_dir),
                          env=dict(env, HOME=bob.pw_dir))
    assert forged.returncode == 0, forged.stderr
    subprocess.run(["sh", "-c", f"echo x > '{theirs}/planted.txt'"], user=bob.pw_uid, group=bob.pw_gid,
                   extra_groups=[], check=True, timeout=60)
    problems = exchange.check(root, course_id)
    assert len(problems) == 2 and all(alice.pw_name in p for p in problems), problems
    assert any("planted.txt" in p for p in problems) and any(f"uid {bob.pw_uid}" in p for p in problems)
    assert exchange.main(["check", "--root", str(root), "--course", course_id]) == 1

    # without its exchange folder every nbgrader command stops and says why
    missing = _nbgrader_as(alice, "list", cwd=Path(alice.pw_dir),
                           env=dict(env, HOME=alice.pw_dir, LAB_EXCHANGE_ROOT=str(accounts.base / "nowhere")))
    assert missing.returncode != 0 and "exchange" in missing.stderr and "is missing" in missing.stderr


@needs_root
def test_exchange_setup_refuses_a_squatted_course_folder(accounts):
    sys.path.insert(0, str(ROOT / "deploy"))
    import exchange

    instructor, squatter = accounts("teacher"), accounts("squat")
    root = accounts.base / "exchange"
    exchange.setup(root, "other-course", instructor.pw_name)
    (root / "deep-neural-crypto-lab").mkdir()
    os.chown(root / "deep-neural-crypto-lab", squatter.pw_uid, squatter.pw_gid)
    with pytest.raises(exchange.ExchangeLayoutError, match="not to the instructor"):
        exchange.setup(root, "deep-neural-crypto-lab", instructor.pw_name)
    (root / "linked").symlink_to(accounts.base)
    with pytest.raises(exchange.ExchangeLayoutError, match="not a folder"):
        exchange.setup(root, "linked", instructor.pw_name)


@pytest.mark.parametrize("env, expected", [
    ({}, "http://127.0.0.1:8000"),
    ({"LAB_BIND_URL": "http://[::1]:8000"}, "http://[::1]:8000"),
    ({"LAB_SSL_CERT": "/etc/ssl/lab.pem", "LAB_SSL_KEY": "/etc/ssl/lab.key"}, "https://:443"),
    ({"LAB_SSL_CERT": "/c", "LAB_SSL_KEY": "/k", "LAB_BIND_URL": "https://:8443"}, "https://:8443"),
])
def test_single_machine_hub_listens_only_where_logins_are_encrypted(monkeypatch, env, expected):
    for key in ("LAB_BIND_URL", "LAB_SSL_CERT", "LAB_SSL_KEY"):
        monkeypatch.delenv(key, raising=False)
    config = _load_hub_config(monkeypatch, **env)
    assert config.JupyterHub.bind_url == expected
    assert bool(config.JupyterHub.get("ssl_cert")) == expected.startswith("https")


@pytest.mark.parametrize("url", ["http://:8000", "http://0.0.0.0:8000", "http://lab.example.org:80",
                                 "http://10.0.0.5:8000", "https://:443"])
def test_single_machine_hub_refuses_clear_text_on_the_network(monkeypatch, url):
    for key in ("LAB_SSL_CERT", "LAB_SSL_KEY"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(ValueError, match="LAB_BIND_URL"):
        _load_hub_config(monkeypatch, LAB_BIND_URL=url)


def _z2jh_values() -> dict:
    import yaml

    return yaml.safe_load((ROOT / "deploy" / "z2jh" / "config.yaml").read_text())


def test_kubernetes_values_hold_the_boundaries():
    """No login for everyone, no admin access to students' servers, no secret in the values, a uid
    per student computed as deploy/exchange.py checks it, and the settings every server shares."""
    from types import SimpleNamespace

    sys.path.insert(0, str(ROOT / "deploy"))
    import exchange

    values = _z2jh_values()
    hub = values["hub"]
    text = json.dumps(hub["config"])
    assert "allow_all" not in text and "admin_access" not in text and "client_secret" not in text
    assert hub["config"]["GenericOAuthenticator"]["allowed_groups"], "a course group decides who logs in"
    for name in ("OAUTH_CLIENT_ID", "OAUTH_CLIENT_SECRET"):
        assert hub["extraEnv"][name]["valueFrom"]["secretKeyRef"]["name"] == "lab-oauth"
    c = SimpleNamespace(KubeSpawner=SimpleNamespace(environment={}))
    exec(hub["extraConfig"]["labStudentUid"], {"c": c})
    uid_of = c.KubeSpawner.environment["LAB_UID"]
    for name in ("alice", "bob", "a.very-long_name@example.org"):
        uid = int(uid_of(SimpleNamespace(user=SimpleNamespace(name=name))))
        assert uid == exchange.student_uid(name) and 200000 <= uid < 200000 + 2**30
    single = values["singleuser"]
    assert single["cmd"][0] == "/srv/lab/deploy/z2jh/start-as-student" and single["uid"] == 0
    assert (ROOT / "deploy" / "z2jh" / "start-as-student").stat().st_mode & stat.S_IXUSR
    env = single["extraEnv"]
    assert env["JUPYTER_CONFIG_PATH"] == "/srv/lab/deploy/jupyter" and env["LABKIT_KERNEL_CACHE"].startswith("/srv/lab/")
    hook = " ".join(single["lifecycleHooks"]["postStart"]["exec"]["command"])
    assert hook.startswith("/srv/lab/deploy/z2jh/start-as-student") and '"$HOME/lab"' in hook
    assert single["defaultUrl"].startswith("/lab/tree/lab/"), "nbgitpuller's folder is the one students open"


def _z2jh_hub_config(values: dict, hub_env: dict[str, str]):
    """The hub's traitlets config as the chart's jupyterhub_config.py (chart 4.4.0) builds it from
    ``values``: singleuser.extraEnv, hub.services (each with the API token the chart keeps in its
    Secret), hub.loadRoles, then every hub.extraConfig entry in key order, exec'd with ``c``; the
    image's /srv/lab is this repository."""
    import copy

    from traitlets.config import Config

    values = copy.deepcopy(values)
    c = Config()
    c.KubeSpawner.environment = values["singleuser"]["extraEnv"]
    c.JupyterHub.services = []
    c.JupyterHub.load_roles = []
    for key, service in values["hub"].get("services", {}).items():
        service.setdefault("name", key)
        service.pop("apiToken", None)
        service["api_token"] = f"token-of-{key}-from-the-chart-secret"
        c.JupyterHub.services.append(service)
    for key, role in values["hub"].get("loadRoles", {}).items():
        c.JupyterHub.load_roles.append(dict(role, name=key))
    saved_path, saved_env = list(sys.path), dict(os.environ)
    os.environ.update(hub_env)
    try:
        for _, code in sorted(values["hub"]["extraConfig"].items()):
            exec(code.replace("/srv/lab/", f"{ROOT}/"), {"c": c})
    finally:
        sys.path[:] = saved_path
        os.environ.clear()
        os.environ.update(saved_env)
        sys.modules.pop("challenge_service_config", None)
    return c


def test_kubernetes_values_start_the_challenge_service():
    """Zero to JupyterHub runs the challenge service with deploy/challenge_service_config.py, as the
    single-machine hub does: hub.services' entry (and its token) completed, not duplicated; the
    lab's Python in the hub's image; the database URL from a Secret and never on the command line;
    the students' tokens allowed in, their servers told where it is, and the network open to it."""
    values = _z2jh_values()
    hub = values["hub"]
    env = {k: v for k, v in hub["extraEnv"].items() if isinstance(v, str)}
    secret = hub["extraEnv"]["LAB_CHALLENGES_DB"]["valueFrom"]["secretKeyRef"]
    assert (secret["name"], secret["key"]) == ("lab-challenges-db", "url")
    database = "postgresql://lab:pw-from-the-secret@db.example.org/challenges"
    c = _z2jh_hub_config(values, dict(env, LAB_CHALLENGES_DB=database))
    (service,) = [s for s in c.JupyterHub.services if s["name"] == "labkit-challenges"]
    assert service["api_token"] == "token-of-labkit-challenges-from-the-chart-secret"
    assert service["url"] == env["LAB_CHALLENGES_SERVICE_URL"] == "http://hub:10101"
    command = service["command"]
    assert command[:6] == ["/srv/lab/.venv/bin/python", "-m", "labkit.challenges", "serve", "--hub", "--state-dir"]
    assert command[6].startswith("/srv/jupyterhub/"), "the state (signing key, SQLite) lives on the hub's volume"
    assert command[command.index("--hub-api-url") + 1] == "http://127.0.0.1:8081/hub/api", "not back through the Service"
    assert command[command.index("--ip") + 1] == "0.0.0.0" and command[command.index("--notebooks") + 1] == str(
        ROOT / "notebooks"), "the instructor notebooks of the hub's image hold the quiz answer key"
    assert database not in " ".join(command) and "--db" not in command
    assert service["environment"]["LABKIT_CHALLENGES_DB"] == database
    assert service["environment"]["LABKIT_KERNEL_CACHE"] == "/srv/lab/.kernel-cache"
    assert service["oauth_no_confirm"] is True
    scope = "access:services!service=labkit-challenges"
    roles = {r["name"]: r["scopes"] for r in c.JupyterHub.load_roles}
    assert scope in roles["user"] and scope in roles["server"], "browsers and kernels may use the service"
    students = c.KubeSpawner.environment
    assert students["LABKIT_CHALLENGES_URL"] == "http://hub:10101/services/labkit-challenges/"
    assert callable(students["LAB_UID"]) and students["LABKIT_KERNEL_CACHE"], "the other extraConfig and extraEnv stay"
    assert {"name": "labkit-challenges", "port": 10101, "targetPort": 10101} in hub["service"]["extraPorts"]
    (ingress,) = hub["networkPolicy"]["ingress"]
    assert ingress["ports"] == [{"port": 10101}]
    assert ingress["from"] == [{"podSelector": {"matchLabels": {"hub.jupyter.org/network-access-hub": "true"}}}]
    (egress,) = values["singleuser"]["networkPolicy"]["egress"]
    assert egress["ports"] == [{"port": 10101}] and egress["to"][0]["podSelector"]["matchLabels"] == {"component": "hub"}
    dockerfile = (ROOT / "deploy" / "z2jh" / "hub.Dockerfile").read_text()
    chart = re.search(r"--version (\d+\.\d+\.\d+)", (ROOT / "deploy" / "z2jh" / "config.yaml").read_text()).group(1)
    assert f"FROM quay.io/jupyterhub/k8s-hub:{chart}\n" in dockerfile and "python -m venv /srv/lab/.venv" in dockerfile
    for copied in re.findall(r"^COPY (.+) /srv/lab/", dockerfile, re.M):
        assert all((ROOT / name).exists() for name in copied.split()), copied


def test_both_hubs_run_the_challenge_service_from_one_configuration(monkeypatch, tmp_path):
    """The single-machine hub loads the same file: one entry beside the culler, the database URL in
    the service's environment only, and students sent to the service's own address."""
    (tmp_path / "students.txt").write_text("alice\n")
    monkeypatch.setenv("LAB_STUDENTS", str(tmp_path / "students.txt"))
    monkeypatch.setenv("LAB_CHALLENGES_DB", "postgresql://lab:pw@localhost/challenges")
    config = _load_hub_config(monkeypatch)
    names = [s["name"] for s in config.JupyterHub.services]
    assert names == ["idle-culler", "labkit-challenges"]
    service = config.JupyterHub.services[1]
    assert service["url"] == "http://127.0.0.1:10101" and "--ip" not in service["command"]
    assert "pw" not in " ".join(service["command"]), "every local user can read a command line"
    assert service["environment"]["LABKIT_CHALLENGES_DB"] == "postgresql://lab:pw@localhost/challenges"
    assert config.Spawner.environment["LABKIT_CHALLENGES_URL"] == "http://127.0.0.1:10101/services/labkit-challenges/"
    assert config.Spawner.environment["TRAITLETS_APPLICATION_RAISE_CONFIG_FILE_ERROR"] == "1"
    sys.path.insert(0, str(ROOT / "deploy"))
    import challenge_service_config

    with pytest.raises(ValueError, match="LAB_CHALLENGES_SERVICE_URL"):
        challenge_service_config.service({"LAB_CHALLENGES_SERVICE_URL": "hub:10101"})


def test_tljh_loads_the_challenge_service_from_its_config_folder(monkeypatch, tmp_path):
    """TLJH loads each file of jupyterhub_config.d with load_subconfig: the linked file registers the
    service from the shared configuration, run by the users' Python (the hub's has no labkit)."""
    from traitlets.config.loader import PyFileConfigLoader

    for name in ("LAB_CHALLENGES_PYTHON", "LAB_CHALLENGES_STATE", "LAB_CHALLENGES_SERVICE_URL"):
        monkeypatch.delenv(name, raising=False)
    folder = tmp_path / "jupyterhub_config.d"
    folder.mkdir()
    (folder / "labkit_challenges.py").symlink_to(ROOT / "deploy" / "tljh" / "labkit_challenges.py")
    (tmp_path / "jupyterhub_config.py").write_text(  # what TLJH's own hub config does with the folder
        "from glob import glob\nimport os\n"
        "for path in sorted(glob(os.path.join(os.path.dirname(__file__), 'jupyterhub_config.d', '*.py'))):\n"
        "    load_subconfig(path)\n")
    before = dict(os.environ)
    config = PyFileConfigLoader("jupyterhub_config.py", path=str(tmp_path)).load_config()
    assert dict(os.environ) == before, "the hub's environment is left as it is"
    (service,) = config.JupyterHub.services.get_value([])  # appended to what TLJH sets (lazy in traitlets)
    assert service["name"] == "labkit-challenges"
    assert service["command"][:3] == ["/opt/tljh/user/bin/python", "-m", "labkit.challenges"]
    state = service["command"][service["command"].index("--state-dir") + 1]
    assert state == "/opt/tljh/state/labkit-challenges"
    assert service["environment"]["PYTHONPATH"] == str(ROOT)
    students = config.Spawner.environment.get_value({})
    assert students["LABKIT_CHALLENGES_URL"] == "http://127.0.0.1:10101/services/labkit-challenges/"
    roles = config.JupyterHub.load_roles.get_value([])
    assert any("access:services!service=labkit-challenges" in r["scopes"] for r in roles)


def test_start_as_student_refuses_a_missing_or_low_uid(tmp_path):
    script = str(ROOT / "deploy" / "z2jh" / "start-as-student")
    for uid in ("", "1000", "0", "12a"):
        done = subprocess.run(["sh", script, "true"], env={"PATH": "/usr/bin:/bin", "LAB_UID": uid},
                              capture_output=True, text=True, timeout=30)
        assert done.returncode != 0 and "LAB_UID" in done.stderr, (uid, done.stderr)


def test_hub_chart_and_single_user_server_share_a_major_version():
    """The chart's JupyterHub (named in the values' header), the pinned jupyterhub-singleuser and the
    installed one: JupyterHub needs hub and single-user server on one major version."""
    import re
    from importlib.metadata import version

    header = (ROOT / "deploy" / "z2jh" / "config.yaml").read_text()
    chart, hub = re.search(r"Chart (\d+\.\d+\.\d+) runs JupyterHub (\d+)\.\d+\.\d+", header).groups()
    assert "--version " + chart in header and "<chart" not in header
    pinned = re.search(r'"jupyterhub==(\d+)\.[\d.]+"', (ROOT / "pyproject.toml").read_text()).group(1)
    assert hub == pinned == version("jupyterhub").split(".")[0] == "5"
    readme = (ROOT / "deploy" / "README.md").read_text()
    assert f"--version {chart}" in readme and "jupyterhub==6" not in readme


def test_graded_copies_carry_no_widget_state_and_untouched_tests_raise_no_checksum_warning(tmp_path):
    """nbgrader's round trip on unit 00 (labkit-nbgrader-course's course config): an untouched
    release autogrades without a single "checksum has changed" warning and without saved widget
    state, even when the submission brought some along; a test cell a student edited is still reported."""
    import nbformat

    from labkit_tools import nbgrader_course as tool

    path = ROOT / "notebooks" / "00_start_here.ipynb"
    course_dir = tmp_path / "course"
    # unit 00 is done in class: its exercises are graded only when asked for
    assert tool.main(["--course", str(course_dir), "--grade-class-exercises", str(path)]) == 0
    release = nbformat.read(course_dir / "release" / path.stem / path.name, as_version=4)
    untouched = nbformat.from_dict(release)
    untouched.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {"x": "y" * 100_000}}}
    edited = nbformat.from_dict(release)
    test_cells = [c for c in edited.cells if c.metadata.get("nbgrader", {}).get("grade")]
    test_cells[0].source += "\nprint('a student was here')"
    for student, nb in (("untouched", untouched), ("edited", edited)):
        folder = course_dir / "submitted" / student / path.stem
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / path.name)
    done = tool.nbgrader(course_dir, "autograde", path.stem, "--force")
    log = done.stdout + done.stderr
    warnings = [line for line in log.splitlines() if "checksum" in line and "has changed" in line]
    assert len(warnings) == 1 and test_cells[0].metadata.nbgrader.grade_id in warnings[0], warnings
    for student in ("untouched", "edited"):
        graded = course_dir / "autograded" / student / path.stem / path.name
        assert "widgets" not in nbformat.read(graded, as_version=4).metadata
        assert graded.stat().st_size < 1_000_000, graded.stat().st_size
    assert tool.grades(course_dir, path.stem)["untouched"][0] == 0
