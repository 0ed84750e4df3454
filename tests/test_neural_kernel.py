"""The fused C kernel behind ``net(x)`` computes the network of the torch evaluation: exactly on
bits, up to rounding on real inputs, for every variant, dtype, batch size and thread count."""
import copy
import pickle
import shutil

import numpy as np
import pytest
import torch

from labkit.neural import aes128_network, check_affine_relu, des_network, engine, kernel
from tests.test_neural_fast import _assert_same_function, _inputs

DTYPES = [torch.float32, torch.float64]
KEY = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
VARIANTS = {
    "natural c=1": dict(),
    "natural c=1/2": dict(c=0.5),
    "clipped inputs": dict(clip_inputs=True),
    "T-table": dict(variant="ttable"),
}


def _eager(net, x):
    with torch.inference_mode():
        return net.evaluate_chunk(x)


def test_kernel_is_built_where_a_c_compiler_exists():
    if shutil.which("cc") or shutil.which("gcc"):
        assert kernel.available(torch.float64) and kernel.available(torch.float32)


@pytest.mark.skipif(not kernel.available(), reason="no C compiler")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("variant", VARIANTS)
def test_kernel_equals_torch_evaluation(variant, dtype):
    net = aes128_network(KEY, dtype=dtype, **VARIANTS[variant])
    for kind, x in _inputs(dtype, 203).items():  # 203 rows: full tiles of 8 and a partial one
        got = net(x)
        assert engine.has_plan(net), "the kernel was not used"
        want = _eager(net, x)
        if kind == "binary":
            assert torch.equal(got, want) and torch.all((got == 0) | (got == 1))
        else:
            _assert_same_function(got, want, dtype)


@pytest.mark.skipif(not kernel.available(), reason="no C compiler")
@pytest.mark.parametrize("dtype", DTYPES)
def test_kernel_des_network_and_per_gate_tables(dtype):
    net = des_network(bytes.fromhex("133457799bbcdff1"), dtype=dtype)  # 8 different S-box tables
    assert any(not g.shared_decode for layer in net.layers for g in layer.groups)
    for kind, x in _inputs(dtype, 101).items():
        x = x[:, :64]
        got, want = net(x), _eager(net, x)
        if kind == "binary":
            assert torch.equal(got, want)
        else:
            _assert_same_function(got, want, dtype)


@pytest.mark.skipif(not kernel.available(), reason="no C compiler")
def test_kernel_result_does_not_depend_on_batch_or_threads():
    """A row's output is the same whatever else is in the batch and however rows are split."""
    net = aes128_network(KEY)
    x = _inputs(torch.float64, 300)["unit"]
    full = net(x)
    for threads in (1, 2, 3):
        net.threads = threads
        assert torch.equal(net(x), full)
    for rows in (1, 7, 8, 9):
        assert torch.equal(net(x[:rows]), full[:rows])
    assert net(x[:0]).shape == (0, 128)


@pytest.mark.skipif(not kernel.available(), reason="no C compiler")
def test_kernel_follows_weight_changes_and_can_be_switched_off(monkeypatch):
    net = aes128_network(KEY)
    x = torch.randint(0, 2, (64, 128), generator=torch.Generator().manual_seed(1)).double()
    before = net(x)
    with torch.inference_mode():
        net.layers[0].groups[0].bias.neg_()  # a changed weight must not be served from a stale plan
    changed = net(x)  # no longer bits: kernel and torch agree up to rounding (FMA, summation order)
    assert not torch.all((changed == 0) | (changed == 1))
    _assert_same_function(changed, _eager(net, x), torch.float64)
    _assert_same_function(changed, net.reference_forward(x), torch.float64)
    fresh = aes128_network(KEY)
    fresh.kernel = False
    assert torch.equal(fresh(x), before) and not engine.has_plan(fresh)
    monkeypatch.setenv("LABKIT_KERNEL", "0")
    assert kernel.load(torch.float64) is None


@pytest.mark.skipif(not kernel.available(), reason="no C compiler")
def test_network_with_kernel_is_still_the_paper_network_and_copyable():
    net = aes128_network(KEY)
    y = net(np.zeros((16, 128)))
    assert engine.has_plan(net)
    assert (net.n_relu_layers, net.n_neurons) == (39, 89_856)
    check_affine_relu(net.graph())  # the network the kernel evaluates is affine maps and ReLU
    for clone in (pickle.loads(pickle.dumps(net)), copy.deepcopy(net)):
        assert not engine.has_plan(clone)
        assert torch.equal(clone(np.zeros((16, 128))), y)


@pytest.mark.skipif(not kernel.available(), reason="no C compiler")
def test_network_stack_runs_each_key_through_the_kernel():
    """NetworkStack (Table 1's pooled queries) swaps the AddRoundKey biases per key: through the
    kernel each row must still meet its own key's network, as with torch operations."""
    from labkit.neural.stack import NetworkStack

    keys = [bytes([7 * i + 1]) * 16 for i in range(4)]
    ids = np.random.default_rng(2).integers(0, 4, 90)
    gen = torch.Generator().manual_seed(3)
    queries = torch.cat([torch.randint(0, 2, (45, 128), generator=gen).double(),
                         torch.rand(45, 128, generator=gen, dtype=torch.float64) * 3 - 1])
    fast = NetworkStack.aes128(keys)
    got = fast(ids, queries.numpy())
    assert engine.has_plan(fast), "the kernel was not used"
    slow = NetworkStack.aes128(keys)
    slow.template.kernel = False
    want = slow(ids, queries.numpy())
    assert np.array_equal(got[:45], want[:45])
    _assert_same_function(torch.from_numpy(got[45:]), torch.from_numpy(want[45:]), torch.float64)
    for k in range(4):  # and each row equals its own key's network
        rows = np.flatnonzero(ids == k)
        assert np.array_equal(got[rows], aes128_network(keys[k])(queries[rows]).numpy())


def test_kernel_limits_are_read_from_the_c_source():
    """One definition: the #define lines of relu_kernel.c, not a second copy in Python."""
    text = kernel.SOURCE.read_text()
    for name in ("MAX_K", "MAX_M", "MAX_HALF"):
        assert f"#define {name} {getattr(kernel, name)}" in " ".join(text.split())
    with pytest.raises(KeyError):
        kernel._limits("#define MAX_K 16\n")


def test_network_stack_validates_its_inputs():
    from labkit.neural.stack import NetworkStack

    stack = NetworkStack.aes128([bytes(range(16)), bytes(16)])
    with pytest.raises(ValueError, match="key ids"):
        stack(np.array([0, 2]), np.zeros((2, 128)))
    with pytest.raises(ValueError, match="one key id per query"):
        stack(np.array([0]), np.zeros((2, 128)))
    from labkit.neural.aes import round_key_biases

    with pytest.raises(ValueError, match="both bit values"):  # round key 0 of the zero key: no bias(1)
        round_key_biases(aes128_network(bytes(16)), bytes(16), [bytes(16)])
    with pytest.raises(ValueError, match="not a natural AES-128"):
        round_key_biases(des_network(bytes(8)), bytes(16), [bytes(16)])
    with pytest.raises(ValueError, match="expected"):  # a bias stack of the wrong shape
        NetworkStack(stack.template, {(0, 0): torch.zeros(2, 3)})
