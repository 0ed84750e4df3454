"""Exercises of unit 04b (modes in practice): the padding oracle, HKDF-Expand, deterministic IVs.

The padding-oracle challenge hands out a server over a fresh per-run key (only the oracle, the IV
and the ciphertext); the checkers recompute their answers with labkit.
"""
from labkit import hkdf, modes, padding_oracle
from labkit.exercises import check_function, exercise
from labkit.exercises._session import session_secret
from labkit.exercises.quiz import quiz


def _secrets() -> dict:
    """This run's AES key, IV and message of exercise 04.10 (its length too), from the CSPRNG."""
    def draw(token) -> dict:
        # 35 + filler bytes: a padding of 1 to 8 bytes, different from run to run, so the last
        # block (the answer) always holds at least 8 of the 16 random hex digits that end the
        # message, and an answer from one run fails in the next
        filler = 5 + token(1)[0] % 8
        return {"key": token(16), "iv": token(16),
                "message": b"x" * filler + b"grade:" + token(4).hex().encode() + b";pin="
                           + token(8).hex().encode()}
    return session_secret("04b", draw)


def padding_oracle_challenge() -> dict:
    """Exercise 04.10: an intercepted AES-CBC ciphertext, its IV, and ``oracle(iv, ciphertext)``, the
    server that answers True when the padding is valid (it counts ``oracle.queries``)."""
    s = _secrets()
    ciphertext = modes.cbc_encrypt(s["key"], s["iv"], modes.pkcs7_pad(s["message"]))
    return {"iv": s["iv"], "ciphertext": ciphertext, "oracle": padding_oracle.CbcPaddingServer(s["key"])}


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
    kind="attack",
    where="homework",
)
def _padding_oracle(answer):
    return bytes(answer) == modes.pkcs7_pad(_secrets()["message"])[-modes.BLOCK_SIZE:]


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
    where="class",
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
    "d2ec9a6d17b82358b27736125eb85d6ca72db9850096a72d5e080758a55eec1a",
    hint=("Exercise 04.6's target ciphertext was made by flipping bits: what stopped it?",
          'The padding oracle of 04.10 learns from modified ciphertexts that the server still '
          'decrypts: which security notion requires such ciphertexts to be rejected?'),
    where="class",
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
    "9b37d973a028618d921cb116c5e7024209d26600fa786f3fad6a469646e78dce",
    hint=('What changes, and what does not, between two seals of the same tensor?',
          'Compare with chapter 04: what does an attacker holding two messages under one key and one '
          'nonce recover?'),
    where="class",
)
