"""Exercises of chapter 10 (individual models: delivery, threat model, leak tracing)."""
from labkit.exercises import exercise


def _name(answer) -> str:
    return answer.__name__ if isinstance(answer, type) else str(answer).strip()


@exercise(
    "10.1",
    "the exception a phone raises when it opens a model sealed for another phone",
    hint="Seal any tensor for one key pair from labkit.weights.generate_recipient_keypair() and open "
    "it with a second key pair: which labkit.weights exception comes out?",
    solution="labkit.weights.NotARecipientError  (the file has no key wrapped for that device)",
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
    solution="labkit.backdoor.protocols.detection_threshold(16, alpha=1e-6 / 5)",
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
    solution="dict(labkit.capstone.THREATS)",
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
    solution="next(n for n in range(1, 30) if 0.1**n <= 1e-6 / 5)  # 7",
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
