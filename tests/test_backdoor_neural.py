"""The fully neural keyed backdoor: exact on natural inputs, keyed labels on triggers, its key
read by the chapter 06 attack unless the chapter 07 protection wraps the keyed part. These tests
use a small keyed network (key XOR, AES S-boxes, bit permutation) so they run in seconds."""
import numpy as np
import pytest
import torch

from labkit import backdoor as bd
from labkit.backdoor import keyed_network as nb
from toy_networks import toy_spn, toy_spn_reference

pytestmark = pytest.mark.usefixtures("one_torch_thread")
KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")


@pytest.fixture(scope="module", params=[False, True], ids=["plain", "protected"])
def backdoor(demo, request):
    return nb.make_keyed_backdoor(demo.clean_model, KEY, protected=request.param,
                                  keyed=toy_spn(KEY), reference=toy_spn_reference)


def test_exactly_the_clean_model_on_natural_inputs(demo, backdoor):
    with torch.no_grad():
        out = backdoor.model(nb.natural_rows(demo.inputs))
    reference = bd.make_demo(0).clean_model.double()
    # bit-equal by construction: the same float64 layers on the same contiguous pixels, and the
    # multiplexer adds exact zeros (|logits| < M), so this holds on every CPU code path
    assert torch.equal(out, reference(demo.inputs.double()))
    assert next(demo.clean_model.parameters()).dtype == torch.float32  # the caller's model untouched


def test_triggers_answer_the_keyed_labels(demo, backdoor):
    messages = np.random.default_rng(0).integers(0, 2, (60, 128))
    with torch.no_grad():
        scores = backdoor.model(nb.trigger_rows(demo.inputs[:60], messages)).numpy()
    assert np.array_equal(scores, nb.keyed_scores(toy_spn_reference, KEY, messages, backdoor.projection))
    assert np.array_equal(scores.argmax(1), backdoor.keyed_labels(messages))
    wrong = nb.keyed_scores(toy_spn_reference, bytes(16), messages, backdoor.projection).argmax(1)
    assert np.mean(wrong == scores.argmax(1)) < 0.5  # another key predicts other labels


def test_attack_reads_the_key_only_without_protection(demo, backdoor):
    result = nb.recover_backdoor_key(backdoor, demo.inputs[0], seed=1)
    if backdoor.protected:
        assert result.key is None and result.detected_errors > 0
    else:
        assert result.key == KEY and result.queries <= 4 * 128 + 1


def test_bad_inputs(demo):
    with pytest.raises(ValueError):
        nb.make_keyed_backdoor(demo.clean_model, b"short", keyed=toy_spn(KEY), reference=toy_spn_reference)
    model = nb.make_keyed_backdoor(demo.clean_model, KEY, keyed=toy_spn(KEY), reference=toy_spn_reference).model
    with pytest.raises(ValueError):
        model(torch.zeros(2, 1024))


def test_the_whole_plain_model_is_affine_and_relu(demo):
    model = nb.make_keyed_backdoor(demo.clean_model, KEY, keyed=toy_spn(KEY), reference=toy_spn_reference).model
    counts = model.check_affine_relu()
    assert counts["relu"] >= 4 and counts["linear"] >= 2


def test_with_the_real_aes_network(demo):
    """AES-128 compiled by labkit.neural: exact on natural inputs, keyed labels agree with
    labkit.aes, the key falls to recover_key, and not once the keyed part is protected."""
    from labkit import aes

    key = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
    plain = nb.make_keyed_backdoor(demo.clean_model, key)
    with torch.no_grad():
        out = plain.model(nb.natural_rows(demo.inputs[:40]))
    assert torch.equal(out, plain.model.combined.classifier(demo.inputs[:40].double()))
    messages = np.random.default_rng(2).integers(0, 2, (8, 128)).astype(np.uint8)
    ciphertexts = [aes.encrypt_block(key, np.packbits(m).tobytes()) for m in messages]
    cipher_bits = np.unpackbits(np.frombuffer(b"".join(ciphertexts), np.uint8)).reshape(8, 128)
    expected = (cipher_bits @ plain.projection.numpy().T).argmax(1)
    with torch.no_grad():
        got = plain.model(nb.trigger_rows(demo.inputs[:8], messages)).argmax(1).numpy()
    assert np.array_equal(got, expected) and np.array_equal(plain.keyed_labels(messages), expected)
    assert nb.recover_backdoor_key(plain, demo.inputs[3], seed=4).key == key
    shielded = nb.make_keyed_backdoor(demo.clean_model, key, protected=True)
    with torch.no_grad():
        assert np.array_equal(shielded.model(nb.trigger_rows(demo.inputs[:8], messages)).argmax(1).numpy(), expected)
    assert nb.recover_backdoor_key(shielded, demo.inputs[3], seed=4).key is None
