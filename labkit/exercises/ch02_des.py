"""Exercises of chapter 02 (DES: 02 internals, 02b analysis, 02c breaking DES in practice).

Implement checkers run the student's function on fresh random inputs against labkit's own DES
(itself checked against NIST's vectors and pycryptodome); attack challenges live in the challenge
service (:mod:`labkit.challenges.defs_ciphers`), which draws their secrets from the CSPRNG once per
run and judges the answers: this module hands out the public data and oracle handles only.
"""
from labkit import bits, checks, des, des_linear, des_security, sbox
from labkit.challenges.defs_ciphers import LINEAR_PAIRS_MAX
from labkit.exercises import FunctionSpec, service_handles, exercise, implement
from labkit.exercises.quiz import quiz

# --- 02 · DES internals -----------------------------------------------------------------------------


def _round_key_reference(key: bytes, round_number: int) -> bytes:
    return bits.bits_to_bytes(des.expand_key(key)[round_number - 1])


implement(
    "02.1",
    "round_key(key, round_number): the 48-bit subkey K_i of DES as 6 bytes, from PC-1, the shifts and PC-2",
    hint=("The key schedule only selects and rotates key bits: nothing is computed, only moved.",
          "Three tables in order: PC-1 picks 56 of the 64 key bits and splits them into two 28-bit "
          "halves C and D, the shifts rotate both halves, PC-2 picks 48 bits of the pair.",
          "Rotate C and D left by the shifts of rounds 1 to i added up (not only round i's). The "
          "tables are 1-based: output bit t takes input bit TABLE[t] - 1 of a 0-based array. Pack "
          "the 48 bits into 6 bytes, most significant first."),
    spec=FunctionSpec("round_key", _round_key_reference, lambda rng: (rng.randbytes(8), rng.randint(1, 16)),
                      trials=40, hide=("labkit.des:expand_key",)),
    where="class",
)


def _f_reference(right: bytes, subkey: bytes) -> bytes:
    return bits.bits_to_bytes(des.round_function(bits.bytes_to_bits(right), bits.bytes_to_bits(subkey)))


implement(
    "02.2",
    "f(right, subkey): DES's round function P(S(E(R) xor K)) from the FIPS 46-3 tables, 4 bytes out",
    hint=("Four steps, each one table: expand, add the key, substitute, permute.",
          "E turns the 32 bits of R into 48; XOR the 48 subkey bits; cut the result into eight "
          "groups of 6, one for each S-box; the eight 4-bit outputs, in order, make 32 bits for P.",
          "In S-box i, the row is bits 1 and 6 of its group (a number 0-3) and the column bits 2 "
          "to 5 (0-15). Compare each step with round 1 of the worked example printed above: E(R0), "
          "E(R0) xor K1, the S-box outputs, then P."),
    spec=FunctionSpec("f", _f_reference, lambda rng: (rng.randbytes(4), rng.randbytes(6)), trials=40,
                      hide=("labkit.des:round_function",)),
    where="homework",
)


def complement_challenge():
    """(oracle, target) for exercise 02.3: ``oracle(block)`` is DES under a secret key k drawn for
    this run (in the challenge service), and the exercise asks for DES(~k, target), under a key
    nobody hands out."""
    served = service_handles.ServedOracle(service_handles.run("02.3"), "encrypt",
                                   encode=lambda block: checks.check_bytes(block, 8, what="DES block"))
    return served, service_handles.run("02.3").public["target"]


@exercise(
    "02.3",
    "DES(~k, target) for the secret key k of complement_challenge(), from one query to its oracle",
    hint=("The complementation property relates encryptions under k and under ~k.",
          "Complementing both sides of DES(~k, ~m) = ~DES(k, m) tells you which plaintext to give the "
          "oracle so that its answer, complemented, is the ciphertext you need."),
    kind="attack", remote=True,
    where="homework",
)
def _complement(answer):
    return service_handles.answer_run("02.3", bytes(answer))


# --- 02b · DES analysis -----------------------------------------------------------------------------


def _random_sbox_or_des(rng) -> list[int]:
    if rng.random() < 0.5:
        return list(des.SBOX_TABLES[rng.randrange(8)])
    return [rng.randrange(16) for _ in range(64)]


implement(
    "02.4",
    "difference_row(table, a): row a of the difference distribution table of a 6-to-4-bit S-box",
    hint=("A DDT row counts, for one input difference a, how often each output difference occurs.",
          "For every input x in 0..63, compute the output difference S(x) xor S(x xor a) and add one "
          "to its counter; return the 16 counters (they add up to 64)."),
    spec=FunctionSpec("difference_row", lambda table, a: sbox.ddt(table, out_bits=4)[a].tolist(),
                      lambda rng: (_random_sbox_or_des(rng), rng.randrange(64)), trials=40,
                      equal=lambda got, exp: [int(v) for v in got] == exp, hide=("labkit.sbox:ddt",)),
    where="class",
)


@exercise(
    "02.5",
    "the largest |LAT| entry of DES's S-box S5 (where Matsui's linear cryptanalysis starts)",
    hint=("A LAT entry counts how often a linear approximation of the S-box holds, minus 32: "
          "its size is the bias an attacker can use.",
          "Build the linear approximation table of S5 (the fifth 64-entry table) with the chapter's "
          "S-box module, drop the column of output mask 0 and take the largest absolute value."),
    where="class",
)
def _linearity(answer):
    return int(answer) == sbox.linearity(des.SBOX_TABLES[4])


def linear_challenge(pairs: int = 2) -> list[tuple[bytes, bytes]]:
    """Known (plaintext, ciphertext) pairs of DES with the lecture's linear S-boxes under a
    secret key drawn fresh for this run, for exercise 02.6."""
    if not 1 <= int(pairs) <= LINEAR_PAIRS_MAX:
        raise ValueError(f"pairs must be between 1 and {LINEAR_PAIRS_MAX}, got {pairs}")
    return [tuple(p) for p in service_handles.run("02.6").public["pairs"][:int(pairs)]]


@exercise(
    "02.6",
    "recover a key of the linear DES from its known pairs",
    hint=("With linear S-boxes the whole cipher is C = A m xor B k over GF(2), and A and B are public.",
          "Get A by encrypting the 64 unit plaintexts under the zero key and B from the 56 unit keys; "
          "each pair gives B k = C xor A m, 64 equations in 56 unknowns: solve them by Gaussian "
          "elimination over GF(2) and put the 56 bits back through PC-1."),
    kind="attack", remote=True,
    where="homework",
)
def _linear(answer):
    return service_handles.answer_run("02.6", bytes(answer))


# --- 02c · Breaking DES in practice --------------------------------------------------------------

def search_challenge() -> tuple[bytes, bytes, bytes]:
    """(plaintext, ciphertext, known key) for exercise 02.7: the real key agrees with the known
    key except in the last 16 key bits that matter (``des.KEY_BIT_POSITIONS[-16:]``), zero in the
    known key. The real key is drawn fresh for this run."""
    return tuple(service_handles.run("02.7").public)


@exercise(
    "02.7",
    "find the key of search_challenge() by exhaustive search over 16 unknown bits",
    hint=("Only 16 key bits are unknown: 65,536 candidates, each tested with one encryption.",
          "For every 16-bit value, write its bits into the 16 unknown positions of the known key, "
          "encrypt the plaintext and keep the key whose ciphertext matches; the batch DES path "
          "tests thousands of keys per call."),
    kind="attack", remote=True,
    where="homework",
)
def _search(answer):
    return service_handles.answer_run("02.7", bytes(answer))


def _mitm_draw(rng):
    key_bits = rng.randint(3, 5)
    i, j = rng.randrange(1 << key_bits), rng.randrange(1 << key_bits)
    plaintexts = [rng.randbytes(8) for _ in range(2)]
    return [(m, des_security.toy_double_encrypt(i, j, m, key_bits)) for m in plaintexts], key_bits


implement(
    "02.8",
    "meet_in_the_middle(pairs, key_bits): every key pair (i, j) of the toy 2DES that fits the pairs",
    hint=("Double encryption has a middle: E_k1(P) = D_k2(C). Each side involves only one key.",
          "Encrypt the first plaintext under every stage-1 key and store middle value -> i in a "
          "table; decrypt the first ciphertext under every stage-2 key and look it up; keep the "
          "(i, j) that also map the other plaintexts to their ciphertexts, sorted."),
    spec=FunctionSpec("meet_in_the_middle", lambda pairs, k: des_security.meet_in_the_middle(pairs, k).candidates,
                      _mitm_draw, trials=3,
                      equal=lambda got, exp: sorted(tuple(int(v) for v in p) for p in got) == exp,
                      hide=("labkit.des_security:meet_in_the_middle",)),
    where="class",
)


def sweet32_challenge() -> dict:
    """A long CBC ciphertext under a toy 24-bit block cipher (exercise 02.9): every even block is a
    known header block, every odd block the same secret cookie. Returns the IV, the ciphertext
    blocks and the plaintext with ``None`` where the cookie is; key and cookie are fresh per run."""
    return dict(service_handles.run("02.9").public)


@exercise(
    "02.9",
    "the secret cookie of sweet32_challenge(), from a collision of two ciphertext blocks",
    hint=("Two equal ciphertext blocks in CBC mean the block cipher saw two equal inputs.",
          "The input of block i is P_i xor C_(i-1). Find blocks i and j with C_i = C_j where one is "
          "a cookie block and the other a known one, set the two inputs equal and solve for the cookie."),
    kind="attack", remote=True,
    where="homework",
)
def _sweet32(answer):
    return service_handles.answer_run("02.9", int(answer))


# --- concept questions (kind "quiz"; the answers are the challenge service's, see quiz.py) ---

quiz(
    "02.10",
    "In round 1, bit 5 of R0 (FIPS numbering) is flipped. E's first two rows are 32 1 2 3 4 5 and "
    "4 5 6 7 8 9. How many S-boxes of round 1 see the change?",
    [
        "One, S1: each bit feeds the S-box below it.",
        "None: the flip reaches S-boxes in round 2.",
        "Two, S1 and S2: E copies bit 5 twice.",
        "All eight, through the key schedule's mixing.",
    ],
    hint=("Which S-box reads which six positions of E's output?",
          "Find every row of E that contains 5: each row of six is one S-box's input."),
    where="homework",
)

quiz(
    "02.11",
    "An exhaustive search holds c1 = DES_k(m) and c2 = DES_k(~m) for one unknown k. Using the "
    "complementation property, how many trial encryptions does it need in the worst case?",
    [
        "2^56: complementation does not help.",
        "2^28: the property halves each key half.",
        "2^54: two pairs rule out two key bits.",
        "2^55: each trial t also tests ~t, via c2.",
    ],
    hint=("DES_t(m) is one trial; what does comparing it with ~c2 tell you about the key ~t?",
          "If DES_~t(~m) = ~DES_t(m), then DES_t(m) = ~c2 means k = ~t: how many keys does one "
          "trial test?"),
    where="homework",
)

quiz(
    "02.12",
    "In DES with its S-boxes replaced by affine maps (labkit.des_linear.LINEAR_SBOXES), you encrypt m1, "
    "m2 and m3 = m1 xor m2 under one key. What is c1 xor c2 xor c3?",
    [
        "DES_k(0), the encryption of the zero block.",
        "The all-zero block, whatever the key.",
        "A random-looking block, as with the real S-boxes.",
        "The key, expanded to 64 bits by PC-1.",
    ],
    hint=("The whole cipher is then affine in the plaintext: c = A m xor b(k).",
          "XOR three such equations: what is left of the A m terms, and how many copies of b(k)?",
          "An odd number of copies of b(k) leaves one; what block encrypts to A 0 xor b(k)?"),
    where="class",
)
