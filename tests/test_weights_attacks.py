"""Attacks on labkit.weights as an outsider would run them (issue 13, items 4, 5, 7 and 8):
a file sealed by someone holding only the recipient's public key, a file swapped during
rotation, a file truncated while it is opened, and malformed headers."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import pytest
import torch

from labkit import weights as W
from labkit.weights import recipients
from labkit.weights import format as fmt

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def parties():
    return {"device": W.generate_recipient_keypair(), "publisher": W.generate_signing_keypair(),
            "outsider": W.generate_signing_keypair()}


def genuine_state():
    g = torch.Generator().manual_seed(13)
    return {"fc.weight": torch.randn(16, 8, generator=g), "fc.bias": torch.randn(16, generator=g)}


def outsider_state():
    return {"fc.weight": torch.full((16, 8), 6.0), "fc.bias": torch.zeros(16)}


@pytest.fixture()
def genuine(tmp_path, parties):
    path = tmp_path / "model.lkw"
    W.seal(genuine_state(), path, [parties["device"].public_key],
           signing_key=parties["publisher"], model_id="user-42", version=3, chunk_size=256)
    return path


def outsider_file(path, parties):
    """What the outsider can make with public knowledge only: the device's public key."""
    W.seal(outsider_state(), path, [parties["device"].public_key],
           signing_key=parties["outsider"], model_id="user-42", version=10**9)
    return path


# ---------------------------------------------------------------------------------------------
# 4. the signer is required
# ---------------------------------------------------------------------------------------------
def test_outsider_sealed_file_is_refused_by_a_pinned_open(tmp_path, parties):
    path = outsider_file(tmp_path / "evil.lkw", parties)
    device, publisher = parties["device"], parties["publisher"]
    for kwargs in ({}, {"model_id": "user-42"}, {"model_id": "user-42", "min_version": 3}):
        with pytest.raises(W.IntegrityError, match="different key"):
            W.open(path, device.private_key, signer=publisher.public_key, **kwargs)
    with pytest.raises(W.IntegrityError, match="different key"):
        W.load_into(torch.nn.Linear(8, 16), path, device.private_key, signer=publisher)
    # the explicit, dangerous-sounding opt-out opens it: and says so
    with pytest.warns(W.UnverifiedSignerWarning, match="UNVERIFIED"):
        got = W.open(path, device.private_key, signer=W.UNVERIFIED, model_id="user-42",
                     min_version=3)
    assert torch.equal(got["fc.weight"], outsider_state()["fc.weight"])


def test_opening_without_naming_the_signer_is_refused(genuine, parties):
    device = parties["device"]
    for call in (lambda: W.open(genuine, device.private_key),
                 lambda: W.open(genuine, device.private_key, signer=None),
                 lambda: W.load_into(torch.nn.Linear(8, 16), genuine, device.private_key),
                 lambda: W.unwrap_content_key(genuine, device.private_key)):
        with pytest.raises(W.SignerRequiredError, match="signer=weights.UNVERIFIED") as err:
            call()
        assert isinstance(err.value, W.WeightsError) and isinstance(err.value, TypeError)
    assert W.open(genuine, device.private_key, signer=parties["publisher"].public_key,
                  model_id="user-42", min_version=3).keys() == genuine_state().keys()
    namespace: dict = {}
    exec("from labkit.weights import *", namespace)
    assert "open" not in namespace and "UNVERIFIED" in namespace  # no shadowed built-in


# ---------------------------------------------------------------------------------------------
# 5. rotation signs only what it verified
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("swap", ["rename", "overwrite"])
def test_rotation_never_signs_a_file_swapped_after_its_check(genuine, parties, tmp_path,
                                                             monkeypatch, swap):
    evil = outsider_file(tmp_path / "evil.lkw", parties)
    real = recipients.verified_header

    def verified_then_swapped(fd, *args, **kwargs):
        result = real(fd, *args, **kwargs)
        if swap == "rename":  # a new file at the path: the publisher must not read it
            os.replace(evil, genuine)
        else:  # the same file (inode) rewritten in place with the outsider's data
            with open(genuine, "r+b") as f:
                f.seek(result[0].data_start)
                data = f.read()
                f.seek(result[0].data_start)
                f.write(bytes(reversed(data)))
        return result

    monkeypatch.setattr(recipients, "verified_header", verified_then_swapped)
    args = dict(private_key=parties["device"].private_key, signing_key=parties["publisher"])
    if swap == "overwrite":
        with pytest.raises(W.IntegrityError):
            W.rotate_content_key(genuine, reencrypt=True, **args)
        with pytest.raises(W.IntegrityError):  # nothing new was signed by the publisher
            W.open(genuine, parties["device"].private_key, signer=parties["publisher"])
        return
    W.rotate_content_key(genuine, reencrypt=True, **args)
    out = W.open(genuine, parties["device"].private_key, signer=parties["publisher"],
                 min_version=4)
    assert all(torch.equal(out[n], t) for n, t in genuine_state().items())  # not the outsider's


# ---------------------------------------------------------------------------------------------
# 7. truncation while (and after) opening: an error, never a signal
# ---------------------------------------------------------------------------------------------
TRUNCATION_SCRIPT = textwrap.dedent("""
    import os, sys, threading, warnings
    import torch
    from labkit import weights as W
    from labkit.weights import fileio
    warnings.simplefilter("ignore", W.UnverifiedSignerWarning)
    path = sys.argv[1]
    device, publisher = W.generate_recipient_keypair(), W.generate_signing_keypair()
    state = {f"t{i}": torch.randn(64 << 10) for i in range(4)}  # 1 MiB, 16 chunks of 64 KiB
    seal = lambda: W.seal(state, path, [device.public_key], signing_key=publisher,
                          chunk_size=64 << 10)
    open_ = lambda: W.open(path, device.private_key, signer=publisher.public_key)
    outcomes = set()
    # 1. truncated between the header check and the data reads (a hook in the read path)
    real = fileio.preadv_all
    for cut in (0, 1, 70000, 500000):
        seal()
        start = W.read_header(path).data_start
        def truncating(fd, buf, offset, cut=cut):
            if os.fstat(fd).st_size > start + cut:
                os.truncate(path, start + cut)
            return real(fd, buf, offset)
        fileio.preadv_all = truncating
        try:
            open_()
            outcomes.add("opened")
        except W.WeightsError as err:
            outcomes.add(type(err).__name__)
        fileio.preadv_all = real
    # 2. truncated by another thread at a random moment
    for delay in range(12):
        seal()
        timer = threading.Timer(delay * 0.002, os.truncate, (path, 4096 * delay))
        timer.start()
        try:
            out = open_()
            outcomes.add("opened")
        except W.WeightsError as err:
            outcomes.add(type(err).__name__)
        timer.join()
    # 3. truncated after open returned: the tensors stay readable
    seal()
    out = open_()
    os.truncate(path, 0)
    assert all(torch.equal(out[n], t) for n, t in state.items())
    print(sorted(outcomes))
""")


def test_truncation_while_opening_raises_and_never_kills_the_process(tmp_path):
    result = subprocess.run([sys.executable, "-c", TRUNCATION_SCRIPT, str(tmp_path / "t.lkw")],
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, f"died with {result.returncode}: {result.stderr[-2000:]}"
    outcomes = set(json.loads(result.stdout.strip().splitlines()[-1].replace("'", '"')))
    assert "IntegrityError" in outcomes  # the hooked truncations are always caught
    assert outcomes <= {"opened", "IntegrityError", "FormatError"}


# ---------------------------------------------------------------------------------------------
# 8. malformed headers: FormatError before anything else, in bounded memory
# ---------------------------------------------------------------------------------------------
def resign(path, parties, edit_text):
    """Rewrite the manifest *text* with ``edit_text`` and sign it with the publisher's key and
    a MAC under the real content key: only the format checks stand in the way."""
    header = W.read_header(path)
    ck = W.unwrap_content_key(path, parties["device"].private_key, signer=parties["publisher"])
    text = edit_text(header.manifest_bytes.decode())
    mbytes = text.encode()
    model_id = header.model_id
    mac = fmt.header_mac(mbytes, ck, model_id)
    sig = fmt.header_signature(mbytes, mac, parties["publisher"])
    body = path.read_bytes()[header.data_start:]
    path.write_bytes(fmt.frame_header(mbytes, header.table, mac=mac, signature=sig) + body)


def replace_field(key, value_text, count=1):
    def edit(text):
        manifest = json.loads(text)
        target = manifest["tensors"][0] if key in manifest["tensors"][0] else manifest
        marker = "\x00MARK\x00"
        target[key] = marker
        return json.dumps(manifest, sort_keys=True, separators=(",", ":")).replace(
            json.dumps(marker), value_text, count)
    return edit


@pytest.mark.parametrize("key,value", [
    ("encrypted", "1"), ("dtype", '["float32"]'), ("version", "9" * 4400),
    ("shape", "[0,281474976710656,281474976710656]"), ("offsets", "[0.5,1]"),
    ("tags", '[{"a":1}]'), ("version", "NaN"), ("name", '"\\ud800"'), ("nonce_base", '"00 11"'),
    ("model_id", "[]"), ("recipients", "{}"), ("chunk_size", "true"), ("metadata", '{"a":1}'),
])
def test_malformed_signed_headers_raise_format_error(genuine, parties, key, value):
    resign(genuine, parties, replace_field(key, value))
    with pytest.raises(W.FormatError):
        W.open(genuine, parties["device"].private_key, signer=parties["publisher"])


def header_of(body: bytes) -> bytes:
    return len(body).to_bytes(8, "little") + body


def manifest_header(inner: str) -> bytes:
    """A header whose manifest is ``inner`` (not JSON-checked), fake MAC and signature."""
    return fmt.frame_header(inner.encode(), {}, mac=bytes(32), signature=bytes(64))


SIZE = 4 << 20
BLOATED = {
    "outer lists": header_of(b"[" + b"[]," * (SIZE // 3) + b"[]]"),
    "outer objects": header_of(b'{"a":' + b"{}," * (SIZE // 3) + b"{}}"),
    "manifest lists": manifest_header('{"tensors":[' + "[]," * (SIZE // 3) + "[]]}"),
    "manifest objects": manifest_header('{"tensors":[' + "{}," * (SIZE // 3) + "{}]}"),
    "manifest strings": manifest_header('{"tensors":[' + '"ab",' * (SIZE // 5) + '""]}'),
    "manifest numbers": manifest_header('{"tensors":[' + "1000," * (SIZE // 5) + "1]}"),
    "manifest pairs": manifest_header('{"metadata":{' + ",".join(
        f'"{i:x}":""' for i in range(SIZE // 10)) + "}}"),
    "manifest nesting": manifest_header('{"tensors":' + "[" * (SIZE // 2) + "]" * (SIZE // 2)
                                        + "}"),
}


@pytest.mark.parametrize("name", list(BLOATED))
def test_bloated_headers_are_rejected_in_bounded_memory(name):
    blob = BLOATED[name]
    tracemalloc.start()
    try:
        with pytest.raises(W.FormatError):
            W.parse_header(blob)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 6 * len(blob) + (1 << 20), f"{peak / len(blob):.1f}x the header size"


def test_header_limit_scales_with_the_model(genuine):
    header = W.read_header(genuine)
    assert header.header_bytes <= fmt.header_limit(2, 3)
    assert fmt.header_limit(10_000, 0) <= 11 << 20  # about 1 MiB per 1,000 tensors
    assert fmt.header_limit(10**9, 0) == W.MAX_HEADER_BYTES
    data = genuine.read_bytes()
    too_long = (W.MAX_HEADER_BYTES + 8).to_bytes(8, "little") + data[8:]
    with pytest.raises(W.FormatError, match="exceeds"):
        W.parse_header(too_long)
    # a valid header padded far beyond what two tensors need
    body = data[8 : header.data_start] + b" " * (200 << 10)
    with pytest.raises(W.FormatError):
        W.parse_header(header_of(body) + data[header.data_start:])
