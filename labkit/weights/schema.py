"""The manifest: its typed records and the one reader that builds them from the signed text.

The manifest is canonical JSON (sorted keys, no spaces, ASCII; RFC 8259 syntax) of one fixed
shape: an object of ten keys, whose ``metadata`` maps strings to strings, ``recipients`` is a
list of flat objects and ``tensors`` a list of objects holding integers, strings, one boolean
and lists of integers or of hex strings. :func:`parse_manifest` reads exactly that shape, in one
pass, and refuses anything else at the first character that cannot belong to it, before any
Python object is built for what follows: a deeper nesting, an unknown or misordered key, a float,
a string where a number belongs. Every value is checked as it is read (types, ranges, sizes,
offsets, canonical spelling) and hex is decoded once, into the ``bytes`` fields of the frozen
records :class:`Manifest`, :class:`TensorRecord`, :class:`HpkeRecipient` and
:class:`LicenceRecipient`; each record's ``as_json()`` gives back the JSON values (hex strings)
from which the canonical writer rebuilds exactly the signed bytes.

Memory: the reader keeps only the records, so what a header costs before anything is
authenticated is bounded per character read: a 16-byte tag costs a 49-byte ``bytes`` and an
8-byte slot for its 35 characters, a recipient of 225 or 290 characters a slotted record and
four ``bytes`` (280 or 316 bytes), a shape entry at most a 32-byte integer and a slot for 5,
and the only map of caller-chosen keys (``metadata``) is capped at :data:`MAX_METADATA` entries.
``tests/test_weights_header_memory.py`` measures the bound over generated JSON of every shape.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields
from json.decoder import scanstring
from json.encoder import encode_basestring_ascii
from types import MappingProxyType
from typing import ClassVar, Mapping

from labkit.weights.encoding import (AEAD_NAME, DTYPES, FORMAT, FORMAT_VERSION, KEY_BYTES,
                                     NONCE_BYTES, TAG_BYTES)
from labkit.weights.errors import FormatError

__all__ = ["Manifest", "TensorRecord", "HpkeRecipient", "LicenceRecipient", "RecipientRecord",
           "parse_manifest", "MAX_METADATA"]

MAX_METADATA = 256  # metadata entries (free-form strings: each costs ~150 bytes in Python)
MAX_STRING = 64 << 10  # characters of one string's JSON text (a name, an id, a metadata value)
MAX_DIMS = 64
WRAPPED_DEK_BYTES = NONCE_BYTES + KEY_BYTES + TAG_BYTES


def fail(msg: str):
    """Raise :class:`FormatError` (a function, so that checks read as one line each)."""
    raise FormatError(msg)


def int_field(value, what: str, lo: int = 0, hi: int = 2**63 - 1) -> int:
    """``value``, which must be an integer (not a bool) in ``[lo, hi]``."""
    if type(value) is not int or not lo <= value <= hi:
        fail(f"{what} must be an integer in [{lo}, {hi}]")
    return value


@dataclass(frozen=True, slots=True)
class TensorRecord:
    """One tensor of a manifest, typed: offsets relative to the data region, and either the
    encryption fields (wrapped DEK, nonce base, one GCM tag per chunk) or a SHA-256 digest."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int
    encrypted: bool
    wrapped_dek: bytes = b""
    nonce_base: bytes = b""
    tags: tuple[bytes, ...] = ()
    sha256: bytes = b""

    @property
    def nbytes(self) -> int:
        return self.end - self.begin

    def as_json(self) -> dict:
        """The manifest entry as JSON values (hex strings), without the name."""
        out = {"dtype": self.dtype, "shape": list(self.shape),
               "offsets": [self.begin, self.end], "encrypted": self.encrypted}
        if self.encrypted:
            out.update(wrapped_dek=self.wrapped_dek.hex(), nonce_base=self.nonce_base.hex(),
                       tags=[t.hex() for t in self.tags])
        else:
            out["sha256"] = self.sha256.hex()
        return out


RECIPIENT_FIELD_BYTES = {"ct": KEY_BYTES + TAG_BYTES, "enc": 32, "kid": 8, "pk": 32,
                         "nonce": NONCE_BYTES, "salt": 16}


class _Recipient:
    """What both recipient records share: exact ``bytes`` fields of fixed sizes, checked when a
    record is made (so :meth:`as_json` always writes what :func:`parse_manifest` reads back),
    and their JSON entry."""

    __slots__ = ()
    type: ClassVar[str]

    def __post_init__(self):
        for name in (f.name for f in fields(self)):
            value, size = getattr(self, name), RECIPIENT_FIELD_BYTES[name]
            if type(value) is not bytes:
                raise TypeError(f"recipient {name} must be bytes, got {type(value).__name__}")
            if len(value) != size:
                raise ValueError(f"recipient {name} must be {size} bytes, got {len(value)}")

    def as_json(self) -> dict:
        """The manifest entry as JSON values: each field in lowercase hex, and ``type``."""
        out = {name: getattr(self, name).hex() for name in sorted(f.name for f in fields(self))}
        out["type"] = self.type
        return out


@dataclass(frozen=True, slots=True)
class HpkeRecipient(_Recipient):
    """The content key sealed to an X25519 public key with HPKE base mode (RFC 9180): the key
    id ``kid`` (see :func:`~labkit.weights.recipient_id`; its hex is the public id), the
    recipient's public key ``pk``, the encapsulated key ``enc`` and the sealed key ``ct``
    (32-byte key and 16-byte GCM tag)."""

    type: ClassVar[str] = "hpke"
    kid: bytes
    pk: bytes
    enc: bytes
    ct: bytes


@dataclass(frozen=True, slots=True)
class LicenceRecipient(_Recipient):
    """The content key under AES-256-GCM (NIST SP 800-38D) with a key derived by HKDF (RFC 5869)
    from a device licence and ``salt``: the key id ``kid`` (a hash of the derived key), the
    GCM ``nonce`` and ``ct`` (the 32-byte key and its 16-byte tag)."""

    type: ClassVar[str] = "licence"
    kid: bytes
    salt: bytes
    nonce: bytes
    ct: bytes


RecipientRecord = HpkeRecipient | LicenceRecipient


@dataclass(frozen=True, slots=True)
class Manifest:
    """A validated manifest: ids, chunk size, signer, recipients (typed records, in file order),
    tensors in file order, metadata."""

    model_id: str
    version: int
    chunk_size: int
    signer: bytes
    recipients: tuple[RecipientRecord, ...]
    tensors: tuple[TensorRecord, ...]
    metadata: Mapping[str, str]

    @property
    def data_len(self) -> int:
        return self.tensors[-1].end if self.tensors else 0

    def tensor(self, name: str) -> TensorRecord:
        """The record of the tensor ``name`` (KeyError if the manifest has none of that name)."""
        for t in self.tensors:
            if t.name == name:
                return t
        raise KeyError(name)

    def as_json(self) -> dict:
        """The manifest as JSON values, ``tensors`` a mapping name -> entry (file order)."""
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "model_id": self.model_id,
                "version": self.version, "aead": AEAD_NAME, "chunk_size": self.chunk_size,
                "signer": self.signer.hex(), "recipients": [r.as_json() for r in self.recipients],
                "tensors": {t.name: t.as_json() for t in self.tensors},
                "metadata": dict(self.metadata)}


# ---------------------------------------------------------------------------------------------
# the reader
# ---------------------------------------------------------------------------------------------
_INT = re.compile(r"0|[1-9][0-9]{0,18}")
_HEX = {n: re.compile(f'"([0-9a-f]{{{2 * n}}})"') for n in
        (8, 12, 16, 32, KEY_BYTES + TAG_BYTES, WRAPPED_DEK_BYTES)}
_DTYPE_NAMES = {name: name for name in DTYPES}
# each recipient type: its record and its fields in canonical (sorted) order; "type" follows
_RECIPIENT_KEYS = {cls.type: (cls, sorted(f.name for f in fields(cls)))
                   for cls in (HpkeRecipient, LicenceRecipient)}


def _escaped(text: str, quote: int) -> bool:
    """Whether the ``"`` at ``quote`` is escaped (an odd run of backslashes before it)."""
    k = quote
    while text[k - 1] == "\\":
        k -= 1
    return (quote - k) % 2 == 1


class _Reader:
    """A cursor over the manifest text that reads one expected token at a time."""

    def __init__(self, text: str):
        self.text, self.pos = text, 0

    def where(self) -> str:
        return f"at character {self.pos}"

    def expect(self, token: str, what: str) -> None:
        if not self.text.startswith(token, self.pos):
            fail(f"manifest: expected {what} {self.where()} (the format's canonical JSON)")
        self.pos += len(token)

    def peek(self, token: str) -> bool:
        return self.text.startswith(token, self.pos)

    def key(self, name: str) -> None:
        self.expect(f'"{name}":', f'the key "{name}"')

    def string(self, what: str) -> str:
        if not self.peek('"'):
            fail(f"manifest: {what} must be a string {self.where()}")
        close = self.text.find('"', self.pos + 1, self.pos + MAX_STRING)
        while close > 0 and _escaped(self.text, close):
            close = self.text.find('"', close + 1, self.pos + MAX_STRING)
        if close < 0:
            fail(f"manifest: {what} is not a string of at most {MAX_STRING} characters "
                 f"{self.where()}")
        try:
            value, end = scanstring(self.text, self.pos + 1, True)
        except ValueError as err:
            fail(f"manifest: {what} is not a JSON string: {str(err)[:120]}")
        # canonical spelling (what seal writes)
        spelled = encode_basestring_ascii(value)
        if len(spelled) != end - self.pos or not self.text.startswith(spelled, self.pos):
            fail(f"manifest: {what} is not in canonical form (ASCII, json.dumps escapes)")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            fail(f"manifest: {what} is not valid Unicode text")
        self.pos = end
        return value

    def integer(self, what: str, lo: int = 0, hi: int = 2**63 - 1) -> int:
        m = _INT.match(self.text, self.pos)
        if m is None:
            fail(f"manifest: {what} must be a non-negative integer (canonical digits, at most "
                 f"19) {self.where()}")
        self.pos = m.end()
        if self.pos < len(self.text) and self.text[self.pos] in "0123456789.eE":
            fail(f"manifest: {what} must be an integer of at most 19 digits {self.where()}")
        return int_field(int(m.group()), what, lo, hi)

    def boolean(self, what: str) -> bool:
        for token, value in (("true", True), ("false", False)):
            if self.peek(token):
                self.pos += len(token)
                return value
        fail(f"manifest: {what} must be true or false {self.where()}")

    def hex(self, n: int, what: str) -> bytes:  # lowercase, as seal writes it
        m = _HEX[n].match(self.text, self.pos)
        if m is None:
            fail(f"manifest: {what} must be {n} bytes of hex {self.where()}")
        self.pos = m.end()
        return bytes.fromhex(m.group(1))

    def items(self, what: str, read_item) -> None:
        """A JSON list whose items ``read_item()`` reads one by one."""
        self.expect("[", f"{what} (a list)")
        if self.peek("]"):
            self.pos += 1
            return
        while True:
            read_item()
            if self.peek("]"):
                self.pos += 1
                return
            self.expect(",", f"',' or ']' in {what}")


def parse_manifest(text: str) -> Manifest:
    """The typed :class:`Manifest` of a manifest's text; :class:`FormatError` at the first
    character that is not the format's canonical JSON or breaks the schema."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    r = _Reader(text)
    r.expect("{", "the manifest object '{'")
    r.key("aead")
    if r.string("aead") != AEAD_NAME:
        fail("unsupported AEAD (this code reads AES-256-GCM)")
    r.expect(",", "','")
    r.key("chunk_size")
    chunk_size = r.integer("chunk_size", 16, 1 << 30)
    r.expect(",", "','")
    r.key("format")
    if r.string("format") != FORMAT:
        fail(f"not a {FORMAT} container")
    r.expect(",", "','")
    r.key("format_version")
    version_start = r.pos
    if r.integer("format_version") != FORMAT_VERSION:
        fail(f"unknown format version {text[version_start:r.pos]} (this code reads "
             f"{FORMAT_VERSION})")
    r.expect(",", "','")
    r.key("metadata")
    metadata = _metadata(r)
    r.expect(",", "','")
    r.key("model_id")
    model_id = r.string("model_id")
    if not model_id:
        fail("model_id must be a non-empty string")
    r.expect(",", "','")
    r.key("recipients")
    recipients: list = []
    kids: set[bytes] = set()
    r.items("recipients", lambda: recipients.append(_recipient(r, kids)))
    r.expect(",", "','")
    r.key("signer")
    signer = r.hex(32, "signer")
    r.expect(",", "','")
    r.key("tensors")
    tensors: list[TensorRecord] = []
    names: set[str] = set()
    r.items("tensors", lambda: tensors.append(_tensor(r, chunk_size, tensors, names)))
    r.expect(",", "','")
    r.key("version")
    version = r.integer("version")
    r.expect("}", "the end of the manifest '}'")
    if r.pos != len(text):
        fail("manifest: characters after the manifest object")
    return Manifest(model_id, version, chunk_size, signer, tuple(recipients), tuple(tensors),
                    MappingProxyType(metadata))


def _metadata(r: _Reader) -> dict[str, str]:
    out: dict[str, str] = {}
    r.expect("{", "metadata (an object of strings)")
    if r.peek("}"):
        r.pos += 1
        return out
    last = None
    while True:
        key = r.string("a metadata key")
        if last is not None and key <= last:
            fail("manifest: metadata keys must be unique and sorted (canonical JSON)")
        if len(out) >= MAX_METADATA:
            fail(f"manifest: more than {MAX_METADATA} metadata entries")
        r.expect(":", "':'")
        out[key] = r.string(f"metadata {key!r}")
        last = key
        if r.peek("}"):
            r.pos += 1
            return out
        r.expect(",", "',' or '}' in metadata")


def _recipient(r: _Reader, kids: set) -> RecipientRecord:
    r.expect("{", "a recipient object")
    start = r.pos  # both types begin with "ct": the key after it decides
    for kind, (record, keys) in _RECIPIENT_KEYS.items():
        r.pos = start
        r.key("ct")
        ct = r.hex(RECIPIENT_FIELD_BYTES["ct"], "wrapped content key")
        r.expect(",", "','")
        if not r.peek(f'"{keys[1]}":'):
            continue
        values = {"ct": ct}
        for key in keys[1:]:
            r.key(key)
            values[key] = r.hex(RECIPIENT_FIELD_BYTES[key], f"recipient {key}")
            r.expect(",", "','")
        r.key("type")
        if r.string("recipient type") != kind:
            fail(f"a recipient with the keys of type {kind!r} must have that type")
        r.expect("}", "the end of the recipient '}'")
        if values["kid"] in kids:
            fail("duplicate recipient kid")
        kids.add(values["kid"])
        return record(**values)
    fail("each recipient must be an object with type 'hpke' or 'licence' and its keys")


def _tensor(r: _Reader, chunk_size: int, previous: list, names: set) -> TensorRecord:
    r.expect("{", "a tensor object")
    r.key("dtype")
    dtype = _DTYPE_NAMES.get(r.string("a tensor dtype"))  # the shared name object
    if dtype is None:
        fail("tensor has an unknown dtype")
    r.expect(",", "','")
    r.key("encrypted")
    encrypted = r.boolean("encrypted")
    r.expect(",", "','")
    r.key("name")
    name = r.string("a tensor name")
    if not name or name == "__metadata__" or name in names:
        fail(f"invalid or duplicate tensor name {name[:40]!r}")
    names.add(name)
    r.expect(",", "','")
    if encrypted:
        r.key("nonce_base")
        nonce_base = r.hex(NONCE_BYTES, f"{name!r} nonce base")
        r.expect(",", "','")
    r.key("offsets")
    r.expect("[", "offsets [begin, end]")
    begin = r.integer(f"tensor {name!r} offset")
    r.expect(",", "offsets [begin, end]")
    end = r.integer(f"tensor {name!r} offset")
    r.expect("]", "offsets [begin, end]")
    r.expect(",", "','")
    if not encrypted:
        r.key("sha256")
        digest = r.hex(32, f"{name!r} digest")
        r.expect(",", "','")
    r.key("shape")
    shape: list[int] = []

    def dim():
        if len(shape) >= MAX_DIMS:
            fail(f"tensor {name!r} shape must be a list of at most {MAX_DIMS} sizes")
        shape.append(r.integer(f"tensor {name!r} shape entry", 0, 2**48))

    r.items("shape", dim)
    itemsize = DTYPES[dtype].itemsize
    if math.prod(max(d, 1) for d in shape) * itemsize >= 2**62:  # torch's strides
        fail(f"tensor {name!r} shape {shape} is too large for a tensor")
    nbytes = math.prod(shape) * itemsize
    expected_begin = previous[-1].end if previous else 0
    if begin != expected_begin or end - begin != nbytes:
        fail(f"tensor {name!r} offsets [{begin}, {end}] do not follow the previous tensor or "
             f"match its {nbytes} bytes")
    if not encrypted:
        r.expect("}", "the end of the tensor '}'")
        return TensorRecord(name, dtype, tuple(shape), begin, end, False, sha256=digest)
    r.expect(",", "','")
    r.key("tags")
    n_chunks = max(1, -(-nbytes // chunk_size))
    tags: list[bytes] = []

    def tag():
        if len(tags) >= n_chunks:
            fail(f"tensor {name!r} needs {n_chunks} tags")
        tags.append(r.hex(TAG_BYTES, f"{name!r} tag"))

    r.items("tags", tag)
    if len(tags) != n_chunks:
        fail(f"tensor {name!r} needs {n_chunks} tags")
    r.expect(",", "','")
    r.key("wrapped_dek")
    wrapped = r.hex(WRAPPED_DEK_BYTES, f"{name!r} wrapped DEK")
    r.expect("}", "the end of the tensor '}'")
    return TensorRecord(name, dtype, tuple(shape), begin, end, True, wrapped, nonce_base,
                        tuple(tags))
