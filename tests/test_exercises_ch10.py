"""Chapter 10's exercises: checkers accept references derived here and reject wrong answers; the
attack exercises use fresh per-run keys; the design checker's attacker suite catches weak designs."""
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from Crypto.Protocol import HPKE
from Crypto.Protocol.DH import import_x25519_private_key, import_x25519_public_key
from safetensors import torch as safetensors_torch

from labkit import capstone, capstone_design, weights
from labkit import exercises as ex
from labkit.backdoor.protocols import detection_threshold
from labkit.challenges import defs_models
from labkit.exercises import service_handles, ch10_capstone
import challenge_state
from labkit.weights import pitfalls


def test_10_1_wrong_device_exception():
    assert ex.check("10.1", weights.NotARecipientError)
    assert ex.check("10.1", "NotARecipientError")
    too_general = ex.check("10.1", weights.IntegrityError)
    assert not too_general and "too general" in str(too_general)
    assert not ex.check("10.1", ValueError)


def test_10_2_threshold_shares_alpha_between_users():
    assert ex.check("10.2", lambda n, alpha, users: detection_threshold(n, alpha=alpha / users))
    one_user = ex.check("10.2", lambda n, alpha, users: detection_threshold(n, alpha=alpha))
    assert not one_user and "expected" in str(one_user)


def _trace(pirate, triggers):
    """An independent tracer: count each user's secret answers, Bonferroni-corrected threshold."""
    k = detection_threshold(16, alpha=1e-6 / len(triggers))
    return [u for u, (images, labels) in triggers.items() if int((np.asarray(pirate(images)) == labels).sum()) >= k]


def test_10_3_tracing_a_leak_with_fresh_per_run_keys():
    service_handles.new_run()
    pirate, triggers = ch10_capstone.leak_challenge()
    assert sorted(triggers) == sorted(defs_models.USERS)
    leaker = _trace(pirate, triggers)
    assert len(leaker) == 1
    assert ex.check("10.3", _trace)
    guess = ex.check("10.3", lambda pirate, triggers: leaker)  # right for this run, not for fresh leaks
    assert not guess
    most = ex.check("10.3", lambda p, t: [max(t, key=lambda u: int((np.asarray(p(t[u][0])) == t[u][1]).sum()))])
    assert not most and "no user leaked" in str(most)  # the unrelated model must accuse nobody
    seen = []

    def wrong_user(p, t):  # names an innocent user of this check's own (fresh) leak
        real = _trace(p, t)
        seen.append(real)
        return [u for u in t if u not in real][:1]

    wrong = ex.check("10.3", wrong_user)
    assert not wrong and "not who leaked it" in str(wrong) and seen[0][0] not in str(wrong)
    service_handles.new_run()
    _, fresh = ch10_capstone.leak_challenge()
    assert not any(np.array_equal(fresh[u][1], triggers[u][1]) and torch.equal(fresh[u][0], triggers[u][0])
                   for u in fresh)


def test_10_4_fewest_queries():
    n = next(m for m in range(1, 30) if 0.1**m <= 1e-6 / 5)
    assert ex.check("10.4", n) and not ex.check("10.4", n - 1) and not ex.check("10.4", n + 1)


def _deliver(state, device_public_key, publisher, model_id, version):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m.lkw"
        weights.seal(state, path, [device_public_key], signing_key=publisher, model_id=model_id, version=version)
        return path.read_bytes()


def _receiver(**pins):
    def receive(blob, device_private_key, publisher_public_key, model_id, min_version):
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "m.lkw"
            path.write_bytes(blob)
            given = {"signer": publisher_public_key, "model_id": model_id, "min_version": min_version}
            return weights.open(path, device_private_key, **{**given, **pins})
    return receive


def _hpke_deliver(state, device_public_key, publisher, model_id, version):
    sender = HPKE.new(receiver_key=import_x25519_public_key(device_public_key), aead_id=HPKE.AEAD.AES256_GCM)
    return sender.enc + sender.seal(safetensors_torch.save(state))


def _hpke_receive(blob, device_private_key, publisher_public_key, model_id, min_version):
    receiver = HPKE.new(receiver_key=import_x25519_private_key(device_private_key),
                        aead_id=HPKE.AEAD.AES256_GCM, enc=blob[:32])
    return safetensors_torch.load(receiver.unseal(blob[32:]))


def test_10_8_design_checker_runs_the_threat_model():
    assert {t for _, t, _ in capstone_design.THREAT_MODEL} <= set(capstone.THREATS)
    assert {s for s, _, _ in capstone_design.THREAT_MODEL} <= set(capstone.SURFACES)
    assert ex.check("10.5", (_deliver, _receiver()))
    no_version = ex.check("10.5", (_deliver, _receiver(min_version=None)))
    assert not no_version and "older genuine version" in str(no_version) and "8 of 9" in str(no_version)
    hpke_only = capstone_design.attack_design(_hpke_deliver, _hpke_receive)
    assert hpke_only.works and not hpke_only.secure
    assert [a.stopped for a in hpke_only.attacks] == [True] * 6 + [False] * 3

    def plaintext_deliver(state, device_public_key, publisher, model_id, version):
        return safetensors_torch.save(state)

    def plaintext_receive(blob, *args):
        return safetensors_torch.load(blob)

    clear = capstone_design.attack_design(plaintext_deliver, plaintext_receive)
    assert not clear.attacks[0].stopped and not clear.attacks[1].stopped and not clear.attacks[2].stopped

    def unwritten(state, device_public_key, publisher, model_id, version):
        ...

    assert "not answered yet" in str(ex.check("10.5", (unwritten, unwritten)))
    assert "must" in str(ex.check("10.5", _deliver))


def test_10_5_shows_the_exception_a_students_function_raises_on_a_genuine_delivery():
    def receive_with_a_bug(blob, device_private_key, publisher_public_key, model_id, min_version):
        raise KeyError("the header has no 'nonce' field")

    def deliver_with_a_bug(*args):
        raise ValueError("a 12-byte nonce is needed")

    feedback = str(ex.check("10.5", (_deliver, receive_with_a_bug)))
    assert "receive raised KeyError" in feedback and "no 'nonce' field" in feedback
    feedback = str(ex.check("10.5", (deliver_with_a_bug, _receiver())))
    assert "deliver raised ValueError: a 12-byte nonce is needed" in feedback


def _solve_1009() -> bytes:
    blob, _ = ch10_capstone.swap_challenge()
    _, spans = pitfalls.unsafe_layout(blob)
    (a0, a1), (b0, b1) = spans["layer1.weight"], spans["layer2.weight"]
    swapped = bytearray(blob)
    swapped[a0:a1], swapped[b0:b1] = blob[b0:b1], blob[a0:a1]
    return bytes(swapped)


def test_10_9_swap_attack_with_fresh_keys_per_run():
    service_handles.new_run()
    blob, phone_loads = ch10_capstone.swap_challenge()
    assert phone_loads(blob)
    secret = challenge_state.run_state("10.6")
    assert secret["device"][0] not in blob and secret["publisher"][0] not in blob
    answer = _solve_1009()
    assert phone_loads(answer)
    feedback = ex.check("10.6", answer)
    assert feedback and "IntegrityError" in str(feedback)
    assert not ex.check("10.6", blob)  # unchanged: not the swap
    tampered = bytearray(answer)
    tampered[-1] ^= 1
    refused = ex.check("10.6", bytes(tampered))
    assert not refused and "refuses" in str(refused)
    with pytest.raises(weights.IntegrityError):
        phone_loads(bytes(tampered))
    service_handles.new_run()  # a fresh kernel: fresh keys; the old file no longer opens
    assert not ex.check("10.6", answer)
    assert ex.check("10.6", _solve_1009())


def test_10_10_properties():
    assert ex.check("10.7", dict(capstone.THREATS))
    swapped = dict(capstone.THREATS, tampering="confidentiality", disclosure="integrity")
    feedback = ex.check("10.7", swapped)
    assert not feedback and "tampering" in str(feedback) and "disclosure" in str(feedback)
    assert not ex.check("10.7", "not a dict")


def test_unsafe_sealer_accepts_a_swap_that_the_container_refuses():
    device, publisher = weights.generate_recipient_keypair(), weights.generate_signing_keypair()
    state = {"a": torch.randn(4, 4), "b": torch.randn(4, 4), "c": torch.arange(3)}
    blob = pitfalls.seal_without_associated_data_UNSAFE(state, device.public_key, publisher, model_id="m")
    opened = pitfalls.open_without_associated_data_UNSAFE(blob, device.private_key, publisher.public_key,
                                                          model_id="m")
    assert all(torch.equal(opened[n], state[n]) for n in state)
    _, spans = pitfalls.unsafe_layout(blob)
    (a0, a1), (b0, b1) = spans["a"], spans["b"]
    swapped = bytearray(blob)
    swapped[a0:a1], swapped[b0:b1] = blob[b0:b1], blob[a0:a1]
    fooled = pitfalls.open_without_associated_data_UNSAFE(bytes(swapped), device.private_key,
                                                          publisher.public_key, model_id="m")
    assert torch.equal(fooled["a"], state["b"]) and torch.equal(fooled["b"], state["a"])
    for bad, kwargs in [(blob[:-1], {}), (blob[:40] + bytes([blob[40] ^ 1]) + blob[41:], {}),
                        (blob, {"model_id": "other"})]:
        with pytest.raises(weights.IntegrityError):
            pitfalls.open_without_associated_data_UNSAFE(bad, device.private_key, publisher.public_key,
                                                         **{"model_id": "m", **kwargs})
    with pytest.raises(weights.IntegrityError):
        pitfalls.open_without_associated_data_UNSAFE(blob, device.private_key,
                                                     weights.generate_signing_keypair().public_key, model_id="m")
