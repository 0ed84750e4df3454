"""DES written from the tables of FIPS 46-3, to be read and stepped through.

The standard describes DES as bit permutations and lookups on bit strings numbered 1..64 from the
left; this module keeps that picture. A block is a ``numpy.uint8`` array of 0/1 bits, MSB of the
first byte first (``labkit.bits``), and every table below is copied from FIPS 46-3 with its
1-based bit numbers, so ``block[IP[i] - 1]`` is output bit ``i`` of the initial permutation.

Structure (FIPS 46-3, "Enciphering"): IP, then 16 Feistel rounds
``L_i = R_{i-1}``, ``R_i = L_{i-1} xor f(R_{i-1}, K_i)`` with ``f(R, K) = P(S(E(R) xor K))``,
then the final swap (the preoutput block is ``R_16 L_16``) and IP^-1. Deciphering is the same
circuit with the subkeys in reverse order.

Sections: tables; key schedule; the round function; block encryption with a per-round trace
(reduced rounds and other S-boxes allowed); 3DES (EDE); the key bits that matter, weak keys and the
complementation property; avalanche; a vectorised batch path (checked against the readable one).
Attacks live beside the cipher, not in it: linear S-boxes in :mod:`labkit.des_linear`, the
exhaustive search in :mod:`labkit.des_security`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from labkit import bits as _bits
from labkit import checks
from labkit import feistel

__all__ = [
    "IP", "IP_INV", "E", "P", "PC1", "PC2", "SHIFTS", "SBOXES", "SBOX_TABLES",
    "BLOCK_SIZE", "KEY_SIZE", "ROUNDS",
    "permute", "sbox_lookup", "expand_key", "round_function", "feistel_round",
    "RoundTrace", "Trace", "encrypt_block", "decrypt_block", "encrypt_trace", "decrypt_trace",
    "tdes_encrypt_block", "tdes_decrypt_block",
    "KEY_BIT_POSITIONS", "set_parity", "key_from_cd", "weak_keys", "semi_weak_key_pairs", "is_weak_key",
    "complement", "check_rounds", "check_sboxes", "Avalanche", "avalanche", "to_words", "from_words", "encrypt_many",
]

BLOCK_SIZE = 8  # bytes
KEY_SIZE = 8  # bytes, of which 56 bits are used (every 8th bit is a parity bit)
ROUNDS = 16

# --- FIPS 46-3 tables (1-based bit numbers, as printed in the standard) -------------------------

#: Initial permutation IP: output bit i is input bit IP[i].
IP = (
    58, 50, 42, 34, 26, 18, 10, 2,
    60, 52, 44, 36, 28, 20, 12, 4,
    62, 54, 46, 38, 30, 22, 14, 6,
    64, 56, 48, 40, 32, 24, 16, 8,
    57, 49, 41, 33, 25, 17, 9, 1,
    59, 51, 43, 35, 27, 19, 11, 3,
    61, 53, 45, 37, 29, 21, 13, 5,
    63, 55, 47, 39, 31, 23, 15, 7,
)

#: Inverse initial permutation IP^-1 (applied to the preoutput block R16 L16).
IP_INV = (
    40, 8, 48, 16, 56, 24, 64, 32,
    39, 7, 47, 15, 55, 23, 63, 31,
    38, 6, 46, 14, 54, 22, 62, 30,
    37, 5, 45, 13, 53, 21, 61, 29,
    36, 4, 44, 12, 52, 20, 60, 28,
    35, 3, 43, 11, 51, 19, 59, 27,
    34, 2, 42, 10, 50, 18, 58, 26,
    33, 1, 41, 9, 49, 17, 57, 25,
)

#: Expansion E: 32 bits of R to 48 bits (the edge bits of each 4-bit group are repeated).
E = (
    32, 1, 2, 3, 4, 5,
    4, 5, 6, 7, 8, 9,
    8, 9, 10, 11, 12, 13,
    12, 13, 14, 15, 16, 17,
    16, 17, 18, 19, 20, 21,
    20, 21, 22, 23, 24, 25,
    24, 25, 26, 27, 28, 29,
    28, 29, 30, 31, 32, 1,
)

#: Permutation P applied to the 32 S-box output bits.
P = (
    16, 7, 20, 21,
    29, 12, 28, 17,
    1, 15, 23, 26,
    5, 18, 31, 10,
    2, 8, 24, 14,
    32, 27, 3, 9,
    19, 13, 30, 6,
    22, 11, 4, 25,
)

#: Permuted choice 1: selects the 56 key bits (drops parity bits 8, 16, ..., 64) into C0 D0.
PC1 = (
    57, 49, 41, 33, 25, 17, 9,
    1, 58, 50, 42, 34, 26, 18,
    10, 2, 59, 51, 43, 35, 27,
    19, 11, 3, 60, 52, 44, 36,
    63, 55, 47, 39, 31, 23, 15,
    7, 62, 54, 46, 38, 30, 22,
    14, 6, 61, 53, 45, 37, 29,
    21, 13, 5, 28, 20, 12, 4,
)

#: Permuted choice 2: selects the 48 subkey bits from the 56 bits C_i D_i.
PC2 = (
    14, 17, 11, 24, 1, 5,
    3, 28, 15, 6, 21, 10,
    23, 19, 12, 4, 26, 8,
    16, 7, 27, 20, 13, 2,
    41, 52, 31, 37, 47, 55,
    30, 40, 51, 45, 33, 48,
    44, 49, 39, 56, 34, 53,
    46, 42, 50, 36, 29, 32,
)

#: Left shifts of C and D before rounds 1..16 (they add up to 28: C16 D16 = C0 D0).
SHIFTS = (1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1)

#: The eight S-boxes as printed: ``SBOXES[i][row][column]``; for a 6-bit input b1..b6 the row is
#: b1 b6 and the column b2 b3 b4 b5.
SBOXES = (
    (  # S1
        (14, 4, 13, 1, 2, 15, 11, 8, 3, 10, 6, 12, 5, 9, 0, 7),
        (0, 15, 7, 4, 14, 2, 13, 1, 10, 6, 12, 11, 9, 5, 3, 8),
        (4, 1, 14, 8, 13, 6, 2, 11, 15, 12, 9, 7, 3, 10, 5, 0),
        (15, 12, 8, 2, 4, 9, 1, 7, 5, 11, 3, 14, 10, 0, 6, 13),
    ),
    (  # S2
        (15, 1, 8, 14, 6, 11, 3, 4, 9, 7, 2, 13, 12, 0, 5, 10),
        (3, 13, 4, 7, 15, 2, 8, 14, 12, 0, 1, 10, 6, 9, 11, 5),
        (0, 14, 7, 11, 10, 4, 13, 1, 5, 8, 12, 6, 9, 3, 2, 15),
        (13, 8, 10, 1, 3, 15, 4, 2, 11, 6, 7, 12, 0, 5, 14, 9),
    ),
    (  # S3
        (10, 0, 9, 14, 6, 3, 15, 5, 1, 13, 12, 7, 11, 4, 2, 8),
        (13, 7, 0, 9, 3, 4, 6, 10, 2, 8, 5, 14, 12, 11, 15, 1),
        (13, 6, 4, 9, 8, 15, 3, 0, 11, 1, 2, 12, 5, 10, 14, 7),
        (1, 10, 13, 0, 6, 9, 8, 7, 4, 15, 14, 3, 11, 5, 2, 12),
    ),
    (  # S4
        (7, 13, 14, 3, 0, 6, 9, 10, 1, 2, 8, 5, 11, 12, 4, 15),
        (13, 8, 11, 5, 6, 15, 0, 3, 4, 7, 2, 12, 1, 10, 14, 9),
        (10, 6, 9, 0, 12, 11, 7, 13, 15, 1, 3, 14, 5, 2, 8, 4),
        (3, 15, 0, 6, 10, 1, 13, 8, 9, 4, 5, 11, 12, 7, 2, 14),
    ),
    (  # S5
        (2, 12, 4, 1, 7, 10, 11, 6, 8, 5, 3, 15, 13, 0, 14, 9),
        (14, 11, 2, 12, 4, 7, 13, 1, 5, 0, 15, 10, 3, 9, 8, 6),
        (4, 2, 1, 11, 10, 13, 7, 8, 15, 9, 12, 5, 6, 3, 0, 14),
        (11, 8, 12, 7, 1, 14, 2, 13, 6, 15, 0, 9, 10, 4, 5, 3),
    ),
    (  # S6
        (12, 1, 10, 15, 9, 2, 6, 8, 0, 13, 3, 4, 14, 7, 5, 11),
        (10, 15, 4, 2, 7, 12, 9, 5, 6, 1, 13, 14, 0, 11, 3, 8),
        (9, 14, 15, 5, 2, 8, 12, 3, 7, 0, 4, 10, 1, 13, 11, 6),
        (4, 3, 2, 12, 9, 5, 15, 10, 11, 14, 1, 7, 6, 0, 8, 13),
    ),
    (  # S7
        (4, 11, 2, 14, 15, 0, 8, 13, 3, 12, 9, 7, 5, 10, 6, 1),
        (13, 0, 11, 7, 4, 9, 1, 10, 14, 3, 5, 12, 2, 15, 8, 6),
        (1, 4, 11, 13, 12, 3, 7, 14, 10, 15, 6, 8, 0, 5, 9, 2),
        (6, 11, 13, 8, 1, 4, 10, 7, 9, 5, 0, 15, 14, 2, 3, 12),
    ),
    (  # S8
        (13, 2, 8, 4, 6, 15, 11, 1, 10, 9, 3, 14, 5, 0, 12, 7),
        (1, 15, 13, 8, 10, 3, 7, 4, 12, 5, 6, 11, 0, 14, 9, 2),
        (7, 11, 4, 1, 9, 12, 14, 2, 0, 6, 10, 13, 15, 3, 5, 8),
        (2, 1, 14, 7, 4, 10, 8, 13, 15, 12, 9, 0, 3, 5, 6, 11),
    ),
)


def _flatten_sbox(rows) -> tuple[int, ...]:
    """An S-box as a 64-entry table indexed by its 6-bit input (row = b1 b6, column = b2..b5)."""
    return tuple(rows[((x >> 4) & 2) | (x & 1)][(x >> 1) & 15] for x in range(64))


#: The S-boxes as 64-entry lookup tables indexed by the 6-bit input value, the form
#: ``labkit.sbox`` analyses (``SBOX_TABLES[i][x]`` for x in 0..63).
SBOX_TABLES = tuple(_flatten_sbox(rows) for rows in SBOXES)


# --- small helpers -------------------------------------------------------------------------------


def permute(block_bits, table) -> np.ndarray:
    """Apply a FIPS permutation/selection table (1-based) to a bit array: out[i] = in[table[i]-1]."""
    return np.asarray(block_bits, dtype=np.uint8)[np.asarray(table, dtype=np.intp) - 1]


def check_rounds(rounds) -> int:
    """``rounds`` as an int in 1..16 (reduced-round DES), else TypeError or ValueError."""
    return checks.check_int(rounds, "rounds", low=1, high=ROUNDS)


def check_sboxes(sboxes) -> tuple[tuple[int, ...], ...]:
    """Accept 8 S-boxes either as 64-entry tables or in the printed 4 x 16 layout."""
    if sboxes is SBOX_TABLES:
        return SBOX_TABLES
    tables = []
    if len(sboxes) != 8:
        raise ValueError(f"DES needs 8 S-boxes, got {len(sboxes)}")
    for i, s in enumerate(sboxes):
        arr = np.asarray(s)
        if arr.shape == (4, 16):
            arr = np.asarray(_flatten_sbox(arr.tolist()))
        if arr.shape != (64,):
            raise ValueError(f"S-box {i + 1} must have 64 entries (or 4 rows of 16), got {arr.shape}")
        if not np.issubdtype(arr.dtype, np.integer) or arr.min() < 0 or arr.max() > 15:
            raise ValueError(f"S-box {i + 1} entries must be ints in 0..15")
        tables.append(tuple(int(v) for v in arr))
    return tuple(tables)


# --- key schedule (FIPS 46-3, "Key Schedule Calculation") ---------------------------------------


def expand_key(key: bytes, rounds: int = ROUNDS) -> list[np.ndarray]:
    """The subkeys K_1..K_rounds (48-bit arrays): PC-1, then per round rotate C and D left, PC-2.

    The 8 parity bits (the last bit of every key byte) are not selected by PC-1, so they are
    ignored, as the standard says.
    """
    key = checks.check_bytes(key, KEY_SIZE, what="DES key")
    rounds = check_rounds(rounds)
    cd = permute(_bits.bytes_to_bits(key), PC1)
    c, d = cd[:28], cd[28:]
    subkeys = []
    for shift in SHIFTS[:rounds]:
        c, d = np.roll(c, -shift), np.roll(d, -shift)
        subkeys.append(permute(np.concatenate([c, d]), PC2))
    return subkeys


# --- the round function f(R, K) = P(S(E(R) xor K)) ----------------------------------------------


def sbox_lookup(table, six_bits) -> np.ndarray:
    """One S-box on 6 input bits (MSB first) -> 4 output bits (MSB first)."""
    index = _bits.bits_to_int(six_bits)
    return _bits.int_to_bits(int(table[index]), 4)


def _f_traced(right, subkey, sboxes):
    expanded = permute(right, E)
    mixed = expanded ^ subkey
    sbox_in = mixed.reshape(8, 6)
    sbox_out = np.stack([sbox_lookup(sboxes[i], sbox_in[i]) for i in range(8)])
    return permute(sbox_out.reshape(32), P), expanded, sbox_in, sbox_out


def round_function(right, subkey, sboxes=SBOX_TABLES) -> np.ndarray:
    """The cipher function f(R, K) of FIPS 46-3: expand R to 48 bits, add K, S-boxes, permute P."""
    right = _bits.as_bit_array(right, length=32, what="R")
    subkey = _bits.as_bit_array(subkey, length=48, what="subkey")
    return _f_traced(right, subkey, check_sboxes(sboxes))[0]


def feistel_round(left, right, subkey, sboxes=SBOX_TABLES) -> tuple[np.ndarray, np.ndarray]:
    """One round: (L, R) -> (R, L xor f(R, K))."""
    return right, left ^ round_function(right, subkey, sboxes)


# --- block encryption with a per-round trace ----------------------------------------------------


@dataclass
class RoundTrace:
    """What happens in round ``number``: the values are bit arrays (MSB first)."""

    number: int
    left_in: np.ndarray  # L_{i-1}, 32 bits
    right_in: np.ndarray  # R_{i-1}, 32 bits
    subkey: np.ndarray  # K_i, 48 bits
    expanded: np.ndarray  # E(R_{i-1}), 48 bits
    sbox_inputs: np.ndarray  # E(R) xor K as 8 rows of 6 bits
    sbox_outputs: np.ndarray  # 8 rows of 4 bits
    f_output: np.ndarray  # P(S(...)), 32 bits
    left_out: np.ndarray  # L_i = R_{i-1}
    right_out: np.ndarray  # R_i = L_{i-1} xor f

    def hex(self) -> dict:
        """The round's values as hex strings (S-box values as ints), for tables and widgets."""
        return {
            "round": self.number,
            "L": _bits.bits_to_hex(self.left_out),
            "R": _bits.bits_to_hex(self.right_out),
            "K": _bits.bits_to_hex(self.subkey),
            "E(R)": _bits.bits_to_hex(self.expanded),
            "S in": [_bits.bits_to_int(r) for r in self.sbox_inputs],
            "S out": [_bits.bits_to_int(r) for r in self.sbox_outputs],
            "f": _bits.bits_to_hex(self.f_output),
        }


@dataclass
class Trace:
    """A whole encryption: input, IP output, every round, preoutput (after the swap), output."""

    block: np.ndarray
    after_ip: np.ndarray
    rounds: list[RoundTrace] = field(default_factory=list)
    preoutput: np.ndarray | None = None
    output: np.ndarray | None = None

    @property
    def ciphertext(self) -> bytes:
        return _bits.bits_to_bytes(self.output)

    def states(self) -> np.ndarray:
        """The 64-bit state L_i R_i after IP (row 0) and after each round, one row per step."""
        rows = [self.after_ip] + [np.concatenate([r.left_out, r.right_out]) for r in self.rounds]
        return np.stack(rows)


def _run(subkeys, block: bytes, sboxes) -> Trace:
    block_bits = _bits.bytes_to_bits(block)
    state = permute(block_bits, IP)
    trace = Trace(block=block_bits, after_ip=state)
    steps = []  # what f computed in each round, for the trace

    def traced_f(subkey):
        def f(right):
            f_out, expanded, s_in, s_out = _f_traced(right, subkey, sboxes)
            steps.append((right, subkey, expanded, s_in, s_out, f_out))
            return f_out
        return f

    left, right = state[:32], state[32:]
    halves = feistel.run_rounds(left, right, [traced_f(k) for k in subkeys])
    for number, (new_left, new_right) in enumerate(halves, start=1):
        right_in, subkey, expanded, s_in, s_out, f_out = steps[-1]
        trace.rounds.append(RoundTrace(number, left, right_in, subkey, expanded, s_in, s_out,
                                       f_out, new_left, new_right))
        left, right = new_left, new_right
    trace.preoutput = np.concatenate([right, left])  # the final swap: R16 L16
    trace.output = permute(trace.preoutput, IP_INV)
    return trace


def encrypt_trace(key: bytes, block: bytes, *, rounds: int = ROUNDS, sboxes=SBOX_TABLES) -> Trace:
    """Encrypt one block and keep every intermediate value (see :class:`Trace`).

    ``rounds`` < 16 gives reduced-round DES (same IP, final swap and IP^-1); ``sboxes`` replaces
    the eight S-boxes (e.g. by linear maps, chapter 02).
    """
    block = checks.check_bytes(block, BLOCK_SIZE, what="DES block")
    sboxes = check_sboxes(sboxes)
    return _run(expand_key(key, rounds), block, sboxes)


def decrypt_trace(key: bytes, block: bytes, *, rounds: int = ROUNDS, sboxes=SBOX_TABLES) -> Trace:
    """Decrypt one block: the same circuit with the subkeys in reverse order."""
    block = checks.check_bytes(block, BLOCK_SIZE, what="DES block")
    sboxes = check_sboxes(sboxes)
    return _run(expand_key(key, rounds)[::-1], block, sboxes)


def encrypt_block(key: bytes, block: bytes, *, rounds: int = ROUNDS, sboxes=SBOX_TABLES) -> bytes:
    """DES encryption of one 8-byte block under an 8-byte key (parity bits ignored)."""
    return encrypt_trace(key, block, rounds=rounds, sboxes=sboxes).ciphertext


def decrypt_block(key: bytes, block: bytes, *, rounds: int = ROUNDS, sboxes=SBOX_TABLES) -> bytes:
    """DES decryption of one 8-byte block under an 8-byte key (parity bits ignored)."""
    return decrypt_trace(key, block, rounds=rounds, sboxes=sboxes).ciphertext


# --- 3DES (EDE), NIST SP 800-67 ----------------------------------------------------------------


def _split_3des_key(key: bytes) -> tuple[bytes, bytes, bytes]:
    if not isinstance(key, (bytes, bytearray, memoryview)):
        raise TypeError(f"3DES key must be bytes, got {type(key).__name__}")
    key = bytes(key)
    if len(key) == 16:
        return key[:8], key[8:], key[:8]  # keying option 2: K3 = K1
    if len(key) == 24:
        return key[:8], key[8:16], key[16:]
    raise ValueError(f"3DES key must be 16 or 24 bytes, got {len(key)}")


def tdes_encrypt_block(key: bytes, block: bytes) -> bytes:
    """Triple DES, encrypt-decrypt-encrypt: C = E_K3(D_K2(E_K1(P))); a 16-byte key means K3 = K1.

    With K1 = K2 = K3 it collapses to single DES, which is why EDE (not EEE) was chosen.
    """
    k1, k2, k3 = _split_3des_key(key)
    return encrypt_block(k3, decrypt_block(k2, encrypt_block(k1, block)))


def tdes_decrypt_block(key: bytes, block: bytes) -> bytes:
    """Inverse of :func:`tdes_encrypt_block`: P = D_K1(E_K2(D_K3(C)))."""
    k1, k2, k3 = _split_3des_key(key)
    return decrypt_block(k1, encrypt_block(k2, decrypt_block(k3, block)))


# --- keys: parity, weak and semi-weak keys, complementation ------------------------------------

#: 0-based positions of the 56 key bits that matter (parity bits 7, 15, ..., 63 excluded).
KEY_BIT_POSITIONS = tuple(i for i in range(64) if i % 8 != 7)


def set_parity(key: bytes) -> bytes:
    """The same key with every byte's low bit set so that the byte has odd parity (FIPS 46-3)."""
    key = checks.check_bytes(key, KEY_SIZE, what="DES key")
    return bytes((b & 0xFE) | (1 - bin(b >> 1).count("1") % 2) for b in key)


def key_from_cd(c, d) -> bytes:
    """The key (odd parity) whose PC-1 output is C0 D0: PC-1 run backwards."""
    cd = np.concatenate([_bits.as_bit_array(c, length=28, what="C0"),
                         _bits.as_bit_array(d, length=28, what="D0")])
    key_bits = np.zeros(64, dtype=np.uint8)
    key_bits[np.asarray(PC1) - 1] = cd
    return set_parity(_bits.bits_to_bytes(key_bits))


def _half_patterns() -> dict[str, np.ndarray]:
    """28-bit halves invariant under every rotation (weak) or under rotation by 2 (semi-weak)."""
    return {"0": np.zeros(28, np.uint8), "1": np.ones(28, np.uint8),
            "01": np.tile([0, 1], 14).astype(np.uint8), "10": np.tile([1, 0], 14).astype(np.uint8)}


def weak_keys() -> list[bytes]:
    """The 4 weak keys, derived: C0 and D0 constant, so all 16 subkeys are equal and E_k = D_k."""
    pats = _half_patterns()
    return [key_from_cd(pats[c], pats[d]) for c in ("0", "1") for d in ("0", "1")]


def semi_weak_key_pairs() -> list[tuple[bytes, bytes]]:
    """The 6 semi-weak pairs (k1, k2), derived: halves alternate 0101..., so k1 yields only two
    subkeys, K_i(k2) = K_{17-i}(k1), and E_k2 = D_k1."""
    pats = _half_patterns()
    swap = {"0": "0", "1": "1", "01": "10", "10": "01"}
    pairs, seen = [], set()
    for c in pats:
        for d in pats:
            if len(c) == 1 and len(d) == 1:
                continue  # both constant: a weak key
            k1 = key_from_cd(pats[c], pats[d])
            k2 = key_from_cd(pats[swap[c]], pats[swap[d]])
            if k2 not in seen:
                seen.add(k1)
                pairs.append((k1, k2))
    return pairs


def is_weak_key(key: bytes) -> bool:
    """True when all 16 subkeys are equal, so encryption is an involution."""
    subkeys = expand_key(key)
    return all(np.array_equal(k, subkeys[0]) for k in subkeys)


def complement(data: bytes) -> bytes:
    """Every bit flipped (the ``~`` of the complementation property)."""
    return bytes(b ^ 0xFF for b in bytes(data))


# --- avalanche ----------------------------------------------------------------------------------


@dataclass
class Avalanche:
    """Two traced encryptions differing in one input bit, compared step by step.

    ``diff[i]`` is the XOR of the 64-bit states L_i R_i (row 0: after IP); ``counts[i]`` its
    weight. The last row of ``diff`` is taken after the final swap and IP^-1 (the ciphertexts).
    """

    flip: str
    bit: int
    trace_a: Trace
    trace_b: Trace
    diff: np.ndarray
    counts: np.ndarray


def avalanche(key: bytes, block: bytes, bit: int, *, flip: str = "plaintext",
              rounds: int = ROUNDS) -> Avalanche:
    """Flip plaintext or key bit ``bit`` (0 = MSB of byte 0) and follow the difference per round."""
    if flip not in ("plaintext", "key"):
        raise ValueError(f"flip must be 'plaintext' or 'key', got {flip!r}")
    bit = checks.check_int(bit, "bit", low=0, high=63)
    key2, block2 = (key, _bits.flip_bit(block, bit)) if flip == "plaintext" else (
        _bits.flip_bit(key, bit), block)
    a = encrypt_trace(key, block, rounds=rounds)
    b = encrypt_trace(key2, block2, rounds=rounds)
    diff = np.vstack([a.states() ^ b.states(), (a.output ^ b.output)[None, :]])
    return Avalanche(flip, int(bit), a, b, diff, diff.sum(axis=1))


# --- vectorised batch path ----------------------------------------------------------------------
# The same cipher on many (key, block) pairs at once with numpy, for the exhaustive-search
# experiment. Blocks and keys are uint64 words (big-endian: bit 1 of FIPS = the top bit). The round
# function uses the classic software trick of merging each S-box with P into a lookup table of
# 32-bit words ("SP tables"); tests check it against the readable path above.


def to_words(data: bytes) -> np.ndarray:
    """Bytes (a multiple of 8) as an array of big-endian uint64 words, one per block."""
    data = bytes(data)
    if len(data) % 8:
        raise ValueError(f"data must be a multiple of 8 bytes, got {len(data)}")
    return np.frombuffer(data, dtype=">u8").astype(np.uint64)


def from_words(words) -> bytes:
    """Inverse of :func:`to_words`."""
    return np.asarray(words, dtype=np.uint64).astype(">u8").tobytes()


def _word_bits(words: np.ndarray) -> np.ndarray:
    return np.unpackbits(words.astype(">u8").view(np.uint8).reshape(-1, 8), axis=1)


def _bits_word(bit_rows: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.packbits(bit_rows, axis=1)).view(">u8").reshape(-1).astype(np.uint64)


def _sp_tables(sboxes) -> np.ndarray:
    """SP[i][x]: P applied to S-box i's output for input x, placed in its nibble, as a uint32."""
    table = np.zeros((8, 64), dtype=np.uint64)
    for i, s in enumerate(sboxes):
        for x in range(64):
            out = np.zeros(32, dtype=np.uint8)
            out[4 * i: 4 * i + 4] = _bits.int_to_bits(s[x], 4)
            table[i, x] = _bits.bits_to_int(permute(out, P))
    return table


_SP_CACHE: dict[tuple, np.ndarray] = {}


def _subkey_selectors(rounds: int) -> np.ndarray:
    """For each round, which of the 64 key bits (0-based) PC-2(rotations(PC-1)) selects."""
    cd = np.asarray(PC1) - 1  # key bit feeding each C D position
    c, d = cd[:28], cd[28:]
    sel = []
    for shift in SHIFTS[:rounds]:
        c, d = np.roll(c, -shift), np.roll(d, -shift)
        sel.append(np.concatenate([c, d])[np.asarray(PC2) - 1])
    return np.stack(sel)


def _subkey_byte_tables(rounds: int) -> np.ndarray:
    """T[r, b, v]: the bits of subkey K_{r+1} (as a 48-bit int) that come from key byte b = v.

    The key schedule only selects key bits, so K_r is the OR of 8 byte lookups: a batch of keys
    gets its subkeys with 8 table lookups per round instead of 48 bit gathers.
    """
    table = np.zeros((rounds, 8, 256), dtype=np.uint64)
    values = np.arange(256)
    for r, sel in enumerate(_subkey_selectors(rounds)):
        for out_bit, key_bit in enumerate(sel):
            byte, bit = divmod(int(key_bit), 8)
            present = ((values >> (7 - bit)) & 1).astype(np.uint64)
            table[r, byte] |= present << np.uint64(47 - out_bit)
    return table


_SUBKEY_TABLES = _subkey_byte_tables(ROUNDS)


def encrypt_many(keys, blocks, *, rounds: int = ROUNDS, decrypt: bool = False,
                 sboxes=SBOX_TABLES) -> np.ndarray:
    """DES (or its inverse) on arrays of uint64 keys and blocks (broadcast against each other).

    Same results as :func:`encrypt_block` per element; built for speed, not for reading.
    """
    rounds = check_rounds(rounds)
    sboxes = check_sboxes(sboxes)
    keys = np.atleast_1d(np.asarray(keys, dtype=np.uint64))
    blocks = np.atleast_1d(np.asarray(blocks, dtype=np.uint64))
    shape = np.broadcast_shapes(keys.shape, blocks.shape)
    # IP before broadcasting: one block against many keys is permuted once
    state = _bits_word(_word_bits(blocks.reshape(-1))[:, np.asarray(IP) - 1]).reshape(blocks.shape)
    keys = np.broadcast_to(keys, shape).reshape(-1)
    state = np.broadcast_to(state, shape).reshape(-1)
    sp = _SP_CACHE.get(sboxes)
    if sp is None:
        sp = _SP_CACHE.setdefault(sboxes, _sp_tables(sboxes))
    key_bytes = keys.astype(">u8").view(np.uint8).reshape(-1, 8)
    tables = _SUBKEY_TABLES[:rounds]
    order = tables[::-1] if decrypt else tables

    def round_function(table):
        subkey = table[0][key_bytes[:, 0]]
        for b in range(1, 8):
            subkey |= table[b][key_bytes[:, b]]

        def f(right):
            # E(R) as a 34-bit word R32 R1 ... R32 R1: S-box i reads its bits 4i .. 4i+5
            x = ((right & np.uint64(1)) << np.uint64(33)) | (right << np.uint64(1)) | (right >> np.uint64(31))
            out = np.zeros_like(right)
            for i in range(8):
                six = ((x >> np.uint64(28 - 4 * i)) ^ (subkey >> np.uint64(42 - 6 * i))) & np.uint64(63)
                out |= sp[i][six]
            return out
        return f

    left, right = state >> np.uint64(32), state & np.uint64(0xFFFFFFFF)
    left, right = feistel.apply_rounds(left, right, map(round_function, order))
    preoutput = (right << np.uint64(32)) | left
    out = _bits_word(_word_bits(preoutput)[:, np.asarray(IP_INV) - 1])
    return out.reshape(shape)
