"""Chapter 04 widgets, driven headlessly."""
import numpy as np

from labkit import gcm, modes
from labkit.widgets.modes import ModeImageView, NonceReusePlayground, demo_image, encrypt_image


def test_demo_image_and_ecb_leak():
    img = demo_image(64)
    assert img.shape == (64, 64) and img.dtype == np.uint8
    view = ModeImageView(img)
    plain_blocks = len(set(modes.split_blocks(img.tobytes())))
    assert view.distinct_blocks["ECB"] == plain_blocks < img.size // 16
    assert view.distinct_blocks["CBC"] == view.distinct_blocks["CTR"] == img.size // 16
    view.mode.value = "CBC"
    assert np.array_equal(view.encrypted, encrypt_image(img, "CBC", bytes(range(16))))
    assert np.array_equal(np.asarray(view.figure.data[1].z), view.encrypted)


def test_nonce_reuse_playground_leaks_and_forges():
    view = NonceReusePlayground()
    assert view.ct_xor == view.pt_xor and view.recovered == view.p2[: len(view.recovered)]
    view.run_attack()
    assert gcm.auth_key(view.key) in view.candidates and view.forgery_accepted
    view.box2.value = "another secret message, longer than the first one for sure"
    assert view.recovered == view.p2[: len(view.p1)] and view.candidates == []


def test_nonce_reuse_playground_fresh_nonce_and_bad_input():
    view = NonceReusePlayground()
    view.reuse.value = False
    assert view.ct_xor != view.pt_xor
    view.run_attack()
    assert gcm.auth_key(view.key) not in view.candidates and view.forgery_accepted is False
    view.box1.value = ""
    assert "must not be empty" in view.error
    view.box1.value = "x" * 300
    assert "at most 256 bytes" in view.error
