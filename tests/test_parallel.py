"""labkit.parallel: the one torch thread-count context and the one parallel map."""
import threading

import pytest
import torch

from labkit.parallel import parallel_map, torch_threads


def test_torch_threads_sets_and_restores_even_on_error():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError, match="boom"):
        with torch_threads(1):
            raise RuntimeError("boom")
    assert torch.get_num_threads() == before
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError):
            with torch_threads(bad):
                pass


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
