"""AES-128 and DES as ReLU networks: sizes as in the paper, equal to pycryptodome on random blocks,
affine maps and ReLU only, behaviour on non-binary inputs."""
import importlib.util

import numpy as np
import pytest
import torch
from Crypto.Cipher import AES, DES

from labkit import bits
from labkit.neural import PAPER_SIZES, aes128_network, check_affine_relu, des_network

DTYPES = [torch.float32, torch.float64]
VARIANTS = [(1.0, False), (0.5, True), (0.3, False), (1.0, True), (0.5, False)]


def _reference(cipher, key, blocks):
    size = blocks.shape[1]
    ct = cipher.new(key, cipher.MODE_ECB).encrypt(blocks.tobytes())
    return np.frombuffer(ct, dtype=np.uint8).reshape(-1, size)


def _run(net, blocks):
    x = torch.from_numpy(np.unpackbits(blocks, axis=1)).to(net.dtype)
    y = net(x)
    assert y.dtype == net.dtype and y.shape == x.shape
    assert torch.all((y == 0) | (y == 1)), "outputs on bits must be exact bits"
    return np.packbits(y.numpy().astype(np.uint8), axis=1)


@pytest.mark.parametrize("variant", ["natural", "ttable"])
def test_sizes_match_the_paper(variant):
    net = aes128_network(bytes(16), variant=variant)
    assert (net.n_relu_layers, net.n_neurons) == PAPER_SIZES[variant]
    assert net.layer_names()[0] == "AddRoundKey 0" and net.layer_sizes()[0] == 256
    if variant == "natural":
        assert net.layer_sizes()[1:5] == [16 * 256, 16 * 256, 128 * 8, 256]  # SubBytes, MUL lookups, XOR4, ARK
    clipped = aes128_network(bytes(16), variant=variant, clip_inputs=True)
    assert clipped.layer_sizes() == [256] + net.layer_sizes()
    assert clipped.layer_names()[:2] == ["clip ReLU(x)-ReLU(x-1)", "AddRoundKey 0"]
    counts = net.parameter_counts()
    assert counts["neurons"] == net.n_neurons and counts["nonzero"] < counts["dense"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("variant", ["natural", "ttable"])
def test_aes_network_equals_aes_on_10000_random_blocks(variant, dtype):
    rng = np.random.default_rng(2026 + DTYPES.index(dtype))
    for i in range(10):  # 10 random keys x 1,000 blocks, cycling c and the input clip
        c, clip = VARIANTS[i % len(VARIANTS)]
        key = rng.bytes(16)
        net = aes128_network(key, c=c, clip_inputs=clip, dtype=dtype, variant=variant)
        assert (net.c, net.clip_inputs, net.dtype, net.variant) == (c, clip, dtype, variant)
        blocks = rng.integers(0, 256, (1000, 16), dtype=np.uint8)
        np.testing.assert_array_equal(_run(net, blocks), _reference(AES, key, blocks))


@pytest.mark.parametrize("dtype", DTYPES)
def test_des_network_equals_des_on_10000_random_blocks(dtype):
    rng = np.random.default_rng(46 + DTYPES.index(dtype))
    for i in range(10):
        c, clip = VARIANTS[i % len(VARIANTS)]
        key = rng.bytes(8)
        net = des_network(key, c=c, clip_inputs=clip, dtype=dtype)
        blocks = rng.integers(0, 256, (1000, 8), dtype=np.uint8)
        np.testing.assert_array_equal(_run(net, blocks), _reference(DES, key, blocks))


def test_des_known_answer_and_bytes_api():
    key, block = bytes.fromhex("133457799BBCDFF1"), bytes.fromhex("0123456789ABCDEF")
    net = des_network(key)
    assert net.encrypt(block).hex() == "85e813540f0ab405"  # FIPS 46-3 worked example (Grabbe)
    assert net.n_relu_layers == 48 and net.layer_names()[0] == "round 1 key XOR"


def test_aes_fips197_vector_through_the_network():
    key = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
    net = aes128_network(key)
    assert net.encrypt(bytes.fromhex("00112233445566778899aabbccddeeff")).hex() == \
        "69c4e0d86a7b0430d8cdb78070b4c55a"  # FIPS-197 Appendix C.1
    blocks = np.frombuffer(bytes(range(48)), dtype=np.uint8).reshape(3, 16)
    np.testing.assert_array_equal(net.encrypt_blocks(blocks), _reference(AES, key, blocks))


@pytest.mark.parametrize("build", [
    lambda: aes128_network(bytes(range(16)), c=0.5, clip_inputs=True),
    lambda: aes128_network(bytes(range(16)), variant="ttable"),
    lambda: des_network(bytes(8), c=0.3, rounds=2),
])
def test_traced_graph_is_affine_maps_and_relu_only(build):
    net = build()
    gm = net.graph()
    counts = check_affine_relu(gm)
    assert counts["relu_"] + counts["relu"] == sum(len(layer.groups) for layer in net.layers)
    x = torch.rand(20, net.n_inputs, dtype=net.dtype) * 2 - 0.5
    torch.testing.assert_close(gm(x), net(x))  # the traced graph is the network


def test_dense_reference_equals_the_structured_network():
    net = des_network(bytes.fromhex("0e329232ea6d0d73"), rounds=3, c=0.5)
    dense = net.to_dense()
    x = torch.rand(50, 64, dtype=torch.float64) * 2 - 0.5
    torch.testing.assert_close(dense(x), net(x))


def test_non_binary_inputs_give_non_bits_and_wake_more_neurons():
    key = bytes(range(16))
    net = aes128_network(key)
    rng = np.random.default_rng(0)
    p = torch.from_numpy(rng.integers(0, 2, (1, 128))).double()
    acts = net.activations(p)
    assert [int((a > 0).sum()) for a in acts[1:3]] == [16, 16]  # one corner per byte on bits
    q = p.clone()
    q[0, 0] = 1.2  # one coordinate just outside the cube
    out = net(q)
    assert not torch.all((out == 0) | (out == 1))
    assert int((net.activations(q)[1] > 0).sum()) > 16  # two corners of byte 0 light up


def test_c_one_first_layer_is_back_to_back_xor():
    key = bytes([0x80]) + bytes(15)  # key bit 0 is 1, bit 1 is 0
    net = aes128_network(key)
    e = 0.25
    x = torch.zeros(4, 128, dtype=torch.float64)
    x[:, 0] = torch.tensor([-e, e, 1 - e, 1 + e])
    h = net.activations(x)[0].view(4, 128, 2)[:, 0].sum(1)  # |x - k| for k = 1
    assert h.tolist() == [1 + e, 1 - e, e, e]
    out = net(x)
    assert torch.equal(out[2], out[3]) and not torch.equal(out[0], out[1])  # the pair near k collides


def test_invalid_arguments():
    with pytest.raises(ValueError, match="16 bytes"):
        aes128_network(bytes(15))
    with pytest.raises(TypeError, match="bytes"):
        aes128_network("00" * 16)
    with pytest.raises(ValueError, match="variant"):
        aes128_network(bytes(16), variant="fast")
    with pytest.raises(ValueError, match=r"c must be in \(0, 1\]"):
        aes128_network(bytes(16), c=2.0)
    with pytest.raises(ValueError, match="8 bytes"):
        des_network(bytes(7))
    with pytest.raises(ValueError, match=r"shape \(n, 128\)"):
        aes128_network(bytes(16))(torch.zeros(2, 64))
    with pytest.raises(TypeError, match="protected=True"):
        aes128_network(bytes(16), e=0.25)


@pytest.mark.skipif(importlib.util.find_spec("labkit.neural.defence") is None,
                    reason="labkit.neural.defence is written on the attacks branch")
def test_protected_network_is_still_aes_on_bits():
    key = bytes(range(16))
    net = aes128_network(key, protected=True)
    blocks = np.random.default_rng(5).integers(0, 256, (64, 16), dtype=np.uint8)
    x = torch.from_numpy(np.unpackbits(blocks, axis=1)).double()
    y = np.asarray(net(x), dtype=np.float64).round().astype(np.uint8)
    np.testing.assert_array_equal(np.packbits(y, axis=1), _reference(AES, key, blocks))
