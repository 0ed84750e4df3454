"""Exercises of chapter 03, parts 03 and 03b (AES internals and analysis).

Implement checkers run the student's function on fresh random inputs against labkit's AES (itself
tested on the FIPS-197 and AESAVS vectors); the Square attack exercise's key is drawn per run in the challenge service, which judges the answer.
"""
import numpy as np

from labkit import aes, gf
from labkit.exercises import _session, check_function, exercise
from labkit.exercises.quiz import quiz


def _random_bytes(rng, n: int) -> bytes:
    return bytes(rng.randrange(256) for _ in range(n))


@exercise(
    "03.1",
    "multiplication in GF(2^8), written with xtime and XOR",
    hint=("Multiplying by x (the byte 0x02) shifts left and, when a bit falls off the top, XORs in "
          "0x1B; every other product is an XOR of such shifted copies (FIPS-197 4.2).",
          "Walk through the bits of b from the lowest: when the bit is set, XOR the current a into "
          "the result; then multiply a by x. Eight steps give the product."),
    kind="implement",
)
def _gf_multiply(candidate):
    return check_function(candidate, gf.gf256_mul, lambda rng: (rng.randrange(256), rng.randrange(256)),
                          name="gf_multiply")


@exercise(
    "03.2",
    "SubBytes for one byte, from the field inverse and the affine map",
    hint=("S(b) takes two steps: the multiplicative inverse in GF(2^8) (0 stays 0), then an affine "
          "map over GF(2) on the 8 bits of that inverse (FIPS-197 5.1.1).",
          "Bit i of the output is the XOR of bits i, i+4, i+5, i+6 and i+7 (indices mod 8) of the "
          "inverse and bit i of the constant 0x63; rebuild the byte from its eight bits."),
    kind="implement",
)
def _sub_byte(candidate):
    # 0 has no inverse (S(0) = 0x63 by the convention 0 -> 0): draw it often enough to be tested
    return check_function(candidate, lambda b: aes.SBOX[b],
                          lambda rng: (0 if rng.random() < 0.125 else rng.randrange(256),),
                          trials=64, name="sub_byte")


def _mix_column_reference(column: bytes) -> bytes:
    return aes.mix_columns(bytes(column) * 4)[:4]


@exercise(
    "03.3",
    "MixColumns on one column",
    hint=("Each output byte combines the whole column over GF(2^8) with the coefficients 2, 3, 1, 1, "
          "shifted one place to the right for each row (FIPS-197 5.1.3).",
          "Times 2 is xtime; times 3 is xtime of the byte XOR the byte itself. Output row r is "
          "2·s[r] ^ 3·s[r+1] ^ s[r+2] ^ s[r+3], indices mod 4; return the four bytes as bytes."),
    kind="implement",
)
def _mix_single_column(candidate):
    return check_function(candidate, _mix_column_reference, lambda rng: (_random_bytes(rng, 4),),
                          name="mix_single_column")


def _next_round_key_reference(round_key: bytes, round_number: int) -> bytes:
    return aes.expand_key(aes.invert_key_schedule(round_key, round_number - 1))[round_number]


@exercise(
    "03.4",
    "one step of the AES-128 key expansion",
    hint=("A round key is four 4-byte words. Each new word is the word four places back XOR the "
          "word just before it; only the first word of each round key gets extra treatment.",
          "For the first word: rotate the previous key's last word one byte to the left, put each "
          "byte through the S-box, XOR the round constant x^(i-1) into its first byte, then XOR "
          "the previous key's first word (FIPS-197 5.2). Words 2 to 4 follow by XOR alone."),
    kind="implement",
)
def _next_round_key(candidate):
    return check_function(candidate, _next_round_key_reference,
                          lambda rng: (_random_bytes(rng, 16), rng.randrange(1, 11)), name="next_round_key")


def _full_diffusion_round() -> int:
    names = aes.stage_names(10)
    for rnd in range(11):
        stage = names.index((rnd, "add_round_key"))
        if all(aes.byte_dependencies(stage, b)[0].all() for b in range(16)):
            return rnd
    raise AssertionError("AES never diffuses fully?")


@exercise(
    "03.5",
    "the first round after which every state byte depends on all 16 plaintext bytes",
    hint=("MixColumns spreads a byte over its column and ShiftRows sends a column's bytes to four "
          "different columns: follow one plaintext byte's influence round by round.",
          "For each round, take the state after its AddRoundKey and ask, for every one of its 16 "
          "bytes, whether it depends on all 16 plaintext bytes; the byte dependencies of the aes "
          "module (and the view above) answer this per stage."),
)
def _diffusion(answer):
    return int(answer) == _full_diffusion_round()


def square_challenge():
    """The oracle of exercise 03.6: 4-round AES-128 under a key you must recover (served: the key
    stays in the challenge service). uint8 (n, 16) plaintexts in, ciphertexts out."""
    return _session.ServedOracle(_session.run("03.6"), "encrypt",
                                 encode=lambda plaintexts: np.asarray(plaintexts, dtype=np.uint8))


@exercise(
    "03.6",
    "the master key behind square_challenge(), found with the Square attack",
    hint=("After three rounds every byte of a Λ-set's 256 states XORs to zero; the fourth round "
          "only adds the S-box, a shift of positions and the last round key.",
          "For each ciphertext byte position, try all 256 guesses of that byte of k4: undo the "
          "S-box on ciphertext XOR guess and XOR over the 256 texts; keep the guesses giving 0 and "
          "intersect over two or three Λ-sets. Then run the key schedule backwards from round 4."),
    kind="attack", remote=True,
)
def _square(answer):
    return _session.answer_run("03.6", bytes(answer))


# --- concept questions (kind "quiz"; the answers are the challenge service's, see quiz.py) ---

quiz(
    '03.10',
    'Why is the AES S-box the field inverse followed by an affine map, rather than the inverse alone?',
    [
     'The inverse alone is not a permutation.',
     'The affine map raises the nonlinearity from 4 to 112.',
     'The inverse already has the best known uniformity and nonlinearity; the affine map keeps them but breaks its simple algebraic form (x -> x^254, with fixed points 0 and 1), which interpolation-style attacks could use.',
     'The affine map makes the S-box faster in software.',
    ],
    hint=("Does an affine map change the DDT's worst entry or the nonlinearity?",
          "Compare the inverse alone and the full S-box: which values survive an invertible affine "
          "map, and what the bare inverse looks like as a polynomial."),
)

quiz(
    '03.11',
    "Why does AES-256's key expansion (Nk = 8) apply an extra SubWord to w[i-1] when i mod Nk = 4 (FIPS 197 section 5.2)?",
    [
     'To make the key schedule invertible.',
     'With 8 words per step, the four words after each RotWord/SubWord/Rcon step would otherwise be XORs of earlier words only; the extra S-box layer puts nonlinearity into the second half of each step.',
     'To compute the extra round constants of AES-256.',
     'Because AES-256 has an even number of rounds.',
    ],
    hint=('Count how many words pass between two applications of SubWord with and without the rule.',
          'Without the rule, which words of an 8-word step are pure XORs of earlier words?'),
)

quiz(
    '03.12',
    'In the 4-round Square attack, why does the right key-byte guess make the 256 partially decrypted bytes XOR to zero?',
    [
     'Because the last round has no MixColumns, so the key cancels.',
     'Because all 256 ciphertexts are equal.',
     'Because S(0x00) = 0x63.',
     'Because after three rounds every state byte of the 256-text set is balanced (it XORs to zero), and the right guess undoes the last round exactly; a wrong guess passes only with probability about 1/256.',
    ],
    hint=('What property do the states after round 3 have, over the whole set of 256 plaintexts?',
          'What does a right guess give back when it undoes the last S-box, and what does a wrong one give?'),
)
