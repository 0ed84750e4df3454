"""Test-wide setup: exercise checks passed by the tests (unit tests, nbval kernels, browser
test) must never count as a student's progress, so the progress file is redirected to a
temporary file for the whole session (kernels inherit the environment); so is the challenge
service's state (its database and signing key), which the first check starts. nbval compares
checked outputs with the service's receipts (fresh signatures every run) masked
(``tests/nbval_sanitize.cfg``).

The run's order is set here too: with ``-n 2 --dist loadfile`` each file goes whole to one worker,
in the order of the collection, so the longest files are collected first (longest processing time
first: the short files then fill the end of both workers and they finish together). Without this,
xdist orders files by their number of tests, and a long file with few tests could start last.
"""
import os
import shutil
import tempfile

_FOLDER = None

#: the files that take longest, longest first: seconds of one worker in a full run with
#: ``-n 2 --dist loadfile`` (machine at load 8, about twice a quiet machine's times); every
#: notebook (nbval: 10-50 s each at that load) comes after them, then the other tests (all < 33 s)
LONGEST_FIRST = (
    "tests/test_browser.py",  # 986 s: every unit in JupyterLab in Chromium
    "tests/test_backdoor_protocols.py",  # 306 s
    "tests/test_deploy.py",  # 164 s
    "tests/test_loadtest.py",  # 146 s: a real JupyterHub
    "tests/test_nbgrader_course.py",  # 68 s
    "tests/test_neural_kernel.py",  # 65 s
    "tests/test_backdoor_ownership_unique.py",  # 55 s
    "tests/test_neural_ciphers.py",  # 45 s
)


def _rank(item) -> tuple[int, int]:
    path = item.nodeid.split("::", 1)[0]
    if path in LONGEST_FIRST:
        return (0, LONGEST_FIRST.index(path))
    return (1, 0) if path.startswith("notebooks/") else (2, 0)


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=_rank)  # stable: the order within a file and among the rest is kept


def pytest_configure(config):
    global _FOLDER
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False  # xdist keeps the order above
    _FOLDER = tempfile.mkdtemp(prefix="labkit-progress-")
    os.environ["LABKIT_PROGRESS"] = os.path.join(_FOLDER, "progress.json")
    os.environ["LABKIT_CHALLENGES_STATE"] = os.path.join(_FOLDER, "challenges")
    if getattr(config.option, "nbval_sanitize_with", "unset") is None:
        config.option.nbval_sanitize_with = os.path.join(os.path.dirname(__file__), "tests", "nbval_sanitize.cfg")


def pytest_unconfigure(config):
    if _FOLDER:
        shutil.rmtree(_FOLDER, ignore_errors=True)
