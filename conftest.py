"""Test-wide setup: exercise checks passed by the tests (unit tests, nbval kernels, browser
test) must never count as a student's progress, so the progress file is redirected to a
temporary file for the whole session (kernels inherit the environment); so is the challenge
service's state (its database and signing key), which the first check starts. nbval compares
checked outputs with the service's receipts (fresh signatures every run) masked
(``tests/nbval_sanitize.cfg``)."""
import os
import shutil
import tempfile

_FOLDER = None


def pytest_configure(config):
    global _FOLDER
    _FOLDER = tempfile.mkdtemp(prefix="labkit-progress-")
    os.environ["LABKIT_PROGRESS"] = os.path.join(_FOLDER, "progress.json")
    os.environ["LABKIT_CHALLENGES_STATE"] = os.path.join(_FOLDER, "challenges")
    if getattr(config.option, "nbval_sanitize_with", "unset") is None:
        config.option.nbval_sanitize_with = os.path.join(os.path.dirname(__file__), "tests", "nbval_sanitize.cfg")


def pytest_unconfigure(config):
    if _FOLDER:
        shutil.rmtree(_FOLDER, ignore_errors=True)
