"""AES (FIPS-197) written to be read, traced and attacked.

The state is 16 bytes in FIPS order: byte ``i`` sits at row ``i % 4``, column ``i // 4``
(FIPS-197 section 3.4), so the input block fills the 4x4 grid column by column. Every step is one
function named as in the standard (``sub_bytes``, ``shift_rows``, ``mix_columns``,
``add_round_key`` and their inverses), built on the GF(2^8) arithmetic of :mod:`labkit.gf256`.

The steps take a state as 16 ``bytes`` (returning ``bytes``) or as a numpy ``uint8`` array whose
last axis has 16 entries (returning an array), so the very same code encrypts one block for reading
and thousands of blocks at once for experiments (:func:`encrypt_blocks`).

Public API: :func:`encrypt_block`, :func:`decrypt_block`, :func:`expand_key`; traces
(:func:`trace_encrypt`, :func:`trace_decrypt`), reduced rounds (``rounds=``), and the structural
views used in chapter 03 (:func:`avalanche_per_round`, :func:`byte_dependencies`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from labkit import bits, checks
from labkit import gf256

__all__ = [
    "BLOCK_SIZE",
    "KEY_SIZES",
    "ROUNDS",
    "SBOX",
    "INV_SBOX",
    "RCON",
    "affine_map",
    "sbox_entry",
    "sub_bytes",
    "inv_sub_bytes",
    "shift_rows",
    "inv_shift_rows",
    "mix_columns",
    "inv_mix_columns",
    "add_round_key",
    "rot_word",
    "sub_word",
    "expand_key",
    "round_keys_array",
    "invert_key_schedule",
    "encrypt_block",
    "decrypt_block",
    "encrypt_blocks",
    "decrypt_blocks",
    "TraceStep",
    "trace_encrypt",
    "trace_decrypt",
    "state_matrix",
    "stage_names",
    "round_states",
    "avalanche_per_round",
    "byte_dependencies",
]

BLOCK_SIZE = 16
#: Key length in bytes -> number of rounds Nr (FIPS-197 Figure 4).
ROUNDS = {16: 10, 24: 12, 32: 14}
KEY_SIZES = tuple(ROUNDS)


# --- The S-box, derived (FIPS-197 5.1.1) ------------------------------------------------------------


def affine_map(b: int) -> int:
    """The S-box's affine map over GF(2): b'_i = b_i + b_{i+4} + b_{i+5} + b_{i+6} + b_{i+7} + c_i.

    Indices are mod 8 and c = 0x63 (FIPS-197 equation 5.1).
    """
    b = checks.check_int(b, "byte", low=0, high=0xFF)
    out = 0
    for i in range(8):
        bit = (b >> i) ^ (b >> ((i + 4) % 8)) ^ (b >> ((i + 5) % 8)) ^ (b >> ((i + 6) % 8))
        bit ^= (b >> ((i + 7) % 8)) ^ (0x63 >> i)
        out |= (bit & 1) << i
    return out


def sbox_entry(b: int) -> int:
    """S(b) = affine_map(b^-1): the multiplicative inverse in GF(2^8) (0 -> 0), then the affine map."""
    return affine_map(gf256.inverse(b))


#: The S-box as 256 ints, computed from the field (not typed in); the tests compare it with
#: FIPS-197 Figure 7.
SBOX: tuple[int, ...] = tuple(sbox_entry(b) for b in range(256))
#: Its inverse permutation (FIPS-197 Figure 14).
INV_SBOX: tuple[int, ...] = tuple(SBOX.index(y) for y in range(256))


def _rcon_table(count: int = 15) -> tuple[int, ...]:
    values = [0x00, 0x01]
    while len(values) < count:
        values.append(gf256.xtime(values[-1]))
    return tuple(values)


#: Round constants: RCON[i] = x^(i-1) in GF(2^8), i.e. 01, 02, 04, ..., 80, 1b, 36 (FIPS-197 5.2);
#: index 0 is unused.
RCON: tuple[int, ...] = _rcon_table()

_SBOX = np.array(SBOX, dtype=np.uint8)
_INV_SBOX = np.array(INV_SBOX, dtype=np.uint8)


def _mul_table(c: int) -> np.ndarray:
    """The column of GF(2^8) products ``c * b`` for every byte b, for vectorised MixColumns."""
    return np.array([gf256.mul(c, b) for b in range(256)], dtype=np.uint8)


_MUL = {c: _mul_table(c) for c in (2, 3, 9, 11, 13, 14)}


# --- State handling ------------------------------------------------------------------------------


def _as_state(state, what: str = "state") -> tuple[np.ndarray, bool]:
    """A state as a uint8 array (..., 16); the flag says whether the caller passed bytes."""
    if isinstance(state, (bytes, bytearray, memoryview)):
        if len(state) != BLOCK_SIZE:
            raise ValueError(f"{what} must be {BLOCK_SIZE} bytes, got {len(state)}")
        return np.frombuffer(bytes(state), dtype=np.uint8), True
    if isinstance(state, np.ndarray):
        if state.shape[-1:] != (BLOCK_SIZE,):
            raise ValueError(f"{what} array must have a last axis of 16 bytes, got shape {state.shape}")
        if state.dtype != np.uint8:
            raise TypeError(f"{what} array must have dtype uint8, got {state.dtype}")
        return state, False
    raise TypeError(f"{what} must be 16 bytes or a uint8 array (..., 16), got {type(state).__name__}")


def _same_kind(result: np.ndarray, as_bytes: bool):
    return result.tobytes() if as_bytes else result


def state_matrix(state) -> np.ndarray:
    """The 4x4 grid of a 16-byte state, ``grid[r, c] = state[r + 4c]`` (FIPS-197 3.4)."""
    arr, _ = _as_state(state)
    return arr.reshape(arr.shape[:-1] + (4, 4)).swapaxes(-1, -2)


# --- The four round steps and their inverses (FIPS-197 5.1 and 5.3) -------------------------------


def sub_bytes(state):
    """SubBytes (5.1.1): replace every byte b by S(b)."""
    arr, as_bytes = _as_state(state)
    return _same_kind(_SBOX[arr], as_bytes)


def inv_sub_bytes(state):
    """InvSubBytes (5.3.2): replace every byte by S^-1(b)."""
    arr, as_bytes = _as_state(state)
    return _same_kind(_INV_SBOX[arr], as_bytes)


# ShiftRows: s'[r, c] = s[r, (c + r) mod 4]; with byte index r + 4c this is a fixed permutation.
_SHIFT_ROWS = np.array([r + 4 * ((c + r) % 4) for c in range(4) for r in range(4)])
_INV_SHIFT_ROWS = np.argsort(_SHIFT_ROWS)


def shift_rows(state):
    """ShiftRows (5.1.2): row r is rotated left by r positions; row 0 stays."""
    arr, as_bytes = _as_state(state)
    return _same_kind(arr[..., _SHIFT_ROWS], as_bytes)


def inv_shift_rows(state):
    """InvShiftRows (5.3.1): row r is rotated right by r positions."""
    arr, as_bytes = _as_state(state)
    return _same_kind(arr[..., _INV_SHIFT_ROWS], as_bytes)


_ROTATE = [np.array([(r + k) % 4 for r in range(4)]) for k in range(4)]


def _mix(arr: np.ndarray, coefficients: tuple[int, int, int, int]) -> np.ndarray:
    """Multiply every column by the circulant matrix with first row ``coefficients``:
    out[r] = sum_k coefficients[k] * s[(r + k) mod 4] in GF(2^8), for the four rows r at once."""
    cols = arr.reshape(arr.shape[:-1] + (4, 4))  # [..., column, row]
    out = np.zeros_like(cols)
    for k, c in enumerate(coefficients):
        rotated = cols[..., _ROTATE[k]]  # rotated[..., r] = s[(r + k) mod 4]
        out ^= rotated if c == 1 else _MUL[c][rotated]
    return out.reshape(arr.shape)


def mix_columns(state):
    """MixColumns (5.1.3): each column times [[2,3,1,1],[1,2,3,1],[1,1,2,3],[3,1,1,2]] in GF(2^8)."""
    arr, as_bytes = _as_state(state)
    return _same_kind(_mix(arr, (2, 3, 1, 1)), as_bytes)


def inv_mix_columns(state):
    """InvMixColumns (5.3.3): the inverse matrix, first row [14, 11, 13, 9]."""
    arr, as_bytes = _as_state(state)
    return _same_kind(_mix(arr, (14, 11, 13, 9)), as_bytes)


def add_round_key(state, round_key):
    """AddRoundKey (5.1.4): XOR the 16-byte round key into the state (its own inverse)."""
    arr, as_bytes = _as_state(state)
    key, _ = _as_state(round_key, "round key")
    return _same_kind(arr ^ key, as_bytes)


# --- Key expansion (FIPS-197 5.2) ---------------------------------------------------------------


def _check_key(key) -> bytes:
    key = checks.check_bytes(key, what="key")
    if len(key) not in ROUNDS:
        raise ValueError(f"key must be 16, 24 or 32 bytes (AES-128/192/256), got {len(key)}")
    return key


def rot_word(word):
    """RotWord: [a0, a1, a2, a3] -> [a1, a2, a3, a0] (works on the last axis of an array)."""
    return np.asarray(word, dtype=np.uint8)[..., _ROTATE[1]]


def sub_word(word):
    """SubWord: the S-box applied to each of the four bytes."""
    return _SBOX[np.asarray(word, dtype=np.uint8)]


def _expand_words(keys: np.ndarray) -> np.ndarray:
    """Key words w[0..4(Nr+1)-1] for keys of shape (..., Nk*4): the loop of FIPS-197 Figure 11."""
    nk = keys.shape[-1] // 4
    nr = ROUNDS[keys.shape[-1]]
    words = np.zeros(keys.shape[:-1] + (4 * (nr + 1), 4), dtype=np.uint8)
    words[..., :nk, :] = keys.reshape(keys.shape[:-1] + (nk, 4))
    for i in range(nk, 4 * (nr + 1)):
        temp = words[..., i - 1, :]
        if i % nk == 0:
            temp = sub_word(rot_word(temp))
            temp = temp ^ np.array([RCON[i // nk], 0, 0, 0], dtype=np.uint8)
        elif nk > 6 and i % nk == 4:
            temp = sub_word(temp)
        words[..., i, :] = words[..., i - nk, :] ^ temp
    return words


def round_keys_array(key) -> np.ndarray:
    """Round keys as a uint8 array (..., Nr+1, 16); ``key`` is bytes or an array (..., 16|24|32)."""
    if isinstance(key, np.ndarray):
        if key.dtype != np.uint8 or key.shape[-1] not in ROUNDS:
            raise ValueError(f"key array must be uint8 with a last axis of 16, 24 or 32, got "
                             f"{key.dtype} {key.shape}")
        keys = key
    else:
        keys = np.frombuffer(_check_key(key), dtype=np.uint8)
    words = _expand_words(keys)
    return words.reshape(words.shape[:-2] + (-1, 16))


def expand_key(key: bytes) -> list[bytes]:
    """KeyExpansion: the Nr+1 round keys (16 bytes each) of a 16/24/32-byte key (FIPS-197 5.2)."""
    return [rk.tobytes() for rk in round_keys_array(key)]


def invert_key_schedule(round_key: bytes, round_index: int) -> bytes:
    """The AES-128 master key from its round key number ``round_index`` (1..10).

    The AES-128 schedule is invertible: w[i-4] = w[i] ^ f(w[i-1]), so one round key gives all
    (the last step of the Square attack).
    """
    rk = bytes(round_key)
    if len(rk) != 16:
        raise ValueError(f"round key must be 16 bytes (AES-128), got {len(rk)}")
    if not isinstance(round_index, int) or not 0 <= round_index <= 10:
        raise ValueError(f"round index must be in 0..10 for AES-128, got {round_index!r}")
    words = [np.frombuffer(rk[4 * j: 4 * j + 4], dtype=np.uint8) for j in range(4)]
    for i in range(4 * round_index + 3, 3, -1):  # recover w[i-4] from w[i] and w[i-1]
        w_i, w_prev = words[3], words[2]
        temp = w_prev
        if i % 4 == 0:
            temp = sub_word(rot_word(temp)) ^ np.array([RCON[i // 4], 0, 0, 0], dtype=np.uint8)
        words = [w_i ^ temp] + words[:3]
    return b"".join(wd.tobytes() for wd in words)


# --- Encryption and decryption (FIPS-197 5.1 and 5.3, Figures 5 and 12) ----------------------------


@dataclass(frozen=True)
class TraceStep:
    """The state after one step: round number, step name (as in FIPS-197) and the 16 bytes."""

    round: int
    step: str
    state: bytes
    round_key: bytes | None = None

    @property
    def hex(self) -> str:
        return bits.to_hex(self.state)


def _check_rounds(rounds, full: int) -> int:
    if rounds is None:
        return full
    return checks.check_int(rounds, "rounds", low=1, high=full)


def _cipher(state: np.ndarray, round_keys: np.ndarray, nr: int, record=None) -> np.ndarray:
    """Cipher() of FIPS-197 Figure 5 on states (..., 16) with ``nr`` rounds; the last round has no
    MixColumns. ``record(round, step, state, key)`` sees every intermediate state."""
    note = record or (lambda *args: None)
    note(0, "input", state, None)
    state = add_round_key(state, round_keys[..., 0, :])
    note(0, "add_round_key", state, round_keys[..., 0, :])
    for rnd in range(1, nr + 1):
        state = sub_bytes(state)
        note(rnd, "sub_bytes", state, None)
        state = shift_rows(state)
        note(rnd, "shift_rows", state, None)
        if rnd != nr:
            state = mix_columns(state)
            note(rnd, "mix_columns", state, None)
        state = add_round_key(state, round_keys[..., rnd, :])
        note(rnd, "add_round_key", state, round_keys[..., rnd, :])
    return state


def _inv_cipher(state: np.ndarray, round_keys: np.ndarray, nr: int, record=None) -> np.ndarray:
    """InvCipher() of FIPS-197 Figure 12: the steps undone in reverse order."""
    note = record or (lambda *args: None)
    note(nr, "input", state, None)
    state = add_round_key(state, round_keys[..., nr, :])
    note(nr, "add_round_key", state, round_keys[..., nr, :])
    for rnd in range(nr, 0, -1):
        if rnd != nr:
            state = inv_mix_columns(state)
            note(rnd, "inv_mix_columns", state, None)
        state = inv_shift_rows(state)
        note(rnd, "inv_shift_rows", state, None)
        state = inv_sub_bytes(state)
        note(rnd, "inv_sub_bytes", state, None)
        state = add_round_key(state, round_keys[..., rnd - 1, :])
        note(rnd - 1, "add_round_key", state, round_keys[..., rnd - 1, :])
    return state


def _block(block) -> np.ndarray:
    return np.frombuffer(checks.check_bytes(block, BLOCK_SIZE, what="block"), dtype=np.uint8)


def _run_one(cipher, key, block, rounds, record=None) -> np.ndarray:
    """Validate one (key, block) and run ``_cipher`` or ``_inv_cipher`` with ``rounds`` rounds."""
    rks = round_keys_array(key)
    nr = _check_rounds(rounds, rks.shape[0] - 1)
    return cipher(_block(block), rks, nr, record)


def _trace(cipher, key, block, rounds) -> list[TraceStep]:
    steps: list[TraceStep] = []

    def record(rnd, step, state, rk):
        steps.append(TraceStep(rnd, step, state.tobytes(), None if rk is None else rk.tobytes()))

    _run_one(cipher, key, block, rounds, record)
    return steps


def encrypt_block(key: bytes, block: bytes, *, rounds: int | None = None) -> bytes:
    """Encrypt one 16-byte block under a 16/24/32-byte key; ``rounds`` < Nr gives reduced AES
    (the last round performed has no MixColumns, as in the full cipher)."""
    return _run_one(_cipher, key, block, rounds).tobytes()


def decrypt_block(key: bytes, block: bytes, *, rounds: int | None = None) -> bytes:
    """Decrypt one 16-byte block (the inverse of :func:`encrypt_block` with the same ``rounds``)."""
    return _run_one(_inv_cipher, key, block, rounds).tobytes()


def _batch(key, blocks) -> tuple[np.ndarray, np.ndarray]:
    arr, _ = _as_state(np.ascontiguousarray(blocks) if isinstance(blocks, np.ndarray) else blocks,
                       "blocks")
    rks = round_keys_array(key)
    return arr, rks


def encrypt_blocks(key, blocks: np.ndarray, *, rounds: int | None = None) -> np.ndarray:
    """Encrypt many blocks at once: ``blocks`` is uint8 (n, 16); ``key`` is bytes (one key for all)
    or a uint8 array (n, 16|24|32) with one key per block. Same code as :func:`encrypt_block`."""
    arr, rks = _batch(key, blocks)
    return _cipher(arr, rks, _check_rounds(rounds, rks.shape[-2] - 1))


def decrypt_blocks(key, blocks: np.ndarray, *, rounds: int | None = None) -> np.ndarray:
    """Decrypt many blocks at once (see :func:`encrypt_blocks`)."""
    arr, rks = _batch(key, blocks)
    return _inv_cipher(arr, rks, _check_rounds(rounds, rks.shape[-2] - 1))


def trace_encrypt(key: bytes, block: bytes, *, rounds: int | None = None) -> list[TraceStep]:
    """Every intermediate state of the encryption, in order: ``input``, then round 0's
    ``add_round_key``, then for each round ``sub_bytes``, ``shift_rows``, ``mix_columns`` (not in
    the last round) and ``add_round_key``. The last entry's state is the ciphertext."""
    return _trace(_cipher, key, block, rounds)


def trace_decrypt(key: bytes, block: bytes, *, rounds: int | None = None) -> list[TraceStep]:
    """Every intermediate state of the decryption (InvCipher order); the last entry is the
    plaintext. Each step undoes one encryption step: the same states, visited backwards."""
    return _trace(_inv_cipher, key, block, rounds)


# --- Structure and diffusion (chapter 03 experiments) -----------------------------------------------


def stage_names(rounds: int = 10) -> list[tuple[int, str]]:
    """The (round, step) of every entry of :func:`trace_encrypt` for ``rounds`` rounds."""
    _check_rounds(rounds, 14)
    names = [(0, "input"), (0, "add_round_key")]
    for rnd in range(1, rounds + 1):
        steps = ["sub_bytes", "shift_rows"] + (["mix_columns"] if rnd != rounds else [])
        names += [(rnd, step) for step in steps + ["add_round_key"]]
    return names


def round_states(key, blocks: np.ndarray, *, rounds: int | None = None) -> np.ndarray:
    """The state after each round's AddRoundKey for many blocks: uint8 (Nr+1, n, 16), row 0 being
    the whitened input (round 0) and the last row the ciphertext."""
    arr, rks = _batch(key, blocks)
    nr = _check_rounds(rounds, rks.shape[-2] - 1)
    states = []
    _cipher(arr, rks, nr, lambda rnd, step, st, rk: step == "add_round_key" and states.append(st))
    return np.stack(states)


def avalanche_per_round(bit: int, *, target: str = "plaintext", samples: int = 256,
                        key_size: int = 16, rounds: int | None = None, seed: int = 0) -> np.ndarray:
    """Flip one bit of the plaintext or key of ``samples`` random (key, block) pairs and return,
    for each round r and each of the 128 state bits, the fraction of pairs whose state differs
    after round r: shape (Nr+1, 128). Row sums are the mean number of changed bits; after two
    rounds every bit flips about half the time (full diffusion)."""
    if target not in ("plaintext", "key"):
        raise ValueError(f"target must be 'plaintext' or 'key', got {target!r}")
    if key_size not in ROUNDS:
        raise ValueError(f"key_size must be 16, 24 or 32 bytes, got {key_size}")
    width = 128 if target == "plaintext" else 8 * key_size
    bit = checks.check_int(bit, "bit", low=0, high=width - 1)
    samples = checks.check_int(samples, "samples", low=1)
    rng = np.random.default_rng(seed)
    keys = rng.integers(0, 256, (samples, key_size), dtype=np.uint8)
    blocks = rng.integers(0, 256, (samples, BLOCK_SIZE), dtype=np.uint8)
    flipped_keys, flipped_blocks = keys.copy(), blocks.copy()
    mask = np.uint8(0x80 >> (bit % 8))  # bit 0 = MSB of byte 0, as in labkit.bits.flip_bit
    (flipped_blocks if target == "plaintext" else flipped_keys)[:, bit // 8] ^= mask
    a = round_states(keys, blocks, rounds=rounds)
    b = round_states(flipped_keys, flipped_blocks, rounds=rounds)
    diff = np.unpackbits(a ^ b, axis=-1)  # MSB first, the labkit.bits order
    return diff.mean(axis=1)


def byte_dependencies(stage: int, byte: int, *, rounds: int = 10) -> np.ndarray:
    """Which bytes of every earlier state the chosen byte depends on: a bool array
    (stage + 1, 16) whose row k marks bytes of :func:`stage_names` entry k. SubBytes and
    AddRoundKey keep positions, ShiftRows moves bytes, MixColumns mixes a whole column.
    (Every byte also depends on key bytes through AddRoundKey; this view follows the state.)"""
    names = stage_names(rounds)
    stage = checks.check_int(stage, "stage", low=0, high=len(names) - 1)
    byte = checks.check_int(byte, "byte", low=0, high=15)
    masks = np.zeros((stage + 1, 16), dtype=bool)
    masks[stage, byte] = True
    for k in range(stage, 0, -1):
        step, current, earlier = names[k][1], masks[k], masks[k - 1]
        if step in ("sub_bytes", "add_round_key"):
            earlier |= current
        elif step == "shift_rows":
            earlier[_SHIFT_ROWS[current]] = True  # output i came from input _SHIFT_ROWS[i]
        elif step == "mix_columns":
            for col in range(4):
                if current[4 * col: 4 * col + 4].any():
                    earlier[4 * col: 4 * col + 4] = True
    return masks
