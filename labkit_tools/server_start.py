"""Time from starting a student's Jupyter server to a ready one, its CPU and its memory.

Usage: labkit-server-start [--repeat 3] [--app singleuser|server] [--role student|instructor]
                           [--config-path DIR | --no-lab-config] [--disable EXTENSION ...]
                           [--block MODULE ...] [--profile FILE] [--importtime N] [--together N]
       labkit-server-start --check-bytecode [--compile]

``--app singleuser`` (the default) starts ``jupyterhub-singleuser`` the way a hub's spawner does:
the environment ``Spawner.get_env`` gives a server (``JUPYTERHUB_API_URL``, its API token, the
OAuth scopes, the service prefix ``/user/<name>/``, ...), plus what both of the lab's hubs add
(``JUPYTER_CONFIG_PATH`` = ``deploy/jupyter``, an nbgrader exchange, strict config errors, and
``LAB_INSTRUCTOR=1`` for ``--role instructor``). A stand-in hub API in this process answers what
the server asks of a hub at start and per request: the version check (``GET /hub/api/``), the
activity reports, and ``GET /hub/api/user`` for the browser's token. ``--app server`` starts a
plain ``jupyter server`` with every installed extension instead (no hub, no lab configuration).

For each start it prints the wall time until ``/api/status`` answers 200 (when the hub's
``wait_for_http_server`` would see it), the server's CPU seconds then (user + system, from
``/proc``), its CPU seconds and wall time once JupyterLab's first page and the first API calls
the page makes are served (``/lab``, ``/lab/api/settings``, ``/api/kernelspecs``,
``/lab/api/translations``, ``/api/contents``, and ``/lab/api/build`` when the page asks for a build
check), RSS and USS then, and the extensions it loaded.

``--together N`` starts N servers at the same moment, each asked for its first page as soon as it
is ready (a class logging in at once, without the hub's own CPU), and prints the time to ready and
to the first page (p50, p95, max) and the CPU-seconds they used.

``--profile FILE`` runs the server under cProfile (the start, the first page, the shutdown) and
prints the functions with the most cumulative time; ``--importtime N`` runs it with
``python -X importtime`` and prints the N imports with the most cumulative time.
``--disable NAME`` turns an extension off for the run (user config), ``--block MODULE`` makes a
module unimportable (a stand-in that raises ImportError, first on the path).
``--check-bytecode`` starts one server with ``-X importtime``, and lists every module it imported
whose cached byte-code (``__pycache__/*.pyc``) is missing or stale: a student's server cannot
write into a read-only environment, so it would compile those modules again at every start;
``--compile`` then writes them (``postBuild`` runs it when it builds the image).

Measured here: jsonschema's optional ``rfc3987_syntax`` (installed by
``jsonschema[format-nongpl]``, which jupyter-events asks for) builds three Earley parsers from its
grammar when imported, 6.3 s on a loaded machine, so the image (``postBuild``) and ``make``'s
environment uninstall it (ready after 7.1 s blocked against 19.1-25.7 s with it, at load average
~11). What the lab's server configuration (``deploy/jupyter/jupyter_server_config.py``) turns off
for students, and what that saves, is in its docstring and in deploy/README.md ("Time to a ready
server"). Every server and the stand-in hub are stopped at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import pstats
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent
LAB_CONFIG = ROOT / "deploy" / "jupyter"
USER = "student"
# what JupyterLab's first page asks for before a student sees a notebook (the brief list of its start)
FIRST_PAGE = ("lab", "lab/api/settings", "api/kernelspecs", "lab/api/translations", "api/contents")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class StandInHub:
    """The part of JupyterHub's REST API a single-user server calls, on a loopback port.

    ``GET /hub/api/`` answers the version check with the installed JupyterHub's version;
    ``GET /hub/api/user`` identifies ``user_token`` (the browser's) as the student with the scopes
    the spawner grants (any other token: 403); activity reports are accepted and counted.
    """

    def __init__(self, name: str = USER):
        import jupyterhub

        self.name, self.version = name, jupyterhub.__version__
        self.server_token, self.user_token = secrets.token_hex(16), secrets.token_hex(16)
        self.scopes = [f"access:servers!server={name}/", f"access:servers!user={name}"]
        self.requests: list[str] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body: dict | None = None) -> None:
                data = json.dumps(body or {}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-JupyterHub-Version", hub.version)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):  # noqa: N802 (http.server's name)
                hub.requests.append(f"GET {self.path}")
                token = self.headers.get("Authorization", "").partition(" ")[2].strip()
                if self.path.rstrip("/") == "/hub/api":
                    self._answer(200, {"version": hub.version})
                elif self.path.startswith("/hub/api/user") and token == hub.user_token:
                    self._answer(200, {"kind": "user", "name": hub.name, "admin": False, "groups": [],
                                       "scopes": hub.scopes, "session_id": ""})
                else:
                    self._answer(403, {"message": "not a known token"})

            def do_POST(self):  # noqa: N802
                hub.requests.append(f"POST {self.path}")
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                ok = self.path == f"/hub/api/users/{hub.name}/activity"
                self._answer(200 if ok else 404)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.api_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hub/api"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def hub_environment(hub: StandInHub, port: int, home: Path, *, config_path: Path | None,
                    instructor: bool) -> dict[str, str]:
    """The environment a hub gives a student's server (JupyterHub 5's ``Spawner.get_env`` plus the lab's)."""
    prefix = f"/user/{hub.name}/"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("JUPYTER", "LAB_"))}
    env.update({
        "HOME": str(home), "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "JUPYTER_CONFIG_DIR": str(home / ".jupyter"),
        "JUPYTERHUB_API_TOKEN": hub.server_token, "JPY_API_TOKEN": hub.server_token,
        "JUPYTERHUB_CLIENT_ID": f"jupyterhub-user-{hub.name}", "JUPYTERHUB_HOST": "",
        "JUPYTERHUB_COOKIE_HOST_PREFIX_ENABLED": "False",
        "JUPYTERHUB_OAUTH_CALLBACK_URL": f"{prefix}oauth_callback",
        "JUPYTERHUB_OAUTH_SCOPES": json.dumps(hub.scopes), "JUPYTERHUB_OAUTH_ACCESS_SCOPES": json.dumps(hub.scopes),
        "JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES": "[]",
        "JUPYTERHUB_USER": hub.name, "JUPYTERHUB_SERVER_NAME": "", "JUPYTERHUB_API_URL": hub.api_url,
        "JUPYTERHUB_ACTIVITY_URL": f"{hub.api_url}/users/{hub.name}/activity", "JUPYTERHUB_BASE_URL": "/",
        "JUPYTERHUB_SERVICE_PREFIX": prefix, "JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{port}{prefix}",
        "JUPYTERHUB_PUBLIC_URL": "", "JUPYTERHUB_PUBLIC_HUB_URL": "",
        "JUPYTERHUB_DEFAULT_URL": "/lab/tree/lab/00_start_here.ipynb",
    })
    if config_path is not None:  # as deploy/jupyterhub_config.py and deploy/z2jh/config.yaml set it
        exchange = home / "exchange"
        exchange.mkdir(exist_ok=True)
        env.update({"JUPYTER_CONFIG_PATH": str(config_path), "LAB_EXCHANGE_ROOT": str(exchange),
                    "TRAITLETS_APPLICATION_RAISE_CONFIG_FILE_ERROR": "1",
                    "LAB_INSTRUCTOR": "1" if instructor else "0"})
    return env


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its children so far."""
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system + times.children_user + times.children_system


def fetch(url: str, token: str, timeout: float = 30) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status, response.read()


def first_page(base: str, token: str) -> dict[str, int]:
    """Serve what JupyterLab's first page asks for; the status of each request.

    After the page itself, the calls JupyterLab's start makes (FIRST_PAGE), and the build check
    (``/lab/api/build``, which runs Node.js twice on the server) when the page's configuration
    asks the browser to make it (``buildAvailable`` and ``buildCheck``), as JupyterLab does.
    """
    status, html = fetch(base + FIRST_PAGE[0], token)
    statuses = {FIRST_PAGE[0]: status}
    found = re.search(rb'<script id="jupyter-config-data" type="application/json">(.*?)</script>', html, re.S)
    config = json.loads(found.group(1)) if found else {}
    paths = list(FIRST_PAGE[1:])
    if str(config.get("buildAvailable")).lower() == "true" and str(config.get("buildCheck")).lower() == "true":
        paths.append("lab/api/build")
    for path in paths:
        statuses[path] = fetch(base + path, token)[0]
    return statuses


def start_once(disabled: list[str] = (), blocked: list[str] = (), *, app: str = "singleuser",
               config_path: Path | None = LAB_CONFIG, instructor: bool = False, profile: Path | None = None,
               importtime: bool = False, probe: tuple[str, ...] = (), poll: float = 0.02,
               timeout: float = 300.0) -> dict:
    """One server start: wall and CPU seconds to ready and to the first page served, RSS/USS, extensions.

    ``probe``: paths under the server's prefix requested after the measurements; their statuses
    are returned as ``"probed"`` (404 and other errors included).
    """
    home = Path(tempfile.mkdtemp(prefix="labkit-server-"))
    (home / ".jupyter").mkdir()
    (home / "lab").mkdir()
    port = free_port()
    hub = StandInHub() if app == "singleuser" else None
    if hub is not None:
        env = hub_environment(hub, port, home, config_path=config_path, instructor=instructor)
        token, base = hub.user_token, f"http://127.0.0.1:{port}/user/{hub.name}/"
        python = [sys.executable] + (["-X", "importtime"] if importtime else [])
        if profile is not None:
            python += ["-m", "cProfile", "-o", str(profile)]
        cmd = python + ["-m", "jupyterhub.singleuser"] if (profile or importtime) else [str(BIN / "jupyterhub-singleuser")]
    else:
        token, base = secrets.token_hex(16), f"http://127.0.0.1:{port}/"
        env = dict(os.environ, HOME=str(home), JUPYTER_RUNTIME_DIR=str(home / "runtime"),
                   JUPYTER_CONFIG_DIR=str(home / ".jupyter"))
        cmd = [str(BIN / "jupyter"), "server", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
               f"--ServerApp.token={token}", f"--ServerApp.root_dir={home}"]
    if os.geteuid() == 0:  # (containers often run as root)
        cmd.append("--ServerApp.allow_root=True")
    if disabled:  # the user's config: it overrides the environment's extension list
        (home / ".jupyter" / "jupyter_server_config.json").write_text(
            json.dumps({"ServerApp": {"jpserver_extensions": {name: False for name in disabled}}}))
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
                raise RuntimeError(f"the server exited: {log.read_text()[-3000:]}")
            if time.perf_counter() - started > timeout:
                raise RuntimeError("the server did not become ready in time")
            try:
                if fetch(base + "api/status", token, timeout=2)[0] == 200:
                    break
            except OSError:
                time.sleep(poll)
        ready, cpu_ready = time.perf_counter() - started, cpu_seconds(server.pid)
        statuses = first_page(base, token)
        page, cpu_page = time.perf_counter() - started, cpu_seconds(server.pid)
        info = psutil.Process(server.pid).memory_full_info()
        probed = {}
        for path in probe:
            try:
                probed[path] = fetch(base + path, token)[0]
            except urllib.error.HTTPError as err:
                probed[path] = err.code
        text = log.read_text()
        return {"ready_s": ready, "cpu_ready_s": cpu_ready, "page_s": page, "cpu_page_s": cpu_page,
                "statuses": statuses, "probed": probed, "rss_mib": info.rss / 2**20, "uss_mib": info.uss / 2**20,
                "extensions": sorted(set(re.findall(r"(\S+) \| extension was successfully loaded", text))),
                "hub_requests": list(hub.requests) if hub else [], "log": text}
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if hub is not None:
            hub.close()
        shutil.rmtree(home, ignore_errors=True)


def importtime_rows(log: str) -> list[tuple[int, int, str]]:
    """``(self_us, cumulative_us, module)`` from ``python -X importtime``'s lines in a log."""
    rows = []
    for line in log.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if match:
            rows.append((int(match.group(1)), int(match.group(2)), match.group(4)))
    return rows


def stale_bytecode(modules: list[str], python: str = sys.executable, env: dict | None = None) -> list[dict]:
    """The modules among ``modules`` whose source has no up-to-date cached byte-code to load.

    Runs in a child Python that never writes byte-code, and asks each module's spec where its
    ``.pyc`` would be (PEP 3147); a module counts as stale when that file is missing or its header
    (PEP 552: timestamp and size, or the source hash) does not match the source. Built-in and
    extension modules and namespace packages have no byte-code and are not listed. Each entry:
    ``{"name", "origin", "cached"}``.
    """
    probe = r"""
import importlib.util, json, os, sys
sys.dont_write_bytecode = True
stale = []
for name in json.load(sys.stdin):
    try:
        spec = importlib.util.find_spec(name)
    except Exception:
        continue
    if spec is None or not spec.has_location or not (spec.origin or "").endswith(".py") or not spec.cached:
        continue
    entry = {"name": name, "origin": spec.origin, "cached": spec.cached}
    try:
        with open(spec.cached, "rb") as f:
            head = f.read(16)
    except OSError:
        stale.append(entry)
        continue
    flags = int.from_bytes(head[4:8], "little")
    if head[:4] != importlib.util.MAGIC_NUMBER:
        stale.append(entry)
    elif flags & 1:  # hash-based byte-code (PEP 552)
        with open(spec.origin, "rb") as f:
            if head[8:16] != importlib.util.source_hash(f.read()):
                stale.append(entry)
    else:
        st = os.stat(spec.origin)
        if (int.from_bytes(head[8:12], "little") != int(st.st_mtime) & 0xFFFFFFFF
                or int.from_bytes(head[12:16], "little") != st.st_size & 0xFFFFFFFF):
            stale.append(entry)
print(json.dumps(stale))
"""
    done = subprocess.run([python, "-c", probe], input=json.dumps(modules), capture_output=True, text=True,
                          check=True, timeout=120, env=dict(env or os.environ, PYTHONDONTWRITEBYTECODE="1"))
    return json.loads(done.stdout)


def compile_bytecode(stale: list[dict]) -> None:
    """Write the byte-code of each stale module where Python looks for it (raises on a syntax error)."""
    import py_compile

    for entry in stale:
        py_compile.compile(entry["origin"], cfile=entry["cached"], doraise=True)


def start_together(n: int, **options) -> tuple[list[dict], float]:
    """``n`` servers started at the same moment, each with its own stand-in hub, as a class logging in
    at once; each is asked for JupyterLab's first page as soon as it is ready (a student's browser).
    Returns the runs and the wall time until the last first page was served."""
    from concurrent.futures import ThreadPoolExecutor

    began = time.perf_counter()
    with ThreadPoolExecutor(n) as pool:  # the hubs' probes: every 0.25 s (JupyterHub's first back-off steps)
        runs = list(pool.map(lambda _: start_once(poll=0.25, **options), range(n)))
    return runs, time.perf_counter() - began


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, -(-len(ordered) * q // 100) - 1)]


def report(runs: list[dict]) -> None:
    for r in runs:
        bad = {p: s for p, s in r["statuses"].items() if s != 200}
        print(f"  ready after {r['ready_s']:6.2f} s ({r['cpu_ready_s']:5.2f} CPU-s); first page served after "
              f"{r['page_s']:6.2f} s ({r['cpu_page_s']:5.2f} CPU-s); RSS {r['rss_mib']:6.1f} MiB, USS "
              f"{r['uss_mib']:6.1f} MiB" + (f"; not 200: {bad}" if bad else ""))
    best = min(runs, key=lambda r: r["cpu_page_s"])
    cpu = sorted(r["cpu_page_s"] for r in runs)
    print(f"median: ready {sorted(r['ready_s'] for r in runs)[len(runs) // 2]:.2f} s, "
          f"{sorted(r['cpu_ready_s'] for r in runs)[len(runs) // 2]:.2f} CPU-s; first page {cpu[len(cpu) // 2]:.2f} CPU-s; "
          f"RSS {sorted(r['rss_mib'] for r in runs)[len(runs) // 2]:.1f} MiB")
    print(f"first page: {', '.join('/' + path for path in best['statuses'])}")
    print(f"extensions loaded: {', '.join(best['extensions'])}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="labkit-server-start", description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--app", choices=("singleuser", "server"), default="singleuser")
    parser.add_argument("--role", choices=("student", "instructor"), default="student")
    parser.add_argument("--config-path", type=Path, default=LAB_CONFIG, help="the lab's JUPYTER_CONFIG_PATH")
    parser.add_argument("--no-lab-config", action="store_true", help="start without deploy/jupyter (before)")
    parser.add_argument("--disable", action="append", default=[], help="a server extension to turn off")
    parser.add_argument("--block", action="append", default=[],
                        help="a top-level module the server must not import (as if not installed)")
    parser.add_argument("--profile", type=Path, help="run the (first) server under cProfile, stats to FILE")
    parser.add_argument("--importtime", type=int, default=0, metavar="N", help="show the N slowest imports")
    parser.add_argument("--check-bytecode", action="store_true",
                        help="list the modules a server imports that have no up-to-date .pyc")
    parser.add_argument("--compile", action="store_true", help="with --check-bytecode: write the missing .pyc")
    parser.add_argument("--together", type=int, default=0, metavar="N",
                        help="start N servers at the same moment (a class logging in at once) and report "
                             "the time to ready and to the first page: p50, p95, max")
    args = parser.parse_args(argv)
    options = dict(app=args.app, config_path=None if args.no_lab_config else args.config_path,
                   instructor=args.role == "instructor")
    if args.check_bytecode:
        run = start_once(args.disable, args.block, importtime=True, **options)
        modules = [name for _, _, name in importtime_rows(run["log"])]
        stale = stale_bytecode(modules)
        print(f"{len(modules)} modules imported by the server; {len(stale)} without up-to-date byte-code"
              + (":\n  " + "\n  ".join(e["name"] for e in stale) if stale else ""))
        if stale and args.compile:
            compile_bytecode(stale)
            stale = stale_bytecode([e["name"] for e in stale])
            print(f"compiled; {len(stale)} still without byte-code")
        return 1 if stale else 0
    if args.together:
        runs, wall = start_together(args.together, disabled=args.disable, blocked=args.block, **options)
        cpu = sum(r["cpu_page_s"] for r in runs)
        print(f"{args.together} servers started together (load average {os.getloadavg()[0]:.1f}, "
              f"{os.cpu_count()} cores); config {options['config_path'] or 'none'}, role {args.role}")
        for key, what in (("ready_s", "time to ready"), ("page_s", "time to the first page")):
            values = [r[key] for r in runs]
            print(f"  {what}: p50 {percentile(values, 50):.2f} s, p95 {percentile(values, 95):.2f} s, "
                  f"max {max(values):.2f} s")
        print(f"  CPU-seconds of the servers until their first page: {cpu:.1f} in all, {cpu / len(runs):.2f} each "
              f"({cpu / (os.cpu_count() or 1):.1f} s of all cores); stopped after {wall:.1f} s")
        return 0
    runs = [start_once(args.disable, args.block, profile=args.profile if i == 0 else None,
                       importtime=bool(args.importtime) and i == 0, **options) for i in range(args.repeat)]
    print(f"load average {os.getloadavg()[0]:.1f}; app {args.app}, role {args.role}, config "
          f"{options['config_path'] or 'none'}; disabled: {', '.join(args.disable) or 'none'}; "
          f"blocked: {', '.join(args.block) or 'none'}")
    report(runs)
    if args.importtime:
        rows = sorted(importtime_rows(runs[0]["log"]), key=lambda row: -row[1])[:args.importtime]
        print("slowest imports (cumulative, self; under -X importtime, first run):")
        for self_us, cum_us, name in rows:
            print(f"  {cum_us / 1e6:6.3f} s  {self_us / 1e6:6.3f} s  {name}")
    if args.profile:
        print(f"cProfile of the first start (the start, the first page, the shutdown): {args.profile}")
        pstats.Stats(str(args.profile)).sort_stats("cumulative").print_stats(25)
    return 0


if __name__ == "__main__":
    sys.exit(main())
