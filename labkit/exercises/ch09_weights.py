"""Exercises of chapter 09 (encrypted model weights).

Part 1 (``09_weight_encryption``): 09.1-09.3 write the container's pieces (chunk spans, chunk
nonces, unwrapping a DEK), 09.6-09.8 concept questions. Part 2 (``09b_weight_delivery``): 09.4
breaks nonce reuse on tensors, 09.5 seals a model selectively, 09.9-09.12 concept questions
(09.9: where encryption sits, issue 17).
Each chapter numbers its exercises first and its concept questions after them, both in
notebook order (tests/test_exercises_quiz.py).
"""
import torch
from Crypto.Protocol.DH import import_x25519_private_key
from Crypto.Signature import eddsa

from labkit import weights
from labkit.exercises import check_function, exercise
from labkit.exercises._session import session_secret
from labkit.exercises.quiz import quiz
from labkit.weights import aead, pitfalls
from labkit.weights.encoding import chunk_spans, dek_aad


# --- part 1: the container's pieces -------------------------------------------------------------
@exercise(
    "09.1",
    "write chunk_spans(nbytes, chunk_size): the (begin, end) byte span of every GCM chunk of a tensor",
    hint=("Every chunk but the last holds exactly chunk_size bytes; the last holds what is left. "
          "An empty tensor still gets one chunk, so that its tag authenticates its name and shape.",
          "Step through the starts 0, chunk_size, 2*chunk_size, ... while below nbytes; each chunk "
          "ends at the smaller of start + chunk_size and nbytes. Return a list of pairs."),
    kind="implement",
    where="class",
)
def _chunk_spans(candidate):
    def draw(rng):
        size = rng.choice([16, 32, 64, 256, 1000 * 16])
        nbytes = rng.choice([0, size, 3 * size, rng.randrange(1, 20 * size)])
        return nbytes, size

    def same(got, expected):
        return [tuple(span) for span in got] == expected

    return check_function(candidate, chunk_spans, draw, name="chunk_spans", equal=same)


@exercise(
    "09.2",
    "write chunk_nonce(nonce_base, index): the 12-byte GCM nonce of chunk index (RFC 9180 sec. 5.2)",
    hint=("Each chunk needs its own nonce under the tensor's DEK; HPKE's rule derives them from one "
          "random base by mixing in the sequence number, so no two chunks can collide.",
          "Read the base as a 96-bit big-endian integer, XOR the chunk index into it, and write "
          "the result back as 12 big-endian bytes."),
    kind="implement",
    where="homework",
)
def _chunk_nonce(candidate):
    def draw(rng):
        index = rng.choice([0, 1, rng.randrange(2, 256), rng.randrange(256, 1 << 32)])
        return rng.randbytes(12), index

    return check_function(candidate, weights.chunk_nonce, draw, name="chunk_nonce")


def _dek_case(rng):
    """A random content key, DEK, model id and tensor name, the DEK wrapped as the container does."""
    content_key, dek = rng.randbytes(32), rng.randbytes(32)
    model_id = f"iml/user-{rng.randrange(10**6)}"
    name = rng.choice(["fc.weight", "fc.bias", "encoder.0.weight", "norm.scale"])
    return content_key, aead.wrap_dek(content_key, dek, model_id, name), model_id, name


@exercise(
    "09.3",
    "write unwrap_dek(content_key, wrapped_hex, model_id, name): the tensor's DEK, or an exception "
    "when the wrapped key was tampered with or belongs to another tensor",
    hint=("The wrapped DEK is an AES-256-GCM ciphertext under the content key; its associated "
          "data names the model and the tensor, so a DEK moved to another tensor must not decrypt.",
          "Split the bytes into a 12-byte nonce, the ciphertext and the last 16 bytes, the tag. "
          "Decrypt with AES in GCM mode under the content key, feed the associated data of "
          "weights.dek_aad for this model id and name, and verify the tag before returning."),
    kind="implement",
    where="homework",
)
def _unwrap_dek(candidate):
    import random

    ok, message = check_function(candidate, aead.unwrap_dek, _dek_case, name="unwrap_dek")
    if not ok:
        return ok, message
    rng = random.Random()
    content_key, wrapped, model_id, name = _dek_case(rng)
    other = "decoder.weight" if name != "decoder.weight" else "fc.weight"
    flipped = bytearray.fromhex(wrapped)
    flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
    attacks = {f"the DEK of {name!r} presented as {other!r}": (content_key, wrapped, model_id, other),
               "the same DEK for another model id": (content_key, wrapped, model_id + "-copy", name),
               "a wrapped DEK with one bit flipped": (content_key, flipped.hex(), model_id, name)}
    for label, args in attacks.items():
        try:
            got = candidate(*args)
        except Exception:  # any refusal will do; what matters is that no key comes out
            continue
        return False, (f"{label}: unwrap_dek returned {got!r}; expected an exception "
                       "(a tag that does not verify must not yield a key).")
    return True, message + ", and refuses a relabelled, moved or flipped wrapped DEK"


# --- part 2: nonce reuse and delivery -----------------------------------------------------------
def _reuse_secret() -> torch.Tensor:
    """This run's secret tensor of exercise 09.4, drawn from a CSPRNG seed (never one in the source)."""
    return session_secret("09.4", lambda draw: torch.randn(
        4, 4, generator=torch.Generator().manual_seed(int.from_bytes(draw(8), "big"))))


def reuse_challenge():
    """Exercise 09.4: ``(known, c1, c2)``, AES-GCM encryptions of ``known`` and of this run's secret
    float32 tensor (4, 4) under one key and one nonce (the pitfall of chapter 09)."""
    return pitfalls.nonce_reuse_challenge(0, secret=_reuse_secret())


@exercise(
    "09.4",
    "recover the secret tensor of reuse_challenge() without the key",
    hint=("GCM is counter mode underneath: under one key and one nonce both ciphertexts are their "
          "plaintext XOR the same keystream, so the keystream cancels between them.",
          "XOR the two ciphertexts, then XOR in the raw bytes of the known tensor; read the result "
          "as float32 values in a 4 x 4 shape."),
    kind="attack",
    where="homework",
)
def _reuse(answer):
    answer = torch.as_tensor(answer)
    return answer.shape == (4, 4) and torch.equal(answer.float(), _reuse_secret())


def exercise_device() -> weights.RecipientKeyPair:
    """The device key pair of exercise 09.5: fresh from the OS CSPRNG, the same for the whole run."""
    sk = session_secret("09.5 device", lambda draw: draw(32))
    pk = import_x25519_private_key(sk).public_key().export_key(format="raw")
    return weights.RecipientKeyPair(sk, pk)


def exercise_publisher() -> weights.SigningKeyPair:
    """The publisher key pair of exercise 09.5 (you play the publisher): fresh every run."""
    sk = session_secret("09.5 publisher", lambda draw: draw(32))
    pk = eddsa.import_private_key(sk).public_key().export_key(format="raw")
    return weights.SigningKeyPair(sk, pk)


def exercise_state() -> dict:
    """The small model of exercise 09.5 (public: only its delivery is the exercise)."""
    g = torch.Generator().manual_seed(9)
    return {"fc.weight": torch.randn(10, 64, generator=g), "fc.bias": torch.randn(10, generator=g)}


@exercise(
    "09.5",
    "seal exercise_state() for exercise_device(), signed by exercise_publisher(), with only "
    "'fc.weight' encrypted; answer the path",
    hint=("Only the device's public key is needed to seal for it; the publisher signs with its "
          "private key, and the device pins the publisher's public key.",
          "One call of the chapter's sealing function does it: the device's public key as the "
          "only recipient, the publisher key pair as signing key, and the names to encrypt as a "
          "list holding only the weight matrix."),
    where="class",
)
def _seal(answer):
    header = weights.read_header(answer)
    if header.signer != exercise_publisher().public_key:
        return False, "the file is not signed by this run's exercise_publisher(): pass it as signing key."
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
    '09.6',
    "Why must each chunk's GCM associated data bind the tensor's name (and model id, dtype, shape, chunk index and count)?",
    [
     'Because GCM needs at least 16 bytes of associated data.',
     'To make the ciphertext shorter.',
     "Because a tag only proves the bytes came from the key holder, not where they belong: with empty associated data, a tensor's ciphertext could be relabelled as another same-shaped tensor, or moved to another model, and still verify.",
     "So that safetensors can read the tensor's name.",
    ],
    '9bc9986abaa82f34551f4b07795a1feb869df51e0fcb44ae95a9e4e8ad3d9c33',
    hint=('Which part of the file says what a ciphertext is, and is it under the tag?',
          'Imagine two tensors of the same shape exchanging their ciphertexts: what would still verify?'),
    where="class",
)

quiz(
    '09.7',
    'Why does `weights.open` require the expected signer (the pinned publisher key)?',
    [
     "Because anyone who knows the device's public key can seal a file for it with valid tags and MAC under his own content key; only a signature under the pinned key says the publisher made it.",
     'Because HPKE cannot decrypt without a signature.',
     'Because the signature encrypts the header.',
     'Because the model id is stored in the signing key.',
    ],
    '07c94754d81e92e6dcd143b22668a7b8dc426e6b94ed7ccec652aa7c28a9aa29',
    hint=("Look at the last line of the tamper table: the outsider's file.",
          'What does the outsider need to seal a file for the device, and which check needs a key he lacks?'),
    where="class",
)

quiz(
    '09.8',
    'Why does the container derive every chunk nonce itself (a fresh DEK per tensor, chunk i uses base XOR i) instead of taking a nonce from the caller?',
    [
     'Because 12-byte nonces cannot be random.',
     "Because a caller's nonce would be visible in the header.",
     'To save the 12 bytes of the nonce in the file.',
     "Because a repeated (key, nonce) pair gives away the XOR of two plaintexts and GHASH's key H (then any forgery): with a fresh DEK per tensor and distinct derived nonces, a repeat is impossible by construction.",
    ],
    '7704fb7cd9b5b595628b4be073c5e25a4306a0a453be1bcb2d708a677d0f60ee',
    hint=('Chapter 04 and the nonce-reuse pitfall of part 2.',
          'What does an attacker learn from two ciphertexts under one key and one nonce?'),
    where="class",
)
# part 2

quiz(
    '09.9',
    "A server keeps individual models in a cloud database with TDE, on full-disk-encrypted hosts, and serves them over TLS. Which layer alone also keeps a model from the cloud's database admin and from another device of the same customer?",
    [
     'TLS, because the model is encrypted on the wire.',
     'Full-disk encryption, because the model is encrypted on every disk.',
     'Transparent data encryption, because the database encrypts every row.',
     "Application-level (end-to-end) encryption of each tensor, with the key wrapped for one device's key: only that device unwraps it, so neither the admin, to whom TDE hands rows decrypted, nor another device, which lacks that private key, reads the model.",
    ],
    'bc08ec7c289417cb377a90ce37e6f1da4eb26a5f5b0c7ec79da96208ba430b84',
    hint=("Read the table's columns for the cloud admin and for another device: where is the model in plaintext for each layer?",
          'TLS, disk encryption and TDE decrypt for whoever runs the endpoint, the machine or the database; which layer decrypts only on the one device?'),
    where="class",
)

quiz(
    '09.10',
    'Why can revocation (a new header, a rotated content key) not stop a revoked device from reading the model it already had?',
    [
     'Because revocation is not signed.',
     'Because the DEKs and ciphertext are unchanged: a device that kept its copy, its DEKs or the plaintext still reads the same tensors. Cryptography only keeps future data from it (reencrypt=True).',
     'Because HPKE keys cannot be revoked.',
     "Because the device's private key is stored in the header.",
    ],
    '3c89ddcb442f122ea1322d10fac2f57c2d95d155105005dd0d485edaa60a1d51',
    hint=('Which snapshots does the tablet still open?',
          'What changes in the file on revocation, and what stays byte for byte the same?'),
    where="class",
)

quiz(
    '09.11',
    'Selective encryption leaves harmless tensors in plaintext. Why must they still be covered by a digest in the signed header?',
    [
     'Because confidentiality is not needed for them, but integrity is: an attacker who edits a plaintext bias or BatchNorm scale changes the model, and without a digest the edit loads (the CryptoTensors gap).',
     'Because safetensors refuses files without digests.',
     'To make them readable by standard tools.',
     'Because digests encrypt them.',
    ],
    'f68c197c4eac79d5c54d335d488094111d42e337514c1cfcfd0f8b056d49bc41',
    hint=("What happened when a plaintext tensor was edited in the lab's container, and in CryptoTensors?",
          'Confidentiality and integrity are separate properties: which one does a plaintext tensor still need?'),
    where="class",
)

quiz(
    '09.12',
    'Why must a loader reject the whole model when one tensor fails verification, rather than load the rest?',
    [
     'Because GCM cannot decrypt the other tensors.',
     'To save memory.',
     "Because a model with a skipped tensor runs initial or attacker-chosen values in its place: silently wrong, or silently the attacker's.",
     'Because safetensors needs every tensor.',
    ],
    '51f48e75c348650176db87df82a5eb173903b4b65fabea86baa6db45ee32e6c1',
    hint=("Run the naive loader's model on the test set.",
          'What values does a layer hold when its tensor was skipped and the rest loaded with strict=False?'),
    where="class",
)
