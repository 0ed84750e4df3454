"""The challenge service as a JupyterHub service (a class): one configuration for both hubs.

The hub starts ``python -m labkit.challenges serve --hub`` as a managed service at
``/services/labkit-challenges/``. It keeps every attack exercise's secret, budget and attempt
counter, the quiz answer key and its signing key in its own state folder, away from the students'
servers; the hub's OAuth tells it who each student is (from the browser's cookie, or from the
``JUPYTERHUB_API_TOKEN`` of the student's server when a kernel calls it). Lecturers open
``/services/labkit-challenges/`` for who solved what (attempts, times) and its CSV export.

Two ways in, one function (:func:`configure`):

- the single-machine hub (``jupyterhub_config.py``) and the load test load this file with
  ``load_subconfig``: the service is added to ``c.JupyterHub.services``;
- Zero to JupyterHub (``z2jh/config.yaml``, ``hub.extraConfig.labChallenges``) imports it and calls
  ``configure(c, spawner="KubeSpawner")``: the entry the chart made from ``hub.services`` (with the
  API token the chart keeps in its Secret) is completed, not duplicated.

Environment of the hub (all optional):

- ``LAB_CHALLENGES_STATE``: the state folder (signing key mode 0600, SQLite database), default
  ``/srv/jupyterhub/challenges``; graders pin ``service_key.pub`` there (or run
  ``python -m labkit.challenges public-key --state-dir ...``).
- ``LAB_CHALLENGES_DB``: a PostgreSQL URL (``postgresql://user:pw@host/db``, needs ``psycopg``)
  instead of SQLite, for a large class. It reaches the service in its environment, never on its
  command line (which every local user can read).
- ``LAB_CHALLENGES_SERVICE_URL``: where the proxy and the students' kernels reach the service,
  default ``http://127.0.0.1:$LAB_CHALLENGES_PORT`` (port 10101); ``LAB_CHALLENGES_BIND``: the
  address it listens on, default that URL's host (Kubernetes: the URL names the hub's Service and
  the service listens on ``0.0.0.0`` in the hub's pod). ``LAB_CHALLENGES_HUB_API_URL``: how the
  service reaches the hub's API, default JupyterHub's ``JUPYTERHUB_API_URL`` (Kubernetes: the hub
  in its own pod, ``http://127.0.0.1:8081/hub/api``, as the chart's idle culler does).
- ``LAB_CHALLENGES_URL``: the URL the students' kernels use, default the service URL with the
  service's prefix (kernels call the service directly; the hub still checks every token).
- ``LAB_CHALLENGES_PYTHON``: the Python that runs the service (default: the hub's), e.g. a virtual
  environment of the lab's beside the hub's own packages.
- ``LAB_CHALLENGES_NOTEBOOKS``: the instructor notebooks (the quiz answer key), default the lab's
  ``notebooks/``. Student images must not contain this folder.
- ``LAB_CHALLENGES_LECTURERS``: comma-separated users who see every student's results (default:
  ``LAB_ADMIN``).
"""
import os
import sys
from pathlib import Path
from urllib.parse import urlparse

NAME = "labkit-challenges"
_LAB = Path(__file__).resolve().parent.parent


def service(environ=os.environ) -> tuple[dict, list[dict], dict]:
    """The hub's service entry, the roles that let students reach it, and the students' environment."""
    port = int(environ.get("LAB_CHALLENGES_PORT", "10101"))
    url = environ.get("LAB_CHALLENGES_SERVICE_URL", f"http://127.0.0.1:{port}").rstrip("/")
    if urlparse(url).scheme not in ("http", "https") or not urlparse(url).hostname:
        raise ValueError(f"LAB_CHALLENGES_SERVICE_URL must be an http(s) URL with a host, got {url!r}")
    command = [environ.get("LAB_CHALLENGES_PYTHON", sys.executable), "-m", "labkit.challenges", "serve", "--hub",
               "--state-dir", environ.get("LAB_CHALLENGES_STATE", "/srv/jupyterhub/challenges"),
               "--notebooks", environ.get("LAB_CHALLENGES_NOTEBOOKS", str(_LAB / "notebooks")),
               "--lecturers", environ.get("LAB_CHALLENGES_LECTURERS", environ.get("LAB_ADMIN", "lecturer"))]
    if environ.get("LAB_CHALLENGES_BIND"):
        command += ["--ip", environ["LAB_CHALLENGES_BIND"]]
    if environ.get("LAB_CHALLENGES_HUB_API_URL"):
        command += ["--hub-api-url", environ["LAB_CHALLENGES_HUB_API_URL"]]
    env = {"PYTHONPATH": str(_LAB)}
    for source, target in (("LAB_CHALLENGES_DB", "LABKIT_CHALLENGES_DB"), ("LABKIT_KERNEL_CACHE",) * 2):
        if environ.get(source):
            env[target] = environ[source]
    entry = {"name": NAME, "url": url, "command": command, "oauth_no_confirm": True, "environment": env}
    # students reach the service (browser and kernels); their servers' tokens carry the access scope
    roles = [{"name": "user", "scopes": ["self", f"access:services!service={NAME}"]},
             {"name": "server", "scopes": ["users:activity!user", "access:servers!server",
                                           f"access:services!service={NAME}"]}]
    students = {"LABKIT_CHALLENGES_URL": environ.get("LAB_CHALLENGES_URL", f"{url}/services/{NAME}/")}
    return entry, roles, students


def configure(c, *, spawner: str = "Spawner", environ=os.environ) -> None:
    """Add the service to the hub's config ``c``, completing an entry of the same name if one exists."""
    entry, roles, students = service(environ)
    services = c.JupyterHub.services
    existing = [s for s in services if s.get("name") == NAME] if isinstance(services, list) else []
    if existing:  # z2jh's hub.services made it (with the API token the chart keeps): fill it in
        existing[0].update(entry)
    else:
        services.append(entry)
    c.JupyterHub.load_roles.extend(roles)
    c[spawner].environment.update(students)


if "get_config" in globals():  # loaded as a config file (load_subconfig), not imported
    configure(get_config())  # noqa: F821
