"""Every student's Jupyter server, trimmed to what the lab uses (deploy/README.md, "Time to a ready server").

The lab's hubs put this folder on ``JUPYTER_CONFIG_PATH`` (``jupyterhub_config.py``, the
Kubernetes values; TLJH: the linked ``deploy/tljh/lab_servers.py``), so ``jupyterhub-singleuser``
reads this file at every start. Twenty students logging in at once on two cores wait for CPU, so
what each server does at start is what they wait for. Measured with ``labkit-server-start``
(CPU-seconds of one server until JupyterLab's first page and its first API calls are served,
median of six: 2.28 before, 1.26 now; until ``/api/status`` answers: 1.59 before, 1.14 now):

- Node.js at JupyterLab's import (0.34 CPU-s, every server): ``jupyterlab.labapp`` runs
  ``node yarn.js config --json`` when it is imported, only to learn the npm registry a build
  would use, if ``node`` is on the PATH (as in the image and on a hub's machine). This file
  imports JupyterLab first, with the folders holding ``node`` left out of the PATH for the moment
  of the import (the PATH is put back before anything else runs): no Node.js process starts;
- the build check JupyterLab's page asks for at every load (``/lab/api/build``: Node.js twice
  more, about 0.6 CPU-s; every server): ``buildAvailable`` and ``buildCheck`` are off in
  ``labconfig/page_config.json`` beside this file (the image's JupyterLab is prebuilt; nobody
  rebuilds it on the hub);
- for students, the server extensions no student feature needs (with the PyPI extension
  manager, about 0.1 CPU-s): nbgrader's formgrader and course list (the lecturer's grading pages;
  the assignment list, validate and submit stay), jupyter_lsp (no language server is installed),
  jupytext's server side (the notebooks are ``.ipynb``), the classic notebook's MathJax 2 server
  (JupyterLab 4 ships MathJax 3 itself) and the classic notebook interface (``/tree``,
  ``/notebooks``: JupyterLab is the interface, and the course's nbgitpuller links open
  ``lab/tree/...``), and JupyterLab's PyPI extension manager (``extension_manager = "readonly"``:
  it imports an HTTP and XML-RPC stack at start, and would install extensions into a server that
  is gone at the next login);
- for everyone, the news feed and the update check (fetched from the internet, per student,
  through the server).

Kept: JupyterLab, the hub's own extension, nbgitpuller (update links), nbgrader's assignment list
and validate (fetch, validate, submit), the terminals (a student's shell beside the notebooks)
and notebook_shim. ipywidgets, anywidget and plotly need no server extension. Turning the
terminals or notebook_shim off saved nothing measurable (within the spread of 0.1 CPU-s between
starts), and the kernel spec scan behind ``/api/kernelspecs`` takes about 0.015 s: both stay.

Accounts the hub marks as instructors (``LAB_INSTRUCTOR=1`` in the server's environment: the hubs
set it for hub admins and the ``LAB_INSTRUCTORS`` accounts) keep everything that is installed,
with nbgrader's formgrader and course list on (the image disables them system-wide for everyone,
``postBuild``), so the lecturer grades at ``/user/<name>/formgrader``. Any value of
``LAB_INSTRUCTOR`` other than ``0``, ``1`` or unset stops the server with the reason.
"""
import os

c = get_config()  # noqa: F821

ROLE = os.environ.get("LAB_INSTRUCTOR", "0")
if ROLE not in {"0", "1"}:
    raise ValueError(f"LAB_INSTRUCTOR is {ROLE!r}: it must be 1 (an instructor's server) or 0 (a student's)")
INSTRUCTOR = ROLE == "1"

# extensions a student's server does not load (merged with the installed ones' enable files:
# jupyter_server gives this file's keys precedence over the jupyter_server_config.d folders)
STUDENT_OFF = (
    "nbgrader.server_extensions.formgrader",
    "nbgrader.server_extensions.course_list",
    "jupyter_lsp",
    "jupyterlab_jupytext",
    "jupyter_server_mathjax",
    "notebook",
)
INSTRUCTOR_ON = ("nbgrader.server_extensions.formgrader", "nbgrader.server_extensions.course_list")

if INSTRUCTOR:
    c.ServerApp.jpserver_extensions.update({name: True for name in INSTRUCTOR_ON})
else:
    c.ServerApp.jpserver_extensions.update({name: False for name in STUDENT_OFF})
    c.LabApp.extension_manager = "readonly"



def import_jupyterlab_without_node() -> None:
    """Import JupyterLab's server once with no ``node``/``nodejs`` on the PATH, then restore the PATH.

    ``jupyterlab.labapp`` asks yarn for its configuration at import (a Node.js process, about 0.34
    CPU-seconds here) only to know which npm registry a build would use; a student's server never
    builds. Later imports reuse the module. Without JupyterLab installed this does nothing.
    """
    path = os.environ.get("PATH")
    if path is None:
        return
    folders = [f for f in path.split(os.pathsep)
               if not any(os.access(os.path.join(f or ".", name), os.X_OK) for name in ("node", "nodejs"))]
    os.environ["PATH"] = os.pathsep.join(folders)
    try:
        import jupyterlab.labapp  # noqa: F401
    except ImportError:
        pass
    finally:
        os.environ["PATH"] = path


import_jupyterlab_without_node()

# nothing fetched from the internet on a student's behalf, for anyone
c.LabApp.news_url = None
c.LabApp.check_for_updates_class = "jupyterlab.handlers.announcements.NeverCheckForUpdate"

# ---- memory: the server returns what it relays (deploy/README.md, "Memory per student") ----
# glibc keeps the memory of the large messages a server relays (a kernel's outputs, a saved
# notebook) in its heaps: a server grew from 112 to 172 MiB RSS over notebook 02 run twice, and
# malloc_trim gave 46 MiB of it back. labkit.memory.tune_server_heap() fixes the allocator's
# thresholds in this process only (its kernels keep glibc's defaults): 123 MiB after the same run.
# The servers run the lab's image, so labkit is importable; a server without it keeps the defaults.
try:
    from labkit import memory as _labkit_memory
except ImportError:
    pass
else:
    _labkit_memory.tune_server_heap()
