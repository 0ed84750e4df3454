"""Execute notebooks in place and keep only the outputs nbval compares.

Usage: labkit-execute-notebooks [notebooks/NN_name.ipynb ...]   (default: every unit)

The lab runs nbval in lax mode: a cell's stored output is compared only when the cell's source
contains the marker ``# NBVAL_CHECK_OUTPUT``. This tool runs each notebook top to bottom in its
own folder, stores outputs of marked cells, clears every other output (so widget views, plotly
bundles and progress bars never bloat the repository), drops widget state from the metadata, and
reports how long each notebook took against the 60 s budget.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from labkit.course import notebook_paths

ROOT = Path(__file__).resolve().parent.parent

MARK = "NBVAL_CHECK_OUTPUT"
BUDGET_S = 60.0


def coalesce_streams(outputs: list) -> list:
    """Consecutive writes to one stream as one output, without metadata: how the kernel happened
    to flush (a loaded machine flushes more often) never shows in the stored notebook."""
    merged = []
    for out in outputs:
        if out.get("output_type") == "stream":
            out.pop("metadata", None)
            if merged and merged[-1].get("output_type") == "stream" and merged[-1].name == out.name:
                merged[-1].text = "".join(merged[-1].text) + "".join(out.text)
                continue
            out.text = "".join(out.text)
        merged.append(out)
    return merged


def strip(nb: nbformat.NotebookNode) -> None:
    """Keep outputs only on marked cells and remove volatile metadata."""
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        if MARK in cell.source:
            cell.outputs = coalesce_streams(cell.outputs)
        else:
            cell.outputs = []
            cell.execution_count = None


def execute(path: Path) -> float:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                raise RuntimeError(f"{path.name}: cell raised {out.get('ename')}: {out.get('evalue')}")
    strip(nb)
    nbformat.write(nb, path)
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="labkit-execute-notebooks", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to execute (default: every unit)")
    args = parser.parse_args(argv)
    paths = args.notebooks or notebook_paths(ROOT / "notebooks")
    worst = 0.0
    for path in paths:
        elapsed = execute(path.resolve())
        worst = max(worst, elapsed)
        flag = "" if elapsed < BUDGET_S else f"  OVER the {BUDGET_S:.0f} s budget"
        print(f"{path.name}: {elapsed:5.1f} s{flag}")
    return 0 if worst < BUDGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
