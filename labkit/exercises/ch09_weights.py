"""Exercises of chapter 09 (encrypted model weights)."""
import torch
from Crypto.Hash import SHA256
from Crypto.Protocol.DH import import_x25519_private_key
from Crypto.Signature import eddsa

from labkit import weights
from labkit.exercises import exercise
from labkit.exercises._session import session_secret
from labkit.exercises.quiz import quiz
from labkit.weights import pitfalls
from labkit.weights.encoding import chunk_spans


def exercise_device() -> weights.RecipientKeyPair:
    """The (deterministic, hence public: exercise only) device key pair of exercise 09.4."""
    sk = SHA256.new(b"labkit chapter 09 exercise device").digest()
    pk = import_x25519_private_key(sk).public_key().export_key(format="raw")
    return weights.RecipientKeyPair(sk, pk)


def exercise_publisher() -> weights.SigningKeyPair:
    """The (deterministic, hence public: exercise only) publisher key of exercise 09.4."""
    sk = SHA256.new(b"labkit chapter 09 exercise publisher").digest()
    pk = eddsa.import_private_key(sk).public_key().export_key(format="raw")
    return weights.SigningKeyPair(sk, pk)


def exercise_state() -> dict:
    """The small model of exercise 09.4."""
    g = torch.Generator().manual_seed(9)
    return {"fc.weight": torch.randn(10, 64, generator=g), "fc.bias": torch.randn(10, generator=g)}


@exercise(
    "09.1",
    "number of GCM chunks (and tags) of a float32 tensor of shape (1000, 300) with 64 KiB chunks",
    hint="Bytes = 1000 * 300 * 4; every chunk but the last holds exactly 65536 bytes.",
)
def _chunks(answer):
    return int(answer) == len(chunk_spans(1000 * 300 * 4, 64 << 10))


@exercise(
    "09.2",
    "hex nonce of chunk 5 when the tensor's nonce base is 000102030405060708090a0b",
    hint="RFC 9180's rule: XOR the chunk index, as a 12-byte big-endian number, into the base.",
)
def _nonce(answer):
    return str(answer).lower().replace(" ", "") == weights.chunk_nonce(bytes(range(12)), 5).hex()


def _reuse_secret() -> torch.Tensor:
    """This run's secret tensor of exercise 09.3, drawn from a CSPRNG seed (never one in the source)."""
    return session_secret("09.3", lambda draw: torch.randn(
        4, 4, generator=torch.Generator().manual_seed(int.from_bytes(draw(8), "big"))))


def reuse_challenge():
    """Exercise 09.3: ``(known, c1, c2)``, AES-GCM encryptions of ``known`` and of this run's secret
    float32 tensor (4, 4) under one key and one nonce (the pitfall of chapter 09)."""
    return pitfalls.nonce_reuse_challenge(0, secret=_reuse_secret())


@exercise(
    "09.3",
    "recover the secret tensor of reuse_challenge() without the key",
    hint="c1 XOR c2 = known XOR secret (same keystream); XOR in the known tensor's raw bytes and "
         "view the result as float32 of shape (4, 4).",
)
def _reuse(answer):
    answer = torch.as_tensor(answer)
    return answer.shape == (4, 4) and torch.equal(answer.float(), _reuse_secret())


@exercise(
    "09.4",
    "seal exercise_state() for exercise_device(), signed by exercise_publisher(), with only "
    "'fc.weight' encrypted; answer the path",
    hint="weights.seal(state, path, [device.public_key], signing_key=publisher, "
         "encrypt=['fc.weight'])",
)
def _seal(answer):
    header = weights.read_header(answer)
    if header.signer != exercise_publisher().public_key:
        return False, "the file is not signed by exercise_publisher(): pass signing_key=."
    got = weights.open(answer, exercise_device().private_key,
                       signer=exercise_publisher().public_key)
    expected = exercise_state()
    encrypted = {n for n, t in header.tensors.items() if t["encrypted"]}
    if encrypted != {"fc.weight"}:
        return False, f"encrypted tensors are {sorted(encrypted)}, expected only fc.weight."
    return set(got) == set(expected) and all(torch.equal(got[n], expected[n]) for n in expected)


# --- concept questions (kind "quiz"; answers stored as salted digests, see quiz.py) ---
# part 1

quiz(
    '09.5',
    "Why must each chunk's GCM associated data bind the tensor's name (and model id, dtype, shape, chunk index and count)?",
    [
     'Because GCM needs at least 16 bytes of associated data.',
     'To make the ciphertext shorter.',
     "Because a tag only proves the bytes came from the key holder, not where they belong: with empty associated data, a tensor's ciphertext could be relabelled as another same-shaped tensor, or moved to another model, and still verify.",
     "So that safetensors can read the tensor's name.",
    ],
    '99594eea327bb6cf6db2c8503d1547c318dad25c94a43ffe0c29bf8200e0e6ae',
    hint='Which part of the file says what a ciphertext is, and is it under the tag?',
)

quiz(
    '09.6',
    'Why does `weights.open` require the expected signer (the pinned publisher key)?',
    [
     "Because anyone who knows the device's public key can seal a file for it with valid tags and MAC under his own content key; only a signature under the pinned key says the publisher made it.",
     'Because HPKE cannot decrypt without a signature.',
     'Because the signature encrypts the header.',
     'Because the model id is stored in the signing key.',
    ],
    'b3932ece824b452121a4d2f3a20517f97e7a6f3d6b9f680d7508355cde4f035a',
    hint="Look at the last line of the tamper table: the outsider's file.",
)

quiz(
    '09.7',
    'Why does the container derive every chunk nonce itself (a fresh DEK per tensor, chunk i uses base XOR i) instead of taking a nonce from the caller?',
    [
     'Because 12-byte nonces cannot be random.',
     "Because a caller's nonce would be visible in the header.",
     'To save the 12 bytes of the nonce in the file.',
     "Because a repeated (key, nonce) pair gives away the XOR of two plaintexts and GHASH's key H (then any forgery): with a fresh DEK per tensor and distinct derived nonces, a repeat is impossible by construction.",
    ],
    'd0f8b5d472c2e9b0d546e47ed01a41d09bf4935dc3fad5394d4879ec64bc9c24',
    hint='Chapter 04 and the nonce-reuse pitfall of part 2.',
)
# part 2

quiz(
    '09.8',
    'Why can revocation (a new header, a rotated content key) not stop a revoked device from reading the model it already had?',
    [
     'Because revocation is not signed.',
     'Because the DEKs and ciphertext are unchanged: a device that kept its copy, its DEKs or the plaintext still reads the same tensors. Cryptography only keeps future data from it (reencrypt=True).',
     'Because HPKE keys cannot be revoked.',
     "Because the device's private key is stored in the header.",
    ],
    'a010b3d7cf8a8e460680169c9e761d19dded56a6ba878b3c2d8d82d80fffaa09',
    hint='Which snapshots does the tablet still open?',
)

quiz(
    '09.9',
    'Selective encryption leaves harmless tensors in plaintext. Why must they still be covered by a digest in the signed header?',
    [
     'Because confidentiality is not needed for them, but integrity is: an attacker who edits a plaintext bias or BatchNorm scale changes the model, and without a digest the edit loads (the CryptoTensors gap).',
     'Because safetensors refuses files without digests.',
     'To make them readable by standard tools.',
     'Because digests encrypt them.',
    ],
    '9674dc49a9947fcb501056eba3f4f71dc54962cae8981be3585a6f74a66cf71a',
    hint="What happened when a plaintext tensor was edited in the lab's container, and in CryptoTensors?",
)

quiz(
    '09.10',
    'Why must a loader reject the whole model when one tensor fails verification, rather than load the rest?',
    [
     'Because GCM cannot decrypt the other tensors.',
     'To save memory.',
     "Because a model with a skipped tensor runs initial or attacker-chosen values in its place: silently wrong, or silently the attacker's.",
     'Because safetensors needs every tensor.',
    ],
    '1ecf45f41180000f332786ec994066c2579ced2e4aa17ca35fb1f497ff1f2a20',
    hint="Run the naive loader's model on the test set.",
)
