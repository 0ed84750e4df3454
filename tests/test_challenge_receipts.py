"""Receipts from the attacker's side: a copied, edited or forged receipt earns nothing."""
import base64
import json

import pytest
from Crypto.PublicKey import ECC

from labkit import ed25519
from labkit.challenges import receipts
from labkit.challenges.core import ChallengeService
from labkit.challenges.db import Database


@pytest.fixture(scope="module")
def service_key():
    return ECC.generate(curve="Ed25519")


def _issue(key, **fields):
    base = dict(student="ada", exercise="06.8", attempts=2, service="labkit")
    return receipts.sign_receipt(key, **{**base, **fields})


def _payload(text):
    body = text.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def _with_payload(text, payload):
    prefix, _, signature = text.split(".")
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return f"{prefix}.{base64.urlsafe_b64encode(body).rstrip(b'=').decode()}.{signature}"


def test_a_fresh_receipt_verifies_for_its_student_and_exercise(service_key):
    text = _issue(service_key)
    got = receipts.verify_receipt(text, ed25519.public_key_bytes(service_key), student="ada", exercise="06.8")
    assert (got.student, got.exercise, got.attempts, got.service) == ("ada", "06.8", 2, "labkit")


def test_a_copied_receipt_earns_nothing_for_another_student_or_exercise(service_key):
    text, public = _issue(service_key), ed25519.public_key_bytes(service_key)
    with pytest.raises(receipts.ReceiptError, match="another student"):
        receipts.verify_receipt(text, public, student="bob")
    with pytest.raises(receipts.ReceiptError, match="another exercise"):
        receipts.verify_receipt(text, public, student="ada", exercise="06.9")


@pytest.mark.parametrize("field, value", [("student", "bob"), ("exercise", "04.10"), ("attempts", 1),
                                          ("time", 0)])
def test_an_edited_receipt_fails_its_signature(service_key, field, value):
    text = _issue(service_key)
    forged = _with_payload(text, {**_payload(text), field: value})
    with pytest.raises(receipts.ReceiptError, match="signature"):
        receipts.verify_receipt(forged, ed25519.public_key_bytes(service_key), student=_payload(forged)["student"])


def test_a_receipt_signed_by_another_key_fails(service_key):
    own = ECC.generate(curve="Ed25519")
    with pytest.raises(receipts.ReceiptError, match="signature"):
        receipts.verify_receipt(_issue(own), ed25519.public_key_bytes(service_key), student="ada")


@pytest.mark.parametrize("text", ["", "Correct", "labkit-receipt-v1..", "labkit-receipt-v1.e30.AA",
                                  "labkit-receipt-v2.e30.AA", "x" * 5000, "labkit-receipt-v1.e30=.AA"])
def test_malformed_receipts_raise_receipt_error(service_key, text):
    with pytest.raises(receipts.ReceiptError):
        receipts.verify_receipt(text, ed25519.public_key_bytes(service_key), student="ada")


def test_non_canonical_payload_is_refused_even_when_signed(service_key):
    """A payload with spaces verifies as a signature but is not the canonical form: refused, so one
    statement has one receipt text."""
    from Crypto.Signature import eddsa

    body = b'{"attempts": 1, "exercise": "06.8", "service": "labkit", "student": "ada", "time": 5}'
    sig = eddsa.new(service_key, "rfc8032").sign(b"labkit-receipt-v1." + body)
    enc = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    with pytest.raises(receipts.ReceiptError, match="canonical"):
        receipts.verify_receipt(f"labkit-receipt-v1.{enc(body)}.{enc(sig)}",
                                ed25519.public_key_bytes(service_key), student="ada")


def test_bools_are_not_counts(service_key):
    with pytest.raises(receipts.ReceiptError):
        _issue(service_key, attempts=True)


def test_the_pinned_key_is_the_ed25519_adapters_on_every_key_the_service_holds(service_key):
    """The key graders pin comes from ``labkit.ed25519.public_key_bytes``: the RFC 8032 public key of
    an Ed25519 key, private or public; anything else is refused as before (a TypeError)."""
    rfc = ECC.construct(curve="Ed25519", seed=bytes.fromhex(  # RFC 8032 §7.1, TEST 1
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"))
    expected = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    assert ed25519.public_key_bytes(rfc) == ed25519.public_key_bytes(rfc.public_key()) == expected
    public = ed25519.public_key_bytes(service_key)
    assert public == ed25519.public_key_bytes(service_key.public_key())
    assert receipts.verify_receipt(_issue(service_key), public, student="ada").exercise == "06.8"
    for wrong in (ECC.generate(curve="P-256"), ECC.generate(curve="P-256").public_key(),
                  ECC.generate(curve="Ed448"), public.hex(), None, 7):
        with pytest.raises(TypeError):
            ed25519.public_key_bytes(wrong)
    # tightened: a public key under which forgeries verify is refused here too, not exported
    identity = ECC.construct(curve="Ed25519", point_x=0, point_y=1)
    with pytest.raises(ed25519.StrictnessError):
        ed25519.public_key_bytes(identity)


def test_the_service_never_publishes_raw_key_bytes_as_its_public_key(service_key):
    """Raw bytes handed to the service are its secret seed; taking them as the public key would
    publish the seed, so the service refuses them, whatever the bytes decode to."""
    for raw in (service_key.seed, bytes(ed25519.public_key_bytes(service_key)), bytearray(service_key.seed)):
        with pytest.raises(TypeError, match="Ed25519 key"):
            ChallengeService(Database(":memory:"), raw, notebooks=None)
    assert ChallengeService(Database(":memory:"), service_key, notebooks=None).public_key == \
        ed25519.public_key_bytes(service_key)
