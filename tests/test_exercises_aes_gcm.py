"""Exercises of chapters 03 and 04: the worked solutions pass, wrong answers get a hint."""
import hashlib
import hmac
import os

import pytest
from Crypto.Cipher import AES

from labkit import aes, bits, exercises as ex, gcm, gf128, gf256, hkdf, modes, padding_oracle, square_attack
from labkit.exercises.ch03_aes import square_challenge
from labkit.exercises import service_handles
from labkit.exercises.ch04_modes_gcm import forgery_challenge, keystream_challenge
from labkit.exercises.ch04b_modes_practice import padding_oracle_challenge
from labkit.widgets.modes import demo_image


def test_registered():
    assert {"03.1", "03.2", "03.3", "03.4"} | {f"04.{i}" for i in range(1, 14)} <= set(ex.registry())


def test_chapter_03_solutions():  # the implement exercises in detail: tests/test_exercises_ch03.py
    assert ex.check("03.1", gf256.mul) and not ex.check("03.1", lambda a, b: a ^ b)
    assert ex.check("03.2", lambda b: aes.SBOX[b]) and not ex.check("03.2", gf256.inverse)
    assert ex.check("03.5", 2) and not ex.check("03.5", 1) and not ex.check("03.5", 10)
    key = square_attack.square_attack(square_challenge(), progress=False).master_key
    assert ex.check("03.6", key) and not ex.check("03.6", bytes(16))


def test_chapter_04_kinds():
    kinds = {k: e.kind for k, e in ex.registry().items() if k.startswith("04.")}
    assert kinds == {"04.1": "value", "04.2": "implement", "04.3": "attack", "04.4": "implement",
                     "04.5": "implement", "04.6": "attack", "04.7": "quiz", "04.8": "quiz",
                     "04.9": "quiz", "04.10": "attack", "04.11": "implement", "04.12": "quiz",
                     "04.13": "quiz", "04.14": "game"}


def test_chapter_04_value_and_keystream_attack():
    ecb = modes.ecb_encrypt(bytes(16), demo_image().tobytes())
    assert ex.check("04.1", len(set(modes.split_blocks(ecb)))) and not ex.check("04.1", 1024)

    ch = keystream_challenge()
    n = min(len(ch["ct1"]), len(ch["ct2"]))
    secret = bits.xor_bytes(bits.xor_bytes(ch["ct1"][:n], ch["ct2"][:n]), ch["known_plaintext1"][:n])
    assert ex.check("04.3", secret) and not ex.check("04.3", ch["known_plaintext1"])


def _cbc_decrypt_by_hand(key, iv, ciphertext):
    blocks = [ciphertext[i: i + 16] for i in range(0, len(ciphertext), 16)]
    return b"".join(bits.xor_bytes(aes.decrypt_block(key, c), p) for p, c in zip([iv] + blocks, blocks))


def _ghash_by_hand(h, aad, ciphertext):  # Horner's rule, SP 800-38D Algorithm 2
    y, hh = 0, gf128.from_block(h)
    for block in gcm.ghash_blocks(aad, ciphertext):
        y = gf128.mul(y ^ gf128.from_block(block), hh)
    return gf128.to_block(y)


def _hkdf_expand_by_hand(prk, info, length):
    out, block, i = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([i]), hashlib.sha256).digest()
        out, i = out + block, i + 1
    return out[:length]


@pytest.mark.parametrize("exercise_id, right, wrong", [
    ("04.2", _cbc_decrypt_by_hand, lambda key, iv, ct: b"".join(  # every block xored with the IV
        bits.xor_bytes(aes.decrypt_block(key, ct[i: i + 16]), iv) for i in range(0, len(ct), 16))),
    ("04.2", modes.cbc_decrypt, lambda key, iv, ct: modes.cbc_decrypt(key, bytes(16), ct)),
    ("04.4", _ghash_by_hand, lambda h, aad, ct: _ghash_by_hand(h, b"", aad + ct)),
    ("04.4", gcm.ghash, lambda h, aad, ct: _ghash_by_hand(h, ct, aad)),
    ("04.5", gcm.nonce_reuse_polynomial, lambda *a: gcm.nonce_reuse_polynomial(*a)[1:]),
    ("04.5", lambda *a: gcm.nonce_reuse_polynomial(*a) + [0, 0], lambda *a: gcm.nonce_reuse_polynomial(*a[:4])),
    ("04.11", _hkdf_expand_by_hand, lambda prk, info, n: _hkdf_expand_by_hand(prk, b"", n)),
    ("04.11", hkdf.expand, lambda prk, info, n: hmac.new(prk, info + b"\x01", hashlib.sha256).digest()[:n]),
])
def test_implement_checkers_accept_right_and_reject_wrong_functions(exercise_id, right, wrong):
    assert ex.check(exercise_id, right)
    feedback = ex.check(exercise_id, wrong)
    assert not feedback and "expected" in str(feedback)


def test_independent_solutions_match_pycryptodome():
    key, iv, ct = os.urandom(16), os.urandom(16), os.urandom(48)
    assert _cbc_decrypt_by_hand(key, iv, ct) == AES.new(key, AES.MODE_CBC, iv=iv).decrypt(ct)
    key, nonce, pt, aad = os.urandom(16), os.urandom(12), os.urandom(40), os.urandom(9)
    cipher = AES.new(key, AES.MODE_GCM, nonce=nonce)
    cipher.update(aad)
    ct, tag = cipher.encrypt_and_digest(pt)
    mask = AES.new(key, AES.MODE_ECB).encrypt(nonce + bytes([0, 0, 0, 1]))
    assert bits.xor_bytes(_ghash_by_hand(AES.new(key, AES.MODE_ECB).encrypt(bytes(16)), aad, ct), mask) == tag


def _forge(ch):
    """The forbidden attack as the student writes it: roots of the polynomial of messages 1 and 2,
    the candidate that predicts tag 3, then the target's tag."""
    for h in gcm.recover_auth_key(ch["ct1"], ch["tag1"], ch["ct2"], ch["tag2"], ch["aad1"], ch["aad2"]):
        if gcm.forge_tag(h, ch["aad1"], ch["ct1"], ch["tag1"], ch["ct3"], ch["aad3"]) == ch["tag3"]:
            return gcm.forge_tag(h, ch["aad1"], ch["ct1"], ch["tag1"], ch["target_ciphertext"], ch["target_aad"])
    raise AssertionError("no root predicts the third tag")


def test_chapter_04_forgery_uses_only_what_an_eavesdropper_has():
    service_handles.new_run()
    ch = forgery_challenge()
    assert set(ch) == {"nonce", "ct1", "tag1", "aad1", "ct2", "tag2", "aad2", "ct3", "tag3", "aad3",
                       "target_ciphertext", "target_aad"}
    assert ex.check("04.6", _forge(ch))
    assert not ex.check("04.6", ch["tag1"]) and not ex.check("04.6", bytes(16))


def _last_block_from_oracle(oracle, previous, block):
    """A padding-oracle attacker's last-block decryption, independent of labkit.padding_oracle."""
    known = bytearray(16)
    for j in range(15, -1, -1):
        pad = 16 - j
        for guess in range(256):
            forged = bytearray(os.urandom(j)) + bytes([guess]) + bytes(k ^ pad for k in known[j + 1:])
            if oracle(bytes(forged), block):
                if j == 15:
                    forged[14] ^= 0xFF
                    if not oracle(bytes(forged), block):
                        continue
                known[j] = guess ^ pad
                break
    return bits.xor_bytes(bytes(known), previous)


def test_chapter_04b_padding_oracle_attack():
    service_handles.new_run()
    ch = padding_oracle_challenge()
    assert set(ch) == {"iv", "ciphertext", "oracle"}
    blocks = [ch["iv"]] + modes.split_blocks(ch["ciphertext"])
    answer = _last_block_from_oracle(ch["oracle"], blocks[-2], blocks[-1])
    assert ex.check("04.10", answer) and not ex.check("04.10", blocks[-1])
    assert padding_oracle.decrypt_block(ch["oracle"], blocks[-2], blocks[-1])[0] == answer
