"""Key recovery from ReLU cipher networks with non-binary queries (ePrint 2025/288, Sec. 5).

A natural ReLU network of a block cipher XORs the first round key into the input with corner
neurons: for c = 1, ``XOR(x, k) = ReLU(x - k) + ReLU(k - x) = |x - k|`` ("back-to-back" ReLUs),
for c < 1 two "separated" ReLUs that are 0 on a whole interval around k. On real inputs this
neuron is symmetric around the key bit, so two queries that differ only in bit i give the same
output exactly when they sit at the same distance from k_i. The attacker sees nothing but the
network's outputs; the key bits fall out of output collisions:

- ``back_to_back`` (c = 1): bit i set to v - e and v + e around the base bit v collide iff k_i = v
  (the authors use both pairs, 4 queries per bit; one pair plus a final key check is enough).
- ``separated`` (c < 1, e = 0.4): moving bit i from v by e toward 1/2 changes nothing iff k_i = v,
  so one query per bit against a shared binary base.
- ``float_trigger`` (against the *unclamped* defence of :mod:`labkit.neural.defence`, Kim and
  Lee): a coordinate 2**(f-1) + 1 is rounded by STEP to 2 while MASK stays 0, so the inner network
  sees the bit 2, the mirror image of 0 around 1: the output equals the all-zero base's iff k_i = 1.
- DES (``key_bits=64``): the key meets E(R0) inside round 1, and the plaintext's L0 half is
  XORed into f(R0, K1) by a two-input XOR neuron, so the same collisions read f bit by bit; each
  S-box subkey follows, and the 8 key bits outside K1 are searched (``labkit.des.encrypt_many``).
- ``clipped`` (inputs go through ``ReLU(x) - ReLU(x - 1)`` first, so no value leaves [0, 1]):
  per key byte and candidate, set the byte to ``0x52 xor candidate`` and compare with the same
  bits moved e toward 1/2. For the right candidate the S-box input is 0x52 either way and,
  because S(0x52) = 0x00, a corner of it scaled down is still exactly 0: the outputs collide. For
  a wrong candidate S(v) != 0 is scaled down and they differ. Stop at each byte's first hit.

Every recovered key is confirmed by re-encrypting, with the reference cipher (:mod:`labkit.aes`,
:mod:`labkit.des` or your own), a binary plaintext whose ciphertext came from the oracle; a
mismatch is a *detected* error and triggers a retry with fresh base plaintexts. A key is returned
only once confirmed, never partially.

Modules: :mod:`~labkit.attacks.oracle` (queries and reference ciphers),
:mod:`~labkit.attacks.strategies` (the AES-like procedures), :mod:`~labkit.attacks.des`,
:mod:`~labkit.attacks.recover` (the entry points), :mod:`~labkit.attacks.table1`.
"""
from labkit.attacks.oracle import (
    CountingOracle, as_multi_oracle, query_oracle, reference_cipher,
)
from labkit.attacks.recover import AttackResult, recover_key, recover_keys
from labkit.attacks.strategies import DEFAULT_EPSILON, STRATEGIES
from labkit.attacks.table1 import PAPER_TABLE1, TABLE1_SETTINGS, format_table1, load_table1, save_table1, table1

__all__ = [
    "STRATEGIES",
    "DEFAULT_EPSILON",
    "AttackResult",
    "recover_key",
    "recover_keys",
    "query_oracle",
    "CountingOracle",
    "as_multi_oracle",
    "reference_cipher",
    "TABLE1_SETTINGS",
    "PAPER_TABLE1",
    "table1",
    "format_table1",
    "save_table1",
    "load_table1",
]
