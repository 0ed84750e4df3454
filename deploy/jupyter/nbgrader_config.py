"""nbgrader's settings for every server of the class, in one place (deploy/README.md, "Assignments").

Every server reads it: the single-machine hub and the Kubernetes values put this folder on
``JUPYTER_CONFIG_PATH``. The exchange is ``LAB_EXCHANGE_ROOT`` (default nbgrader's own
``/srv/nbgrader/exchange``). When that folder is missing (a volume not mounted, a typo) this file
raises instead of letting nbgrader create or use another folder; with
``TRAITLETS_APPLICATION_RAISE_CONFIG_FILE_ERROR=1`` (set beside it) every nbgrader command then
stops with this message.
"""
import os

c = get_config()  # noqa: F821
c.CourseDirectory.course_id = "deep-neural-crypto-lab"
_root = os.environ.get("LAB_EXCHANGE_ROOT", "/srv/nbgrader/exchange")
if not os.path.isdir(_root):
    raise FileNotFoundError(f"nbgrader's exchange {_root} is missing: mount it, or set LAB_EXCHANGE_ROOT to "
                            "the class's exchange (deploy/README.md); refusing to use another folder")
c.Exchange.root = _root
