"""Load test: a real JupyterHub on loopback, N simulated students running chapter cells at once.

Usage: python deploy/loadtest.py [--students 20] [--notebook notebooks/02_des.ipynb ...] [--out DIR]
       python deploy/loadtest.py --no-kernels --students 150 [--duration 120]   (the hub alone)

It starts JupyterHub (configurable-http-proxy from npm, ``SimpleLocalProcessSpawner``, the dummy
authenticator) bound to 127.0.0.1 on free ports, with the lab's challenge service as a hub service
(``challenge_service_config.py``, as a class runs it), then for every student at the same moment:
logs in (a user and a token through the REST API, as a login form would), starts the student's
server, opens each notebook as a session and runs its code cells through the kernel's websocket
(the Jupyter messaging protocol, messages made by ``jupyter_client``'s ``Session``, as JupyterLab
does); every check of those notebooks goes to the service. Last, in the last notebook's kernel,
each student runs exercise 06.8 through the service (the worked attack of notebook 06b, taken from
it, through ``labkit.exercises``' handles), each query batch timed as the kernel sees it. A sampler
reads every process the hub started for the peak memory of each kernel and server (RSS, PSS and
USS, from ``/proc/PID/smaps_rollup``) and the CPU and memory of the hub, the proxy and the challenge
service.

The report (printed, and written as ``loadtest-<time>.json`` and ``.md`` in ``--out``, earlier runs
kept; a run where every student finished also becomes ``loadtest.json``/``.md``, which the capacity
table reads) gives how many students finished, time to a ready server and to the last cell (p50,
p95, max), peak memory per student in MiB (RSS, what a cgroup may charge one pod; PSS, the share
of the node's memory; USS, the student's own), the hub's CPU, and the challenge service's latency per
06.8 query batch (p50, p95, max), CPU and memory; a failure names the request or cell that failed. ``--no-kernels`` measures the hub alone: every student logs in, starts a stand-in
server (``fake_singleuser.py``, no kernel) and keeps using it through the proxy for ``--duration``
seconds, so the hub's CPU and memory can be read at class sizes one machine could not run kernels for. Bounded: at most MAX_STUDENTS students, a deadline for the whole
run and for each cell; traffic stays on loopback; every process and temporary file it made is
stopped and removed at the end, whatever happens.
"""
from __future__ import annotations

import argparse
import ast
import asyncio
import json
import math
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat
import psutil
from jupyter_client.jsonutil import json_default
from jupyter_client.session import Session
from jupyter_server.services.kernels.connection.base import deserialize_binary_message
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.simple_httpclient import HTTPTimeoutError
from tornado.websocket import websocket_connect

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PROXY = ROOT / ".node" / "node_modules" / ".bin" / "configurable-http-proxy"
DEFAULT_NOTEBOOKS = ("notebooks/02_des.ipynb", "notebooks/06b_key_recovery.ipynb",
                     "notebooks/08c_backdoor_attacks_pq.ipynb")
ATTACK_NOTEBOOK = ROOT / "notebooks" / "06b_key_recovery.ipynb"  # where the worked 06.8 attack is
SERVICE_CONFIG = ROOT / "deploy" / "challenge_service_config.py"
MARK_06_8 = "LOADTEST-06.8 "
PROXY_PACKAGE = "configurable-http-proxy@5.3.0"
MAX_STUDENTS = 60  # this runs on one machine: more would only measure swapping
MAX_STAND_INS = 400  # --no-kernels: stand-in servers of about 15 MiB each
STUDENT_MB = 740  # MiB per student at one instant (20 students with 02, 06b, 08c: 14,473 MiB for everything)
STAND_IN_MB = 40  # MiB: a stand-in server, with margin
RESERVE_MB = 1024  # the run stops its students when the machine's available memory falls below this
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def percentiles(values: list[float]) -> dict[str, float]:
    """p50, p95 (nearest rank) and max of ``values``, rounded for the report."""
    if not values:
        return {"p50": math.nan, "p95": math.nan, "max": math.nan}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)]

    return {"p50": round(rank(0.50), 2), "p95": round(rank(0.95), 2), "max": round(ordered[-1], 2)}


def ensure_proxy() -> Path:
    """configurable-http-proxy, installed from npm into .node/ (gitignored) on first use."""
    if not PROXY.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise FileNotFoundError("npm is needed to install configurable-http-proxy (Node.js 18+)")
        subprocess.run([npm, "install", "--no-audit", "--no-fund", "--prefix", str(PROXY.parents[2]), PROXY_PACKAGE],
                       check=True, capture_output=True, timeout=300)
    return PROXY


def code_cells(path: Path) -> list[str]:
    """The code cells of a notebook, in order (the instructor copy: a student who solves everything)."""
    nb = nbformat.read(path, as_version=4)
    return [cell.source for cell in nb.cells if cell.cell_type == "code" and cell.source.strip()]


# -- the hub -----------------------------------------------------------------------------------
def hub_config(workdir: Path, *, port: int, hub_port: int, api_port: int, token: str, students: int,
               cache: Path, kernels: bool = True) -> str:
    """A jupyterhub_config.py for the run: loopback only, local processes, a service token."""
    settings = {
        "JupyterHub.bind_url": f"http://{LOOPBACK}:{port}",
        "JupyterHub.hub_bind_url": f"http://{LOOPBACK}:{hub_port}",
        "ConfigurableHTTPProxy.api_url": f"http://{LOOPBACK}:{api_port}",
        "ConfigurableHTTPProxy.command": [str(PROXY)],
        "JupyterHub.authenticator_class": "dummy",
        "DummyAuthenticator.password": secrets.token_hex(16),
        "JupyterHub.spawner_class": "simple",
        "SimpleLocalProcessSpawner.home_dir_template": str(workdir / "home" / "{username}"),
        "Spawner.cmd": [str(BIN / "jupyterhub-singleuser")],
        "Spawner.args": ["--ServerApp.allow_root=True"],  # this machine is root only
        # the image's prebuilt C kernel (postBuild) is shared by all students, as in deploy/
        # and every server reads the lab's server settings (deploy/jupyter), as under both hubs: a student's
        # server trimmed by jupyter_server_config.py, nbgrader's exchange in the run's folder
        "Spawner.environment": {"XDG_CACHE_HOME": str(cache), "LABKIT_PROGRESS": "off",
                                "JUPYTER_CONFIG_PATH": str(ROOT / "deploy" / "jupyter"),
                                "LAB_EXCHANGE_ROOT": str(workdir / "exchange"), "LAB_INSTRUCTOR": "0",
                                "TRAITLETS_APPLICATION_RAISE_CONFIG_FILE_ERROR": "1"},
        "Spawner.start_timeout": 300,
        "Spawner.http_timeout": 300,
        "JupyterHub.concurrent_spawn_limit": students,
        "JupyterHub.db_url": f"sqlite:///{workdir / 'jupyterhub.sqlite'}",
        "JupyterHub.cookie_secret_file": str(workdir / "cookie_secret"),
        "JupyterHub.pid_file": str(workdir / "jupyterhub.pid"),
        "JupyterHub.services": [{"name": "loadtest", "api_token": token}],
        "JupyterHub.load_roles": [{"name": "loadtest", "services": ["loadtest"],
                                   "scopes": ["admin:users", "admin:servers", "tokens", "list:users"]}],
        "JupyterHub.cleanup_servers": True,
        "JupyterHub.log_level": "WARN",
    }
    if not kernels:
        settings["Spawner.cmd"] = [sys.executable, str(Path(__file__).with_name("fake_singleuser.py"))]
        settings["Spawner.args"] = []
    text = "c = get_config()  # noqa: F821\n" + "".join(f"c.{key} = {value!r}\n" for key, value in settings.items())
    if kernels:  # the challenge service, configured as a class's hub does (LAB_CHALLENGES_* in the hub's environment)
        text += f"load_subconfig({str(SERVICE_CONFIG)!r})  # noqa: F821\n"
    return text


def service_environment(workdir: Path, cache: Path) -> dict[str, str]:
    """The hub's LAB_CHALLENGES_* settings for challenge_service_config.py: a fresh state and port."""
    return {"LAB_CHALLENGES_STATE": str(workdir / "challenges"), "LAB_CHALLENGES_PORT": str(free_port()),
            "LAB_CHALLENGES_LECTURERS": "lecturer", "LABKIT_KERNEL_CACHE": str(cache / "labkit")}


class RequestFailed(RuntimeError):
    """A request of the load test failed; the message names it (method, path, time, cause)."""


async def fetch_named(request: HTTPRequest, what: str):
    """``request``'s response; a failure names the call (``what``) and after how long it failed."""
    begun = time.monotonic()
    try:
        return await AsyncHTTPClient().fetch(request)
    except Exception as err:
        raise RequestFailed(f"{what} failed after {time.monotonic() - begun:.1f} s: "
                            f"{type(err).__name__}: {err}") from err


class Hub:
    """JupyterHub and its proxy as subprocesses; ``stop()`` ends them and every server they started."""

    def __init__(self, workdir: Path, *, students: int, cache: Path, kernels: bool = True):
        self.workdir = workdir
        self.port, hub_port, api_port = free_port(), free_port(), free_port()
        self.token = secrets.token_hex(32)
        self.url = f"http://{LOOPBACK}:{self.port}"
        (workdir / "exchange").mkdir(exist_ok=True)  # LAB_EXCHANGE_ROOT of the students' servers
        (workdir / "jupyterhub_config.py").write_text(hub_config(
            workdir, port=self.port, hub_port=hub_port, api_port=api_port, token=self.token,
            students=students, cache=cache, kernels=kernels))
        self.log = open(workdir / "jupyterhub.log", "w")
        self.process = subprocess.Popen(
            [str(BIN / "jupyterhub"), "-f", "jupyterhub_config.py"], cwd=workdir, stdout=self.log,
            stderr=subprocess.STDOUT, start_new_session=True,
            env=dict(os.environ, PATH=os.pathsep.join([str(BIN), os.environ.get("PATH", "")]),
                     **(service_environment(workdir, cache) if kernels else {})))
        self.seen: dict[int, psutil.Process] = {}  # every descendant ever sampled, for stop()
        self.latency: list[float] = []  # seconds of every request that succeeded

    async def request(self, method: str, path: str, body=None, *, token: str | None = None,
                      timeout: float = 60) -> dict:
        """One REST call through the proxy; a failure says which call failed and after how long."""
        request = HTTPRequest(self.url + path, method=method, request_timeout=timeout,
                              headers={"Authorization": f"token {token or self.token}"},
                              body=None if body is None and method == "GET" else json.dumps(body or {}),
                              allow_nonstandard_methods=True)
        begun = time.monotonic()
        response = await fetch_named(request, f"{method} {path.split('?')[0]}")
        self.latency.append(time.monotonic() - begun)
        return json.loads(response.body) if response.body else {}

    async def wait_spawned(self, name: str, timeout: float = 300) -> None:
        """Wait for a student's server as JupyterHub's spawn-pending page does: one request to the
        spawn's progress event stream (``/hub/api/users/<name>/server/progress``), which the hub ends
        after the event that says the server is ready. (Polling the user's model every 0.25 s, as
        this test did before, cost the hub 20 x 4 requests/s x 7 ms = 0.56 core of a 2-core machine
        while the servers were starting.)"""
        request = HTTPRequest(self.url + f"/hub/api/users/{name}/server/progress", request_timeout=timeout,
                              headers={"Authorization": f"token {self.token}", "Accept": "text/event-stream"})
        response = await fetch_named(request, f"GET /hub/api/users/{name}/server/progress")
        events = [json.loads(line[5:]) for line in response.body.decode().splitlines() if line.startswith("data:")]
        if not events or not events[-1].get("ready"):
            raise RequestFailed(f"the server of {name} did not start: {events[-1] if events else 'no event'}")

    async def wait_ready(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyterhub exited early:\n{self.log_tail()}")
            try:
                await self.request("GET", "/hub/api/", timeout=5)
                return
            except Exception:
                await asyncio.sleep(0.5)
        raise TimeoutError(f"jupyterhub did not answer in time:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        self.log.flush()
        return "\n".join((self.workdir / "jupyterhub.log").read_text(errors="replace").splitlines()[-lines:])

    def descendants(self) -> list[psutil.Process]:
        try:
            found = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        for proc in found:
            self.seen.setdefault(proc.pid, proc)
        return found

    def kill_descendants(self) -> None:
        """Kill every server, kernel and proxy the hub started (each runs in a session of its own)."""
        self.descendants()
        for proc in self.seen.values():
            try:
                if proc.is_running():  # psutil compares start times: never a reused pid
                    os.killpg(proc.pid, signal.SIGKILL) if os.getpgid(proc.pid) == proc.pid else proc.kill()
            except (ProcessLookupError, PermissionError, psutil.Error):
                pass

    def stop(self) -> None:
        """SIGTERM the hub (it stops the proxy and the servers), then kill whatever is left."""
        self.descendants()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)  # its own session: the group is the hub's
                self.process.wait(timeout=10)
        self.kill_descendants()
        self.log.close()


# -- sampling memory and CPU -------------------------------------------------------------------
@dataclass(frozen=True)
class Memory:
    """One process's memory in MiB. ``rss``: every page it maps, shared library pages counted in full
    (what a cgroup may charge one pod, if it touched them first); ``pss``: each page divided by the
    number of processes mapping it (the honest share: summed over all processes it is what the
    machine pays); ``uss``: the pages it alone maps (what ending it frees)."""
    rss: float
    pss: float
    uss: float

    def __add__(self, other: "Memory") -> "Memory":
        return Memory(self.rss + other.rss, self.pss + other.pss, self.uss + other.uss)


ROLLUP_FIELDS = {"Rss": "rss", "Pss": "pss", "Private_Clean": "uss", "Private_Dirty": "uss", "Private_Hugetlb": "uss"}


def memory_of(pid: int) -> Memory:
    """RSS, PSS and USS of ``pid`` in MiB, from ``/proc/PID/smaps_rollup`` (Linux 4.14+): the kernel
    sums the mappings itself, one short read, where psutil's ``memory_full_info`` parses the whole
    ``smaps`` (thousands of mappings for a process with torch). Raises ``psutil.NoSuchProcess`` for a
    process that has ended and ``psutil.AccessDenied`` where reading it is not allowed."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as rollup:
            text = rollup.read()
    except (FileNotFoundError, ProcessLookupError) as err:
        raise psutil.NoSuchProcess(pid) from err
    except PermissionError as err:
        raise psutil.AccessDenied(pid) from err
    kib = {"rss": 0, "pss": 0, "uss": 0}
    for line in text.splitlines()[1:]:  # the first line is the [rollup] address range
        name, _, rest = line.decode("ascii", "replace").partition(":")
        if name in ROLLUP_FIELDS:
            kib[ROLLUP_FIELDS[name]] += int(rest.split()[0])
    if not kib["rss"] and not text.strip():
        raise psutil.NoSuchProcess(pid)  # a zombie: its memory is gone
    return Memory(kib["rss"] / 1024, kib["pss"] / 1024, kib["uss"] / 1024)


def raise_peak(peaks: dict, key: str, memory: Memory) -> None:
    """Keep, per key, the largest RSS, PSS and USS seen (each its own maximum)."""
    old = peaks.get(key, Memory(0.0, 0.0, 0.0))
    peaks[key] = Memory(max(old.rss, memory.rss), max(old.pss, memory.pss), max(old.uss, memory.uss))


@dataclass
class Peaks:
    total_rss: float = 0.0  # peak MiB of everything the hub started, at one instant
    kernel: dict[str, Memory] = field(default_factory=dict)  # kernel id -> peak RSS, PSS, USS
    server: dict[str, Memory] = field(default_factory=dict)  # student -> peaks of the server
    student: dict[str, Memory] = field(default_factory=dict)  # student -> peaks of server + kernels at one instant
    total_pss: float = 0.0  # peak PSS of everything the hub started, at one instant: what the machine paid
    hub_percent: float = 0.0
    hub_rss: float = 0.0  # peak MiB of the hub process
    proxy_rss: float = 0.0  # peak MiB of the proxy
    proxy_percent: float = 0.0
    service_rss: float = 0.0  # peak MiB of the challenge service
    service_percent: float = 0.0  # peak CPU % of the challenge service (100 = one core)
    service_cpu_s: float = 0.0  # CPU seconds the challenge service used (user + system)
    aborted: str = ""  # why the sampler stopped the students early (the machine ran short of memory)
    cpu_s: dict[int, tuple[str, float]] = field(default_factory=dict)  # pid -> (student, CPU seconds so far)

    def student_cpu_s(self) -> dict[str, float]:
        """CPU seconds each student's server and kernels used (user + system)."""
        total: dict[str, float] = {}
        for student, seconds in self.cpu_s.values():
            total[student] = total.get(student, 0.0) + seconds
        return total


class Sampler(threading.Thread):
    """Every ``interval`` seconds: RSS, PSS and USS of each kernel and server (``memory_of``), CPU % of
    the hub and the proxy."""

    def __init__(self, hub: Hub, interval: float = 0.5):
        super().__init__(daemon=True)
        self.hub, self.interval, self.peaks = hub, interval, Peaks()
        self.halt = threading.Event()
        self.hub_process = psutil.Process(hub.process.pid)
        self.owner: dict[int, str] = {}  # server pid -> student

    def run(self) -> None:
        self.hub_process.cpu_percent()
        proxies: dict[int, psutil.Process] = {}  # proxy and service: cpu_percent needs the same object
        while not self.halt.wait(self.interval):
            try:
                self.sample(proxies)
            except psutil.Error:
                continue  # a process ended between listing and reading: next round

    def sample(self, proxies: dict) -> None:
        peaks, total, total_pss, per_student = self.peaks, 0.0, 0.0, {}
        available = psutil.virtual_memory().available / 2**20
        if available < RESERVE_MB:  # a shared machine: never push others into the OOM killer
            peaks.aborted = f"stopped: available memory fell to {available:.0f} MB"
            self.hub.kill_descendants()
            self.halt.set()
            return
        peaks.hub_percent = max(peaks.hub_percent, self.hub_process.cpu_percent())
        peaks.hub_rss = max(peaks.hub_rss, self.hub_process.memory_info().rss / 2**20)
        for proc in self.hub.descendants():
            try:
                cmdline, memory = proc.cmdline(), memory_of(proc.pid)
            except psutil.Error:
                continue
            rss = memory.rss
            total, total_pss = total + rss, total_pss + memory.pss
            text = " ".join(cmdline)
            times = proc.cpu_times()
            cpu = times.user + times.system
            if "jupyterhub-singleuser" in text or "fake_singleuser.py" in text:
                student = self.owner.get(proc.pid) or proc.environ().get("JUPYTERHUB_USER", "?")
                self.owner[proc.pid] = student
                raise_peak(peaks.server, student, memory)
                per_student[student] = per_student.get(student, Memory(0.0, 0.0, 0.0)) + memory
                peaks.cpu_s[proc.pid] = (student, cpu)
            elif "ipykernel_launcher" in text:
                kernel = next((Path(a).stem.removeprefix("kernel-") for a in cmdline if a.endswith(".json")), "?")
                for child in proc.children(recursive=True):
                    try:
                        memory += memory_of(child.pid)
                    except psutil.Error:
                        pass  # a helper the kernel started ended meanwhile
                raise_peak(peaks.kernel, kernel, memory)
                student = self.owner.get(proc.ppid(), "?")
                per_student[student] = per_student.get(student, Memory(0.0, 0.0, 0.0)) + memory
                peaks.cpu_s[proc.pid] = (student, cpu + times.children_user + times.children_system)
            elif "labkit.challenges serve --hub" in text:
                peaks.service_rss = max(peaks.service_rss, rss)
                peaks.service_cpu_s = max(peaks.service_cpu_s, cpu)
                if proc.pid not in proxies:
                    proxies[proc.pid] = proc
                    proc.cpu_percent()
                else:
                    peaks.service_percent = max(peaks.service_percent, proxies[proc.pid].cpu_percent())
            elif "configurable-http-proxy" in text:
                peaks.proxy_rss = max(peaks.proxy_rss, rss)
                if proc.pid not in proxies:  # cpu_percent measures from the same object's previous call
                    proxies[proc.pid] = proc
                    proc.cpu_percent()
                else:
                    peaks.proxy_percent = max(peaks.proxy_percent, proxies[proc.pid].cpu_percent())
        for student, memory in per_student.items():
            raise_peak(peaks.student, student, memory)
        peaks.total_rss = max(peaks.total_rss, total)
        peaks.total_pss = max(peaks.total_pss, total_pss)


# -- one student -------------------------------------------------------------------------------
@dataclass
class StudentRun:
    name: str
    ready_s: float = math.nan  # start of the run -> server ready
    last_cell_s: float = math.nan  # start of the run -> last cell of the last notebook done
    notebook_s: dict[str, float] = field(default_factory=dict)
    kernels: dict[str, str] = field(default_factory=dict)  # notebook -> kernel id
    cells: int = 0
    error: str = ""
    batches: list[tuple[int, float]] = field(default_factory=list)  # 06.8 through the service: (rows, seconds)
    reconnects: int = 0  # kernel websockets opened again after a timeout (as JupyterLab does)

    @property
    def finished(self) -> bool:
        return not self.error and not math.isnan(self.last_cell_s)


def attack_06_8_cell(notebook: Path = ATTACK_NOTEBOOK) -> str:
    """The cell each student runs last: exercise 06.8 through the challenge service with the worked
    attack of ``notebook`` (its ``recover_key``, read from the notebook), each batch timed in the kernel."""
    cell = next(c for c in code_cells(notebook) if "def recover_key(" in c and 'ex.check("06.8"' in c)
    tree = ast.parse(cell)
    function = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "recover_key")
    return "\n".join([
        "import json as _lt_json", "import time as _lt_time", "import numpy as np",
        "from labkit import aes, bits", "from labkit import exercises as _lt_ex",
        ast.get_source_segment(cell, function), "_lt_batches = []",
        "def _lt_timed(oracle):",
        "    def query(rows):",
        "        begun = _lt_time.perf_counter()",
        "        out = oracle(rows)",
        "        _lt_batches.append((len(rows), _lt_time.perf_counter() - begun))",
        "        return out",
        "    return query",
        '_lt_verdict = _lt_ex.check("06.8", lambda oracle: recover_key(_lt_timed(oracle)))',
        "if not _lt_verdict:",
        "    raise RuntimeError(str(_lt_verdict))",
        f"print({MARK_06_8!r} + _lt_json.dumps(_lt_batches))"])


async def execute(ws, session: Session, code: str, timeout: float, stdout: list[str] | None = None) -> str:
    """Run one cell through the kernel's websocket; return the error text ('' when it ran cleanly).
    What the cell prints goes to ``stdout``. Messages are ``jupyter_client``'s; a binary frame (a
    message with buffers, e.g. a widget's) is unpacked by ``jupyter_server``'s own function."""
    request = session.msg("execute_request", {"code": code, "silent": False, "store_history": True,
                                              "user_expressions": {}, "allow_stdin": False, "stop_on_error": True})
    ws.write_message(json.dumps(dict(request, channel="shell", buffers=[]), default=json_default))
    msg_id = request["header"]["msg_id"]
    error = ""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return f"cell timed out after {timeout:.0f} s"
        raw = await asyncio.wait_for(ws.read_message(), remaining)
        if raw is None:
            return "kernel websocket closed"
        msg = json.loads(raw) if isinstance(raw, str) else deserialize_binary_message(raw)
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind = msg["header"]["msg_type"]
        if kind == "stream" and stdout is not None and msg["content"].get("name") == "stdout":
            stdout.append(msg["content"]["text"])
        elif kind == "error":
            error = f"{msg['content']['ename']}: {msg['content']['evalue']}"
        elif kind == "execute_reply":
            return error or ("" if msg["content"]["status"] == "ok" else msg["content"].get("ename", "error"))


async def connect_kernel(run: StudentRun, url: str, token: str, where: str, attempts: int = 3):
    """The kernel's websocket, reconnecting after a timeout as JupyterLab's kernel connection does
    (the server answers once the kernel replies to kernel_info, which a starved machine delays);
    each retry is counted in the report. Each try gets the 60 s of every REST call."""
    for attempt in range(1, attempts + 1):
        try:
            return await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {token}"},
                                                       connect_timeout=60, request_timeout=60),
                                           max_message_size=256 * 2**20)
        except Exception as err:
            if attempt == attempts or not isinstance(err, (HTTPTimeoutError, TimeoutError)):
                raise RequestFailed(f"websocket {where}: {type(err).__name__}: {err} "
                                    f"(try {attempt} of {attempts})") from err
            run.reconnects += 1


async def run_student(hub: Hub, name: str, notebooks: dict[str, list[str]], started: float,
                      cell_timeout: float, attack: str = "") -> StudentRun:
    run = StudentRun(name)
    try:
        await hub.request("POST", f"/hub/api/users/{name}")
        token = (await hub.request("POST", f"/hub/api/users/{name}/tokens", {"note": "loadtest"}))["token"]
        await hub.request("POST", f"/hub/api/users/{name}/server")
        await hub.wait_spawned(name)
        run.ready_s = time.monotonic() - started
        for notebook, cells in notebooks.items():
            begun = time.monotonic()
            session = await hub.request("POST", f"/user/{name}/api/sessions", token=token, body={
                "path": f"notebooks/{notebook}", "name": notebook, "type": "notebook",
                "kernel": {"name": "python3"}})
            kernel = session["kernel"]["id"]
            run.kernels[notebook] = kernel
            messages = Session(username=name)
            url = f"ws://{LOOPBACK}:{hub.port}/user/{name}/api/kernels/{kernel}/channels?session_id={messages.session}"
            ws = await connect_kernel(run, url, token, f"/user/{name}/api/kernels/{kernel}/channels")
            try:
                for index, code in enumerate(cells):
                    failure = await execute(ws, messages, code, cell_timeout)
                    if failure:
                        raise RuntimeError(f"{notebook} cell {index}: {failure}")
                    run.cells += 1
                if attack and notebook == list(notebooks)[-1]:  # 06.8 through the service, in this kernel
                    printed: list[str] = []
                    failure = await execute(ws, messages, attack, cell_timeout, printed)
                    if failure:
                        raise RuntimeError(f"06.8 through the challenge service: {failure}")
                    line = next(t for t in "".join(printed).splitlines() if t.startswith(MARK_06_8))
                    run.batches = [(int(rows), float(seconds)) for rows, seconds in json.loads(line[len(MARK_06_8):])]
            finally:
                ws.close()
            run.notebook_s[notebook] = time.monotonic() - begun
            run.last_cell_s = time.monotonic() - started
            await hub.request("DELETE", f"/user/{name}/api/sessions/{session['id']}", token=token)
    except Exception as err:  # one student's failure is a result to report, not a crash of the run
        run.error = f"{type(err).__name__}: {err}"
        run.last_cell_s = math.nan
    return run


# -- the whole run -----------------------------------------------------------------------------
def prepare_homes(workdir: Path, students: list[str], notebooks: list[Path]) -> None:
    """Each student's home holds the notebooks, as nbgitpuller would leave them."""
    for name in students:
        folder = workdir / "home" / name / "notebooks"
        folder.mkdir(parents=True)
        for path in notebooks:
            shutil.copy(path, folder / path.name)


def prebuild_kernel(cache: Path) -> None:
    """Build the C kernel once into the shared cache, as the image's postBuild does."""
    subprocess.run([sys.executable, "-c", "import torch; from labkit.neural import kernel; "
                    "kernel.load(torch.float64); kernel.load(torch.float32)"],
                   check=True, env=dict(os.environ, XDG_CACHE_HOME=str(cache)), timeout=300)


async def use_stand_in(hub: Hub, name: str, started: float, duration: float, every: float = 10.0,
                       hub_every: int = 3, delay: float = 0.0) -> StudentRun:
    """--no-kernels: after ``delay`` s, log in, start the stand-in server, then use it through the proxy
    for ``duration`` s: a request to the server every ``every`` s (the proxy alone answers it) and one
    to the hub's API every ``hub_every``-th time (JupyterLab's hub extension, the server's token
    checks and activity reports)."""
    run = StudentRun(name)
    await asyncio.sleep(delay)
    try:
        await hub.request("POST", f"/hub/api/users/{name}")
        token = (await hub.request("POST", f"/hub/api/users/{name}/tokens", {"note": "loadtest"}))["token"]
        await hub.request("POST", f"/hub/api/users/{name}/server")
        while not (await hub.request("GET", f"/hub/api/users/{name}")).get("servers", {}).get("", {}).get("ready"):
            await asyncio.sleep(2.0)  # as the hub's spawn-pending page polls
        run.ready_s = time.monotonic() - started - delay
        until = time.monotonic() + duration
        while time.monotonic() < until:
            await hub.request("GET", f"/user/{name}/api/status", token=token)
            if run.cells % hub_every == 0:
                await hub.request("GET", f"/hub/api/users/{name}", token=token)
            run.cells += 1
            await asyncio.sleep(every)
        run.last_cell_s = time.monotonic() - started
    except Exception as err:
        run.error = f"{type(err).__name__}: {err}"
        run.last_cell_s = math.nan
    return run


async def _run_all(hub: Hub, students: list[str], notebooks: dict[str, list[str]], deadline: float,
                   cell_timeout: float, duration: float | None = None, ramp: float = 0.0,
                   attack: str = "") -> list[StudentRun]:
    AsyncHTTPClient.configure(None, max_clients=4 * len(students) + 10)
    await hub.wait_ready(time.monotonic() + 120)
    started = time.monotonic()
    if duration is None:
        tasks = [asyncio.ensure_future(run_student(hub, name, notebooks, started, cell_timeout, attack))
                 for name in students]
    else:
        tasks = [asyncio.ensure_future(use_stand_in(hub, name, started, duration, delay=ramp * i / len(students)))
                 for i, name in enumerate(students)]
    done, pending = await asyncio.wait(tasks, timeout=max(1.0, deadline - time.monotonic()))
    for task in pending:
        task.cancel()
    runs = []
    for name, task in zip(students, tasks):
        runs.append(task.result() if task in done else StudentRun(name, error="deadline of the whole run passed"))
    return runs


def run(students: int, notebook_paths: list[Path], *, timeout: float = 1200, cell_timeout: float = 300,
        command: str = "", kernels: bool = True, duration: float = 120, ramp: float = 0.0) -> dict:
    """Run the load test and return its report (see the module docstring)."""
    limit, each = (MAX_STUDENTS, STUDENT_MB) if kernels else (MAX_STAND_INS, STAND_IN_MB)
    if not 1 <= students <= limit:
        raise ValueError(f"students must be between 1 and {limit}, got {students}")
    available = psutil.virtual_memory().available / 2**20
    if available < students * each + RESERVE_MB:
        raise RuntimeError(f"{students} students need about {students * each + RESERVE_MB} MiB of available "
                           f"memory; this machine has {available:.0f} MiB now")
    ensure_proxy()
    names = [f"student{i:03d}" for i in range(1, students + 1)]
    notebooks = {path.name: code_cells(path) for path in notebook_paths} if kernels else {}
    workdir = Path(tempfile.mkdtemp(prefix="labkit-loadtest-"))
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    load_before = os.getloadavg()
    hub = None
    try:
        if kernels:
            prebuild_kernel(cache)
        prepare_homes(workdir, names, notebook_paths if kernels else [])
        wall = time.monotonic()
        hub = Hub(workdir, students=students, cache=cache, kernels=kernels)
        sampler = Sampler(hub, interval=0.5 if kernels else 2.0)  # hundreds of stand-ins: sample less often
        sampler.start()
        cpu_before = psutil.Process(hub.process.pid).cpu_times()
        runs = asyncio.run(_run_all(hub, names, notebooks, time.monotonic() + timeout, cell_timeout,
                                    None if kernels else duration, ramp, attack_06_8_cell() if kernels else ""))
        cpu_after = psutil.Process(hub.process.pid).cpu_times()
        wall = time.monotonic() - wall
        sampler.halt.set()
        sampler.join()
    finally:
        if hub is not None:
            hub.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    hub_cpu = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
    rep = report(runs, sampler.peaks, notebooks, hub_cpu=hub_cpu, wall=wall, command=command,
                 load=(load_before, os.getloadavg()))
    rep["mode"] = "kernels" if kernels else f"hub only (stand-in servers, no kernels; logins spread over {ramp:g} s)"
    rep["request_latency_s"] = percentiles(hub.latency) | {"count": len(hub.latency)}
    return rep


def report(runs: list[StudentRun], peaks: Peaks, notebooks: dict[str, list[str]], *, hub_cpu: float,
           wall: float, command: str, load) -> dict:
    finished = [r for r in runs if r.finished]
    def kernels(nb: str, measure: str) -> dict:
        return percentiles([getattr(peaks.kernel[r.kernels[nb]], measure) for r in finished
                            if r.kernels.get(nb) in peaks.kernel])

    per_notebook = {nb: {"cells": len(cells),
                         "time_s": percentiles([r.notebook_s[nb] for r in finished]),
                         "kernel_peak_rss_mb": kernels(nb, "rss"), "kernel_peak_pss_mb": kernels(nb, "pss"), "kernel_peak_uss_mb": kernels(nb, "uss")}
                    for nb, cells in notebooks.items()}
    students = {k: v for k, v in peaks.student.items() if k != "?"}
    return {
        "command": command,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
                    "platform": platform.platform(), "load_average_before": [round(x, 2) for x in load[0]],
                    "load_average_after": [round(x, 2) for x in load[1]]},
        "students": len(runs),
        "finished": len(finished),
        "failures": {r.name: r.error for r in runs if not r.finished},
        "websocket_reconnects": {r.name: r.reconnects for r in runs if r.reconnects},
        "aborted": peaks.aborted,
        "notebooks": per_notebook,
        "time_to_ready_s": percentiles([r.ready_s for r in runs if not math.isnan(r.ready_s)]),
        "time_to_last_cell_s": percentiles([r.last_cell_s for r in finished]),
        "server_peak_rss_mb": percentiles([m.rss for m in peaks.server.values()]),
        "student_peak_rss_mb": percentiles([m.rss for m in students.values()]),
        # PSS: shared pages (torch's libraries, Python) divided among the processes that map them, so
        # summed over processes it is what the machine pays; USS: what each student alone holds
        "server_peak_pss_mb": percentiles([m.pss for m in peaks.server.values()]),
        "student_peak_pss_mb": percentiles([m.pss for m in students.values()]),
        "student_peak_uss_mb": percentiles([m.uss for m in students.values()]),
        "student_cpu_s": percentiles([v for k, v in peaks.student_cpu_s().items() if k != "?"]),
        "all_processes_peak_rss_mb": round(peaks.total_rss, 1),
        "all_processes_peak_pss_mb": round(peaks.total_pss, 1),
        "hub": {"cpu_s": round(hub_cpu, 2), "mean_percent": round(100 * hub_cpu / wall, 1),
                "peak_percent": round(peaks.hub_percent, 1), "peak_rss_mb": round(peaks.hub_rss, 1)},
        "proxy_peak_rss_mb": round(peaks.proxy_rss, 1),
        "memory_unit": "MiB (2**20 bytes; the keys ending in _mb hold MiB)",
        "proxy_peak_percent": round(peaks.proxy_percent, 1),
        "wall_s": round(wall, 1),
        "challenge_service": service_report(finished, peaks, wall),
    }


def service_report(finished: list[StudentRun], peaks: Peaks, wall: float) -> dict:
    """The challenge service under the class: 06.8's query batches as the kernels saw them, and the
    service process's CPU (over the whole run: every check of the notebooks goes there too) and memory."""
    batches = [b for r in finished for b in r.batches]
    return {"students_06_8": sum(1 for r in finished if r.batches), "batches": len(batches),
            "rows_per_student": percentiles([float(sum(rows for rows, _ in r.batches)) for r in finished if r.batches]),
            "batch_rows": percentiles([float(rows) for rows, _ in batches]),
            "batch_latency_ms": percentiles([1000 * seconds for _, seconds in batches]),
            "cpu_s": round(peaks.service_cpu_s, 2), "mean_percent": round(100 * peaks.service_cpu_s / wall, 1),
            "peak_percent": round(peaks.service_percent, 1), "peak_rss_mb": round(peaks.service_rss, 1)}


def markdown(rep: dict) -> str:
    """The report as the markdown table that goes into deploy/README.md."""
    def row(label: str, stats: dict, unit: str) -> str:
        return f"| {label} | {stats['p50']} {unit} | {stats['p95']} {unit} | {stats['max']} {unit} |"

    lines = [f"Load test, {rep['date']}: `{rep['command']}`" + (f" ({rep['mode']})" if rep.get("mode") else ""), "",
             f"{rep['finished']} of {rep['students']} students finished; machine: {rep['machine']['cpus']} cores, "
             f"{rep['machine']['memory_gb']} GB; load average (1, 5, 15 min) before "
             f"{rep['machine']['load_average_before']}, after {rep['machine']['load_average_after']}.", "",
             "| per student | p50 | p95 | max |", "|---|---|---|---|",
             row("time to a ready server", rep["time_to_ready_s"], "s"),
             row("time to the last cell", rep["time_to_last_cell_s"], "s")]
    for nb, figures in rep["notebooks"].items():
        lines.append(row(f"`{nb}` ({figures['cells']} cells), run time", figures["time_s"], "s"))
        lines.append(row(f"`{nb}` kernel, peak RSS", figures["kernel_peak_rss_mb"], "MiB"))
        if "kernel_peak_pss_mb" in figures:  # runs before the sampler read PSS have RSS only
            lines.append(row(f"`{nb}` kernel, peak PSS", figures["kernel_peak_pss_mb"], "MiB"))
    lines += [row("server, peak RSS", rep["server_peak_rss_mb"], "MiB")]
    if "server_peak_pss_mb" in rep:
        lines.append(row("server, peak PSS", rep["server_peak_pss_mb"], "MiB"))
    lines += [row("server + kernels at once, peak RSS", rep["student_peak_rss_mb"], "MiB")]
    if "student_peak_pss_mb" in rep:
        lines += [row("server + kernels at once, peak PSS (the node's share)", rep["student_peak_pss_mb"], "MiB"),
                  row("server + kernels at once, peak USS (theirs alone)", rep["student_peak_uss_mb"], "MiB")]
    lines += [row("CPU time used (server + kernels)", rep["student_cpu_s"], "s"), "",
              f"Hub CPU: {rep['hub']['cpu_s']} s over {rep['wall_s']} s ({rep['hub']['mean_percent']} % of one "
              f"core on average, peak {rep['hub']['peak_percent']} %), peak RSS {rep['hub'].get('peak_rss_mb', '?')} MiB; "
              f"proxy peak {rep['proxy_peak_percent']} % CPU, {rep.get('proxy_peak_rss_mb', '?')} MiB. "
              f"All processes at once: {rep['all_processes_peak_rss_mb']} MiB peak RSS"
              + (f", {rep['all_processes_peak_pss_mb']} MiB peak PSS (what the machine paid)."
                 if "all_processes_peak_pss_mb" in rep else ".")]
    service = rep.get("challenge_service")
    if service and service["batches"]:
        lat, rows = service["batch_latency_ms"], service["rows_per_student"]
        lines += ["", f"Challenge service (a hub service): {service['students_06_8']} students ran 06.8 through it, "
                      f"{service['batches']} query batches ({rows['p50']:g} rows per student at the median); "
                      f"latency per batch p50 {lat['p50']:.0f} ms, p95 {lat['p95']:.0f} ms, max {lat['max']:.0f} ms. "
                      f"Its CPU: {service['cpu_s']} s over the run ({service['mean_percent']} % of one core on "
                      f"average, peak {service['peak_percent']} %); peak RSS {service['peak_rss_mb']} MiB."]
    if rep.get("request_latency_s"):
        lat = rep["request_latency_s"]
        lines += ["", f"Requests through the proxy (hub API and servers): {lat['count']} answered, latency p50 "
                      f"{lat['p50']} s, p95 {lat['p95']} s, max {lat['max']} s."]
    if rep.get("websocket_reconnects"):
        again = rep["websocket_reconnects"]
        lines += ["", f"Kernel websockets opened again after a 60 s timeout (as JupyterLab reconnects): "
                      f"{sum(again.values())}, for {', '.join(sorted(again))}."]
    if rep["aborted"]:
        lines += ["", f"Run {rep['aborted']}."]
    if rep["failures"]:
        lines += ["", "Failures:"] + [f"- {name}: {error}" for name, error in rep["failures"].items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=20, help=f"simulated students (1 to {MAX_STUDENTS})")
    parser.add_argument("--notebook", action="append", help="notebook to run (repeatable; default: 02 and 06b)")
    parser.add_argument("--timeout", type=float, default=1200, help="deadline of the whole run, seconds")
    parser.add_argument("--out", default=str(ROOT / "deploy" / "results"), help="folder for the reports")
    parser.add_argument("--no-kernels", action="store_true", help="the hub alone: stand-in servers, no kernels")
    parser.add_argument("--duration", type=float, default=120, help="--no-kernels: seconds each student stays active")
    parser.add_argument("--ramp", type=float, default=0.0, help="--no-kernels: logins spread over this many seconds")
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    paths = [ROOT / p for p in (args.notebook or DEFAULT_NOTEBOOKS)]
    plain = not args.notebook and not args.no_kernels and args.timeout == 1200
    command = f"make loadtest N={args.students}" if plain else " ".join(["python deploy/loadtest.py", *argv])
    rep = run(args.students, paths, timeout=args.timeout, command=command, kernels=not args.no_kernels,
              duration=args.duration, ramp=args.ramp)
    text = markdown(rep)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = ("hubonly-" if args.no_kernels else "loadtest-") + time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    (out / f"{stem}.json").write_text(json.dumps(rep, indent=2) + "\n")  # every run is kept
    (out / f"{stem}.md").write_text(text)
    complete = rep["finished"] == rep["students"]
    if complete and not args.no_kernels:  # what capacity.py reads: only a run where everyone finished
        (out / "loadtest.json").write_text(json.dumps(rep, indent=2) + "\n")
        (out / "loadtest.md").write_text(text)
    print(text)
    print(f"report: {out / stem}.md" + ("" if complete or args.no_kernels else " (incomplete: loadtest.json unchanged)"))
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
