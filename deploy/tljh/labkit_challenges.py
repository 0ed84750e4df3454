"""The challenge service on The Littlest JupyterHub: TLJH loads every ``*.py`` in
``/opt/tljh/config/jupyterhub_config.d/`` as hub configuration, so a link there to this file
starts the service with the hub, configured by the same ``challenge_service_config.py`` as the
other hubs. TLJH's hub runs from ``/opt/tljh/hub``, which has no labkit: the service runs with the
users' environment, where the lab is installed (deploy/README.md, section 3)."""
import os
from pathlib import Path

os.environ.setdefault("LAB_CHALLENGES_PYTHON", "/opt/tljh/user/bin/python")
os.environ.setdefault("LAB_CHALLENGES_STATE", "/opt/tljh/state/labkit-challenges")  # TLJH's own state folder
load_subconfig(str(Path(__file__).resolve().parent.parent / "challenge_service_config.py"))  # noqa: F821
