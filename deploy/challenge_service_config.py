"""The challenge service as a JupyterHub service (a class), loaded by jupyterhub_config.py.

The hub starts ``python -m labkit.challenges serve --hub`` as a managed service at
``/services/labkit-challenges/``. It keeps every attack exercise's secret, budget and attempt
counter, the quiz answer key and its signing key in its own state folder, away from the students'
servers; the hub's OAuth tells it who each student is (from the browser's cookie, or from the
``JUPYTERHUB_API_TOKEN`` of the student's server when a kernel calls it). Lecturers open
``/services/labkit-challenges/`` for who solved what (attempts, times) and its CSV export.

Environment (all optional):

- ``LAB_CHALLENGES_STATE``: the state folder (signing key mode 0600, SQLite database), default
  ``/srv/jupyterhub/challenges``; graders pin ``service_key.pub`` there (or run
  ``python -m labkit.challenges public-key --state-dir ...``).
- ``LAB_CHALLENGES_DB``: a PostgreSQL URL (``postgresql://user:pw@host/db``, needs ``psycopg``)
  instead of SQLite, for a large class.
- ``LAB_CHALLENGES_NOTEBOOKS``: the instructor notebooks (the quiz answer key), default the lab's
  ``notebooks/``. Student images must not contain this folder.
- ``LAB_CHALLENGES_LECTURERS``: comma-separated users who see every student's results (default:
  ``LAB_ADMIN``).
"""
import os
import sys
from pathlib import Path

c = get_config()  # noqa: F821

_LAB = Path(__file__).resolve().parent.parent
_NAME = "labkit-challenges"
_PORT = int(os.environ.get("LAB_CHALLENGES_PORT", "10101"))
_STATE = os.environ.get("LAB_CHALLENGES_STATE", "/srv/jupyterhub/challenges")

_command = [sys.executable, "-m", "labkit.challenges", "serve", "--hub", "--state-dir", _STATE,
            "--notebooks", os.environ.get("LAB_CHALLENGES_NOTEBOOKS", str(_LAB / "notebooks")),
            "--lecturers", os.environ.get("LAB_CHALLENGES_LECTURERS", os.environ.get("LAB_ADMIN", "lecturer"))]
if os.environ.get("LAB_CHALLENGES_DB"):
    _command += ["--db", os.environ["LAB_CHALLENGES_DB"]]

c.JupyterHub.services.append({
    "name": _NAME,
    "url": f"http://127.0.0.1:{_PORT}",
    "command": _command,
    "oauth_no_confirm": True,
    "environment": {"PYTHONPATH": str(_LAB)},
})
# students reach the service (browser and kernels); their servers' tokens carry the access scope
c.JupyterHub.load_roles.extend([
    {"name": "user", "scopes": ["self", f"access:services!service={_NAME}"]},
    {"name": "server", "scopes": ["users:activity!user", "access:servers!server",
                                  f"access:services!service={_NAME}"]},
])
# the kernels find the service through the proxy with their server's API token
c.Spawner.environment.update({"LABKIT_CHALLENGES_URL": os.environ.get(
    "LAB_CHALLENGES_URL", f"http://127.0.0.1:8000/services/{_NAME}/")})
