"""AES-256-GCM (NIST SP 800-38D) for the container: two interchangeable engines for the bulk
of the data, which process a chunk in cache-sized pieces, and the wrapping of each tensor's DEK
under the content key. The file format is identical with either engine; only the speed differs
(``benchmarks/bench_weights.py``). Both libraries are hard dependencies of the lab, so there is
no fallback: DEKs are wrapped one way, with ``cryptography``'s ``AESGCM`` (OpenSSL).

Threads: pycryptodome's AES releases the GIL, OpenSSL's (package ``cryptography``) holds it;
see :func:`backend` for why two threads still pay with OpenSSL.
"""
from __future__ import annotations

from typing import Callable

from Crypto.Cipher import AES
from Crypto.Random import get_random_bytes

from labkit.weights.encoding import NONCE_BYTES, dek_aad
from labkit.weights.errors import IntegrityError

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["aead_backends"]

PIECE = 256 << 10  # process a chunk in pieces that stay in the L2 cache between copy and AES


def pieces(n: int):
    """``(a, b)`` spans of at most :data:`PIECE` bytes (multiples of 16 but the last) over n."""
    return [(a, min(a + PIECE, n)) for a in range(0, n, PIECE)]


class _Engine:
    """What both engines share: a whole chunk decrypted through the engine's ``decryptor``."""

    @classmethod
    def decrypt_into(cls, key: bytes, nonce: bytes, aad: bytes, src, dst, tag: bytes) -> bool:
        """Decrypt ``src`` into ``dst`` (separate memory) piece by piece; True if the tag
        verifies."""
        update, finish = cls.decryptor(key, nonce, aad, tag)
        update(src, dst)
        return finish()


class PycryptodomeGCM(_Engine):
    """AES-256-GCM through pycryptodome (the lab's reference library)."""

    name = "pycryptodome"
    holds_gil = False  # its AES calls release the GIL: threads run AES side by side

    @staticmethod
    def encrypt_into(key: bytes, nonce: bytes, aad: bytes, src, dst,
                     emit: Callable[[int, memoryview], None] | None = None) -> bytes:
        """Encrypt ``src`` piece by piece and return the tag. Without ``emit`` the ciphertext
        goes to ``dst``; with it, ``dst`` (at least :data:`PIECE` + 16 bytes) is a reused
        buffer: pieces fill it and ``emit(a, ciphertext)`` receives each full buffer (and the
        last), the ciphertext of bytes ``a:a + len(ciphertext)`` of ``src``."""
        cipher = AES.new(key, AES.MODE_GCM, nonce=nonce)
        cipher.update(aad)
        _encrypt_pieces(lambda piece, out: cipher.encrypt(piece, output=out[: len(piece)]),
                        src, dst, emit)
        return cipher.digest()

    @staticmethod
    def decryptor(key: bytes, nonce: bytes, aad: bytes, tag: bytes):
        """``(update, finish)``: ``update(src, dst)`` decrypts ``src`` piece by piece into
        ``dst`` (separate memory, at least as long); ``finish()`` is True if the tag verifies."""
        cipher = AES.new(key, AES.MODE_GCM, nonce=nonce)
        cipher.update(aad)

        def update(src, dst) -> None:
            for a, b in pieces(len(src)):
                cipher.decrypt(src[a:b], output=dst[a:b])

        def finish() -> bool:
            try:
                cipher.verify(tag)
            except ValueError:
                return False
            return True

        return update, finish



class OpenSSLGCM(_Engine):
    """The same AES-256-GCM through ``cryptography`` (OpenSSL, AES-NI/VAES assembly)."""

    name = "cryptography"
    holds_gil = True  # one thread at a time runs AES; a second can only overlap system calls

    @staticmethod
    def encrypt_into(key: bytes, nonce: bytes, aad: bytes, src, dst,
                     emit: Callable[[int, memoryview], None] | None = None) -> bytes:
        """As :meth:`PycryptodomeGCM.encrypt_into` (``dst`` needs 15 spare bytes)."""
        enc = Cipher(algorithms.AES(key), modes.GCM(nonce)).encryptor()
        enc.authenticate_additional_data(aad)
        # update_into wants 15 spare bytes after the output; GCM writes exactly len(piece)
        _encrypt_pieces(lambda piece, out: enc.update_into(piece, out[: len(piece) + 15]),
                        src, dst, emit)
        enc.finalize()
        return enc.tag

    @staticmethod
    def decryptor(key: bytes, nonce: bytes, aad: bytes, tag: bytes):
        """As :meth:`PycryptodomeGCM.decryptor`, straight into ``dst`` (no new bytes). Since
        ``cryptography`` 51, ``update_into`` refuses overlapping buffers, in place included."""
        dec = Cipher(algorithms.AES(key), modes.GCM(nonce, tag)).decryptor()
        dec.authenticate_additional_data(aad)

        def update(src, dst) -> None:
            for a, b in pieces(len(src)):
                if len(dst) >= b + 15:  # update_into wants 15 spare bytes; GCM writes b - a
                    dec.update_into(src[a:b], dst[a : b + 15])
                else:  # no spare bytes after dst (the file's last piece): go through a copy
                    tmp = bytearray(b - a + 15)
                    dec.update_into(src[a:b], tmp)
                    dst[a:b] = memoryview(tmp)[: b - a]

        def finish() -> bool:
            try:
                dec.finalize()
            except InvalidTag:
                return False
            return True

        return update, finish



def _encrypt_pieces(update: Callable[[memoryview, memoryview], object], src, dst,
                    emit: Callable[[int, memoryview], None] | None) -> None:
    """Run ``update(piece, out)`` over the pieces of ``src``: ``out`` is ``dst`` at the piece's
    place, or with ``emit`` the free part of the reused buffer ``dst``, handed to ``emit`` when
    the next piece would not fit (one write per buffer, not per piece) and at the end."""
    src, dst = memoryview(src).cast("B"), memoryview(dst).cast("B")
    start = fill = 0
    for a, b in pieces(len(src)):
        if emit is None:
            update(src[a:b], dst[a:])
            continue
        if fill and fill + (b - a) + 16 > len(dst):
            emit(start, dst[:fill])
            start, fill = a, 0
        update(src[a:b], dst[fill:])
        fill += b - a
    if emit is not None and fill:
        emit(start, dst[:fill])


def decrypt_read(engine, key: bytes, nonce: bytes, aad: bytes, tag: bytes, n: int,
                 read: Callable[[memoryview, int], None], buffer, dst) -> bool:
    """Decrypt ``n`` bytes of ciphertext into ``dst``: ``read(view, offset)`` fills ``buffer``
    (reused, any size) with the ciphertext from ``offset`` on, and the engine decrypts it from
    there, so memory beyond ``dst`` stays one buffer however large the chunk. True if the tag
    verifies (only then may the plaintext in ``dst`` be used)."""
    update, finish = engine.decryptor(key, nonce, aad, tag)
    buffer = memoryview(buffer).cast("B")
    for a in range(0, n, len(buffer)):
        piece = buffer[: min(len(buffer), n - a)]
        read(piece, a)
        update(piece, dst[a:])
    return finish()


def aead_backends() -> list[str]:
    """Names of the AES-256-GCM engines available here (the file format is the same for all)."""
    return ["pycryptodome", "cryptography"]


def backend(name: str | None):
    """``None`` picks the fastest: OpenSSL (package ``cryptography``).

    Measured on the lab's 2-core AVX-512/VAES machine (cryptography 48 with OpenSSL 4.0,
    pycryptodome 4.4), one core, 256 KiB pieces: OpenSSL ~14 GB/s when the input is in cache
    and ~6.5 GB/s streaming it from memory, pycryptodome ~1.6-2.3 GB/s either way (3-9x).
    OpenSSL's calls hold the GIL (a second thread adds no AES throughput) while pycryptodome's
    release it; with OpenSSL the second thread earns its keep by running the kernel's share
    meanwhile (page faults, copies into the page cache), which is most of the time of
    :func:`~labkit.weights.seal` and :func:`~labkit.weights.open`."""
    if name is None or name == "cryptography":
        return OpenSSLGCM
    if name == "pycryptodome":
        return PycryptodomeGCM
    raise ValueError(f"backend must be 'pycryptodome' or 'cryptography', got {name!r}")


# One DEK is wrapped per tensor, so a model with hundreds of tensors makes hundreds of these
# calls: OpenSSL's AESGCM object costs ~2 us to set up, a pycryptodome GCM object ~58 us (it
# precomputes its GHASH table), ~7 ms per 128 tensors, ~4% of sealing or opening 512 MiB.
def wrap_dek(content_key: bytes, dek: bytes, model_id: str, name: str) -> str:
    """``nonce || AES-256-GCM(content_key, dek)`` (60 bytes) in hex, as the manifest spells it,
    bound to the model and tensor name by the associated data."""
    nonce = get_random_bytes(NONCE_BYTES)
    return (nonce + AESGCM(content_key).encrypt(nonce, dek, dek_aad(model_id, name))).hex()


def unwrap_dek(content_key: bytes, wrapped: bytes | str, model_id: str, name: str) -> bytes:
    """Inverse of :func:`wrap_dek` (``wrapped`` as bytes, as a parsed manifest holds it, or in
    hex); :class:`IntegrityError` if it does not authenticate."""
    try:
        blob = bytes.fromhex(wrapped) if isinstance(wrapped, str) else bytes(wrapped)
        return AESGCM(content_key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:],
                                           dek_aad(model_id, name))
    except (ValueError, InvalidTag):
        raise IntegrityError(f"wrapped DEK of {name!r} fails authentication") from None
