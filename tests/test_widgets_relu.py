"""Widgets of chapters 05-06 driven headlessly: set control values, check state and figure data."""
import numpy as np
import pytest

from labkit.circuits import XOR, corner_neurons
from labkit.neural import des_network
from labkit.widgets.relu import CornerExplorer, GateSurface, NeuronActivity, gate_surface


def test_gate_surface_follows_gate_and_c():
    view = GateSurface()
    xs, ys, z = gate_surface(XOR(), 1.0)
    np.testing.assert_allclose(view.z, z)
    j = int(np.argmin(abs(xs - 0.5)))
    assert view.z[j, j] == 0 and np.isclose(view.z[0, -1], 2.0)  # x=1.5, y=-0.5: |x - y| = 2
    view.c.value = 0.5
    assert view.z[j, j] == 0 and np.isclose(view.z[0, -1], 3.0)  # separated ReLUs are steeper
    assert list(view.figure.data[1].z) == [0, 1, 1, 0]
    view.gate.value = "AND"
    assert list(view.figure.data[1].z) == [0, 0, 0, 1] and "1 ReLU neuron" in view.figure.layout.title.text


def test_corner_explorer_sums_its_corners():
    view = CornerExplorer()
    assert len(view.values) == 4 and view.output == 1.0  # XOR3 at (1, 0, 0)
    view.x[1].value = 0.5
    net = corner_neurons(view.function, 1.0)
    assert np.isclose(view.output, net([1.0, 0.5, 0.0])[0])
    view.bits[0].value = True  # f(000) = 1 adds a corner
    assert len(view.figure.data[0].y) == 5 and "000" in view.figure.data[0].x
    for b in view.bits:
        b.value = False
    assert view.output == 0.0 and view.error is None


def test_neuron_activity_counts_and_reports_non_bits():
    net = des_network(bytes(8), rounds=2)
    base = np.zeros(64)
    view = NeuronActivity(net, base, bit=0, value=0.0)
    assert view.non_bits == 0 and np.array_equal(view.active, view.baseline)
    view.value.value = 1.4
    assert view.non_bits > 0 and list(view.figure.data[1].y) == view.active.tolist()
    with pytest.raises(ValueError, match="64 bits"):
        NeuronActivity(net, np.full(64, 0.5))
