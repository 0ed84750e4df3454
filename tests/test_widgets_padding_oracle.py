"""Unit 04b's padding-oracle view, driven through its controls."""
from labkit import modes
from labkit.widgets.padding_oracle import PaddingOracleView


def test_view_replays_the_attack_and_recovers_the_message():
    view = PaddingOracleView(message="attack at dawn")
    assert view.error is None and view.step.max == 16 and view.step.value == 16
    assert bytes(view.known[i] for i in range(16)) == modes.pkcs7_pad(b"attack at dawn")
    assert view.queries_so_far == view.result.queries and max(view.result.queries_per_byte) <= 256
    assert "recovered exactly" in view.text.value
    view.step.value = 1  # one byte known: the last one, the padding byte 0x02
    assert view.known == {15: 2} and view.bars.count(0) == 15 and view.chart.value.count("<rect") == 16
    view.box.value = "x" * 17  # two blocks now
    assert view.step.max == 32 and len(view.known) == 32 and view.result.plaintext == b"x" * 17
    assert view.widget is not None


def test_bad_messages_show_a_message_not_a_traceback():
    view = PaddingOracleView(message="ok")
    view.box.value = ""
    assert "must not be empty" in view.error
    view.box.value = "y" * 49
    assert "at most 48 bytes" in view.error
    view.box.value = "fine"
    assert view.error is None and view.result.plaintext == b"fine"
