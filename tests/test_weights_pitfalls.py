"""The counter-examples of labkit.weights.pitfalls do what they claim (and the container not)."""
import base64
import json
import os
import struct

import pytest
import torch

from labkit import weights as W
from labkit.weights import pitfalls as P


def test_nonce_reuse_leaks_the_secret_tensor_exactly():
    g = torch.Generator().manual_seed(1)
    base, tuned = torch.randn(64, 8, generator=g), torch.randn(64, 8, generator=g)
    leaked = P.nonce_reuse_leak(base, tuned)
    assert torch.equal(leaked, tuned)
    with pytest.raises(ValueError):
        P.nonce_reuse_leak(base, tuned[:3])


def test_naive_loader_returns_a_partial_model_where_open_refuses(tmp_path):
    device = W.generate_recipient_keypair()
    state = {"a": torch.randn(100), "b": torch.randn(100), "c": torch.randn(100)}
    path = tmp_path / "m.lkw"
    W.seal(state, path, [device.public_key])
    header = W.read_header(path)
    data = bytearray(path.read_bytes())
    data[header.data_start + header.tensors["b"]["offsets"][0] + 5] ^= 4
    path.write_bytes(data)
    partial = P.naive_open(path, device.private_key)
    assert sorted(partial) == ["a", "c"] and torch.equal(partial["a"], state["a"])
    with pytest.raises(W.IntegrityError):
        W.open(path, device.private_key)


def test_zeroisation_is_best_effort():
    report = P.immutable_key_copies()
    assert report == {"our bytearray is zero": True, "bytes copy could be wiped": False,
                      "bytes copy still holds the key": True, "hex text still holds the key": True}


def test_cryptotensors_does_not_protect_plaintext_tensors(tmp_path):
    """The gap named in DESIGN.md, checked on the real package (a dev dependency)."""
    ct = pytest.importorskip("cryptotensors")
    from Crypto.PublicKey import ECC
    from cryptotensors.torch import save_file

    b64 = lambda x: base64.b64encode(x).decode()  # noqa: E731
    sk = ECC.generate(curve="Ed25519")
    enc = {"kty": "oct", "k": b64(os.urandom(32)), "alg": "aes256gcm", "kid": "e"}
    sig = {"kty": "OKP", "crv": "Ed25519", "d": b64(sk.seed),
           "x": b64(sk.public_key().export_key(format="raw")), "kid": "s"}
    state = {"secret": torch.randn(100), "bias": torch.ones(10)}
    path = str(tmp_path / "ct.safetensors")
    save_file(state, path, config={"enc_key": enc, "sign_key": sig, "tensors": ["secret"]})
    data = bytearray(open(path, "rb").read())
    n = struct.unpack("<Q", data[:8])[0]
    a, e = json.loads(data[8 : 8 + n])["bias"]["data_offsets"]
    data[8 + n + a : 8 + n + e] = torch.full((10,), -5.0).numpy().tobytes()
    open(path, "wb").write(data)
    with ct.safe_open(path, framework="pt", config={"enc_key": enc, "sign_key": sig}) as f:
        loaded = {k: f.get_tensor(k) for k in f.keys()}
    assert torch.equal(loaded["bias"], torch.full((10,), -5.0))  # accepted, silently
    assert torch.equal(loaded["secret"], state["secret"])
