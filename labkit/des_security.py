"""Breaking DES in practice (unit 02c): exhaustive search, double and triple DES, small blocks.

Three measurements behind DES's retirement, each small enough to run live:

* exhaustive search: this machine's key rate (labkit's batch DES in ``exhaustive_search``,
  pycryptodome's C DES here) set against
  the historical searches (:data:`KEY_SEARCH_HISTORY`) and a published GPU figure
  (:data:`GPU_DES_RATE`, labelled as such, not measured here);
* double DES falls to the meet-in-the-middle attack (Diffie and Hellman 1977; Merkle and Hellman,
  "On the security of multiple encryption", CACM 24(7), 1981): on a toy whose two keys have only
  ``key_bits`` unknown bits each, one table of 2^k middle values replaces 2^(2k) trials;
* a 64-bit block wears out after about 2^32 blocks (the birthday bound; Sweet32, Bhargavan and
  Leurent, ACM CCS 2016): measured on :class:`ToyBlockCipher`, whose block has 8 to 32 bits, in CBC.
"""
from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

import numpy as np
from Crypto.Cipher import DES
from tqdm.auto import tqdm

from labkit import checks, des, feistel, sbox

__all__ = [
    "SearchResult", "forget_key_bits", "keys_from_indices", "exhaustive_search",
    "Milestone", "KEY_SEARCH_HISTORY", "GPU_DES_RATE", "pycryptodome_search_rate", "TOY_BASE_KEYS",
    "toy_key", "toy_double_encrypt", "MeetInTheMiddle",
    "meet_in_the_middle", "ToyBlockCipher", "cbc_encrypt", "cbc_decrypt", "cbc_collisions",
    "blocks_until_collision", "birthday_bound", "SBOX_CRITERIA", "sbox_design_criteria",
]

# --- S-box design: what random S-boxes miss -------------------------------------------------------

#: Differential design rules of DES's S-boxes, as published by D. Coppersmith, "The Data Encryption
#: Standard (DES) and its strength against attacks", IBM J. Res. Dev. 38(3), 1994 (criteria S-4..S-7).
SBOX_CRITERIA = {
    "S-4": "inputs differing in one bit give outputs differing in at least two bits",
    "S-5": "inputs differing in the two middle bits (001100) give outputs differing in at least two bits",
    "S-6": "inputs differing in the first two bits and equal in the last two (11xy00) never give equal outputs",
    "S-7": "no nonzero input difference gives one output difference for more than 8 of its 32 pairs",
}


def sbox_design_criteria(table) -> dict[str, bool]:
    """Which of Coppersmith's criteria S-4..S-7 a 6-to-4-bit S-box meets, read off its DDT."""
    d = sbox.ddt(table, out_bits=4)
    if d.shape != (64, 16):
        raise ValueError(f"a DES S-box has 6 input and 4 output bits, got a DDT of shape {d.shape}")
    light = [b for b in range(16) if bin(b).count("1") <= 1]  # output differences of weight 0 or 1
    return {
        "S-4": all(d[1 << i][b] == 0 for i in range(6) for b in light),
        "S-5": all(d[0b001100][b] == 0 for b in light),
        "S-6": all(d[0b110000 | (x << 2)][0] == 0 for x in range(4)),
        "S-7": int(d[1:].max()) <= 16,
    }


# --- exhaustive search on a reduced key space (numpy batches of labkit's DES) ----------------------



@dataclass
class SearchResult:
    """Outcome of :func:`exhaustive_search`: matching keys, work done and measured speed."""

    keys: list[bytes]
    keys_tested: int
    seconds: float

    @property
    def keys_per_second(self) -> float:
        return self.keys_tested / self.seconds if self.seconds > 0 else float("inf")

    def extrapolate(self, key_bits: int = 56) -> float:
        """Seconds this machine would need for the whole 2**key_bits key space at the same speed."""
        return 2.0 ** key_bits / self.keys_per_second


def _unknown_positions(unknown_bits) -> list[int]:
    """Validate key bit positions (or an int n: the last n key bits that matter)."""
    if isinstance(unknown_bits, (int, np.integer)) and not isinstance(unknown_bits, bool):
        if not 1 <= unknown_bits <= 32:
            raise ValueError(f"number of unknown key bits must be in 1..32, got {unknown_bits}")
        unknown_bits = des.KEY_BIT_POSITIONS[-int(unknown_bits):]
    positions = [int(p) for p in unknown_bits]
    if not positions or len(set(positions)) != len(positions) or len(positions) > 32:
        raise ValueError("unknown_bits must be 1..32 distinct key bit positions")
    for p in positions:
        if p not in des.KEY_BIT_POSITIONS:
            raise ValueError(f"unknown key bit {p} must be in 0..63 and not a parity bit "
                             "(7, 15, ..., 63)")
    return positions


def forget_key_bits(key: bytes, unknown_bits) -> bytes:
    """The key with the given bit positions (or the last n key bits that matter) set to 0:
    what an attacker who knows the other bits starts an exhaustive search from."""
    key = bytearray(checks.check_bytes(key, des.KEY_SIZE, what="key"))
    for p in _unknown_positions(unknown_bits):
        key[p // 8] &= ~(0x80 >> (p % 8)) & 0xFF
    return bytes(key)


def keys_from_indices(known_key: bytes, unknown_bits, indices) -> np.ndarray:
    """The candidate keys of a reduced key space as uint64 words: ``known_key`` with bit j of each
    index written at ``unknown_bits[j]`` (positions as in :func:`forget_key_bits`; an int n means
    the last n key bits that matter). Index 0 is ``known_key`` with the unknown bits cleared."""
    known_key = checks.check_bytes(known_key, des.KEY_SIZE, what="known key")
    positions = _unknown_positions(unknown_bits)
    indices = np.asarray(indices)
    if indices.size and (not np.issubdtype(indices.dtype, np.integer) or int(indices.min()) < 0
                         or int(indices.max()) >> len(positions)):
        raise ValueError(f"indices must be ints in 0..2^{len(positions)} - 1")
    indices = indices.astype(np.uint64)
    keys = np.full(indices.shape, int.from_bytes(forget_key_bits(known_key, positions), "big"),
                   dtype=np.uint64)
    for j, pos in enumerate(positions):
        keys |= ((indices >> np.uint64(j)) & np.uint64(1)) << np.uint64(63 - pos)
    return keys


def exhaustive_search(plaintext: bytes, ciphertext: bytes, known_key: bytes, unknown_bits,
                      *, batch: int = 1 << 14, progress: bool = True,
                      rounds: int = des.ROUNDS) -> SearchResult:
    """Try every value of the ``unknown_bits`` key bits (0-based positions, parity bits not
    allowed; or an int n for the last n key bits that matter), keeping the rest of ``known_key``.

    Returns every key that maps ``plaintext`` to ``ciphertext``, each confirmed with the readable
    :func:`labkit.des.encrypt_block`.
    """
    plaintext = checks.check_bytes(plaintext, des.BLOCK_SIZE, what="plaintext")
    ciphertext = checks.check_bytes(ciphertext, des.BLOCK_SIZE, what="ciphertext")
    known_key = checks.check_bytes(known_key, des.KEY_SIZE, what="known key")
    positions = _unknown_positions(unknown_bits)
    block_word = np.uint64(int.from_bytes(plaintext, "big"))
    target = np.uint64(int.from_bytes(ciphertext, "big"))
    total = 1 << len(positions)

    found: list[bytes] = []
    start = time.perf_counter()
    with tqdm(total=total, unit="key", unit_scale=True, disable=not progress,
              desc=f"2^{len(positions)} keys") as bar:
        for lo in range(0, total, batch):
            n = np.arange(lo, min(lo + batch, total), dtype=np.uint64)
            keys = keys_from_indices(known_key, positions, n)
            hits = keys[des.encrypt_many(keys, block_word, rounds=rounds) == target]
            for k in hits:
                key = int(k).to_bytes(8, "big")
                if des.encrypt_block(key, plaintext, rounds=rounds) == ciphertext:
                    found.append(key)
            bar.update(n.size)
    return SearchResult(keys=found, keys_tested=total, seconds=time.perf_counter() - start)


# --- exhaustive search: history and rates ----------------------------------------------------------


@dataclass(frozen=True)
class Milestone:
    """One step in the history of searching DES keys; ``keys_per_second`` where the source gives it."""

    year: int
    event: str
    duration: str
    keys_per_second: float | None
    source: str


KEY_SEARCH_HISTORY = (
    Milestone(1973, "NBS calls for a standard cipher (15 May 1973; second call 27 August 1974)",
              "", None, "Federal Register 38 (1973) and 39 (1974); IBM's Lucifer-based answer became DES"),
    Milestone(1976, "DES approved as a federal standard (23 November 1976; FIPS 46, January 1977)",
              "", None, "NBS FIPS PUB 46, 1977"),
    Milestone(1977, "Diffie and Hellman: a $20 million machine of 10^6 chips at 10^6 keys/s each",
              "about a day (estimate)", 1e12,
              "W. Diffie, M. Hellman, Exhaustive cryptanalysis of the NBS DES, IEEE Computer 10(6), 1977"),
    Milestone(1997, "DESCHALL: volunteers' computers on the Internet solve RSA's DES Challenge I",
              "96 days of search (solved 17 June 1997)", None,
              "M. Curtin, J. Dolske, A Brute Force Search of DES Keyspace, ;login: (USENIX), May 1998; "
              "M. Curtin, Brute Force: Cracking the Data Encryption Standard, Copernicus, 2005"),
    Milestone(1998, "EFF's Deep Crack (1,856 custom chips, about $250,000) solves DES Challenge II-2",
              "56 hours", 9.0e10, "Electronic Frontier Foundation, Cracking DES, O'Reilly, 1998"),
    Milestone(1999, "Deep Crack with distributed.net solves DES Challenge III",
              "22 hours 15 minutes", 2.45e11, "RSA Laboratories / EFF announcement, 19 January 1999"),
)

#: A published GPU rate, not measured here: hashcat 4.1.0, mode 14000 (DES, known plaintext), on one
#: NVIDIA GeForce GTX 1080: "Speed.Dev.#1: 21495.5 MH/s" in the status screen quoted in the hashcat
#: forum thread "Trying to crack 8 Byte DES key" (2018), whose time estimate for 2^56 keys was 38 days.
GPU_DES_RATE = Milestone(2018, "hashcat 4.1.0 on one GeForce GTX 1080 (published figure)",
                         "38 days for 2^56 keys (its own estimate)", 21495.5e6,
                         "hashcat forum, 'Trying to crack 8 Byte DES key', 2018, status screen")


def pycryptodome_search_rate(keys: int = 20_000) -> SearchResult:
    """Time a key search with pycryptodome's DES (C) over ``keys`` keys: one key setup and one block
    per key, as in a real search, driven from Python, so the call overhead is part of the rate
    (compare :func:`exhaustive_search`, which runs numpy batches)."""
    keys = checks.check_int(keys, "keys", low=1, high=10**7)
    block, target = b"rate run", bytes(8)
    found = []
    start = time.perf_counter()
    for n in range(keys):
        key = n.to_bytes(8, "big")
        if DES.new(key, DES.MODE_ECB).encrypt(block) == target:
            found.append(key)
    return SearchResult(keys=found, keys_tested=keys, seconds=time.perf_counter() - start)


# --- double DES and the meet-in-the-middle attack on a reduced-key toy ------------------------------

#: Public base keys of the toy 2DES's two stages: only the last ``key_bits`` key bits that matter
#: (``des.KEY_BIT_POSITIONS[-key_bits:]``) of each stage are secret.
TOY_BASE_KEYS = (bytes.fromhex("3b3898371520f75e"), bytes.fromhex("922fb510c71f436e"))
_MAX_TOY_BITS = 22  # two tables of 2^22 uint64 words: 64 MiB


def _check_stage_index(index, key_bits: int) -> int:
    return checks.check_int(index, "key index", low=0, high=(1 << key_bits) - 1)


def toy_key(index: int, key_bits: int, stage: int) -> bytes:
    """The DES key of toy-2DES stage 1 or 2 whose ``key_bits`` unknown bits hold ``index`` (bit j
    of the index at ``des.KEY_BIT_POSITIONS[-key_bits:][j]``), the rest from :data:`TOY_BASE_KEYS`."""
    key_bits = checks.check_int(key_bits, "key_bits", low=1, high=_MAX_TOY_BITS)
    stage = checks.check_int(stage, "stage", low=1, high=2)
    index = _check_stage_index(index, key_bits)
    word = keys_from_indices(TOY_BASE_KEYS[stage - 1], key_bits, [index])[0]
    return int(word).to_bytes(8, "big")


def toy_double_encrypt(index1: int, index2: int, block: bytes, key_bits: int) -> bytes:
    """Toy 2DES: DES under stage 2's key of the DES under stage 1's key, C = E_k2(E_k1(P))."""
    return des.encrypt_block(toy_key(index2, key_bits, 2),
                             des.encrypt_block(toy_key(index1, key_bits, 1), block))


@dataclass
class MeetInTheMiddle:
    """What :func:`meet_in_the_middle` found and what it cost.

    ``candidates`` are the (index1, index2) pairs consistent with every known pair, sorted;
    ``encryptions`` counts DES operations (forward table, backward pass, checks) against the
    ``brute_force_encryptions`` = 2^(2k) of trying every key pair.
    """

    candidates: list[tuple[int, int]]
    key_bits: int
    table_entries: int
    table_bytes: int
    encryptions: int
    seconds: float

    @property
    def brute_force_encryptions(self) -> int:
        return 1 << (2 * self.key_bits)


def _check_pairs(pairs) -> list[tuple[bytes, bytes]]:
    pairs = [(checks.check_bytes(m, 8, what="plaintext"), checks.check_bytes(c, 8, what="ciphertext"))
             for m, c in pairs]
    if not pairs:
        raise ValueError("need at least one (plaintext, ciphertext) pair")
    return pairs


def meet_in_the_middle(pairs, key_bits: int) -> MeetInTheMiddle:
    """Every key pair of the toy 2DES consistent with the known (plaintext, ciphertext) ``pairs``.

    Encrypt the first plaintext under all 2^k stage-1 keys and keep the middle values in a sorted
    table; decrypt the first ciphertext under all 2^k stage-2 keys and look each result up; check
    the matches on the other pairs. 2^(k+1) DES operations instead of 2^(2k) (Merkle-Hellman 1981).
    """
    pairs = _check_pairs(pairs)
    key_bits = checks.check_int(key_bits, "key_bits", low=1, high=_MAX_TOY_BITS)
    start = time.perf_counter()
    indices = np.arange(1 << key_bits, dtype=np.uint64)
    (m0, c0), rest = pairs[0], pairs[1:]
    middle = des.encrypt_many(keys_from_indices(TOY_BASE_KEYS[0], key_bits, indices), des.to_words(m0))
    order = np.argsort(middle, kind="stable")
    table = middle[order]
    back = des.encrypt_many(keys_from_indices(TOY_BASE_KEYS[1], key_bits, indices), des.to_words(c0),
                            decrypt=True)
    lo, hi = np.searchsorted(table, back, "left"), np.searchsorted(table, back, "right")
    candidates, confirmations = [], 0
    for j in np.flatnonzero(hi > lo):
        for i in order[lo[j]:hi[j]]:
            confirmations += 2 * len(rest)
            if all(toy_double_encrypt(int(i), int(j), m, key_bits) == c for m, c in rest):
                candidates.append((int(i), int(j)))
    return MeetInTheMiddle(sorted(candidates), key_bits, table.size, table.nbytes + order.nbytes,
                           2 * indices.size + confirmations, time.perf_counter() - start)


# --- a small-block cipher, CBC and the birthday bound (Sweet32) --------------------------------------


class ToyBlockCipher:
    """A keyed permutation of ``block_bits``-bit integers (even, 8 to 32): a four-round
    :class:`labkit.feistel.Feistel` network whose round functions are tables drawn from
    SHAKE-128(key, round), the Luby-Rackoff construction of chapter 01. A model of a small-block
    cipher for birthday experiments, not a cipher to protect anything."""

    ROUNDS = 4

    def __init__(self, key: bytes, block_bits: int):
        key = checks.check_bytes(key, None, what="toy cipher key")
        block_bits = checks.check_int(block_bits, "block_bits", low=8, high=32)
        if block_bits % 2:
            raise ValueError(f"block_bits must be even (two equal halves), got {block_bits}")
        self.block_bits, half = block_bits, block_bits // 2
        half_bytes = (half + 7) // 8
        size = 1 << half
        tables = []
        for r in range(self.ROUNDS):
            raw = hashlib.shake_128(b"labkit toy cipher|%d|%d|" % (block_bits, r) + key).digest(size * half_bytes)
            words = np.frombuffer(raw, dtype=np.uint8).reshape(size, half_bytes).astype(np.int64)
            values = (words * (256 ** np.arange(half_bytes - 1, -1, -1))).sum(axis=1) & (size - 1)
            tables.append(values.tolist())
        self._network = feistel.Feistel([table.__getitem__ for table in tables], half)

    def _check_block(self, block) -> int:
        return checks.check_int(block, f"{self.block_bits}-bit block", low=0, high=(1 << self.block_bits) - 1)

    def encrypt(self, block: int) -> int:
        """Four Feistel rounds (L, R) -> (R, L xor F_r(R)), then the final swap."""
        return self._network.encrypt(self._check_block(block))

    def decrypt(self, block: int) -> int:
        """The same network with the round functions in reverse order."""
        return self._network.decrypt(self._check_block(block))


def cbc_encrypt(cipher: ToyBlockCipher, iv: int, blocks) -> list[int]:
    """CBC (NIST SP 800-38A, 6.2) on integer blocks: C_i = E(P_i xor C_{i-1}), C_0 = IV."""
    previous, out = cipher._check_block(iv), []
    for block in blocks:
        previous = cipher.encrypt(cipher._check_block(block) ^ previous)
        out.append(previous)
    return out


def cbc_decrypt(cipher: ToyBlockCipher, iv: int, blocks) -> list[int]:
    """P_i = D(C_i) xor C_{i-1}."""
    chain = [cipher._check_block(iv)] + [cipher._check_block(b) for b in blocks]
    return [cipher.decrypt(c) ^ p for p, c in zip(chain, chain[1:])]


def cbc_collisions(iv: int, ciphertext) -> list[tuple[int, int, int]]:
    """Every (i, j, P_i xor P_j), i < j (0-based block numbers), with C_i = C_j in a CBC ciphertext.

    E is a permutation, so C_i = C_j means P_i xor C_{i-1} = P_j xor C_{j-1}: the XOR of the two
    plaintext blocks is C_{i-1} xor C_{j-1}, read off the ciphertext without the key.
    """
    chain = [int(iv)] + [int(c) for c in ciphertext]
    seen: dict[int, list[int]] = {}
    found = []
    for j, c in enumerate(chain[1:]):
        for i in seen.get(c, []):
            found.append((i, j, chain[i] ^ chain[j]))
        seen.setdefault(c, []).append(j)
    return found


def blocks_until_collision(cipher: ToyBlockCipher, iv: int, rng: np.random.Generator,
                           limit: int = 1 << 22) -> int:
    """Encrypt random plaintext blocks in CBC until a ciphertext block repeats; how many blocks.

    The plaintext must vary (real traffic does): with one repeated block, CBC iterates a
    permutation and comes back to the IV only after about half the block space.
    """
    seen, previous, count = set(), cipher._check_block(iv), 0
    while count < limit:
        for block in rng.integers(0, 1 << cipher.block_bits, size=4096).tolist():
            count += 1
            previous = cipher.encrypt(block ^ previous)
            if previous in seen:
                return count
            seen.add(previous)
    raise RuntimeError(f"no collision within {count} blocks")


def birthday_bound(block_bits: int) -> float:
    """sqrt(pi/2 * 2^n): the expected number of random n-bit blocks until the first repeat."""
    return math.sqrt(math.pi / 2 * 2.0 ** checks.check_int(block_bits, "block_bits", low=1, high=128))
