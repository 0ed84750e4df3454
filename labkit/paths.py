"""Where the lab's shipped data lives: the top-level ``data/`` folder of the clone.

The lab is used from a clone (``make lab`` installs it editable), so ``data/`` sits beside the
package, as the README's layout shows, and is found the same way from an editable install, from
``PYTHONPATH=.`` or from tests. ``LABKIT_DATA`` points at another copy (e.g. a read-only share).
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DATA_ENV", "data_path"]

DATA_ENV = "LABKIT_DATA"


def data_path(*parts: str) -> Path:
    """The path of ``data/<parts...>`` (raises FileNotFoundError if the data folder is missing)."""
    if not all(isinstance(p, str) for p in parts):
        raise TypeError("data_path takes path parts as strings")
    root = Path(os.environ.get(DATA_ENV) or Path(__file__).resolve().parent.parent / "data")
    if not root.is_dir():
        raise FileNotFoundError(f"the lab's data folder {root} is missing (set {DATA_ENV} to its location)")
    return root.joinpath(*parts)
