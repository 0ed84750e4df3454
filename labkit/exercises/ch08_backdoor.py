"""Exercises of chapter 08 (signature backdoors, watermark statistics, the naive judge attacked).

Part 1 (08): two values of the watermark statistics, two functions to write (the trigger field in
the pixels' LSBs, the verifier) and an attack on the naive ownership judge. Concept questions
follow in parts 2 (08b) and 3 (08c). Implement checkers compare the student's function with
:mod:`labkit.backdoor.trigger` on fresh random inputs (``check_function``).
"""
import numpy as np

from labkit.exercises import _session, check_function, exercise
from labkit.exercises.quiz import quiz


def _test_pixels() -> np.ndarray:
    """The test images of ``make_demo(0)`` as pixel bytes ``(n, 32, 32)``, without making a key."""
    from labkit.digits import digit_splits, to_pixels

    return to_pixels(digit_splits(0).test_x).reshape(-1, 32, 32)


@exercise(
    "08.1",
    "fewest matches out of 20 signed queries that prove ownership at false-positive rate 1e-6",
    hint=("A model without the watermark hits a random target with probability 1/10 per query, so "
          "its number of matches out of 20 is Binomial(20, 1/10).",
          "Find the smallest k whose upper tail P[X >= k] is at most 1e-6: add up the binomial "
          "probabilities from k to 20 and lower k while the sum stays small enough."),
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
    hint=("With a perfect watermark the strongest evidence is n matches out of n; how likely is "
          "that for a model that only guesses?",
          "A guessing model matches all n with probability (1/10)^n: find the first n for which "
          "that is at most 5e-7."),
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


def _same_pixels(got, expected) -> bool:
    got = np.asarray(got)
    return got.shape == expected.shape and got.dtype == np.uint8 and np.array_equal(got, expected)


def _draw_field_case(rng):
    pixels = np.frombuffer(rng.randbytes(32 * 32), dtype=np.uint8).reshape(32, 32).copy()
    return pixels, rng.randbytes(128)


@exercise(
    "08.3",
    "write_field(pixels, field): the 128 field bytes written into the LSBs of a 32x32 uint8 image",
    hint=("Each of the 1,024 pixels keeps its 7 high bits and takes one bit of the field as its "
          "least significant bit: row by row, most significant bit of each byte first.",
          "Unpack the 128 bytes into 1,024 bits (numpy can unpack bits, MSB first), clear each "
          "pixel's LSB with AND 0xFE, OR in the bits reshaped to 32x32, and return uint8."),
    kind="implement",
)
def _write_field(answer):
    from labkit.backdoor.trigger import write_fields

    def reference(pixels, field):
        return write_fields(pixels, np.frombuffer(field, dtype=np.uint8))[0]

    return check_function(answer, reference, _draw_field_case, trials=40, name="write_field",
                          equal=_same_pixels)


def _trigger_cases():
    """A ``draw(rng)`` giving (pixels, verify key) for 08.4: valid triggers and near misses.

    The signing key is fresh for every check; the near misses are the ways a trigger can be
    wrong: a flipped signature or picture bit, a field moved to another image, a stranger's key,
    and a correctly signed header whose target is not a label.
    """
    from labkit.backdoor.trigger import (
        MAGIC, generate_keys, read_fields, sign_fields, trigger_header, verify_key_bytes, write_fields,
    )

    images = _test_pixels()
    owner, stranger = generate_keys()[0], generate_keys()[0]
    verify_key = verify_key_bytes(owner)

    def draw(rng):
        a, b = rng.sample(range(len(images)), 2)
        image = images[a:a + 1]
        header = trigger_header(rng.randrange(10), rng.choice([b"", b"alice"]))
        case = rng.choice(["valid", "valid", "signature bit", "picture bit", "moved", "stranger", "no label"])
        if case == "no label":  # a valid signature over a header whose target byte is not a label
            header = MAGIC + bytes([1, 1, 10 + rng.randrange(246)]) + header[7:]
        key = stranger if case == "stranger" else owner
        field = sign_fields(image, [header], key)
        pixels = write_fields(image, field)[0]
        if case == "signature bit":
            field[0, 64 + rng.randrange(64)] ^= 1 << rng.randrange(8)
            pixels = write_fields(image, field)[0]
        elif case == "picture bit":
            pixels[rng.randrange(32), rng.randrange(32)] ^= 2 << rng.randrange(7)
        elif case == "moved":
            pixels = write_fields(images[b:b + 1], read_fields(pixels))[0]
        return pixels, verify_key

    return draw


@exercise(
    "08.4",
    "trigger_target(pixels, verify_key): the label a valid trigger asks for, or -1",
    hint=("Read the field back out of the LSBs, check the header's fixed bytes and the target, then "
          "ask Ed25519 whether the signature covers exactly what the sender signed: the domain "
          "string, the 64 header bytes and the picture itself.",
          "The message is DOMAIN, then field bytes 0-63, then the 1,024 pixel bytes with their LSBs "
          "cleared (AND 0xFE); the signature is field bytes 64-127. Verify with pycryptodome's "
          "eddsa in mode rfc8032 and treat its ValueError as invalid."),
    kind="implement",
)
def _trigger_target(answer):
    from labkit.backdoor.trigger import verify_triggers
    from labkit.digits import from_pixels

    def reference(pixels, verify_key):
        return int(verify_triggers(from_pixels(pixels), verify_key)[0])

    def same(got, expected):
        return isinstance(got, (int, np.integer)) and not isinstance(got, bool) and int(got) == expected

    return check_function(answer, reference, _trigger_cases(), trials=42, name="trigger_target", equal=same)


def ownership_challenge() -> dict:
    """Exercise 08.5: black-box access to a model someone else watermarked, and natural images.

    ``"suspect"`` maps a batch ``(n, 1, 32, 32)`` to labels; ``"images"`` are the test images. The
    owner's key is drawn fresh for this run in the challenge service, which runs the model; it is
    not part of the challenge.
    """
    from labkit.digits import from_pixels

    suspect = _session.ServedOracle(_session.run("08.5"), "suspect",
                                    encode=lambda x: _session.as_array(x, np.float32))
    return {"suspect": suspect, "images": from_pixels(_test_pixels()).unsqueeze(1)}


@exercise(
    "08.5",
    "a naive OwnershipClaim under a key of your own that the naive judge accepts for ownership_challenge()'s suspect",
    hint=("The naive judge lets the claimant choose the targets and only checks that they are signed "
          "under the claimed key. Which targets would a model you never touched answer anyway?",
          "Ask the suspect for its labels first, then sign exactly those labels as the targets under "
          "a fresh key of your own, and hand over the triggered images, the targets and your 32-byte "
          "public key.",
          "Writing a trigger changes the LSBs, so the label of a triggered image can differ from the "
          "clean one: ask about the triggered images again and re-sign with those labels."),
    kind="attack", remote=True,
)
def _steal_ownership(answer):
    from labkit.backdoor.naive import OwnershipClaim

    if not isinstance(answer, OwnershipClaim):
        return False, f"the answer must be a naive.OwnershipClaim, got {type(answer).__name__}."
    claim = {"queries": _session.as_array(answer.queries, np.float32),
             "targets": _session.as_array(answer.targets, np.int64), "verify_key": bytes(answer.verify_key)}
    return _session.answer_run("08.5", claim)


# --- concept questions (kind "quiz"; the answers are the challenge service's, see quiz.py) ---
# shown in part 2 (08b): first about part 1, then about part 2

quiz(
    '08.6',
    'Why does the ownership judge mix in control triggers signed under a fresh key of its own?',
    [
     "To check that the claimant's signatures are valid Ed25519 signatures.",
     "Because hits on the claimant's triggers alone do not show that the claimant's key matters: a key-less suspect (an echo of the target byte, a hash of the bits, a claimant grinding signatures) can hit them too; controls under a key the claimant never held measure that background rate, and only hits beyond it count.",
     'To make the test run faster on large models.',
     'Because Ed25519 verification needs two public keys.',
    ],
    hint=("Which suspects without the owner's key still hit the owner's targets?",
          "Run the echo and hash suspects against the naive judge and against the judge with "
          "controls, and compare how often the controls hit."),
)

quiz(
    '08.7',
    "Why does the trigger's signature cover the image's pixels (LSBs cleared), not only the header with the target?",
    [
     'So that a valid trigger cannot be moved onto another image: the field signed for one picture fails on any other, and a new trigger needs the signing key.',
     'Because Ed25519 cannot sign fewer than 64 bytes.',
     'So that the backdoored model can classify the image without the classifier.',
     'To make the trigger invisible to the human eye.',
    ],
    hint=("What could someone do with one observed trigger if the picture were not signed?",
          "Look at the 'transplant' line of the forgery trials, and at the 'moved' inputs your "
          "verifier of exercise 08.4 had to reject."),
)

quiz(
    '08.8',
    'Why does the authenticated service keep the nonces it has seen in a store shared by its replicas and kept across restarts?',
    [
     "Because the nonce is the user's password.",
     'To count the queries for billing.',
     'Because the signature does not cover the nonce.',
     'Because a token stays a valid signature until it expires: without remembering used nonces everywhere, a token seen once could be replayed on another replica or after a restart.',
    ],
    hint=("How long does a token's signature stay valid, and who may have seen it?",
          "Which case of the authentication cell is refused as 'replayed', and where was it sent?"),
)

quiz(
    '08.9',
    "Why does each licensed copy answer a valid trigger with HMAC(k_i, signed bytes) mod 10, from a per-copy secret, rather than with the trigger's cleartext target?",
    [
     'Because HMAC is faster than reading the target byte.',
     "Because the cleartext target is readable by every copy: a leaker echoes the targets of the others' triggers and frames them; an answer that needs k_i comes only from i's copy, so an innocent's matches stay Binomial(N, 1/10).",
     'Because the licensor cannot verify Ed25519 signatures.',
     'So that the licensee can change its own answers.',
    ],
    hint=("Who, besides licensee i's copy, can compute the answer to i's triggers?",
          "What did the naive tracer accuse when bob's copy echoed the targets?"),
)

quiz(
    '08.10',
    'Why is the signature watermark surviving fine-tuning and pruning not a fair win over the trigger-set and weight watermarks?',
    [
     'Because the baselines were trained for fewer epochs.',
     'Because the signature watermark uses more queries.',
     'Because it survives only as code outside the attacked weights: the adversary who holds the weights holds that code too and strips the verifier at no cost in accuracy, while the baselines have no code to strip.',
     'Because pruning 80% of the weights is not a realistic attack.',
    ],
    hint=("Where does the signature watermark live: in the weights the attacks change, or elsewhere?",
          "Read the 'strip the verifier' row of the comparison."),
)

quiz(
    '08.11',
    "Why does the fully neural backdoor (AES with the key in the weights) need chapter 07's protected construction?",
    [
     "Because whoever runs the model can send real-valued message coordinates, and chapter 06's attack reads the AES key from collisions; with the key, anyone produces the owner's evidence. The protected network answers every off-cube query with what binary queries already give.",
     'Because AES-128 is too weak without it.',
     'Because the multiplexer needs STEP to choose between logits and scores.',
     'Because without it the network is slower than the signature verifier.',
    ],
    hint=("Which inputs does the person running the model control, beyond bits?",
          "What did the thief do with the recovered key?"),
)
# part 3 (08c): the backdoor as an attack, post-quantum triggers, a convolutional model

quiz(
    '08.12',
    'Why can no test that only queries the model detect the signature backdoor, even one that may compare it with the clean model?',
    [
     'Because the trigger changes every pixel by less than one level of 255.',
     'Because the backdoored model has the same weights as the clean one.',
     "Because the two models differ only on inputs that carry a valid signature: a query on which they differ is itself a valid (message, signature) pair made without the key, a forgery, which Ed25519's unforgeability (even after seeing the owner's triggers) makes negligibly likely.",
     'Because the verifier is hidden inside the convolutional layers.',
    ],
    hint=("On which inputs do the backdoored and the clean model give different answers?",
          "Suppose a detector found such an input without the key: what would that input be, for the "
          "signature scheme?"),
)

quiz(
    '08.13',
    'Why does the ML-DSA-44 trigger need a larger image or more low bits per pixel than the Ed25519 one?',
    [
     'Because its field (64-byte header and 2,420-byte signature: 19,872 bits) exceeds the 1,024 LSBs of a 32x32 image, and even all 8,192 bits of it; more bits per pixel change each pixel more (up to 2^b - 1 levels, lower PSNR), a larger image spreads the bits thinner.',
     'Because ML-DSA signs only messages longer than 2,420 bytes.',
     'Because lattice signatures must be stored in the most significant bits.',
     'Because the ML-DSA public key must be written into the image too.',
    ],
    hint=("Compare the bits a field needs with the bits a 32x32 image has.",
          "Read the capacity table: what does each extra bit per pixel cost in the largest change "
          "and in PSNR?"),
)

quiz(
    '08.14',
    'Why do the watermark, tracing and authentication protocols run unchanged on the convolutional model and with ML-DSA-44?',
    [
     'Because the CNN was trained on the triggers.',
     'Because ML-DSA-44 and Ed25519 produce the same signatures.',
     'Because convolutional layers ignore the low bits of the pixels.',
     'Because the backdoor needs only black-box labels from the classifier and sign/verify from the scheme: the verifier sits beside any classifier, and the scheme and where the field lives are one parameter (the layout), not part of the protocols.',
    ],
    hint=("What do the protocols need from the classifier, and what from the signature scheme?",
          "Look at what changed in the code between the Ed25519 and the ML-DSA runs: one argument."),
)
