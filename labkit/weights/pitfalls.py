"""What goes wrong when weight encryption is done carelessly: runnable counter-examples.

Nothing here is used by the container; each function shows one mistake that
the container (:mod:`labkit.weights.container`) is built to avoid. Chapter 04 shows the full nonce-reuse attack
on GCM (recovering the authentication key H and forging tags); here we only need its first
half, the keystream XOR.

The container's manifest is read in one place, :mod:`labkit.weights.schema`, into typed records,
and the readers here use those records. The JSON read here with :func:`json.loads` belongs to
other formats: a CryptoTensors file's safetensors table, and the header of the UNSAFE sealer
below (which parses its own header as many designs do; its flaw is elsewhere).
"""
from __future__ import annotations

import base64
import json
import struct
from pathlib import Path

import torch
from Crypto.Cipher import AES
from Crypto.Protocol import HPKE
from Crypto.PublicKey import ECC
from Crypto.Random import get_random_bytes
from Crypto.Signature import eddsa

from labkit import ed25519
from labkit.bits import xor_bytes
from labkit.weights import aead, fileio
from labkit.weights.container import as_tensor
from labkit.weights.encoding import DTYPES, canonical_json, chunk_aad, chunk_nonce, chunk_spans
from labkit.weights.errors import FormatError, IntegrityError
from labkit.weights.format import read_header
from labkit.weights.keys import signing_key as as_signing_key
from labkit.weights.keys import unwrap_content_key_for, signer_public_bytes, x25519_private, x25519_public
from labkit.weights.schema import TensorRecord

__all__ = ["nonce_reuse_leak", "nonce_reuse_challenge", "naive_open", "immutable_key_copies",
           "cryptotensors_plaintext_gap", "seal_without_associated_data_UNSAFE",
           "open_without_associated_data_UNSAFE", "unsafe_layout"]


def _raw(tensor: torch.Tensor) -> bytes:
    return tensor.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def nonce_reuse_leak(known: torch.Tensor, secret: torch.Tensor) -> torch.Tensor:
    """Encrypt two same-sized tensors under one key *and one nonce* (the mistake), then recover
    ``secret`` from the two ciphertexts and ``known`` alone, without the key.

    GCM is CTR mode underneath: both ciphertexts are plaintext XOR the same keystream, so
    ``c1 XOR c2 XOR known = secret``. A public base model and its fine-tuned version, or two
    layers of the same shape, are exactly such pairs.
    """
    if known.shape != secret.shape or known.dtype != secret.dtype:
        raise ValueError("known and secret must have the same shape and dtype")
    key, nonce = get_random_bytes(32), get_random_bytes(12)
    c1 = AES.new(key, AES.MODE_GCM, nonce=nonce).encrypt(_raw(known))
    c2 = AES.new(key, AES.MODE_GCM, nonce=nonce).encrypt(_raw(secret))
    recovered = xor_bytes(xor_bytes(c1, c2), _raw(known))  # the attacker's work: no key used
    out = torch.frombuffer(bytearray(recovered), dtype=torch.uint8)
    return out.view(secret.dtype).reshape(secret.shape)


def nonce_reuse_challenge(seed: int = 0, secret: torch.Tensor | None = None):
    """A puzzle: ``(known, c1, c2)`` where ``c1``/``c2`` encrypt ``known`` and a secret float32
    tensor (4, 4) under one key and nonce. The secret is ``secret`` if given (exercise 09.3 passes
    a fresh one), else :func:`challenge_secret`."""
    known = torch.randn(4, 4, generator=torch.Generator().manual_seed(seed))
    if secret is None:
        secret = challenge_secret(seed)
    elif secret.shape != known.shape or secret.dtype != known.dtype:
        raise ValueError(f"secret must be a float32 tensor of shape (4, 4), got {secret.dtype} {tuple(secret.shape)}")
    key, nonce = get_random_bytes(32), get_random_bytes(12)
    c1 = AES.new(key, AES.MODE_GCM, nonce=nonce).encrypt(_raw(known))
    c2 = AES.new(key, AES.MODE_GCM, nonce=nonce).encrypt(_raw(secret))
    return known, c1, c2


def challenge_secret(seed: int = 0) -> torch.Tensor:
    """The secret tensor hidden in :func:`nonce_reuse_challenge` (for checking answers)."""
    return torch.randn(4, 4, generator=torch.Generator().manual_seed(seed + 1000))


def naive_open(path, private_key) -> dict[str, torch.Tensor]:
    """A loader that skips tensors that fail to verify instead of refusing the file (DON'T).

    It returns whatever authenticates; with ``load_state_dict(strict=False)`` the model then
    runs with stale or random values in place of the missing tensor: a "partially failing"
    model that loads without complaint. :func:`labkit.weights.open` refuses the whole file.
    It reads the header's typed records as ``open`` does (the format is read in one place,
    :mod:`labkit.weights.schema`; reading it is not the mistake shown here) and, so that this
    one mistake stays in view, checks nothing else of the header: no signature, no MAC.
    """
    header = read_header(path)
    m = header.parsed
    content_key = unwrap_content_key_for(m.recipients, m.model_id, private_key)
    data = memoryview(Path(path).read_bytes())[header.data_start :]
    out = {}
    for t in m.tensors:
        if not t.encrypted:
            continue
        try:
            dek = aead.unwrap_dek(content_key, t.wrapped_dek, m.model_id, t.name)
        except IntegrityError:
            continue
        spans = chunk_spans(t.nbytes, m.chunk_size)
        plain = bytearray(t.nbytes + fileio.SLACK)
        ok = all(aead.PycryptodomeGCM.decrypt_into(
            dek, chunk_nonce(t.nonce_base, i),
            chunk_aad(m.model_id, t.name, t.dtype, t.shape, i, len(spans)),
            data[t.begin + s : t.begin + e], memoryview(plain)[s:], t.tags[i])
            for i, (s, e) in enumerate(spans))
        if ok:
            out[t.name] = as_tensor((plain, 0), t)
    return out


def immutable_key_copies() -> dict[str, bool]:
    """Why "wipe the key after use" is only best effort in Python.

    Returns what survives after :func:`labkit.weights.zeroise` on our own key buffer: the
    ``bytes`` copy every crypto call needs (immutable: it cannot be wiped) and the key's hex
    text. Neither is reachable for zeroing; both stay in memory until the allocator reuses it.
    """
    key = bytearray(get_random_bytes(32))
    as_bytes = bytes(key)  # what AES.new, HKDF, HPKE all receive
    as_hex = key.hex()     # what a log line or a JSON file would hold
    AES.new(as_bytes, AES.MODE_GCM, nonce=bytes(12))  # the C key schedule: another copy
    fileio.zeroise(key)
    try:
        fileio.zeroise(as_bytes)
        wiped_bytes = True
    except TypeError:
        wiped_bytes = False
    return {
        "our bytearray is zero": not any(key),
        "bytes copy could be wiped": wiped_bytes,
        "bytes copy still holds the key": any(as_bytes),
        "hex text still holds the key": as_hex != "00" * 32,
    }


def cryptotensors_plaintext_gap(directory) -> dict | None:
    """Tamper with a plaintext tensor of a real CryptoTensors file (package ``cryptotensors``,
    a dev dependency) and load it: returns what the loader gave back, or None if not installed.

    CryptoTensors signs its header, but the bytes of tensors left in plaintext are covered by
    neither a tag nor a digest, so the change goes through silently (the gap DESIGN.md names).
    """
    try:  # an optional (dev) dependency: imported here so that the lab runs without it
        import cryptotensors
        from cryptotensors.torch import save_file
    except ImportError:
        return None
    b64 = lambda x: base64.b64encode(x).decode()  # noqa: E731
    signer = ECC.generate(curve="Ed25519")
    enc = {"kty": "oct", "k": b64(get_random_bytes(32)), "alg": "aes256gcm", "kid": "enc"}
    sig = {"kty": "OKP", "crv": "Ed25519", "d": b64(signer.seed),
           "x": b64(signer.public_key().export_key(format="raw")), "kid": "sig"}
    state = {"secret": torch.randn(100), "bias": torch.ones(10)}
    path = Path(directory) / "cryptotensors.safetensors"
    save_file(state, str(path), config={"enc_key": enc, "sign_key": sig, "tensors": ["secret"]})
    data = bytearray(path.read_bytes())
    n = struct.unpack("<Q", data[:8])[0]
    a, e = json.loads(data[8 : 8 + n])["bias"]["data_offsets"]
    data[8 + n + a : 8 + n + e] = torch.full((10,), -5.0).numpy().tobytes()
    path.write_bytes(data)
    with cryptotensors.safe_open(str(path), framework="pt",
                                 config={"enc_key": enc, "sign_key": sig}) as f:
        loaded = {k: f.get_tensor(k) for k in f.keys()}
    return {"tampered bias accepted": bool(torch.equal(loaded["bias"], torch.full((10,), -5.0))),
            "secret decrypted": bool(torch.equal(loaded["secret"], state["secret"]))}


# -- a sealer whose records are not bound to their place (chapter 10's break task) ---------------
UNSAFE_MAGIC = b"UNSAFE-no-AAD/1\x00"


def seal_without_associated_data_UNSAFE(tensors, device_public_key, signing_key, *, model_id: str,
                                        version: int = 1) -> bytes:
    """UNSAFE: seal ``tensors`` as many designs do: one file key delivered with HPKE (RFC 9180),
    each tensor AES-256-GCM encrypted under it with a random nonce and **empty associated data**,
    and an Ed25519 signature over a header listing names, dtypes and shapes.

    Layout: magic, 4-byte big-endian header length, header (canonical JSON), 64-byte signature,
    then one record ``nonce (12) || ciphertext || tag (16)`` per tensor, in header order. The
    signature covers the header but not the records, and nothing ties a record to its name: two
    same-shaped records can be exchanged and every tag still verifies.
    """
    if not isinstance(model_id, str) or not model_id:
        raise ValueError("model_id must be a non-empty string")
    if type(version) is not int or version < 0:
        raise ValueError(f"version must be a non-negative integer, got {version!r}")
    file_key = get_random_bytes(32)
    sender = HPKE.new(receiver_key=x25519_public(device_public_key), aead_id=HPKE.AEAD.AES256_GCM)
    entries, records = [], []
    for name, tensor in dict(tensors).items():
        t = tensor.detach().cpu().contiguous()
        entries.append({"name": name, "dtype": str(t.dtype).removeprefix("torch."), "shape": list(t.shape)})
        nonce = get_random_bytes(12)
        ct, tag = AES.new(file_key, AES.MODE_GCM, nonce=nonce).encrypt_and_digest(_raw(t))
        records.append(nonce + ct + tag)  # no cipher.update(...): the record says nothing of its place
    header = canonical_json({"format": "UNSAFE-no-AAD", "model_id": model_id, "version": version,
                             "enc": sender.enc.hex(), "wrapped_key": sender.seal(file_key).hex(),
                             "tensors": entries})
    signature = eddsa.new(as_signing_key(signing_key), "rfc8032").sign(UNSAFE_MAGIC + header)
    return UNSAFE_MAGIC + len(header).to_bytes(4, "big") + header + signature + b"".join(records)


def unsafe_layout(blob: bytes) -> tuple[dict, dict[str, tuple[int, int]]]:
    """The header of a :func:`seal_without_associated_data_UNSAFE` file and each tensor's record
    span ``(begin, end)`` in ``blob`` (public information: anyone holding the file can compute it)."""
    blob = bytes(blob)
    if not blob.startswith(UNSAFE_MAGIC) or len(blob) < len(UNSAFE_MAGIC) + 4:
        raise FormatError("not an UNSAFE-no-AAD file")
    start = len(UNSAFE_MAGIC) + 4
    size = int.from_bytes(blob[len(UNSAFE_MAGIC):start], "big")
    try:
        header = json.loads(blob[start:start + size])
        if not isinstance(header, dict) or {"model_id", "version", "enc", "wrapped_key"} - set(header):
            raise ValueError("header fields missing")
        if type(header["version"]) is not int or not isinstance(header["model_id"], str):
            raise ValueError("version must be an int and model_id a string")
        spans, offset = {}, start + size + 64
        for entry in header["tensors"]:
            nbytes = DTYPES[entry["dtype"]].itemsize * int(torch.Size(entry["shape"]).numel())
            spans[entry["name"]] = (offset, offset + 12 + nbytes + 16)
            offset += 12 + nbytes + 16
    except (ValueError, KeyError, TypeError) as err:
        raise FormatError(f"malformed UNSAFE-no-AAD header: {err}") from None
    if offset != len(blob):
        raise FormatError(f"file is {len(blob)} bytes, its header describes {offset}")
    return header, spans


def open_without_associated_data_UNSAFE(blob: bytes, device_private_key, signer, *, model_id: str,
                                        min_version: int = 0) -> dict[str, torch.Tensor]:
    """UNSAFE: the loader of :func:`seal_without_associated_data_UNSAFE`. It checks everything it
    knows of (signature, model id, version, every tag, all or nothing) and is still fooled: a
    record moved to another tensor of the same shape decrypts and verifies, because its tag never
    covered where it belongs. :class:`IntegrityError` on any failure it can see."""
    blob = bytes(blob)
    header, spans = unsafe_layout(blob)
    start = len(UNSAFE_MAGIC) + 4
    header_bytes = blob[start:start + int.from_bytes(blob[len(UNSAFE_MAGIC):start], "big")]
    signature = blob[start + len(header_bytes):start + len(header_bytes) + 64]
    try:
        verify = ed25519.verifier(signer_public_bytes(signer))  # strict (labkit.ed25519)
    except ValueError:  # a key strict verification refuses verifies nothing
        raise IntegrityError("header signature does not verify") from None
    if not verify(UNSAFE_MAGIC + header_bytes, signature):
        raise IntegrityError("header signature does not verify")
    if header["model_id"] != model_id:
        raise IntegrityError(f"file holds model {header['model_id']!r}, expected {model_id!r}")
    if header["version"] < min_version:
        raise IntegrityError(f"version {header['version']} is older than {min_version}")
    try:
        receiver = HPKE.new(receiver_key=x25519_private(device_private_key),
                            aead_id=HPKE.AEAD.AES256_GCM, enc=bytes.fromhex(header["enc"]))
        file_key = receiver.unseal(bytes.fromhex(header["wrapped_key"]))
    except ValueError:
        raise IntegrityError("the file key does not unwrap with this device key") from None
    out = {}
    for entry in header["tensors"]:
        a, b = spans[entry["name"]]
        record = blob[a:b]
        try:
            plain = AES.new(file_key, AES.MODE_GCM, nonce=record[:12]).decrypt_and_verify(
                record[12:-16], record[-16:])
        except ValueError:
            raise IntegrityError(f"record of {entry['name']!r} fails authentication") from None
        # its bytes as a plaintext tensor record of the container's format, at [0, len)
        record = TensorRecord(entry["name"], entry["dtype"], tuple(entry["shape"]), 0,
                              len(plain), False)
        out[entry["name"]] = as_tensor((bytearray(plain), 0), record)
    return out
