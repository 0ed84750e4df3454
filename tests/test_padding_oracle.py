"""The CBC padding-oracle attack, written as the attacker would test it: random messages of random
lengths under fresh keys decrypt exactly, within 256 oracle queries per byte, and AES-GCM's uniform
rejection leaves the same attack with nothing."""
import os
import random

import pytest
from Crypto.Cipher import AES
from Crypto.Util.Padding import pad

from labkit import gcm, modes, padding_oracle


def _synthetic_oracle(intermediate: bytes):
    """A padding oracle for a block whose decryption D_K(C) is ``intermediate`` (no AES needed)."""
    def oracle(forged, block):
        try:
            modes.pkcs7_unpad(bytes(a ^ b for a, b in zip(intermediate, forged)))
        except modes.PaddingError:
            return False
        return True
    return oracle


@pytest.mark.parametrize("trial", range(3))
def test_attack_decrypts_random_messages_under_fresh_keys(trial):
    rng = random.Random()
    key, iv = os.urandom(16), os.urandom(16)
    message = os.urandom(rng.randrange(0, 40))
    ciphertext = AES.new(key, AES.MODE_CBC, iv=iv).encrypt(pad(message, 16))  # the victim: pycryptodome
    server = padding_oracle.CbcPaddingServer(key)
    result = padding_oracle.decrypt(server, iv, ciphertext)
    assert result.plaintext == message and result.padded_plaintext == pad(message, 16)
    assert result.queries == server.queries == sum(result.queries_per_byte)
    assert len(result.queries_per_byte) == len(ciphertext) and max(result.queries_per_byte) <= 256
    assert sorted(i for i, _ in result.order) == list(range(len(ciphertext)))


@pytest.mark.parametrize("byte14, byte15", [(2, 0xFE), (2, 0x00), (2, 0x41), (3, 0xFE), (0x10, 0x77)])
def test_false_hits_on_the_last_byte_are_caught_within_256_queries(byte14, byte15):
    # D_K(C) ending in (2, x): the forged zero byte 14 makes "02 02" valid by chance, before or after
    # the real "01"; 0xFE puts the real hit at the very last guess.
    intermediate = bytearray(os.urandom(16))
    intermediate[13:16] = bytes([3 if byte14 == 3 else intermediate[13], byte14, byte15])
    previous = os.urandom(16)
    plain, spent = padding_oracle.decrypt_block(_synthetic_oracle(bytes(intermediate)), previous, os.urandom(16))
    assert plain == bytes(a ^ b for a, b in zip(intermediate, previous))
    assert max(spent) <= 256


def test_many_random_blocks_stay_within_256_queries_per_byte():
    for _ in range(40):
        intermediate, previous = os.urandom(16), os.urandom(16)
        plain, spent = padding_oracle.decrypt_block(_synthetic_oracle(intermediate), previous, bytes(16))
        assert plain == bytes(a ^ b for a, b in zip(intermediate, previous)) and max(spent) <= 256


def test_gcm_rejects_every_modification_with_one_uniform_answer():
    key, nonce = os.urandom(16), os.urandom(12)
    ct, tag = gcm.encrypt(key, nonce, b"sixteen byte msg" * 2)
    server = padding_oracle.GcmServer(key)
    assert server(nonce, ct + tag)
    with pytest.raises(padding_oracle.OracleSilent, match="reveals nothing"):
        padding_oracle.decrypt(server, nonce + bytes(4), ct + tag)
    assert server.queries == 1 + 256  # every guess of the first byte got the same rejection
    flipped = {server(nonce, ct[:i] + bytes([ct[i] ^ 1]) + ct[i + 1:] + tag) for i in range(len(ct))}
    assert flipped == {False}


def test_oracles_hide_the_key_and_validate():
    key = os.urandom(16)
    server = padding_oracle.CbcPaddingServer(key)
    assert key.hex() not in repr(server) and repr(key) not in repr(server)
    with pytest.raises(ValueError, match="16, 24 or 32"):
        padding_oracle.CbcPaddingServer(bytes(15))
    with pytest.raises(ValueError, match="iv must be 16 bytes"):
        padding_oracle.decrypt(server, bytes(8), bytes(16))
    with pytest.raises(ValueError, match="at least one block"):
        padding_oracle.decrypt(server, bytes(16), b"")
    with pytest.raises(ValueError, match="multiple of 16"):
        padding_oracle.decrypt(server, bytes(16), bytes(17))


def test_gcm_server_takes_only_full_tags_and_rejects_every_length_alike():
    """The attacker's short-tag forgery: an input shorter than 16 bytes used to be read as an empty
    ciphertext with a 4-15-byte tag, guessable in about 2^32 queries. Here the attacker is handed the
    right short tag outright (computed with the key, as a lucky guess would be): still rejected, with
    the same answer as every random input of every length 0..40, while the genuine message passes."""
    key, nonce = os.urandom(16), os.urandom(12)
    server = padding_oracle.GcmServer(key)
    _, empty_tag = gcm.encrypt(key, nonce, b"")
    for length in gcm.TAG_LENGTHS[:-1]:  # 4, 8, 12..15: the short tags SP 800-38D allows
        assert gcm.decrypt(key, nonce, b"", empty_tag[:length]) == b""  # GCM itself accepts them
        assert server(nonce, empty_tag[:length]) is False
    assert server(nonce, empty_tag) is True  # the genuine empty message, full tag
    ct, tag = gcm.encrypt(key, nonce, b"attack at dawn, or at noon")
    assert server(nonce, ct + tag) is True
    answers = {server(nonce, os.urandom(length)) for length in range(0, 41) for _ in range(4)}
    answers |= {server(nonce, (ct + tag)[:length]) for length in range(0, len(ct) + len(tag))}  # every truncation
    answers |= {server(nonce, (ct + tag)[-length:]) for length in range(1, 16)}  # the tag's last bytes alone
    assert answers == {False}
    assert server(os.urandom(8), ct + tag) is False and server(b"", ct + tag) is False  # other nonces alike
    with pytest.raises(ValueError, match="16, 24 or 32"):
        padding_oracle.GcmServer(bytes(15))
