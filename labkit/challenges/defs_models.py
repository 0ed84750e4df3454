"""Challenge definitions of the network chapters (06, 07, 08, 09, 10), service side.

The cipher networks, watermarked classifiers and sealed models are built here, in the service's
process, from secrets drawn when an attempt starts; the kernel sends query batches and receives
outputs (numpy arrays, labels, True/False) and verdicts.

torch and the network, backdoor and weights modules are imported inside the functions that use
them: the service registers every chapter's challenges at start, and importing the catalog costs
0.3 s of CPU and 44 MiB without them against 2.1 s and 243 MiB with them (measured 2026-12-05), so
the self-study service starts, and answers the cipher chapters, without torch.
"""
from __future__ import annotations

import secrets
import tempfile
import threading
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import numpy as np

from labkit.challenges.definitions import Challenge, ChallengeError, as_bytes, as_int, register

#: Query budget of exercise 06.8: what the paper reports, 4 queries per key bit (512 per key), and as
#: many again for the retries it makes after a detected disagreement (labkit.attacks.recover_key used
#: at most 570 over 1,000 keys, data/results/table1_full.csv). Linear in the key size either way.
AES128_QUERY_BUDGET = 2 * 4 * 128
TOY_QUERY_BUDGET = 4 * 16  #: 06.9: 4 queries per bit of k1
TRIGGER_EPSILON = Fraction(1, 4)  #: 07.4: the authors' margin, float64, without the clamp
USERS = ("alice", "bob", "carol", "dave", "erin")
TRIGGERS_PER_USER = 16
SWAPPED = ("layer1.weight", "layer2.weight")
_TRAINING = threading.Lock()  # one training of chapter 08's classifier per process, not one per thread


def _classifier():
    from labkit.digits import trained_classifier

    with _TRAINING:
        return trained_classifier("mlp", 0)


def _float_rows(request, width: int) -> np.ndarray:
    q = np.asarray(request, dtype=np.float64)
    if q.ndim == 1:
        q = q[None, :]
    if q.ndim != 2 or q.shape[1] != width:
        raise ChallengeError(f"queries must be an (n, {width}) array of floats, got shape {q.shape}")
    if not np.all(np.isfinite(q)):
        raise ChallengeError("queries must be finite numbers")
    return q


def _forward(network, q: np.ndarray, dtype=None) -> np.ndarray:
    import torch

    from labkit.attacks.oracle import module_dtype

    with torch.no_grad():
        out = network(torch.as_tensor(q, dtype=dtype or module_dtype(network)))
    return out.detach().cpu().numpy()


def _image_rows(oracle, request) -> int:
    shape = np.shape(request) if isinstance(request, np.ndarray) else ()
    return int(shape[0]) if len(shape) == 4 else 1


def _images(request) -> "torch.Tensor":
    import torch

    x = np.asarray(request, dtype=np.float32)
    if x.ndim != 4 or x.shape[1:] != (1, 32, 32) or not np.all(np.isfinite(x)):
        raise ChallengeError(f"images must be an (n, 1, 32, 32) float array, got shape {x.shape}")
    return torch.from_numpy(x.copy())


@register
class NaturalAes128(Challenge):
    exercise, oracles, budget, run_budget, answers = "06.8", ("network",), AES128_QUERY_BUDGET, 1 << 16, "fresh"

    def new_state(self, token, fresh):
        return {"key": token(16)}, None

    def query(self, state, oracle, request, memo):
        if "net" not in memo:
            from labkit.neural import aes128_network

            memo["net"] = aes128_network(state["key"])
        q = _float_rows(request, 128)
        return _forward(memo["net"], q)

    def check(self, state, answer):
        got = as_bytes(answer, 16, "key (the value recover_key returned)")
        wrong = sum(bin(a ^ b).count("1") for a, b in zip(got, state["key"]))
        if wrong:
            return False, f"{wrong} of the 128 key bits are wrong (for a fresh network)."
        return True, f"the key of a fresh AES-128 network, recovered within the budget of {AES128_QUERY_BUDGET} queries"


@register
class ToySpnSecondRound(Challenge):
    exercise, oracles, budget, run_budget, answers = "06.9", ("network",), TOY_QUERY_BUDGET, 1 << 14, "fresh"

    def new_state(self, token, fresh):
        raw = token(6)
        keys = [int.from_bytes(raw[i:i + 2], "big") for i in (0, 2, 4)]
        return {"keys": keys}, {"k0": keys[0]}

    def query(self, state, oracle, request, memo):
        from labkit.neural import spn

        if "net" not in memo:
            memo["net"] = spn.toy_spn_network(tuple(state["keys"]))
        q = _float_rows(request, spn.TOY_BITS)
        return _forward(memo["net"], q)

    def check(self, state, answer):
        got = as_int(answer, "value recover_second_round_key returned (k1)")
        wrong = bin((got ^ state["keys"][1]) & 0xFFFF).count("1") + (not 0 <= got < 1 << 16) * 16
        if wrong:
            return False, f"{min(wrong, 16)} of the 16 bits of k1 are wrong (for a fresh network)."
        return True, f"k1 of a fresh toy network, recovered within the budget of {TOY_QUERY_BUDGET} queries"


@register
class FloatTrigger(Challenge):
    exercise, oracles, budget, run_budget, answers = "07.4", ("unclamped", "clamped"), 1024, 1 << 14, "fresh"

    def new_state(self, token, fresh):
        return {"key": token(16), "fresh": fresh}, None

    def query(self, state, oracle, request, memo):
        import torch

        from labkit.neural import aes128_network

        if oracle == "clamped" and not state["fresh"]:
            raise ChallengeError("this challenge hands out the unclamped network only")
        if oracle not in memo:
            memo[oracle] = aes128_network(state["key"], protected=True, epsilon=TRIGGER_EPSILON,
                                          dtype=torch.float64, unsafe_unclamped=oracle == "unclamped")
        q = _float_rows(request, 128)
        return _forward(memo[oracle], q, torch.float64)

    def check(self, state, answer):
        if not (isinstance(answer, dict) and set(answer) == {"unclamped", "clamped"}):
            raise ChallengeError("the 07.4 answer holds the keys the attack returned on both networks")
        if answer["unclamped"] != state["key"]:
            return False, ("that is not the key of this run's network: expected the 16 bytes of the key "
                           "behind the oracle, most significant bit of the first byte first.")
        if answer["clamped"] == state["key"]:
            return False, ("your function also returns the key of the *clamped* network, which no query "
                           "can reveal: it must work from the oracle's answers alone.")
        return True, ("the key of this run's unclamped network, from its answers alone; the clamped "
                      "network resists the same function")


@register
class NaiveOwnership(Challenge):
    exercise, oracles, run_budget = "08.5", ("suspect",), 1 << 14
    rows = staticmethod(_image_rows)

    def prepare(self):
        _classifier()

    def new_state(self, token, fresh):
        # the thief's key is the student's own for this run: public, so the claim must be under it
        # (rerunning section 3's ready-made claimant, which draws a key of its own, is refused)
        thief = token(32)
        return {"owner": token(32), "thief": thief}, {"signing_key_seed": thief}

    def query(self, state, oracle, request, memo):
        from Crypto.Signature import eddsa

        from labkit.backdoor.protocols import ModelOwner, label_oracle

        if "suspect" not in memo:
            owner = ModelOwner(eddsa.import_private_key(state["owner"]))
            memo["suspect"] = label_oracle(owner.watermark(_classifier()))
        x = _images(request)
        return np.asarray(memo["suspect"](x), dtype=np.int64)

    def check(self, state, answer):
        import torch
        from Crypto.Signature import eddsa

        from labkit.backdoor.naive import OwnershipClaim, naive_judge_ownership_UNSAFE
        from labkit.backdoor.trigger import verify_key_bytes

        if not (isinstance(answer, dict) and set(answer) == {"queries", "targets", "verify_key"}):
            raise ChallengeError("the answer must be a naive.OwnershipClaim")
        claim = OwnershipClaim(_images(answer["queries"]), np.asarray(answer["targets"], dtype=np.int64),
                               as_bytes(answer["verify_key"], what="verify key"))
        if claim.verify_key == verify_key_bytes(eddsa.import_private_key(state["owner"]).public_key()):
            return False, "that is the owner's key: the claim must be under a key of your own."
        if claim.verify_key != verify_key_bytes(eddsa.import_private_key(state["thief"]).public_key()):
            return False, "sign the claim with ownership_challenge()['signing_key'], the key this run gives you."
        if len(claim.targets) < 16 or claim.targets.ndim != 1 or len(claim.targets) != len(claim.queries):
            return False, f"the claim must have at least 16 queries, got {len(claim.targets)}."
        memo: dict = {}
        suspect = lambda x: self.query(state, "suspect", torch.as_tensor(x).numpy(), memo)  # noqa: E731
        verdict = naive_judge_ownership_UNSAFE(claim, suspect)
        if not verdict.owned:
            return False, f"the naive judge says: {verdict}."
        return True, ("the naive judge declares you the owner of a model that never saw your key; the "
                      "sound judge draws the targets itself, so the same claim fails there")


@register
class TensorNonceReuse(Challenge):
    exercise = "09.4"

    def new_state(self, token, fresh):
        import torch

        from labkit.weights import pitfalls

        seed = int.from_bytes(token(8), "big")
        secret = torch.randn(4, 4, generator=torch.Generator().manual_seed(seed))
        known, c1, c2 = pitfalls.nonce_reuse_challenge(0, secret=secret)
        return {"secret": secret.numpy()}, {"known": known.numpy(), "c1": c1, "c2": c2}

    def check(self, state, answer):
        got = np.asarray(answer)
        return bool(got.shape == (4, 4) and np.array_equal(got.astype(np.float32), state["secret"])), ""


@register
class SelectiveSeal(Challenge):
    exercise = "09.5"

    def new_state(self, token, fresh):
        from labkit import weights

        device, publisher = weights.generate_recipient_keypair(), weights.generate_signing_keypair()
        return ({"device": device.private_key, "publisher": publisher.public_key},
                {"device_public": device.public_key, "publisher": [publisher.private_key, publisher.public_key]})

    def check(self, state, answer):
        import torch

        from labkit import weights

        data = as_bytes(answer, what="sealed file")
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "answer.lkw"
            path.write_bytes(data)
            try:
                header = weights.read_header(path)
                if header.signer != state["publisher"]:
                    return False, "the file is not signed by this run's exercise_publisher(): pass it as signing key."
                got = weights.open(path, state["device"], signer=state["publisher"])
            except weights.WeightsError as err:
                return False, f"the device cannot open that file ({type(err).__name__}: {err})."
        encrypted = {t.name for t in header.parsed.tensors if t.encrypted}
        if encrypted != {"fc.weight"}:
            return False, f"encrypted tensors are {sorted(encrypted)}, expected only fc.weight."
        expected = exercise_state()
        return set(got) == set(expected) and all(torch.equal(got[n], expected[n]) for n in expected), ""


def exercise_state() -> dict:
    """The small model of exercise 09.5 (public: only its delivery is the exercise)."""
    import torch

    g = torch.Generator().manual_seed(9)
    return {"fc.weight": torch.randn(10, 64, generator=g), "fc.bias": torch.randn(10, generator=g)}


@lru_cache(maxsize=1)
def _base():
    """Chapter 08's seeded classifier and its natural test images (trained once per process)."""
    from labkit import backdoor

    with _TRAINING:
        demo = backdoor.make_demo(seed=0)
    return demo.clean_model, demo.inputs


def _licences(token) -> dict:
    from labkit.backdoor.trigger import RESPONSE_KEY_BYTES

    return {user: [token(32), token(RESPONSE_KEY_BYTES)] for user in USERS}


def _copy(licences: dict, user: str | None):
    from Crypto.Signature import eddsa

    from labkit import backdoor

    classifier, _ = _base()
    if user is None:
        return classifier
    seed, response_key = licences[user]
    verify_key = eddsa.import_private_key(seed).public_key()
    return backdoor.BackdooredModel(classifier, verify_key, identity=user, response_key=response_key)


def _triggers(licences: dict) -> dict:
    """Per user: 16 fresh triggers on natural images and the labels that user's copy answers."""
    from Crypto.Signature import eddsa

    from labkit import backdoor
    from labkit.backdoor.trigger import verify_triggers

    _, images = _base()
    rng = secrets.SystemRandom()
    out = {}
    for user, (seed, response_key) in licences.items():
        signing_key = eddsa.import_private_key(seed)
        picked = images[rng.sample(range(len(images)), TRIGGERS_PER_USER)]
        targets = np.array([rng.randrange(10) for _ in range(TRIGGERS_PER_USER)])
        queries = backdoor.embed_trigger(picked, targets, signing_key, identity=user, fresh_nonces=True)
        labels = verify_triggers(queries, signing_key.public_key(), identity=user, response_key=response_key)
        out[user] = [queries.numpy().astype(np.float32), np.asarray(labels, dtype=np.int64)]
    return out


@register
class LeakTrace(Challenge):
    exercise, budget, run_budget, answers = "10.3", 1024, 1 << 14, "fresh"
    oracles = ("case0", "case1", "case2")
    rows = staticmethod(_image_rows)

    def prepare(self):
        _base()

    def new_state(self, token, fresh):
        cases = [{"licences": _licences(token), "leaker": USERS[token(1)[0] % len(USERS)]}]
        if fresh:  # this check's leaker, a leaker among fresh users, and a model no user leaked
            other = _licences(token)
            cases += [{"licences": other, "leaker": USERS[token(1)[0] % len(USERS)]},
                      {"licences": other, "leaker": None}]
        return {"cases": cases}, {"triggers": [_triggers(c["licences"]) for c in cases]}

    def query(self, state, oracle, request, memo):
        from labkit.backdoor import protocols

        index = self.oracles.index(oracle)
        if index >= len(state["cases"]):
            raise ChallengeError(f"this attempt has no oracle {oracle!r}")
        if oracle not in memo:
            case = state["cases"][index]
            memo[oracle] = protocols.label_oracle(_copy(case["licences"], case["leaker"]))
        x = _images(request)
        return np.asarray(memo[oracle](x), dtype=np.int64)

    def check(self, state, answer):
        labels = ("this check's leaked copy", "a leaked copy among fresh users", "a model no user leaked")
        if not (isinstance(answer, list) and len(answer) == len(state["cases"])
                and all(isinstance(a, list) and all(isinstance(n, str) for n in a) for a in answer)):
            raise ChallengeError("trace must return a list of user names for every case")
        for label, case, got in zip(labels, state["cases"], answer):
            expected = [] if case["leaker"] is None else [case["leaker"]]
            if sorted(got) != expected:
                if case is state["cases"][0]:  # this check's leaker is the secret: say it is wrong, not who
                    return False, f"on {label}, trace returned {got!r}, which is not who leaked it."
                return False, f"on {label}, trace returned {got!r}; expected {expected!r}."
        return True, "trace names the leaker of fresh copies and accuses nobody for an unrelated model"


@register
class TensorSwap(Challenge):
    exercise, oracles, run_budget = "10.6", ("phone",), 4096

    def new_state(self, token, fresh):
        from labkit import capstone_design, weights
        from labkit.weights import pitfalls

        device, publisher = weights.generate_recipient_keypair(), weights.generate_signing_keypair()
        model = capstone_design.random_model((8, 8))
        blob = pitfalls.seal_without_associated_data_UNSAFE(model, device.public_key, publisher,
                                                            model_id="iml/alice", version=1)
        state = {"device": [device.private_key, device.public_key],
                 "publisher": [publisher.private_key, publisher.public_key],
                 "model": {n: t.numpy() for n, t in model.items()}}
        return state, {"blob": blob}

    def _open(self, state, blob: bytes):
        from labkit.weights import pitfalls

        return pitfalls.open_without_associated_data_UNSAFE(blob, state["device"][0], state["publisher"][1],
                                                            model_id="iml/alice")

    def query(self, state, oracle, request, memo):
        from labkit import weights

        try:
            self._open(state, as_bytes(request, what="file"))
        except weights.WeightsError as err:
            return {"refused": type(err).__name__, "message": str(err)}
        return True

    def check(self, state, answer):
        import torch

        from labkit import capstone_design, weights

        try:
            got = self._open(state, as_bytes(answer, what="modified file"))
        except weights.WeightsError as err:
            return False, f"the phone refuses that file ({type(err).__name__}: {err})."
        model = {n: torch.from_numpy(a.copy()) for n, a in state["model"].items()}
        first, second = SWAPPED
        expected = dict(model, **{first: model[second], second: model[first]})
        if not capstone_design.same_state(got, expected):
            return False, "the phone opens it, but it is not this run's model with exactly the two weight matrices exchanged."
        refusal = _safe_container_refuses_the_swap(state, model)
        if not refusal:  # pragma: no cover - would mean labkit.weights lost its associated data
            return False, "labkit.weights accepted the same swap: report this as a bug."
        return True, f"the unsafe phone runs the swapped model; labkit.weights refuses the same swap ({refusal})"


def _safe_container_refuses_the_swap(state: dict, model: dict) -> str:
    """Seal the same model with labkit.weights, exchange the same two tensors' bytes, open it."""
    from labkit import weights

    publisher = weights.SigningKeyPair(*state["publisher"])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "safe.lkw"
        weights.seal(model, path, [state["device"][1]], signing_key=publisher, model_id="iml/alice")
        header, data = weights.read_header(path), bytearray(path.read_bytes())
        (a0, a1), (b0, b1) = ((t.begin, t.end) for t in map(header.parsed.tensor, SWAPPED))
        base = header.data_start
        data[base + a0:base + a1], data[base + b0:base + b1] = data[base + b0:base + b1], data[base + a0:base + a1]
        path.write_bytes(bytes(data))
        try:
            weights.open(path, state["device"][0], signer=publisher.public_key, model_id="iml/alice")
        except weights.WeightsError as err:
            return type(err).__name__
    return ""
