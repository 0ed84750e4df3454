"""Exercises of chapter 10 (individual models: delivery, threat model, leak tracing)."""
from labkit.exercises import exercise
from labkit.exercises.quiz import quiz


def _name(answer) -> str:
    return answer.__name__ if isinstance(answer, type) else str(answer).strip()


@exercise(
    "10.1",
    "the exception a phone raises when it opens a model sealed for another phone",
    hint="Seal any tensor for one key pair from labkit.weights.generate_recipient_keypair() and open "
    "it with a second key pair: which labkit.weights exception comes out?",
)
def _wrong_device(answer):
    import tempfile
    from pathlib import Path

    import torch

    from labkit import weights

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


@exercise(
    "10.2",
    "fewest of 16 trigger queries per user that accuse one of 5 users at total false-positive rate 1e-6",
    hint="The tracer tests every user at alpha / 5 (Bonferroni); a copy without that user's secret response "
    "key matches each keyed answer with probability 1/10 (labkit.backdoor.protocols.detection_threshold).",
)
def _threshold(answer):
    from labkit.backdoor.protocols import binomial_tail, detection_threshold

    k = int(answer)
    expected = detection_threshold(16, alpha=1e-6 / 5)
    if k == expected:
        return True
    if k == detection_threshold(16, alpha=1e-6):
        return False, "that is the threshold for one user: five users share the 1e-6 budget."
    if binomial_tail(16, k, 0.1) > 1e-6 / 5:
        return False, f"P[X >= {k}] = {binomial_tail(16, k, 0.1):.2g} is above 2e-7."
    return False, f"{k} is safe but not the fewest."


@exercise(
    "10.3",
    "the property each of the four STRIDE threats attacks, as a dict threat -> property",
    hint="STRIDE has six threats; the ledger covers four. Spoofing, tampering, disclosure, denial of service "
    "against authenticity, integrity, confidentiality, availability (labkit.capstone.THREATS). "
    "Repudiation and elevation of privilege are left out (labkit.capstone.THREATS_LEFT_OUT says why).",
)
def _properties(answer):
    from labkit.capstone import THREATS

    given = {str(k).strip().lower(): str(v).strip().lower() for k, v in dict(answer).items()}
    wrong = [t for t in THREATS if given.get(t) != THREATS[t]]
    if not wrong:
        return True
    return False, f"check: {', '.join(wrong)}."


@exercise(
    "10.4",
    "how many trigger queries n make n out of n matches accuse one of 5 users at total rate 1e-6",
    hint="n/n matches happens by chance with probability (1/10)^n; it must be at most 1e-6 / 5.",
)
def _fewest_queries(answer):
    from labkit.backdoor.protocols import detection_threshold

    def enough(n):
        try:
            return detection_threshold(n, alpha=1e-6 / 5) <= n
        except ValueError:
            return False

    n = int(answer)
    expected = next(m for m in range(1, 64) if enough(m))
    return n == expected, "" if n == expected else f"with n = {n}, n/n matches has chance {0.1 ** n:.2g}."


# --- concept questions (kind "quiz"; answers stored as salted digests, see quiz.py) ---
# part 1

quiz(
    '10.5',
    "Why does every user's copy carry its own watermark key and secret response key, not one watermark shared by all copies?",
    [
     'Because one shared key would make the model slower.',
     "Because tracing must name whose copy leaked: a shared watermark shows the model is the server's but not which user leaked it, and a per-copy secret also keeps a leaker from framing the others.",
     'Because Ed25519 keys can sign only one model.',
     'Because the phone needs the key to run the model.',
    ],
    'a5fa4e33a27b1c78a3a0b7ef8ce65b0608133464b0d7f5995cd7aa680e347435',
    hint='What does the tracer compare for each user?',
)

quiz(
    '10.6',
    "Why is each individual model sealed for that device's own public key (HPKE), not under one key built into the app?",
    [
     'Because AES-256-GCM cannot use the same key twice.',
     'Because HPKE is faster than AES.',
     "Because a key inside the app is in every copy of the app: extracting it once opens every user's file (losing many models), while a per-device key confines a break to one user's model.",
     'Because the app store forbids keys in apps.',
    ],
    '83f366901e0f211d934f90e545ed6f1ad28d5d3c1c8226e9405a007ef5107e31',
    hint='The talk: losing one IML is not a problem, losing many is.',
)

quiz(
    '10.7',
    'The tracer tests every registered user. Why does it accuse a user only at false-positive level alpha / L for L users?',
    [
     'So that, by the union bound, the chance of accusing any innocent at all stays at most alpha, however many users are tested.',
     'Because each user gets fewer triggers.',
     'Because the response keys are shorter with more users.',
     'Because alpha must be an integer.',
    ],
    '29f11777bffff7b6bb21bdd95e5a8309cebff2481a63912cf4d175ff9916eec6',
    hint='Exercise 10.2: what happens to the threshold with 5 users?',
)
# part 2

quiz(
    '10.8',
    "A replayed version 1 of alice's model is intact and correctly signed. Why does her app refuse it?",
    [
     'Because its GCM tags fail.',
     'Because version 1 files expire after five minutes.',
     'Because the HPKE key changed.',
     'Because the version number is inside the signed header and the app refuses a version older than the one installed: nothing else distinguishes a replay of a genuine old file.',
    ],
    'ba32f98ede09c49e1ab9e81b8960566f43b3237fb55e8c435b76f408abc1050f',
    hint='Everything in the replayed file is genuine: what tells it apart?',
)

quiz(
    '10.9',
    'Why does tracing find nobody when the leaker strips the verifier and serves the bare classifier?',
    [
     'Because the bare classifier is more accurate.',
     'Because the watermark is code beside the weights, not in them: without the verifier the classifier answers triggers like any model (about 1/10), below the threshold. Tracing catches careless leaks.',
     "Because the server's signing key leaked.",
     'Because the threshold was set too high by mistake.',
    ],
    'fe2606eb2410d6ceefc09d004e4aa14d1f992fb229649983b4baca0fc9ed1216',
    hint="Chapter 08's robustness table, 'strip the verifier'.",
)

quiz(
    '10.10',
    'The threat model leaves out repudiation. What would the service need to address it?',
    [
     'A longer API token.',
     "Encrypting the server's log with AES-256-GCM.",
     "A signed, append-only log held by a third party: the server's own log is a list it could rewrite, so it proves nothing to a user who disputes it.",
     'Rate limits on the API.',
    ],
    '3666bf1fcf39cccd3a1d631369ff8eaa1bf3b078a9f2b930a6f1de2fe54134cb',
    hint='Who could rewrite the list in server.log?',
)
