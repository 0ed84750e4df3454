"""Time from starting a Jupyter server to a ready one, and its memory then.

Usage: labkit-server-start [--repeat 3] [--disable EXTENSION ...] [--app server|singleuser]

Starts ``jupyter server`` (or ``jupyterhub-singleuser``'s server app without a hub:
``jupyter server`` with the same extensions is what it runs) on a free loopback port in a
temporary home, polls ``/api/status`` until it answers, and prints the seconds to that point, the
server's RSS and USS then, and the time each server extension took to load (from the server's
own log). ``--disable NAME`` turns an extension off for the run (``ServerApp.jpserver_extensions``
in the run's user config), and ``--block MODULE`` makes a module unimportable (a stand-in that
raises ImportError, first on the path), to measure what they cost. Measured here: jsonschema's
optional ``rfc3987_syntax`` (installed by ``jsonschema[format-nongpl]``, which jupyter-events asks
for) builds three Earley parsers from its grammar when imported, 6.3 s on this loaded machine,
and every server imports it through jupyter_events' schema validation. Three starts each, in
alternation, load average ~8 (2026-12-05): ready after 12.0, 12.4, 19.3 s with it blocked against
17.9, 20.5, 27.0 s with it, and 104 MiB RSS (85 MiB USS) against 120 MiB (101 MiB USS); again at
load average ~11: 7.06 and 7.14 s blocked against 25.66 and 19.06 s. So the image (``postBuild``)
and ``make``'s environment uninstall it. Every server is stopped at the end. The load test (``deploy/loadtest.py``) measures the same under a hub, with
twenty students starting at once.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_once(disabled: list[str], blocked: list[str] = (), timeout: float = 300.0) -> dict:
    """One server start: seconds to ready, RSS/USS when ready, per-extension load times."""
    home = Path(tempfile.mkdtemp(prefix="labkit-server-"))
    port, token = free_port(), secrets.token_hex(16)
    extensions = {name: False for name in disabled}
    cmd = [str(BIN / "jupyter"), "server", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
           f"--ServerApp.token={token}", f"--ServerApp.root_dir={home}", "--ServerApp.log_level=DEBUG"]
    if os.geteuid() == 0:  # (containers often run as root)
        cmd.append("--allow-root")
    config = home / ".jupyter"  # the user's config: it overrides the environment's extension list
    config.mkdir()
    (config / "jupyter_server_config.json").write_text(json.dumps({"ServerApp": {"jpserver_extensions": extensions}}))
    env = dict(os.environ, HOME=str(home), JUPYTER_RUNTIME_DIR=str(home / "runtime"), JUPYTER_CONFIG_DIR=str(config))
    if blocked:  # stand-ins that raise ImportError, first on the path: as if the package were not installed
        stubs = home / "blocked"
        stubs.mkdir()
        for name in blocked:
            (stubs / f"{name}.py").write_text(f"raise ImportError('{name} blocked by labkit-server-start')\n")
        env["PYTHONPATH"] = os.pathsep.join([str(stubs), *filter(None, [env.get("PYTHONPATH")])])
    log = home / "server.log"
    started = time.perf_counter()
    with open(log, "w") as out:
        server = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=home)
    try:
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"the server exited: {log.read_text()[-2000:]}")
            if time.perf_counter() - started > timeout:
                raise RuntimeError("the server did not become ready in time")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.05)
        ready = time.perf_counter() - started
        info = psutil.Process(server.pid).memory_full_info()
        text = log.read_text()
        loads = {m.group(1): float(m.group(2)) for m in re.finditer(r"Extension package (\S+) took ([\d.]+)s to import", text)}
        return {"ready_s": ready, "rss_mib": info.rss / 2**20, "uss_mib": info.uss / 2**20, "imports_s": loads}
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(home, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="labkit-server-start", description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--disable", action="append", default=[], help="a server extension to turn off")
    parser.add_argument("--block", action="append", default=[],
                        help="a top-level module the server must not import (as if not installed)")
    args = parser.parse_args(argv)
    runs = [start_once(args.disable, args.block) for _ in range(args.repeat)]
    print(f"load average {os.getloadavg()[0]:.1f}; disabled: {', '.join(args.disable) or 'none'}; "
          f"blocked: {', '.join(args.block) or 'none'}")
    for r in runs:
        slow = sorted(r["imports_s"].items(), key=lambda kv: -kv[1])[:4]
        print(f"  ready after {r['ready_s']:6.2f} s, RSS {r['rss_mib']:6.1f} MiB, USS {r['uss_mib']:6.1f} MiB; "
              f"slowest extension imports: " + ", ".join(f"{k} {v:.2f} s" for k, v in slow))
    best = min(runs, key=lambda r: r["ready_s"])
    print(f"best: ready after {best['ready_s']:.2f} s, RSS {best['rss_mib']:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
