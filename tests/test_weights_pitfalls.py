"""The counter-examples of labkit.weights.pitfalls do what they claim (and the container not)."""
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
    publisher = W.generate_signing_keypair()
    W.seal(state, path, [device.public_key], signing_key=publisher)
    header = W.read_header(path)
    data = bytearray(path.read_bytes())
    data[header.data_start + header.parsed.tensor("b").begin + 5] ^= 4
    path.write_bytes(data)
    partial = P.naive_open(path, device.private_key)
    assert sorted(partial) == ["a", "c"] and torch.equal(partial["a"], state["a"])
    with pytest.raises(W.IntegrityError):
        W.open(path, device.private_key, signer=publisher.public_key)


def test_zeroisation_is_best_effort():
    report = P.immutable_key_copies()
    assert report == {"our bytearray is zero": True, "bytes copy could be wiped": False,
                      "bytes copy still holds the key": True, "hex text still holds the key": True}


def test_cryptotensors_does_not_protect_plaintext_tensors(tmp_path):
    """The gap named in DESIGN.md, checked on the real package (a dev dependency)."""
    pytest.importorskip("cryptotensors")
    assert P.cryptotensors_plaintext_gap(tmp_path) == {"tampered bias accepted": True,
                                                       "secret decrypted": True}
