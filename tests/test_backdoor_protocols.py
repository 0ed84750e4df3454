"""Attacks first: the ownership judge and the leak tracer against black-box attackers with fresh
keys (labkit.backdoor.attackers and ad-hoc ones here), then the honest runs they must not break.

The judge here runs on Ed25519 (``layout=schemes.DEFAULT_LAYOUT``, chapter 08's scheme, hardened
with control_tries): what its controls do and where grinding still wins. The default judge, on a
unique BLS signature, is attacked in test_backdoor_ownership_unique.py."""
import numpy as np
import pytest
import torch
from Crypto.Signature import eddsa
from scipy.stats import binom, hypergeom

from labkit import backdoor as bd
from labkit.backdoor import attackers as at
from labkit import digits
from labkit.backdoor import naive, protocols as pr, robustness as rb
from labkit.backdoor import nonce_signing as ns
from labkit.backdoor import schemes
from labkit.backdoor import trigger as tg

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TRIALS = 12  # repeated judgments per attack; each has false-positive probability <= 1e-6


@pytest.fixture(scope="module")
def suspects(demo):
    """Models nobody but the owner owns, and the owner's own model."""
    return {
        "clean": demo.clean_model,
        "independent": digits.trained_classifier("mlp", seed=1),
        "owner's": demo.backdoored_model,
    }


def _judge(suspect, claimant, images, **kw):
    """The judge on Ed25519 triggers (control_tries 32 unless given)."""
    return pr.judge_ownership(suspect, claimant, images, **{"layout": schemes.DEFAULT_LAYOUT, **kw})


def _owned(suspect_model, claimant, images, **kw):
    return _judge(pr.label_oracle(suspect_model), claimant, images, **kw)


# -- ownership: attacks --------------------------------------------------------------------------
@pytest.mark.parametrize("adaptive", [True, False])
@pytest.mark.parametrize("suspect", ["clean", "independent", "owner's"])
def test_adaptive_target_claimant_with_a_fresh_key_is_not_owner(demo, suspects, suspect, adaptive):
    model = suspects[suspect]
    claimant = at.AdaptiveTargetClaimant(pr.label_oracle(model), adaptive=adaptive)
    # the attack works on the naive judge ...
    assert naive.naive_judge_ownership_UNSAFE(claimant.claim_UNSAFE(demo.inputs), pr.label_oracle(model)).owned
    # ... and never on the sound one
    for _ in range(TRIALS // 2):
        verdict = _owned(model, claimant, demo.inputs)
        assert not verdict.owned
        assert (verdict.reason != "judged") == adaptive  # signing other targets is rejected outright


@pytest.mark.parametrize("rule", [at.EchoModel, at.HashModel])
def test_keyless_models_are_owned_by_nobody_not_even_the_honest_owner(demo, rule):
    model = rule(demo.clean_model)
    honest = pr.ModelOwner(demo.signing_key)
    assert naive.naive_judge_ownership_UNSAFE(naive.naive_claim_UNSAFE(demo.signing_key, demo.inputs),
                                             pr.label_oracle(at.EchoModel(demo.clean_model))).owned
    for claimant in (honest, pr.ModelOwner(bd.generate_keys()[0]), at.AdaptiveTargetClaimant(model, adaptive=False)):
        for _ in range(TRIALS // 3):
            verdict = _owned(model, claimant, demo.inputs)
            assert not verdict.owned and verdict.reason == "judged"
    echo = _owned(at.EchoModel(demo.clean_model), honest, demo.inputs)
    assert echo.claim_matches == echo.control_matches == 32  # the controls are what catch it


# -- grinding: Ed25519 is not unique, a claimant may choose among valid signatures --------------
RFC8032_VECTORS = [  # RFC 8032 §7.1, TEST 1-3: (secret key, message, signature)
    ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
    ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
    ("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"),
]


@pytest.mark.parametrize("secret, message, signature", RFC8032_VECTORS)
def test_nonce_signer_is_rfc8032_with_the_standard_nonce_and_valid_with_any_other(secret, message, signature):
    key = eddsa.import_private_key(bytes.fromhex(secret))
    message = bytes.fromhex(message)
    assert ns.sign_with_nonce(key, message, ns.rfc8032_nonce(key, message)).hex() == signature
    assert eddsa.new(key, "rfc8032").sign(message).hex() == signature
    verifier = eddsa.new(key.public_key(), "rfc8032")
    others = {ns.sign_with_random_nonce(key, message) for _ in range(8)} | {ns.sign_with_nonce(key, message, 1)}
    assert len(others) == 9 and signature not in {o.hex() for o in others}
    for other in others:
        verifier.verify(message, other)  # raises ValueError if not authentic
    public, throwaway = ns.sign_with_throwaway_key(message)
    eddsa.new(eddsa.import_public_key(public), "rfc8032").verify(message, throwaway)
    with pytest.raises(ValueError):
        verifier.verify(message + b"!", others.pop())
    for bad in (0, ns.ORDER, -1, True, 2.0):
        with pytest.raises(ValueError):
            ns.sign_with_nonce(key, message, bad)
    with pytest.raises(TypeError):
        ns.sign_with_nonce(key.public_key(), message, 1)


def test_grinding_claimant_beats_the_unhardened_judge(demo):
    """The hole: with one signature per control (control_tries=1, the judge before the fix), a fresh
    key that grinds nonces against SHA-256-of-the-bits wins "owned"."""
    suspect = pr.label_oracle(at.HashModel(demo.clean_model))
    claimant = at.GrindingClaimant(suspect, budget=64)
    verdict = _judge(suspect, claimant, demo.inputs, control_tries=1)
    assert verdict.owned and verdict.reason == "judged" and verdict.claim_matches >= 30
    assert claimant.signatures_tried > 32  # it needed more than one signature per trigger


@pytest.mark.parametrize("suspect", ["hash", "echo", "clean", "independent"])
def test_grinding_claimant_within_the_judges_budget_owns_nothing(demo, suspects, suspect):
    model = {"hash": at.HashModel(demo.clean_model), "echo": at.EchoModel(demo.clean_model),
             "clean": suspects["clean"], "independent": suspects["independent"]}[suspect]
    oracle = pr.label_oracle(model)
    for _ in range(3):
        claimant = at.GrindingClaimant(oracle, budget=32)
        verdict = _judge(oracle, claimant, demo.inputs, control_tries=32)
        assert verdict.reason == "judged" and not verdict.owned
        if suspect in ("hash", "echo"):
            assert verdict.control_matches >= verdict.threshold  # the ground controls hit as often


def test_a_claimant_grinding_beyond_the_judges_budget_still_wins_on_a_rare_property(demo):
    """What remains (protocols docstring): a rare key-less property (p = 2^-8) outruns 32 control
    tries; only a unique signature scheme closes this. The test pins the documented limit."""
    model = at.RarePropertyModel(demo.clean_model, zero_bits=8)
    oracle = pr.label_oracle(model)
    claimant = at.GrindingClaimant(oracle, budget=4096, batch=256)
    verdict = _judge(oracle, claimant, demo.inputs, n=32, control_tries=32)
    assert verdict.claim_matches >= 31 and verdict.control_matches < verdict.threshold and verdict.owned
    honest = _judge(oracle, pr.ModelOwner(demo.signing_key), demo.inputs)
    assert not honest.owned  # without grinding, nobody owns it


class _Grinder:
    """A fresh-key claimant that tries to steer a key-less suspect through the bits it controls."""

    def __init__(self, how):
        self.signing_key, _ = bd.generate_keys()
        self.verify_key = tg.verify_key_bytes(self.signing_key)
        self.how = how

    def respond(self, images, targets):
        if self.how == "identity":  # a free field that would let it grind a hash of the bits
            return tg.embed_trigger(images, targets, self.signing_key, identity="grind")
        if self.how == "nonce":
            return tg.embed_trigger(images, targets, self.signing_key, fresh_nonces=True)
        if self.how == "off-grid":  # valid triggers plus float noise a suspect could read
            triggered = tg.embed_trigger(images, targets, self.signing_key)
            return triggered + 0.001 * (torch.arange(len(images)).reshape(-1, 1, 1, 1) % 2)
        if self.how == "other image":
            return tg.embed_trigger(images.roll(1, 0), targets, self.signing_key)
        if self.how == "short":
            return tg.embed_trigger(images[1:], targets[1:], self.signing_key)
        raise AssertionError(self.how)


@pytest.mark.parametrize("how", ["identity", "nonce", "other image", "short"])
def test_non_canonical_responses_are_rejected(demo, how):
    verdict = _owned(at.EchoModel(demo.clean_model), _Grinder(how), demo.inputs)
    assert not verdict.owned and verdict.reason != "judged"


def test_suspect_sees_only_canonical_queries_in_a_random_order(demo):
    seen = []

    def spy(x):
        seen.append(x.clone())
        return digits.predict(demo.clean_model, x)

    verdict = _judge(spy, _Grinder("off-grid"), demo.inputs, n=16, control_tries=4)
    assert verdict.reason == "judged" and verdict.control_tries == 4
    assert [len(x) for x in seen] == [32, 32 * 4]  # the 2n clean images first, then 4 copies of each slot
    clean, x = (digits.to_pixels(q).reshape(-1, 32, 32) for q in seen)
    assert torch.equal(seen[1], digits.from_pixels(digits.to_pixels(seen[1])))  # the judge rebuilt every query
    fields = tg.read_fields(x)
    headers = {bytes(f[:6]) + bytes(f[7:64]) for f in fields}  # all but the target byte
    assert headers == {tg.trigger_header(0)[:6] + tg.trigger_header(0)[7:]}  # controls look alike
    contents = [tg.content_bytes(image) for image in x]
    assert sorted(contents) == sorted(tg.content_bytes(image) for image in clean for _ in range(4))
    for content in set(contents):  # every slot: 4 copies, one target, 4 distinct signatures
        slot = [bytes(f) for f, c in zip(fields, contents) if c == content]
        assert len(slot) == 4 and len({f[6] for f in slot}) == 1 and len(set(slot)) == 4


def test_targets_avoid_the_suspects_own_label(demo):
    answered = {}

    def spy(x):
        labels = digits.predict(demo.clean_model, x)
        if not answered:
            answered.update(zip((tg.content_bytes(p) for p in digits.to_pixels(x).reshape(-1, 32, 32)), labels))
        return labels

    class Recorder(pr.ModelOwner):
        def respond(self, images, targets):
            self.seen = list(zip((tg.content_bytes(p) for p in digits.to_pixels(images).reshape(-1, 32, 32)), targets))
            return super().respond(images, targets)

    owner = Recorder(demo.signing_key)
    _judge(spy, owner, demo.inputs, control_tries=2)
    assert len(owner.seen) == 32 and all(answered[c] != t for c, t in owner.seen)


def test_the_judge_draws_its_challenge_with_a_csprng(demo):
    challenges = []

    class Recorder(pr.ModelOwner):
        def respond(self, images, targets):
            challenges.append((digits.to_pixels(images).tobytes(), tuple(targets)))
            return super().respond(images, targets)

    for _ in range(2):
        np.random.seed(0)
        torch.manual_seed(0)
        _owned(demo.clean_model, Recorder(demo.signing_key), demo.inputs)
    assert challenges[0] != challenges[1]
    assert challenges[0][1] != challenges[1][1]


# -- ownership: honest use and the numbers -------------------------------------------------------
def test_the_owner_proves_ownership_of_its_model_and_of_attacked_copies(demo):
    owner = pr.ModelOwner(demo.signing_key)
    assert owner.verify_key == tg.verify_key_bytes(demo.verify_key) and len(owner.verify_key) == 32
    data = rb.AttackData(demo.attacker_inputs, demo.attacker_labels, epochs=3)
    tuned = demo.backdoored_model.with_classifier(rb.fine_tune(demo.backdoored_model.classifier, data))
    for model in (demo.backdoored_model, tuned, owner.watermark(digits.trained_classifier("mlp", seed=1))):
        verdict = _owned(model, owner, demo.inputs)
        assert verdict.owned and verdict.claim_matches == 32 and verdict.false_positive_bound <= 1e-6
        assert "OWNED" in str(verdict)
    stranger = pr.ModelOwner(bd.generate_keys()[0])
    assert not _owned(demo.backdoored_model, stranger, demo.inputs).owned


@pytest.mark.parametrize("n", [4, 16, 32])
def test_exchangeable_tail_is_the_hypergeometric_tail(n):
    for claim in range(n + 1):
        for control in range(0, n + 1, 3):
            expected = hypergeom.sf(claim - 1, 2 * n, claim + control, n)
            assert pr.exchangeable_tail(n, claim, control) == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_binomial_threshold_matches_scipy():
    for n, p in [(32, 0.1), (64, 0.5), (16, 1 / 16)]:
        for k in range(n + 1):
            assert pr.binomial_tail(n, k, p) == pytest.approx(binom.sf(k - 1, n, p), rel=1e-9, abs=1e-300)


def test_judge_validates_its_inputs(demo):
    owner = pr.ModelOwner(demo.signing_key)
    oracle = pr.label_oracle(demo.clean_model)
    with pytest.raises(TypeError):
        _judge(oracle, object(), demo.inputs)
    with pytest.raises(ValueError):
        _judge(oracle, owner, demo.inputs[:40], n=32)  # 2n distinct images needed
    with pytest.raises(ValueError):
        _judge(oracle, owner, demo.inputs, n=0)
    with pytest.raises(ValueError):
        _judge(lambda x: np.zeros(3), owner, demo.inputs)
    with pytest.raises(ValueError):
        _judge(oracle, owner, demo.inputs, n=4)  # 4/4 matches cannot reach 1e-6


# -- leak tracing --------------------------------------------------------------------------------
NAMES = ["alice", "bob", "carol", "dave", "erin"]


@pytest.fixture(scope="module")
def licensed(demo):
    licensor = pr.Licensor(demo.clean_model, demo.inputs)
    return licensor, {name: licensor.issue(name) for name in NAMES}


class _OwnKeyLeaker(torch.nn.Module):
    """Bob's copy answering every trigger, whoever it names, with bob's own secret response."""

    def __init__(self, copy):
        super().__init__()
        self.copy = copy

    def forward(self, x):
        logits = self.copy.classifier(x)
        pixels = tg.pixel_batch(x)
        for i, f in enumerate(tg.read_fields(pixels)):
            trig = tg.parse_trigger(f.tobytes())
            if trig is not None:
                logits[i] = 0.0
                logits[i, tg.response_label(self.copy.response_key, trig.header, tg.content_bytes(pixels[i]))] = 1.0
        return logits


@pytest.mark.parametrize("framer", ["cleartext", "cleartext, verifier kept", "own key", "echo", "hash"])
def test_a_leaker_holding_one_copy_frames_no_innocent(demo, licensed, framer):
    licensor, copies = licensed
    model = {"cleartext": at.FramingLeaker(copies["bob"]), "own key": _OwnKeyLeaker(copies["bob"]),
             "cleartext, verifier kept": at.FramingLeaker(copies["bob"], keep_verifier=True),
             "echo": at.EchoModel(demo.clean_model), "hash": at.HashModel(demo.clean_model)}[framer]
    with torch.no_grad():
        for _ in range(TRIALS // 2):
            accused = licensor.trace(pr.label_oracle(model))
            assert set(accused) <= {"bob"}  # the leaker himself may be named; nobody else
            assert ("bob" in accused) == (framer in ("cleartext, verifier kept", "own key"))  # his copy answers


def test_the_naive_tracer_frames_the_innocent(demo):
    licensor = naive.NaiveLicensor_UNSAFE(demo.clean_model, demo.inputs)
    copies = {name: licensor.issue(name) for name in NAMES}
    assert licensor.trace(pr.label_oracle(at.FramingLeaker(copies["bob"]))) == ["alice", "carol", "dave", "erin"]


def test_the_honest_leak_names_its_licensee(demo, licensed):
    licensor, copies = licensed
    for leaker in ["bob", "erin"]:
        report = licensor.trace_report(pr.label_oracle(copies[leaker]))
        assert report.accused == [leaker] and report.matches[leaker] == report.n
        assert licensor.trace(pr.label_oracle(copies[leaker])) == [leaker]
    data = rb.AttackData(demo.attacker_inputs, demo.attacker_labels, epochs=3)
    laundered = copies["carol"].with_classifier(rb.fine_tune(copies["carol"].classifier, data))
    assert licensor.trace(pr.label_oracle(laundered)) == ["carol"]
    assert licensor.trace(pr.label_oracle(demo.clean_model)) == []
    assert licensor.trace(pr.label_oracle(licensor.licensed_copy("dave"))) == ["dave"]


def test_licences_use_fresh_keys_and_per_copy_secrets(demo):
    a, b = pr.Licensor(demo.clean_model, demo.inputs), pr.Licensor(demo.clean_model, demo.inputs)
    x, y = a.issue("alice"), b.issue("alice")
    assert tg.verify_key_bytes(x.verify_key) != tg.verify_key_bytes(y.verify_key)
    assert x.response_key != y.response_key and len(x.response_key) == 32
    assert a.issue("bob").response_key != x.response_key
    with pytest.raises(TypeError):
        pr.Licensor(demo.clean_model, demo.inputs, seed=0)
    with pytest.raises(ValueError):
        a.issue("alice")
    with pytest.raises(ValueError):
        a.issue("x" * 17)
    with pytest.raises(TypeError):
        a.issue(b"bytes")
    with pytest.raises(ValueError):
        pr.Licensor(demo.clean_model, demo.inputs).trace(pr.label_oracle(demo.clean_model))


def test_a_copy_answers_its_triggers_with_the_secret_label_only(demo, licensed):
    licensor, copies = licensed
    key = licensor._licences["alice"].signing_key
    x = tg.embed_trigger(demo.inputs[:20], 3, key, identity="alice", fresh_nonces=True)
    answers = digits.predict(copies["alice"], x)
    expected = tg.verify_triggers(x, key.public_key(), identity="alice", response_key=copies["alice"].response_key)
    assert np.array_equal(answers, expected) and (expected >= 0).all()
    assert np.mean(answers == 3) < 0.5  # the cleartext target is not what the copy answers
    with torch.no_grad():  # natural inputs: exactly the classifier
        assert torch.equal(copies["alice"](demo.inputs), demo.clean_model(demo.inputs))


# -- keys ----------------------------------------------------------------------------------------
def test_keys_come_from_a_csprng_never_from_a_seed():
    with pytest.raises(TypeError):
        bd.generate_keys(1)
    one, two = bd.make_demo(0), bd.make_demo(0)
    assert tg.verify_key_bytes(one.verify_key) != tg.verify_key_bytes(two.verify_key)
    assert torch.equal(one.inputs, two.inputs)  # the seed still chooses the data
    with torch.no_grad():
        assert torch.equal(one.backdoored_model(one.inputs), two.clean_model(two.inputs))


# -- the hardened judge: the honest owner's side and the numbers ---------------------------------
@pytest.mark.slow
def test_the_honest_owner_is_judged_owner_in_every_trial_with_fresh_keys(demo):
    for _ in range(20):
        owner = pr.ModelOwner(bd.generate_keys()[0])
        verdict = _owned(owner.watermark(demo.clean_model), owner, demo.inputs)
        assert verdict.owned and verdict.claim_matches == 32 and verdict.control_tries == 32


@pytest.mark.slow
def test_the_honest_owners_false_negative_rate_is_negligible(demo):
    """A watermarked model's control copies get the classifier's label of the image with random
    LSBs; a control hits only if that differs from the clean label (and equals the target). The
    fraction of images whose label any of 32 random LSB patterns changes bounds the hit rate."""
    pixels = digits.to_pixels(demo.inputs).reshape(-1, 32, 32)
    clean = digits.predict(demo.clean_model, demo.inputs)
    rng = np.random.default_rng(0)
    changed = np.zeros(len(pixels), dtype=bool)
    for _ in range(32):
        noisy = tg.write_fields(pixels, rng.integers(0, 256, (len(pixels), tg.FIELD_BYTES), dtype=np.uint8))
        changed |= digits.predict(demo.clean_model, digits.from_pixels(noisy).unsqueeze(1)) != clean
    rate = changed.mean()
    first_failing = min(k for k in range(33) if k >= pr.detection_threshold(32, p0=pr.TARGET_HIT_NULL)
                        or pr.exchangeable_tail(32, 32, k) > 1e-6)
    false_negative = pr.binomial_tail(32, first_failing, rate)
    print(f"label changed by random LSBs on {rate:.3%} of images; owner fails when >= {first_failing}/32 "
          f"controls hit: probability <= {false_negative:.2g} per judgement")
    assert first_failing >= 14 and false_negative < 1e-6


def test_exchangeable_tail_decreases_in_the_claim_hits():
    """The bound's proof needs it: more claim hits with the same control hits is stronger evidence."""
    for n in (8, 16, 32):
        for control in range(n + 1):
            tails = [pr.exchangeable_tail(n, claim, control) for claim in range(n + 1)]
            assert all(a >= b for a, b in zip(tails, tails[1:]))


def test_judge_validates_control_tries(demo):
    owner = pr.ModelOwner(demo.signing_key)
    for bad in (0, -1, True, 2.5):
        with pytest.raises(ValueError):
            _judge(pr.label_oracle(demo.clean_model), owner, demo.inputs, control_tries=bad)
    for bad in (0, True):
        with pytest.raises(ValueError):
            at.GrindingClaimant(pr.label_oracle(demo.clean_model), budget=bad)
