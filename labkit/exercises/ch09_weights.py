"""Exercises of chapter 09 (encrypted model weights).

Part 1 (``09_weight_encryption``): 09.1-09.3 write the container's pieces (chunk spans, chunk
nonces, unwrapping a DEK), 09.6-09.8 concept questions. Part 2 (``09b_weight_delivery``): 09.4
breaks nonce reuse on tensors, 09.5 seals a model selectively, 09.9-09.12 concept questions
(09.9: where encryption sits).
Each chapter numbers its exercises first and its concept questions after them, both in
notebook order (tests/test_exercises_quiz.py).
"""
import random
from pathlib import Path

import torch

from labkit import weights
from labkit.challenges.defs_models import exercise_state  # noqa: F401  (public: the model to seal)
from labkit.exercises import FunctionSpec, service_handles, check_function, exercise, implement
from labkit.exercises.quiz import quiz
from labkit.weights import aead
from labkit.weights.encoding import chunk_spans


# --- part 1: the container's pieces -------------------------------------------------------------
def _draw_chunking(rng):
    size = rng.choice([16, 32, 64, 256, 1000 * 16])
    nbytes = rng.choice([0, size, 3 * size, rng.randrange(1, 20 * size)])
    return nbytes, size


def _same_spans(got, expected) -> bool:
    return [tuple(span) for span in got] == expected


implement(
    "09.1",
    "write chunk_spans(nbytes, chunk_size): the (begin, end) byte span of every GCM chunk of a tensor",
    hint=("Every chunk but the last holds exactly chunk_size bytes; the last holds what is left. "
          "An empty tensor still gets one chunk, so that its tag authenticates its name and shape.",
          "Step through the starts 0, chunk_size, 2*chunk_size, ... while below nbytes; each chunk "
          "ends at the smaller of start + chunk_size and nbytes. Return a list of pairs."),
    spec=FunctionSpec("chunk_spans", chunk_spans, _draw_chunking, equal=_same_spans,
                      hide=("labkit.weights.encoding:chunk_spans",)),
    where="class",
)


def _draw_nonce_case(rng):
    index = rng.choice([0, 1, rng.randrange(2, 256), rng.randrange(256, 1 << 32)])
    return rng.randbytes(12), index


implement(
    "09.2",
    "write chunk_nonce(nonce_base, index): the 12-byte GCM nonce of chunk index (RFC 9180 sec. 5.2)",
    hint=("Each chunk needs its own nonce under the tensor's DEK; HPKE's rule derives them from one "
          "random base by mixing in the sequence number, so no two chunks can collide.",
          "Read the base as a 96-bit big-endian integer, XOR the chunk index into it, and write "
          "the result back as 12 big-endian bytes."),
    spec=FunctionSpec("chunk_nonce", weights.chunk_nonce, _draw_nonce_case,
                      hide=("labkit.weights.encoding:chunk_nonce", "labkit.weights:chunk_nonce")),
    where="homework",
)


def _dek_case(rng):
    """A random content key, DEK, model id and tensor name, the DEK wrapped as the container does."""
    content_key, dek = rng.randbytes(32), rng.randbytes(32)
    model_id = f"iml/user-{rng.randrange(10**6)}"
    name = rng.choice(["fc.weight", "fc.bias", "encoder.0.weight", "norm.scale"])
    return content_key, aead.wrap_dek(content_key, dek, model_id, name), model_id, name


def _unwrap_dek(candidate):
    """The 09.3 check: the trials, then three wrapped DEKs that must be refused."""
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


implement(
    "09.3",
    "write unwrap_dek(content_key, wrapped_hex, model_id, name): the tensor's DEK, or an exception "
    "when the wrapped key was tampered with or belongs to another tensor",
    hint=("The wrapped DEK is an AES-256-GCM ciphertext under the content key; its associated "
          "data names the model and the tensor, so a DEK moved to another tensor must not decrypt.",
          "Split the bytes into a 12-byte nonce, the ciphertext and the last 16 bytes, the tag. "
          "Decrypt with AES in GCM mode under the content key, feed the associated data of "
          "weights.dek_aad for this model id and name, and verify the tag before returning."),
    spec=FunctionSpec("unwrap_dek", checker=_unwrap_dek, hide=("labkit.weights.aead:unwrap_dek",)),
    where="homework",
)


# --- part 2: nonce reuse and delivery -----------------------------------------------------------
def reuse_challenge():
    """Exercise 09.4: ``(known, c1, c2)``, AES-GCM encryptions of ``known`` and of this run's secret
    float32 tensor (4, 4) under one key and one nonce (the pitfall of chapter 09); the secret
    stays in the challenge service."""
    public = service_handles.run("09.4").public
    return torch.from_numpy(public["known"].copy()), public["c1"], public["c2"]


@exercise(
    "09.4",
    "recover the secret tensor of reuse_challenge() without the key",
    hint=("GCM is counter mode underneath: under one key and one nonce both ciphertexts are their "
          "plaintext XOR the same keystream, so the keystream cancels between them.",
          "XOR the two ciphertexts, then XOR in the raw bytes of the known tensor; read the result "
          "as float32 values in a 4 x 4 shape."),
    kind="attack", remote=True,
    where="homework",
)
def _reuse(answer):
    try:
        answer = torch.as_tensor(answer)
    except (RuntimeError, TypeError):  # torch refuses what it cannot read as numbers this way
        return False, f"the secret is a 4 x 4 tensor of numbers, got {type(answer).__name__}."
    if answer.shape != (4, 4):
        return False, f"the secret is a 4 x 4 tensor, got shape {tuple(answer.shape)}."
    return service_handles.answer_run("09.4", answer.float().numpy())


def exercise_device() -> weights.RecipientKeyPair:
    """The device of exercise 09.5: its public key, fresh for the run. The private key stays on
    the device (the challenge service, which opens your file to check it)."""
    return weights.RecipientKeyPair(None, service_handles.run("09.5").public["device_public"])


def exercise_publisher() -> weights.SigningKeyPair:
    """The publisher key pair of exercise 09.5 (you play the publisher): fresh every run."""
    return weights.SigningKeyPair(*service_handles.run("09.5").public["publisher"])


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
    where="class",
)
def _seal(answer):
    path = Path(answer)
    if not path.is_file():
        return False, f"answer the path of the sealed file; there is no file {str(path)!r}."
    return service_handles.answer_run("09.5", path.read_bytes())


# --- concept questions (kind "quiz"; the answers are the challenge service's, see quiz.py) ---
# part 1

quiz(
    "09.6",
    "A design encrypts each 2 MiB chunk of a tensor under one key with a random nonce stored "
    "beside it, and leaves the associated data empty. An attacker reorders the chunks, each with "
    "its nonce and tag. What happens on load?",
    [
        "It loads, with the tensor's chunks in the new order.",
        "A tag fails: each tag covers its chunk's position.",
        "Decryption fails: the nonces no longer match the order.",
        "It loads unchanged: the chunks are sorted by nonce.",
    ],
    hint=("What does a GCM tag cover when the associated data is empty?",
          "Each chunk moves with its own nonce and tag: does any check still read where the chunk "
          "sits? Compare the lab's container, whose nonces are base XOR i and whose associated "
          "data holds the chunk index."),
    where="class",
)

quiz(
    "09.7",
    "A loader verifies a file's header signature under the public key that the header itself "
    "carries. What can an outsider who knows a device's HPKE public key do?",
    [
        "Nothing: HPKE needs the publisher's private key to seal.",
        "Only replay an older signed file.",
        "Read the publisher's models sealed for that device.",
        "Seal and sign a model of his own: it loads.",
    ],
    hint=("What does the outsider need to seal a file for the device: any secret, or only public "
          "keys?",
          "Which key does this loader trust, and who chose it?"),
    where="class",
)

quiz(
    "09.8",
    "The container draws a fresh random DEK for every tensor. Would a fixed all-zero nonce for "
    "each tensor's first chunk then be safe?",
    [
        "No: equal nonces leak the XOR of two tensors.",
        "Yes: each (DEK, nonce) pair occurs only once.",
        "No: then every tensor would share GHASH's key H.",
        "Only if the tensors differ in length.",
    ],
    hint=("Nonce reuse is about a repeated (key, nonce) pair.",
          "With different keys, are the keystreams related? How is H computed from the key?"),
    where="class",
)
# part 2

quiz(
    "09.9",
    "A model is kept in a TDE database on disk-encrypted hosts and served over TLS. Who can read "
    "it there, but not under per-device end-to-end encryption?",
    [
        "The user's own device, which opens it.",
        "An eavesdropper on the network path.",
        "The database admin running queries.",
        "A thief of the powered-off server disk.",
    ],
    hint=("Read the table's columns: where is the model in plaintext for each party?",
          "TLS, disk encryption and TDE decrypt for whoever runs the endpoint, the machine or the "
          "database: which party is one of those?"),
    where="class",
)

quiz(
    "09.10",
    "A tablet is revoked: the publisher rotates the content key and re-encrypts (reencrypt=True). "
    "What can the tablet still read?",
    [
        "The copies it already had, not the new ones.",
        "Nothing: its old files stop opening too.",
        "Everything: its HPKE key is valid.",
        "Only the plaintext tensors of new files.",
    ],
    hint=("What changes in the files the tablet already has?",
          "Revocation changes the publisher's future files: which of the tablet's snapshots still "
          "open?"),
    where="class",
)

quiz(
    "09.11",
    "A container leaves BatchNorm biases in plaintext and lists no digest of them in the signed "
    "header. An attacker adds 5 to one bias. What happens on load?",
    [
        "The header signature check fails.",
        "The layer's GCM tag fails to verify.",
        "safetensors refuses the edited file.",
        "It loads; the model's outputs change.",
    ],
    hint=("Which checks cover a plaintext tensor in this design?",
          "The signature covers the header and the tags cover the ciphertexts: is the edited bias "
          "in either?"),
    where="class",
)

quiz(
    "09.12",
    "A naive loader finds one tensor's tag wrong, skips it and loads the rest with strict=False. "
    "What does the skipped layer run with?",
    [
        "Zeros, so the layer is harmlessly skipped.",
        "The values the model was built with.",
        "The ciphertext bytes read as floats.",
        "The weights of the previous version.",
    ],
    hint=("Run the naive loader's model on the test set.",
          "What does a layer hold before load_state_dict writes into it?"),
    where="class",
)
