"""Exercises of chapter 08 (signature backdoors, watermark statistics, the naive judge attacked).

Part 1 (08): two values of the watermark statistics, two functions to write (the trigger field in
the pixels' LSBs, the verifier) and an attack on the naive ownership judge. Concept questions
follow in parts 2 (08b) and 3 (08c). Implement checkers compare the student's function with
:mod:`labkit.backdoor.trigger` on fresh random inputs (``check_function``).
"""
import numpy as np
from Crypto.Signature import eddsa

from labkit.exercises import exercise, FunctionSpec, implement, service_handles
from labkit.exercises.quiz import quiz
from labkit.backdoor.naive import OwnershipClaim
from labkit.backdoor.protocols import binomial_tail, detection_threshold
from labkit.backdoor.trigger import (
    MAGIC, generate_keys, read_fields, sign_fields, trigger_header, verify_key_bytes, verify_triggers, write_fields,
)
from labkit.digits import digit_splits, from_pixels, to_pixels


def _test_pixels() -> np.ndarray:
    """The test images of ``make_demo(0)`` as pixel bytes ``(n, 32, 32)``, without making a key."""
    return to_pixels(digit_splits(0).test_x).reshape(-1, 32, 32)


@exercise(
    "08.1",
    "fewest matches out of 20 signed queries that prove ownership at false-positive rate 1e-6",
    hint=("A model without the watermark hits a random target with probability 1/10 per query, so "
          "its number of matches out of 20 is Binomial(20, 1/10).",
          "Find the smallest k whose upper tail P[X >= k] is at most 1e-6: add up the binomial "
          "probabilities from k to 20 and lower k while the sum stays small enough."),
    where="homework",
)
def _threshold(answer):
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
    where="homework",
)
def _fewest_queries(answer):
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


def _write_field_reference(pixels, field):
    return write_fields(pixels, np.frombuffer(field, dtype=np.uint8))[0]


implement(
    "08.3",
    "write_field(pixels, field): the 128 field bytes written into the LSBs of a 32x32 uint8 image",
    hint=("Each of the 1,024 pixels keeps its 7 high bits and takes one bit of the field as its "
          "least significant bit: row by row, most significant bit of each byte first.",
          "Unpack the 128 bytes into 1,024 bits (numpy can unpack bits, MSB first), clear each "
          "pixel's LSB with AND 0xFE, OR in the bits reshaped to 32x32, and return uint8."),
    spec=FunctionSpec("write_field", _write_field_reference, _draw_field_case, trials=40, equal=_same_pixels,
                      hide=("labkit.backdoor.trigger:write_fields",)),
    where="class",
)


def _trigger_cases():
    """A ``draw(rng)`` giving (pixels, verify key) for 08.4: valid triggers and near misses.

    The signing key is fresh for every check; the near misses are the ways a trigger can be
    wrong: a flipped signature or picture bit, a field moved to another image, a stranger's key,
    and a correctly signed header whose target is not a label.
    """
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


def _trigger_target_reference(pixels, verify_key):
    return int(verify_triggers(from_pixels(pixels), verify_key)[0])


def _same_label(got, expected) -> bool:
    return isinstance(got, (int, np.integer)) and not isinstance(got, (bool, np.bool_)) and int(got) == expected


implement(
    "08.4",
    "trigger_target(pixels, verify_key): the label a valid trigger asks for, or -1",
    hint=("Read the field back out of the LSBs, check the header's fixed bytes and the target, then "
          "ask Ed25519 whether the signature covers exactly what the sender signed: the domain "
          "string, the 64 header bytes and the picture itself.",
          "The message is DOMAIN, then field bytes 0-63, then the 1,024 pixel bytes with their LSBs "
          "cleared (AND 0xFE); the signature is field bytes 64-127. Verify with pycryptodome's "
          "eddsa in mode rfc8032 and treat its ValueError as invalid."),
    spec=FunctionSpec("trigger_target", _trigger_target_reference, new_draw=_trigger_cases, trials=42, equal=_same_label,
                      hide=("labkit.backdoor.trigger:verify_triggers",)),
    where="homework",
)


def ownership_challenge() -> dict:
    """Exercise 08.5: black-box access to a model someone else watermarked, natural images, and
    the student's own signing key.

    ``"suspect"`` maps a batch ``(n, 1, 32, 32)`` to labels; ``"images"`` are the test images;
    ``"signing_key"`` is the key to sign the claim with (the student's, fresh for this run). The
    owner's key is drawn fresh for this run in the challenge service, which runs the model; it is
    not part of the challenge.
    """
    attempt = service_handles.run("08.5")
    suspect = service_handles.ServedOracle(attempt, "suspect", encode=lambda x: service_handles.as_array(x, np.float32))
    return {"suspect": suspect, "images": from_pixels(_test_pixels()).unsqueeze(1),
            "signing_key": eddsa.import_private_key(bytes(attempt.public["signing_key_seed"]))}


@exercise(
    "08.5",
    "a naive OwnershipClaim, signed with ownership_challenge()['signing_key'], that the naive judge "
    "accepts for ownership_challenge()'s suspect",
    hint=("The naive judge lets the claimant choose the targets and only checks that they are signed "
          "under the claimed key. Which targets would a model you never touched answer anyway?",
          "Ask the suspect for its labels first, then sign exactly those labels as the targets with "
          "the challenge's key, and hand over the triggered images, the targets and its 32-byte "
          "public key.",
          "Writing a trigger changes the LSBs, so the label of a triggered image can differ from the "
          "clean one: ask about the triggered images again and re-sign with those labels, two or "
          "three times, until the labels stop changing."),
    kind="attack", remote=True,
    where="homework",
)
def _steal_ownership(answer):
    if not isinstance(answer, OwnershipClaim):
        return False, f"the answer must be a naive.OwnershipClaim, got {type(answer).__name__}."
    claim = {"queries": service_handles.as_array(answer.queries, np.float32),
             "targets": service_handles.as_array(answer.targets, np.int64), "verify_key": bytes(answer.verify_key)}
    return service_handles.answer_run("08.5", claim)


# --- concept questions (kind "quiz"; the answers are the challenge service's, see quiz.py) ---
# shown in part 2 (08b): first about part 1, then about part 2

quiz(
    "08.6",
    "A suspect reads the target byte from a trigger's (unverified) header and answers it. With 32 "
    "claimant triggers and 32 judge controls, what does the judge see?",
    [
        "32 hits on the claimant's triggers only: owned.",
        "About 3 hits on each: chance.",
        "Hits on both sets alike: not owned.",
        "No hits: echoing is no forgery.",
    ],
    hint=("Does the echo suspect need the owner's key to read a target from a header?",
          "The controls carry targets in the same header format, signed under the judge's fresh "
          "key: what does the echo suspect answer on them?"),
    where="class",
)

quiz(
    "08.7",
    "Suppose a trigger's signature covered only its header (magic, target), not the picture. An "
    "attacker has seen one trigger on a cat image. What can he do without the key?",
    [
        "Copy its field into another image's low bits.",
        "Change the target, since the header is unsigned.",
        "Nothing: the field is tied to one model.",
        "Recover the signing key from one signature and image.",
    ],
    hint=("What would the signed message then have in common between two different pictures?",
          "If the signature checks only the header, which part of the input can the attacker "
          "replace while keeping it valid?"),
    where="class",
)

quiz(
    "08.8",
    "A token service keeps seen nonces in each replica's memory, cleared on restart; tokens "
    "expire after 5 minutes. Which attack works?",
    [
        "Replaying a token to A an hour after it expired.",
        "Replaying a token seen by replica A to replica B.",
        "Forging a new token by changing its nonce field.",
        "None: each replica remembering its own nonces is enough.",
    ],
    hint=("How long does a token's signature stay valid, and who may have seen it?",
          "Which replicas know that a nonce was used, and what does each check before the nonce "
          "store?"),
    where="class",
)

quiz(
    "08.9",
    "Each licensed copy answers a valid trigger with HMAC(k_i, signed bytes) mod 10. An innocent "
    "copy is queried with 40 of licensee i's triggers. About how many answers match i's expected "
    "ones?",
    [
        "0: without k_i it never matches.",
        "40: a valid trigger always fires.",
        "About 20, half of the 40 answers.",
        "About 4, as Binomial(40, 1/10).",
    ],
    hint=("Can the innocent copy compute HMAC(k_i, .) without k_i?",
          "Without the key each answer is a guess among ten digits: what is the expected number "
          "of matches in 40?"),
    where="class",
)

quiz(
    "08.10",
    "Which attack removes the signature watermark at no cost in accuracy, while it costs a weight "
    "watermark accuracy or fails?",
    [
        "Deleting the verifier beside the classifier.",
        "Fine-tuning the classifier for five epochs.",
        "Pruning 80% of the classifier's weights.",
        "Adding Gaussian noise to every weight.",
    ],
    hint=("Where does the signature watermark live: in the weights the attacks change, or "
          "elsewhere?",
          "Read the 'strip the verifier' row of the comparison, and ask what each attack touches."),
    where="class",
)

quiz(
    "08.11",
    "A fully neural backdoor runs AES in unprotected ReLU layers with the key in the weights; its "
    "API takes float inputs. What does a user with 512 queries get?",
    [
        "Nothing: the API hides the weights.",
        "Only labels, since the API rounds to bits.",
        "The AES key, and with it triggers of his own.",
        "The Ed25519 signing key of the owner.",
    ],
    hint=("Which inputs does the person running the model control, beyond bits?",
          "Chapter 06's attack needs what kind of access, and how many queries per key bit?"),
    where="class",
)
# part 3 (08c): the backdoor as an attack, post-quantum triggers, a convolutional model

quiz(
    "08.12",
    "A detector has recorded one of the owner's triggers from a public demo. Can black-box "
    "queries then tell the backdoored model from the clean one?",
    [
        "No: any input on which they differ would forge a signature.",
        "Yes: replayed, it gives the target on one model only.",
        "No: the model rejects a replayed trigger.",
        "Yes, and it can now sign new triggers for other images.",
    ],
    hint=("EUF-CMA counts as a forgery only a valid signature on a message that was not signed "
          "before.",
          "Is a replayed trigger a new (message, signature) pair? And does seeing one help to "
          "make a trigger for another image?"),
    where="class",
)

quiz(
    "08.13",
    "The ML-DSA-44 field needs 19,872 bits. How many low bits per pixel does a 64 x 64 "
    "single-channel image need to hold it?",
    [
        "4 bits: 19,872 / 4,096 rounded down.",
        "1 bit, as for the Ed25519 field.",
        "It cannot fit even at 8 bits a pixel.",
        "5 bits: 19,872 / 4,096 is about 4.85.",
    ],
    hint=("Count the pixels of a 64 x 64 image.",
          "Divide the bits needed by the pixels, and round so that every bit has a place."),
    where="homework",
)

quiz(
    "08.14",
    "The protocols take the signature scheme and the field's place as one parameter (the layout). "
    "Which swap could they NOT absorb as a new layout alone?",
    [
        "SLH-DSA, whose 7,856-byte signatures need a larger image.",
        "A ResNet in place of the CNN classifier.",
        "HMAC for the signature: its verifier needs the key.",
        "ML-DSA-65 in place of ML-DSA-44, with larger signatures.",
    ],
    hint=("What do the protocols need from the scheme: sign and verify, and who runs each?",
          "The verifier ships beside every copy of the model: what would an HMAC verifier have to "
          "ship with it, and what could a holder of the copy then do?"),
    where="homework",
)
