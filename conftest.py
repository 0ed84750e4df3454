"""Test-wide setup: exercise checks passed by the tests (unit tests, nbval kernels, browser
test) must never count as a student's progress, so the progress file is redirected to a
temporary file for the whole session (kernels inherit the environment)."""
import os
import tempfile


def pytest_configure(config):
    folder = tempfile.mkdtemp(prefix="labkit-progress-")
    os.environ["LABKIT_PROGRESS"] = os.path.join(folder, "progress.json")
