"""Exercises of chapter 08 (signature backdoors, watermark statistics, transplanted triggers)."""
import numpy as np
import torch

from labkit.exercises import exercise
from labkit.exercises.quiz import quiz


def _test_inputs():
    from labkit.digits import digit_splits

    return digit_splits(0).test_x  # make_demo(0).inputs, without making a key


@exercise(
    "08.1",
    "fewest matches out of 20 signed queries that prove ownership at false-positive rate 1e-6",
    hint="A model without the watermark hits a random target with probability 1/10, so matches ~ "
    "Binomial(20, 1/10); find the smallest k with P[X >= k] <= 1e-6 (protocols.binomial_tail).",
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
)
def _transplant(answer):
    from labkit.digits import predict, trained_classifier

    return int(answer) == int(predict(trained_classifier("mlp", 0), _test_inputs()[1:2])[0])


# --- concept questions (kind "quiz"; answers stored as salted digests, see quiz.py) ---
# part 1

quiz(
    '08.5',
    'Why does the ownership judge mix in control triggers signed under a fresh key of its own?',
    [
     "To check that the claimant's signatures are valid Ed25519 signatures.",
     "Because hits on the claimant's triggers alone do not show that the claimant's key matters: a key-less suspect (an echo of the target byte, a hash of the bits, a claimant grinding signatures) can hit them too; controls under a key the claimant never held measure that background rate, and only hits beyond it count.",
     'To make the test run faster on large models.',
     'Because Ed25519 verification needs two public keys.',
    ],
    'b615051f939369c42dc725f9d1341292cc028440248d0cdce6628a83ac5fc223',
    hint='Run the echo and hash suspects against the naive judge and the judge with controls.',
)

quiz(
    '08.6',
    "Why does the trigger's signature cover the image's pixels (LSBs cleared), not only the header with the target?",
    [
     'So that a valid trigger cannot be moved onto another image: the field signed for one picture fails on any other, and a new trigger needs the signing key.',
     'Because Ed25519 cannot sign fewer than 64 bytes.',
     'So that the backdoored model can classify the image without the classifier.',
     'To make the trigger invisible to the human eye.',
    ],
    '72e035be73214ab2e155ce788355a8fc6fc718d1fb3258fbb4d3661a83cc7a02',
    hint="Look at the 'transplant' line of the forgery trials and at exercise 08.4.",
)

quiz(
    '08.7',
    'Why does the authenticated service keep the nonces it has seen in a store shared by its replicas and kept across restarts?',
    [
     "Because the nonce is the user's password.",
     'To count the queries for billing.',
     'Because the signature does not cover the nonce.',
     'Because a token stays a valid signature until it expires: without remembering used nonces everywhere, a token seen once could be replayed on another replica or after a restart.',
    ],
    '693dc76dbb62fbda1ebde7647bd800e8dccc1b2324dd6a1b3c8f1c9eb578adcc',
    hint="Which case of the authentication cell is refused as 'replayed', and where was it sent?",
)
# part 2

quiz(
    '08.8',
    "Why does each licensed copy answer a valid trigger with HMAC(k_i, signed bytes) mod 10, from a per-copy secret, rather than with the trigger's cleartext target?",
    [
     'Because HMAC is faster than reading the target byte.',
     "Because the cleartext target is readable by every copy: a leaker echoes the targets of the others' triggers and frames them; an answer that needs k_i comes only from i's copy, so an innocent's matches stay Binomial(N, 1/10).",
     'Because the licensor cannot verify Ed25519 signatures.',
     'So that the licensee can change its own answers.',
    ],
    'c34e7d82dde563381483776ee638269798f5224d8e7ba3d051489555c76ea4f6',
    hint="What did the naive tracer accuse when bob's copy echoed the targets?",
)

quiz(
    '08.9',
    'Why is the signature watermark surviving fine-tuning and pruning not a fair win over the trigger-set and weight watermarks?',
    [
     'Because the baselines were trained for fewer epochs.',
     'Because the signature watermark uses more queries.',
     'Because it survives only as code outside the attacked weights: the adversary who holds the weights holds that code too and strips the verifier at no cost in accuracy, while the baselines have no code to strip.',
     'Because pruning 80% of the weights is not a realistic attack.',
    ],
    'de2b81db5db681ee3b4a37b46f32029fbe3fc0b220bc74008de6c55ef14d564f',
    hint="Read the 'strip the verifier' row of the comparison.",
)

quiz(
    '08.10',
    "Why does the fully neural backdoor (AES with the key in the weights) need chapter 07's protected construction?",
    [
     "Because whoever runs the model can send real-valued message coordinates, and chapter 06's attack reads the AES key from collisions; with the key, anyone produces the owner's evidence. The protected network answers every off-cube query with what binary queries already give.",
     'Because AES-128 is too weak without it.',
     'Because the multiplexer needs STEP to choose between logits and scores.',
     'Because without it the network is slower than the signature verifier.',
    ],
    '0def617068fa067bb67c98cec47679bac36333f3fcdd6fd0da60624fa3f694b4',
    hint='What did the thief do with the recovered key?',
)
