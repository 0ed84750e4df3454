"""labkit: the helper package of the Deep Neural Crypto Lab.

Every notebook imports it; each chapter has its module(s), built on shared foundations:

- ``bits``, ``gf2``, ``gf256``, ``gf128``: bit conversions (MSB first, FIPS order) and the finite fields;
- ``feistel``, ``des``, ``aes``, ``sbox``, ``modes``, ``gcm``: ciphers written to be read;
- ``circuits``, ``neural``, ``attacks``: ciphers as ReLU networks, their break and their defence;
- ``backdoor``: signature-triggered backdoors and watermark protocols;
- ``weights``: encrypted model containers;
- ``widgets``, ``exercises``: interactive views and exercise checks.

Modules are imported on demand (``from labkit import des``), so importing labkit stays cheap.
:func:`data_path` finds what the lab ships as data (``data/``: vectors, result tables).
"""
from labkit.paths import data_path

__version__ = "0.1.0"
__all__ = ["data_path"]
