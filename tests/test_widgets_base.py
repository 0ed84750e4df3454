from labkit.widgets import LabWidget, WidgetSelfCheck, hex_text
from labkit import bits
import ipywidgets as w


def test_self_check_follows_the_slider():
    view = WidgetSelfCheck()
    view.slider.value = 7
    assert view.squared == 49
    assert list(view.figure.data[0].y) == [7, 49]
    assert isinstance(view.widget, w.VBox)


class _HexEcho(LabWidget):
    def __init__(self):
        super().__init__()
        self.box = hex_text("key", "00" * 8)
        self.key = None
        self.watch(self.box)
        self.refresh()

    def update(self):
        self.key = bits.parse_hex(self.box.value, length=8, what="key")

    def build(self):
        return w.VBox([self.box, self.message])


def test_bad_input_becomes_a_message_not_a_traceback():
    view = _HexEcho()
    view.box.value = "zz"
    assert view.error and "hex digits" in view.error
    assert "hex digits" in view.message.value
    view.box.value = "01" * 8
    assert view.error is None and view.message.value == "" and view.key == b"\x01" * 8


def test_bit_grids_show_the_bits_they_are_given():
    import numpy as np

    from labkit import widgets

    rows = np.random.default_rng(0).integers(0, 2, (3, 16))
    grid = widgets.bit_grid(rows, row_labels=["a", "b", "c"], title="t")
    assert np.array_equal(np.asarray(grid.data[0].z), rows) and list(grid.data[0].y) == ["a", "b", "c"]
    panels = widgets.bit_grid_panels({"one": rows, "two": 1 - rows}, row_title="row")
    assert [a.text for a in panels.layout.annotations] == ["one", "two"]
    assert np.array_equal(np.asarray(panels.data[1].z), 1 - rows)
    assert all((t.zmin, t.zmax) == (0, 1) for t in panels.data)
