"""Headless tests of the chapter 09 widgets."""
import pytest
import torch

from labkit import weights as W
from labkit.weights import selective as S
from labkit.weights import file_regions
from labkit.widgets.weights import ContainerInspector, WithholdingView


@pytest.fixture()
def inspector(tmp_path):
    device, publisher = W.generate_recipient_keypair(), W.generate_signing_keypair()
    state = {"w": torch.randn(300), "b": torch.randn(8), "n": torch.randn(10)}
    path = tmp_path / "m.lkw"
    W.seal(state, path, [device.public_key], signing_key=publisher, encrypt=["w", "b"],
           chunk_size=512, model_id="inspect-me")
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
    t = inspector.header.tensors["w"]
    assert W.chunk_nonce(bytes.fromhex(t["nonce_base"]), 1).hex() in inspector.cursor.value
    assert t["tags"][1] in inspector.cursor.value
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
