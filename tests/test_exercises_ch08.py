"""Chapter 08 exercise checks accept labkit's own reference and reject near misses."""
import numpy as np

from labkit import backdoor as bd
from labkit import exercises as ex
from labkit import digits
from labkit.backdoor import attackers, naive, protocols, schemes
from labkit.backdoor import trigger as tg
from labkit.exercises import service_handles, ch08_backdoor
import challenge_state


def test_threshold_and_query_count():
    assert ex.check("08.1", 11) and not ex.check("08.1", 10) and not ex.check("08.1", 12)
    assert ex.check("08.2", 7) and not ex.check("08.2", 6) and not ex.check("08.2", 8)


def test_kinds():
    kinds = {i: ex.registry()[f"08.{i}"].kind for i in range(1, 12)}
    assert [kinds[i] for i in range(1, 6)] == ["value", "value", "implement", "implement", "attack"]
    assert all(kinds[i] == "quiz" for i in range(6, 12))


def test_write_field_accepts_the_reference_and_rejects_bit_order_and_type_mistakes():
    def reference(pixels, field):
        return tg.write_fields(pixels, np.frombuffer(field, dtype=np.uint8))[0]

    def lsb_first(pixels, field):  # bits of each byte in the wrong order
        bits = np.unpackbits(np.frombuffer(field, dtype=np.uint8), bitorder="little").reshape(32, 32)
        return (pixels & 0xFE) | bits

    def as_floats(pixels, field):  # right values, model format instead of pixel bytes
        return reference(pixels, field).astype(np.float32)

    assert ex.check("08.3", reference)
    for wrong in (lsb_first, as_floats, lambda pixels, field: pixels):
        feedback = ex.check("08.3", wrong)
        assert not feedback and "expected" in str(feedback)


def _reference_verifier(pixels, verify_key):
    return int(tg.verify_triggers(digits.from_pixels(pixels), verify_key)[0])


def test_trigger_target_accepts_the_reference_and_rejects_a_verifier_that_skips_the_signature():
    def no_signature_check(pixels, verify_key):
        parsed = tg.parse_trigger(tg.read_fields(pixels)[0].tobytes())
        return -1 if parsed is None else parsed.target

    assert ex.check("08.4", _reference_verifier)
    for wrong in (no_signature_check, lambda pixels, verify_key: -1):
        feedback = ex.check("08.4", wrong)
        assert not feedback and "expected" in str(feedback)


def test_a_transplanted_field_is_no_trigger():
    demo = bd.make_demo(0)
    good = bd.embed_trigger(demo.inputs[0], 3, demo.signing_key)
    moved = tg.write_fields(digits.to_pixels(demo.inputs[1]), tg.read_fields(digits.to_pixels(good)))[0]
    key = tg.verify_key_bytes(demo.verify_key)
    assert _reference_verifier(digits.to_pixels(good)[0], key) == 3
    assert _reference_verifier(moved, key) == -1
    label = int(digits.predict(demo.backdoored_model, digits.from_pixels(moved).reshape(1, 1, 32, 32))[0])
    assert label == int(digits.predict(demo.clean_model, digits.from_pixels(moved).reshape(1, 1, 32, 32))[0])


def test_naive_judge_attack_wins_there_and_loses_before_the_sound_judge():
    service_handles.new_run()
    challenge = ch08_backdoor.ownership_challenge()
    assert set(challenge) == {"suspect", "images", "signing_key"} and callable(challenge["suspect"])
    thief = attackers.AdaptiveTargetClaimant(challenge["suspect"])  # labkit's own attacker, its own key
    ready_made = ex.check("08.5", thief.claim_UNSAFE(challenge["images"]))
    assert not ready_made and "signing_key" in str(ready_made)  # rerunning section 3's claimant is refused
    thief.signing_key = challenge["signing_key"]  # the same steps under the key the run hands out
    assert ex.check("08.5", thief.claim_UNSAFE(challenge["images"]))
    honest_stranger = naive.naive_claim_UNSAFE(challenge["signing_key"], challenge["images"])
    assert not ex.check("08.5", honest_stranger)  # signing random targets under a key not in the model
    assert not ex.check("08.5", thief.claim_UNSAFE(challenge["images"], n=8))  # too few queries
    assert not ex.check("08.5", "owned")
    verdict = protocols.judge_ownership(challenge["suspect"], thief, challenge["images"], n=16,
                                        layout=schemes.DEFAULT_LAYOUT)  # the thief signs Ed25519
    assert not verdict.owned  # the same strategy before the sound judge


def _owner_key():
    """This run's owner key, read from the service's database (white box)."""
    from Crypto.Signature import eddsa

    return eddsa.import_private_key(challenge_state.run_state("08.5")["owner"])


def test_the_owners_key_is_fresh_per_run_and_not_in_the_challenge():
    service_handles.new_run()
    challenge = ch08_backdoor.ownership_challenge()
    owner = _owner_key()
    assert owner.seed.hex() not in repr(challenge)
    image = challenge["images"][:1]
    target = (int(challenge["suspect"](image)[0]) + 1) % 10
    triggered = bd.embed_trigger(image, target, owner)
    assert int(challenge["suspect"](triggered)[0]) == target  # this run's model carries this run's key
    service_handles.new_run()
    next_suspect = ch08_backdoor.ownership_challenge()["suspect"]
    clean = digits.predict(digits.trained_classifier("mlp", 0), triggered)
    assert np.array_equal(next_suspect(triggered), clean)  # the next run's key: no trigger any more
    assert tg.verify_key_bytes(_owner_key()) != tg.verify_key_bytes(owner)
