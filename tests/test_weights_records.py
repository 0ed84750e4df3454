"""The manifest is read once into frozen typed records (bytes fields, hex decoded once), seal
builds and signs its header once, and only the canonical spelling of a manifest is accepted,
even when the publisher's key and the content key sign the other spellings."""
from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from labkit import weights as W
from labkit.weights import format as fmt
from labkit.weights import schema


@pytest.fixture(scope="module")
def parties():
    return {"device": W.generate_recipient_keypair(), "publisher": W.generate_signing_keypair()}


@pytest.fixture()
def sealed(tmp_path, parties):
    path = tmp_path / "m.lkw"
    state = {"w": torch.randn(300, 7), "b": torch.arange(5), "empty": torch.empty(0, 3)}
    W.seal(state, path, [parties["device"].public_key], signing_key=parties["publisher"],
           encrypt=["w", "empty"], model_id="model \"q\" \u00e9", version=2, chunk_size=1024,
           metadata={"arch": "mlp", "note": "a/b\\c"})
    return path, state


def test_records_are_frozen_typed_and_match_the_json_view(sealed):
    path, state = sealed
    header = W.read_header(path)
    m = header.parsed
    assert isinstance(m, schema.Manifest) and [t.name for t in m.tensors] == list(state)
    w = m.tensors[0]
    assert isinstance(w, schema.TensorRecord) and w.encrypted
    assert isinstance(w.nonce_base, bytes) and len(w.nonce_base) == 12
    assert isinstance(w.wrapped_dek, bytes) and len(w.wrapped_dek) == 60
    assert all(isinstance(tag, bytes) and len(tag) == 16 for tag in w.tags)
    assert len(w.tags) == -(-300 * 7 * 4 // 1024) and w.shape == (300, 7)
    assert m.tensors[1].sha256 and not m.tensors[1].encrypted
    with pytest.raises(dataclasses.FrozenInstanceError):
        w.nonce_base = bytes(12)
    with pytest.raises(TypeError):
        m.metadata["arch"] = "cnn"  # read-only mapping
    # the JSON view is the signed text, decoded
    assert header.manifest == fmt.decode_manifest(header.manifest_bytes)
    assert fmt.encode_manifest(header.manifest) == header.manifest_bytes
    assert header.tensors["w"]["nonce_base"] == w.nonce_base.hex()


def test_open_parses_the_manifest_once_and_seal_signs_once(sealed, parties, monkeypatch,
                                                          tmp_path):
    path, state = sealed
    calls = {"parse": 0, "sign": 0, "mac": 0}

    def counting(name, fn):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(fmt, "parse_manifest", counting("parse", fmt.parse_manifest))
    monkeypatch.setattr(fmt, "header_signature", counting("sign", fmt.header_signature))
    monkeypatch.setattr(fmt, "header_mac", counting("mac", fmt.header_mac))
    out = W.open(path, parties["device"].private_key, signer=parties["publisher"].public_key,
                 model_id="model \"q\" \u00e9", min_version=2)
    assert all(torch.equal(out[n], t) for n, t in state.items())
    assert calls["parse"] == 1 and calls["sign"] == 0
    calls.update(parse=0, mac=0)
    W.seal(state, tmp_path / "again.lkw", [parties["device"].public_key],
           signing_key=parties["publisher"], chunk_size=1024)
    assert calls["sign"] == 1 and calls["mac"] == 1 and calls["parse"] == 0


def resign_text(path, parties, edit):
    """Replace the manifest text by ``edit(text)``, MAC'd under the real content key and signed
    by the real publisher: only the reader's own checks stand in the way."""
    header = W.read_header(path)
    ck = W.unwrap_content_key(path, parties["device"].private_key, signer=parties["publisher"])
    text = edit(header.manifest_bytes.decode())
    mbytes = text.encode()
    mac = fmt.header_mac(mbytes, ck, header.model_id)
    sig = fmt.header_signature(mbytes, mac, parties["publisher"])
    body = path.read_bytes()[header.data_start:]
    path.write_bytes(fmt.frame_header(mbytes, header.table, mac=mac, signature=sig) + body)


def _upper_tag(text):
    tag = json.loads(text)["tensors"][0]["tags"][0]
    return text.replace(tag, tag.upper(), 1)


@pytest.mark.parametrize("edit", [
    _upper_tag,
    lambda t: t.replace(",", ", ", 1),
    lambda t: t.replace('"version":2', '"version":02'),
    lambda t: t.replace('"version":2', '"version":2.0'),
    lambda t: t.replace('"version":2', '"version":2e0'),
    lambda t: t.replace("a/b", "a\\/b"),
    lambda t: t.replace('"arch":"mlp"', '"arch":"\\u006dlp"'),
    lambda t: t.replace('"arch":"mlp","note"', '"note":"x","arch":"mlp","note"'),
    lambda t: json.dumps(json.loads(t), separators=(",", ":")),  # keys unsorted? (same order)
    lambda t: json.dumps(json.loads(t), sort_keys=True, separators=(",", ":"),
                         ensure_ascii=False),
    lambda t: t + " ",
], ids=["uppercase hex", "space", "leading zero", "float", "exponent", "escaped slash",
        "escaped letter", "duplicate key", "json.dumps unsorted", "not ASCII", "trailing"])
def test_only_the_canonical_spelling_is_accepted(sealed, parties, edit):
    path, _ = sealed
    original = W.read_header(path).manifest_bytes.decode()
    edited = edit(original)
    resign_text(path, parties, edit)
    if edited == original:  # json.dumps kept the canonical order: the file must still open
        W.open(path, parties["device"].private_key, signer=parties["publisher"].public_key)
        return
    with pytest.raises(W.FormatError):
        W.open(path, parties["device"].private_key, signer=parties["publisher"].public_key)


@pytest.mark.parametrize("madvise", ["missing", "failing", "real"])
def test_open_without_madvise_populate_gives_the_same_tensors(tmp_path, parties, monkeypatch,
                                                               madvise):
    """Faulting pages in ahead (MADV_POPULATE_WRITE, Linux 5.14+) is only a speed-up: where it
    is missing or fails, the copy faults them in and open returns the same tensors."""
    from labkit.weights import fileio

    state = {"big": torch.randn(3 << 18), "plain": torch.randn(1 << 18), "odd": torch.randn(7)}
    path = tmp_path / "big.lkw"
    W.seal(state, path, [parties["device"].public_key], signing_key=parties["publisher"],
           encrypt=["big", "odd"], chunk_size=1 << 20)
    if madvise == "missing":
        monkeypatch.setattr(fileio, "_madvise", None)
    elif madvise == "failing":
        monkeypatch.setattr(fileio, "_madvise", lambda *args: -1)
    out = W.open(path, parties["device"].private_key, signer=parties["publisher"].public_key,
                 workers=2)
    assert all(torch.equal(out[n], t) for n, t in state.items())
    arena = fileio.alloc(5 << 20)
    assert len(arena.buf) == (5 << 20) + fileio.SLACK
    arena.populate(4097, 3 << 20)  # any range, page-aligned or not
    memoryview(arena.buf)[4097:8000] = bytes(3903)
