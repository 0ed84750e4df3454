"""Exercises of unit 04b (modes in practice): the padding oracle, HKDF-Expand, deterministic IVs.

The padding-oracle challenge hands out a server over a fresh per-run key (only the oracle, the IV
and the ciphertext: the key and the server live in the challenge service, which also judges the
answer); the other checkers recompute their answers with labkit.
"""
from labkit import hkdf, modes, padding_oracle
from labkit.exercises import exercise, FunctionSpec, implement, service_handles
from labkit.exercises.quiz import quiz


def padding_oracle_challenge() -> dict:
    """Exercise 04.10: an intercepted AES-CBC ciphertext, its IV, and ``oracle(iv, ciphertext)``, the
    server that answers True when the padding is valid (the service counts ``oracle.queries``)."""
    run = service_handles.run("04.10")
    return {"iv": run.public["iv"], "ciphertext": run.public["ciphertext"],
            "oracle": service_handles.ServedOracle(run, "padding", encode=lambda iv, ct: [bytes(iv), bytes(ct)])}


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
    where="homework",
)
def _padding_oracle(answer):
    return service_handles.answer_run("04.10", bytes(answer))


def _expand_inputs(rng) -> tuple:
    prk = rng.randbytes(hkdf.HASH_LENGTH)
    info = rng.randbytes(rng.randint(0, 24))
    return prk, info, rng.randint(0, 8 * hkdf.HASH_LENGTH)


implement(
    "04.11",
    "hkdf_expand(prk, info, length): HKDF-Expand with HMAC-SHA-256 (RFC 5869 2.3)",
    hint=("Expand chains HMAC blocks: each block is the HMAC under PRK of the previous block, the "
          "info and a one-byte counter.",
          "T(0) is empty; T(i) = HMAC-SHA-256(PRK, T(i-1) || info || i) with i as one byte from 1; "
          "join T(1), T(2), ... and keep the first length bytes (the standard library's hmac and "
          "hashlib do the HMAC)."),
    spec=FunctionSpec("hkdf_expand", hkdf.expand, _expand_inputs, trials=30, hide=("labkit.hkdf:expand",)),
    where="class",
)


quiz(
    "04.12",
    "A CTR ciphertext (no tag) carries the amount '0100' at bytes 4-7, and the attacker knows it. "
    "Without the key, what can he do?",
    [
        "Make byte 4 decrypt to '9' by XORing in ord('0') ^ ord('9').",
        "Only scramble byte 4: the digit is random to him.",
        "Nothing: IND-CPA security rules out any change.",
        "Read the other amounts, since CTR leaks digits.",
    ],
    hint=("In CTR, how does one ciphertext bit affect the plaintext after decryption?",
          "Plaintext = ciphertext XOR keystream: what does XORing a value into a ciphertext byte "
          "do to the plaintext byte, and does the attacker need the keystream for it?"),
    where="class",
)


quiz(
    "04.13",
    "A sealer re-seals tensors after every weight update under one long-lived GCM key. Which "
    "nonce rule is safe?",
    [
        "HKDF(key, tensor name), the same for each re-seal of a tensor.",
        "The time in seconds, padded to 12 bytes.",
        "A counter held in RAM, reset to 0 when the sealer restarts.",
        "A random 96-bit nonce per seal, under 2^32 seals a key.",
    ],
    hint=("A nonce must never repeat under one key: for each rule, find two seals that could get "
          "the same one.",
          "Think of two seals of one tensor, two seals in the same second and a restart; then of "
          "the collision chance of random 96-bit nonces over 2^32 seals."),
    where="class",
)
