"""labkit.ed25519, the one strict Ed25519 verifier, attacked with what lenient verifiers accept:
small-order and mixed-order points, the identity key, non-canonical encodings, S >= L. The
"Taming the many EdDSAs" cases are built here from their definitions, and the published vectors
of that paper (ed25519-speccheck, cases.json) are checked too; pycryptodome's cofactored verifier
is the lenient reference that accepts several of them."""
import base64
import hashlib
import os

import pytest
from Crypto.PublicKey import ECC
from Crypto.Signature import eddsa

from labkit import ed25519
from labkit.backdoor import schemes
from labkit.challenges import receipts
from labkit.weights import keys as weight_keys

L, B = ed25519.L, ed25519.BASE
IDENTITY = ed25519.encode_point(ECC.EccPoint(0, 1, curve="Ed25519"))

# Chalkias, Garillot, Nikolaenko, "Taming the many EdDSAs" (SSR 2020), vectors 0-9 as published in
# the ed25519-speccheck repository (cases.json): small/mixed-order A and R, S >= L, non-canonical R.
SPECCHECK = [
    ("8c93255d71dcab10e8f379c26200f3c7bd5f09d9bc3068d3ef4edeb4853022b6", "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
     "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a0000000000000000000000000000000000000000000000000000000000000000"),
    ("9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79", "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
     "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43a5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04"),
    ("aebf3f2601a0c8c5d39cc7d8911642f740b78168218da8471772b35f9d35b9ab", "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43",
     "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa8c4bd45aecaca5b24fb97bc10ac27ac8751a7dfe1baff8b953ec9f5833ca260e"),
    ("9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79", "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d",
     "9046a64750444938de19f227bb80485e92b83fdb4b6506c160484c016cc1852f87909e14428a7a1d62e9f22f3d3ad7802db02eb2e688b6c52fcd6648a98bd009"),
    ("e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c", "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d",
     "160a1cb0dc9c0258cd0a7d23e94d8fa878bcb1925f2c64246b2dee1796bed5125ec6bc982a269b723e0668e540911a9a6a58921d6925e434ab10aa7940551a09"),
    ("e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c", "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d",
     "21122a84e0b5fca4052f5b1235c80a537878b38f3142356b2c2384ebad4668b7e40bc836dac0f71076f9abe3a53f9c03c1ceeeddb658d0030494ace586687405"),
    ("85e241a07d148b41e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec40", "442aad9f089ad9e14647b1ef9099a1ff4798d78589e66f28eca69c11f582a623",
     "e96f66be976d82e60150baecff9906684aebb1ef181f67a7189ac78ea23b6c0e547f7690a0e2ddcd04d87dbc3490dc19b3b3052f7ff0538cb68afb369ba3a514"),
    ("85e241a07d148b41e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec40", "442aad9f089ad9e14647b1ef9099a1ff4798d78589e66f28eca69c11f582a623",
     "8ce5b96c8f26d0ab6c47958c9e68b937104cd36e13c33566acd2fe8d38aa19427e71f98a473474f2f13f06f97c20d58cc3f54b8bd0d272f42b695dd7e89a8c22"),
    ("fdaebc429f4a735932a160da1301080c13280eea8bc280d1b392c6b9e6ba3a5a", "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43",
     "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f454d370c8d9fc323a41450f8d513eafeb5b0697390c1e505a0d4ddc71f566607"),
    ("84b698d39be126ff55fe45079e6c8bf64a0d7db6994560b4e96b7021eb39c1a1", "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43",
     "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f084d5b99c2a9463d9c8bd5026916996984eeec87ddf1d3be329006ace1b37b09"),
]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _lenient(public, message, signature) -> bool:
    """pycryptodome's verifier (cofactored, RFC 8032 §5.1.7): the lenient reference."""
    try:
        eddsa.new(eddsa.import_public_key(public), "rfc8032").verify(message, signature)
    except ValueError:
        return False
    return True


def _k(r: bytes, a: bytes, message: bytes) -> int:
    return int.from_bytes(hashlib.sha512(r + a + message).digest(), "little") % L


def _fresh():
    key = ECC.generate(curve="Ed25519")
    digest = bytearray(hashlib.sha512(key.seed).digest()[:32])
    digest[0] &= 248
    digest[31] = (digest[31] & 127) | 64
    return key, key.public_key().export_key(format="raw"), int.from_bytes(digest, "little")


def test_the_small_order_points_from_their_definition():
    points = ed25519.small_order_points()
    assert len(set(points)) == 8 and points[0] == IDENTITY
    decoded = [ed25519.decode_point(p) for p in points]
    assert all((p * 8).is_point_at_infinity() for p in decoded)
    orders = sorted(min(k for k in (1, 2, 4, 8) if (p * k).is_point_at_infinity()) for p in decoded)
    assert orders == [1, 2, 4, 4, 8, 8, 8, 8]
    for p in points:
        assert not ed25519.is_valid_public_key(p)
        with pytest.raises(ed25519.StrictnessError, match="identity|small order"):
            ed25519.check_public_key(p)


@pytest.mark.parametrize("index", range(len(SPECCHECK)))
def test_the_published_taming_eddsa_vectors_are_all_refused(index):
    message, public, signature = (bytes.fromhex(v) for v in SPECCHECK[index])
    assert not ed25519.verify_strict(public, message, signature)
    assert _lenient(public, message, signature) == (index <= 5)  # the cofactored verifier takes 0-5


def test_identity_key_forgery_verifies_cofactored_for_any_message_and_never_strictly():
    """A "key" with no private key: under A = identity, R = [r]B and S = r satisfy [S]B = R + [k]A
    for every message (cofactorless too); S = 0 with small-order R passes the cofactored check."""
    for _ in range(4):
        message, r = os.urandom(40), int.from_bytes(os.urandom(32), "little") % L
        forged = ed25519.encode_point(B * r) + r.to_bytes(32, "little")
        assert _lenient(IDENTITY, message, forged) and not ed25519.verify_strict(IDENTITY, message, forged)
        for small in ed25519.small_order_points():
            s_zero = small + bytes(32)
            assert not ed25519.verify_strict(small, message, s_zero)


def test_small_order_r_with_s_equal_k_times_a_is_refused():
    key, public, a = _fresh()
    order8 = [p for p in ed25519.small_order_points() if not (ed25519.decode_point(p) * 4).is_point_at_infinity()]
    for r in order8:
        message = os.urandom(32)
        signature = r + (_k(r, public, message) * a % L).to_bytes(32, "little")
        assert _lenient(public, message, signature)  # [8]R vanishes in the cofactored equation
        assert not ed25519.verify_strict(public, message, signature)


def test_mixed_order_key_and_mixed_order_nonce_are_refused():
    key, public, a = _fresh()
    torsion = ed25519.decode_point(ed25519.small_order_points()[-1])
    mixed_a = ed25519.encode_point(ed25519.decode_point(public) + torsion)
    with pytest.raises(ed25519.StrictnessError, match="mixed-order"):
        ed25519.check_public_key(mixed_a)
    message, r = b"mixed", 12345
    signature = ed25519.encode_point(B * r) + ((r + _k(ed25519.encode_point(B * r), mixed_a, message) * a) % L).to_bytes(32, "little")
    assert _lenient(mixed_a, message, signature) and not ed25519.verify_strict(mixed_a, message, signature)
    mixed_r = ed25519.encode_point(B * r + torsion)
    signature = mixed_r + ((r + _k(mixed_r, public, message) * a) % L).to_bytes(32, "little")
    assert _lenient(public, message, signature) and not ed25519.verify_strict(public, message, signature)


def test_non_canonical_encodings_and_large_s_are_refused():
    key, public, _ = _fresh()
    message = b"canonical"
    signature = eddsa.new(key, "rfc8032").sign(message)
    assert ed25519.verify_strict(public, message, signature)
    s = int.from_bytes(signature[32:], "little")
    assert not ed25519.verify_strict(public, message, signature[:32] + (s + L).to_bytes(32, "little"))
    p = ed25519.P
    for y in range(0, 19):  # every y with a second encoding y + p < 2^255
        with pytest.raises(ed25519.StrictnessError):
            ed25519.decode_point((y + p).to_bytes(32, "little"))
    minus_zero = (1 | 1 << 255).to_bytes(32, "little")  # the identity with the sign bit of x set
    with pytest.raises(ed25519.StrictnessError, match="-0"):
        ed25519.decode_point(minus_zero)
    flipped = bytes([signature[0]]) + signature[1:31] + bytes([signature[31] ^ 0x80]) + signature[32:]
    assert not ed25519.verify_strict(public, message, flipped)  # R with the other x: another point
    for bad in (b"", signature[:63], signature + b"\x00", "not bytes", None):
        assert not ed25519.verify_strict(public, message, bad)
    assert not ed25519.verify_strict(public[:31], message, signature)


@pytest.mark.parametrize("secret, message, signature", [
    ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
    ("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"),
])
def test_rfc8032_vectors_and_fresh_signatures_verify(secret, message, signature):
    key = eddsa.import_private_key(bytes.fromhex(secret))
    public = key.public_key().export_key(format="raw")
    assert ed25519.verify_strict(public, bytes.fromhex(message), bytes.fromhex(signature))
    for _ in range(8):
        key, public, _ = _fresh()
        message = os.urandom(64)
        signature = eddsa.new(key, "rfc8032").sign(message)
        verify = ed25519.verifier(public)
        assert verify(message, signature) and not verify(message + b"!", signature)
        bad = bytearray(signature)
        bad[os.urandom(1)[0] % 64] ^= 1 << (os.urandom(1)[0] % 8)
        assert not verify(message, bytes(bad))


def test_every_ed25519_user_in_the_lab_verifies_strictly():
    """The backdoor scheme, the challenge receipts and the weights' signer pin all refuse the
    identity-key forgery that the lenient verifier accepts."""
    message, r = b"labkit.backdoor/v1 anything", 7
    forged = ed25519.encode_point(B * r) + r.to_bytes(32, "little")
    assert _lenient(IDENTITY, message, forged)
    with pytest.raises(ValueError, match="identity"):
        schemes.ED25519.verifier(IDENTITY)
    with pytest.raises(ValueError, match="small order"):
        schemes.ED25519.verify_key(ed25519.small_order_points()[-1])
    with pytest.raises(ValueError, match="identity"):
        weight_keys.signer_public_bytes(IDENTITY)
    body = b'{"attempts":1,"exercise":"08.5","service":"svc","student":"mallory","time":1}'
    signature_r = ed25519.encode_point(B * r) + r.to_bytes(32, "little")
    text = f"{receipts.PREFIX}.{_b64(body)}.{_b64(signature_r)}"
    assert _lenient(IDENTITY, receipts.PREFIX.encode() + b"." + body, signature_r)
    with pytest.raises(receipts.ReceiptError, match="not the service's"):
        receipts.verify_receipt(text, IDENTITY, student="mallory")
    service = ECC.generate(curve="Ed25519")  # and a genuine receipt still verifies
    genuine = receipts.sign_receipt(service, student="ann", exercise="08.5", attempts=2, service="svc")
    assert receipts.verify_receipt(genuine, ed25519.public_key_bytes(service), student="ann").attempts == 2


def _adapters_agree(call_a, call_b, key):
    """Both adapters give the same result for ``key``, or the same exception type."""
    results = []
    for call in (call_a, call_b):
        try:
            results.append(("ok", call(key)))
        except (TypeError, ValueError) as err:
            results.append((type(err), None))
    return results[0] == results[1], results[0]


def test_one_key_adapter_for_the_trigger_scheme_and_the_weights_signer():
    """The backdoor's Ed25519 scheme and the weights' signer pin take Ed25519 keys through the same
    adapter (labkit.ed25519): the same inputs accepted, the same refused, with the same error."""
    signing = ECC.generate(curve="Ed25519")
    seed, public = signing.seed, signing.public_key().export_key(format="raw")
    x25519 = ECC.generate(curve="X25519")
    cases = {"private EccKey": signing, "public EccKey": signing.public_key(), "raw public": public,
             "bytearray": bytearray(public), "31 bytes": public[:31], "identity": IDENTITY,
             "small order": ed25519.small_order_points()[-1], "X25519 key": x25519,
             "str": public.hex(), "None": None}
    for name, key in cases.items():
        agree, (outcome, value) = _adapters_agree(schemes.ED25519.public_bytes,
                                                  weight_keys.signer_public_bytes, key)
        assert agree, name
        expected = {"private EccKey": "ok", "public EccKey": "ok", "raw public": "ok",
                    "bytearray": "ok", "31 bytes": ValueError, "identity": ed25519.StrictnessError,
                    "small order": ed25519.StrictnessError}.get(name, TypeError)
        assert outcome == expected, name
        assert value in (None, public)
    # signing keys: an EccKey with its private part or its 32-byte private key (RFC 8032 seed)
    for key in (signing, seed, bytearray(seed)):
        for adapter in (schemes.ED25519.signing_key, weight_keys.signing_key):
            assert adapter(key).public_key().export_key(format="raw") == public
    for key, error in ((signing.public_key(), TypeError), (x25519, TypeError), (seed[:31], ValueError),
                       (seed.hex(), TypeError), (None, TypeError)):
        for adapter in (schemes.ED25519.signing_key, weight_keys.signing_key):
            with pytest.raises(error):
                adapter(key)
    pair = weight_keys.SigningKeyPair(seed, public)  # the weights' own pair type, unwrapped first
    assert weight_keys.signer_public_bytes(pair) == weight_keys.signing_public(pair) == public
