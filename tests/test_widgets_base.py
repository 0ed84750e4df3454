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
