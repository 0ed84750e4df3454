"""Exercises of chapter 04 (modes and GCM). Each checker recomputes its answer with labkit.

Implement exercises (CBC decryption, GHASH, the nonce-reuse polynomial) run the student's function
on fresh random inputs against labkit's own (tests cross-check labkit with pycryptodome and NIST
vectors); attack exercises (keystream reuse, the forbidden attack) get their fresh per-run keys,
and their verdicts, from the challenge service.
"""
from labkit import gcm, gf128, modes
from labkit.exercises import exercise, FunctionSpec, implement, service_handles
from labkit.exercises.quiz import quiz
from labkit.widgets.modes import demo_image


@exercise(
    "04.1",
    "the number of distinct 16-byte blocks in the ECB encryption of demo_image()",
    hint=("ECB encrypts every 16-byte block on its own with the same key: equal plaintext blocks "
          "stay equal.",
          "Encrypt the picture's bytes in ECB under any key, cut the ciphertext into 16-byte blocks "
          "and count how many different ones there are (a Python set counts them)."),
    where="class",
)
def _ecb_blocks(answer):
    ct = modes.ecb_encrypt(bytes(range(16)), demo_image().tobytes())
    return int(answer) == len(set(modes.split_blocks(ct)))


def _cbc_inputs(rng) -> tuple:
    return rng.randbytes(16), rng.randbytes(16), rng.randbytes(16 * rng.randint(1, 4))


implement(
    "04.2",
    "cbc_decrypt(key, iv, ciphertext): AES-CBC decryption (SP 800-38A 6.2), padding left on",
    hint=("Undo the chaining: each plaintext block is the block cipher's decryption of its "
          "ciphertext block, xored with the ciphertext block before it (the IV for the first).",
          "Cut the ciphertext into 16-byte blocks; keep the previous ciphertext block (start with "
          "the IV); decrypt each block with the AES of chapter 03, xor, and join the results."),
    spec=FunctionSpec("cbc_decrypt", modes.cbc_decrypt, _cbc_inputs, trials=20, hide=("labkit.modes:cbc_decrypt",)),
    where="class",
)


def keystream_challenge() -> dict:
    """Exercise 04.3: two CTR ciphertexts under the same key and counter, and the first plaintext."""
    return dict(service_handles.run("04.3").public)


@exercise(
    "04.3",
    "the second plaintext of keystream_challenge()",
    hint=("Under one counter both messages are xored with the same keystream: what is left when "
          "you xor the two ciphertexts?",
          "C1 xor C2 = P1 xor P2, and you know P1: xor it in, byte by byte, over the length of the "
          "shorter message."),
    kind="attack", remote=True,
    where="homework",
)
def _keystream(answer):
    return service_handles.answer_run("04.3", bytes(answer))


def _ghash_inputs(rng) -> tuple:
    return (rng.randbytes(16), rng.randbytes(rng.randint(0, 40)),
            rng.randbytes(rng.randint(0, 60)))


implement(
    "04.4",
    "ghash(h, aad, ciphertext): GHASH_H(A, C) of SP 800-38D 6.4, a 16-byte block",
    hint=("GHASH is Horner's rule in GF(2^128): start from zero and, for each input block, xor it "
          "in and multiply by H.",
          "The input blocks are A zero-padded to 16 bytes, then C zero-padded, then one block with "
          "the bit lengths of A and C as two 64-bit big-endian integers. Turn blocks into field "
          "elements and back with gf128's block conversions; multiply with its mul."),
    spec=FunctionSpec("ghash", gcm.ghash, _ghash_inputs, trials=30, hide=("labkit.gcm:ghash",)),
    where="homework",
)


def _reuse_inputs(rng) -> tuple:
    _, aad1, ct1 = _ghash_inputs(rng)
    _, aad2, ct2 = _ghash_inputs(rng)
    return ct1, rng.randbytes(16), ct2, rng.randbytes(16), aad1, aad2


implement(
    "04.5",
    "nonce_reuse_polynomial(ct1, tag1, ct2, tag2, aad1, aad2): the polynomial with root H, as a "
    "list of GF(2^128) integers, lowest degree first",
    hint=("Both tags carry the same mask E_K(J0), so it cancels in T1 xor T2: what is left is a "
          "polynomial in H whose coefficients you can all compute.",
          "Write each GHASH as a polynomial: block X_i of m blocks is the coefficient of H^(m-i+1), "
          "and there is no constant term. Add (xor) the two coefficient lists, then add T1 xor T2 "
          "as the constant term."),
    spec=FunctionSpec("nonce_reuse_polynomial", gcm.nonce_reuse_polynomial, _reuse_inputs, trials=30,
                      equal=lambda got, want: gf128.poly_trim(got) == gf128.poly_trim(want),
                      hide=("labkit.gcm:nonce_reuse_polynomial",)),
    where="homework",
)


def forgery_challenge() -> dict:
    """Exercise 04.6: what an eavesdropper saw, three AES-GCM messages (ciphertext, tag, associated
    data) sent under one key and one nonce, and the message it wants signed: the first ciphertext
    with bits flipped to read ``user=admin;role=writer;``. The key stays on the server (the
    challenge service)."""
    return dict(service_handles.run("04.6").public)


@exercise(
    "04.6",
    "a tag for forgery_challenge()['target_ciphertext'] that AES-GCM accepts",
    hint=("Recover the hash key H from two messages that share the nonce, then the tag mask, then "
          "sign the target yourself.",
          "H is a root of the nonce-reuse polynomial of messages 1 and 2; when it has several roots, "
          "keep the one that predicts the third message's tag.",
          "With H, the mask E_K(J0) is tag1 xor GHASH_H(aad1, ct1); the forged tag is "
          "GHASH_H(target_aad, target_ciphertext) xor that mask."),
    kind="attack", remote=True,
    where="homework",
)
def _forgery(answer):
    return service_handles.answer_run("04.6", bytes(answer))


# --- concept questions (kind "quiz"; the answers are the challenge service's, see quiz.py) ---

quiz(
    "04.7",
    "An image of 1,000 blocks has 37 distinct plaintext blocks. How many distinct ciphertext "
    "blocks do you expect under a fresh AES key in ECB, and in CBC with a random IV?",
    [
        "37 in ECB; about 1,000 in CBC.",
        "About 1,000 in both: the key randomizes.",
        "37 in both: CBC maps equal blocks equally.",
        "1 in ECB; 37 in CBC.",
    ],
    hint=("Is AES under a fixed key one-to-one on blocks?",
          "In CBC, what does the block cipher get as its input: the plaintext block alone, or the "
          "plaintext block XOR the previous ciphertext?"),
    where="class",
)

quiz(
    "04.8",
    "Two GCM messages were sent under one key and the same nonce, and you know P1 in full. "
    "Without solving for the hash key H, what do you get?",
    [
        "The AES key, which GHASH gives away once the nonce repeats.",
        "Nothing: the tags keep P2 secret.",
        "A valid tag for any message you like.",
        "P2, over the length of P1, as C1 xor C2 xor P1.",
    ],
    hint=("Two costs: one for confidentiality (CTR), one for authenticity (GHASH).",
          "Under one key and nonce, what is C1 xor C2 in terms of the plaintexts, and what does "
          "forging need that you have not computed yet?"),
    where="class",
)

quiz(
    "04.9",
    "Which change makes CTR mode IND-CPA secure?",
    [
        "A secret counter start, fixed at setup.",
        "A 256-bit key, the counter kept.",
        "A fresh random IV per message, sent with it.",
        "Encrypting every message twice in a row.",
    ],
    hint=("In the IND-CPA game the adversary keeps its encryption oracle after choosing m0 and "
          "m1.",
          "For each option, ask the oracle for Enc(m0) and compare it with the challenge: does "
          "the scheme give the same ciphertext twice?"),
    where="class",
)
