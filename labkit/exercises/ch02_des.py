"""Exercises of chapter 02 (DES: 02 internals, 02b analysis, 02c breaking DES in practice).

Implement checkers run the student's function on fresh random inputs against labkit's own DES
(itself checked against NIST's vectors and pycryptodome); attack challenges live in the challenge
service (:mod:`labkit.challenges.defs_ciphers`), which draws their secrets from the CSPRNG once per
run and judges the answers: this module hands out the public data and oracle handles only.
"""
from labkit import bits, des, des_security, sbox
from labkit.challenges.defs_ciphers import (COMPLEMENT_TARGET, LINEAR_PAIRS_MAX, SEARCH_UNKNOWN_BITS,  # noqa: F401
                                            SWEET32_BLOCK_BITS, SWEET32_BLOCKS)  # public constants
from labkit.exercises import _session, check_function, exercise
from labkit.exercises.quiz import quiz

# --- 02 · DES internals -----------------------------------------------------------------------------


def _random_bytes(rng, n: int) -> bytes:
    return bytes(rng.randrange(256) for _ in range(n))


@exercise(
    "02.1",
    "round_key(key, round_number): the 48-bit subkey K_i of DES as 6 bytes, from PC-1, the shifts and PC-2",
    hint=("The key schedule only selects and rotates key bits: nothing is computed, only moved.",
          "Apply PC-1 to the 64 key bits, split into C and D of 28 bits, rotate both left by the "
          "shifts of rounds 1 to i added up, join them and apply PC-2; pack the 48 bits into 6 bytes.",
          "The tables are 1-based: output bit t takes input bit TABLE[t] - 1 of a 0-based array."),
    kind="implement",
)
def _round_key(answer):
    return check_function(
        answer, lambda key, r: bits.bits_to_bytes(des.expand_key(key)[r - 1]),
        lambda rng: (_random_bytes(rng, 8), rng.randint(1, 16)), trials=40, name="round_key")


def _f_reference(right: bytes, subkey: bytes) -> bytes:
    return bits.bits_to_bytes(des.round_function(bits.bytes_to_bits(right), bits.bytes_to_bits(subkey)))


@exercise(
    "02.2",
    "f(right, subkey): DES's round function P(S(E(R) xor K)) from the FIPS 46-3 tables, 4 bytes out",
    hint=("Four steps, each one table: expand, add the key, substitute, permute.",
          "E turns the 32 bits of R into 48; XOR the 48 subkey bits; cut into eight groups of 6; "
          "in S-box i, the row is bits 1 and 6 of the group and the column bits 2 to 5; write the "
          "eight 4-bit outputs in order and apply P to the 32 bits.",
          "Check your row and column on round 1 of the worked example printed above."),
    kind="implement",
)
def _round_function(answer):
    return check_function(answer, _f_reference, lambda rng: (_random_bytes(rng, 4), _random_bytes(rng, 6)),
                          trials=40, name="f")


def complement_challenge():
    """(oracle, target) for exercise 02.3: ``oracle(block)`` is DES under a secret key k drawn for
    this run (in the challenge service), and the exercise asks for DES(~k, target), under a key
    nobody hands out."""
    served = _session.ServedOracle(_session.run("02.3"), "encrypt",
                                   encode=lambda block: bits.check_bytes(block, 8, what="DES block"))
    return served, _session.run("02.3").public["target"]


@exercise(
    "02.3",
    "DES(~k, target) for the secret key k of complement_challenge(), from one query to its oracle",
    hint=("The complementation property relates encryptions under k and under ~k.",
          "Complementing both sides of DES(~k, ~m) = ~DES(k, m) tells you which plaintext to give the "
          "oracle so that its answer, complemented, is the ciphertext you need."),
    kind="attack", remote=True,
)
def _complement(answer):
    return _session.answer_run("02.3", bytes(answer))


# --- 02b · DES analysis -----------------------------------------------------------------------------


def _random_sbox_or_des(rng) -> list[int]:
    if rng.random() < 0.5:
        return list(des.SBOX_TABLES[rng.randrange(8)])
    return [rng.randrange(16) for _ in range(64)]


@exercise(
    "02.4",
    "difference_row(table, a): row a of the difference distribution table of a 6-to-4-bit S-box",
    hint=("A DDT row counts, for one input difference a, how often each output difference occurs.",
          "For every input x in 0..63, compute the output difference S(x) xor S(x xor a) and add one "
          "to its counter; return the 16 counters (they add up to 64)."),
    kind="implement",
)
def _difference_row(answer):
    return check_function(answer, lambda table, a: sbox.ddt(table, out_bits=4)[a].tolist(),
                          lambda rng: (_random_sbox_or_des(rng), rng.randrange(64)), trials=40,
                          name="difference_row", equal=lambda got, exp: [int(v) for v in got] == exp)


@exercise(
    "02.5",
    "the largest |LAT| entry of DES's S-box S5 (where Matsui's linear cryptanalysis starts)",
    hint=("A LAT entry counts how often a linear approximation of the S-box holds, minus 32: "
          "its size is the bias an attacker can use.",
          "Build the linear approximation table of S5 (the fifth 64-entry table) with the chapter's "
          "S-box module, drop the column of output mask 0 and take the largest absolute value."),
)
def _linearity(answer):
    return int(answer) == sbox.linearity(des.SBOX_TABLES[4])


def linear_challenge(pairs: int = 2) -> list[tuple[bytes, bytes]]:
    """Known (plaintext, ciphertext) pairs of DES with the lecture's linear S-boxes under a
    secret key drawn fresh for this run, for exercise 02.6."""
    if not 1 <= int(pairs) <= LINEAR_PAIRS_MAX:
        raise ValueError(f"pairs must be between 1 and {LINEAR_PAIRS_MAX}, got {pairs}")
    return [tuple(p) for p in _session.run("02.6").public["pairs"][:int(pairs)]]


@exercise(
    "02.6",
    "recover a key of the linear DES from its known pairs",
    hint=("With linear S-boxes the whole cipher is C = A m xor B k over GF(2), and A and B are public.",
          "Get A by encrypting the 64 unit plaintexts under the zero key and B from the 56 unit keys; "
          "each pair gives B k = C xor A m, 64 equations in 56 unknowns: solve them by Gaussian "
          "elimination over GF(2) and put the 56 bits back through PC-1."),
    kind="attack", remote=True,
)
def _linear(answer):
    return _session.answer_run("02.6", bytes(answer))


# --- 02c · Breaking DES in practice --------------------------------------------------------------

def search_challenge() -> tuple[bytes, bytes, bytes]:
    """(plaintext, ciphertext, known key) for exercise 02.7: the real key agrees with the known
    key except in the last 16 key bits that matter (``des.KEY_BIT_POSITIONS[-16:]``), zero in the
    known key. The real key is drawn fresh for this run."""
    return tuple(_session.run("02.7").public)


@exercise(
    "02.7",
    "find the key of search_challenge() by exhaustive search over 16 unknown bits",
    hint=("Only 16 key bits are unknown: 65,536 candidates, each tested with one encryption.",
          "For every 16-bit value, write its bits into the 16 unknown positions of the known key, "
          "encrypt the plaintext and keep the key whose ciphertext matches; the batch DES path "
          "tests thousands of keys per call."),
    kind="attack", remote=True,
)
def _search(answer):
    return _session.answer_run("02.7", bytes(answer))


def _mitm_draw(rng):
    key_bits = rng.randint(3, 5)
    i, j = rng.randrange(1 << key_bits), rng.randrange(1 << key_bits)
    plaintexts = [_random_bytes(rng, 8) for _ in range(2)]
    return [(m, des_security.toy_double_encrypt(i, j, m, key_bits)) for m in plaintexts], key_bits


@exercise(
    "02.8",
    "meet_in_the_middle(pairs, key_bits): every key pair (i, j) of the toy 2DES that fits the pairs",
    hint=("Double encryption has a middle: E_k1(P) = D_k2(C). Each side involves only one key.",
          "Encrypt the first plaintext under every stage-1 key and store middle value -> i in a "
          "table; decrypt the first ciphertext under every stage-2 key and look it up; keep the "
          "(i, j) that also map the other plaintexts to their ciphertexts, sorted."),
    kind="implement",
)
def _mitm(answer):
    return check_function(answer, lambda pairs, k: des_security.meet_in_the_middle(pairs, k).candidates,
                          _mitm_draw, trials=3, name="meet_in_the_middle",
                          equal=lambda got, exp: sorted(tuple(int(v) for v in p) for p in got) == exp)


def sweet32_challenge() -> dict:
    """A long CBC ciphertext under a toy 24-bit block cipher (exercise 02.9): every even block is a
    known header block, every odd block the same secret cookie. Returns the IV, the ciphertext
    blocks and the plaintext with ``None`` where the cookie is; key and cookie are fresh per run."""
    return dict(_session.run("02.9").public)


@exercise(
    "02.9",
    "the secret cookie of sweet32_challenge(), from a collision of two ciphertext blocks",
    hint=("Two equal ciphertext blocks in CBC mean the block cipher saw two equal inputs.",
          "The input of block i is P_i xor C_(i-1). Find blocks i and j with C_i = C_j where one is "
          "a cookie block and the other a known one, set the two inputs equal and solve for the cookie."),
    kind="attack", remote=True,
)
def _sweet32(answer):
    return _session.answer_run("02.9", int(answer))


# --- concept questions (kind "quiz"; the answers are the challenge service's, see quiz.py) ---

quiz(
    '02.10',
    'One bit of L0 (the left half after IP) is flipped. How many S-boxes does it enter in round 1?',
    [
     'One.',
     "Two, through E's duplicated edge bits.",
     'None: L0 is only XORed into f(R0, K1); the flipped bit reaches the S-boxes in round 2, as a bit of R1.',
     'Six.',
    ],
    hint=('Look at the round equations: which half goes through E and the S-boxes?',
          'Write L1 and R1 in terms of L0, R0 and K1, and see where L0 appears.'),
)

quiz(
    '02.11',
    'Why does DES(~k, ~m) = ~DES(k, m) hold?',
    [
     'The S-boxes are balanced.',
     'IP is an involution.',
     'In each round E(~R) xor ~K = E(R) xor K, so the S-boxes see the same inputs; the complemented left half passes through the XOR, and the halves stay complemented to the end.',
     'It holds only for the weak keys.',
    ],
    hint=('Complement both the right half and the subkey: what does the S-box layer see?',
          'E and the key schedule only copy bits, so a complemented R gives a complemented E(R).'),
)

quiz(
    '02.12',
    "If DES's eight S-boxes were replaced by affine maps over GF(2), why would the key fall to linear algebra?",
    [
     'Because the key schedule would then have weak keys.',
     'Because every ciphertext bit becomes an affine function of the plaintext and key bits, so known plaintext/ciphertext pairs give linear equations in the 56 key bits, solved by Gaussian elimination.',
     'Because brute force becomes faster when the S-boxes are affine.',
     'Because E and P would then cancel each other.',
    ],
    hint=('E, P, IP and the key XOR are already linear: what is left that is not?',
          'Compose affine maps round after round: what kind of map is the whole cipher then?'),
)
