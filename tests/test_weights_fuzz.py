"""Header fuzzing of labkit.weights.open (issue 13): type confusion at every JSON node of the
manifest (re-signed by the publisher and MAC'd under the real content key, so every check after
the signature runs too) and of the safetensors table, truncation at every length, bit flips.
``open`` raises only WeightsError subclasses and never returns partial data."""
from __future__ import annotations

import json

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labkit import weights as W
from labkit.weights import format as fmt

HUGE = "\x00huge integer\x00"  # stands for an integer of 5,000 digits (json.dumps refuses it)
FAST = settings(max_examples=100, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


def state():
    g = torch.Generator().manual_seed(14)
    return {"enc": torch.randn(100, generator=g), "plain": torch.randn(6, generator=g),
            "empty": torch.empty(0, 3), "empty_plain": torch.empty(2, 0, dtype=torch.int8)}


@pytest.fixture(scope="module")
def sealed(tmp_path_factory):
    device, publisher = W.generate_recipient_keypair(), W.generate_signing_keypair()
    path = tmp_path_factory.mktemp("fuzz") / "genuine.lkw"
    W.seal(state(), path, [device.public_key, W.DeviceLicence(b"fp", bytes(16))],
           signing_key=publisher, encrypt=["enc", "empty"], model_id="fuzz", version=5,
           chunk_size=160, metadata={"arch": "mlp"})
    header = W.read_header(path)
    ck = W.unwrap_content_key(path, device.private_key, signer=publisher)
    return {"path": path, "bytes": path.read_bytes(), "header": header, "ck": ck,
            "device": device, "publisher": publisher}


def nodes(value, path=()):
    """Every path into a JSON value (dict keys and list indices), the value's own first."""
    yield path
    if isinstance(value, dict):
        for key, child in value.items():
            yield from nodes(child, path + (key,))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from nodes(child, path + (i,))


def replaced(value, path, new):
    if not path:
        return new
    out = dict(value) if isinstance(value, dict) else list(value)
    out[path[0]] = replaced(value[path[0]], path[1:], new)
    return out


def dumps(value, *, canonical=True) -> str:
    text = json.dumps(value, sort_keys=canonical, separators=(",", ":"))
    return text.replace(json.dumps(HUGE), "9" * 5000)


scalars = (st.integers(-2**70, 2**70) | st.floats() | st.just(HUGE) | st.text(max_size=6)
           | st.none() | st.booleans() | st.sampled_from([0, -1, 2**48, 2**63, "", "00" * 16]))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=4), inner, max_size=3),
                           max_leaves=6)


# one value of every JSON type (and the ones that broke the parser before), for every node
CONFUSIONS = [0, -1, 7, 2**48, 2**63, 1.5, HUGE, "", "x", "00" * 16, None, True, False, [],
              [0, 2**48, 2**48], ["a"], [[[]]], {}, {"a": 1}, {"name": {"x": []}}]


def signed_file(sealed, path, manifest_value) -> None:
    """A file whose manifest is ``manifest_value``, signed by the publisher and MAC'd with the
    real content key (only the format checks stand between it and the decryption)."""
    text = dumps(manifest_value).encode()
    mac = fmt.header_mac(text, sealed["ck"], "fuzz")
    signature = fmt.header_signature(text, mac, sealed["publisher"])
    try:  # the table the edited manifest implies, so that the forgery is consistent
        table = {t["name"]: fmt.table_entry(t) for t in manifest_value["tensors"]}
        json.dumps(table)
    except Exception:  # the edit broke what a table is made of: keep the genuine one
        table = sealed["header"].table
    header = fmt.frame_header(text, table, mac=mac, signature=signature)
    path.write_bytes(header + sealed["bytes"][sealed["header"].data_start:])


def outer_file(sealed, path, outer_value) -> None:
    body = dumps(outer_value, canonical=False).encode()
    path.write_bytes(len(body).to_bytes(8, "little") + body
                     + sealed["bytes"][sealed["header"].data_start:])


def open_checked(sealed, path):
    """open() either raises a WeightsError or returns every tensor the (signed) header lists,
    holding together exactly the genuine bytes (a publisher-signed edit may rename a plaintext
    tensor or reinterpret its dtype; it never yields part of a model or other bytes)."""
    try:
        out = W.open(path, sealed["device"].private_key, signer=sealed["publisher"])
    except W.WeightsError:
        return False
    assert list(out) == [t.name for t in W.read_header(path).parsed.tensors]

    def raw(tensor):
        return bytes(tensor.contiguous().reshape(-1).view(torch.uint8).numpy())

    assert b"".join(map(raw, out.values())) == b"".join(map(raw, state().values()))
    return True


def test_every_type_at_every_manifest_node_signed(sealed, tmp_path):
    manifest = json.loads(sealed["header"].manifest_bytes)
    path = tmp_path / "m.lkw"
    for where in list(nodes(manifest))[1:]:
        for value in CONFUSIONS:
            signed_file(sealed, path, replaced(manifest, where, value))
            open_checked(sealed, path)


def test_every_type_at_every_header_node(sealed, tmp_path):
    """The outer JSON: the safetensors table and __metadata__ (manifest string included)."""
    outer = json.loads(sealed["bytes"][8 : sealed["header"].data_start])
    path = tmp_path / "m.lkw"
    for where in nodes(outer):
        for value in CONFUSIONS:
            outer_file(sealed, path, replaced(outer, where, value))
            open_checked(sealed, path)


@FAST
@given(data=st.data(), value=json_values)
def test_random_values_at_random_nodes(sealed, tmp_path, data, value):
    manifest = json.loads(sealed["header"].manifest_bytes)
    outer = json.loads(sealed["bytes"][8 : sealed["header"].data_start])
    path = tmp_path / "m.lkw"
    if data.draw(st.booleans()):
        signed_file(sealed, path, replaced(manifest, data.draw(st.sampled_from(
            list(nodes(manifest))[1:])), value))
    else:
        outer_file(sealed, path, replaced(outer, data.draw(st.sampled_from(list(nodes(outer)))),
                                          value))
    open_checked(sealed, path)


def test_truncation_at_every_length(sealed, tmp_path):
    blob, start = sealed["bytes"], sealed["header"].data_start
    for k in range(start):
        with pytest.raises(W.FormatError):
            W.parse_header(blob[:k])
    path = tmp_path / "t.lkw"
    for k in range(0, len(blob), 7):
        path.write_bytes(blob[:k])
        with pytest.raises(W.FormatError):
            W.open(path, sealed["device"].private_key, signer=sealed["publisher"])


@FAST
@given(st.lists(st.integers(0, 10**9), min_size=1, max_size=3))
def test_bit_flips_anywhere_are_refused(sealed, tmp_path, positions):
    blob = bytearray(sealed["bytes"])
    for p in set(positions):
        blob[p % len(blob)] ^= 1 << (p % 8)
    path = tmp_path / "f.lkw"
    path.write_bytes(blob)
    if bytes(blob) != sealed["bytes"]:
        assert not open_checked(sealed, path)
