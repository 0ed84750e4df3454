"""Exercises of chapter 04 (modes and GCM). Each checker recomputes its answer with labkit.

Implement exercises (CBC decryption, GHASH, the nonce-reuse polynomial) run the student's function
on fresh random inputs against labkit's own (tests cross-check labkit with pycryptodome and NIST
vectors); attack exercises (keystream reuse, the forbidden attack) draw a fresh key per run.
"""
from Crypto.Cipher import AES

from labkit import gcm, gf, modes
from labkit.exercises import FunctionSpec, exercise, implement
from labkit.exercises._session import session_secret
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


def _random_bytes(rng, n: int) -> bytes:
    return bytes(rng.getrandbits(8) for _ in range(n))


def _cbc_inputs(rng) -> tuple:
    return _random_bytes(rng, 16), _random_bytes(rng, 16), _random_bytes(rng, 16 * rng.randint(1, 4))


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


def _secrets() -> dict:
    """This run's key, nonce and secret message of exercises 04.3 and 04.6, fresh from the CSPRNG."""
    return session_secret("04", lambda draw: {
        "key": draw(16), "nonce": draw(12),
        "message": b"The exam answers are in folder " + draw(8).hex().encode() + b"."})


_KNOWN = b"From: lab-server. Status report, all systems nominal."


def keystream_challenge() -> dict:
    """Exercise 04.3: two CTR ciphertexts under the same key and counter, and the first plaintext."""
    s = _secrets()
    counter = s["nonce"] + bytes(4)
    return {"ct1": modes.ctr_encrypt(s["key"], counter, _KNOWN),
            "ct2": modes.ctr_encrypt(s["key"], counter, s["message"]),
            "known_plaintext1": _KNOWN}


@exercise(
    "04.3",
    "the second plaintext of keystream_challenge()",
    hint=("Under one counter both messages are xored with the same keystream: what is left when "
          "you xor the two ciphertexts?",
          "C1 xor C2 = P1 xor P2, and you know P1: xor it in, byte by byte, over the length of the "
          "shorter message."),
    kind="attack",
    where="homework",
)
def _keystream(answer):
    return bytes(answer) == _secrets()["message"]


def _ghash_inputs(rng) -> tuple:
    return (_random_bytes(rng, 16), _random_bytes(rng, rng.randint(0, 40)),
            _random_bytes(rng, rng.randint(0, 60)))


implement(
    "04.4",
    "ghash(h, aad, ciphertext): GHASH_H(A, C) of SP 800-38D 6.4, a 16-byte block",
    hint=("GHASH is Horner's rule in GF(2^128): start from zero and, for each input block, xor it "
          "in and multiply by H.",
          "The input blocks are A zero-padded to 16 bytes, then C zero-padded, then one block with "
          "the bit lengths of A and C as two 64-bit big-endian integers. Turn blocks into field "
          "elements and back with the gf module's block conversions; multiply with its gf128_mul."),
    spec=FunctionSpec("ghash", gcm.ghash, _ghash_inputs, trials=30, hide=("labkit.gcm:ghash",)),
    where="homework",
)


def _reuse_inputs(rng) -> tuple:
    _, aad1, ct1 = _ghash_inputs(rng)
    _, aad2, ct2 = _ghash_inputs(rng)
    return ct1, _random_bytes(rng, 16), ct2, _random_bytes(rng, 16), aad1, aad2


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
                      equal=lambda got, want: gf.poly_trim(got) == gf.poly_trim(want),
                      hide=("labkit.gcm:nonce_reuse_polynomial",)),
    where="homework",
)


_SENT = (b"user=guest;role=reader;", b"user=carol;role=writer;quota=5", b"user=dave;role=reader;")
_WANTED = b"user=admin;role=writer;"


def forgery_challenge() -> dict:
    """Exercise 04.6: what an eavesdropper saw, three AES-GCM messages (ciphertext, tag, associated
    data) sent under one key and one nonce, and the message it wants signed: the first ciphertext
    with bits flipped to read ``user=admin;role=writer;``. The key stays on the server."""
    s = _secrets()
    out = {"nonce": s["nonce"]}
    for i, msg in enumerate(_SENT, start=1):
        out[f"ct{i}"], out[f"tag{i}"] = gcm.encrypt(s["key"], s["nonce"], msg, b"v1")
        out[f"aad{i}"] = b"v1"
    # CTR malleability: flipping ciphertext bits flips the same plaintext bits
    out["target_ciphertext"] = bytes(c ^ p ^ q for c, p, q in zip(out["ct1"], _SENT[0], _WANTED))
    out["target_aad"] = b"v1"
    return out


@exercise(
    "04.6",
    "a tag for forgery_challenge()['target_ciphertext'] that AES-GCM accepts",
    hint=("Recover the hash key H from two messages that share the nonce, then the tag mask, then "
          "sign the target yourself.",
          "H is a root of the nonce-reuse polynomial of messages 1 and 2; when it has several roots, "
          "keep the one that predicts the third message's tag.",
          "With H, the mask E_K(J0) is tag1 xor GHASH_H(aad1, ct1); the forged tag is "
          "GHASH_H(target_aad, target_ciphertext) xor that mask."),
    kind="attack",
    where="homework",
)
def _forgery(answer):
    ch, s = forgery_challenge(), _secrets()
    cipher = AES.new(s["key"], AES.MODE_GCM, nonce=s["nonce"])
    cipher.update(ch["target_aad"])
    try:
        cipher.decrypt_and_verify(ch["target_ciphertext"], bytes(answer))
    except ValueError:
        return False, "the server (pycryptodome, with this run's key) rejects that tag"
    return True, "the server (pycryptodome, with this run's key) accepted the forged message"


# --- concept questions (kind "quiz"; answers stored as salted digests, see quiz.py) ---

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
    "da239a974643be88e74220b5f67577be0ea3edc2ca5930bf89be8d394c5d7199",
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
    "9c0edf2bf901b0f814435a69893e205c4752397ec74e60da3ff20126784ff540",
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
    "d08b1d0c72004de39011a391bf8357a04ad4523b3ce68ae44746484fea2fb63c",
    hint=("In the IND-CPA game the adversary keeps its encryption oracle after choosing m0 and "
          "m1.",
          "For each option, ask the oracle for Enc(m0) and compare it with the challenge: does "
          "the scheme give the same ciphertext twice?"),
    where="class",
)
