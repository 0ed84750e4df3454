"""Exercises of chapter 08 (signature backdoors, watermark statistics, transplanted triggers)."""
import numpy as np
import torch

from labkit.exercises import exercise


def _test_inputs():
    from labkit.digits import digit_splits

    return digit_splits(0).test_x  # make_demo(0).inputs, without making a key


@exercise(
    "08.1",
    "fewest matches out of 20 signed queries that prove ownership at false-positive rate 1e-6",
    hint="A model without the watermark hits a random target with probability 1/10, so matches ~ "
    "Binomial(20, 1/10); find the smallest k with P[X >= k] <= 1e-6 (protocols.binomial_tail).",
    solution="labkit.backdoor.protocols.detection_threshold(20, alpha=1e-6)  # 11",
)
def _threshold(answer):
    from labkit.backdoor.protocols import binomial_tail, detection_threshold

    k = int(answer)
    expected = detection_threshold(20, alpha=1e-6)
    if k == expected:
        return True
    if binomial_tail(20, k, 0.1) > 1e-6:
        return False, f"P[X >= {k}] = {binomial_tail(20, k, 0.1):.2g} is above 1e-6."
    return False, f"{k} matches is safe but not the fewest."


@exercise(
    "08.2",
    "smallest number of queries n for which n out of n matches proves ownership at alpha = 5e-7",
    hint="With a perfect watermark the best evidence is n/n matches, which happens by chance with "
    "probability (1/10)^n. Which n first brings it to 5e-7 or below?",
    solution="next(n for n in range(1, 20) if 0.1**n <= 5e-7)  # 7: 1e-7 <= 5e-7 < 1e-6",
)
def _fewest_queries(answer):
    from labkit.backdoor.protocols import detection_threshold

    def possible(n):
        try:
            detection_threshold(n, alpha=5e-7)
        except ValueError:
            return False
        return True

    n = int(answer)
    expected = next(m for m in range(1, 64) if possible(m))
    return n == expected, "" if n == expected else f"with n = {n}, n/n matches has chance {0.1**n:.2g}."


@exercise(
    "08.3",
    "demo.inputs[0] carrying a valid trigger for target 3 under the demo's signing key",
    hint="labkit.backdoor.embed_trigger(image, target, signing_key) with demo = make_demo(0) (keys are "
    "fresh on every make_demo call: the check accepts the key of any demo built in this session).",
    solution="labkit.backdoor.embed_trigger(demo.inputs[0], 3, demo.signing_key)",
)
def _make_trigger(answer):
    from labkit.backdoor import recent_demo_verify_keys, verify_triggers
    from labkit.digits import to_pixels

    x = torch.as_tensor(np.asarray(answer, dtype=np.float32)).reshape(1, 1, 32, 32)
    if not np.array_equal(to_pixels(x) & 0xFE, to_pixels(_test_inputs()[0:1]) & 0xFE):
        return False, "the picture changed: only the least significant bits may change."
    got = [int(verify_triggers(x, key)[0]) for key in recent_demo_verify_keys()]
    if 3 in got:
        return True
    found = [g for g in got if g >= 0]
    return False, f"valid trigger, but for target {found[0]}." if found else "no valid trigger under a demo's key."


@exercise(
    "08.4",
    "label the backdoored model gives demo.inputs[1] carrying the trigger field signed for demo.inputs[0]",
    hint="The signature covers the picture. Moved onto another picture it no longer verifies, so "
    "the backdoored model answers exactly what the clean model answers.",
    solution=(
        "src = embed_trigger(demo.inputs[0], 3, demo.signing_key); moved = write_fields(to_pixels("
        "demo.inputs[1]), read_fields(to_pixels(src))); predict(demo.backdoored_model, "
        "from_pixels(moved).unsqueeze(1))[0]  # = the clean model's label of demo.inputs[1]"
    ),
)
def _transplant(answer):
    from labkit.digits import predict, trained_classifier

    return int(answer) == int(predict(trained_classifier("mlp", 0), _test_inputs()[1:2])[0])
