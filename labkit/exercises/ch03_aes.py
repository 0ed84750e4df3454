"""Exercises of chapter 03 (AES internals). Each checker recomputes its answer with labkit."""

from labkit import aes, gf, square_attack
from labkit.exercises import exercise
from labkit.exercises._session import session_secret
from labkit.exercises.quiz import quiz


@exercise(
    "03.1",
    "0x57 * 0x13 in GF(2^8)",
    hint="0x13 = 0x10 ^ 0x02 ^ 0x01: add up 0x57, xtime(0x57) and xtime applied four times "
         "(FIPS-197 4.2.1).",
)
def _mul(answer):
    return int(answer) == gf.gf256_mul(0x57, 0x13)


@exercise(
    "03.2",
    "S(0x53) from the field inverse and the affine map",
    hint="Find b with 0x53 * b = 1 (labkit.gf.gf256_inverse), then apply labkit.aes.affine_map.",
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
)
def _diffusion(answer):
    return int(answer) == _full_diffusion_round()


def _challenge_key() -> bytes:
    """This run's secret key of exercise 03.4 (fresh from the CSPRNG, never returned to the student)."""
    return session_secret("03.4", lambda draw: draw(16))


def square_challenge():
    """The oracle of exercise 03.4: 4-round AES-128 under a key you must recover."""
    return square_attack.four_round_oracle(_challenge_key())


@exercise(
    "03.4",
    "the master key behind square_challenge(), found with the Square attack",
    hint="labkit.square_attack.square_attack(square_challenge()) returns the last round key and inverts "
         "the key schedule for you; answer with the 16 key bytes.",
)
def _square(answer):
    ok = bytes(answer) == _challenge_key()
    return ok, ("the 4-round cipher is broken" if ok else "not the key; check it encrypts like the oracle")


# --- concept questions (kind "quiz"; answers stored as salted digests, see quiz.py) ---

quiz(
    '03.5',
    'Why is the AES S-box the field inverse followed by an affine map, rather than the inverse alone?',
    [
     'The inverse alone is not a permutation.',
     'The affine map raises the nonlinearity from 4 to 112.',
     'The inverse already has the best known uniformity and nonlinearity; the affine map keeps them but breaks its simple algebraic form (x -> x^254, with fixed points 0 and 1), which interpolation-style attacks could use.',
     'The affine map makes the S-box faster in software.',
    ],
    "09fbb5bd9db1fe7ac569ce721995570ca67c49363665e13e48290844b18d5d53",
    hint="Does an affine map change the DDT's worst entry or the nonlinearity?",
)

quiz(
    '03.6',
    "Why does AES-256's key expansion (Nk = 8) apply an extra SubWord to w[i-1] when i mod Nk = 4 (FIPS 197 section 5.2)?",
    [
     'To make the key schedule invertible.',
     'With 8 words per step, the four words after each RotWord/SubWord/Rcon step would otherwise be XORs of earlier words only; the extra S-box layer puts nonlinearity into the second half of each step.',
     'To compute the extra round constants of AES-256.',
     'Because AES-256 has an even number of rounds.',
    ],
    "beb70c9d4ef5e0308d43110c10d21435ef3bc9ad863651ed5c317d83d01cd5d2",
    hint='Count how many words pass between two applications of SubWord with and without the rule.',
)

quiz(
    '03.7',
    'In the 4-round Square attack, why does the right key-byte guess make the 256 partially decrypted bytes XOR to zero?',
    [
     'Because the last round has no MixColumns, so the key cancels.',
     'Because all 256 ciphertexts are equal.',
     'Because S(0x00) = 0x63.',
     'Because after three rounds every state byte of the 256-text set is balanced (it XORs to zero), and the right guess undoes the last round exactly; a wrong guess passes only with probability about 1/256.',
    ],
    "7c1f58d9721ab85f75ffc4cb959dcf90d32672696dad53b9a74284ecff367d9e",
    hint='What property do the states after round 3 have, over the whole set of 256 plaintexts?',
)
