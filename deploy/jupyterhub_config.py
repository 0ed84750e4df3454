"""JupyterHub on one machine for a small class (deploy/README.md, "One machine").

Run as root from the lab's folder after `make .venv/.installed`:

    LAB_ADMIN=lecturer LAB_STUDENTS=deploy/students.txt .venv/bin/jupyterhub -f deploy/jupyterhub_config.py

Students log in with their machine account (PAM); accounts listed in LAB_STUDENTS (one name a line)
are created on first start. Each server gets the lab's environment (this .venv), the student copies
in ~/lab on first login, and nbgrader's exchange for assignments. Idle servers are stopped by
jupyterhub-idle-culler. Put TLS in front (LAB_SSL_CERT/LAB_SSL_KEY) or a reverse proxy that has it.
Per-student memory and CPU limits are enforced only with systemdspawner (installed: it is used).
"""
import os
import sys
from pathlib import Path

c = get_config()  # noqa: F821

LAB = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# per-student figures from the load test (deploy/README.md, "Capacity"); override with the environment
MEM_LIMIT = os.environ.get("LAB_MEM_LIMIT", "1536M")
CPU_LIMIT = float(os.environ.get("LAB_CPU_LIMIT", "1"))
IDLE_TIMEOUT = int(os.environ.get("LAB_IDLE_TIMEOUT", "3600"))  # seconds without activity

c.JupyterHub.bind_url = os.environ.get("LAB_BIND_URL", "http://:8000")
if os.environ.get("LAB_SSL_CERT"):
    c.JupyterHub.ssl_cert = os.environ["LAB_SSL_CERT"]
    c.JupyterHub.ssl_key = os.environ["LAB_SSL_KEY"]
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
c.Spawner.environment = {"PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin"}
c.Spawner.mem_limit = MEM_LIMIT
c.Spawner.cpu_limit = CPU_LIMIT
try:  # systemd units enforce the limits above; LocalProcessSpawner would ignore them
    import systemdspawner  # noqa: F401

    c.JupyterHub.spawner_class = "systemdspawner.SystemdSpawner"
    c.SystemdSpawner.unit_extra_properties = {"RuntimeDirectoryPreserve": "no"}
except ImportError:
    c.JupyterHub.spawner_class = "localprocess"


def _copy_student_notebooks(spawner):
    """On a student's first login: the student copies (solutions removed) into ~/lab."""
    import pwd
    import shutil
    import subprocess

    home = Path(pwd.getpwnam(spawner.user.name).pw_dir)
    target = home / "lab"
    if not target.exists():
        subprocess.run([str(BIN / "python"), str(LAB / "tools" / "make_student.py"), "--out", str(target)],
                       check=True, capture_output=True)
        shutil.chown(target, spawner.user.name)
        for path in target.iterdir():
            shutil.chown(path, spawner.user.name)


c.Spawner.pre_spawn_hook = _copy_student_notebooks

# idle servers stop after IDLE_TIMEOUT (jupyterhub-idle-culler as a hub service)
c.JupyterHub.services = [{
    "name": "idle-culler",
    "command": [sys.executable, "-m", "jupyterhub_idle_culler", f"--timeout={IDLE_TIMEOUT}"],
}]
c.JupyterHub.load_roles = [{
    "name": "idle-culler",
    "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
    "services": ["idle-culler"],
}]

load_subconfig(str(Path(__file__).resolve().parent / "challenge_service_config.py"))  # noqa: F821  (secrets and grades: the challenge service)
