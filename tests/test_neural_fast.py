"""The fast evaluation path of the cipher networks (torch.compile'd chunks) computes the same network:
equal to the straightforward dense ``nn.Linear`` form and to the eager evaluation, on bits and on
arbitrary real inputs (the attacks of chapter 06 feed non-binary values)."""
import copy
import pickle

import numpy as np
import pytest
import torch

from labkit.neural import aes128_network, check_affine_relu

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
def test_compiled_evaluation_equals_dense_network_on_real_inputs(dtype):
    net = aes128_network(KEY, dtype=dtype)
    net.compiled = True
    dense = net.to_dense()
    chunk = net.default_chunk_size()
    for kind, x in _inputs(dtype, 2 * chunk).items():
        x = torch.cat([x, x[:3]])  # two full chunks (compiled) and a short tail (eager)
        got = net(x)
        with torch.inference_mode():
            want = dense(x)
            eager = net.evaluate_chunk(x)
        assert net._compiled_cache[(chunk, dtype)] is not None, "torch.compile was not used"
        if kind == "binary":
            assert torch.equal(got, want) and torch.equal(got, eager)
            assert torch.all((got == 0) | (got == 1))
        else:
            _assert_same_function(got, want, dtype)
            _assert_same_function(got, eager, dtype)
            if kind in ("huge", "negative"):  # (inputs in [0, 1] mostly collapse to bits after a few layers)
                assert not torch.all((got == 0) | (got == 1)), "these inputs must give non-binary outputs"
    net.compiled = False  # and the eager path computes the same
    x = _inputs(dtype, chunk)["unit"]
    _assert_same_function(net(x), dense(x), dtype)


def test_compiled_network_is_still_the_paper_network_and_copyable():
    net = aes128_network(KEY)
    sizes, counts = net.layer_sizes(), net.parameter_counts()
    net.compiled = True
    x = torch.randint(0, 2, (2 * net.default_chunk_size(), 128)).double()
    y = net(x)
    assert net.layer_sizes() == sizes and net.parameter_counts() == counts and len(sizes) == 39
    check_affine_relu(net.graph())  # the graph torch.compile compiles is affine maps and ReLU
    for clone in (pickle.loads(pickle.dumps(net)), copy.deepcopy(net)):  # the compiled code is not copied
        assert "_compiled_cache" not in clone.__dict__
        clone.compiled = False
        assert torch.equal(clone(x), y)
    with torch.inference_mode():  # changed weights are not served from a stale compilation
        net.layers[0].groups[0].bias.neg_()
        changed = net.evaluate_chunk(x)
    assert torch.equal(net(x), changed) and not torch.equal(changed, y)


def test_compiling_is_opt_in_and_auto_mode_waits_for_heavy_use():
    net = aes128_network(KEY)
    assert net.compiled is False  # by default a network never changes evaluation path by itself
    net(np.zeros((4096, 128)))
    assert "_compiled_cache" not in net.__dict__
    net.compiled = None
    net(np.zeros((100, 128)))
    assert "_compiled_cache" not in net.__dict__  # a few calls stay eager: compiling costs seconds
    net.compiled = False
    net._rows_evaluated = net.AUTO_COMPILE_ROWS
    net(np.zeros((100, 128)))
    assert "_compiled_cache" not in net.__dict__
