"""Exercises of unit 04b (modes in practice): the padding oracle, HKDF-Expand, deterministic IVs.

The padding-oracle challenge hands out a server over a fresh per-run key (only the oracle, the IV
and the ciphertext: the key and the server live in the challenge service, which also judges the
answer); the other checkers recompute their answers with labkit.
"""
from labkit import hkdf
from labkit.exercises import _session, check_function, exercise
from labkit.exercises.quiz import quiz


def padding_oracle_challenge() -> dict:
    """Exercise 04.10: an intercepted AES-CBC ciphertext, its IV, and ``oracle(iv, ciphertext)``, the
    server that answers True when the padding is valid (the service counts ``oracle.queries``)."""
    run = _session.run("04.10")
    return {"iv": run.public["iv"], "ciphertext": run.public["ciphertext"],
            "oracle": _session.ServedOracle(run, "padding", encode=lambda iv, ct: [bytes(iv), bytes(ct)])}


@exercise(
    "04.10",
    "the last plaintext block (16 bytes, padding included) of padding_oracle_challenge()['ciphertext']",
    hint=("Send the last ciphertext block with a forged block before it: the server decrypts it to "
          "D_K(C) xor forged, and tells you whether that ends in valid padding.",
          "Work from the last byte: try all 256 values of the forged byte until the padding is "
          "accepted; then D_K(C) at that byte is your value xor the pad length. Set the bytes you "
          "know so they decrypt to the next pad length, and move one byte left.",
          "At the end xor D_K(C) with the real block before it. For the very last byte, a hit may "
          "be a longer padding by chance: change the byte before it and ask again."),
    kind="attack", remote=True,
)
def _padding_oracle(answer):
    return _session.answer_run("04.10", bytes(answer))


def _expand_inputs(rng) -> tuple:
    prk = bytes(rng.getrandbits(8) for _ in range(hkdf.HASH_LENGTH))
    info = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 24)))
    return prk, info, rng.randint(0, 8 * hkdf.HASH_LENGTH)


@exercise(
    "04.11",
    "hkdf_expand(prk, info, length): HKDF-Expand with HMAC-SHA-256 (RFC 5869 2.3)",
    hint=("Expand chains HMAC blocks: each block is the HMAC under PRK of the previous block, the "
          "info and a one-byte counter.",
          "T(0) is empty; T(i) = HMAC-SHA-256(PRK, T(i-1) || info || i) with i as one byte from 1; "
          "join T(1), T(2), ... and keep the first length bytes (the standard library's hmac and "
          "hashlib do the HMAC)."),
    kind="implement",
)
def _hkdf_expand(candidate):
    return check_function(candidate, hkdf.expand, _expand_inputs, trials=30, name="hkdf_expand")


quiz(
    '04.12',
    'CTR with fresh counters is IND-CPA secure. Why does GCM still add a tag?',
    [
     'To make encryption faster.',
     'Because IND-CPA says nothing about tampering: CTR is malleable (flipping a ciphertext bit flips the same plaintext bit), while authenticated encryption also requires that every forged or modified ciphertext is rejected.',
     'Because CTR leaks the key after 2^32 blocks.',
     'To pad the message to whole blocks.',
    ],
    hint=("Exercise 04.6's target ciphertext was made by flipping bits: what stopped it?",
          'The padding oracle of 04.10 learns from modified ciphertexts that the server still '
          'decrypts: which security notion requires such ciphertexts to be rejected?'),
)


quiz(
    '04.13',
    'A sealer sets each tensor\'s GCM nonce to HKDF(key, tensor name). Why is that unsafe?',
    [
     'Because HKDF output is not random enough to serve as a nonce.',
     'Because the tensor name becomes visible in the file.',
     'Because the nonce depends only on the key and the name: re-sealing the tensor after a weight update reuses the (key, nonce) pair, so the two versions leak the xor of their weights and the hash key H, and tags can be forged.',
     'Because a 12-byte nonce from HKDF can collide between two different tensor names.',
    ],
    hint=('What changes, and what does not, between two seals of the same tensor?',
          'Compare with chapter 04: what does an attacker holding two messages under one key and one '
          'nonce recover?'),
)
