"""Exercises of chapter 09 (encrypted model weights).

Part 1 (``09_weight_encryption``): 09.1-09.3 write the container's pieces (chunk spans, chunk
nonces, unwrapping a DEK), 09.6-09.8 concept questions. Part 2 (``09b_weight_delivery``): 09.4
breaks nonce reuse on tensors, 09.5 seals a model selectively, 09.9-09.12 concept questions
(09.9: where encryption sits, issue 17).
Each chapter numbers its exercises first and its concept questions after them, both in
notebook order (tests/test_exercises_quiz.py).
"""
from pathlib import Path

import torch

from labkit import weights
from labkit.challenges.defs_models import exercise_state  # noqa: F401  (public: the model to seal)
from labkit.exercises import _session, check_function, exercise
from labkit.exercises.quiz import quiz
from labkit.weights import aead
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
def reuse_challenge():
    """Exercise 09.4: ``(known, c1, c2)``, AES-GCM encryptions of ``known`` and of this run's secret
    float32 tensor (4, 4) under one key and one nonce (the pitfall of chapter 09); the secret
    stays in the challenge service."""
    public = _session.run("09.4").public
    return torch.from_numpy(public["known"].copy()), public["c1"], public["c2"]


@exercise(
    "09.4",
    "recover the secret tensor of reuse_challenge() without the key",
    hint=("GCM is counter mode underneath: under one key and one nonce both ciphertexts are their "
          "plaintext XOR the same keystream, so the keystream cancels between them.",
          "XOR the two ciphertexts, then XOR in the raw bytes of the known tensor; read the result "
          "as float32 values in a 4 x 4 shape."),
    kind="attack", remote=True,
)
def _reuse(answer):
    answer = torch.as_tensor(answer)
    if answer.shape != (4, 4):
        return False, f"the secret is a 4 x 4 tensor, got shape {tuple(answer.shape)}."
    return _session.answer_run("09.4", answer.float().numpy())


def exercise_device() -> weights.RecipientKeyPair:
    """The device of exercise 09.5: its public key, fresh for the run. The private key stays on
    the device (the challenge service, which opens your file to check it)."""
    return weights.RecipientKeyPair(None, _session.run("09.5").public["device_public"])


def exercise_publisher() -> weights.SigningKeyPair:
    """The publisher key pair of exercise 09.5 (you play the publisher): fresh every run."""
    return weights.SigningKeyPair(*_session.run("09.5").public["publisher"])


@exercise(
    "09.5",
    "seal exercise_state() for exercise_device(), signed by exercise_publisher(), with only "
    "'fc.weight' encrypted; answer the path",
    remote=True,
    hint=("Only the device's public key is needed to seal for it; the publisher signs with its "
          "private key, and the device pins the publisher's public key.",
          "One call of the chapter's sealing function does it: the device's public key as the "
          "only recipient, the publisher key pair as signing key, and the names to encrypt as a "
          "list holding only the weight matrix."),
)
def _seal(answer):
    return _session.answer_run("09.5", Path(answer).read_bytes())


# --- concept questions (kind "quiz"; the answers are the challenge service's, see quiz.py) ---
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
    hint=('Which part of the file says what a ciphertext is, and is it under the tag?',
          'Imagine two tensors of the same shape exchanging their ciphertexts: what would still verify?'),
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
    hint=("Look at the last line of the tamper table: the outsider's file.",
          'What does the outsider need to seal a file for the device, and which check needs a key he lacks?'),
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
    hint=('Chapter 04 and the nonce-reuse pitfall of part 2.',
          'What does an attacker learn from two ciphertexts under one key and one nonce?'),
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
    hint=("Read the table's columns for the cloud admin and for another device: where is the model in plaintext for each layer?",
          'TLS, disk encryption and TDE decrypt for whoever runs the endpoint, the machine or the database; which layer decrypts only on the one device?'),
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
    hint=('Which snapshots does the tablet still open?',
          'What changes in the file on revocation, and what stays byte for byte the same?'),
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
    hint=("What happened when a plaintext tensor was edited in the lab's container, and in CryptoTensors?",
          'Confidentiality and integrity are separate properties: which one does a plaintext tensor still need?'),
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
    hint=("Run the naive loader's model on the test set.",
          'What values does a layer hold when its tensor was skipped and the rest loaded with strict=False?'),
)
