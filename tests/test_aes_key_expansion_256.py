"""AES-256 key expansion against FIPS 197 Appendix A.3, including the extra SubWord (i mod Nk = 4)."""
import numpy as np

from labkit import aes

KEY = bytes.fromhex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
# FIPS 197 Appendix A.3, w[8]..w[15] and the last word w[59]
A3_WORDS = {8: "9ba35411", 9: "8e6925af", 10: "a51a8b5f", 11: "2067fcde",
            12: "a8b09c1a", 13: "93d194cd", 14: "be49846e", 15: "b75d5b9a", 59: "706c631e"}


def _words():
    schedule = b"".join(aes.expand_key(KEY))
    return [schedule[4 * i: 4 * i + 4] for i in range(60)]


def test_appendix_a3_words():
    w = _words()
    assert {i: w[i].hex() for i in A3_WORDS} == A3_WORDS


def test_extra_subword_when_i_mod_nk_is_4():
    w = _words()
    for i in range(12, 60, 8):  # i mod 8 == 4: w[i] = w[i-8] ^ SubWord(w[i-1]), no RotWord, no Rcon
        sub = aes.sub_word(np.frombuffer(w[i - 1], np.uint8)).tobytes()
        assert w[i] == bytes(a ^ b for a, b in zip(w[i - 8], sub))
        assert w[i] != bytes(a ^ b for a, b in zip(w[i - 8], w[i - 1])), "without SubWord it differs"
