"""JupyterHub on one machine for a small class (deploy/README.md, "One machine").

Run as root from the lab's folder after `make .venv/.installed`:

    LAB_ADMIN=lecturer LAB_STUDENTS=deploy/students.txt .venv/bin/jupyterhub -f deploy/jupyterhub_config.py

Students log in with their machine account (PAM); accounts listed in LAB_STUDENTS (one name a line)
are created on first start. Each server gets the lab's environment (this .venv), the student copies
in ~/lab on first login (made by the student's own process: the hub never writes in a home), and
nbgrader's exchange for assignments (laid out by deploy/exchange.py, configured once in
deploy/jupyter/nbgrader_config.py). Idle servers are stopped by jupyterhub-idle-culler.

The hub listens on 127.0.0.1:8000 (plain HTTP for a TLS reverse proxy on this machine: Caddy,
nginx), or, given LAB_SSL_CERT and LAB_SSL_KEY, serves HTTPS itself (default :443). It refuses a
plain-HTTP address reachable from the network: PAM passwords would cross it in clear text.
Per-student memory and CPU limits are enforced only with systemdspawner (installed: it is used).
"""
import os
import sys
from pathlib import Path

c = get_config()  # noqa: F821

LAB = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# per-student figures from the load test (deploy/README.md, "Capacity"); override with the environment
MEM_LIMIT = os.environ.get("LAB_MEM_LIMIT", "1024M")
CPU_LIMIT = float(os.environ.get("LAB_CPU_LIMIT", "1"))
IDLE_TIMEOUT = int(os.environ.get("LAB_IDLE_TIMEOUT", "3600"))  # seconds without activity



def checked_bind_url(url: str, *, tls: bool) -> str:
    """``url`` if logins through it are encrypted: TLS by the hub itself, or plain HTTP on loopback only
    (behind a TLS reverse proxy on this machine). PAM passwords never cross a network in clear text."""
    import ipaddress
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https" and tls:
        return url
    if parts.scheme == "https":
        raise ValueError(f"LAB_BIND_URL {url} is https: set LAB_SSL_CERT and LAB_SSL_KEY as well")
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parts.scheme != "http" or not loopback:
        raise ValueError(f"LAB_BIND_URL {url} would carry passwords in clear text: bind plain HTTP to 127.0.0.1 "
                         "behind a TLS reverse proxy, or give the hub LAB_SSL_CERT/LAB_SSL_KEY (deploy/README.md)")
    return url


# where: plain HTTP on loopback for a TLS reverse proxy on this machine (the default), or TLS itself
TLS = bool(os.environ.get("LAB_SSL_CERT"))
if TLS:
    c.JupyterHub.ssl_cert = os.environ["LAB_SSL_CERT"]
    c.JupyterHub.ssl_key = os.environ["LAB_SSL_KEY"]
c.JupyterHub.bind_url = checked_bind_url(
    os.environ.get("LAB_BIND_URL", "https://:443" if TLS else "http://127.0.0.1:8000"), tls=TLS)
c.JupyterHub.cookie_secret_file = "/srv/jupyterhub/jupyterhub_cookie_secret"
c.JupyterHub.db_url = "sqlite:////srv/jupyterhub/jupyterhub.sqlite"

# who: PAM accounts; the class list creates the missing ones
c.JupyterHub.authenticator_class = "pam"
c.LocalAuthenticator.create_system_users = True
c.Authenticator.admin_users = {os.environ.get("LAB_ADMIN", "lecturer")}
students_file = os.environ.get("LAB_STUDENTS")
if students_file:
    c.Authenticator.allowed_users = {line.strip() for line in Path(students_file).read_text().splitlines()
                                     if line.strip() and not line.startswith("#")}

# what each student runs: this lab's environment, JupyterLab, the student copies in ~/lab
c.Spawner.cmd = [str(BIN / "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab/tree/lab/00_start_here.ipynb"
EXCHANGE = os.environ.get("LAB_EXCHANGE_ROOT", "/srv/nbgrader/exchange")  # laid out by deploy/exchange.py
# who grades: the hub's admins and the accounts in LAB_INSTRUCTORS (comma-separated, e.g. a grader account)
INSTRUCTORS = {name.strip() for name in os.environ.get("LAB_INSTRUCTORS", "").split(",") if name.strip()}


def lab_instructor(spawner) -> str:
    """``LAB_INSTRUCTOR`` for a server: "1" for an instructor (formgrader on), "0" for a student
    (the trimmed server of deploy/jupyter/jupyter_server_config.py)."""
    return "1" if spawner.user.admin or spawner.user.name in INSTRUCTORS else "0"


c.Spawner.environment = {
    "PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin",
    # every server's settings: deploy/jupyter (nbgrader_config.py: a missing exchange stops every
    # nbgrader command with the reason rather than using another folder; jupyter_server_config.py:
    # what a student's server leaves out, so it starts sooner)
    "JUPYTER_CONFIG_PATH": str(LAB / "deploy" / "jupyter"),
    "LAB_EXCHANGE_ROOT": EXCHANGE,
    "TRAITLETS_APPLICATION_RAISE_CONFIG_FILE_ERROR": "1",
    "LAB_INSTRUCTOR": lab_instructor,
}
# a whole class starting at once on this machine waits for CPU: 20 servers on 2 cores are ready after
# about 16 s (deploy/README.md, "Time to a ready server"; 30 s before the student servers were
# trimmed), where JupyterHub's default gives a server 30 s to answer before it fails the spawn
c.Spawner.http_timeout = 120
c.Spawner.mem_limit = MEM_LIMIT
c.Spawner.cpu_limit = CPU_LIMIT
try:  # systemd units enforce the limits above; LocalProcessSpawner would ignore them
    import systemdspawner  # noqa: F401

    c.JupyterHub.spawner_class = "systemdspawner.SystemdSpawner"
    c.SystemdSpawner.unit_extra_properties = {"RuntimeDirectoryPreserve": "no"}
except ImportError:
    c.JupyterHub.spawner_class = "localprocess"


# First login: the student copies (solutions removed) into ~/lab, made by the student's own process.
# The hub runs as root, and ~ belongs to the student, who can swap ~/lab for a symlink at any moment:
# root never creates, writes or chowns anything there. The work runs in a subprocess that first drops
# to the student's uid, gid and groups, then checks for ~/lab and makes it, so whatever a symlink
# points at, it is written with the student's own rights or not at all. The hook awaits that process
# (the hub's event loop keeps serving other logins meanwhile).
STUDENT_COPIES = os.environ.get("LAB_STUDENT_COPIES", "")  # a folder of ready copies (make student); else built
POPULATE_TIMEOUT_S = 300
_POPULATE = 'cd "$HOME" || exit 1; if [ -e lab ] || [ -L lab ]; then exit 0; fi; exec "$@"'


def student_process(name: str) -> dict:
    """Keyword arguments for a subprocess that runs as the account ``name``, never as root.

    Privileges are dropped by the child before it executes anything (uid, gid and the supplementary
    groups of the account, not root's); the environment is the account's own, not the hub's (which
    holds the hub's secrets); the working directory is set by the child once it is the student.
    """
    import pwd

    account = pwd.getpwnam(name)
    if account.pw_uid == 0:
        raise PermissionError(f"refusing to prepare a home as root for the account {name!r}")
    env = {"HOME": account.pw_dir, "USER": name, "LOGNAME": name, "LANG": "C.UTF-8",
           "PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin"}
    kwargs = {"env": env, "umask": 0o022, "start_new_session": True, "cwd": "/"}
    if os.geteuid() == 0:
        kwargs.update(user=account.pw_uid, group=account.pw_gid,
                      extra_groups=os.getgrouplist(name, account.pw_gid))
    elif account.pw_uid != os.geteuid():
        raise PermissionError(f"the hub runs as uid {os.geteuid()}: it cannot act as {name!r}")
    return kwargs


def populate_command(copies: str = STUDENT_COPIES) -> list[str]:
    """What the student's process runs in ~ when ~/lab is missing: copy the ready copies, or make them."""
    if copies:
        return ["cp", "-R", "--", str(Path(copies).resolve()), "lab"]
    return [str(BIN / "labkit-make-student"), "--out", "lab"]


async def populate_home(spawner) -> None:
    """Pre-spawn hook: the student copies into ~/lab on first login, as the student, off the event loop."""
    import asyncio
    import subprocess

    name = spawner.user.name
    process = await asyncio.create_subprocess_exec(
        "/bin/sh", "-c", _POPULATE, "populate-home", *populate_command(), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **student_process(name))
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout=POPULATE_TIMEOUT_S)
    except asyncio.TimeoutError:
        process.kill()
        await process.wait()
        output = f"no answer within {POPULATE_TIMEOUT_S} s".encode()
    if process.returncode:  # the server still starts: the student gets a lab without the copies
        spawner.log.warning("copying the student notebooks for %s failed (exit %s): %s", name,
                            process.returncode, output.decode(errors="replace")[-2000:])


c.Spawner.pre_spawn_hook = populate_home

# idle servers stop after IDLE_TIMEOUT (jupyterhub-idle-culler as a hub service)
c.JupyterHub.services = [{
    "name": "idle-culler",
    "command": [sys.executable, "-m", "jupyterhub_idle_culler", f"--timeout={IDLE_TIMEOUT}"],
}]
# (the lab's challenge service, which keeps the attack exercises' secrets and signs receipts, joins
# c.JupyterHub.services and c.JupyterHub.load_roles here: see its own section of deploy/README.md)
c.JupyterHub.load_roles = [{
    "name": "idle-culler",
    "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
    "services": ["idle-culler"],
}]

load_subconfig(str(Path(__file__).resolve().parent / "challenge_service_config.py"))  # noqa: F821  (secrets and grades: the challenge service)
