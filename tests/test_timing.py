import pytest

from labkit import timing


def test_best_time_is_the_shortest_run(monkeypatch):
    clock = iter([0.0, 5.0, 10.0, 12.0, 20.0, 23.0])  # runs of 5, 2 and 3 seconds
    monkeypatch.setattr(timing.time, "perf_counter", lambda: next(clock))
    calls = []
    assert timing.best_time(lambda: calls.append(1), repeats=3) == 2.0
    assert len(calls) == 3


@pytest.mark.parametrize("repeats", [0, -1, 1.5])
def test_best_time_rejects_bad_repeats(repeats):
    with pytest.raises(ValueError):
        timing.best_time(lambda: None, repeats)
