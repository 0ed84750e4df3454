"""The challenge service from outside: its verdicts and budgets (core), its files and socket
(self-study), and its hub mode (JupyterHub's OAuth token check, with the hub's API played by a
small local server that answers ``GET /hub/api/user`` as JupyterHub does)."""
from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from Crypto.PublicKey import ECC

from labkit import ed25519
from labkit.challenges import answers, catalog, client, receipts, wire
from labkit.challenges.defs_models import AES128_QUERY_BUDGET
from labkit.challenges.core import BudgetExceeded, ChallengeService, RequestRefused, load_service_key
from labkit.challenges.db import Database

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def service(tmp_path):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    cell = {"cell_type": "code", "source": 'answer = ...\n### BEGIN SOLUTION\nanswer = "c"\n### END SOLUTION\n'
                                           'ex.check("02.10", answer)\n'}
    (notebooks / "02_des.ipynb").write_text(json.dumps({"cells": [cell]}))
    return ChallengeService(Database(":memory:"), ECC.generate(curve="Ed25519"), notebooks=notebooks)


def test_every_attack_exercise_with_a_secret_has_a_challenge():
    assert catalog.exercises() == sorted(["02.3", "02.6", "02.7", "02.9", "03.6", "03.9", "04.3", "04.6", "04.10",
                                          "06.8", "06.9", "07.4", "08.5", "09.4", "09.5", "10.3", "10.6",
                                          # the security games (and 01.5's), whose challengers it hosts
                                          "01.5", "01.9", "04.14", "07.8", "08.15"])


def test_budget_is_enforced_in_the_service_before_answering(service):
    start = service.start("ada", "06.8", fresh=True)
    budget = AES128_QUERY_BUDGET
    assert start["budget"] == budget == 1024 and start["public"] is None
    service.query("ada", start["attempt"], "network", np.zeros((budget - 12, 128)))
    with pytest.raises(BudgetExceeded):
        service.query("ada", start["attempt"], "network", np.zeros((13, 128)))
    assert service.status("ada", start["attempt"])["queries"] == budget - 12  # the refused batch counted nothing
    service.query("ada", start["attempt"], "network", np.zeros((12, 128)))
    with pytest.raises(BudgetExceeded):
        service.query("ada", start["attempt"], "network", np.zeros((1, 128)))


def test_an_attempt_belongs_to_its_student(service):
    start = service.start("ada", "02.3")
    for call in (lambda: service.query("bob", start["attempt"], "encrypt", bytes(8)),
                 lambda: service.status("bob", start["attempt"]),
                 lambda: service.answer("bob", "02.3", bytes(8), start["attempt"])):
        with pytest.raises(RequestRefused, match="no such attempt"):
            call()


def test_malformed_requests_are_refused(service):
    start = service.start("ada", "06.8", fresh=True)
    for oracle, request in [("network", np.zeros((2, 127))), ("network", "x"), ("nonsense", np.zeros((1, 128))),
                            ("network", np.full((1, 128), np.inf))]:
        with pytest.raises(ValueError):
            service.query("ada", start["attempt"], oracle, request)
    with pytest.raises(RequestRefused):
        service.start("ada", "99.9")
    with pytest.raises(RequestRefused):
        service.answer("ada", "02.3", bytes(8))  # an attack answer names its attempt
    with pytest.raises(RequestRefused):
        service.answer("ada", "06.8", bytes(16), service.start("ada", "06.8")["attempt"])  # not a fresh one


def test_a_fresh_attempt_takes_one_answer(service):
    start = service.start("ada", "06.9", fresh=True)
    assert not service.answer("ada", "06.9", 0, start["attempt"])["correct"]
    with pytest.raises(RequestRefused, match="one answer"):
        service.answer("ada", "06.9", 1, start["attempt"])


def test_right_answers_get_receipts_counting_every_answer(service):
    from labkit import des

    start = service.start("ada", "02.3")
    target = start["public"]["target"]
    reply = service.query("ada", start["attempt"], "encrypt", des.complement(target))["reply"]
    assert not service.answer("ada", "02.3", bytes(8), start["attempt"])["correct"]
    verdict = service.answer("ada", "02.3", des.complement(reply), start["attempt"])
    assert verdict["correct"] and verdict["attempts"] == 2
    got = receipts.verify_receipt(verdict["receipt"], service.public_key, student="ada", exercise="02.3")
    assert got.attempts == 2
    rows = service.results()
    assert [(r["student"], r["exercise"], r["answers"], r["solved"] is not None) for r in rows] == \
        [("ada", "02.3", 2, True)]


def test_quiz_answers_come_from_the_instructor_notebooks(service, tmp_path):
    assert service.answer_key == {"02.10": "c"}
    assert service.answer("ada", "02.10", " (C) ")["correct"]
    assert not service.answer("ada", "02.10", "a")["correct"]
    assert service.answer("ada", "02.10", 3)["correct"] is False
    assert answers.answer_key(tmp_path / "missing") == {}
    from labkit import exercises
    from labkit.exercises import quiz

    dict(exercises.registry())  # imports every chapter: registers every question
    real = answers.answer_key(ROOT / "notebooks")
    assert set(real) == set(quiz.QUESTIONS) and set(real.values()) <= set("abcdef")  # every quiz, no other


def test_value_answers_are_checked_by_the_exercise_checker_in_the_service(service):
    from labkit import des, sbox

    right = sbox.linearity(des.SBOX_TABLES[4])
    assert service.answer("ada", "02.5", right)["correct"]
    assert not service.answer("ada", "02.5", right + 1)["correct"]
    with pytest.raises(RequestRefused, match="implement"):
        service.answer("ada", "02.1", 1)  # implement exercises are graded elsewhere


def test_service_key_file_is_private_and_stable(tmp_path):
    key = load_service_key(tmp_path / "state")
    assert stat.S_IMODE((tmp_path / "state" / "service_key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    assert ed25519.public_key_bytes(load_service_key(tmp_path / "state")) == ed25519.public_key_bytes(key)
    assert (tmp_path / "state" / "service_key.pub").read_text().strip() == ed25519.public_key_bytes(key).hex()


def test_wire_refuses_what_is_not_plain_data():
    class Sneaky:
        pass

    for value in (Sneaky(), {1: 2}, {"$bytes": "AA=="}, float("nan"), np.zeros(2, dtype=object)):
        with pytest.raises(wire.WireError):
            wire.encode(value)
    for raw in (b"{", b'{"$array": "AAAA", "dtype": "float64", "shape": [3]}', b"NaN",
                b'{"$bytes": "**"}', b'{"$array": "", "dtype": "object", "shape": [0]}'):
        with pytest.raises(wire.WireError):
            wire.loads(raw)
    value = {"a": [1, 2.5, b"\x00", None, True, np.arange(3, dtype=np.uint16)]}
    back = wire.loads(wire.dumps(value))
    assert back["a"][:5] == [1, 2.5, b"\x00", None, True] and back["a"][5].dtype == np.uint16


# --- self-study: the separate process on a private socket ---------------------------------------------


def _serve(tmp_path, *extra):
    folder = tmp_path / "run"
    folder.mkdir(mode=0o700)
    sock = folder / "s.sock"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "labkit.challenges", "serve", "--socket", str(sock),
                             "--state-dir", str(tmp_path / "state"), *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while not sock.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read() if proc.poll() else "timeout"
        time.sleep(0.05)
    time.sleep(0.2)
    return proc, sock


def _unix_get(sock: Path, path: str) -> tuple[int, bytes]:
    conn = client._UnixConnection(str(sock), timeout=30)
    conn.request("GET", path)
    response = conn.getresponse()
    return response.status, response.read()


def test_self_study_service_listens_on_a_private_socket_and_stops_with_its_parent(tmp_path):
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    proc, sock = _serve(tmp_path, "--parent-pid", str(parent.pid))
    try:
        assert stat.S_IMODE(sock.stat().st_mode) == 0o600
        status, body = _unix_get(sock, "/api/public-key")
        key = json.loads(body)["public_key"]
        printed = subprocess.run([sys.executable, "-m", "labkit.challenges", "public-key", "--state-dir",
                                  str(tmp_path / "state")], capture_output=True, text=True,
                                 env=dict(os.environ, PYTHONPATH=str(ROOT)), check=True).stdout.strip()
        assert status == 200 and printed == key
        status, body = _unix_get(sock, "/results.csv")
        assert status == 200 and body.decode().startswith("student,exercise,answers")
        parent.kill()
        parent.wait()
        proc.wait(timeout=15)  # gone within seconds of its parent
        assert not sock.exists()
    finally:
        parent.kill()
        proc.kill()


def test_self_study_service_refuses_a_socket_folder_others_can_enter(tmp_path):
    folder = tmp_path / "open"
    folder.mkdir()
    folder.chmod(0o755)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "labkit.challenges", "serve", "--socket", str(folder / "s.sock"),
                           "--state-dir", str(tmp_path / "state")], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "0700" in done.stderr


# --- a class: JupyterHub's OAuth, the hub API answered by a local stand-in ---------------------------

SERVICE = "labkit-challenges"
USERS = {"tok-ada": {"name": "ada", "admin": False}, "tok-bob": {"name": "bob", "admin": False},
         "tok-lena": {"name": "lena", "admin": False}, "tok-eve": {"name": "eve", "admin": False, "scopes": []}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fake_hub(port: int):
    """``GET /hub/api/user`` with ``Authorization: token T``: the user model JupyterHub returns."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Hub(BaseHTTPRequestHandler):
        def do_GET(self):
            token = self.headers.get("Authorization", "").removeprefix("token ").strip()
            user = USERS.get(token)
            if self.path.rstrip("/") != "/hub/api/user" or user is None:
                self.send_response(403)
                self.end_headers()
                return
            model = {"kind": "user", "groups": [], "session_id": None,
                     "scopes": [f"access:services!service={SERVICE}"], **user}
            body = json.dumps(model).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _http(port: int, method: str, path: str, token: str | None, body=None):
    data = wire.dumps(body) if body is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}/services/{SERVICE}/{path}", data=data, method=method)
    if token:
        request.add_header("Authorization", f"token {token}")
    no_redirect = type("NoRedirect", (urllib.request.HTTPRedirectHandler,),
                       {"redirect_request": lambda *a, **k: None})
    opener = urllib.request.build_opener(no_redirect)  # a redirect to the hub's login is an answer here
    try:
        with opener.open(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


@pytest.fixture(scope="module")
def hub_service(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hub")
    hub_port, port = _free_port(), _free_port()
    hub = _fake_hub(hub_port)
    # JupyterHub's own JUPYTERHUB_API_URL leads nowhere here: --hub-api-url names the hub (as in its pod)
    env = dict(os.environ, PYTHONPATH=str(ROOT), JUPYTERHUB_API_URL=f"http://127.0.0.1:{_free_port()}/hub/api",
               JUPYTERHUB_API_TOKEN=secrets.token_hex(16), JUPYTERHUB_SERVICE_NAME=SERVICE,
               JUPYTERHUB_SERVICE_PREFIX=f"/services/{SERVICE}/",
               # as in a Kubernetes pod: the URL names a Service (unresolvable here), --ip the interface
               JUPYTERHUB_SERVICE_URL=f"http://hub.invalid:{port}",
               # the database URL comes in the environment (a password never on the command line)
               LABKIT_CHALLENGES_DB=f"sqlite:///{tmp / 'from-the-environment.db'}",
               JUPYTERHUB_CLIENT_ID=f"service-{SERVICE}", JUPYTERHUB_HOST="",
               JUPYTERHUB_OAUTH_CALLBACK_URL=f"/services/{SERVICE}/oauth_callback",
               JUPYTERHUB_BASE_URL="/")
    proc = subprocess.Popen([sys.executable, "-m", "labkit.challenges", "serve", "--hub", "--state-dir", str(tmp),
                             "--lecturers", "lena", "--ip", "127.0.0.1",
                             "--hub-api-url", f"http://127.0.0.1:{hub_port}/hub/api"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while not (_port_open(port) and _http(port, "GET", "api/public-key", None)[0] == 200):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read() if proc.poll() else "timeout"
        time.sleep(0.1)
    assert (tmp / "from-the-environment.db").exists() and not (tmp / "challenges.db").exists()
    yield port
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=15)
    hub.shutdown()


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_hub_mode_knows_the_student_from_the_hub_token(hub_service):
    from labkit import des

    status, body = _http(hub_service, "POST", "api/attempts", "tok-ada", {"exercise": "02.3"})
    assert status == 200
    start = wire.loads(body)
    status, body = _http(hub_service, "POST", f"api/attempts/{start['attempt']}/query", "tok-ada",
                         {"oracle": "encrypt", "request": des.complement(start["public"]["target"])})
    answer = des.complement(wire.loads(body)["reply"])
    # bob holds a valid hub token, but the attempt is ada's: he can neither query nor answer it
    assert _http(hub_service, "POST", f"api/attempts/{start['attempt']}/query", "tok-bob",
                 {"oracle": "encrypt", "request": bytes(8)})[0] == 400
    assert _http(hub_service, "POST", "api/answer", "tok-bob",
                 {"exercise": "02.3", "answer": answer, "attempt": start["attempt"]})[0] == 400
    status, body = _http(hub_service, "POST", "api/answer", "tok-ada",
                         {"exercise": "02.3", "answer": answer, "attempt": start["attempt"]})
    verdict = wire.loads(body)
    public = bytes.fromhex(wire.loads(_http(hub_service, "GET", "api/public-key", None)[1])["public_key"])
    assert receipts.verify_receipt(verdict["receipt"], public, student="ada", exercise="02.3")
    with pytest.raises(receipts.ReceiptError):
        receipts.verify_receipt(verdict["receipt"], public, student="bob")


def test_hub_mode_refuses_requests_without_a_valid_token_or_scope(hub_service):
    body = {"exercise": "02.3"}
    assert _http(hub_service, "POST", "api/attempts", None, body)[0] in (302, 403)
    assert _http(hub_service, "POST", "api/attempts", "tok-forged", body)[0] in (302, 403)
    assert _http(hub_service, "POST", "api/attempts", "tok-eve", body)[0] == 403  # no access scope
    assert _http(hub_service, "GET", "results.csv", None)[0] in (302, 403)


def test_the_lecturer_sees_everyone_a_student_only_themself(hub_service):
    _http(hub_service, "POST", "api/answer", "tok-bob", {"exercise": "02.10", "answer": "a"})
    status, csv_text = _http(hub_service, "GET", "results.csv", "tok-lena")
    lines = csv_text.decode().strip().splitlines()
    assert status == 200 and lines[0] == "student,exercise,answers,first_answer_utc,solved_utc"
    students = {line.split(",")[0] for line in lines[1:]}
    assert {"ada", "bob"} <= students
    own = _http(hub_service, "GET", "results.csv", "tok-bob")[1].decode().strip().splitlines()[1:]
    assert own and all(line.startswith("bob,") for line in own)
    status, page = _http(hub_service, "GET", "", "tok-lena")
    assert status == 200 and b"ada" in page and b"02.3" in page and b"Download CSV" in page


@pytest.mark.parametrize("exercise, limit", [("02.9", 10), ("03.9", 3)])
def test_small_secrets_allow_a_few_wrong_answers_per_attempt(service, exercise, limit):
    """A 24-bit cookie or 8 key bits must not be guessed through the check: past ``limit`` wrong
    answers an attempt refuses every answer, the right one included (a new attempt is a new secret)."""
    from labkit import spn

    start = service.start("ada", exercise)
    state = wire.loads(service.db.attempt(start["attempt"])["state"])  # white box
    right = state["cookie"] if exercise == "02.9" else spn.round_keys(state["key"])[4] & 0x0F0F
    wrong = [v for v in range(0, 0x0F0F + 1, 0x0101) if v != right][:limit]
    assert not any(service.answer("ada", exercise, v, start["attempt"])["correct"] for v in wrong)
    refused = service.answer("ada", exercise, right, start["attempt"])
    assert not refused["correct"] and "wrong answers" in refused["message"] and refused["receipt"] is None
