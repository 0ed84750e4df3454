"""Install the lab's torch (the pinned version) in the build that fits this machine.

Usage: python deploy/install_torch.py [--variant auto|cpu|cuda] [--print]   (``make`` runs it)

PyPI's Linux wheel of torch carries CUDA: fifteen nvidia packages, a 5.7 GB environment where the
CPU build needs 2.0 GB. The lab runs on CPUs (its networks are small and exact), so on Linux
without an NVIDIA GPU this installs the CPU build from PyTorch's CPU wheel index
(https://pytorch.org/get-started/locally/, "Compute Platform: CPU"); elsewhere (macOS, Windows: the
default wheel is CPU-only there; Linux with a GPU) the default wheel. ``--variant cuda`` (``make
lab TORCH=cuda``) asks for the CUDA build explicitly.

The version is always ``TORCH_VERSION``. Nothing stalls: an installed torch of that version and
build is kept without asking any index; the CPU index is probed first with a short deadline
(``TORCH_PROBE_TIMEOUT``, default 5 s, name lookup included) and, when it does not answer, pip's
own configured index is used instead, with a note saying so. ``TORCH_INDEX_URL`` names another CPU
index (a mirror); set it empty to skip the CPU index.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

TORCH_VERSION = "2.13.0"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
VARIANTS = ("auto", "cpu", "cuda")


def has_nvidia_gpu() -> bool:
    """An NVIDIA driver on this machine (its kernel module, a device node, or nvidia-smi)."""
    return (Path("/proc/driver/nvidia/version").exists() or Path("/dev/nvidia0").exists()
            or shutil.which("nvidia-smi") is not None)


def resolve(variant: str, *, system: str | None = None, gpu: bool | None = None) -> str:
    """``cpu``, ``cuda`` or ``default`` (the index's own wheel) for the requested ``variant``."""
    if variant not in VARIANTS:
        raise ValueError(f"TORCH must be one of {', '.join(VARIANTS)}, got {variant!r}")
    system = platform.system() if system is None else system
    if variant == "auto":
        if system != "Linux":
            return "default"  # macOS and Windows wheels are CPU-only already
        return "cuda" if (has_nvidia_gpu() if gpu is None else gpu) else "cpu"
    return variant


def installed_build() -> str | None:
    """``cpu`` or ``cuda`` for an installed torch of TORCH_VERSION, ``None`` if none is installed."""
    try:
        dist = importlib.metadata.distribution("torch")
    except importlib.metadata.PackageNotFoundError:
        return None
    if dist.version.split("+")[0] != TORCH_VERSION:
        return None
    needs_nvidia = any(req.lower().startswith("nvidia-") for req in dist.requires or [])
    return "cuda" if needs_nvidia or "+cu" in dist.version else "cpu"


def reachable(url: str, timeout: float) -> bool:
    """Does ``url`` answer within ``timeout`` seconds? (In a thread: a stuck name lookup counts too.)"""
    answer = []

    def probe():
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout) as response:
                answer.append(response.status < 400)
        except Exception:
            answer.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(answer and answer[0])


def plan(variant: str, *, index: str = CPU_INDEX, timeout: float = 5.0) -> tuple[list[str] | None, str]:
    """The pip arguments to run (None: nothing to do) and a line saying why."""
    build, have = resolve(variant), installed_build()
    if have is not None and (build == "default" or build == have):
        return None, f"torch {TORCH_VERSION} ({have}) is installed"
    if build == "cuda":
        # `===` matches the plain version only: never the CPU build's 2.13.0+cpu again
        return (["install", "--force-reinstall", f"torch==={TORCH_VERSION}"],
                f"torch {TORCH_VERSION} with CUDA, as asked")
    if build == "cpu" and index:
        if reachable(index.rstrip("/") + "/torch/", timeout):
            return (["install", "--index-url", index, f"torch=={TORCH_VERSION}"],
                    f"torch {TORCH_VERSION}, CPU build, from {index}")
        return (["install", f"torch=={TORCH_VERSION}"],
                f"note: {index} did not answer within {timeout:g} s; torch {TORCH_VERSION} from pip's configured "
                "index instead (it may be the CUDA build: set TORCH_INDEX_URL to a CPU mirror)")
    return ["install", f"torch=={TORCH_VERSION}"], f"torch {TORCH_VERSION} from pip's configured index"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default=os.environ.get("TORCH") or "auto", help="auto (default), cpu or cuda")
    parser.add_argument("--print", action="store_true", help="print the pip command instead of running it")
    args = parser.parse_args(argv)
    try:
        pip_args, why = plan(args.variant, index=os.environ.get("TORCH_INDEX_URL", CPU_INDEX),
                             timeout=float(os.environ.get("TORCH_PROBE_TIMEOUT", "5")))
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"install_torch: {why}")
    if pip_args is None:
        return 0
    command = [sys.executable, "-m", "pip", "install", "--quiet", *pip_args[1:]]
    if args.print:
        print(" ".join(command))
        return 0
    return subprocess.run(command).returncode


if __name__ == "__main__":
    sys.exit(main())
