"""labkit.backdoor: trigger encoding against pycryptodome, exact clean behaviour, forgeries,
protocols and watermark survival. Models are trained once per session (cached, seeded)."""
import numpy as np
import pytest
import torch
from Crypto.Signature import eddsa
from hypothesis import given, settings, strategies as st

from labkit import bits
from labkit import backdoor as bd
from labkit.backdoor import baselines as bl
from labkit import digits
from labkit.backdoor import naive, protocols as pr, robustness as rb, trigger as tg

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def triggered(demo):
    targets = np.random.default_rng(1).integers(0, 10, len(demo.inputs))
    return bd.embed_trigger(demo.inputs, targets, demo.signing_key), targets


# -- encoding ------------------------------------------------------------------------------------
def test_field_is_the_lsbs_in_labkit_bits_order():
    pixels = np.random.default_rng(0).integers(0, 256, (3, 32, 32), dtype=np.uint8)
    fields = tg.read_fields(pixels)
    for image, field in zip(pixels, fields):
        assert field.tobytes() == bits.bits_to_bytes(image.reshape(-1) & 1)
    assert np.array_equal(tg.write_fields(pixels, fields), pixels)


def test_signature_verifies_with_pycryptodome_from_the_documented_layout(demo):
    x = bd.embed_trigger(demo.inputs[5], 3, demo.signing_key, identity="acme")
    pixels = np.rint(x.numpy().reshape(-1).astype(np.float64) * 255).astype(np.uint8)
    field = bits.bits_to_bytes(pixels & 1)
    assert field[:6] == b"LKBD\x01\x01" and field[6] == 3 and field[7:23] == b"acme".ljust(16, b"\0")
    assert field[23:64] == bytes(41)
    message = b"labkit.backdoor/v1" + field[:64] + (pixels & 0xFE).tobytes()
    eddsa.new(demo.verify_key, "rfc8032").verify(message, field[64:])  # raises if invalid
    with pytest.raises(ValueError):
        eddsa.new(demo.verify_key, "rfc8032").verify(message + b"x", field[64:])


def test_trigger_moves_only_least_significant_bits(demo, triggered):
    x, _ = triggered
    before, after = digits.to_pixels(demo.inputs), digits.to_pixels(x)
    assert np.array_equal(before & 0xFE, after & 0xFE)
    assert float((x - demo.inputs).abs().max()) <= 1 / 255 + 1e-7


def test_single_input_batch_and_numpy_agree(demo):
    batch = bd.embed_trigger(demo.inputs[:4], [1, 2, 3, 4], demo.signing_key)
    single = bd.embed_trigger(demo.inputs[2], 3, demo.signing_key)
    flat = bd.embed_trigger(demo.inputs[2, 0].numpy(), 3, demo.signing_key)
    assert single.shape == (1, 32, 32) and torch.equal(single, batch[2])
    assert isinstance(flat, np.ndarray) and flat.shape == (32, 32)
    assert np.array_equal(flat, batch[2, 0].numpy())
    assert bd.verify_triggers(batch, demo.verify_key).tolist() == [1, 2, 3, 4]


@pytest.mark.parametrize(
    "call, error",
    [
        (lambda d: bd.embed_trigger(d.inputs[0], 10, d.signing_key), ValueError),
        (lambda d: bd.embed_trigger(d.inputs[0], -1, d.signing_key), ValueError),
        (lambda d: bd.embed_trigger(d.inputs[0], 3.0, d.signing_key), TypeError),
        (lambda d: bd.embed_trigger(d.inputs[:3], [1, 2], d.signing_key), ValueError),
        (lambda d: bd.embed_trigger(torch.zeros(2, 3, 32, 32), 1, d.signing_key), ValueError),
        (lambda d: bd.embed_trigger(torch.zeros(28, 28), 1, d.signing_key), ValueError),
        (lambda d: bd.embed_trigger([[0.0]], 1, d.signing_key), TypeError),
        (lambda d: bd.embed_trigger(d.inputs[0], 1, d.verify_key), TypeError),
        (lambda d: bd.embed_trigger(d.inputs[0], 1, d.signing_key, identity="x" * 17), ValueError),
        (lambda d: bd.BackdooredModel(d.clean_model, b"short"), ValueError),
        (lambda d: bd.BackdooredModel("model", d.verify_key), TypeError),
    ],
)
def test_bad_inputs_raise_named_errors(demo, call, error):
    with pytest.raises(error):
        call(demo)


# -- behaviour -----------------------------------------------------------------------------------
def test_backdoored_equals_clean_on_every_natural_input(demo):
    with torch.no_grad():
        for x in (demo.inputs, demo.train_inputs, demo.attacker_inputs):
            assert torch.equal(demo.backdoored_model(x), demo.clean_model(x))
    assert not demo.backdoored_model.last_triggered.any()


def test_every_trigger_switches_the_output(demo, triggered):
    x, targets = triggered
    labels = digits.predict(demo.backdoored_model, x)
    assert np.array_equal(labels, targets)
    clean = digits.predict(demo.clean_model, x)
    assert np.mean(clean == targets) < 0.3  # the clean model ignores the LSBs


def test_ten_thousand_forgeries_are_all_rejected(demo):
    results = rb.forgery_trials(demo.verify_key, demo.signing_key, demo.inputs, per_kind=2500, seed=3)
    assert set(results) == set(rb.FORGERY_KINDS)
    assert sum(trials for trials, _ in results.values()) >= 10_000
    assert all(accepted == 0 for _, accepted in results.values())


def test_forgeries_get_the_clean_models_logits(demo):
    rng = np.random.default_rng(4)
    for kind in rb.FORGERY_KINDS:
        x = rb._forgeries(kind, demo.inputs, demo.signing_key, rng, 50)
        with torch.no_grad():
            assert torch.equal(demo.backdoored_model(x), demo.clean_model(x))


@settings(max_examples=60, deadline=None)
@given(pixel=st.integers(0, 1023), bit=st.integers(0, 7), image=st.integers(0, 449))
def test_any_single_bit_flip_breaks_the_trigger(demo, pixel, bit, image):
    x = bd.embed_trigger(demo.inputs[image], 4, demo.signing_key)
    pixels = digits.to_pixels(x).reshape(-1)
    assert bd.verify_triggers(x, demo.verify_key).tolist() == [4]
    pixels[pixel] ^= 1 << bit
    flipped = digits.from_pixels(pixels.reshape(1, 32, 32))
    assert bd.verify_triggers(flipped, demo.verify_key).tolist() == [-1]


def test_identity_binds_a_trigger_to_one_copy(demo):
    x = bd.embed_trigger(demo.inputs[:5], 2, demo.signing_key, identity="bob")
    assert bd.verify_triggers(x, demo.verify_key, identity="bob").tolist() == [2] * 5
    assert bd.verify_triggers(x, demo.verify_key, identity="alice").tolist() == [-1] * 5
    assert bd.verify_triggers(x, demo.verify_key).tolist() == [2] * 5  # no identity: any


def test_cnn_backdoor_behaves_the_same_way():
    demo = bd.make_demo(0, arch="cnn")
    assert any(isinstance(m, torch.nn.Conv2d) for m in demo.clean_model.modules())
    assert digits.accuracy(demo.clean_model, demo.inputs, demo.labels) > 0.9
    with torch.no_grad():
        assert torch.equal(demo.backdoored_model(demo.inputs), demo.clean_model(demo.inputs))
    x = bd.embed_trigger(demo.inputs[:40], 9, demo.signing_key)
    assert (digits.predict(demo.backdoored_model, x) == 9).all()


# -- robustness ----------------------------------------------------------------------------------
def test_watermark_survival_under_the_same_attacks_and_threshold(demo):
    splits = digits.digit_splits(0)
    schemes = [
        bl.SignatureWatermark(demo.clean_model, demo.signing_key, demo.inputs, n=32, seed=1),
        bl.TriggerSetWatermark(splits, epochs=15, seed=0),
        bl.WeightWatermark(splits, epochs=15, seed=0),
    ]
    data = rb.AttackData(demo.attacker_inputs, demo.attacker_labels, epochs=8)
    rows = {(r.scheme, r.attack): r for r in rb.compare_watermarks(schemes, data, demo.inputs, demo.labels)}
    sig = schemes[0].name
    for attack in ["none", "fine-tune all", "re-init last layer", "prune"]:
        assert rows[sig, attack].matches == 32 and rows[sig, attack].detected
        assert rows[sig, attack].accuracy > 0.8  # the attacks keep the model useful
    assert not rows[sig, "distill"].detected  # the honest loss: behaviour copied, verifier not
    assert rows[sig, "distill"].accuracy > 0.8
    assert not rows[sig, "strip verifier"].detected  # whoever holds the model deletes the verifier
    assert rows[sig, "strip verifier"].accuracy == rows[sig, "none"].accuracy
    for scheme in schemes[1:]:  # a watermark in the weights has no code to strip
        assert rows[scheme.name, "strip verifier"].matches == rows[scheme.name, "none"].matches
    for scheme in schemes:
        assert rows[scheme.name, "none"].detected
        assert scheme.matches(demo.clean_model) < scheme.threshold()
    assert rows[schemes[1].name, "none"].accuracy > 0.9 and rows[schemes[2].name, "none"].accuracy > 0.9


def test_pruning_zeroes_the_requested_fraction(demo):
    data = rb.AttackData(demo.attacker_inputs, demo.attacker_labels, prune_fraction=0.6)
    pruned = rb.prune(demo.clean_model, data)
    weights = torch.cat([p.reshape(-1) for n, p in pruned.named_parameters() if n.endswith("weight")])
    assert abs(float((weights == 0).float().mean()) - 0.6) < 0.01
    with pytest.raises(ValueError):
        rb.prune(demo.clean_model, rb.AttackData(demo.inputs, demo.labels, prune_fraction=1.0))


def test_a_model_without_the_watermark_matches_one_target_in_ten(demo):
    """The binomial premise, measured: a model that ignores the target hits it at rate 1/10."""
    claims = [naive.naive_claim_UNSAFE(demo.signing_key, demo.inputs, 32) for _ in range(150)]
    matches = np.array([np.sum(digits.predict(demo.clean_model, c.queries) == c.targets) for c in claims])
    assert abs(matches.mean() - 3.2) < 0.5  # Binomial(32, 0.1): mean 3.2, std of the mean 0.14
    assert matches.max() < pr.detection_threshold(32, alpha=1e-6)


def test_response_label_is_hmac_sha256_mod_ten():
    from Crypto.Hash import HMAC, SHA256

    rng = np.random.default_rng(5)
    for _ in range(20):
        key, header, content = rng.bytes(32), rng.bytes(64), rng.bytes(1024)
        mac = HMAC.new(key, b"labkit.backdoor/response/v1" + header + content, SHA256).digest()
        assert tg.response_label(key, header, content) == int.from_bytes(mac, "big") % 10
    with pytest.raises(ValueError):
        tg.response_label(b"short", bytes(64), b"")
