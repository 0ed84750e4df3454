"""The manifest is read once into frozen typed records (bytes fields, hex decoded once), seal
builds and signs its header once, and only the canonical spelling of a manifest is accepted,
even when the publisher's key and the content key sign the other spellings."""
from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit import weights as W
from labkit.weights import format as fmt
from labkit.weights import schema
from labkit.weights.encoding import canonical_json


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
    assert m.tensor("w") is w and m.tensor("empty") is m.tensors[2]  # by name
    with pytest.raises(KeyError):
        m.tensor("W")
    with pytest.raises(dataclasses.FrozenInstanceError):
        w.nonce_base = bytes(12)
    with pytest.raises(TypeError):
        m.metadata["arch"] = "cnn"  # read-only mapping
    # the JSON view is the signed text, decoded
    assert header.manifest == fmt.decode_manifest(header.manifest_bytes)
    assert fmt.encode_manifest(header.manifest) == header.manifest_bytes
    assert header.manifest["tensors"]["w"]["nonce_base"] == w.nonce_base.hex()


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


# ---------------------------------------------------------------------------------------------
# recipients: typed records (bytes fields), and the signed bytes they give back
# ---------------------------------------------------------------------------------------------
LICENCE = W.DeviceLicence(b"device-7", b"licence-key-0123456789")
HPKE_SIZES = {"kid": 8, "pk": 32, "enc": 32, "ct": 48}
LICENCE_SIZES = {"kid": 8, "salt": 16, "nonce": 12, "ct": 48}


@pytest.fixture()
def two_kinds(tmp_path, parties):
    """A file for an X25519 key (HPKE) and a device licence."""
    path = tmp_path / "r.lkw"
    W.seal({"w": torch.arange(40.0), "b": torch.ones(3)}, path,
           [parties["device"].public_key, LICENCE], signing_key=parties["publisher"],
           encrypt=["w"], model_id="r", chunk_size=64)
    return path


def test_recipients_are_typed_records_that_give_back_the_signed_bytes(two_kinds, parties):
    header = W.read_header(two_kinds)
    hpke, lic = header.parsed.recipients
    assert type(hpke) is schema.HpkeRecipient and type(lic) is schema.LicenceRecipient
    assert (hpke.type, lic.type) == ("hpke", "licence")
    assert hpke.kid.hex() == W.recipient_id(parties["device"].public_key)
    assert hpke.pk == parties["device"].public_key
    for r, sizes in ((hpke, HPKE_SIZES), (lic, LICENCE_SIZES)):
        assert {f.name: len(getattr(r, f.name)) for f in dataclasses.fields(r)} == sizes
        assert all(type(getattr(r, name)) is bytes for name in sizes)
        assert not hasattr(r, "__dict__")  # slotted
        with pytest.raises(dataclasses.FrozenInstanceError):
            r.kid = bytes(8)
        # the record's JSON, written canonically, is its own text in the signed manifest
        assert canonical_json(r.as_json()) in header.manifest_bytes
    # as_json gives the JSON in the file, key for key and in the file's order
    in_file = json.loads(header.manifest_bytes)["recipients"]
    assert [r.as_json() for r in header.parsed.recipients] == in_file
    assert [list(r.as_json()) for r in header.parsed.recipients] == [list(e) for e in in_file]
    # parse -> as_json -> canonical bytes: the signed manifest and the whole header, identical
    assert fmt.encode_manifest(header.parsed.as_json()) == header.manifest_bytes
    assert fmt.serialize_header(header.parsed.as_json(), mac=header.mac,
                                signature=header.signature) == \
        two_kinds.read_bytes()[:header.data_start]
    assert schema.parse_manifest(header.manifest_bytes.decode()) == header.parsed
    # and both recipients open it
    for key in (parties["device"].private_key, LICENCE):
        out = W.open(two_kinds, key, signer=parties["publisher"].public_key, model_id="r")
        assert torch.equal(out["w"], torch.arange(40.0))


def test_add_revoke_rotate_keep_the_records_of_the_others(two_kinds, parties):
    args = dict(private_key=parties["device"].private_key, signing_key=parties["publisher"])
    other = W.generate_recipient_keypair()
    before = W.read_header(two_kinds).parsed.recipients
    (kid,) = W.add_recipients(two_kinds, [other.public_key], **args)
    after = W.read_header(two_kinds).parsed.recipients
    assert after[:2] == before and after[2].kid.hex() == kid and after[2].pk == other.public_key
    W.revoke_recipients(two_kinds, [before[1].kid.hex()], rotate=False, **args)
    assert W.read_header(two_kinds).parsed.recipients == (before[0], after[2])
    with pytest.raises(W.NotARecipientError):
        W.open(two_kinds, LICENCE, signer=parties["publisher"].public_key)
    W.rotate_content_key(two_kinds, **args)
    header = W.read_header(two_kinds)
    rotated = header.parsed.recipients
    assert [r.pk for r in rotated] == [parties["device"].public_key, other.public_key]
    assert [r.kid for r in rotated] == [before[0].kid, after[2].kid]
    assert all(new.ct != old.ct and new.enc != old.enc for new, old in zip(rotated, after[::2]))
    assert fmt.encode_manifest(header.parsed.as_json()) == header.manifest_bytes
    out = W.open(two_kinds, other.private_key, signer=parties["publisher"].public_key,
                 min_version=4)
    assert torch.equal(out["b"], torch.ones(3))


def test_a_recipient_edit_writes_the_bytes_the_json_edit_writes(two_kinds, parties):
    """Revoking without rotation has no randomness (Ed25519 signatures are deterministic): the
    file the records path writes is, byte for byte, the old JSON path's (edit the manifest's
    JSON copy, build the header) followed by the unchanged data: files stay interchangeable."""
    before = W.read_header(two_kinds)
    original = two_kinds.read_bytes()
    ck = W.unwrap_content_key(two_kinds, parties["device"].private_key,
                              signer=parties["publisher"].public_key)
    expected = json.loads(json.dumps(before.manifest))
    expected["recipients"] = expected["recipients"][:1]
    expected["version"] += 1
    W.revoke_recipients(two_kinds, [before.parsed.recipients[1].kid.hex()], rotate=False,
                        private_key=parties["device"].private_key,
                        signing_key=parties["publisher"])
    assert two_kinds.read_bytes() == (fmt.build_header(expected, ck, parties["publisher"])
                                      + original[before.data_start:])


@pytest.mark.parametrize("record,sizes", [(schema.HpkeRecipient, HPKE_SIZES),
                                          (schema.LicenceRecipient, LICENCE_SIZES)])
def test_a_recipient_record_holds_exact_bytes_of_its_sizes(record, sizes):
    good = {name: bytes(n) for name, n in sizes.items()}
    assert record(**good).as_json() == {**{k: v.hex() for k, v in good.items()},
                                        "type": record.type}
    for name, n in sizes.items():
        for bad, err in ((bytes(n - 1), ValueError), (bytes(n + 1), ValueError),
                         (bytearray(n), TypeError), ("00" * n, TypeError)):
            with pytest.raises(err, match=name):
                record(**{**good, name: bad})


def _swap_type(text):
    return text.replace('"type":"licence"', '"type":"hpke"', 1)


def _duplicate_first(text):
    entries = json.loads(text)["recipients"]
    first = canonical_json(entries[0]).decode()
    return text.replace(first, first + "," + first, 1)


def _shared_kid(text):
    hpke, lic = json.loads(text)["recipients"]
    return text.replace(f'"kid":"{lic["kid"]}"', f'"kid":"{hpke["kid"]}"', 1)


def _hpke_field(edit):
    def apply(text):
        pk = json.loads(text)["recipients"][0]["pk"]
        return text.replace(f'"pk":"{pk}"', edit(pk), 1)
    return apply


@pytest.mark.parametrize("edit,message", [
    (_swap_type, "must have that type"),
    (_duplicate_first, "duplicate recipient kid"),
    (_shared_kid, "duplicate recipient kid"),  # a kid names one recipient, whatever its type
    (lambda t: t.replace('"type":"hpke"', '"type":"rsa"', 1), "must have that type"),
    (_hpke_field(lambda pk: f'"pk":"{pk.upper()}"'), "recipient pk"),
    (_hpke_field(lambda pk: f'"pk":"{pk[:-2]}"'), "recipient pk"),
    (_hpke_field(lambda pk: f'"pk":"{pk}00"'), "recipient pk"),
    (_hpke_field(lambda pk: f'"pk":{int(pk[:8], 16)}'), "recipient pk"),
    (_hpke_field(lambda pk: ""), "key \"pk\""),  # missing (and a dangling comma)
    (_hpke_field(lambda pk: f'"pk":"{pk}","pq":"00"'), "key \"type\""),  # an extra key
    (lambda t: t.replace('"salt":', '"sal":', 1), "key \"salt\""),
    (lambda t: t.replace('"enc":', '"enx":', 1), "type 'hpke' or 'licence'"),
], ids=["licence keys typed hpke", "duplicate", "kid shared across types", "unknown type",
        "uppercase hex", "short", "long", "number", "missing key", "extra key", "misspelt key",
        "unknown second key"])
def test_the_reader_refuses_every_malformed_recipient(two_kinds, edit, message):
    """An attacker's manifest text (no key is needed to write one: it is parsed before the
    signature is checked): each malformed recipient is a FormatError at the reader."""
    text = W.read_header(two_kinds).manifest_bytes.decode()
    edited = edit(text)
    assert edited != text
    with pytest.raises(W.FormatError, match=message):
        schema.parse_manifest(edited)


_HPKE = st.builds(schema.HpkeRecipient,
                  **{name: st.binary(min_size=n, max_size=n) for name, n in HPKE_SIZES.items()})
_LICENCE = st.builds(schema.LicenceRecipient, **{name: st.binary(min_size=n, max_size=n)
                                                  for name, n in LICENCE_SIZES.items()})


@pytest.fixture(scope="module")
def base_manifest(tmp_path_factory, parties):
    path = tmp_path_factory.mktemp("records") / "base.lkw"
    W.seal({"w": torch.arange(40.0), "b": torch.ones(3)}, path, [parties["device"].public_key],
           signing_key=parties["publisher"], encrypt=["w"], model_id="r", chunk_size=64)
    return W.read_header(path).parsed.as_json()


@settings(max_examples=60, deadline=None)
@given(recipients=st.lists(st.one_of(_HPKE, _LICENCE), max_size=5, unique_by=lambda r: r.kid))
def test_any_recipient_records_round_trip_through_the_signed_bytes(base_manifest, recipients):
    """Property: records of any bytes -> as_json -> the canonical header -> parse: the same
    records, and the same manifest bytes when written again."""
    manifest = {**base_manifest, "recipients": [r.as_json() for r in recipients]}
    blob = fmt.serialize_header(manifest, mac=bytes(32), signature=bytes(64))
    header = W.parse_header(blob)
    assert header.parsed.recipients == tuple(recipients)
    assert fmt.encode_manifest(header.parsed.as_json()) == header.manifest_bytes
    assert fmt.serialize_header(header.parsed.as_json(), mac=bytes(32),
                                signature=bytes(64)) == blob
