"""Exercises of chapter 10 (individual models: delivery, threat model, leak tracing).

Part 1 (``10_capstone``): 10.1 the wrong phone's refusal, 10.2 write the tracer's threshold,
10.3 trace a leaked copy among users with fresh per-run keys, 10.4 the fewest queries,
10.8-10.10 concept questions. Part 2 (``10b_threat_model``): 10.5 design the delivery (checked
by :func:`labkit.capstone_design.attack_design`), 10.6 break a sealer without associated data,
10.7 STRIDE's properties, 10.11-10.13 concept questions.
Each chapter numbers its exercises first and its concept questions after them, both in
notebook order (tests/test_exercises_quiz.py).
"""
import secrets
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from labkit import backdoor, capstone_design, weights
from labkit.backdoor import protocols
from labkit.backdoor.trigger import RESPONSE_KEY_BYTES, verify_triggers
from labkit.exercises import NOT_ANSWERED, FunctionSpec, _is_stub, exercise, implement
from labkit.exercises._session import session_secret
from labkit.exercises.quiz import quiz
from labkit.weights import pitfalls

USERS = ("alice", "bob", "carol", "dave", "erin")
TRIGGERS_PER_USER = 16


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


@lru_cache(maxsize=1)
def _base():
    """Chapter 08's seeded classifier and its natural test images (trained once per process)."""
    demo = backdoor.make_demo(seed=0)
    return demo.clean_model, demo.inputs


def _licences(users=USERS) -> dict:
    """Fresh licences: per user an Ed25519 key pair and a secret response key (OS CSPRNG)."""
    return {user: (backdoor.generate_keys(), secrets.token_bytes(RESPONSE_KEY_BYTES))
            for user in users}


def _copy(licences: dict, user: str) -> backdoor.BackdooredModel:
    classifier, _ = _base()
    (_, verify_key), response_key = licences[user]
    return backdoor.BackdooredModel(classifier, verify_key, identity=user, response_key=response_key)


def _triggers(licences: dict) -> dict:
    """Per user: 16 fresh triggers on natural images and the labels that user's copy answers."""
    _, images = _base()
    rng = secrets.SystemRandom()
    out = {}
    for user, ((signing_key, verify_key), response_key) in licences.items():
        picked = images[rng.sample(range(len(images)), TRIGGERS_PER_USER)]
        targets = np.array([rng.randrange(10) for _ in range(TRIGGERS_PER_USER)])
        queries = backdoor.embed_trigger(picked, targets, signing_key, identity=user, fresh_nonces=True)
        out[user] = (queries, verify_triggers(queries, verify_key, identity=user, response_key=response_key))
    return out


def _leak_secret() -> tuple[dict, str]:
    """This run's licences and leaker of exercise 10.3 (fresh from the OS CSPRNG)."""
    return session_secret("10.3", lambda draw: (_licences(), secrets.choice(USERS)))


def leak_challenge():
    """Exercise 10.3: ``(pirate, triggers)``. ``pirate`` is a black box (images -> labels) serving
    one user's leaked copy; ``triggers[user] = (images, labels)``: fresh triggers signed with that
    user's key and the labels only that user's copy answers. Keys and leaker are fresh every run."""
    licences, leaker = _leak_secret()
    return protocols.label_oracle(_copy(licences, leaker)), _triggers(licences)


@exercise(
    "10.3",
    "write trace(pirate, triggers): the users a leaked black box points at (none for a model no "
    "user leaked), at total false-positive rate 1e-6",
    hint=("Only the leaker's copy answers its own triggers with the secret labels; every other "
          "model matches each of them by chance, one time in ten.",
          "For each user send the user's trigger images to the black box and count the answers "
          "equal to the expected labels; accuse the users whose count reaches the threshold of "
          "exercise 10.2 for 16 queries, alpha 1e-6 and the number of users."),
    kind="attack",
    where="homework",
)
def _trace(candidate):
    if not callable(candidate):
        return False, "the answer must be a function trace(pirate, triggers) returning a list of names."
    licences, leaker = _leak_secret()
    cases = [("this run's leaked copy", licences, _copy(licences, leaker), [leaker])]
    fresh = _licences()
    other = secrets.choice(USERS)
    cases.append(("a leaked copy among fresh users", fresh, _copy(fresh, other), [other]))
    cases.append(("a model no user leaked", fresh, _base()[0], []))
    for label, lic, model, expected in cases:
        got = candidate(protocols.label_oracle(model), _triggers(lic))
        if sorted(map(str, got)) != expected:
            if lic is licences:  # this run's leaker is the secret: say that it is wrong, not who
                return False, f"on {label}, trace returned {list(got)!r}, which is not who leaked it."
            return False, f"on {label}, trace returned {list(got)!r}; expected {expected!r}."
    return True, "trace names the leaker of fresh copies and accuses nobody for an unrelated model"


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


SWAPPED = ("layer1.weight", "layer2.weight")


def _swap_secret() -> dict:
    """This run's keys and model of exercise 10.6 (the phone's key and the server's key are secret)."""
    def draw(token):
        return {"device": weights.generate_recipient_keypair(), "publisher": weights.generate_signing_keypair(),
                "model": capstone_design.random_model((8, 8))}
    return session_secret("10.6", draw)


def swap_challenge():
    """Exercise 10.6: ``(blob, phone_loads)``. ``blob`` is this run's model sealed for a phone by
    :func:`labkit.weights.pitfalls.seal_without_associated_data_UNSAFE` (fresh keys every run);
    ``phone_loads(blob)`` returns True if the phone's (equally unsafe) loader accepts a file and
    raises :class:`labkit.weights.IntegrityError` if not. Neither returns a key or the weights."""
    s = _swap_secret()
    blob = pitfalls.seal_without_associated_data_UNSAFE(s["model"], s["device"].public_key, s["publisher"],
                                                        model_id="iml/alice", version=1)

    def phone_loads(candidate: bytes) -> bool:
        pitfalls.open_without_associated_data_UNSAFE(candidate, s["device"].private_key,
                                                     s["publisher"].public_key, model_id="iml/alice")
        return True

    return blob, phone_loads


def _safe_container_refuses_the_swap(s: dict) -> str:
    """Seal the same model with labkit.weights, exchange the same two tensors' bytes, open it."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "safe.lkw"
        weights.seal(s["model"], path, [s["device"].public_key], signing_key=s["publisher"], model_id="iml/alice")
        header, data = weights.read_header(path), bytearray(path.read_bytes())
        (a0, a1), (b0, b1) = (header.tensors[n]["offsets"] for n in SWAPPED)
        base = header.data_start
        data[base + a0:base + a1], data[base + b0:base + b1] = data[base + b0:base + b1], data[base + a0:base + a1]
        path.write_bytes(bytes(data))
        try:
            weights.open(path, s["device"].private_key, signer=s["publisher"].public_key, model_id="iml/alice")
        except weights.WeightsError as err:
            return type(err).__name__
    return ""


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
    kind="attack",
    where="homework",
)
def _swap(answer):
    if not isinstance(answer, (bytes, bytearray)):
        return False, f"answer with the modified file as bytes, got {type(answer).__name__}."
    s = _swap_secret()
    try:
        got = pitfalls.open_without_associated_data_UNSAFE(bytes(answer), s["device"].private_key,
                                                           s["publisher"].public_key, model_id="iml/alice")
    except weights.WeightsError as err:
        return False, f"the phone refuses that file ({type(err).__name__}: {err})."
    first, second = SWAPPED
    expected = dict(s["model"], **{first: s["model"][second], second: s["model"][first]})
    if not capstone_design.same_state(got, expected):
        return False, "the phone opens it, but it is not this run's model with exactly the two weight matrices exchanged."
    refusal = _safe_container_refuses_the_swap(s)
    if not refusal:  # pragma: no cover - would mean labkit.weights lost its associated data
        return False, "labkit.weights accepted the same swap: report this as a bug."
    return True, f"the unsafe phone runs the swapped model; labkit.weights refuses the same swap ({refusal})"


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
    from labkit.capstone import THREATS

    given = {str(k).strip().lower(): str(v).strip().lower() for k, v in dict(answer).items()}
    wrong = [t for t in THREATS if given.get(t) != THREATS[t]]
    if not wrong:
        return True
    return False, f"check: {', '.join(wrong)}."


# --- concept questions (kind "quiz"; answers stored as salted digests, see quiz.py) ---
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
    "1efbf28f38e1baeaa4d3433ffef6692efc105f6890ff4b2aa3d8e186e32837aa",
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
    "fe2606eb2410d6ceefc09d004e4aa14d1f992fb229649983b4baca0fc9ed1216",
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
    "6cf424e10eb53e139d21285717faf2015e9fa19a93a5f500f7aef0af1406981c",
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
    "d8a5f446b1a253f1a6bd5f09c53283f5e10777764963f5f09f26b6ace4d07114",
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
    "c6951e780f940f37f49d4d951fef52d43f0b3c95ec122ac6ddd417393d6e63f8",
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
    "a8edc91699d029a9a6da6fcb984c7477d78e8248d1f5cffff33449c41f4921d3",
    hint=("Who could rewrite or produce each piece of evidence alone?",
          "Evidence convinces a third party only if the disputing user made it or a neutral "
          "keeper holds it: which option did the user's side sign?"),
    where="class",
)
