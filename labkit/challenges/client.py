"""The kernel's side of the challenge service: handles that send queries and answers, nothing more.

What the student's process holds is an address, attempt ids (valid only for this student), the
public part of each challenge and the oracle outputs it asked for. Secrets, budgets, attempt
counters, quiz answers and the signing key stay in the service.

- **Self-study** (default): the first call starts ``python -m labkit.challenges serve`` as a
  separate process on a Unix socket (mode 0600) in a fresh directory of mode 0700, so only this
  user reaches it; it stops when this kernel exits, or by itself when this kernel is gone. Its
  database and key sit in :func:`state_dir` (``$LABKIT_CHALLENGES_STATE``, else
  ``$XDG_STATE_HOME/labkit/challenges``).
- **A class**: ``$LABKIT_CHALLENGES_URL`` names the service behind JupyterHub; requests carry the
  server's ``$JUPYTERHUB_API_TOKEN``, from which the hub tells the service who the student is.
"""
from __future__ import annotations

import atexit
import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from labkit import checks
from labkit.challenges import wire

__all__ = ["ChallengeServiceError", "Attempt", "Oracle", "state_dir", "call", "attempt",
           "run_attempt", "answer", "new_run", "public_key", "stop_local_service", "STATE_ENV", "URL_ENV"]

STATE_ENV = "LABKIT_CHALLENGES_STATE"
URL_ENV = "LABKIT_CHALLENGES_URL"
START_TIMEOUT_S = 60.0


class ChallengeServiceError(RuntimeError):
    """The challenge service refused a request or could not be reached (its text says why)."""


def _budget_error(message: str) -> Exception:
    """The one exception type of every over-budget oracle, local or served."""
    return checks.QueryBudgetExceeded(message)


def state_dir() -> Path:
    """Where the self-study service keeps its database and key (``$LABKIT_CHALLENGES_STATE``)."""
    configured = os.environ.get(STATE_ENV)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "labkit" / "challenges"


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


class _Local:
    """The self-study service process this kernel started (one per kernel)."""

    def __init__(self):
        self.folder = tempfile.mkdtemp(prefix="labkit-challenges-")  # mode 0700
        self.socket = os.path.join(self.folder, "service.sock")
        log = open(os.path.join(self.folder, "service.log"), "wb")
        command = [sys.executable, "-m", "labkit.challenges", "serve", "--socket", self.socket,
                   "--state-dir", str(state_dir()), "--parent-pid", str(os.getpid())]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in [str(Path(__file__).resolve().parents[2]),
                                                                       os.environ.get("PYTHONPATH", "")] if p))
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                        env=env, start_new_session=True)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._listening():
            if self.process.poll() is not None or time.monotonic() > deadline:
                text = Path(self.folder, "service.log").read_text(errors="replace")[-2000:]
                self.stop()
                raise ChallengeServiceError(f"the challenge service did not start:\n{text}")
            time.sleep(0.02)

    def _listening(self) -> bool:
        """True once the socket accepts connections (it exists a moment before it listens)."""
        if not os.path.exists(self.socket):
            return False
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(self.socket)
            return True
        except OSError:
            return False
        finally:
            probe.close()

    def connection(self) -> http.client.HTTPConnection:
        return _UnixConnection(self.socket, timeout=600)

    def headers(self) -> dict:
        return {}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


class _Remote:
    """The class's service behind JupyterHub, reached with this server's API token."""

    def __init__(self, url: str):
        parsed = urlparse(url if url.endswith("/") else url + "/")
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ChallengeServiceError(f"{URL_ENV} must be an http(s) URL, got {url!r}")
        self.parsed = parsed
        self.token = os.environ.get("JUPYTERHUB_API_TOKEN", "")

    def connection(self) -> http.client.HTTPConnection:
        kind = http.client.HTTPSConnection if self.parsed.scheme == "https" else http.client.HTTPConnection
        return kind(self.parsed.hostname, self.parsed.port, timeout=600)

    def headers(self) -> dict:
        return {"Authorization": f"token {self.token}"} if self.token else {}

    def stop(self) -> None:
        pass


_ENDPOINT = None
_LOCK = threading.Lock()
_CONNECTIONS = threading.local()


def _endpoint():
    global _ENDPOINT
    with _LOCK:
        if _ENDPOINT is None:
            url = os.environ.get(URL_ENV)
            _ENDPOINT = _Remote(url) if url else _Local()
            if isinstance(_ENDPOINT, _Local):
                atexit.register(stop_local_service)
        return _ENDPOINT


def stop_local_service() -> None:
    """Stop the self-study service this kernel started (the next call starts a new one)."""
    global _ENDPOINT
    with _LOCK:
        if _ENDPOINT is not None:
            _ENDPOINT.stop()
        _ENDPOINT = None
        _CONNECTIONS.__dict__.clear()


def call(method: str, path: str, body: dict | None = None) -> dict:
    """One request to the service: the decoded JSON reply, :class:`ChallengeServiceError` on a refusal."""
    end = _endpoint()
    prefix = end.parsed.path if isinstance(end, _Remote) else "/"
    data = wire.dumps(body) if body is not None else None
    headers = {"Content-Type": "application/json", **end.headers()}
    for retry in (True, False):  # a kept-alive connection the service closed is opened again, once
        conn = getattr(_CONNECTIONS, "conn", None)
        if conn is None or getattr(_CONNECTIONS, "end", None) is not end:
            conn = _CONNECTIONS.conn = end.connection()
            _CONNECTIONS.end = end
        try:
            conn.request(method, prefix + path, body=data, headers=headers)
            response = conn.getresponse()
            raw = response.read()
            break
        except (ConnectionError, http.client.HTTPException, OSError) as err:
            conn.close()
            _CONNECTIONS.conn = None
            if not retry:
                raise ChallengeServiceError(f"the challenge service is unreachable ({err})") from None
    try:
        reply = wire.loads(raw)
    except wire.WireError:
        raise ChallengeServiceError(f"the challenge service answered HTTP {response.status}: {raw[:200]!r}") from None
    if response.status == 429:
        raise _budget_error(reply.get("error", "query budget exceeded"))
    if response.status != 200:
        raise ChallengeServiceError(reply.get("error") if isinstance(reply, dict) else f"HTTP {response.status}")
    return reply


class Attempt:
    """One attempt of an attack exercise in the service: its id, public data and oracles."""

    __slots__ = ("exercise", "id", "public", "oracles")

    def __init__(self, exercise: str, reply: dict):
        self.exercise, self.id = exercise, reply["attempt"]
        self.public, self.oracles = reply["public"], tuple(reply["oracles"])

    def query(self, oracle: str, request):
        """One batch to the named oracle (the service counts it against the budget)."""
        return call("POST", f"api/attempts/{self.id}/query", {"oracle": oracle, "request": request})["reply"]

    def status(self) -> dict:
        return call("GET", f"api/attempts/{self.id}")

    @property
    def queries_used(self) -> int:
        return self.status()["queries"]

    @property
    def budget(self) -> int | None:
        return self.status()["budget"]

    def answer(self, value) -> tuple[bool, str, str | None]:
        return answer(self.exercise, value, attempt=self)

    def __repr__(self) -> str:
        return f"Attempt({self.exercise})"


class Oracle:
    """Black-box access to an attempt's network: ``oracle(queries)`` sends an ``(n, bits)`` float
    array to the service and returns its ``(n, outputs)`` numpy answer. ``queries_used`` (alias
    ``queries``) and ``budget`` are read from the service, which alone enforces the budget."""

    __slots__ = ("_attempt", "_name", "_bits")

    def __init__(self, attempt: Attempt, name: str, n_inputs: int):
        self._attempt, self._name, self._bits = attempt, name, int(n_inputs)

    def __call__(self, queries) -> np.ndarray:
        return np.asarray(self._attempt.query(self._name, checks.check_queries(queries, self._bits)))

    @property
    def n_inputs(self) -> int:
        return self._bits

    @property
    def queries_used(self) -> int:
        return self._attempt.queries_used

    queries = queries_used

    @property
    def budget(self) -> int | None:
        return self._attempt.budget

    def __repr__(self) -> str:
        return f"challenge oracle ({self._attempt.exercise}, {self._bits} input bits)"


_RUNS: dict[str, Attempt] = {}


def attempt(exercise: str, *, fresh: bool = False) -> Attempt:
    """A new attempt of ``exercise`` (``fresh``: the one-answer attempt a check of a function makes)."""
    return Attempt(exercise, call("POST", "api/attempts", {"exercise": exercise, "fresh": bool(fresh)}))


def run_attempt(exercise: str) -> Attempt:
    """This kernel run's attempt of ``exercise``: made on first use, the same one afterwards."""
    if exercise not in _RUNS:
        _RUNS[exercise] = attempt(exercise)
    return _RUNS[exercise]


def new_run() -> None:
    """Forget this run's attempts, as a fresh kernel would: the next challenge draws new secrets."""
    _RUNS.clear()


def answer(exercise: str, value, *, attempt: Attempt | None = None) -> tuple[bool, str, str | None]:
    """The service's verdict ``(correct, message, receipt)`` on ``value`` (plain data only)."""
    body = {"exercise": exercise, "answer": value, "attempt": attempt.id if attempt is not None else None}
    reply = call("POST", "api/answer", body)
    return bool(reply["correct"]), str(reply["message"]), reply.get("receipt")


def public_key() -> bytes:
    """The service's raw Ed25519 public key, which graders pin to verify receipts."""
    return bytes.fromhex(call("GET", "api/public-key")["public_key"])
