"""Bit-level conversions used by every chapter.

Convention (FIPS 46-3 and FIPS 197 order): a block is a 1-D ``numpy.uint8`` array of 0/1 values,
the most significant bit of the first byte first. Every module converts through these helpers, so
"bit 0" means the same thing in DES, AES, the ReLU networks and the attacks.
"""
from __future__ import annotations

import re

import numpy as np

__all__ = [
    "parse_hex",
    "to_hex",
    "bytes_to_bits",
    "bits_to_bytes",
    "blocks_to_bits",
    "bits_to_blocks",
    "int_to_bits",
    "bits_to_int",
    "hex_to_bits",
    "bits_to_hex",
    "xor_bytes",
    "hamming_weight",
    "hamming_distance",
    "flip_bit",
    "as_bit_array",
]

_HEX_RE = re.compile(r"[0-9a-fA-F]*")


def parse_hex(text: str, *, length: int | None = None, what: str = "value") -> bytes:
    """Parse hex text (spaces, underscores, colons and a leading ``0x`` allowed) into bytes.

    ``length`` is the expected number of bytes; ``what`` names the value in error messages, so a
    widget can show "key must be 16 bytes (32 hex digits), got 15" rather than a traceback.
    """
    if isinstance(text, (bytes, bytearray)):
        raise TypeError(f"{what} must be hex text (str), got bytes; pass bytes directly instead")
    if not isinstance(text, str):
        raise TypeError(f"{what} must be hex text (str), got {type(text).__name__}")
    cleaned = re.sub(r"[\s_:]", "", text)
    if cleaned[:2].lower() == "0x":
        cleaned = cleaned[2:]
    if not _HEX_RE.fullmatch(cleaned):
        bad = next(ch for ch in cleaned if ch not in "0123456789abcdefABCDEF")
        raise ValueError(f"{what} must contain only hex digits 0-9 a-f, found {bad!r}")
    if len(cleaned) % 2:
        raise ValueError(f"{what} must have an even number of hex digits, got {len(cleaned)}")
    data = bytes.fromhex(cleaned)
    if length is not None and len(data) != length:
        raise ValueError(
            f"{what} must be {length} bytes ({2 * length} hex digits), got {len(data)} bytes"
        )
    return data


def to_hex(data: bytes, *, group: int = 0) -> str:
    """Lower-case hex of ``data``; ``group=4`` inserts a space every 4 bytes for readability."""
    data = bytes(data)
    if group <= 0:
        return data.hex()
    return " ".join(data[i : i + group].hex() for i in range(0, len(data), group))


def bytes_to_bits(data: bytes) -> np.ndarray:
    """Bytes to a uint8 array of bits, MSB of the first byte first."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"expected bytes, got {type(data).__name__}")
    return np.unpackbits(np.frombuffer(bytes(data), dtype=np.uint8))


def as_bit_array(bits, *, length: int | None = None, what: str = "bits") -> np.ndarray:
    """Validate any sequence of 0/1 (list, array, tensor) and return it as a uint8 array."""
    if hasattr(bits, "detach"):  # torch tensor, without importing torch here
        bits = bits.detach().cpu().numpy()
    arr = np.asarray(bits)
    if arr.ndim != 1:
        raise ValueError(f"{what} must be a 1-D sequence of 0/1, got shape {arr.shape}")
    if arr.size and not np.all((arr == 0) | (arr == 1)):
        raise ValueError(f"{what} must contain only 0 and 1")
    if length is not None and arr.size != length:
        raise ValueError(f"{what} must have {length} bits, got {arr.size}")
    return arr.astype(np.uint8)


def bits_to_bytes(bits) -> bytes:
    """Inverse of :func:`bytes_to_bits`; the number of bits must be a multiple of 8."""
    arr = as_bit_array(bits)
    if arr.size % 8:
        raise ValueError(f"number of bits must be a multiple of 8, got {arr.size}")
    return np.packbits(arr).tobytes()


def blocks_to_bits(blocks) -> np.ndarray:
    """A batch of blocks, shape ``(n, k)`` bytes, to its bits, shape ``(n, 8k)`` uint8.

    Row i is ``bytes_to_bits(bytes(blocks[i]))`` (MSB of each block's first byte first): the
    batched form for the cipher networks, which take one block per row.
    """
    if hasattr(blocks, "detach"):  # torch tensor, without importing torch here
        blocks = blocks.detach().cpu().numpy()
    arr = np.asarray(blocks)
    if arr.ndim != 2:
        raise ValueError(f"blocks must be a 2-D array (n blocks, k bytes), got shape {arr.shape}")
    if arr.dtype != np.uint8:
        if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"blocks must be an integer array of bytes, got dtype {arr.dtype}")
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise ValueError("blocks must hold bytes: integers in 0..255")
        arr = arr.astype(np.uint8)
    return np.unpackbits(arr, axis=1)


def bits_to_blocks(bits) -> np.ndarray:
    """Inverse of :func:`blocks_to_bits`: ``(n, 8k)`` bits (ints, floats or bools, each 0 or 1)
    to ``(n, k)`` uint8 blocks, MSB first; a network's 0.0/1.0 outputs convert directly."""
    if hasattr(bits, "detach"):
        bits = bits.detach().cpu().numpy()
    arr = np.asarray(bits)
    if arr.ndim != 2:
        raise ValueError(f"bits must be a 2-D array (n blocks, 8k bits), got shape {arr.shape}")
    if arr.shape[1] % 8:
        raise ValueError(f"bits per block must be a multiple of 8, got {arr.shape[1]}")
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"bits must be a numeric array of 0/1, got dtype {arr.dtype}")
    if arr.size and not np.all((arr == 0) | (arr == 1)):
        raise ValueError("bits must contain only 0 and 1")
    return np.packbits(arr.astype(np.uint8), axis=1)


def int_to_bits(value: int, width: int) -> np.ndarray:
    """Non-negative integer to ``width`` bits, most significant first."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise TypeError(f"value must be an int, got {type(value).__name__}")
    if width < 0:
        raise ValueError(f"width must be non-negative, got {width}")
    value = int(value)
    if value < 0 or value >> width:
        raise ValueError(f"value {value} does not fit in {width} bits")
    return np.array([(value >> (width - 1 - i)) & 1 for i in range(width)], dtype=np.uint8)


def bits_to_int(bits) -> int:
    """Bits (most significant first) to a non-negative integer."""
    value = 0
    for b in as_bit_array(bits):
        value = (value << 1) | int(b)
    return value


def hex_to_bits(text: str, *, length: int | None = None, what: str = "value") -> np.ndarray:
    """Hex text to bits; ``length`` is in bytes, as in :func:`parse_hex`."""
    return bytes_to_bits(parse_hex(text, length=length, what=what))


def bits_to_hex(bits) -> str:
    return bits_to_bytes(bits).hex()


def xor_bytes(a: bytes, b: bytes) -> bytes:
    """Bytewise XOR of two equal-length byte strings."""
    if len(a) != len(b):
        raise ValueError(f"xor needs equal lengths, got {len(a)} and {len(b)} bytes")
    return bytes(x ^ y for x, y in zip(a, b))


def hamming_weight(data) -> int:
    """Number of one bits in bytes, an int, or a bit array."""
    if isinstance(data, (bytes, bytearray)):
        return int(np.unpackbits(np.frombuffer(bytes(data), dtype=np.uint8)).sum())
    if isinstance(data, (int, np.integer)):
        return bin(int(data)).count("1")
    return int(as_bit_array(data).sum())


def hamming_distance(a, b) -> int:
    """Number of differing bits between two equal-length byte strings or bit arrays."""
    if isinstance(a, (bytes, bytearray)) and isinstance(b, (bytes, bytearray)):
        return hamming_weight(xor_bytes(a, b))
    a, b = as_bit_array(a), as_bit_array(b)
    if a.size != b.size:
        raise ValueError(f"lengths differ: {a.size} and {b.size} bits")
    return int((a != b).sum())


def flip_bit(data: bytes, index: int) -> bytes:
    """Return ``data`` with bit ``index`` flipped (0 = MSB of the first byte)."""
    data = bytes(data)
    if not 0 <= index < 8 * len(data):
        raise ValueError(f"bit index must be in 0..{8 * len(data) - 1}, got {index}")
    out = bytearray(data)
    out[index // 8] ^= 0x80 >> (index % 8)
    return bytes(out)
