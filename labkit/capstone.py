"""Individual ML models (chapter 10): a server issues each user a watermarked, encrypted copy.

The setting of the talk *Cryptographic protection of ML models* (vixentael, Cossack Labs): an app
moves inference to the phone, so the backend generates an **individual model** (IML) per user,
stores it briefly, and the app downloads and runs it locally. Losing one IML is tolerable; losing
many is not. This module puts the lab's pieces together:

- chapter 08 (``labkit.backdoor``): every copy carries the user's own signature watermark and a
  secret response key (:class:`labkit.backdoor.protocols.Licensor`), so a leaked copy is traced
  by black-box queries, and a leaker gets an innocent accused with probability at most alpha;
- chapter 09 (``labkit.weights``): every copy is sealed with AES-256-GCM under a fresh content key,
  delivered to the device's X25519 key with HPKE (RFC 9180), in a header signed by the server;
- the talk's traditional controls around them: API authentication, per-user request limits,
  device-key pinning, short-lived one-time download links, a model version that refuses replays.

:class:`ModelServer` and :class:`Device` are the two roles; :class:`ThreatLedger` records attack
attempts (surface x STRIDE threat) and which control stopped each. Everything is in memory; every
key (server, licences, devices) comes from the OS CSPRNG, never from a seed.
"""
from __future__ import annotations

import hashlib
import hmac
import html
import os
import secrets
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from labkit import weights
from labkit.backdoor import BackdooredModel
from labkit.digits import make_classifier
from labkit.backdoor.protocols import Licensor, TraceResult
from labkit.backdoor.trigger import RESPONSE_KEY_BYTES
from labkit.backdoor.trigger import IDENTITY_BYTES, verify_key_bytes

__all__ = [
    "ServiceError",
    "ApiTokenRejected",
    "RateLimitError",
    "DeviceMismatchError",
    "LinkExpiredError",
    "Delivery",
    "ModelServer",
    "Device",
    "pack_model",
    "unpack_model",
    "SURFACES",
    "THREATS",
    "THREATS_LEFT_OUT",
    "ThreatLedger",
]

VERIFY_KEY = "verifier.verify_key"
IDENTITY = "verifier.identity"
RESPONSE_KEY = "verifier.response_key"


# -- errors the service answers with -------------------------------------------------------------
class ServiceError(Exception):
    """A request the model service refuses (base class)."""


class ApiTokenRejected(ServiceError):
    """Unknown user or wrong API token (the service's login check; not the AES-GCM tag failure,
    which is :class:`labkit.gcm.AuthenticationError`, nor a container's ``weights.IntegrityError``)."""


class RateLimitError(ServiceError):
    """The user has asked for more individual models than allowed."""


class DeviceMismatchError(ServiceError):
    """The request names a device key other than the one pinned to the user."""


class LinkExpiredError(ServiceError):
    """The download link is unknown, already used or past its lifetime."""


# -- packaging: the verifier travels inside the sealed file --------------------------------------
def pack_model(model: BackdooredModel) -> dict[str, torch.Tensor]:
    """A watermarked model as tensors: the classifier's weights plus its verifier's keys and identity.

    The verifier is code (chapter 08); what makes a copy individual is its verify key, identity and
    secret response key, so they are stored as ``uint8`` tensors and sealed (encrypted and
    authenticated) with the weights: the response key must never travel in the clear.
    """
    if not isinstance(model, BackdooredModel):
        raise TypeError(f"model must be a labkit.backdoor.BackdooredModel, got {type(model).__name__}")
    state = {f"classifier.{k}": v.detach().clone() for k, v in model.classifier.state_dict().items()}
    state[VERIFY_KEY] = torch.frombuffer(bytearray(verify_key_bytes(model.verify_key)), dtype=torch.uint8)
    identity = (model.identity or b"").ljust(IDENTITY_BYTES, b"\x00")
    state[IDENTITY] = torch.frombuffer(bytearray(identity), dtype=torch.uint8)
    if model.response_key is not None:
        state[RESPONSE_KEY] = torch.frombuffer(bytearray(model.response_key), dtype=torch.uint8)
    return state


def unpack_model(state: dict[str, torch.Tensor], *, arch: str = "mlp") -> BackdooredModel:
    """Rebuild the runnable model from :func:`pack_model`'s tensors (strict: every weight must fit)."""
    missing = {VERIFY_KEY, IDENTITY} - set(state)
    if missing:
        raise ValueError(f"not an individual model: missing {sorted(missing)}")
    classifier = make_classifier(arch)
    prefix = "classifier."
    classifier.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}, strict=True)
    classifier.eval()
    identity = bytes(state[IDENTITY].tolist()).rstrip(b"\x00")
    response_key = bytes(state[RESPONSE_KEY].tolist()) if RESPONSE_KEY in state else None
    if response_key is not None and len(response_key) != RESPONSE_KEY_BYTES:
        raise ValueError(f"{RESPONSE_KEY} must hold {RESPONSE_KEY_BYTES} bytes")
    return BackdooredModel(classifier, bytes(state[VERIFY_KEY].tolist()), identity=identity or None,
                           response_key=response_key)


# -- the two roles -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Delivery:
    """What the API returns: a one-time download link and what the app must pin to open the file."""

    link: str
    model_id: str
    version: int
    server_public_key: bytes  # Ed25519 key that signs every container header


@dataclass
class _Account:
    token_digest: bytes
    device_key: bytes | None = None
    issued: int = 0


class ModelServer:
    """The backend: authenticates users, issues individual models, stores them briefly, traces leaks.

    ``base_model``: the trained classifier every copy starts from; ``images``: natural inputs the
    tracer hides triggers in. Controls (from the talk): API tokens (only a SHA-256 is stored),
    ``max_models`` per user, the first device key pinned per user, download links that expire after
    ``link_ttl`` seconds and work once (the file is deleted when fetched), a signed model version.
    ``seed`` is accepted for old calls and chooses nothing: every key comes from the OS CSPRNG, so
    two servers built with the same seed share no key.
    """

    def __init__(self, base_model: torch.nn.Module, images: torch.Tensor, *, seed: int | None = None, max_models: int = 3,
                 link_ttl: float = 300.0, clock: Callable[[], float] = time.time, arch: str = "mlp") -> None:
        if not isinstance(base_model, torch.nn.Module):
            raise TypeError(f"base_model must be a torch nn.Module, got {type(base_model).__name__}")
        if type(max_models) is not int or max_models < 1:
            raise ValueError(f"max_models must be a positive int, got {max_models!r}")
        self.licensor = Licensor(base_model, images)
        self.signing = weights.generate_signing_keypair()
        self.max_models, self.link_ttl, self.clock, self.arch = max_models, float(link_ttl), clock, arch
        self.accounts: dict[str, _Account] = {}
        self._storage = tempfile.TemporaryDirectory(prefix="labkit-iml-storage-")  # removed with the server
        self.storage = Path(self._storage.name)
        self.links: dict[str, tuple[Path, float]] = {}
        self.log: list[str] = []  # the audit log: events, never tokens or links

    @property
    def public_key(self) -> bytes:
        return self.signing.public_key

    def register(self, user: str) -> str:
        """Create an account; return its API token (shown once; the server keeps only a hash)."""
        if not isinstance(user, str) or not 0 < len(user.encode()) <= IDENTITY_BYTES:
            raise ValueError(f"user must be a name of 1 to {IDENTITY_BYTES} bytes, got {user!r}")
        if user in self.accounts:
            raise ValueError(f"user {user!r} already exists")
        token = secrets.token_urlsafe(24)
        self.accounts[user] = _Account(hashlib.sha256(token.encode()).digest())
        self.log.append(f"register {user}")
        return token

    def _authenticate(self, user: str, token: str) -> _Account:
        account = self.accounts.get(user)
        given = hashlib.sha256(str(token).encode()).digest()
        if account is None or not hmac.compare_digest(account.token_digest, given):
            self.log.append(f"auth-failure {user}")
            raise ApiTokenRejected(f"unknown user or wrong API token for {user!r}")
        return account

    def request_model(self, user: str, token: str, device_key: bytes) -> Delivery:
        """Issue ``user`` an individual model sealed for ``device_key``; return the download link."""
        account = self._authenticate(user, token)
        if account.device_key is None:
            account.device_key = bytes(device_key)  # trust on first use: pin the device
        elif not hmac.compare_digest(account.device_key, bytes(device_key)):
            self.log.append(f"device-mismatch {user}")
            raise DeviceMismatchError(f"{user!r} is pinned to another device key")
        if account.issued >= self.max_models:
            self.log.append(f"rate-limit {user}")
            raise RateLimitError(f"{user!r} already received {account.issued} models (limit {self.max_models})")
        if user in self.licensor.licensees:
            model = self.licensor.licensed_copy(user)
        else:
            model = self.licensor.issue(user)
        account.issued += 1
        model_id, version = f"iml/{user}", account.issued
        path = self.storage / f"{secrets.token_hex(16)}.lkw"
        weights.seal(pack_model(model), path, [account.device_key], signing_key=self.signing,
                     model_id=model_id, version=version, metadata={"arch": self.arch})
        link = secrets.token_urlsafe(16)
        self.links[link] = (path, self.clock() + self.link_ttl)
        self.log.append(f"issue {model_id} v{version}")
        return Delivery(link, model_id, version, self.public_key)

    def download(self, link: str) -> bytes:
        """The sealed file behind a link, once and only before it expires (then it is deleted)."""
        entry = self.links.pop(link, None)
        if entry is None:
            raise LinkExpiredError("unknown or already used download link")
        path, expires = entry
        try:
            if self.clock() > expires:
                raise LinkExpiredError("the download link has expired")
            return path.read_bytes()
        finally:
            path.unlink(missing_ok=True)  # one download, then gone; unfetched files go in purge_expired

    def purge_expired(self) -> int:
        """Delete the files of links past their lifetime (the talk's hourly clean-up); return how many."""
        now = self.clock()
        expired = [link for link, (_, expires) in self.links.items() if now > expires]
        for link in expired:
            self.links.pop(link)[0].unlink(missing_ok=True)
        if expired:
            self.log.append(f"purge {len(expired)}")
        return len(expired)

    def stored_files(self) -> list[Path]:
        """What an attacker with storage access finds right now."""
        return sorted(self.storage.glob("*.lkw"))

    def trace(self, oracle, *, n: int = 16, alpha: float = 1e-6) -> list[str]:
        """The users a leaked black box points at (chapter 08's sound tracer; innocents <= alpha)."""
        return self.licensor.trace(oracle, n=n, alpha=alpha)

    def trace_report(self, oracle, *, n: int = 16, alpha: float = 1e-6) -> TraceResult:
        """:meth:`trace` with every user's match count and the threshold."""
        return self.licensor.trace_report(oracle, n=n, alpha=alpha)


class Device:
    """The app on one phone: its X25519 key never leaves it; it stores the sealed file and opens it
    (verifying the server's signature, the model id and the version) every time it runs the model.

    All three are pinned: the signature alone would accept any model the server ever sealed for
    this phone, so without ``model_id`` a substituted file opens, and without ``min_version`` (the
    highest version installed so far) a rolled-back one does."""

    def __init__(self, user: str, server_public_key: bytes) -> None:
        self.user = user
        self.keys = weights.generate_recipient_keypair()
        self.server_public_key = bytes(server_public_key)
        self._folder = tempfile.TemporaryDirectory(prefix=f"labkit-device-{user}-")  # removed with the device
        self.folder = Path(self._folder.name)
        self.path = self.folder / "model.lkw"
        self.model_id, self.min_version = f"iml/{user}", 1

    @property
    def public_key(self) -> bytes:
        return self.keys.public_key

    def check(self, sealed: bytes) -> BackdooredModel:
        """Open a downloaded file without installing it: the model, or the container's refusal."""
        candidate = self.folder / "incoming.lkw"
        candidate.write_bytes(sealed)
        try:
            return self._open(candidate)
        finally:
            candidate.unlink(missing_ok=True)

    def install(self, sealed: bytes, delivery: Delivery | None = None) -> BackdooredModel:
        """Check a downloaded file opens for this device, then keep it (still sealed) on disk."""
        model = self.check(sealed)
        staged = self.folder / "staged.lkw"
        staged.write_bytes(sealed)
        os.replace(staged, self.path)  # atomic: the old model stays until the new one is complete
        self.min_version = max(self.min_version, weights.read_header(self.path).version)
        return model

    def _open(self, path: Path) -> BackdooredModel:
        state = weights.open(path, self.keys.private_key, signer=self.server_public_key,
                             model_id=self.model_id, min_version=self.min_version)
        arch = weights.read_header(path).parsed.metadata.get("arch", "mlp")
        return unpack_model(state, arch=arch)

    def load(self) -> BackdooredModel:
        """Open the stored model for one session (the plaintext lives only in memory)."""
        return self._open(self.path)


# -- the threat model ----------------------------------------------------------------------------
SURFACES = ("API", "storage", "transit", "device")
# STRIDE has six threats. Two are left out of this ledger: repudiation (denying an action; its
# control, a tamper-evident audit log signed by a third party, is not built here: ``ModelServer.log``
# is a plain list the server itself could rewrite) and elevation of privilege (gaining rights one
# was not granted; the service has a single role per user, no admin API to escalate to).
THREATS_LEFT_OUT = {
    "repudiation": "non-repudiation: needs a signed, append-only audit log, which this server lacks",
    "elevation of privilege": "authorization: one role per user and no admin surface to escalate to",
}
THREATS = {  # the four STRIDE threats of the talk this lab attacks, and the property each attacks
    "spoofing": "authenticity",
    "tampering": "integrity",
    "disclosure": "confidentiality",
    "denial of service": "availability",
}
STOPPED_BY = (ServiceError, weights.WeightsError)


@dataclass
class Attempt:
    """One attack tried in the notebook and what happened."""

    surface: str
    threat: str
    attack: str
    control: str
    outcome: str = "not run"
    blocked: bool = False


@dataclass
class ThreatLedger:
    """Attack attempts grouped by surface and threat; :meth:`attempt` runs one and records the outcome.

    An attempt is *blocked* when the code inside raises one of the service's or the container's
    refusals (:class:`ServiceError`, :class:`labkit.weights.WeightsError`) or, for attacks whose
    control is detection rather than refusal, when the code calls ``stopped(reason)``.
    """

    attempts: list[Attempt] = field(default_factory=list)

    @contextmanager
    def attempt(self, surface: str, threat: str, attack: str, *, control: str):
        if surface not in SURFACES:
            raise ValueError(f"surface must be one of {SURFACES}, got {surface!r}")
        if threat not in THREATS:
            raise ValueError(f"threat must be one of {tuple(THREATS)}, got {threat!r}")
        record = Attempt(surface, threat, attack, control)
        self.attempts.append(record)

        def stopped(reason: str) -> None:
            record.blocked, record.outcome = True, f"detected: {reason}"

        try:
            yield stopped
        except STOPPED_BY as err:
            record.blocked, record.outcome = True, f"refused: {type(err).__name__}"
        else:
            if not record.blocked:
                record.outcome = "NOT STOPPED"
        print(f"[{surface} / {threat}] {attack}\n    -> {record.outcome} (control: {control})")

    def rows(self) -> list[tuple[str, str, str, str, str, str]]:
        return [(a.surface, a.threat, THREATS[a.threat], a.attack, a.control, a.outcome) for a in self.attempts]

    def table(self) -> str:
        """The threat model as a plain-text table (deterministic: fit for nbval)."""
        lines = []
        for surface in SURFACES:
            for a in (a for a in self.attempts if a.surface == surface):
                lines.append(f"{surface:8} {a.threat:18} {a.attack}\n{'':27} -> {a.outcome}  [{a.control}]")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        head = "".join(f"<th style='text-align:left'>{h}</th>" for h in
                       ("surface", "threat", "property", "attack", "control", "outcome"))
        body = []
        for row in self.rows():
            colour = "#1a7f37" if not row[-1].startswith("NOT") else "#b3261e"
            cells = "".join(f"<td style='text-align:left'>{html.escape(c)}</td>" for c in row[:-1])
            body.append(f"<tr>{cells}<td style='text-align:left;color:{colour}'>{html.escape(row[-1])}</td></tr>")
        return f"<table><tr>{head}</tr>{''.join(body)}</table>"

    def coverage(self) -> np.ndarray:
        """Blocked attempts per (surface, threat): the matrix the notebook draws."""
        grid = np.zeros((len(SURFACES), len(THREATS)), dtype=int)
        for a in self.attempts:
            if a.blocked:
                grid[SURFACES.index(a.surface), list(THREATS).index(a.threat)] += 1
        return grid
