"""The manifest's schema: every field's type, size and range, checked before anything in a
header is used (a malformed manifest raises :class:`FormatError` naming the first problem),
and a JSON reader whose memory is bounded by a small multiple of its input."""
from __future__ import annotations

import json
import math

from labkit.weights.encoding import (AEAD_NAME, DTYPES, FORMAT, FORMAT_VERSION, KEY_BYTES,
                                     NONCE_BYTES, TAG_BYTES)
from labkit.weights.errors import FormatError


def fail(msg: str):
    """Raise :class:`FormatError` (a function, so that checks read as one line each)."""
    raise FormatError(msg)


def hex_field(value, n: int | None, what: str) -> bytes:
    """``value`` decoded from hex, which must be ``n`` bytes long."""
    if not isinstance(value, str) or (n is not None and len(value) != 2 * n):
        fail(f"{what} must be {n} bytes of hex")
    try:
        out = bytes.fromhex(value)
    except ValueError:
        fail(f"{what} is not hex")
    if n is not None and len(out) != n:  # fromhex skips spaces
        fail(f"{what} must be {n} bytes of hex")
    return out


def int_field(value, what: str, lo: int = 0, hi: int = 2**63 - 1) -> int:
    """``value``, which must be an integer (not a bool) in ``[lo, hi]``."""
    if type(value) is not int or not lo <= value <= hi:
        fail(f"{what} must be an integer in [{lo}, {hi}]")
    return value


def text_field(value, what: str, *, empty: bool = False) -> str:
    """``value``, which must be a string that UTF-8 can encode (no lone surrogates)."""
    if not isinstance(value, str) or (not empty and not value):
        fail(f"{what} must be a {'' if empty else 'non-empty '}string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        fail(f"{what} is not valid Unicode text")
    return value


# What a JSON value costs in Python memory, at most, against the characters it needs: a list
# or object ("[]", "{}") 56-250 bytes for 2 characters, an integer over 256 36 bytes for 4
# ("257,"; smaller ones are shared, 8 bytes for 2), a string 50 bytes for 2. Python's json has
# no hook for lists and strings, so their number is bounded from the text before parsing (a
# valid manifest has one object per tensor or recipient, each over 100 characters, three lists
# per tensor and few short strings); integers are counted as they are parsed (a tensor has at
# most 9 over 256: two offsets and 7 dimensions, as their product is below 2**62) and floats,
# NaN and integers of over 19 digits refused at once.
_CHARS_PER_CONTAINER = 32
_CHARS_PER_QUOTE = 3
_CHARS_PER_NUMBER = 6
_CHARS_PER_LARGE_NUMBER = 12


def bounded_json(text: str, what: str):
    """``json.loads(text)`` for a header part whose memory stays within a few times
    ``len(text)``: FormatError (before or early during parsing) for a text with more lists,
    objects, strings or numbers than a genuine header of its size, for floats, constants,
    integers over 19 digits and duplicate keys."""
    n = len(text)
    containers = text.count("[") + text.count("{")
    if containers > n // _CHARS_PER_CONTAINER + 8:
        fail(f"{what}: {containers} JSON lists and objects are too many for {n} characters")
    if text.count('"') > n // _CHARS_PER_QUOTE + 8:
        fail(f"{what}: too many JSON strings for {n} characters")
    numbers = large = 0

    def parse_int(token: str) -> int:
        nonlocal numbers, large
        numbers += 1
        large += len(token) > 2
        if numbers > n // _CHARS_PER_NUMBER + 8 or large > n // _CHARS_PER_LARGE_NUMBER + 8:
            fail(f"{what}: too many numbers for {n} characters")
        if len(token.lstrip("-")) > 19:
            fail(f"{what}: integer of {len(token)} digits (at most 19)")
        return int(token)

    def refuse(token: str):
        fail(f"{what}: {token[:20]!r} is not allowed (integers only)")

    def pairs(items: list) -> dict:
        out = dict(items)
        if len(out) != len(items):
            fail(f"{what}: duplicate key in a JSON object")
        return out

    try:
        return json.loads(text, parse_int=parse_int, parse_float=refuse, parse_constant=refuse,
                          object_pairs_hook=pairs)
    except (json.JSONDecodeError, RecursionError) as err:
        fail(f"{what} is not valid JSON: {str(err)[:200]}")


def check_manifest(m) -> None:
    """Schema check of a manifest; raises FormatError naming the first problem."""
    if not isinstance(m, dict):
        fail("manifest must be a JSON object")
    keys = {"format", "format_version", "model_id", "version", "aead", "chunk_size", "signer",
            "recipients", "tensors", "metadata"}
    if set(m) != keys:
        fail(f"manifest keys must be {sorted(keys)}, got {sorted(m)}")
    if m["format"] != FORMAT:
        fail(f"not a {FORMAT} container")
    if type(m["format_version"]) is not int or m["format_version"] != FORMAT_VERSION:
        fail(f"unknown format version {m['format_version']!r} (this code reads {FORMAT_VERSION})")
    text_field(m["model_id"], "model_id")
    int_field(m["version"], "version")
    if m["aead"] != AEAD_NAME:
        fail(f"unsupported AEAD {m['aead']!r}")
    int_field(m["chunk_size"], "chunk_size", 16, 1 << 30)
    hex_field(m["signer"], 32, "signer")
    if not isinstance(m["metadata"], dict):
        fail("metadata must map strings to strings")
    for key, value in m["metadata"].items():
        text_field(key, "a metadata key", empty=True)
        text_field(value, f"metadata {key!r}", empty=True)
    _check_recipients(m["recipients"])
    _check_tensors(m["tensors"], m["chunk_size"])


def _check_recipients(recipients) -> None:
    if not isinstance(recipients, list):
        fail("recipients must be a list")
    kids = set()
    for r in recipients:
        if not isinstance(r, dict) or not isinstance(r.get("type"), str) \
                or r["type"] not in ("hpke", "licence"):
            fail("each recipient must be an object with type 'hpke' or 'licence'")
        want = {"type", "kid", "ct"} | ({"enc", "pk"} if r["type"] == "hpke"
                                        else {"salt", "nonce"})
        if set(r) != want:
            fail(f"{r['type']} recipient keys must be {sorted(want)}")
        hex_field(r["kid"], 8, "recipient kid")
        if r["kid"] in kids:
            fail("duplicate recipient kid")
        kids.add(r["kid"])
        hex_field(r["ct"], KEY_BYTES + TAG_BYTES, "wrapped content key")
        if r["type"] == "hpke":
            hex_field(r["enc"], 32, "HPKE enc")
            hex_field(r["pk"], 32, "recipient public key")
        else:
            hex_field(r["salt"], 16, "licence salt")
            hex_field(r["nonce"], NONCE_BYTES, "licence nonce")


def _check_tensors(tensors, chunk_size: int) -> None:
    if not isinstance(tensors, list):
        fail("tensors must be a list")
    end, names = 0, set()
    for t in tensors:
        if not isinstance(t, dict):
            fail("each tensor must be an object")
        name = text_field(t.get("name"), "a tensor name")
        if name == "__metadata__" or name in names:
            fail(f"invalid or duplicate tensor name {name!r}")
        names.add(name)
        common = {"name", "dtype", "shape", "offsets", "encrypted"}
        extra = {"wrapped_dek", "nonce_base", "tags"} if t.get("encrypted") is True else {"sha256"}
        if type(t.get("encrypted")) is not bool or set(t) != common | extra:
            fail(f"tensor {name!r} keys must be {sorted(common | extra)}")
        if not isinstance(t["dtype"], str) or t["dtype"] not in DTYPES:
            fail(f"tensor {name!r} has unknown dtype {t['dtype']!r}")
        if not isinstance(t["shape"], list) or len(t["shape"]) > 64:
            fail(f"tensor {name!r} shape must be a list of at most 64 sizes")
        for d in t["shape"]:
            int_field(d, f"tensor {name!r} shape entry", 0, 2**48)
        itemsize = DTYPES[t["dtype"]].itemsize
        if math.prod(max(d, 1) for d in t["shape"]) * itemsize >= 2**62:  # torch's strides
            fail(f"tensor {name!r} shape {t['shape']} is too large for a tensor")
        nbytes = math.prod(t["shape"]) * itemsize
        offs = t["offsets"]
        if not isinstance(offs, list) or len(offs) != 2:
            fail(f"tensor {name!r} offsets must be [begin, end]")
        b, e = (int_field(o, f"tensor {name!r} offset") for o in offs)
        if b != end or e - b != nbytes:
            fail(f"tensor {name!r} offsets {offs} do not follow the previous tensor or match "
                 f"its {nbytes} bytes")
        end = e
        if t["encrypted"]:
            hex_field(t["wrapped_dek"], NONCE_BYTES + KEY_BYTES + TAG_BYTES,
                      f"{name!r} wrapped DEK")
            hex_field(t["nonce_base"], NONCE_BYTES, f"{name!r} nonce base")
            n_chunks = max(1, -(-nbytes // chunk_size))
            if not isinstance(t["tags"], list) or len(t["tags"]) != n_chunks:
                fail(f"tensor {name!r} needs {n_chunks} tags")
            for tag in t["tags"]:
                hex_field(tag, TAG_BYTES, f"{name!r} tag")
        else:
            hex_field(t["sha256"], 32, f"{name!r} digest")
