"""ECB, CBC and CTR on labkit's AES against pycryptodome (NIST SP 800-38A)."""
import numpy as np
import pytest
from Crypto.Cipher import AES
from Crypto.Util import Counter
from Crypto.Util.Padding import pad
from hypothesis import given, settings, strategies as st

from labkit import modes

keys = st.sampled_from([16, 24, 32]).flatmap(lambda n: st.binary(min_size=n, max_size=n))
iv = st.binary(min_size=16, max_size=16)


@settings(max_examples=25, deadline=None)
@given(keys, st.binary(max_size=80))
def test_ecb(key, message):
    data = modes.pkcs7_pad(message)
    assert data == pad(message, 16)
    ct = modes.ecb_encrypt(key, data)
    assert ct == AES.new(key, AES.MODE_ECB).encrypt(data)
    assert modes.pkcs7_unpad(modes.ecb_decrypt(key, ct)) == message


@settings(max_examples=25, deadline=None)
@given(keys, iv, st.binary(max_size=80))
def test_cbc(key, iv, message):
    data = modes.pkcs7_pad(message)
    ct = modes.cbc_encrypt(key, iv, data)
    assert ct == AES.new(key, AES.MODE_CBC, iv=iv).encrypt(data)
    assert modes.cbc_decrypt(key, iv, ct) == data


@settings(max_examples=25, deadline=None)
@given(keys, iv, st.binary(max_size=80))
def test_ctr_with_a_128_bit_counter(key, counter, message):
    ref = AES.new(key, AES.MODE_CTR, nonce=b"", initial_value=counter)
    ct = modes.ctr_encrypt(key, counter, message)
    assert ct == ref.encrypt(message)
    assert modes.ctr_decrypt(key, counter, ct) == message


def test_ctr_counter_wraps_around():
    key, counter = bytes(16), b"\xff" * 16
    ref = AES.new(key, AES.MODE_CTR, counter=Counter.new(128, initial_value=(1 << 128) - 1,
                                                           allow_wraparound=True))
    assert modes.ctr_encrypt(key, counter, bytes(48)) == ref.encrypt(bytes(48))
    assert modes.increment_counter(b"\xff" * 16, counter_bits=32) == b"\xff" * 12 + bytes(4)


def test_ecb_leaks_equal_blocks_cbc_does_not():
    key, iv = bytes(range(16)), bytes(16)
    data = b"YELLOW SUBMARINE" * 4
    ecb = modes.split_blocks(modes.ecb_encrypt(key, data))
    cbc = modes.split_blocks(modes.cbc_encrypt(key, iv, data))
    assert len(set(ecb)) == 1 and len(set(cbc)) == 4


def test_padding_errors_and_validation():
    with pytest.raises(modes.PaddingError):
        modes.pkcs7_unpad(b"A" * 15 + b"\x03")
    with pytest.raises(modes.PaddingError):
        modes.pkcs7_unpad(b"A" * 15 + b"\x00")
    with pytest.raises(ValueError, match="multiple of 16"):
        modes.ecb_encrypt(bytes(16), b"short")
    with pytest.raises(ValueError, match="iv must be 16 bytes"):
        modes.cbc_encrypt(bytes(16), bytes(8), bytes(16))
    with pytest.raises(TypeError, match="plaintext must be bytes"):
        modes.ctr_encrypt(bytes(16), bytes(16), "text")
    assert modes.ctr_encrypt(bytes(16), bytes(16), b"") == b""
