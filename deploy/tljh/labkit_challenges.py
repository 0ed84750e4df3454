"""The challenge service on The Littlest JupyterHub: TLJH loads every ``*.py`` in
``/opt/tljh/config/jupyterhub_config.d/`` as hub configuration, so a link there to this file
starts the service with the hub, configured by the same ``challenge_service_config.py`` as the
other hubs. TLJH's hub runs from ``/opt/tljh/hub``, which has no labkit: the service runs with the
users' environment, where the lab is installed (deploy/README.md, section 3). The hub's own
environment is left as it is: TLJH's defaults go to ``configure`` only."""
import importlib.util
import os
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "challenge_service_config", Path(__file__).resolve().parent.parent / "challenge_service_config.py")
_shared = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_shared)
_shared.configure(get_config(), environ={  # noqa: F821  (a hub config file's namespace)
    "LAB_CHALLENGES_PYTHON": "/opt/tljh/user/bin/python",
    "LAB_CHALLENGES_STATE": "/opt/tljh/state/labkit-challenges",  # TLJH's own state folder
    **os.environ})
