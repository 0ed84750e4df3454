from fractions import Fraction

import numpy as np
import pytest

from labkit.attacks import AttackResult
from labkit.widgets.attacks import DefenceShapesView, KeyRecoveryView


def _result(label_queries, bits_per_query):
    history = [(0, 0)] + [(q, min(128, q * bits_per_query)) for q in range(1, label_queries + 1)]
    return AttackResult(key=bytes(16), strategy="test", queries=label_queries, detected_errors=0,
                        retries=0, history=history)


def test_key_recovery_view_counts_bits_within_the_budget():
    view = KeyRecoveryView({"fast": _result(129, 1), "slow": _result(256, 0.5)})
    assert view.bits_at_budget == {"fast": 128, "slow": 128}
    view.budget.value = 64
    assert view.bits_at_budget == {"fast": 64, "slow": 32}
    assert list(view.figure.data[-1].x) == [64, 64]
    assert "64/128" in view.summary.value


def test_key_recovery_view_needs_results():
    with pytest.raises(ValueError):
        KeyRecoveryView({})


def test_defence_shapes_follow_epsilon_and_probe():
    view = DefenceShapesView()
    view.probe.value = 0.5
    assert view.rect_value == 1 and view.step_value == pytest.approx(0.5)
    assert "every output" in view.readout.value
    view.epsilon.value = Fraction(1, 4)
    view.probe.value = 0.1
    assert view.step_value == 0 and view.rect_value == pytest.approx(0.4)
    ys = np.asarray(view.figure.data[1].y)
    assert ys.max() == 1 and ys.min() == 0
