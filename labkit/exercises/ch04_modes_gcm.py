"""Exercises of chapter 04 (modes and GCM). Each checker recomputes its answer with labkit."""
import numpy as np
from Crypto.Cipher import AES

from labkit import gcm, modes
from labkit.exercises import exercise
from labkit.widgets.modes import demo_image


@exercise(
    "04.1",
    "the number of distinct 16-byte blocks in the ECB encryption of demo_image()",
    hint="Encrypt demo_image().tobytes() with labkit.modes.ecb_encrypt (any key) and count "
         "set(labkit.modes.split_blocks(...)).",
    solution="len(set(modes.split_blocks(modes.ecb_encrypt(bytes(16), demo_image().tobytes()))))",
)
def _ecb_blocks(answer):
    ct = modes.ecb_encrypt(bytes(range(16)), demo_image().tobytes())
    return int(answer) == len(set(modes.split_blocks(ct)))


def _secrets():
    rng = np.random.default_rng(2026_04)
    return {"key": rng.bytes(16), "nonce": rng.bytes(12)}


_KNOWN = b"From: lab-server. Status report, all systems nominal."
_SECRET = b"The exam answers are in the blue folder on shelf 3."


def keystream_challenge() -> dict:
    """Exercise 04.2: two CTR ciphertexts under the same key and counter, and the first plaintext."""
    s = _secrets()
    counter = s["nonce"] + bytes(4)
    return {"ct1": modes.ctr_encrypt(s["key"], counter, _KNOWN),
            "ct2": modes.ctr_encrypt(s["key"], counter, _SECRET),
            "known_plaintext1": _KNOWN}


@exercise(
    "04.2",
    "the second plaintext of keystream_challenge()",
    hint="With one counter, C1 xor C2 = P1 xor P2; XOR in the known P1 (labkit.bits.xor_bytes), "
         "cutting everything to the shorter length.",
    solution="xor_bytes(xor_bytes(ch['ct1'], ch['ct2']), ch['known_plaintext1'])",
)
def _keystream(answer):
    return bytes(answer) == _SECRET


GHASH_EXAMPLE = {"h": bytes.fromhex("66e94bd4ef8a2c3b884cfa59ca342b2e"), "aad": b"header",
                 "ciphertext": bytes.fromhex("0388dace60b6a392f328c2b971b2fe78")}


@exercise(
    "04.3",
    "GHASH_H(A, C) for GHASH_EXAMPLE, computed block by block",
    hint="Blocks: A padded, C padded, then 64-bit bit lengths of A and C; Y = (Y xor X) * H with "
         "labkit.gf.gf128_mul on gf128_from_block values.",
    solution="labkit.gcm.ghash(**GHASH_EXAMPLE)",
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
    solution="[gcm.forge_tag(h, ch['aad1'], ch['ct1'], ch['tag1'], ch['target_ciphertext'], "
             "ch['target_aad']) for h in gcm.recover_auth_key(...)]  # try each",
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
