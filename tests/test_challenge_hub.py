"""The challenge service as a real JupyterHub service (JupyterHub 6, configurable-http-proxy, on
loopback): the hub starts it, the hub's tokens say who the student is, and a student's kernel
(``labkit.exercises`` with ``LABKIT_CHALLENGES_URL`` and the server's token, as the deploy
config sets them) attacks, answers and gets a receipt issued to that student only."""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from labkit.challenges import receipts, wire

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "deploy"))
import loadtest  # noqa: E402

SERVICE = "labkit-challenges"
pytestmark = pytest.mark.slow


def _request(url: str, method: str = "GET", token: str | None = None, body: bytes | None = None):
    request = urllib.request.Request(url, data=body, method=method)
    if token:
        request.add_header("Authorization", f"token {token}")
    no_redirect = type("NoRedirect", (urllib.request.HTTPRedirectHandler,), {"redirect_request": lambda *a, **k: None})
    try:
        with urllib.request.build_opener(no_redirect).open(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    try:
        proxy = loadtest.ensure_proxy()
    except (FileNotFoundError, subprocess.SubprocessError) as err:
        pytest.skip(f"configurable-http-proxy is not installable here: {err}")
    work = tmp_path_factory.mktemp("hub")
    port, hub_port, api_port, service_port = (loadtest.free_port() for _ in range(4))
    admin = secrets.token_hex(32)
    settings = {
        "JupyterHub.bind_url": f"http://127.0.0.1:{port}", "JupyterHub.hub_bind_url": f"http://127.0.0.1:{hub_port}",
        "ConfigurableHTTPProxy.api_url": f"http://127.0.0.1:{api_port}", "ConfigurableHTTPProxy.command": [str(proxy)],
        "JupyterHub.authenticator_class": "dummy", "DummyAuthenticator.password": secrets.token_hex(16),
        "JupyterHub.db_url": f"sqlite:///{work / 'jupyterhub.sqlite'}",
        "JupyterHub.cookie_secret_file": str(work / "cookie_secret"), "JupyterHub.log_level": "WARN",
        "JupyterHub.services": [
            {"name": "tester", "api_token": admin},
            {"name": SERVICE, "url": f"http://127.0.0.1:{service_port}", "oauth_no_confirm": True,
             "command": [sys.executable, "-m", "labkit.challenges", "serve", "--hub", "--state-dir",
                         str(work / "challenges"), "--lecturers", "lena"],
             "environment": {"PYTHONPATH": str(ROOT)}}],
        "JupyterHub.load_roles": [
            {"name": "tester", "services": ["tester"], "scopes": ["admin:users", "tokens", "list:users"]},
            {"name": "user", "scopes": ["self", f"access:services!service={SERVICE}"]}],
    }
    (work / "jupyterhub_config.py").write_text(
        "c = get_config()  # noqa: F821\n" + "".join(f"c.{k} = {v!r}\n" for k, v in settings.items()))
    log = open(work / "jupyterhub.log", "w")
    process = subprocess.Popen([str(loadtest.BIN / "jupyterhub"), "-f", "jupyterhub_config.py"], cwd=work,
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                               env=dict(os.environ, PATH=os.pathsep.join([str(loadtest.BIN), os.environ["PATH"]])))
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if _request(f"{base}/services/{SERVICE}/api/public-key")[0] == 200:
                break
        except OSError:
            pass
        assert process.poll() is None and time.monotonic() < deadline, (work / "jupyterhub.log").read_text()[-3000:]
        time.sleep(0.5)
    tokens = {}
    for name in ("ada", "bob", "lena"):
        _request(f"{base}/hub/api/users/{name}", "POST", admin, b"{}")
        status, body = _request(f"{base}/hub/api/users/{name}/tokens", "POST", admin, json.dumps(
            {"scopes": [f"access:services!service={SERVICE}"], "note": "test"}).encode())
        assert status in (200, 201), body
        tokens[name] = json.loads(body)["token"]
    yield base, tokens
    os.killpg(process.pid, 15)
    process.wait(timeout=30)
    log.close()


def _api(base, token, method, path, value=None):
    status, body = _request(f"{base}/services/{SERVICE}/{path}", method, token,
                            None if value is None else wire.dumps(value))
    return status, (wire.loads(body) if body[:1] == b"{" else body)


def test_a_kernel_attacks_through_the_hub_and_gets_a_receipt_for_its_student_only(hub):
    base, tokens = hub
    script = ("from labkit import des, exercises as ex\n"
              "from labkit.exercises import ch02_des\n"
              "oracle, target = ch02_des.complement_challenge()\n"
              "feedback = ex.check('02.3', des.complement(oracle(des.complement(target))))\n"
              "print('RECEIPT', feedback.receipt)\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT), LABKIT_CHALLENGES_URL=f"{base}/services/{SERVICE}/",
               JUPYTERHUB_API_TOKEN=tokens["ada"], LABKIT_PROGRESS="off")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    receipt = next(line.split()[1] for line in out.stdout.splitlines() if line.startswith("RECEIPT"))
    public = bytes.fromhex(_api(base, None, "GET", "api/public-key")[1]["public_key"])
    assert receipts.verify_receipt(receipt, public, student="ada", exercise="02.3").student == "ada"
    with pytest.raises(receipts.ReceiptError):
        receipts.verify_receipt(receipt, public, student="bob", exercise="02.3")


def test_the_hub_decides_who_may_use_an_attempt(hub):
    base, tokens = hub
    status, start = _api(base, tokens["ada"], "POST", "api/attempts", {"exercise": "06.8"})
    assert status == 200 and start["budget"] == 1 << 16
    assert _api(base, tokens["bob"], "GET", f"api/attempts/{start['attempt']}")[0] == 400
    assert _api(base, None, "POST", "api/attempts", {"exercise": "06.8"})[0] in (302, 403)
    assert _api(base, "not-a-token", "POST", "api/attempts", {"exercise": "06.8"})[0] in (302, 403)


def test_the_lecturers_csv_lists_every_student(hub):
    base, tokens = hub
    _api(base, tokens["bob"], "POST", "api/answer", {"exercise": "02.10", "answer": "a"})
    status, text = _request(f"{base}/services/{SERVICE}/results.csv", token=tokens["lena"])
    rows = text.decode().strip().splitlines()
    assert status == 200 and {"ada", "bob"} <= {r.split(",")[0] for r in rows[1:]}
    status, text = _request(f"{base}/services/{SERVICE}/results.csv", token=tokens["bob"])
    assert all(r.startswith("bob,") for r in text.decode().strip().splitlines()[1:])
