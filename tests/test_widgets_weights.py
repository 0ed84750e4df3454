"""Headless tests of the chapter 09 widgets."""
import pytest
import torch

from labkit import weights as W
from labkit.weights import selective as S
from labkit.weights import file_regions
from labkit.widgets import weights as weights_widgets
from labkit.widgets.weights import ContainerInspector, WithholdingView


@pytest.fixture()
def sealed(tmp_path):
    """A file with two encrypted tensors (w: 3 chunks of 512 bytes, the last 176; b: one) and a
    plaintext one, under fresh keys: (path, device key pair, publisher key pair)."""
    device, publisher = W.generate_recipient_keypair(), W.generate_signing_keypair()
    state = {"w": torch.randn(300), "b": torch.randn(8), "n": torch.randn(10)}
    path = tmp_path / "m.lkw"
    W.seal(state, path, [device.public_key], signing_key=publisher, encrypt=["w", "b"],
           chunk_size=512, model_id="inspect-me", version=3)
    return path, device, publisher


@pytest.fixture()
def inspector(sealed):
    path, device, publisher = sealed
    return ContainerInspector(path, device.private_key, signer=publisher.public_key)


def test_regions_tile_the_file(inspector):
    regions = file_regions(inspector.header)
    assert regions[0][1] == 0 and regions[-1][2] == len(inspector.original)
    assert all(a[2] == b[1] for a, b in zip(regions, regions[1:]))
    assert [r[3] for r in regions].count("chunk") == 3 + 1  # w: 1200 bytes = 3 chunks, b: 1


def test_flip_any_region_refuses_and_restore_opens(inspector):
    assert inspector.status == "opened"
    for label, start, end, kind in file_regions(inspector.header):
        inspector.jump.value = start
        assert inspector.offset.value == start and inspector.region == label
        inspector.flip_button.click()
        assert inspector.status in ("IntegrityError", "FormatError"), label
        assert inspector.flipped == [start]
        inspector.flip_button.click()  # flipping back restores the original bytes
        assert inspector.status == "opened" and inspector.flipped == []
    inspector.flip(10)
    inspector.reset_button.click()
    assert inspector.status == "opened" and bytes(inspector.data) == inspector.original


def test_cursor_shows_the_chunk_nonce_and_tag(inspector):
    start = next(r[1] for r in file_regions(inspector.header) if r[0] == "w chunk 1")
    inspector.offset.value = start + 3
    t = inspector.header.parsed.tensor("w")
    assert W.chunk_nonce(t.nonce_base, 1).hex() in inspector.cursor.value
    assert t.tags[1].hex() in inspector.cursor.value
    assert inspector.figure.data[-2].x == (start + 3,)


def test_withholding_view_answers_the_slider():
    task = S.train_digits_classifier(seed=0, epochs=40)
    view = WithholdingView(task)
    low = view.locked_accuracy
    view.slider.value = 0.15
    assert view.locked_accuracy < low
    assert view.restored_accuracy == pytest.approx(view.base_accuracy)
    assert list(view.figure.data[0].y) == [view.base_accuracy, view.locked_accuracy,
                                           view.restored_accuracy]
    view.by.value = "channel"
    assert view.by_value == "channel" and view.error is None


def test_envelope_hangs_each_chunk_under_its_tensors_dek(sealed):
    path, _, _ = sealed
    header = W.read_header(path)
    trace = weights_widgets.envelope_figure(header).data[0]
    parent = dict(zip(trace.labels, trace.parents))
    size = dict(zip(trace.labels, trace.values))
    chunks = [(label, end - start) for label, start, end, kind in file_regions(header) if kind == "chunk"]
    assert [label for label in trace.labels if " chunk " in label] == [label for label, _ in chunks]
    assert all(parent[label] == "DEK " + label.rpartition(" chunk ")[0] and size[label] == n for label, n in chunks)
    assert parent["DEK w"] == parent["DEK b"] == "content key" and parent["content key"] == "device key"
    assert sum(trace.values) == sum(t.nbytes for t in header.parsed.tensors if t.encrypted) == 1232
    assert not any(label.startswith(("n ", "DEK n")) for label in trace.labels), "plaintext hangs under no key"


def test_tamper_trials_open_the_genuine_file_and_refuse_every_change(sealed):
    path, device, publisher = sealed
    before = path.read_bytes()
    trials = weights_widgets.tamper_trials(path, device, signer=publisher.public_key)
    outcome = {t.label: t.outcome for t in trials}
    assert trials[0].label == "the file as sealed (control)" and trials[0].outcome == "opened"
    refusals = {name for name in dir(W) if isinstance(getattr(W, name), type)
                and issubclass(getattr(W, name), W.WeightsError)}
    assert all(t.outcome in refusals and t.detail for t in trials[1:]), [t for t in trials if t.outcome == "opened"]
    regions = file_regions(W.read_header(path))
    assert [t.label for t in trials[1:1 + len(regions)]] == [f"flip first byte of {r[0]}" for r in regions]
    assert outcome["flip first byte of w chunk 2"] == outcome["flip first byte of n (plaintext)"] == "IntegrityError"
    assert outcome["swap chunks 0 and 1 of w"] == "IntegrityError"
    assert outcome["a different device key"] == "NotARecipientError"
    assert outcome["device expects version >= 4 (replayed old file)"] == "RollbackError"
    assert outcome["whole file sealed by an outsider (version 10^9)"] == "IntegrityError"
    assert path.read_bytes() == before, "the trials change copies, never the file"
    lines = weights_widgets.format_trials(trials).splitlines()
    assert len(lines) == len(trials) and len({line.index(" -> ") for line in lines}) == 1


def test_tamper_trials_catch_a_device_that_pins_no_signer(sealed):
    """The harness can fail: a device that opens whatever verifies under its own key lets the
    outsider's file through (its MAC and tags are valid under the outsider's content key)."""
    path, device, _ = sealed
    with pytest.warns(W.UnverifiedSignerWarning):
        trials = weights_widgets.tamper_trials(path, device, signer=W.UNVERIFIED)
    outcome = {t.label: t.outcome for t in trials}
    assert outcome["whole file sealed by an outsider (version 10^9)"] == "opened"
    assert outcome["flip first byte of w chunk 0"] == "IntegrityError"


def test_tamper_trials_check_what_the_device_expects(sealed):
    path, device, publisher = sealed
    trials = weights_widgets.tamper_trials(path, device, signer=publisher.public_key, model_id="another-model")
    assert trials[0].outcome == "IntegrityError", "a device expecting another model refuses even the genuine file"
    older = weights_widgets.tamper_trials(path, device, signer=publisher.public_key, min_version=1)
    assert older[0].outcome == "opened" and "device expects version >= 2 (replayed old file)" in {t.label for t in older}
