"""Chapter 10's design task: the attacker suite that checks a student's key-delivery design.

The student designs how one individual model travels from the server to one phone, as two
functions (any construction; the chapter-09 container is one answer)::

    deliver(state, device_public_key, publisher, model_id, version) -> bytes     # on the server
    receive(blob, device_private_key, publisher_public_key, model_id, min_version) -> state

``state`` is a ``dict[str, torch.Tensor]``; ``publisher`` the server's Ed25519
:class:`~labkit.weights.SigningKeyPair` (its public half is pinned in the app); ``receive``
returns the model or raises (any exception is a refusal). :data:`THREAT_MODEL` states what the
design must resist, and :func:`attack_design` runs one attack per line of it against the two
functions, with fresh keys and weights from the OS CSPRNG on every run, and reports which
attacks the design stops.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Callable

import torch

from labkit import weights

__all__ = ["THREAT_MODEL", "DesignAttack", "DesignReport", "attack_design", "random_model"]

#: The stated threat model (surface, threat, what the attacker does); the design must stop each.
THREAT_MODEL = (
    ("transit", "disclosure", "an eavesdropper reads weights in the delivered bytes"),
    ("transit", "disclosure", "an eavesdropper links two deliveries of one model (equal bytes)"),
    ("device", "disclosure", "another phone, with its own private key, opens the delivery"),
    ("transit", "tampering", "an active attacker flips single bits across the delivery"),
    ("transit", "tampering", "the delivery is cut short"),
    ("transit", "tampering", "a delivery spliced from two genuine ones"),
    ("transit", "spoofing", "an outsider seals his own model for the phone's public key"),
    ("transit", "tampering", "an older genuine version is replayed"),
    ("storage", "spoofing", "another user's genuine model is served in place of this one"),
)


@dataclass(frozen=True)
class DesignAttack:
    """One attack of the suite and its outcome against a design."""

    surface: str
    threat: str
    attack: str
    stopped: bool
    detail: str


@dataclass(frozen=True)
class DesignReport:
    """What :func:`attack_design` found: whether a genuine delivery opens, and every attack."""

    works: bool
    problem: str
    attacks: tuple[DesignAttack, ...]

    @property
    def stopped(self) -> int:
        return sum(a.stopped for a in self.attacks)

    @property
    def secure(self) -> bool:
        """True when a genuine delivery opens and every attack of the threat model is stopped."""
        return self.works and self.stopped == len(THREAT_MODEL)

    def __str__(self) -> str:
        if not self.works:
            return f"the design does not deliver: {self.problem}"
        lines = [f"{a.surface:8} {a.threat:11} {a.attack:66} -> "
                 f"{'stopped' if a.stopped else 'NOT STOPPED'} ({a.detail})" for a in self.attacks]
        return "\n".join(lines + [f"{self.stopped} of {len(self.attacks)} attacks stopped"])


def random_model(shape: tuple[int, int] = (16, 16)) -> dict[str, torch.Tensor]:
    """A small two-layer model with CSPRNG-seeded weights (two same-shaped weight matrices)."""
    g = torch.Generator().manual_seed(secrets.randbits(63))
    return {"layer1.weight": torch.randn(*shape, generator=g), "layer1.bias": torch.randn(shape[0], generator=g),
            "layer2.weight": torch.randn(*shape, generator=g), "layer2.bias": torch.randn(shape[0], generator=g)}


def same_state(got, expected: dict[str, torch.Tensor]) -> bool:
    """True if ``got`` is a mapping with exactly ``expected``'s names and bit-identical tensors."""
    try:
        return (set(got) == set(expected)
                and all(torch.equal(torch.as_tensor(got[n]), expected[n]) for n in expected))
    except Exception:  # an answer of the wrong shape is simply not the model
        return False


def _raw(tensor: torch.Tensor) -> bytes:
    return tensor.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def attack_design(deliver: Callable, receive: Callable) -> DesignReport:
    """Run :data:`THREAT_MODEL`'s attacks against a design (fresh keys and weights every call)."""
    if not callable(deliver) or not callable(receive):
        raise TypeError("a design is two functions: deliver(...) and receive(...)")
    phone, other_phone = weights.generate_recipient_keypair(), weights.generate_recipient_keypair()
    publisher, outsider = weights.generate_signing_keypair(), weights.generate_signing_keypair()
    model, other_model = random_model(), random_model()
    mine, theirs = "iml/alice", "iml/bob"

    def send(state, *, signer=publisher, model_id=mine, version=2):
        return bytes(deliver(state, phone.public_key, signer, model_id, version))

    def opens(blob, *, key=phone.private_key, min_version=2):
        """What the phone gets: the tensors, or None when it refuses."""
        try:
            return receive(blob, key, publisher.public_key, mine, min_version)
        except Exception:
            return None

    try:
        genuine = send(model)
    except Exception as err:
        return DesignReport(False, f"deliver raised {type(err).__name__}: {err}", ())
    try:  # called directly, not through opens(): the student sees why a genuine delivery fails
        ok = same_state(receive(genuine, phone.private_key, publisher.public_key, mine, 2), model)
    except Exception as err:
        return DesignReport(False, f"receive raised {type(err).__name__}: {err}", ())
    if not ok:
        return DesignReport(False, "receive must return exactly the delivered tensors "
                                   "(a dict name -> tensor) for a genuine delivery", ())

    def refused(blob, **kw):
        got = opens(blob, **kw)
        return got is None or same_state(got, model)  # unchanged genuine weights harm nobody

    def verdict(blob, label: str, **kw):
        stopped = opens(blob, **kw) is None
        return stopped, "refused" if stopped else label

    outcomes = []
    windows = [_raw(t)[i:i + 16] for t in model.values() for i in range(0, 4 * t.numel() - 15, 16)]
    leaked = sum(w in genuine for w in windows)
    outcomes.append((leaked == 0, f"{leaked} of {len(windows)} 16-byte pieces of plaintext seen"))
    repeated = send(model) == genuine
    outcomes.append((not repeated, "the bytes repeat" if repeated else "a second delivery differs"))
    outcomes.append(verdict(genuine, "the other phone reads it", key=other_phone.private_key))
    spots = [0, len(genuine) - 1, secrets.randbelow(len(genuine))] + [len(genuine) * i // 16 for i in range(1, 16)]
    flips = []
    for spot in spots:
        tampered = bytearray(genuine)
        tampered[spot] ^= 1 << secrets.randbelow(8)
        flips.append(refused(bytes(tampered)))
    outcomes.append((all(flips), f"{sum(flips)} of {len(flips)} flips refused"))
    cuts = [refused(c) for c in (genuine[:-1], genuine[: len(genuine) // 2], b"")]
    outcomes.append((all(cuts), f"{sum(cuts)} of {len(cuts)} cuts refused"))
    second = send(other_model)
    splices = []
    for k in (len(genuine) * i // 8 for i in range(1, 8)):
        got = opens(genuine[:k] + second[k:])
        splices.append(got is None or same_state(got, model) or same_state(got, other_model))
    outcomes.append((all(splices), f"{sum(splices)} of {len(splices)} splices refused"))
    outcomes.append(verdict(send(other_model, signer=outsider, version=99), "the outsider's model opens"))
    outcomes.append(verdict(send(model, version=1), "version 1 opens after version 2"))
    outcomes.append(verdict(send(other_model, model_id=theirs), "bob's model opens as alice's"))
    attacks = tuple(DesignAttack(s, t, a, bool(stopped), detail)
                    for (s, t, a), (stopped, detail) in zip(THREAT_MODEL, outcomes))
    return DesignReport(True, "", attacks)
