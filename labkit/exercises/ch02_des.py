"""Exercises of chapter 02 (DES internals)."""
import secrets

import numpy as np

from labkit import bits, des, sbox
from labkit.exercises import exercise
from labkit.exercises._session import session_secret
from labkit.exercises.quiz import quiz

EXAMPLE_KEY = bytes.fromhex("133457799bbcdff1")


@exercise(
    "02.1",
    "the first subkey K1 of the key 133457799bbcdff1, as 12 hex digits",
    hint="PC-1 selects 56 bits into C0 D0; rotate both halves left by SHIFTS[0] = 1; PC-2 picks 48.",
)
def _k1(answer):
    return str(answer).lower().replace(" ", "") == bits.bits_to_hex(des.expand_key(EXAMPLE_KEY)[0])


def complement_challenge() -> tuple[bytes, bytes, bytes]:
    """(k, m, c = DES(k, m)) for exercise 02.2."""
    rng = np.random.default_rng(202)
    key, block = rng.bytes(8), rng.bytes(8)
    return key, block, des.encrypt_block(key, block)


@exercise(
    "02.2",
    "DES(~k, ~m) from c = DES(k, m), without encrypting",
    hint="The complementation property: DES(~k, ~m) = ~DES(k, m). Flip every bit of c.",
)
def _complement(answer):
    key, block, _ = complement_challenge()
    return bytes(answer) == des.encrypt_block(des.complement(key), des.complement(block))


_LINEAR_PAIRS_MAX = 8


def _linear_secret() -> tuple[bytes, list[bytes]]:
    """This run's secret key of exercise 02.3 and the plaintexts of its known pairs."""
    return session_secret("02.3", lambda draw: (draw(8), [draw(8) for _ in range(_LINEAR_PAIRS_MAX)]))


def linear_challenge(pairs: int = 2) -> list[tuple[bytes, bytes]]:
    """Known (plaintext, ciphertext) pairs of DES with the lecture's linear S-boxes under a
    secret key drawn fresh for this run, for exercise 02.3."""
    if not 1 <= int(pairs) <= _LINEAR_PAIRS_MAX:
        raise ValueError(f"pairs must be between 1 and {_LINEAR_PAIRS_MAX}, got {pairs}")
    secret, blocks = _linear_secret()
    return [(m, des.encrypt_block(secret, m, sboxes=des.LINEAR_SBOXES)) for m in blocks[:int(pairs)]]


@exercise(
    "02.3",
    "recover a key of the linear DES from its known pairs",
    hint="C = A m xor B k over GF(2): labkit.des.recover_linear_key solves B k = C xor A m by "
         "Gaussian elimination.",
)
def _linear(answer):
    key = bytes(answer)
    secret, _ = _linear_secret()
    fresh = [secrets.token_bytes(8) for _ in range(4)]  # plaintexts nobody saw: the key must generalise
    ok = all(des.encrypt_block(key, m, sboxes=des.LINEAR_SBOXES)
             == des.encrypt_block(secret, m, sboxes=des.LINEAR_SBOXES) for m in fresh)
    return ok, "it encrypts fresh plaintexts exactly like the secret key" if ok else \
        "this key does not reproduce the linear DES on fresh plaintexts."


@exercise(
    "02.4",
    "the largest |LAT| entry of DES's S-box S5 (where Matsui's linear cryptanalysis starts)",
    hint="labkit.sbox.lat(labkit.des.SBOX_TABLES[4]) gives the bias counts; ignore output mask 0 "
         "(column 0) and take the largest absolute value.",
)
def _linearity(answer):
    return int(answer) == sbox.linearity(des.SBOX_TABLES[4])


def search_challenge() -> tuple[bytes, bytes, bytes]:
    """(plaintext, ciphertext, known key) for exercise 02.5: the real key agrees with the known key
    except in the last 16 key bits that matter (DES.KEY_BIT_POSITIONS[-16:]), zero in the known key.
    The real key is drawn fresh for this run."""
    secret = session_secret("02.5", lambda draw: des.set_parity(draw(8)))
    plaintext = b"DES 1977"
    return plaintext, des.encrypt_block(secret, plaintext), des.forget_key_bits(secret, 16)


@exercise(
    "02.5",
    "find the key of search_challenge() by exhaustive search over 16 unknown bits",
    hint="labkit.des.exhaustive_search(plaintext, ciphertext, known_key, 16) tries all 2^16 values.",
)
def _search(answer):
    plaintext, ciphertext, known = search_challenge()
    key = bytes(answer)
    if des.encrypt_block(key, plaintext) != ciphertext:
        return False, "that key does not map the plaintext to the ciphertext."
    return True, "that key maps the plaintext to the ciphertext"  # never echo the fresh secret


# --- concept questions (kind "quiz"; answers stored as salted digests, see quiz.py) ---

quiz(
    '02.6',
    'One bit of L0 (the left half after IP) is flipped. How many S-boxes does it enter in round 1?',
    [
     'One.',
     "Two, through E's duplicated edge bits.",
     'None: L0 is only XORed into f(R0, K1); the flipped bit reaches the S-boxes in round 2, as a bit of R1.',
     'Six.',
    ],
    "abf631c7ec102935e61b42a33b8b5ddedabec2c3cdf4773ba9ee3f2373439823",
    hint='Look at the round equations: which half goes through E and the S-boxes?',
)

quiz(
    '02.7',
    "If DES's eight S-boxes were replaced by affine maps over GF(2), why would the key fall to linear algebra?",
    [
     'Because the key schedule would then have weak keys.',
     'Because every ciphertext bit becomes an affine function of the plaintext and key bits, so known plaintext/ciphertext pairs give linear equations in the 56 key bits, solved by Gaussian elimination.',
     'Because brute force becomes faster when the S-boxes are affine.',
     'Because E and P would then cancel each other.',
    ],
    "997362270b95423dc1c1d610bcfc333cfd97c7194c84bb49c55634523c65482e",
    hint='E, P, IP and the key XOR are already linear: what is left that is not?',
)

quiz(
    '02.8',
    'Why does DES(~k, ~m) = ~DES(k, m) hold?',
    [
     'The S-boxes are balanced.',
     'IP is an involution.',
     'In each round E(~R) xor ~K = E(R) xor K, so the S-boxes see the same inputs; the complemented left half passes through the XOR, and the halves stay complemented to the end.',
     'It holds only for the weak keys.',
    ],
    "ad30cae5c21db610e6b52be442f993f96face1593e39df6a9ada26e97395ecb6",
    hint='Complement both the right half and the subkey: what does the S-box layer see?',
)
