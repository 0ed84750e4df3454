"""The signature backdoor's two security notions as games (Goldwasser, Kim, Vaikuntanathan, Zamir,
FOCS 2022: black-box undetectability and non-replicability).

**Undetectability** (:func:`detection_game`): the challenger deploys the clean classifier (b = 0)
or the same classifier with the verifier of a fresh Ed25519 key beside it (b = 1), and answers
``classify`` queries. A detector that has seen no trigger has advantage 0 unless it forges a
signature: the two models differ only on inputs carrying a valid signature. With ``seen > 0`` the
``seen`` oracle also hands out triggers the owner published; replaying one tells the models apart
at once. So the backdoor is undetectable only against a detector that has seen no trigger.

**Non-replicability** (:func:`replication_game`): the detector has seen triggers and may query the
backdoored model; it wins with a *new* trigger the model obeys (signed content or target not among
those seen). Replaying a seen trigger is not a win, exactly as EUF-CMA excludes signed messages;
winning means forging Ed25519 (RFC 8032).

**Ownership under the naive judge** (:func:`ownership_game`, EUF-CMA for the statement "key K
owns this model"): the challenger deploys the owner's watermarked model; the adversary, who never
had the owner's key, wins with a claim that :func:`labkit.backdoor.naive.naive_judge_ownership_UNSAFE`
accepts under a key that is not the owner's. Replaying the owner's own claim proves the owner's
ownership and does not count. The naive judge loses this game to a claimant that signs the labels
the model already gives (chapter 08, exercise 08.5); the sound judge of
:mod:`labkit.backdoor.protocols` chooses the targets itself.

The classifier is chapter 08's trained MLP (:func:`labkit.backdoor.make_demo`, public); images are
32x32 uint8 pixels (requests and replies are numpy arrays and ints).
"""
from __future__ import annotations

import functools
from functools import partial

import numpy as np
import torch
from Crypto.PublicKey import ECC

from labkit import backdoor, digits
from labkit.backdoor import BackdooredModel, embed_trigger
from labkit.backdoor.naive import OwnershipClaim, naive_judge_ownership_UNSAFE
from labkit.backdoor.protocols import label_oracle
from labkit.backdoor.trigger import content_bytes, verify_key_bytes, verify_triggers
from labkit.digits import from_pixels, to_pixels
from labkit.games import Game, GameError, as_bit, count_query, finish_once, new_state, random_bytes

__all__ = ["detection_game", "replication_game", "ownership_game", "replay_detector", "public_images"]

NUM_CLASSES = 10


ARCHS = ("mlp", "cnn")


@functools.lru_cache(maxsize=2)
def _setup(arch: str):
    """The public classifier (chapter 08's, trained once per process) and the natural images
    (pixels) every game starts from."""

    demo = backdoor.make_demo(0, arch=arch)
    return demo.clean_model.eval(), digits.to_pixels(demo.inputs).reshape(-1, 32, 32)


def public_images(arch: str = "mlp") -> np.ndarray:
    """The natural test images (uint8, (n, 32, 32)) the games draw from; public."""
    return _setup(arch)[1].copy()


def _keys(seed: bytes):

    signing = ECC.construct(curve="Ed25519", seed=seed)
    return signing, signing.public_key()


def _label(model, pixels: np.ndarray) -> int:

    with torch.no_grad():
        return int(model(from_pixels(pixels).reshape(1, 1, 32, 32)).argmax(1)[0])


def _pixels(value) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except Exception:
        raise GameError("an image is a (32, 32) array of ints 0..255") from None
    if arr.shape != (32, 32) or not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool):
        raise GameError(f"an image is a (32, 32) array of ints 0..255, got {arr.dtype} {arr.shape}")
    if arr.min() < 0 or arr.max() > 255:
        raise GameError("pixel values lie in 0..255")
    return arr.astype(np.uint8)


def _new(params: dict, token_bytes) -> dict:

    state = new_state(token_bytes, params=params, signing_seed=token_bytes(32), seen=[])
    classifier, images = _setup(params["arch"])
    signing, _ = _keys(state["signing_seed"])
    while len(state["seen"]) < params["seen"]:
        index = int.from_bytes(random_bytes(state, 4), "big") % len(images)
        natural = _label(classifier, images[index])
        target = (natural + 1 + random_bytes(state, 1)[0] % (NUM_CLASSES - 1)) % NUM_CLASSES
        triggered = embed_trigger(from_pixels(images[index]).reshape(1, 32, 32), target, signing)
        pixels = to_pixels(triggered).reshape(32, 32)
        if _label(classifier, pixels) != target:  # the owner publishes triggers the bare classifier does not obey
            state["seen"].append((pixels.tobytes(), int(target)))
    return state


def _model(state: dict, backdoored: bool):

    classifier = _setup(state["params"]["arch"])[0]
    return BackdooredModel(classifier, _keys(state["signing_seed"])[1]) if backdoored else classifier


def _oracle(state: dict, name: str, request: tuple):
    p = state["params"]
    if name not in p["oracles"]:
        raise GameError(f"this game has the oracles {p['oracles']}, not {name!r}")
    if len(request) != 1:
        raise GameError(f"{name} takes one argument")
    if name == "seen":
        j = request[0]
        if isinstance(j, bool) or not isinstance(j, int) or not 0 <= j < len(state["seen"]):
            raise GameError(f"seen(j) takes j in 0..{len(state['seen']) - 1}")
        raw, target = state["seen"][j]
        return np.frombuffer(raw, dtype=np.uint8).reshape(32, 32).copy(), target
    pixels = _pixels(request[0])
    count_query(state, name, p["budget"])
    backdoored = p["game"] in ("replicate", "own") or bool(state["b"])
    return _label(_model(state, backdoored), pixels)


def _finish_detect(state: dict, guess) -> bool:
    finish_once(state)
    return as_bit(guess) == state["b"]


def _finish_replicate(state: dict, guess) -> bool:

    finish_once(state)
    if not isinstance(guess, (tuple, list)) or len(guess) != 2:
        raise GameError("a new trigger is (pixels, target)")
    pixels, target = _pixels(guess[0]), guess[1]
    if isinstance(target, bool) or not isinstance(target, (int, np.integer)) or not 0 <= target < NUM_CLASSES:
        raise GameError(f"the target is a label 0..{NUM_CLASSES - 1}")
    seen = {(content_bytes(np.frombuffer(raw, np.uint8).reshape(32, 32)), t) for raw, t in state["seen"]}
    if (content_bytes(pixels), int(target)) in seen:
        return False  # a replay of a seen trigger, not a new one
    verify_key = _keys(state["signing_seed"])[1]
    return int(verify_triggers(from_pixels(pixels).reshape(1, 1, 32, 32), verify_key)[0]) == int(target)


def _finish_ownership(state: dict, guess) -> bool:

    finish_once(state)
    if not isinstance(guess, (tuple, list)) or len(guess) != 3:
        raise GameError("a claim is (pixels of the signed queries (n, 32, 32), targets, verify key bytes)")
    queries, targets, verify_key = guess
    pixels = np.stack([_pixels(q) for q in queries]) if len(queries) else None
    labels = np.asarray(targets)
    if pixels is None or labels.shape != (len(pixels),) or not np.issubdtype(labels.dtype, np.integer):
        raise GameError("a claim has one integer target per query, and at least one query")
    if not isinstance(verify_key, (bytes, bytearray)) or len(verify_key) != 32:
        raise GameError("the claimed verify key is 32 raw Ed25519 bytes")
    owner = verify_key_bytes(_keys(state["signing_seed"])[1])
    if bytes(verify_key) == owner:
        return False  # the owner's key: at best a replay of the owner's true claim
    claim = OwnershipClaim(from_pixels(pixels).unsqueeze(1), labels.astype(np.int64), bytes(verify_key))
    try:
        verdict = naive_judge_ownership_UNSAFE(claim, label_oracle(_model(state, True)))
    except (TypeError, ValueError):
        return False  # a claim the judge cannot read proves nothing
    return bool(verdict.owned)


def _check(seen, budget, arch) -> None:
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
    for name, value, low in (("seen", seen, 0), ("budget", budget, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")


def detection_game(*, seen: int = 0, budget: int = 64, arch: str = "mlp") -> Game:
    """Clean classifier (b = 0) or backdoored (b = 1) behind ``classify``; with ``seen > 0`` the
    detector also gets ``seen(j)`` -> (pixels, target), the owner's published triggers.
    ``arch``: chapter 08's MLP or CNN classifier."""
    _check(seen, budget, arch)
    oracles = ("classify", "seen") if seen else ("classify",)
    public = {"game": "detect", "seen": seen, "budget": budget, "oracles": oracles, "arch": arch}
    return Game(f"undetectability, {seen} trigger(s) seen", "distinguish", oracles, public,
                partial(_new, dict(public)), _oracle, _finish_detect,
                "classify(pixels) -> label of the clean (b = 0) or backdoored (b = 1) model. Guess b.")


def replication_game(*, seen: int = 4, budget: int = 64, arch: str = "mlp") -> Game:
    """Forge a new trigger for the backdoored model after seeing ``seen`` of the owner's."""
    _check(seen, budget, arch)
    public = {"game": "replicate", "seen": seen, "budget": budget, "oracles": ("classify", "seen"),
              "arch": arch}
    return Game(f"non-replicability, {seen} trigger(s) seen", "forge", ("classify", "seen"), public,
                partial(_new, dict(public)), _oracle, _finish_replicate,
                "Win with (pixels, target): a valid trigger not among those seen.")


def replay_detector(oracles) -> int:
    """Replays every seen trigger: all obeyed means the backdoored model (1)."""
    for j in range(oracles.public["seen"]):
        pixels, target = oracles.seen(j)
        if oracles.classify(pixels) != target:
            return 0
    return 1


def ownership_game(*, budget: int = 256, arch: str = "mlp") -> Game:
    """Prove ownership of the owner's deployed model to the naive judge under a key of your own;
    ``classify`` gives black-box access to the model."""
    _check(0, budget, arch)
    public = {"game": "own", "seen": 0, "budget": budget, "oracles": ("classify",), "arch": arch,
              "judge": "naive (labkit.backdoor.naive.naive_judge_ownership_UNSAFE)"}
    return Game("ownership before the naive judge", "forge", ("classify",), public,
                partial(_new, dict(public)), _oracle, _finish_ownership,
                "Win with a claim (queries, targets, verify key) the naive judge accepts under a key "
                "that is not the owner's.")
