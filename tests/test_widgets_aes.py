"""Chapter 03 widgets, driven headlessly through their controls."""
import numpy as np
import ipywidgets as w

from labkit import aes
from labkit.widgets.aes import AvalancheView, ByteDependencyView, RoundExplorer

FIPS_KEY = "000102030405060708090a0b0c0d0e0f"


def test_round_explorer_steps_through_the_trace():
    view = RoundExplorer()
    trace = aes.trace_encrypt(bytes.fromhex(FIPS_KEY), bytes.fromhex("00112233445566778899aabbccddeeff"))
    assert view.stage.max == len(trace) - 1
    view.stage.value = 4
    assert (view.after.round, view.after.step) == (1, "mix_columns")
    assert view.before == trace[3] and view.after == trace[4]
    assert view.figure.data[1].text[0][0] == f"{trace[4].state[0]:02x}"
    view.next.click()
    assert view.after.step == "add_round_key" and view.after.round_key == aes.expand_key(bytes(range(16)))[1]
    view.previous.click()
    view.previous.click()
    assert view.after == trace[3]
    view.round_picker.value = 7
    assert (view.after.round, view.after.step) == (7, "sub_bytes")
    view.stage.value = view.stage.max
    assert view.after.state == trace[-1].state and view.round_picker.value == 10
    assert isinstance(view.widget, w.VBox)


def test_round_explorer_key_sizes_and_changed_colouring():
    view = RoundExplorer()
    view.key_box.value = "00" * 32
    assert view.error is None and len(view.round_keys) == 15
    assert view.stage.max == len(aes.trace_encrypt(bytes(32), view.plaintext)) - 1
    assert np.asarray(view.key_figure.data[0].z).shape == (15, 16)
    view.stage.value = 2  # round 1 SubBytes changes every byte
    view.colour.value = "changed bytes"
    assert np.asarray(view.figure.data[1].z).sum() == 16


def test_round_explorer_shows_bad_input_as_a_message():
    view = RoundExplorer()
    view.plaintext_box.value = "0011"
    assert "plaintext must be 16 bytes" in view.error and "16 bytes" in view.message.value
    view.key_box.value = "00" * 20
    assert "16, 24 or 32 bytes" in view.error
    view.key_box.value = FIPS_KEY
    view.plaintext_box.value = "00" * 16
    assert view.error is None and view.message.value == ""


def test_avalanche_view():
    view = AvalancheView(samples=64)
    assert view.counts[0] == 1 and view.counts[2] > 50
    view.target.value = "key"
    view.bit.value = 77
    assert np.allclose(view.flips, aes.avalanche_per_round(77, target="key", samples=64))
    assert list(view.counts_figure.data[0].y) == list(view.counts)


def test_byte_dependency_view():
    view = ByteDependencyView(rounds=3)
    names = aes.stage_names(3)
    assert view.input_bytes == list(range(16))
    view.stage.value = names.index((2, "add_round_key"))
    assert view.input_bytes == list(range(16))  # after two full rounds: everything
    view.stage.value = names.index((1, "add_round_key"))
    view.byte.value = 6  # row 2, column 1: MixColumns of column 1 <- bytes 4+1*..., via ShiftRows
    expected = np.nonzero(aes.byte_dependencies(view.stage.value, 6, rounds=3)[0])[0].tolist()
    assert view.input_bytes == expected and len(expected) == 4
    z = np.asarray(view.figure.data[0].z, dtype=float)
    assert z[view.stage.value, 6] == 2 and np.isnan(z[-1]).all()
