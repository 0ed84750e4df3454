"""GCM in practice: what goes wrong around a correct AES-GCM (chapter 04b).

* A nonce derived from the key and a tensor name, ``HKDF(key, name)``, looks random but is the
  same every time that tensor is sealed again: a weight update re-sealed under it reuses the
  (key, nonce) pair, and chapter 04's forbidden attack recovers H and forges
  (:func:`seal_with_deterministic_iv_UNSAFE`; ``labkit.weights.seal`` draws a fresh key and nonce
  per tensor per seal instead).
* AES-GCM is fast only with AES and carry-less multiply instructions; ChaCha20-Poly1305 (RFC 8439)
  needs neither (:func:`aead_throughput`, measured with pycryptodome).
"""
from __future__ import annotations

from dataclasses import dataclass

from Crypto.Cipher import AES, ChaCha20_Poly1305
from Crypto.Util import _cpu_features  # pycryptodome's only CPU probe (a private module)

from labkit import checks, gcm, hkdf, timing

__all__ = ["SealedTensor", "NONCE_BYTES", "deterministic_nonce_UNSAFE",
           "seal_with_deterministic_iv_UNSAFE", "open_sealed_tensor", "AEADS", "aead_seal", "aead_throughput",
           "cpu_has_aes_instructions"]

NONCE_BYTES = 12


@dataclass(frozen=True)
class SealedTensor:
    """One sealed tensor: its name (bound as associated data), the nonce, ciphertext and tag."""

    name: str
    nonce: bytes
    ciphertext: bytes
    tag: bytes

    @property
    def aad(self) -> bytes:
        return self.name.encode("utf-8")


def _check_name(name) -> str:
    if not isinstance(name, str) or not name:
        raise TypeError(f"tensor name must be a non-empty str, got {name!r}")
    return name


def deterministic_nonce_UNSAFE(key: bytes, name: str) -> bytes:
    """The notes' IV = HKDF-SHA256(key, info = tensor name), 12 bytes: a function of (key, name)
    alone, so it repeats whenever the same tensor is sealed again under the same key."""
    key = checks.check_bytes(key, what="key")
    return hkdf.derive(key, NONCE_BYTES, info=b"labkit tensor iv|" + _check_name(name).encode("utf-8"))


def seal_with_deterministic_iv_UNSAFE(key: bytes, name: str, data: bytes) -> SealedTensor:
    """UNSAFE, for the demonstration: AES-GCM with the deterministic nonce of
    :func:`deterministic_nonce_UNSAFE`. Sealing new data under the same name reuses the nonce."""
    nonce = deterministic_nonce_UNSAFE(key, name)
    ciphertext, tag = gcm.encrypt(key, nonce, checks.check_bytes(data, what="data"), name.encode("utf-8"))
    return SealedTensor(name, nonce, ciphertext, tag)


def open_sealed_tensor(key: bytes, sealed: SealedTensor) -> bytes:
    """The data of a :class:`SealedTensor`, or :class:`labkit.gcm.AuthenticationError` (nothing else)."""
    return gcm.decrypt(key, sealed.nonce, sealed.ciphertext, sealed.tag, sealed.aad)


def cpu_has_aes_instructions() -> dict[str, bool]:
    """Whether pycryptodome found AES-NI and carry-less multiply (PCLMULQDQ) on this CPU."""
    return {"aes_ni": bool(_cpu_features.have_aes_ni()), "clmul": bool(_cpu_features.have_clmul())}


def _aead(name: str, key: bytes, nonce: bytes):
    if name == "AES-256-GCM":
        return AES.new(key, AES.MODE_GCM, nonce=nonce)
    if name == "AES-256-GCM, portable code":
        return AES.new(key, AES.MODE_GCM, nonce=nonce, use_aesni=False, use_clmul=False)
    if name == "ChaCha20-Poly1305":
        return ChaCha20_Poly1305.new(key=key, nonce=nonce)
    raise ValueError(f"AEAD must be one of {AEADS}, got {name!r}")


#: The AEADs :func:`aead_throughput` compares; the portable AES-GCM is what a CPU without AES-NI
#: and carry-less multiply runs (pycryptodome's table-based AES and GHASH).
AEADS = ("AES-256-GCM", "AES-256-GCM, portable code", "ChaCha20-Poly1305")


def aead_seal(name: str, key: bytes, nonce: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
    """ciphertext || 16-byte tag of pycryptodome's AEAD ``name`` (one of :data:`AEADS`; 32-byte
    key, 12-byte nonce)."""
    key = checks.check_bytes(key, 32, what="key")
    nonce = checks.check_bytes(nonce, NONCE_BYTES, what="nonce")
    cipher = _aead(name, key, nonce)
    cipher.update(checks.check_bytes(aad, what="aad"))
    ciphertext, tag = cipher.encrypt_and_digest(checks.check_bytes(plaintext, what="plaintext"))
    return ciphertext + tag


def aead_throughput(size: int = 1 << 20, *, repeats: int = 3) -> dict[str, float]:
    """MB/s of each of :data:`AEADS` sealing ``size`` bytes with pycryptodome, best of ``repeats``
    (a measurement for the notebook, never asserted on)."""
    if not isinstance(size, int) or size <= 0:
        raise ValueError(f"size must be a positive number of bytes, got {size!r}")
    key, nonce, data = bytes(range(32)), bytes(NONCE_BYTES), bytes(size)
    return {name: size / timing.best_time(lambda: aead_seal(name, key, nonce, data), repeats) / 1e6
            for name in AEADS}
