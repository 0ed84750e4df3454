"""labkit.feistel: invertibility for any round function, and Luby-Rackoff measured."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from labkit import des, feistel as F
from labkit import bits


@settings(max_examples=60, deadline=None)
@given(half_bits=st.integers(1, 24), rounds=st.integers(1, 8), seed=st.integers(0, 2**32 - 1),
       kind=st.sampled_from(sorted(F.ROUND_FUNCTION_KINDS)))
def test_decrypt_inverts_encrypt_for_any_round_function(half_bits, rounds, seed, kind):
    rng = np.random.default_rng(seed)
    keys = [int(k) for k in rng.integers(0, 1 << half_bits, size=rounds, dtype=np.uint64)]
    net = F.Feistel([F.make_round_function(kind, k, half_bits) for k in keys], half_bits)
    for block in rng.integers(0, 1 << (2 * half_bits), size=5, dtype=np.uint64):
        block = int(block)
        assert net.decrypt(net.encrypt(block)) == block


def test_non_injective_round_functions_still_give_a_permutation():
    n = 4
    for kind in ("constant k", "x and k", "x^2 + k mod 2^n"):
        f = F.make_round_function(kind, 0b0110, n)
        assert len({f(x) for x in range(1 << n)}) < 1 << n  # f is not a permutation
        net = F.Feistel([f, F.make_round_function(kind, 0b1011, n), f], n)
        outputs = [net.encrypt(x) for x in range(1 << 2 * n)]
        assert sorted(outputs) == list(range(1 << 2 * n))  # ... but the network is


def test_random_round_functions_invert_and_decryption_is_the_reversed_circuit():
    rng = np.random.default_rng(0)
    net = F.Feistel([F.random_function(12, rng) for _ in range(5)], 12)
    for x in rng.integers(0, 1 << 24, size=50):
        y = net.encrypt(int(x))
        assert net.decrypt(y) == int(x)
        assert F.Feistel(net.round_functions[::-1], 12).encrypt(y) == int(x)


def test_trace_halves_follow_the_round_equations():
    f1 = F.make_round_function("x xor k", 0x3, 4)
    f2 = F.make_round_function("constant k", 0x9, 4)
    net = F.Feistel([f1, f2], 4)
    states = net.trace(0xA5)
    assert states[0] == (0xA, 0x5)
    assert states[1] == (0x5, 0xA ^ (0x5 ^ 0x3))
    assert states[2] == (states[1][1], states[1][0] ^ 0x9)
    assert net.encrypt(0xA5) == (states[2][1] << 4) | states[2][0]  # the final swap
    dec = net.decrypt_trace(net.encrypt(0xA5))
    assert dec[-1] == (0x5, 0xA)  # halves before the final swap: R0, L0


def test_des_is_a_feistel_network_of_its_round_function():
    """DES's 16 rounds between IP and IP^-1 are this module's network with f = f(., K_i)."""
    key, block = bytes.fromhex("133457799bbcdff1"), bytes.fromhex("0123456789abcdef")

    def des_round(subkey):
        return lambda r: bits.bits_to_int(des.round_function(bits.int_to_bits(r, 32), subkey))

    net = F.Feistel([des_round(k) for k in des.expand_key(key)], 32)
    after_ip = bits.bits_to_int(des.permute(bits.bytes_to_bits(block), des.IP))
    pre = bits.int_to_bits(net.encrypt(after_ip), 64)
    assert bits.bits_to_bytes(des.permute(pre, des.IP_INV)) == des.encrypt_block(key, block)


def test_random_permutation_is_a_consistent_bijection():
    rng = np.random.default_rng(1)
    perm = F.RandomPermutation(6, rng)
    images = [perm.encrypt(x) for x in range(64)]
    assert sorted(images) == list(range(64))
    assert all(perm.decrypt(y) == x for x, y in enumerate(images))


def test_distinguishers_win_on_few_rounds_and_fail_on_more():
    one = F.measure_advantage(F.one_round_distinguisher, 1, trials=300, seed=1)
    two = F.measure_advantage(F.two_round_distinguisher, 2, trials=300, seed=2)
    assert one.advantage > 0.95 and two.advantage > 0.95
    for d in (F.one_round_distinguisher, F.two_round_distinguisher):
        three = F.measure_advantage(d, 3, trials=300, seed=3)
        assert three.advantage < 0.05  # 2^-16 false positives: essentially nothing to see
    cca3 = F.measure_advantage(F.three_round_cca_distinguisher, 3, trials=300, seed=4)
    cca4 = F.measure_advantage(F.three_round_cca_distinguisher, 4, trials=300, seed=5)
    assert cca3.advantage > 0.95 and cca4.advantage < 0.05


def test_a_distinguisher_learns_the_world_only_from_its_queries():
    """The attacker's view of the game: peeking at the oracle's type or answering by the order of
    the calls must get nothing; the oracle still answers encrypt and decrypt."""
    peek = F.measure_advantage(lambda oracle, n, rng: isinstance(oracle, F.Feistel), 2, trials=300, seed=7)
    calls = []

    def alternate(oracle, n, rng):
        calls.append(1)
        return len(calls) % 2 == 1

    by_order = F.measure_advantage(alternate, 2, trials=300, seed=8)
    assert peek.advantage == 0 and by_order.advantage < 0.2
    box = F.BlackBox(F.Feistel([lambda x: x ^ 3], 4))
    assert box.decrypt(box.encrypt(0x5A)) == 0x5A and "Feistel" not in type(box).__name__
    with pytest.raises(AttributeError):
        box.round_functions
    fresh = [F.measure_advantage(F.two_round_distinguisher, 3, trials=50, seed=None).p_random for _ in range(2)]
    assert all(0 <= p <= 1 for p in fresh)


def test_small_blocks_leave_a_visible_false_positive_rate():
    # with 2-bit halves a random permutation passes the 1-round test 1/4 of the time
    adv = F.measure_advantage(F.one_round_distinguisher, 1, half_bits=2, trials=2000, seed=6)
    assert adv.p_feistel == 1.0 and 0.18 < adv.p_random < 0.32


def test_advantage_by_rounds_covers_every_distinguisher():
    table = F.advantage_by_rounds(range(1, 4), trials=20)
    assert set(table) == set(F.DISTINGUISHERS)
    assert all([a.rounds for a in v] == [1, 2, 3] for v in table.values())


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: F.Feistel([], 8), ValueError, "at least one"),
        (lambda: F.Feistel([lambda x: x], 0), ValueError, "half_bits"),
        (lambda: F.Feistel([lambda x: x], 8).encrypt(1 << 16), ValueError, "block must be an int in"),
        (lambda: F.Feistel([lambda x: x], 8).encrypt(-1), ValueError, "block must be an int in"),
        (lambda: F.Feistel([lambda x: 256], 8).encrypt(3), ValueError, "must return an int"),
        (lambda: F.Feistel([1], 8), TypeError, "callables"),
        (lambda: F.make_round_function("nope", 1, 8), ValueError, "kind must be one of"),
        (lambda: F.make_round_function("x xor k", 256, 8), ValueError, "round key"),
        (lambda: F.measure_advantage(F.one_round_distinguisher, 0), ValueError, "rounds"),
    ],
)
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
