"""Exercises of chapter 10 (individual models: delivery, threat model, leak tracing).

Part 1 (``10_capstone``): 10.1 the wrong phone's refusal, 10.2 write the tracer's threshold,
10.3 trace a leaked copy among users with fresh per-run keys, 10.4 the fewest queries,
10.8-10.10 concept questions. Part 2 (``10b_threat_model``): 10.5 design the delivery (checked
by :func:`labkit.capstone_design.attack_design`), 10.6 break a sealer without associated data,
10.7 STRIDE's properties, 10.11-10.13 concept questions.
Each chapter numbers its exercises first and its concept questions after them, both in
notebook order (tests/test_exercises_quiz.py).
"""
import tempfile
from pathlib import Path

import numpy as np
import torch

from labkit import capstone_design, weights
from labkit.backdoor import protocols
from labkit.challenges import client
from labkit.exercises import exercise, FunctionSpec, implement, is_stub, NOT_ANSWERED, service_handles
from labkit.exercises.quiz import quiz
from labkit.capstone import THREATS


def _name(answer) -> str:
    return answer.__name__ if isinstance(answer, type) else str(answer).strip()


# --- part 1 -------------------------------------------------------------------------------------
@exercise(
    "10.1",
    "the exception a phone raises when it opens a model sealed for another phone",
    hint=("The file carries the content key wrapped once per recipient, each entry labelled with "
          "a key id; ask what the container finds when no entry is labelled with your key.",
          "Seal a small tensor for one fresh recipient key pair, open it with a second one inside "
          "try/except, and look at the class of the exception: the most specific one is wanted."),
    where="class",
)
def _wrong_device(answer):
    owner, other = weights.generate_recipient_keypair(), weights.generate_recipient_keypair()
    server = weights.generate_signing_keypair()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m.lkw"
        weights.seal({"w": torch.zeros(4)}, path, [owner.public_key], signing_key=server, model_id="m")
        try:
            weights.open(path, other.private_key, signer=server.public_key, model_id="m")
        except weights.WeightsError as err:
            expected = type(err).__name__
        else:  # pragma: no cover - would mean the container is broken
            return False, "opening with the wrong key unexpectedly worked"
    given = _name(answer)
    if given == expected:
        return True
    if given in ("IntegrityError", "WeightsError"):
        return False, f"{given} is too general: the container can tell *why* it refuses."
    return False


def _reference_threshold(n: int, alpha: float, users: int) -> int:
    return protocols.detection_threshold(n, alpha=alpha / users)


def _draw_accusation(rng):
    return rng.randrange(12, 41), rng.choice([1e-3, 1e-4, 1e-6, 1e-9]), rng.randrange(1, 21)


implement(
    "10.2",
    "write accusation_threshold(n, alpha, users): the fewest of n trigger matches that accuse one "
    "of `users` users, keeping the total chance of accusing any innocent at most alpha",
    hint=("An innocent copy answers each secret trigger label by chance, with probability 1/10, so "
          "its matches follow a binomial law; with several users the budget alpha is shared "
          "among them, by the union bound.",
          "Give each user alpha divided by the number of users. Then try k = 0, 1, 2, ... and "
          "return the first k whose binomial upper tail, the chance of k or more matches in n "
          "trials at p = 1/10, is at most that share; math.comb gives the binomial coefficients."),
    spec=FunctionSpec("accusation_threshold", _reference_threshold, _draw_accusation,
                      hide=("labkit.backdoor.protocols:detection_threshold",)),
    where="class",
)


def _case(attempt: client.Attempt, index: int):
    """(pirate, triggers) of one case of a 10.3 attempt: a served black box and public triggers."""
    pirate = service_handles.ServedOracle(attempt, f"case{index}", encode=lambda x: service_handles.as_array(x, np.float32))
    triggers = {user: (torch.from_numpy(images.copy()), labels)
                for user, (images, labels) in attempt.public["triggers"][index].items()}
    return pirate, triggers


def leak_challenge():
    """Exercise 10.3: ``(pirate, triggers)``. ``pirate`` is a black box (images -> labels) serving
    one user's leaked copy; ``triggers[user] = (images, labels)``: fresh triggers signed with that
    user's key and the labels only that user's copy answers. Keys and leaker are fresh every run,
    and stay in the challenge service."""
    return _case(service_handles.run("10.3"), 0)


@exercise(
    "10.3",
    "write trace(pirate, triggers): the users a leaked black box points at (none for a model no "
    "user leaked), at total false-positive rate 1e-6",
    hint=("Only the leaker's copy answers its own triggers with the secret labels; every other "
          "model matches each of them by chance, one time in ten.",
          "For each user send the user's trigger images to the black box and count the answers "
          "equal to the expected labels; accuse the users whose count reaches the threshold of "
          "exercise 10.2 for 16 queries, alpha 1e-6 and the number of users."),
    kind="attack", remote=True,
    where="homework",
)
def _trace(candidate):
    if not callable(candidate):
        return False, "the answer must be a function trace(pirate, triggers) returning a list of names."
    # a fresh attempt: this check's leaker, a leaker among fresh users, and a model no user leaked
    attempt = client.attempt("10.3", fresh=True)
    found = [[str(name) for name in candidate(*_case(attempt, i))] for i in range(3)]
    return attempt.answer(found)


@exercise(
    "10.4",
    "how many trigger queries n make n out of n matches accuse one of 5 users at total rate 1e-6",
    hint=("A copy without the user's key matches all n triggers by chance with probability "
          "(1/10)^n.",
          "That chance must be at most the share of one user in the budget, 1e-6 / 5: find the "
          "smallest n for which it is."),
    where="class",
)
def _fewest_queries(answer):
    def enough(n):
        try:
            return protocols.detection_threshold(n, alpha=1e-6 / 5) <= n
        except ValueError:
            return False

    n = int(answer)
    expected = next(m for m in range(1, 64) if enough(m))
    return n == expected, "" if n == expected else f"with n = {n}, n/n matches has chance {0.1 ** n:.2g}."


# --- part 2 -------------------------------------------------------------------------------------
def _design(answer):
    try:
        deliver, receive = answer
    except (TypeError, ValueError):
        return False, "the answer must be the pair (deliver, receive) of your two functions."
    if is_stub(deliver) and is_stub(receive):
        return False, NOT_ANSWERED
    report = capstone_design.attack_design(deliver, receive)
    if not report.works:
        return False, f"a genuine delivery must open on its phone: {report.problem}."
    missed = [a.attack for a in report.attacks if not a.stopped]
    if missed:
        return False, (f"stops {report.stopped} of {len(report.attacks)} attacks; expected every one "
                       f"stopped. Not stopped: {'; '.join(missed)}.")
    return True, f"the design stops all {len(report.attacks)} attacks of the threat model"


implement(
    "10.5",
    "design the delivery: deliver(state, device_public_key, publisher, model_id, version) -> bytes "
    "and receive(blob, device_private_key, publisher_public_key, model_id, min_version) -> state, "
    "stopping every attack of capstone_design.THREAT_MODEL",
    hint=("Read the threat model line by line and ask which property each attack breaks: "
          "confidentiality for one device, integrity of every byte, authenticity of the "
          "publisher, freshness of the version, and the binding to this user's model.",
          "Chapter 09's container has a part for each: the content key delivered to one device "
          "key, tags and digests, a signed header, and a signed model id and version. On the "
          "phone, open refuses what it was told to expect: pin the publisher, the model id and "
          "the lowest version."),
    spec=FunctionSpec("deliver, receive", checker=_design),
    where="homework", kind="design",
)


def _phone_reply(reply):
    if reply is True:
        return True
    error = getattr(weights, str(reply.get("refused")), weights.WeightsError)
    raise (error if isinstance(error, type) and issubclass(error, weights.WeightsError)
           else weights.WeightsError)(reply.get("message", "refused"))


def swap_challenge():
    """Exercise 10.6: ``(blob, phone_loads)``. ``blob`` is this run's model sealed for a phone by
    :func:`labkit.weights.pitfalls.seal_without_associated_data_UNSAFE` (fresh keys every run, kept
    in the challenge service); ``phone_loads(blob)`` returns True if the phone's (equally unsafe)
    loader accepts a file and raises :class:`labkit.weights.IntegrityError` if not. Neither
    returns a key or the weights."""
    run = service_handles.run("10.6")
    return run.public["blob"], service_handles.ServedOracle(run, "phone", encode=bytes, decode=_phone_reply)


@exercise(
    "10.6",
    "make the phone's unsafe loader accept this run's model with layer1.weight and layer2.weight "
    "exchanged; answer the modified file's bytes",
    hint=("Each tensor's record is AES-GCM under one file key with no associated data, and the "
          "signature covers only the header: a tag proves the record came from the key holder, "
          "not which tensor it is.",
          "Parse the file yourself: read the header's length and the header, skip the signature, "
          "then walk the records in header order. The two weight matrices have the same shape, so "
          "their records have the same length: exchange the two byte ranges, nothing else.",
          "A record is 12 + nbytes + 16 bytes (nonce, ciphertext, tag), nbytes the element size "
          "of its dtype times the product of its shape; the first record starts right after the "
          "64-byte signature."),
    kind="attack", remote=True,
    where="homework",
)
def _swap(answer):
    if not isinstance(answer, (bytes, bytearray)):
        return False, f"answer with the modified file as bytes, got {type(answer).__name__}."
    return service_handles.answer_run("10.6", bytes(answer))


@exercise(
    "10.7",
    "the property each of the four STRIDE threats attacks, as a dict threat -> property",
    hint=("Each STRIDE threat is the violation of one security property; the section's table "
          "lists the four threats of this ledger.",
          "Spoofing pretends to be someone, tampering changes data, disclosure reveals it, denial "
          "of service makes a service unusable: name the property each one violates, in one word."),
    where="class",
)
def _properties(answer):
    given = {str(k).strip().lower(): str(v).strip().lower() for k, v in dict(answer).items()}
    wrong = [t for t in THREATS if given.get(t) != THREATS[t]]
    if not wrong:
        return True
    return False, f"check: {', '.join(wrong)}."


# --- concept questions (kind "quiz"; the answers are the challenge service's, see quiz.py) ---
# part 1

quiz(
    "10.8",
    "Suppose every user's copy carried the same watermark key and response key. A copy leaks. "
    "What can the tracer conclude?",
    [
        "The leaker, from which triggers it answers.",
        "Nothing, not even that the model is the server's.",
        "That it is one of the server's copies, not whose.",
        "The leaker, from the file's modification time.",
    ],
    hint=("What does the tracer compare for each user?",
          "If all copies answer all triggers alike, which user's expected answers does the leak "
          "match?"),
    where="class",
)

quiz(
    "10.9",
    "The app carries one built-in key that opens every model file; an attacker extracts it from "
    "his own copy of the app. What does he open?",
    [
        "Only his own model, the one sealed for his device.",
        "Every user's model file he can get.",
        "Nothing: the key is obfuscated.",
        "Only the models of his app's version.",
    ],
    hint=("Who holds a key built into the app?",
          "Losing one individual model is not a problem, losing many is: how many files does that "
          "key open?"),
    where="class",
)

quiz(
    "10.10",
    "The tracer tests L = 1,000 registered users with overall false-positive level alpha = 1e-6. "
    "At which level does it test each user?",
    [
        "1e-9, that is alpha / L.",
        "1e-6, that is alpha for each user.",
        "1e-3, that is alpha * L.",
        "5e-7, alpha / 2, two-sided.",
    ],
    hint=("Exercise 10.2: what happens to the threshold with 5 users?",
          "If each of L innocent users may be accused with chance a, what bounds the chance that "
          "at least one is? Set that bound to alpha."),
    where="class",
)
# part 2

quiz(
    "10.11",
    "Alice's app has version 3 installed. The server then delivers a genuine, signed version 2 (a "
    "replay), then version 4. What does the app do?",
    [
        "Installs both: both are signed.",
        "Refuses both: the replay shows a breach.",
        "Installs 2 once the user confirms.",
        "Refuses 2 and installs 4.",
    ],
    hint=("Everything in the replayed file is genuine: what tells it apart?",
          "Which signed field changes between two genuine deliveries, and what does the app "
          "remember?"),
    where="class",
)

quiz(
    "10.12",
    "The leaker strips the verifier and serves the bare classifier. Among 32 tracing triggers, "
    "about how many answers match the leaker's expected ones?",
    [
        "About 3, like any innocent copy.",
        "32: the triggers live in the weights.",
        "0: the bare classifier refuses triggers.",
        "About 16, half of the answers.",
    ],
    hint=("Chapter 08's robustness table, 'strip the verifier'.",
          "Where does the secret response key act: in the weights, or in the code beside them? "
          "Without it, how often does a 10-class answer match by chance?"),
    where="class",
)

quiz(
    "10.13",
    "A user disputes having downloaded model v7. Which evidence would convince a third party?",
    [
        "The server's own log line, with a timestamp.",
        "The server's signature on v7's header.",
        "A receipt signed by the user's device key.",
        "The TLS session record on the server.",
    ],
    hint=("Who could rewrite or produce each piece of evidence alone?",
          "Evidence convinces a third party only if the disputing user made it or a neutral "
          "keeper holds it: which option did the user's side sign?"),
    where="class",
)
