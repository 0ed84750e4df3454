"""Exercises of chapter 03, parts 03 and 03b (AES internals and analysis).

Implement checkers run the student's function on fresh random inputs against labkit's AES (itself
tested on the FIPS-197 and AESAVS vectors); the Square attack exercise's key is drawn per run in the challenge service, which judges the answer.
"""
import numpy as np

from labkit import aes, gf256, square_attack
from labkit.exercises import exercise, FunctionSpec, implement, service_handles
from labkit.exercises.quiz import quiz


implement(
    "03.1",
    "multiplication in GF(2^8), written with xtime and XOR",
    hint=("Multiplying by x (the byte 0x02) shifts left and, when a bit falls off the top, XORs in "
          "0x1B; every other product is an XOR of such shifted copies (FIPS-197 4.2).",
          "Walk through the bits of b from the lowest: when the bit is set, XOR the current a into "
          "the result; then multiply a by x. Eight steps give the product."),
    spec=FunctionSpec("gf_multiply", gf256.mul, lambda rng: (rng.randrange(256), rng.randrange(256)),
                      hide=("labkit.gf256:mul",)),
    where="class",
)


implement(
    "03.2",
    "SubBytes for one byte, from the field inverse and the affine map",
    hint=("S(b) takes two steps: the multiplicative inverse in GF(2^8) (0 stays 0), then an affine "
          "map over GF(2) on the 8 bits of that inverse (FIPS-197 5.1.1).",
          "Bit i of the output is the XOR of bits i, i+4, i+5, i+6 and i+7 (indices mod 8) of the "
          "inverse and bit i of the constant 0x63; rebuild the byte from its eight bits."),
    spec=FunctionSpec("sub_byte", lambda b: aes.SBOX[b],
                      # 0 has no inverse (S(0) = 0x63 by the convention 0 -> 0): drawn often enough to be tested
                      lambda rng: (0 if rng.random() < 0.125 else rng.randrange(256),), trials=64,
                      hide=("labkit.aes:SBOX",)),
    where="homework",
)


def _mix_column_reference(column: bytes) -> bytes:
    return aes.mix_columns(bytes(column) * 4)[:4]


implement(
    "03.3",
    "MixColumns on one column",
    hint=("Each output byte combines the whole column over GF(2^8) with the coefficients 2, 3, 1, 1, "
          "shifted one place to the right for each row (FIPS-197 5.1.3).",
          "Times 2 is xtime; times 3 is xtime of the byte XOR the byte itself. Output row r is "
          "2·s[r] ^ 3·s[r+1] ^ s[r+2] ^ s[r+3], indices mod 4; return the four bytes as bytes."),
    spec=FunctionSpec("mix_single_column", _mix_column_reference, lambda rng: (rng.randbytes(4),),
                      hide=("labkit.aes:mix_columns",)),
    where="homework",
)


def _next_round_key_reference(round_key: bytes, round_number: int) -> bytes:
    return aes.expand_key(aes.invert_key_schedule(round_key, round_number - 1))[round_number]


implement(
    "03.4",
    "one step of the AES-128 key expansion",
    hint=("A round key is four 4-byte words. Each new word is the word four places back XOR the "
          "word just before it; only the first word of each round key gets extra treatment.",
          "For the first word: rotate the previous key's last word one byte to the left, put each "
          "byte through the S-box, XOR the round constant x^(i-1) into its first byte, then XOR "
          "the previous key's first word (FIPS-197 5.2). Words 2 to 4 follow by XOR alone."),
    spec=FunctionSpec("next_round_key", _next_round_key_reference,
                      lambda rng: (rng.randbytes(16), rng.randrange(1, 11)),
                      hide=("labkit.aes:expand_key",)),
    where="homework",
)


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
    where="homework",
)
def _diffusion(answer):
    return int(answer) == _full_diffusion_round()


def square_challenge():
    """The oracle of exercise 03.6: 4-round AES-128 under a key you must recover (served: the key
    stays in the challenge service). uint8 (n, 16) plaintexts in, ciphertexts out."""
    return service_handles.ServedOracle(service_handles.run("03.6"), "encrypt",
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
    where="class",
)
def _square(answer):
    return service_handles.answer_run("03.6", bytes(answer))


# --- concept questions (kind "quiz"; the answers are the challenge service's, see quiz.py) ---

quiz(
    "03.10",
    "A designer drops the affine step and uses the bare field inverse (0 -> 0) as the S-box. What "
    "do sbox.nonlinearity and sbox.differential_uniformity return for it?",
    [
        "0 and 256: without the affine step it is linear.",
        "112 and 4, the same as for the AES S-box.",
        "112 and 2: affine costs uniformity.",
        "56 and 4: the affine step doubles nonlinearity.",
    ],
    hint=("An invertible affine map after the S-box permutes the rows and columns of its DDT and "
          "LAT.",
          "Does permuting a table's entries change its largest entry?"),
    where="class",
)

quiz(
    "03.11",
    "AES-256 (Nk = 8) computes w[8] to w[15] from w[0] to w[7]. For which i is SubWord applied to "
    "w[i-1]?",
    [
        "i = 8 only, as in AES-128's schedule.",
        "i = 8, 10, 12 and 14, every second word.",
        "i = 8 (with RotWord and Rcon) and i = 12.",
        "Every i from 8 to 15, for 14 rounds.",
    ],
    hint=("FIPS 197 section 5.2 has two conditions on i mod Nk.",
          "With Nk = 8, which i between 8 and 15 have i mod 8 = 0, and which i mod 8 = 4?"),
    where="class",
)

quiz(
    "03.12",
    "In the 4-round Square attack, a wrong guess of a key byte passes the XOR-to-zero test with "
    "probability about 1/256. With one set of 256 texts, what remains of the 256 guesses?",
    [
        "Only the right guess: a wrong one never sums to zero on 256 texts.",
        "About half of the guesses, since each XOR is one bit.",
        "All 256: one set can only confirm, not exclude.",
        "The right guess and about one wrong one: use a second set.",
    ],
    hint=("How many wrong guesses are there, and how often does each pass by chance?",
          "255 wrong guesses at 1/256 each: how many survive on average, and how does a second, "
          "independent set shrink that?"),
    where="class",
)
