"""Existential unforgeability under chosen-message attack (EUF-CMA; Goldwasser, Micali, Rivest,
SIAM J. Comput. 17(2), 1988; Boneh-Shoup Sec. 6.1) for AES-GCM's tag (SP 800-38D).

The challenger draws an AES-128 key. The ``seal`` oracle takes ``(aad, plaintext)`` and returns
``(nonce, ciphertext, tag)``; the adversary wins with a forgery ``(nonce, aad, ciphertext, tag)``
that authenticated decryption accepts and whose ``(nonce, aad, ciphertext)`` no ``seal`` answer
contained (replaying a sealed message is not a forgery).

With ``nonce_reuse=True`` the sender has the bug chapter 04 breaks: one nonce for every message.
Two sealed messages give a polynomial whose roots contain the GHASH key H (Joux, "Authentication
failures in NIST version of GCM", 2006), and H gives a tag for any ciphertext. With fresh random
96-bit nonces, a forger's success is at most about (q + 1) L / 2^128.
"""
from __future__ import annotations

from functools import partial

from Crypto.Cipher import AES

from labkit.games import Game, GameError, count_query, finish_once, new_state, random_bytes

__all__ = ["gcm_forgery_game"]


def _bytes(value, what: str, max_bytes: int) -> bytes:
    if not isinstance(value, (bytes, bytearray)):
        raise GameError(f"{what} must be bytes, got {type(value).__name__}")
    if len(value) > max_bytes:
        raise GameError(f"{what} is at most {max_bytes} bytes, got {len(value)}")
    return bytes(value)


def _new(params: dict, token_bytes) -> dict:
    return new_state(token_bytes, params=params, key=token_bytes(16), nonce=token_bytes(12), sealed=[])


def _oracle(state: dict, name: str, request: tuple):
    p = state["params"]
    if name != "seal":
        raise GameError(f"this game has the oracle 'seal', not {name!r}")
    if len(request) != 2:
        raise GameError("seal takes (aad, plaintext)")
    aad, plaintext = _bytes(request[0], "aad", p["max_bytes"]), _bytes(request[1], "plaintext", p["max_bytes"])
    count_query(state, name, p["budget"])
    nonce = state["nonce"] if p["nonce_reuse"] else random_bytes(state, 12)
    cipher = AES.new(state["key"], AES.MODE_GCM, nonce=nonce)
    cipher.update(aad)
    ciphertext, tag = cipher.encrypt_and_digest(plaintext)
    state["sealed"].append((nonce, aad, ciphertext))
    return nonce, ciphertext, tag


def _finish(state: dict, guess) -> bool:
    finish_once(state)
    if not isinstance(guess, (tuple, list)) or len(guess) != 4:
        raise GameError("a forgery is (nonce, aad, ciphertext, tag)")
    nonce, aad, ciphertext, tag = (_bytes(v, w, 1 << 16) for v, w in
                                   zip(guess, ("nonce", "aad", "ciphertext", "tag")))
    if len(nonce) != 12 or len(tag) != 16:
        raise GameError("a forgery has a 12-byte nonce and a 16-byte tag")
    if (nonce, aad, ciphertext) in state["sealed"]:
        return False  # a replay, not a forgery
    cipher = AES.new(state["key"], AES.MODE_GCM, nonce=nonce)
    cipher.update(aad)
    try:
        cipher.decrypt_and_verify(ciphertext, tag)
    except ValueError:
        return False
    return True


def gcm_forgery_game(*, nonce_reuse: bool, budget: int = 4, max_bytes: int = 64) -> Game:
    """The EUF-CMA game of AES-128-GCM: with one nonce for every ``seal`` (``nonce_reuse=True``)
    or a fresh random nonce each time."""
    if not isinstance(nonce_reuse, bool):
        raise TypeError("nonce_reuse must be True or False")
    for name, value in (("budget", budget), ("max_bytes", max_bytes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    public = {"nonce_reuse": nonce_reuse, "budget": budget, "max_bytes": max_bytes}
    what = "one nonce for every message" if nonce_reuse else "a fresh random nonce per message"
    return Game(f"EUF-CMA: AES-GCM, {what}", "forge", ("seal",), public, partial(_new, dict(public)),
                _oracle, _finish, f"seal(aad, plaintext) -> (nonce, ciphertext, tag), {what}. "
                "Win with a new (nonce, aad, ciphertext, tag) that verifies.")
