"""labkit.parallel: the one torch thread-count context and the one parallel map."""
import threading

import pytest
import torch

from labkit.parallel import parallel_map, session_torch_threads, torch_threads


def test_torch_threads_sets_and_restores_even_on_error():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError, match="boom"):
        with torch_threads(1):
            raise RuntimeError("boom")
    assert torch.get_num_threads() == before
    for bad, error in ((0, ValueError), (-1, ValueError), (1.5, TypeError), (True, TypeError), ("2", TypeError)):
        with pytest.raises(error):
            with torch_threads(bad):
                pass


def test_session_torch_threads_sets_the_count_and_returns_the_previous_one():
    before = torch.get_num_threads()
    try:
        assert session_torch_threads(1) == before and torch.get_num_threads() == 1
        assert session_torch_threads(2) == 1 and torch.get_num_threads() == 2
        for bad, error in ((0, ValueError), (1.5, TypeError), (True, TypeError)):
            with pytest.raises(error):
                session_torch_threads(bad)
        assert torch.get_num_threads() == 2, "a refused count changes nothing"
    finally:
        torch.set_num_threads(before)


def test_parallel_map_keeps_order_uses_threads_and_propagates_errors():
    seen = set()

    def square(i):
        seen.add(threading.get_ident())
        return i * i

    assert parallel_map(square, range(50), 4) == [i * i for i in range(50)]
    assert parallel_map(square, [], 4) == []
    main = threading.get_ident()
    seen.clear()
    assert parallel_map(square, range(5), 1) == [0, 1, 4, 9, 16] and seen == {main}  # one worker: this thread

    def fail(i):
        if i == 3:
            raise KeyError(i)
        return i

    with pytest.raises(KeyError):
        parallel_map(fail, range(8), 3)
    with pytest.raises(ValueError):
        parallel_map(square, range(3), 0)


def test_parallel_map_failure_waits_for_running_calls_and_skips_the_rest():
    """What the weights container relies on to wipe a buffer after a failed chunk: when the call
    returns with the error, no worker writes any more, and queued calls never started."""
    started, finished = [], []
    release = threading.Event()

    def work(i):
        started.append(i)
        if i == 0:
            raise KeyError(i)
        release.wait(5)  # the second worker is still busy while the first call has failed
        finished.append(i)
        return i

    threading.Timer(0.2, release.set).start()
    with pytest.raises(KeyError):
        parallel_map(work, range(100), 2)
    assert sorted(finished) == sorted(i for i in started if i != 0)  # every started call ran to its end
    assert len(started) < 100  # the queue was cancelled
