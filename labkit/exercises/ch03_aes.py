"""Exercises of chapter 03 (AES internals). Each checker recomputes its answer with labkit."""
import numpy as np

from labkit import aes, gf, square_attack
from labkit.exercises import exercise


@exercise(
    "03.1",
    "0x57 * 0x13 in GF(2^8)",
    hint="0x13 = 0x10 ^ 0x02 ^ 0x01: add up 0x57, xtime(0x57) and xtime applied four times "
         "(FIPS-197 4.2.1).",
    solution="labkit.gf.gf256_mul(0x57, 0x13)  # = 0xfe",
)
def _mul(answer):
    return int(answer) == gf.gf256_mul(0x57, 0x13)


@exercise(
    "03.2",
    "S(0x53) from the field inverse and the affine map",
    hint="Find b with 0x53 * b = 1 (labkit.gf.gf256_inverse), then apply labkit.aes.affine_map.",
    solution="labkit.aes.affine_map(labkit.gf.gf256_inverse(0x53))  # inverse 0xca, S(0x53) = 0xed",
)
def _sbox(answer):
    return int(answer) == aes.affine_map(gf.gf256_inverse(0x53))


def _full_diffusion_round() -> int:
    names = aes.stage_names(10)
    for rnd in range(11):
        stage = names.index((rnd, "add_round_key"))
        if all(aes.byte_dependencies(stage, b)[0].all() for b in range(16)):
            return rnd
    raise AssertionError("AES never diffuses fully?")


@exercise(
    "03.3",
    "the first round after which every state byte depends on all 16 plaintext bytes",
    hint="Use labkit.aes.byte_dependencies on the state after each round's add_round_key.",
    solution="2: round 1 spreads a byte over one column (MixColumns), round 2's ShiftRows sends the "
             "column's bytes to four columns and MixColumns mixes each of them.",
)
def _diffusion(answer):
    return int(answer) == _full_diffusion_round()


def _challenge_key() -> bytes:
    return np.random.default_rng(2026_03).bytes(16)


def square_challenge():
    """The oracle of exercise 03.4: 4-round AES-128 under a key you must recover."""
    return square_attack.four_round_oracle(_challenge_key())


@exercise(
    "03.4",
    "the master key behind square_challenge(), found with the Square attack",
    hint="labkit.square_attack.square_attack(square_challenge()) returns the last round key and inverts "
         "the key schedule for you; answer with the 16 key bytes.",
    solution="labkit.square_attack.square_attack(square_challenge()).master_key",
)
def _square(answer):
    ok = bytes(answer) == _challenge_key()
    return ok, ("the 4-round cipher is broken" if ok else "not the key; check it encrypts like the oracle")
