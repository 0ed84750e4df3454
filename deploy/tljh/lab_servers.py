"""Every student's server on The Littlest JupyterHub reads the lab's server settings: TLJH loads
every ``*.py`` in ``/opt/tljh/config/jupyterhub_config.d/`` as hub configuration, so a link there
to this file gives each server what the other two hubs give it (deploy/README.md, section 3):
``JUPYTER_CONFIG_PATH`` = this repository's ``deploy/jupyter`` (nbgrader's exchange and course,
and the trimmed student server of ``jupyter_server_config.py``), strict configuration errors, and
``LAB_INSTRUCTOR`` = 1 for the hub's admins (the lecturer: nbgrader's formgrader on), 0 for
students."""
from pathlib import Path

c = get_config()  # noqa: F821  (a hub config file's namespace)
SETTINGS = Path(__file__).resolve().parent.parent / "jupyter"  # through the link, to the repository


def lab_instructor(spawner) -> str:
    """"1" for a hub admin's server, "0" for a student's."""
    return "1" if spawner.user.admin else "0"


c.Spawner.environment.update({
    "JUPYTER_CONFIG_PATH": str(SETTINGS),
    "TRAITLETS_APPLICATION_RAISE_CONFIG_FILE_ERROR": "1",
    "LAB_INSTRUCTOR": lab_instructor,
})
