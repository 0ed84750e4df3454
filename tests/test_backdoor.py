"""labkit.backdoor: trigger encoding against pycryptodome, exact clean behaviour, forgeries,
protocols and watermark survival. Models are trained once per session (cached, seeded)."""
import numpy as np
import pytest
import torch
from Crypto.Signature import eddsa
from hypothesis import given, settings, strategies as st
from scipy.stats import binom

from labkit import bits
from labkit import backdoor as bd
from labkit.backdoor import baselines as bl
from labkit.backdoor import models, protocols as pr, robustness as rb, trigger as tg

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def demo():
    return bd.make_demo(0)


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
    before, after = models.to_pixels(demo.inputs), models.to_pixels(x)
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


def test_seeded_keys_are_reproducible_and_distinct():
    a, b, c = bd.generate_keys(1), bd.generate_keys(1), bd.generate_keys(2)
    raw = [tg.verify_key_bytes(k[1]) for k in (a, b, c)]
    assert raw[0] == raw[1] != raw[2] and len(raw[0]) == 32
    assert tg.verify_key_bytes(bd.generate_keys()[1]) not in raw


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
    labels = models.predict(demo.backdoored_model, x)
    assert np.array_equal(labels, targets)
    clean = models.predict(demo.clean_model, x)
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
    pixels = models.to_pixels(x).reshape(-1)
    assert bd.verify_triggers(x, demo.verify_key).tolist() == [4]
    pixels[pixel] ^= 1 << bit
    flipped = models.from_pixels(pixels.reshape(1, 32, 32))
    assert bd.verify_triggers(flipped, demo.verify_key).tolist() == [-1]


def test_identity_binds_a_trigger_to_one_copy(demo):
    x = bd.embed_trigger(demo.inputs[:5], 2, demo.signing_key, identity="bob")
    assert bd.verify_triggers(x, demo.verify_key, identity="bob").tolist() == [2] * 5
    assert bd.verify_triggers(x, demo.verify_key, identity="alice").tolist() == [-1] * 5
    assert bd.verify_triggers(x, demo.verify_key).tolist() == [2] * 5  # no identity: any


def test_cnn_backdoor_behaves_the_same_way():
    demo = bd.make_demo(0, arch="cnn")
    assert any(isinstance(m, torch.nn.Conv2d) for m in demo.clean_model.modules())
    assert models.accuracy(demo.clean_model, demo.inputs, demo.labels) > 0.9
    with torch.no_grad():
        assert torch.equal(demo.backdoored_model(demo.inputs), demo.clean_model(demo.inputs))
    x = bd.embed_trigger(demo.inputs[:40], 9, demo.signing_key)
    assert (models.predict(demo.backdoored_model, x) == 9).all()


# -- statistics and protocols --------------------------------------------------------------------
@pytest.mark.parametrize("n, p", [(32, 0.1), (64, 0.5), (16, 1 / 16), (1, 0.3)])
def test_binomial_tail_and_threshold_match_scipy(n, p):
    for k in range(n + 1):
        assert pr.binomial_tail(n, k, p) == pytest.approx(binom.sf(k - 1, n, p), rel=1e-9, abs=1e-300)
    for alpha in (1e-2, 1e-6):
        try:
            k = pr.detection_threshold(n, p0=p, alpha=alpha)
        except ValueError:
            assert p**n > alpha
            continue
        assert binom.sf(k - 1, n, p) <= alpha * (1 + 1e-9) and (k == 0 or binom.sf(k - 2, n, p) > alpha)


def test_ownership_judge(demo):
    owner = pr.ModelOwner(demo.signing_key, demo.inputs, seed=5)
    claim = owner.claim(32)
    verdict = pr.judge_ownership(claim, pr.label_oracle(demo.backdoored_model))
    assert verdict.owned and verdict.matches == 32 and verdict.signatures_valid
    assert verdict.p_value == pytest.approx(0.1**32)
    independent = pr.judge_ownership(claim, pr.label_oracle(demo.clean_model))
    assert not independent.owned and independent.matches < independent.threshold
    # an impostor presenting the owner's triggers under its own key is turned away
    _, impostor_vk = bd.generate_keys(123)
    stolen = pr.OwnershipClaim(claim.queries, claim.targets, tg.verify_key_bytes(impostor_vk))
    assert not pr.judge_ownership(stolen, pr.label_oracle(demo.backdoored_model)).signatures_valid
    # ... and so is one who claims other targets than the signed ones
    changed = pr.OwnershipClaim(claim.queries, (claim.targets + 1) % 10, claim.verify_key)
    assert not pr.judge_ownership(changed, pr.label_oracle(demo.backdoored_model)).owned


def test_authentication_accepts_valid_tokens_only(demo):
    now = [1_000_000.0]
    issuer = pr.TokenIssuer(demo.signing_key, seed=0)
    service = pr.AuthenticatedModel(demo.clean_model, issuer.verify_key, clock=lambda: now[0])
    image = demo.inputs[7:8]
    token = issuer.issue("alice", expiry=1_000_600)
    first = service.query(pr.attach_token(image, token))[0]
    assert first.accepted and first.user_id == b"alice"
    assert first.label == models.predict(demo.clean_model, image)[0]
    assert service.query(pr.attach_token(image, token))[0].reason == "replayed"
    assert service.query(image)[0].reason == "no token"
    forged = pr.TokenIssuer(bd.generate_keys(9)[0]).issue("alice", 1_000_600)
    assert service.query(pr.attach_token(image, forged))[0].reason == "bad signature"
    fresh = issuer.issue("bob", expiry=1_000_600)
    for changed in (
        pr.Token(b"mallory", fresh.expiry, fresh.nonce, fresh.signature),
        pr.Token(fresh.user_id, fresh.expiry + 3600, fresh.nonce, fresh.signature),
        pr.Token(fresh.user_id, fresh.expiry, bytes(16), fresh.signature),
    ):
        assert service.query(pr.attach_token(image, changed))[0].reason == "bad signature"
    late = issuer.issue("carol", expiry=1_000_010)
    now[0] = 1_000_010.0
    assert service.query(pr.attach_token(image, late))[0].reason == "expired"
    assert service.query(pr.attach_token(image, fresh))[0].accepted  # unchanged token still fine
    # a watermark trigger is not a token (kind byte), even though it is validly signed
    trig = bd.embed_trigger(image, 1, demo.signing_key)
    assert service.query(trig)[0].reason == "no token"


def test_leak_is_traced_to_the_right_licensee(demo):
    licensor = pr.Licensor(demo.clean_model, demo.inputs, seed=0)
    copies = {name: licensor.issue(name) for name in ["alice", "bob", "carol", "dave"]}
    with pytest.raises(ValueError):
        licensor.issue("bob")
    for leaker in ["bob", "dave"]:
        result = licensor.trace(pr.label_oracle(copies[leaker]), n=16)
        assert result.identified == [leaker] and result.matches[leaker] == 16
    data = rb.AttackData(demo.attacker_inputs, demo.attacker_labels, epochs=3)
    laundered = copies["carol"].with_classifier(rb.fine_tune(copies["carol"].classifier, data))
    assert licensor.trace(pr.label_oracle(laundered), n=16).identified == ["carol"]
    assert licensor.trace(pr.label_oracle(demo.clean_model), n=16).identified == []


# -- robustness ----------------------------------------------------------------------------------
def test_watermark_survival_under_the_same_attacks_and_threshold(demo):
    splits = models.digit_splits(0)
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
    """The threshold's premise, measured: an unwatermarked model hits random targets at rate 1/10."""
    owner = pr.ModelOwner(demo.signing_key, demo.inputs, seed=11)
    claims = [owner.claim(32) for _ in range(150)]
    matches = np.array([np.sum(models.predict(demo.clean_model, c.queries) == c.targets) for c in claims])
    assert abs(matches.mean() - 3.2) < 0.5  # Binomial(32, 0.1): mean 3.2, std of the mean 0.14
    assert matches.max() < pr.detection_threshold(32, alpha=1e-6)
