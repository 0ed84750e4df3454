"""Chapter 08 widgets driven headlessly: set control values, assert on state and figure data."""
import numpy as np
import pytest
import torch

from labkit.widgets.backdoor import LeakTracer, OwnershipJudge, TriggerSigner

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_trigger_signer_follows_tampering(demo):
    view = TriggerSigner(demo)
    view.image.value, view.target.value = 10, 6
    assert view.verified == 6 and view.backdoored_label == 6 and view.error is None
    assert np.array_equal(np.asarray(view.picture.data[0].z), view.query[0, 0].numpy())
    assert np.asarray(view.field_view.data[0].z).shape == (16, 64)
    assert view.field[:4] == b"LKBD"
    for tamper in ["flip one field bit", "transplant onto next image", "stranger's key", "no trigger"]:
        view.tamper.value = tamper
        assert view.verified == -1 and view.backdoored_label == view.clean_label
    view.tamper.value = "none"
    assert view.verified == 6


def test_ownership_judge_verdicts(demo):
    view = OwnershipJudge(demo, max_queries=48)
    assert view.verdict.owned and view.verdict.claim_matches == view.n.value
    view.suspect.value = "80% pruned copy"
    assert view.verdict.owned
    for innocent in ("independent model", "distilled student", "echo model (no key)"):
        view.suspect.value = innocent
        assert not view.verdict.owned
    view.suspect.value, view.n.value = "fine-tuned copy", 24
    assert view.verdict.owned and view.verdict.threshold == 13  # Binomial(24, 1/9) at 1e-6
    assert list(view.figure.data[2].x) == [view.verdict.claim_matches]
    assert list(view.figure.data[3].x) == [view.verdict.control_matches]


def test_leak_tracer_names_the_leaker_and_no_one_else(demo):
    view = LeakTracer(demo)
    assert view.result.accused == ["carol"]
    view.leaker.value = "alice"
    view.launder.value = True
    assert view.result.accused == ["alice"]
    assert list(view.figure.data[0].x) == ["alice", "bob", "carol", "dave"]
    view.frame.value = True
    assert view.result.accused == []  # framing the others fails; the leaker hid himself
    view.frame.value = False
    view.leaker.value = "heidi"
    assert view.error and "no licence" in view.message.value
    view.count.value = 8
    assert view.error is None and view.result.accused == ["heidi"]
