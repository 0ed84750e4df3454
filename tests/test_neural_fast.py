"""The engine's evaluation of the cipher networks computes the same network: equal to the
straightforward dense ``nn.Linear`` form and to the plain torch ``reference_forward``, on bits and on
arbitrary real inputs (the attacks of chapter 06 feed non-binary values)."""
import copy
import pickle

import numpy as np
import pytest
import torch

from labkit.neural import aes128_network, check_affine_relu, engine

DTYPES = [torch.float32, torch.float64]
KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")


def _inputs(dtype, rows_per_kind):
    """Binary, [0, 1], huge and negative rows (seeded)."""
    gen = torch.Generator().manual_seed(5)
    shape = (rows_per_kind, 128)
    kinds = {
        "binary": torch.randint(0, 2, shape, generator=gen).to(dtype),
        "unit": torch.rand(shape, generator=gen, dtype=dtype),
        "huge": torch.randn(shape, generator=gen, dtype=dtype) * 1e6,
        "negative": -torch.rand(shape, generator=gen, dtype=dtype) * 5,
    }
    return kinds


def _assert_same_function(got, want, dtype):
    """Equal up to float rounding, relative to each row's magnitude (values grow through 39 layers).

    Two evaluations of one network round differently (summation order, fused multiply-adds,
    AVX2/AVX-512/portable torch kernels), by a few ulps of the row's largest value. Where a
    pre-activation lies within that rounding of a ReLU's kink, the difference is amplified by the
    gain of every later layer: measured 5e-4 of the row's magnitude on 1 row in 203 of [0, 1]
    inputs to natural AES-128 (float64). So most rows must agree to a few ulps, and the rest to
    1% of their magnitude: a wrong weight or wire changes every row at order 1.
    """
    finite = torch.isfinite(want).all(1) & torch.isfinite(got).all(1)
    if dtype == torch.float32:  # huge inputs overflow float32: both forms must then agree on where
        assert torch.equal(torch.isnan(got), torch.isnan(want)) and torch.equal(torch.isinf(got), torch.isinf(want))
        if not finite.any():
            return
    assert finite.float().mean() > 0.5, "too few finite rows to compare"
    scale = want[finite].abs().amax(1).clamp(min=1)
    err = (got[finite] - want[finite]).abs().amax(1) / scale
    ulps = 1e-12 if dtype == torch.float64 else 1e-4
    assert (err < ulps).float().mean() >= 0.95, f"{int((err >= ulps).sum())} of {len(err)} rows differ"
    assert err.max().item() < 1e-2, err.max().item()


@pytest.mark.parametrize("dtype", DTYPES)
def test_torch_evaluation_equals_dense_network_on_real_inputs(dtype):
    """The engine's torch path (no kernel): chunks over threads, equal to nn.Linear layers."""
    net = aes128_network(KEY, dtype=dtype)
    net.kernel, net.threads = False, 2
    dense = net.to_dense()
    chunk = net.default_chunk_size()
    for kind, x in _inputs(dtype, 2 * chunk).items():
        x = torch.cat([x, x[:3]])  # two full chunks and a short tail
        got = net(x)
        assert not engine.has_plan(net), "net.kernel = False must keep the kernel out"
        with torch.inference_mode():
            want = dense(x)
        reference = net.reference_forward(x)
        if kind == "binary":
            assert torch.equal(got, want) and torch.equal(got, reference)
            assert torch.all((got == 0) | (got == 1))
        else:
            _assert_same_function(got, want, dtype)
            assert torch.allclose(got, reference, rtol=0, atol=0, equal_nan=True), "same chunks, same operations"
            if kind in ("huge", "negative"):  # (inputs in [0, 1] mostly collapse to bits after a few layers)
                assert not torch.all((got == 0) | (got == 1)), "these inputs must give non-binary outputs"


def test_builders_attach_the_engine_and_the_network_alone_is_the_reference():
    net = aes128_network(KEY)
    assert net.evaluator is engine.evaluate
    x = torch.randint(0, 2, (100, 128), generator=torch.Generator().manual_seed(4)).double()
    fast = net(x)
    net.evaluator = None  # the plain torch definition
    assert torch.equal(net(x), fast) and torch.equal(net.reference_forward(x), fast)


def test_network_is_still_the_paper_network_and_copyable():
    net = aes128_network(KEY)
    sizes, counts = net.layer_sizes(), net.parameter_counts()
    x = torch.randint(0, 2, (2 * net.default_chunk_size(), 128)).double()
    y = net(x)
    assert net.layer_sizes() == sizes and net.parameter_counts() == counts and len(sizes) == 39
    check_affine_relu(net.graph())  # the graph the evaluators compute is affine maps and ReLU
    for clone in (pickle.loads(pickle.dumps(net)), copy.deepcopy(net)):
        assert clone.evaluator is engine.evaluate and not engine.has_plan(clone)  # no cached plan copied
        assert torch.equal(clone(x), y)
    with torch.inference_mode():  # changed weights are not served from a stale plan
        net.layers[0].groups[0].bias.neg_()
        changed = net.evaluate_chunk(x)
    assert not torch.all((changed == 0) | (changed == 1))  # (no longer bits: compare up to rounding)
    _assert_same_function(net(x), changed, torch.float64)


def test_labkit_kernel_0_evaluates_with_torch(monkeypatch):
    monkeypatch.setenv("LABKIT_KERNEL", "0")
    net = aes128_network(KEY)
    x = torch.randint(0, 2, (40, 128), generator=torch.Generator().manual_seed(8)).double()
    assert torch.equal(net(x), net.reference_forward(x)) and not engine.has_plan(net)
