"""The fused C kernel behind ``net(x)`` computes the network of the torch evaluation: exactly on
bits (every value a small integer, exact in any order on any CPU), up to rounding on real inputs
(see ``_assert_same_function``), for every variant, dtype, batch size and thread count."""
import copy
import os
import pickle
import shutil
import warnings

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
    if (shutil.which("cc") or shutil.which("gcc")) and os.environ.get("LABKIT_KERNEL", "1") != "0":
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
@pytest.mark.parametrize("dtype", DTYPES)
def test_skipped_neurons_are_only_exact_zeros(dtype):
    """The kernel skips the neurons that are +0 in every row of a tile. A NaN, an infinity or a
    coordinate nudged off a bit in one row must still reach that row's outputs as in torch, and
    must not change the other rows of its tile: each row equals itself evaluated alone."""
    net = aes128_network(KEY, dtype=dtype)
    x = torch.randint(0, 2, (40, 128), generator=torch.Generator().manual_seed(11)).to(dtype)
    specials = {3: float("nan"), 9: float("inf"), 17: float("-inf"), 20: 1.25, 21: -0.25, 33: 0.5}
    for row, value in specials.items():
        x[row, (7 * row) % 128] = value
    got = net(x)
    want = _eager(net, x)
    assert torch.equal(torch.isnan(got), torch.isnan(want)) and torch.equal(torch.isinf(got), torch.isinf(want))
    assert torch.isnan(got[3]).all() and torch.isnan(got[9]).any()  # non-finite inputs are not skipped away
    clean = [r for r in range(len(x)) if r not in specials]
    assert torch.equal(got[clean], want[clean])  # bits: exact
    _assert_same_function(got[[20, 21, 33]], want[[20, 21, 33]], dtype)
    for row in range(len(x)):
        alone = net(x[row : row + 1])
        assert torch.allclose(alone, got[row : row + 1], rtol=0, atol=0, equal_nan=True), row


@pytest.mark.skipif(not kernel.available(), reason="no C compiler")
def test_kernel_follows_weight_changes_and_can_be_switched_off(monkeypatch):
    net = aes128_network(KEY)
    x = torch.randint(0, 2, (64, 128), generator=torch.Generator().manual_seed(1)).double()
    before = net(x)
    other = aes128_network(bytes(16))
    with torch.inference_mode():  # a changed weight must not be served from a stale plan
        net.layers[0].groups[0].bias.copy_(other.layers[0].groups[0].bias)  # round key 0: still bits
    changed = net(x)
    assert torch.equal(changed, _eager(net, x)) and not torch.equal(changed, before)
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


# --- how the kernel is built: portable flags, a baseline ISA for the second CPU path, a loud fallback

def test_build_flags_fit_the_architecture():
    for machine in ("x86_64", "aarch64", "riscv64"):
        native = kernel.arch_flags("native", machine)
        baseline = kernel.arch_flags("baseline", machine)
        assert native[0] == ["-march=native"] and native[-1] == [] and baseline[-1] == []
        assert "-march=native" not in sum(baseline, [])
        if machine != "x86_64":  # no x86-only flag elsewhere
            assert not any("x86" in f for f in sum(native + baseline, []))
    assert kernel.arch_flags("baseline", "x86_64")[0] == ["-march=x86-64"]
    assert kernel.arch_flags("baseline", "aarch64")[0] == ["-march=armv8-a"]
    assert "-ffp-contract=off" in kernel.build_flags(torch.float64, ["-march=x86-64"])
    with pytest.raises(ValueError, match="LABKIT_KERNEL_ISA"):
        kernel.arch_flags("avx9000", "x86_64")


@pytest.fixture
def fresh_kernel(monkeypatch, tmp_path):
    """An empty kernel cache and no loaded kernels or warnings (restored afterwards). These tests are
    about building the kernel, so a run that opted out of it (``LABKIT_KERNEL=0``) is undone here."""
    monkeypatch.delenv("LABKIT_KERNEL", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(kernel, "_loaded", {})
    monkeypatch.setattr(kernel, "_warned", False)
    return tmp_path


@pytest.mark.skipif(not shutil.which("gcc"), reason="no gcc")
def test_baseline_build_is_cached_apart_and_computes_the_same_on_bits(fresh_kernel, monkeypatch):
    net = aes128_network(KEY)
    net.kernel = False
    x = torch.randint(0, 2, (20, 128), generator=torch.Generator().manual_seed(9)).double()
    want = net(x)
    paths = {}
    for isa in ("native", "baseline"):
        monkeypatch.setenv("LABKIT_KERNEL_ISA", isa)
        paths[isa], reason = kernel._compile(torch.float64)
        assert paths[isa] is not None, reason
        kernel._loaded.clear()
        fn = kernel.load(torch.float64)
        out = torch.empty_like(want)
        kernel.KernelPlan(net)(fn, x, out)
        assert torch.equal(out, want)
    assert paths["native"] != paths["baseline"] and all(p.exists() for p in paths.values())


@pytest.mark.skipif(not shutil.which("gcc"), reason="no gcc")
def test_a_compiler_that_rejects_march_native_still_builds(fresh_kernel, monkeypatch):
    fussy = fresh_kernel / "fussy-cc"
    fussy.write_text('#!/bin/sh\ncase "$*" in *-march=native*) exit 1;; esac\nexec gcc "$@"\n')
    fussy.chmod(0o755)
    monkeypatch.setenv("CC", str(fussy))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warning
        assert kernel.load(torch.float64) is not None


def test_fallback_to_torch_operations_warns_once_with_the_fix(fresh_kernel, monkeypatch):
    monkeypatch.setenv("CC", str(fresh_kernel / "no-such-compiler"))
    with pytest.warns(RuntimeWarning, match="apt-get install gcc") as record:
        assert kernel.load(torch.float64) is None
        assert kernel.load(torch.float32) is None
        net = aes128_network(KEY)
        x = torch.zeros(2, 128, dtype=torch.float64)
        assert torch.equal(net(x), _eager(net, x))  # still correct, through torch operations
    assert len([w for w in record if "fused ReLU kernel" in str(w.message)]) == 1


def test_explicit_opt_out_is_silent(fresh_kernel, monkeypatch):
    monkeypatch.setenv("LABKIT_KERNEL", "0")
    monkeypatch.setenv("CC", str(fresh_kernel / "no-such-compiler"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert kernel.load(torch.float64) is None and not kernel.available(torch.float32)


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
