"""Fixtures shared by the test modules."""
import pytest

from labkit import backdoor
from labkit.parallel import torch_threads


@pytest.fixture(scope="module")
def one_torch_thread():
    """Torch on one thread for a module's tests (small models: fixed summation order, no threads
    spinning on a busy machine), the previous count restored after the module."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def demo():
    """The backdoor chapters' ready-made setup (:func:`labkit.backdoor.make_demo`), built once per module."""
    return backdoor.make_demo(0)
