"""The IND-CPA game of a mode of operation of AES-128 (Boneh-Shoup ch. 5, "semantic security
against chosen plaintext attack"; Bellare, Desai, Jokipii, Rogaway, FOCS 1997, left-or-right).

The challenger draws a key and a bit b. The ``encrypt`` oracle takes two messages of equal length
``(m0, m1)`` and returns the encryption of ``m_b``, as often as the budget allows (asking
``(m, m)`` is an ordinary chosen-plaintext query). The adversary guesses b.

Any deterministic scheme loses: encrypt ``(m, m)``, then ``(m, m')``; the two ciphertexts are
equal exactly when b = 0. ECB (SP 800-38A 6.1) and CBC with a fixed IV are deterministic; CBC with
a random IV and CTR with a random initial counter block are IND-CPA secure (advantage at most
about q^2 L^2 / 2^128 for q queries of L blocks).
"""
from __future__ import annotations

from functools import partial

from Crypto.Cipher import AES
from Crypto.Util import Counter

from labkit.games import Game, GameError, as_bit, count_query, finish_once, new_state, random_bytes

__all__ = ["SCHEMES", "cpa_game", "encrypt", "repeat_adversary"]

#: scheme -> what it is. "cbc-fixed-iv" draws one IV per key and uses it for every message.
SCHEMES = {
    "ecb": "AES-ECB: each block encrypted alone",
    "cbc-fixed-iv": "AES-CBC with one IV per key, reused for every message (deterministic)",
    "cbc": "AES-CBC with a fresh random IV per message",
    "ctr": "AES-CTR with a fresh random initial counter block per message",
}


def encrypt(scheme: str, key: bytes, iv: bytes, message: bytes) -> bytes:
    """The scheme's ciphertext of ``message`` (a multiple of 16 bytes for ECB and CBC): the IV
    first, except for ECB."""
    if scheme == "ecb":
        return AES.new(key, AES.MODE_ECB).encrypt(message)
    if scheme in ("cbc", "cbc-fixed-iv"):
        return iv + AES.new(key, AES.MODE_CBC, iv=iv).encrypt(message)
    if scheme == "ctr":
        ctr = Counter.new(128, initial_value=int.from_bytes(iv, "big"))
        return iv + AES.new(key, AES.MODE_CTR, counter=ctr).encrypt(message)
    raise ValueError(f"scheme must be one of {sorted(SCHEMES)}, got {scheme!r}")


def _new(params: dict, token_bytes) -> dict:
    return new_state(token_bytes, params=params, key=token_bytes(16), fixed_iv=token_bytes(16))


def _message(m, scheme: str, max_bytes: int) -> bytes:
    if not isinstance(m, (bytes, bytearray)):
        raise GameError(f"messages are bytes, got {type(m).__name__}")
    if not 0 < len(m) <= max_bytes:
        raise GameError(f"messages are 1 to {max_bytes} bytes, got {len(m)}")
    if scheme != "ctr" and len(m) % 16:
        raise GameError(f"{scheme} encrypts whole 16-byte blocks, got {len(m)} bytes")
    return bytes(m)


def _oracle(state: dict, name: str, request: tuple):
    p = state["params"]
    if name != "encrypt":
        raise GameError(f"this game has the oracle 'encrypt', not {name!r}")
    if len(request) != 2:
        raise GameError("encrypt takes two messages (m0, m1) of equal length")
    m0, m1 = (_message(m, p["scheme"], p["max_bytes"]) for m in request)
    if len(m0) != len(m1):
        raise GameError(f"m0 and m1 must have the same length, got {len(m0)} and {len(m1)}")
    count_query(state, name, p["budget"])
    iv = state["fixed_iv"] if p["scheme"] == "cbc-fixed-iv" else random_bytes(state, 16)
    return encrypt(p["scheme"], state["key"], iv, m1 if state["b"] else m0)


def _finish(state: dict, guess) -> bool:
    finish_once(state)
    return as_bit(guess) == state["b"]


def cpa_game(scheme: str, *, budget: int = 16, max_bytes: int = 256) -> Game:
    """The left-or-right IND-CPA game of ``scheme`` (one of :data:`SCHEMES`)."""
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {sorted(SCHEMES)}, got {scheme!r}")
    for name, value in (("budget", budget), ("max_bytes", max_bytes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    public = {"scheme": scheme, "budget": budget, "max_bytes": max_bytes}
    return Game(f"IND-CPA: {scheme}", "distinguish", ("encrypt",), public, partial(_new, dict(public)),
                _oracle, _finish, f"{SCHEMES[scheme]}. encrypt(m0, m1) returns E(k, m_b). Guess b.")


def repeat_adversary(oracles) -> int:
    """Encrypt (m, m), then (m, m'): equal ciphertexts mean b = 0. Wins against every deterministic
    scheme; against a randomised one its advantage is at most the chance of a repeated IV."""
    m, other = bytes(16), b"\xff" * 16
    first = oracles.encrypt(m, m)
    return 0 if oracles.encrypt(m, other) == first else 1
