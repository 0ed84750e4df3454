"""Chapter 01/02 widgets driven headlessly through their controls' .value."""
from __future__ import annotations

import ipywidgets as w
import numpy as np

from labkit import bits, des, feistel
from labkit.widgets.des import DESDiffusion, diffusion_grid
from labkit.widgets.feistel import FeistelStepper, round_keys


def test_feistel_stepper_follows_its_controls():
    view = FeistelStepper()
    assert isinstance(view.widget, w.VBox) and view.error is None
    view.rounds.value = 6
    view.kind.value = "constant k"
    view.block.value = "deadbeef"
    assert len(view.enc_states) == 7 and len(view.dec_states) == 7
    assert view.enc_states[0] == (0xDEAD, 0xBEEF)
    keys = round_keys(int(view.key.value, 16), 6, 16)
    net = feistel.Feistel([feistel.make_round_function("constant k", k, 16) for k in keys], 16)
    assert view.ciphertext == net.encrypt(0xDEADBEEF)
    assert view.recovered == 0xDEADBEEF
    # decryption ends on (R0, L0): the same circuit run backwards
    assert view.dec_states[-1] == (0xBEEF, 0xDEAD)
    z = np.asarray(view.figure.data[0].z)
    assert z.shape == (7, 32)
    assert bits.bits_to_int((z[0, :16] > 0).astype(np.uint8)) == 0xDEAD
    assert "decrypts to deadbeef" in view.table.value


def test_feistel_stepper_shows_bad_input_as_a_message():
    view = FeistelStepper()
    view.block.value = "0123"
    assert view.error and "block must be 4 bytes" in view.error
    view.block.value = "0123abcd"
    view.key.value = "zz"
    assert "hex digits" in view.error
    view.key.value = "1234"
    assert view.error is None and view.recovered == 0x0123ABCD


def test_round_keys_are_n_bit_and_distinct():
    keys = round_keys(0x5A3C, 16, 16)
    assert len(set(keys)) == 16 and all(0 <= k < 1 << 16 for k in keys)


def test_des_diffusion_follows_its_controls():
    view = DESDiffusion()
    assert isinstance(view.widget, w.VBox) and view.error is None
    view.bit.value = 10
    key, block = bytes.fromhex(view.key.value), bytes.fromhex(view.plaintext.value)
    expected = des.avalanche(key, block, 10)
    assert np.array_equal(view.result.counts, expected.counts)
    assert list(view.figure.data[1].x) == expected.counts.tolist()
    grid = np.asarray(view.figure.data[0].z)
    assert grid.shape == (18, 64) and (grid == 2).sum() == expected.counts.sum()
    c2 = des.encrypt_block(key, bits.flip_bit(block, 10))
    assert f"{bits.hamming_distance(des.encrypt_block(key, block), c2)}</b> of 64" in view.summary.value
    view.flip.value = "key"
    view.bit.value = 15  # a parity bit of the key
    assert view.result.counts.sum() == 0 and "parity bit" in view.summary.value
    view.bit.value = 14
    assert view.result.flip == "key" and view.result.counts[-1] > 0


def test_des_diffusion_bad_key_is_a_message():
    view = DESDiffusion()
    view.key.value = "0011"
    assert view.error and "key must be 8 bytes" in view.error
    assert "key must be 8 bytes" in view.message.value


def test_diffusion_grid_marks_exactly_the_differing_bits():
    result = des.avalanche(bytes(8), bytes(8), 3)
    grid = diffusion_grid(result)
    assert np.array_equal(grid == 2, result.diff == 1)


def test_feistel_stepper_random_round_functions_are_reproducible():
    view = FeistelStepper()
    view.kind.value = "random (seeded by k)"
    first = view.ciphertext
    view.rounds.value = 5
    view.rounds.value = 4
    assert view.ciphertext == first and view.recovered == 0x0123ABCD
