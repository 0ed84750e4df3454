"""Exercises of chapter 09 (encrypted model weights)."""
import torch
from Crypto.Hash import SHA256
from Crypto.Protocol.DH import import_x25519_private_key
from Crypto.Signature import eddsa

from labkit import weights
from labkit.exercises import exercise
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
    solution="math.ceil(1000 * 300 * 4 / 65536)  # 1,200,000 bytes -> 19 chunks",
)
def _chunks(answer):
    return int(answer) == len(chunk_spans(1000 * 300 * 4, 64 << 10))


@exercise(
    "09.2",
    "hex nonce of chunk 5 when the tensor's nonce base is 000102030405060708090a0b",
    hint="RFC 9180's rule: XOR the chunk index, as a 12-byte big-endian number, into the base.",
    solution="weights.chunk_nonce(bytes(range(12)), 5).hex()  # ...0a0e: only the last byte moves",
)
def _nonce(answer):
    return str(answer).lower().replace(" ", "") == weights.chunk_nonce(bytes(range(12)), 5).hex()


@exercise(
    "09.3",
    "recover the secret tensor of pitfalls.nonce_reuse_challenge(seed=0) without the key",
    hint="c1 XOR c2 = known XOR secret (same keystream); XOR in the known tensor's raw bytes and "
         "view the result as float32 of shape (4, 4).",
    solution=("known, c1, c2 = pitfalls.nonce_reuse_challenge(0)\n"
              "raw = bits.xor_bytes(bits.xor_bytes(c1, c2), known.numpy().tobytes())\n"
              "torch.frombuffer(bytearray(raw), dtype=torch.float32).reshape(4, 4)"),
)
def _reuse(answer):
    answer = torch.as_tensor(answer)
    return answer.shape == (4, 4) and torch.equal(answer.float(), pitfalls.challenge_secret(0))


@exercise(
    "09.4",
    "seal exercise_state() for exercise_device(), signed by exercise_publisher(), with only "
    "'fc.weight' encrypted; answer the path",
    hint="weights.seal(state, path, [device.public_key], signing_key=publisher, "
         "encrypt=['fc.weight'])",
    solution=("device, publisher = exercise_device(), exercise_publisher()\n"
              "weights.seal(exercise_state(), 'ex09.lkw', [device.public_key], "
              "signing_key=publisher, encrypt=['fc.weight'])\n'ex09.lkw'"),
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
