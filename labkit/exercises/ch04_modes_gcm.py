"""Exercises of chapter 04 (modes and GCM). Each checker recomputes its answer with labkit."""
from Crypto.Cipher import AES

from labkit import gcm, modes
from labkit.exercises import exercise
from labkit.exercises._session import session_secret
from labkit.exercises.quiz import quiz
from labkit.widgets.modes import demo_image


@exercise(
    "04.1",
    "the number of distinct 16-byte blocks in the ECB encryption of demo_image()",
    hint="Encrypt demo_image().tobytes() with labkit.modes.ecb_encrypt (any key) and count "
         "set(labkit.modes.split_blocks(...)).",
)
def _ecb_blocks(answer):
    ct = modes.ecb_encrypt(bytes(range(16)), demo_image().tobytes())
    return int(answer) == len(set(modes.split_blocks(ct)))


def _secrets() -> dict:
    """This run's key, nonce and secret message of exercises 04.2 and 04.4, fresh from the CSPRNG."""
    return session_secret("04", lambda draw: {
        "key": draw(16), "nonce": draw(12),
        "message": b"The exam answers are in folder " + draw(8).hex().encode() + b"."})


_KNOWN = b"From: lab-server. Status report, all systems nominal."


def keystream_challenge() -> dict:
    """Exercise 04.2: two CTR ciphertexts under the same key and counter, and the first plaintext."""
    s = _secrets()
    counter = s["nonce"] + bytes(4)
    return {"ct1": modes.ctr_encrypt(s["key"], counter, _KNOWN),
            "ct2": modes.ctr_encrypt(s["key"], counter, s["message"]),
            "known_plaintext1": _KNOWN}


@exercise(
    "04.2",
    "the second plaintext of keystream_challenge()",
    hint="With one counter, C1 xor C2 = P1 xor P2; XOR in the known P1 (labkit.bits.xor_bytes), "
         "cutting everything to the shorter length.",
)
def _keystream(answer):
    return bytes(answer) == _secrets()["message"]


GHASH_EXAMPLE = {"h": bytes.fromhex("66e94bd4ef8a2c3b884cfa59ca342b2e"), "aad": b"header",
                 "ciphertext": bytes.fromhex("0388dace60b6a392f328c2b971b2fe78")}


@exercise(
    "04.3",
    "GHASH_H(A, C) for GHASH_EXAMPLE, computed block by block",
    hint="Blocks: A padded, C padded, then 64-bit bit lengths of A and C; Y = (Y xor X) * H with "
         "labkit.gf.gf128_mul on gf128_from_block values.",
)
def _ghash(answer):
    return bytes(answer) == gcm.ghash(**GHASH_EXAMPLE)


def forgery_challenge() -> dict:
    """Exercise 04.4: two GCM messages that reused a nonce, and a ciphertext you must sign."""
    s = _secrets()
    out = {"nonce": s["nonce"]}
    for i, msg in ((1, b"user=guest;role=reader;"), (2, b"user=carol;role=writer;quota=5")):
        out[f"ct{i}"], out[f"tag{i}"] = gcm.encrypt(s["key"], s["nonce"], msg, b"v1")
        out[f"aad{i}"] = b"v1"
    # CTR malleability: flipping ciphertext bits flips the same plaintext bits
    delta = bytes(a ^ b for a, b in zip(b"user=guest;role=reader;", b"user=admin;role=writer;"))
    out["target_ciphertext"] = bytes(a ^ b for a, b in zip(out["ct1"], delta))
    out["target_aad"] = b"v1"
    return out


@exercise(
    "04.4",
    "a tag for forgery_challenge()['target_ciphertext'] that AES-GCM accepts",
    hint="recover_auth_key(ct1, tag1, ct2, tag2, aad1, aad2) gives H candidates; forge_tag(h, aad1, "
         "ct1, tag1, target_ciphertext, target_aad) signs the target. One candidate is right.",
)
def _forgery(answer):
    ch, s = forgery_challenge(), _secrets()
    cipher = AES.new(s["key"], AES.MODE_GCM, nonce=s["nonce"])
    cipher.update(ch["target_aad"])
    try:
        cipher.decrypt_and_verify(ch["target_ciphertext"], bytes(answer))
    except ValueError:
        return False, "pycryptodome rejects that tag"
    return True, "pycryptodome accepted the forged message"


# --- concept questions (kind "quiz"; answers stored as salted digests, see quiz.py) ---

quiz(
    '04.5',
    '(the why of 04.1) Why does any key give the same number of distinct ECB blocks for demo_image()?',
    [
     'Because ECB ignores the key for repeated blocks.',
     'Because the image is padded with PKCS#7.',
     'Because under one key AES is a permutation applied block by block: equal plaintext blocks give equal ciphertext blocks and different ones different, so the count is the number of distinct plaintext blocks.',
     'Because AES has no weak keys.',
    ],
    "aa7e951019a307f1310f5adaefed8a98c022a4e8ccc0b3bcd0e2e048951ad900",
    hint='Is a block cipher under a fixed key one-to-one?',
)

quiz(
    '04.6',
    'Why must a GCM nonce never repeat under one key?',
    [
     'Because the tag would become shorter.',
     'Because the counter keystream repeats (C1 xor C2 = P1 xor P2) and the two tags give a polynomial in the hash key H whose roots reveal H, after which tags can be forged for any message.',
     'Because decryption would fail for the second message.',
     "Because a repeated nonce changes the block cipher's key.",
    ],
    "1c780a381fd3f5eb68212fb19001ef1f48f0c829ad0c8bfc9993a0fd99a30c0b",
    hint='Two costs: one for confidentiality (CTR), one for authenticity (GHASH).',
)

quiz(
    '04.7',
    'Why is no deterministic encryption scheme (ECB, or CTR with a fixed counter) IND-CPA secure?',
    [
     'Because the adversary may ask the encryption oracle for Enc(m0) and compare it with the challenge: a deterministic scheme answers the same ciphertext for the same plaintext.',
     'Because its key is too short.',
     'Because it has no authentication tag.',
     'It is secure as long as the key stays secret.',
    ],
    "da239a974643be88e74220b5f67577be0ea3edc2ca5930bf89be8d394c5d7199",
    hint='In the IND-CPA game the adversary keeps its encryption oracle after choosing m0 and m1.',
)

quiz(
    '04.8',
    'CTR with fresh counters is IND-CPA secure. Why does GCM still add a tag?',
    [
     'To make encryption faster.',
     'Because IND-CPA says nothing about tampering: CTR is malleable (flipping a ciphertext bit flips the same plaintext bit), while authenticated encryption also requires that every forged or modified ciphertext is rejected.',
     'Because CTR leaks the key after 2^32 blocks.',
     'To pad the message to whole blocks.',
    ],
    "40c91959f86f971825135de7c54f80fee073f88bcf20855909b7038131194c90",
    hint="Exercise 04.4's target ciphertext was made by flipping bits: what stopped it?",
)
