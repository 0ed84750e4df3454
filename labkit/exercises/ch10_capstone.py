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
from labkit.challenges.defs_models import SWAPPED, TRIGGERS_PER_USER, USERS  # noqa: F401 (public constants)
from labkit.exercises import NOT_ANSWERED, _is_stub, _session, check_function, exercise
from labkit.exercises.quiz import quiz


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


@exercise(
    "10.2",
    "write accusation_threshold(n, alpha, users): the fewest of n trigger matches that accuse one "
    "of `users` users, keeping the total chance of accusing any innocent at most alpha",
    hint=("An innocent copy answers each secret trigger label by chance, with probability 1/10, so "
          "its matches follow a binomial law; with several users the budget alpha is shared "
          "among them, by the union bound.",
          "Give each user alpha divided by the number of users. Then try k = 0, 1, 2, ... and "
          "return the first k whose binomial upper tail, the chance of k or more matches in n "
          "trials at p = 1/10, is at most that share; math.comb gives the binomial coefficients."),
    kind="implement",
)
def _accusation_threshold(candidate):
    def draw(rng):
        return rng.randrange(12, 41), rng.choice([1e-3, 1e-4, 1e-6, 1e-9]), rng.randrange(1, 21)

    return check_function(candidate, _reference_threshold, draw, name="accusation_threshold")


def _case(attempt: client.Attempt, index: int):
    """(pirate, triggers) of one case of a 10.3 attempt: a served black box and public triggers."""
    pirate = _session.ServedOracle(attempt, f"case{index}", encode=lambda x: _session.as_array(x, np.float32))
    triggers = {user: (torch.from_numpy(images.copy()), labels)
                for user, (images, labels) in attempt.public["triggers"][index].items()}
    return pirate, triggers


def leak_challenge():
    """Exercise 10.3: ``(pirate, triggers)``. ``pirate`` is a black box (images -> labels) serving
    one user's leaked copy; ``triggers[user] = (images, labels)``: fresh triggers signed with that
    user's key and the labels only that user's copy answers. Keys and leaker are fresh every run,
    and stay in the challenge service."""
    return _case(_session.run("10.3"), 0)


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
@exercise(
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
    kind="implement",
)
def _design(answer):
    try:
        deliver, receive = answer
    except (TypeError, ValueError):
        return False, "the answer must be the pair (deliver, receive) of your two functions."
    if _is_stub(deliver) and _is_stub(receive):
        return False, NOT_ANSWERED
    report = capstone_design.attack_design(deliver, receive)
    if not report.works:
        return False, f"a genuine delivery must open on its phone: {report.problem}."
    missed = [a.attack for a in report.attacks if not a.stopped]
    if missed:
        return False, (f"stops {report.stopped} of {len(report.attacks)} attacks; expected every one "
                       f"stopped. Not stopped: {'; '.join(missed)}.")
    return True, f"the design stops all {len(report.attacks)} attacks of the threat model"


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
    run = _session.run("10.6")
    return run.public["blob"], _session.ServedOracle(run, "phone", encode=bytes, decode=_phone_reply)


@exercise(
    "10.6",
    "make the phone's unsafe loader accept this run's model with layer1.weight and layer2.weight "
    "exchanged; answer the modified file's bytes",
    hint=("Each tensor's record is AES-GCM under one file key with no associated data, and the "
          "signature covers only the header: a tag proves the record came from the key holder, "
          "not which tensor it is.",
          "Find where each record starts and ends from the header, with the layout helper of "
          "weights.pitfalls; the two weight matrices have the same shape, so their records have "
          "the same length. Exchange the two byte ranges and leave everything else alone."),
    kind="attack", remote=True,
)
def _swap(answer):
    if not isinstance(answer, (bytes, bytearray)):
        return False, f"answer with the modified file as bytes, got {type(answer).__name__}."
    return _session.answer_run("10.6", bytes(answer))


@exercise(
    "10.7",
    "the property each of the four STRIDE threats attacks, as a dict threat -> property",
    hint=("Each STRIDE threat is the violation of one security property; the section's table "
          "lists the four threats of this ledger.",
          "Spoofing pretends to be someone, tampering changes data, disclosure reveals it, denial "
          "of service makes a service unusable: name the property each one violates, in one word."),
)
def _properties(answer):
    from labkit.capstone import THREATS

    given = {str(k).strip().lower(): str(v).strip().lower() for k, v in dict(answer).items()}
    wrong = [t for t in THREATS if given.get(t) != THREATS[t]]
    if not wrong:
        return True
    return False, f"check: {', '.join(wrong)}."


# --- concept questions (kind "quiz"; the answers are the challenge service's, see quiz.py) ---
# part 1

quiz(
    '10.8',
    "Why does every user's copy carry its own watermark key and secret response key, not one watermark shared by all copies?",
    [
     'Because one shared key would make the model slower.',
     "Because tracing must name whose copy leaked: a shared watermark shows the model is the server's but not which user leaked it, and a per-copy secret also keeps a leaker from framing the others.",
     'Because Ed25519 keys can sign only one model.',
     'Because the phone needs the key to run the model.',
    ],
    hint=('What does the tracer compare for each user?',
          'With one key for all copies, what could the tracer say about a leaked copy beyond "it is ours"?'),
)

quiz(
    '10.9',
    "Why is each individual model sealed for that device's own public key (HPKE), not under one key built into the app?",
    [
     'Because AES-256-GCM cannot use the same key twice.',
     'Because HPKE is faster than AES.',
     "Because a key inside the app is in every copy of the app: extracting it once opens every user's file (losing many models), while a per-device key confines a break to one user's model.",
     'Because the app store forbids keys in apps.',
    ],
    hint=('The talk: losing one IML is not a problem, losing many is.',
          'Who holds a key built into the app, and what does extracting it once open?'),
)

quiz(
    '10.10',
    'The tracer tests every registered user. Why does it accuse a user only at false-positive level alpha / L for L users?',
    [
     'So that, by the union bound, the chance of accusing any innocent at all stays at most alpha, however many users are tested.',
     'Because each user gets fewer triggers.',
     'Because the response keys are shorter with more users.',
     'Because alpha must be an integer.',
    ],
    hint=('Exercise 10.2: what happens to the threshold with 5 users?',
          'If each of L innocent users may be accused with chance alpha, what bounds the chance that at least one is?'),
)
# part 2

quiz(
    '10.11',
    "A replayed version 1 of alice's model is intact and correctly signed. Why does her app refuse it?",
    [
     'Because its GCM tags fail.',
     'Because version 1 files expire after five minutes.',
     'Because the HPKE key changed.',
     'Because the version number is inside the signed header and the app refuses a version older than the one installed: nothing else distinguishes a replay of a genuine old file.',
    ],
    hint=('Everything in the replayed file is genuine: what tells it apart?',
          'Which signed field changes between two genuine deliveries, and what does the app remember?'),
)

quiz(
    '10.12',
    'Why does tracing find nobody when the leaker strips the verifier and serves the bare classifier?',
    [
     'Because the bare classifier is more accurate.',
     'Because the watermark is code beside the weights, not in them: without the verifier the classifier answers triggers like any model (about 1/10), below the threshold. Tracing catches careless leaks.',
     "Because the server's signing key leaked.",
     'Because the threshold was set too high by mistake.',
    ],
    hint=("Chapter 08's robustness table, 'strip the verifier'.",
          'Where does the secret response key act: in the weights, or in the code beside them?'),
)

quiz(
    '10.13',
    'The threat model leaves out repudiation. What would the service need to address it?',
    [
     'A longer API token.',
     "Encrypting the server's log with AES-256-GCM.",
     "A signed, append-only log held by a third party: the server's own log is a list it could rewrite, so it proves nothing to a user who disputes it.",
     'Rate limits on the API.',
    ],
    hint=('Who could rewrite the list in server.log?',
          'Evidence convinces a disputing user only if its keeper cannot change it: who should keep it, and how?'),
)
