"""The module returned by the cipher builders: a ReLU network that also speaks bytes."""
from __future__ import annotations

import numpy as np
import torch

from labkit import checks
from labkit.neural.layers import ReluNetwork

__all__ = ["CipherNetwork"]


class CipherNetwork(ReluNetwork):
    """A block cipher as a ReLU network with the key in its weights.

    ``net(x)`` maps an (n, block_bits) tensor of plaintext bits (FIPS order, MSB first; any real
    values accepted) to (n, block_bits) outputs, which are the ciphertext bits when x is binary.
    Attributes: ``cipher``, ``variant``, ``c``, ``clip_inputs``, ``dtype``, ``block_bits``.
    """

    def __init__(self, layers, *, cipher: str, variant: str, clip_inputs: bool, **kwargs):
        super().__init__(layers, **kwargs)
        self.cipher, self.variant, self.clip_inputs = cipher, variant, bool(clip_inputs)

    @property
    def block_bits(self) -> int:
        return self.n_inputs

    def encrypt_blocks(self, blocks) -> np.ndarray:
        """Encrypt an (n, block_bytes) uint8 array (or bytes of whole blocks) through the network."""
        data = np.frombuffer(bytes(blocks), dtype=np.uint8) if isinstance(blocks, (bytes, bytearray)) else np.asarray(blocks)
        nbytes = self.block_bits // 8
        if data.dtype != np.uint8 or data.size % nbytes:
            raise ValueError(f"expected uint8 data made of {nbytes}-byte blocks")
        x = np.unpackbits(data.reshape(-1, nbytes), axis=1)
        y = self(torch.from_numpy(x).to(self.dtype))
        out = y.round().clamp(0, 1).to(torch.uint8).numpy()  # reading bits off the outputs, outside the network
        return np.packbits(out, axis=1)

    def encrypt(self, block: bytes) -> bytes:
        """One block, bytes in and bytes out (through the network)."""
        block = checks.check_bytes(block, self.block_bits // 8, what=f"{self.cipher} block")
        return self.encrypt_blocks(np.frombuffer(block, dtype=np.uint8)[None]).tobytes()

    def extra_repr(self) -> str:
        return (f"{self.cipher} ({self.variant}): {self.n_relu_layers} ReLU layers, {self.n_neurons} neurons, "
                f"c={self.c}, clip_inputs={self.clip_inputs}, dtype={self.dtype}")
