"""Exercises of chapters 03 and 04: the worked solutions pass, wrong answers get a hint."""
from labkit import aes, bits, exercises as ex, gcm, gf, modes, square_attack
from labkit.exercises.ch03_aes import square_challenge
from labkit.exercises.ch04_modes_gcm import GHASH_EXAMPLE, forgery_challenge, keystream_challenge
from labkit.widgets.modes import demo_image


def test_registered():
    assert {"03.1", "03.2", "03.3", "03.4", "04.1", "04.2", "04.3", "04.4"} <= set(ex.registry())


def test_chapter_03_solutions():  # the implement exercises in detail: tests/test_exercises_ch03.py
    assert ex.check("03.1", gf.gf256_mul) and not ex.check("03.1", lambda a, b: a ^ b)
    assert ex.check("03.2", lambda b: aes.SBOX[b]) and not ex.check("03.2", gf.gf256_inverse)
    assert ex.check("03.5", 2) and not ex.check("03.5", 1) and not ex.check("03.5", 10)
    key = square_attack.square_attack(square_challenge(), progress=False).master_key
    assert ex.check("03.6", key) and not ex.check("03.6", bytes(16))


def test_chapter_04_solutions():
    ecb = modes.ecb_encrypt(bytes(16), demo_image().tobytes())
    assert ex.check("04.1", len(set(modes.split_blocks(ecb)))) and not ex.check("04.1", 1024)

    ch = keystream_challenge()
    n = min(len(ch["ct1"]), len(ch["ct2"]))
    secret = bits.xor_bytes(bits.xor_bytes(ch["ct1"][:n], ch["ct2"][:n]), ch["known_plaintext1"][:n])
    assert ex.check("04.2", secret) and not ex.check("04.2", ch["known_plaintext1"])

    # GHASH by hand, Horner's rule in GF(2^128)
    h = gf.gf128_from_block(GHASH_EXAMPLE["h"])
    y = 0
    for block in gcm.ghash_blocks(GHASH_EXAMPLE["aad"], GHASH_EXAMPLE["ciphertext"]):
        y = gf.gf128_mul(y ^ gf.gf128_from_block(block), h)
    assert ex.check("04.3", gf.gf128_to_block(y)) and not ex.check("04.3", bytes(16))

    ch = forgery_challenge()
    tags = [gcm.forge_tag(h, ch["aad1"], ch["ct1"], ch["tag1"], ch["target_ciphertext"], ch["target_aad"])
            for h in gcm.recover_auth_key(ch["ct1"], ch["tag1"], ch["ct2"], ch["tag2"], ch["aad1"], ch["aad2"])]
    assert sum(bool(ex.check("04.4", t)) for t in tags) == 1
    assert not ex.check("04.4", ch["tag1"])
