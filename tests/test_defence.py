"""The STEP/RECT/MASK defence: exact on bits, silent off the cube, simulatable from the binary
cipher alone, and immune to every attack (paper Sec. 6; Kim and Lee's float trigger and clamp)."""
from __future__ import annotations

import os
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labkit.attacks import STRATEGIES, recover_key
from labkit.neural.defence import (
    Overhead, as_epsilon, clamp01, float_trigger, mask, protect, rect, simulate, step,
)
from toy_networks import toy_spn, toy_spn_reference, toy_xor_permute

KEY = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
OTHER_KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
EPSILONS = [Fraction(1, 3), Fraction(1, 4)]
DTYPES = [torch.float32, torch.float64]


def _binary(rng, n=64, bits=128):
    return rng.integers(0, 2, (n, bits)).astype(np.float64)


def _assert_same(a, b):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # NaN == NaN here


# --- the building blocks -------------------------------------------------------------------------


@pytest.mark.parametrize("epsilon", EPSILONS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_step_and_rect_are_exact_on_bits_in_every_format(epsilon, dtype):
    x = torch.tensor([0.0, 1.0], dtype=dtype)
    assert step(x, epsilon).tolist() == [0.0, 1.0]
    assert rect(x, epsilon).tolist() == [0.0, 0.0]


@pytest.mark.parametrize("epsilon", EPSILONS)
def test_step_rect_shapes_match_the_paper(epsilon):
    e = float(epsilon)
    x = torch.linspace(-1, 2, 3001, dtype=torch.float64)
    relu = torch.relu
    expected_step = (relu(x - e) - relu(x - (1 - e))) / (1 - 2 * e)
    expected_rect = (relu(x) - relu(x - e) - relu(x - (1 - e)) + relu(x - 1)) / e
    torch.testing.assert_close(step(x, epsilon), expected_step)
    torch.testing.assert_close(rect(x, epsilon), expected_rect)
    inside = (x >= e) & (x <= 1 - e)
    assert torch.all(rect(x, epsilon)[inside] == 1)
    assert torch.all(rect(x, epsilon)[(x <= 0) | (x >= 1)] == 0)


def test_clamp01_clips_with_two_relus():
    x = torch.tensor([-5.0, -0.0, 0.25, 1.0, 7.0, float("inf"), -float("inf")], dtype=torch.float64)
    assert clamp01(x).tolist() == [0.0, 0.0, 0.25, 1.0, 1.0, 1.0, 0.0]


def test_epsilon_validation():
    assert as_epsilon(1 / 3) == Fraction(1, 3) and as_epsilon(0.25) == Fraction(1, 4)
    for bad in (0, 0.5, -0.1, 0.7, float("nan")):
        with pytest.raises(ValueError):
            as_epsilon(bad)
    with pytest.raises(TypeError):
        as_epsilon("1/3")
    with pytest.raises(TypeError):
        protect(lambda x: x)


# --- correctness and silence ---------------------------------------------------------------------


@pytest.mark.parametrize("epsilon", EPSILONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("clamp", [True, False])
def test_exact_cipher_on_binary_inputs(epsilon, dtype, clamp):
    rng = np.random.default_rng(1)
    p = _binary(rng)
    net = protect(toy_spn(KEY, dtype=dtype), epsilon=epsilon, unsafe_unclamped=not clamp)
    out = net(torch.as_tensor(p, dtype=dtype))
    assert out.dtype == dtype
    _assert_same(out.numpy(), toy_spn_reference(KEY, p.astype(np.uint8)))


@pytest.mark.parametrize("epsilon", EPSILONS)
@given(value=st.floats(0, 1), where=st.integers(0, 127), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_every_output_is_zero_when_a_coordinate_is_in_the_middle(epsilon, value, where, seed):
    lo, hi = float(epsilon), float(1 - epsilon)  # the floats nearest e and 1 - e ...
    lo = lo if Fraction(lo) >= epsilon else np.nextafter(lo, 1)  # ... moved inside [e, 1 - e]
    hi = hi if Fraction(hi) <= 1 - epsilon else np.nextafter(hi, 0)
    value = min(max(value, lo), hi)  # any float of [e, 1-e], its end points included
    p = _binary(np.random.default_rng(seed), n=1)
    p[0, where] = value
    net = _net(epsilon, True)
    assert torch.all(net(torch.as_tensor(p)) == 0)


# --- the simulator argument --------------------------------------------------------------------

_NETS = {}


def _net(epsilon, clamp, key=KEY, dtype=torch.float64):
    k = (epsilon, clamp, key, dtype)
    if k not in _NETS:
        _NETS[k] = protect(toy_spn(key, dtype=dtype), epsilon=epsilon, unsafe_unclamped=not clamp)
    return _NETS[k]


def _special_values(epsilon):
    e = float(epsilon)
    return [0.0, -0.0, 1.0, e, 1 - e, 0.5, np.nextafter(e, 0), np.nextafter(1 - e, 2),
            np.nextafter(0, -1), np.nextafter(1, 2), 5e-324, -5e-324, 1e-300, 1e300, -1e300,
            2.0**52 + 1, 2.0**23 + 1, 2.0**44, -(2.0**52), 1.7976931348623157e308]


_reals = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),  # anything finite: huge, tiny, negative
    st.floats(-2, 3),
    st.floats(-1e-6, 1e-6),
    st.floats(1 - 1e-6, 1 + 1e-6),
)


@pytest.mark.parametrize("epsilon", EPSILONS)
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_output_equals_the_simulator_on_any_real_input(epsilon, data, seed):
    rng = np.random.default_rng(seed)
    p = _binary(rng, n=4)
    values = st.one_of(_reals, st.sampled_from(_special_values(epsilon)))
    for row in range(4):
        changes = data.draw(st.lists(st.tuples(st.integers(0, 127), values), max_size=6))
        for where, value in changes:
            p[row, where] = value
    net = _net(epsilon, True)
    binary_cipher = lambda bits: toy_spn_reference(KEY, bits.numpy().astype(np.uint8))  # noqa: E731
    _assert_same(net(torch.as_tensor(p)), simulate(p, binary_cipher, epsilon=epsilon))


@pytest.mark.parametrize("epsilon", EPSILONS)
def test_the_simulator_covers_a_random_cloud_of_real_queries(epsilon):
    rng = np.random.default_rng(7)
    p = np.concatenate([rng.normal(0.5, 1.0, (200, 128)),
                        _binary(rng, 200) + rng.normal(0, 0.1, (200, 128)),
                        _binary(rng, 200) + rng.uniform(-float(epsilon), float(epsilon), (200, 128)) * (rng.random((200, 128)) < 0.05)])
    net = _net(epsilon, True)
    binary_cipher = lambda bits: toy_spn_reference(KEY, bits.numpy().astype(np.uint8))  # noqa: E731
    _assert_same(net(torch.as_tensor(p)), simulate(p, binary_cipher, epsilon=epsilon))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_nan_and_infinity_are_defined_and_key_independent(bad):
    rng = np.random.default_rng(3)
    p = _binary(rng, n=8)
    p[:, 5] = bad
    outs = [_net(Fraction(1, 3), True, key=k)(torch.as_tensor(p)).numpy() for k in (KEY, OTHER_KEY)]
    if np.isnan(bad):  # NaN reaches MASK: every output is NaN, whatever the key
        assert np.isnan(outs[0]).all() and np.isnan(outs[1]).all()
    else:  # clamp01 maps +inf to 1 and -inf to 0: a binary input, answered like one
        p[:, 5] = 1.0 if bad > 0 else 0.0
        _assert_same(outs[0], toy_spn_reference(KEY, p.astype(np.uint8)))
        _assert_same(outs[1], toy_spn_reference(OTHER_KEY, p.astype(np.uint8)))
    p[:, 5] = bad  # without the clamp, the simulator still predicts every output
    binary_cipher = lambda bits: toy_spn_reference(KEY, bits.numpy().astype(np.uint8))  # noqa: E731
    _assert_same(_net(Fraction(1, 3), False)(torch.as_tensor(p)),
                 simulate(p, binary_cipher, epsilon=Fraction(1, 3), unsafe_unclamped=True))


# --- the attacks against it ----------------------------------------------------------------------


@pytest.mark.parametrize("strategy", [s for s in STRATEGIES if s != "float_trigger"])
def test_every_attack_recovers_nothing_from_the_protected_network(strategy):
    c, clip = {"back_to_back": (1.0, False), "separated": (0.5, False), "clipped": (1.0, True)}[strategy]
    natural = toy_spn(KEY, c=c, clip=clip)
    fast = dict(candidates_per_round=32)  # (clipped only: fewer round trips, same tests)
    assert recover_key(natural, strategy=strategy, cipher=toy_spn_reference, seed=0, **fast).key == KEY
    result = recover_key(protect(natural, epsilon=Fraction(1, 3)), strategy=strategy,
                         cipher=toy_spn_reference, seed=0, max_retries=0, **fast)
    assert result.key is None and result.bits_recovered == 0 and not result.success
    assert result.detected_errors >= 1


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("key", [bytes.fromhex("000102030405060708090a0b0c0d0e0f"), np.random.default_rng(7).bytes(16),
                                 bytes([0x7D]) * 16])  # S(0x7d) = 0xff: one round cannot tell 2 from 1
def test_float_trigger_breaks_the_unclamped_defence_and_clamp_fixes_it(dtype, key):
    trigger = float_trigger(dtype)
    x = torch.tensor([trigger], dtype=dtype)
    assert step(x, Fraction(1, 4)).item() == 2 and mask(x[None, :], Fraction(1, 4)).item() == 0
    open_net = protect(toy_spn(key, dtype=dtype), epsilon=Fraction(1, 4), unsafe_unclamped=True)
    broken = recover_key(open_net, strategy="float_trigger", trigger=trigger, cipher=toy_spn_reference)
    assert broken.key == key
    # 129 queries unless the all-zero base met a saturating S-box byte (caught, then retried)
    assert (broken.queries == 129) == (broken.retries == 0) and broken.detected_errors == broken.retries
    if 0x7D in key:
        assert broken.retries >= 1
    closed = protect(toy_spn(key, dtype=dtype), epsilon=Fraction(1, 4), unsafe_unclamped=False)
    result = recover_key(closed, strategy="float_trigger", trigger=trigger, cipher=toy_spn_reference)
    assert result.key is None


def test_float_trigger_values():
    assert float_trigger(torch.float64) == 2.0**52 + 1
    assert float_trigger(torch.float32) == 2.0**23 + 1
    assert float_trigger(torch.float16) == 2.0**10 + 1
    assert float_trigger(torch.bfloat16) == 2.0**7 + 1
    with pytest.raises(TypeError):
        float_trigger(torch.int32)


def test_protect_wraps_any_bits_to_bits_module():
    net = protect(toy_xor_permute(KEY), n_in=128, n_out=128)
    p = _binary(np.random.default_rng(0), 16)
    assert torch.equal(net(torch.as_tensor(p)), toy_xor_permute(KEY)(torch.as_tensor(p)))
    with pytest.raises(ValueError):
        net(torch.zeros(2, 64, dtype=torch.float64))


def test_overhead_counts():
    over = protect(toy_xor_permute(KEY), n_in=128, n_out=128).overhead()
    assert over == Overhead(128, 128, True)
    assert over.relu_layers == 5 and over.relu_neurons == 2 * 128 + 4 * 128 + 3 * 128
    unclamped = protect(toy_xor_permute(KEY), unsafe_unclamped=True, n_in=128, n_out=128).overhead()
    assert unclamped.relu_layers == 3 and unclamped.relu_neurons == 4 * 128 + 3 * 128


def test_the_unclamped_form_must_be_asked_for_by_a_name_that_says_unsafe():
    assert protect(toy_spn(KEY)).clamp  # secure by default
    with pytest.raises(TypeError):
        protect(toy_spn(KEY), clamp=False)  # no innocent-sounding switch turns the clamp off
    with pytest.raises(TypeError, match="unsafe_unclamped"):
        protect(toy_spn(KEY), unsafe_unclamped="yes")
    assert "UNSAFE" in repr(protect(toy_spn(KEY), unsafe_unclamped=True))
    assert "UNSAFE" not in repr(protect(toy_spn(KEY)))


# --- around the natural AES-128 network ------------------------------------------------------------

from labkit import aes  # noqa: E402
from labkit.neural import aes128_network  # noqa: E402


@pytest.mark.parametrize("epsilon", EPSILONS)
def test_protected_aes_network_is_exact_aes_on_bits(epsilon):
    key = os.urandom(16)
    net = aes128_network(key, protected=True, epsilon=epsilon)
    blocks = np.random.default_rng(6).integers(0, 256, (8, 16), dtype=np.uint8)
    out = net(torch.as_tensor(np.unpackbits(blocks, axis=1), dtype=torch.float64))
    assert np.array_equal(np.packbits(out.numpy().astype(np.uint8), axis=1), aes.encrypt_blocks(key, blocks))


@pytest.mark.parametrize("strategy,options", [("back_to_back", {}), ("separated", dict(c=0.5))])
def test_protected_aes_network_resists_the_attacks(strategy, options):
    key = os.urandom(16)
    assert recover_key(aes128_network(key, **options), strategy=strategy).key == key
    result = recover_key(aes128_network(key, protected=True, **options), strategy=strategy, max_retries=1)
    assert result.key is None


def test_float_trigger_on_the_aes_network():
    key = os.urandom(16)
    for dtype in DTYPES:
        trigger = float_trigger(dtype)
        open_net = aes128_network(key, protected=True, epsilon=Fraction(1, 4), unsafe_unclamped=True, dtype=dtype)
        assert recover_key(open_net, strategy="float_trigger", trigger=trigger).key == key
        closed = aes128_network(key, protected=True, epsilon=Fraction(1, 4), unsafe_unclamped=False, dtype=dtype)
        assert recover_key(closed, strategy="float_trigger", trigger=trigger).key is None


def test_structure_overhead_of_the_protected_aes_network():
    from labkit.neural.defence import structure_overhead

    net = aes128_network(KEY, protected=True)
    row = structure_overhead(net)
    assert row["layers"] == net.inner.n_relu_layers and row["extra_layers"] == 5
    assert row["extra_neurons"] == 6 * 128 + 3 * 128 + net.inner.n_relu_layers
    with pytest.raises(TypeError):
        structure_overhead(protect(toy_xor_permute(KEY)))


@pytest.mark.parametrize("clamp", [True, False])
def test_protected_network_is_only_affine_maps_and_relu(clamp):
    from labkit.neural import check_affine_relu

    net = aes128_network(KEY, protected=True, unsafe_unclamped=not clamp)
    counts = check_affine_relu(net.graph())  # raises NonAffineOperation on anything else
    assert counts["relu"] + counts["relu_"] > 0
    x = torch.as_tensor(np.random.default_rng(8).normal(0.5, 0.5, (6, 128)))
    assert torch.equal(net.graph()(x), net(x))
