"""AES-256-GCM with and without AES-NI/CLMUL against ChaCha20-Poly1305 (unit 04b), same run.

pycryptodome's AES-GCM uses AES-NI and PCLMULQDQ when the CPU has them; ``use_aesni=False,
use_clmul=False`` runs its portable table-based code, what a CPU without those instructions gets.
ChaCha20-Poly1305 needs neither. OpenSSL (through ``cryptography``) is printed beside them as a
second reference. Figures are ratios to pycryptodome's AES-GCM with hardware support.

Usage: python benchmarks/bench_aead.py [--mib N]
"""
from __future__ import annotations

import argparse
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from labkit import gcm_pitfalls
from labkit.timing import best_time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=16, help="message size in MiB (16)")
    size = parser.parse_args().mib << 20
    print(f"load average {os.getloadavg()[0]:.1f}; CPU features: {gcm_pitfalls.cpu_has_aes_instructions()}")
    speeds = gcm_pitfalls.aead_throughput(size, repeats=5)
    key, nonce, data = bytes(32), bytes(12), bytes(size)
    for name, engine in (("OpenSSL AES-256-GCM", AESGCM(key)), ("OpenSSL ChaCha20-Poly1305", ChaCha20Poly1305(key))):
        speeds[name] = size / best_time(lambda: engine.encrypt(nonce, data, b""), 5) / 1e6
    reference = speeds["AES-256-GCM"]
    print(f"{'AEAD (' + str(size >> 20) + ' MiB)':36s} {'MB/s':>8s} {'vs AES-GCM':>11s}")
    for name, speed in speeds.items():
        print(f"{name:36s} {speed:8.0f} {speed / reference:10.2f}x")


if __name__ == "__main__":
    main()
