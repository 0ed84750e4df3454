"""Peak memory of each unit: run notebooks top to bottom in a fresh kernel and read its memory.

Usage: labkit-notebook-memory [notebooks/NN_name.ipynb ...] [--json FILE]

Each notebook runs with nbclient in its own new kernel (as a student pressing "Run all"), from
the notebooks folder. While it runs, a sampler reads the kernel process every 50 ms (psutil:
RSS, and USS/PSS, the memory that is the kernel's alone and its proportional share of pages
shared with other processes such as the other students' kernels); after the last cell the kernel
reports whether it imported torch. The table lists per unit: peak RSS, peak USS, the cell at
which RSS peaked, run time, and torch; the last line names the unit that peaks. ``--cells`` adds
each code cell's own peak RSS and PSS, which shows the step that lifts a unit's peak, and the RSS
the cell left behind (what it holds, against a passing spike).

The peak RSS is exact, not sampled: on Linux the kernel keeps each process's high-water mark
(``VmHWM`` in ``/proc/PID/status``, what ``ru_maxrss`` reports), and writing ``5`` to
``/proc/PID/clear_refs`` (Linux 4.0+, proc(5)) resets it to the current RSS. The tool resets it
before each cell and reads it after, so each cell's peak RSS is its own, however short the spike
(a 50 ms sampler missed 20 MiB of notebook 06's peak), and the unit's peak is the largest of them.
Where the reset is not allowed, the sampled maxima stand in for the cells and ``ru_maxrss`` for the
unit. PSS and USS have no high-water mark: they are always the sampled maxima. Without arguments:
every unit in course order (``labkit.course.notebook_paths``). The load test (``deploy/loadtest.py``) measures the
same kernels under a class's load, with the server beside them.
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient

from labkit.course import notebook_paths

ROOT = Path(__file__).resolve().parent.parent
PROBE = ("import resource as _r, sys as _s\n"
         "print('MEMORY-PROBE', _r.getrusage(_r.RUSAGE_SELF).ru_maxrss, 'torch' in _s.modules)")


def high_water_mark(pid: int) -> int | None:
    """The process's peak RSS in bytes since it started or since :func:`reset_high_water_mark`
    (``VmHWM`` of ``/proc/PID/status``), or None where there is no such file (not Linux)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        return None
    return None


def reset_high_water_mark(pid: int) -> bool:
    """Set the process's peak RSS back to its current RSS (``echo 5 > /proc/PID/clear_refs``);
    False where that is not allowed (not Linux, before 4.0, or another user's process)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return high_water_mark(pid) is not None


class Sampler(threading.Thread):
    """Reads a process's RSS, USS and PSS every ``interval`` seconds and keeps the maxima."""

    def __init__(self, pid: int, interval: float = 0.05):
        super().__init__(daemon=True)
        self.process, self.interval = psutil.Process(pid), interval
        self.peak = {"rss": 0, "uss": 0, "pss": 0}
        self.cell_peak = {"rss": 0, "pss": 0}  # maxima since the last ``cell_done()``
        self.cell = 0  # how many cells are done: a reading begun in one cell never counts for the next
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def cell_done(self) -> dict:
        """The RSS and PSS peaks (MiB) seen since the previous call, the RSS now (``held_mib``: what
        the cell left resident), and a fresh start for the next cell."""
        held = None
        with self.lock:
            try:  # one last reading: a cell shorter than the interval is measured too
                info = self.process.memory_full_info()
                held = round(info.rss / 2**20, 1)
                for name in self.cell_peak:
                    self.cell_peak[name] = max(self.cell_peak[name], getattr(info, name))
                for name in self.peak:
                    self.peak[name] = max(self.peak[name], getattr(info, name))
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
            peaks = {f"{name}_mib": round(value / 2**20, 1) for name, value in self.cell_peak.items()}
            peaks["held_mib"] = held
            self.cell_peak = {name: 0 for name in self.cell_peak}
            self.cell += 1
        return peaks

    def run(self) -> None:
        while not self.stop.is_set():
            with self.lock:
                cell = self.cell
            try:
                info = self.process.memory_full_info()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                return
            with self.lock:
                for name in self.peak:
                    self.peak[name] = max(self.peak[name], getattr(info, name))
                for name in self.cell_peak if cell == self.cell else ():
                    self.cell_peak[name] = max(self.cell_peak[name], getattr(info, name))
            self.stop.wait(self.interval)


def measure(path: Path, timeout: int = 600) -> dict:
    """Run ``path`` top to bottom in a new kernel; its peak memory, peak cell and run time."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    cells = []
    with client.setup_kernel():
        pid = client.km.provisioner.process.pid
        sampler = Sampler(pid)
        sampler.start()
        exact_peak = high_water_mark(pid)  # the kernel's start
        try:
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                sampler.cell_done()  # what ran before this cell is not its peak
                if exact_peak is not None:
                    exact_peak = max(exact_peak, high_water_mark(pid) or 0)  # between cells
                    if not reset_high_water_mark(pid):
                        exact_peak = None
                begun = time.perf_counter()
                client.execute_cell(cell, index)
                row = {"cell": index, "seconds": round(time.perf_counter() - begun, 2), **sampler.cell_done()}
                if exact_peak is not None:
                    hwm = high_water_mark(pid)
                    row["rss_mib"] = round(hwm / 2**20, 1)
                    exact_peak = max(exact_peak, hwm)
                cells.append(row)
            probe = nbformat.v4.new_code_cell(PROBE)
            nb.cells.append(probe)  # (the notebook is read here and never written back)
            client.execute_cell(probe, len(nb.cells) - 1)
        finally:
            sampler.stop.set()
            sampler.join()
    text = "".join(o.get("text", "") for o in probe.outputs if o.get("output_type") == "stream")
    maxrss_kib, torch_loaded = text.split("MEMORY-PROBE", 1)[1].split()
    # after a reset ru_maxrss no longer covers the earlier cells: then the cells' own peaks count
    peak_rss = exact_peak if exact_peak is not None else int(maxrss_kib) * 1024
    peak_cell = max(cells, key=lambda c: c["rss_mib"])["cell"] if cells else None
    return {"notebook": path.name, "seconds": round(time.perf_counter() - start, 1),
            "peak_rss_mib": round(peak_rss / 2**20, 1),
            "peak_uss_mib": round(sampler.peak["uss"] / 2**20, 1),
            "peak_pss_mib": round(sampler.peak["pss"] / 2**20, 1),
            "peak_cell": peak_cell, "exact": exact_peak is not None, "torch": torch_loaded == "True",
            "cells": cells}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="labkit-notebook-memory", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--json", type=Path, help="also write the rows as JSON to this file")
    parser.add_argument("--cells", action="store_true", help="also print each code cell's peak RSS and PSS")
    args = parser.parse_args(argv)
    paths = args.notebooks or list(notebook_paths(ROOT / "notebooks"))
    print(f"{'unit':34} {'peak RSS':>9} {'peak USS':>9} {'peak PSS':>9} {'peak cell':>9} {'time':>7}  torch",
          flush=True)
    rows = []
    for path in paths:
        r = measure(Path(path).resolve())
        rows.append(r)
        print(f"{r['notebook']:34} {r['peak_rss_mib']:6.1f} MiB {r['peak_uss_mib']:5.1f} MiB {r['peak_pss_mib']:5.1f} MiB "
              f"{str(r['peak_cell']):>9} {r['seconds']:6.1f}s  {'yes' if r['torch'] else 'no'}", flush=True)
        if args.cells:
            for c in r["cells"]:
                print(f"    cell {c['cell']:3d}: peak RSS {c['rss_mib']:6.1f} MiB, PSS {c['pss_mib']:6.1f} MiB, "
                      f"RSS after {c['held_mib'] or 0:6.1f} MiB, {c['seconds']:6.2f} s", flush=True)
            if not r["exact"]:
                print("    (peak RSS per cell sampled every 50 ms: the high-water mark could not be reset)")
    top = max(rows, key=lambda r: r["peak_rss_mib"])
    print(f"peak unit: {top['notebook']} ({top['peak_rss_mib']:.1f} MiB RSS, {top['peak_uss_mib']:.1f} MiB USS)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
