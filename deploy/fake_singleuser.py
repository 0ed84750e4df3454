"""A stand-in for jupyterhub-singleuser in the load test's hub-only mode (``loadtest.py --no-kernels``).

It costs about 15 MiB where a real server with a kernel costs 550, so one machine can put a few
hundred students in front of the hub: it listens where the hub told it (``JUPYTERHUB_SERVICE_URL``),
checks each new token with the hub's API as a real server does (``GET /hub/api/user``, then
cached), answers under its prefix, and reports activity to the hub like jupyterhub-singleuser
(``POST /hub/api/users/<name>/activity``). What it measures is the hub and the proxy, not the lab.
"""
from __future__ import annotations

import json
import os
import threading
import time
import urllib.request
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

API = os.environ["JUPYTERHUB_API_URL"].rstrip("/")
TOKEN = os.environ["JUPYTERHUB_API_TOKEN"]
USER = os.environ["JUPYTERHUB_USER"]
PREFIX = os.environ["JUPYTERHUB_SERVICE_PREFIX"]
ACTIVITY_S = float(os.environ.get("LOADTEST_ACTIVITY_S", "10"))
known: set[str] = set()


def hub(method: str, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(API + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"{}")


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        token = self.headers.get("Authorization", "").removeprefix("token ").strip()
        if token and token not in known:  # as jupyterhub-singleuser: ask the hub who holds the token
            request = urllib.request.Request(API + "/user", headers={"Authorization": f"token {token}"})
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    if json.loads(response.read()).get("name") == USER:
                        known.add(token)
            except Exception:
                pass
        status = 200 if (token in known or self.path.rstrip("/") + "/" == PREFIX) else 403
        body = json.dumps({"started": True, "user": USER}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def report_activity() -> None:
    while True:
        now = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
        try:
            hub("POST", f"/users/{USER}/activity", {"last_activity": now, "servers": {"": {"last_activity": now}}})
        except Exception:
            pass
        time.sleep(ACTIVITY_S)


if __name__ == "__main__":
    url = urlsplit(os.environ["JUPYTERHUB_SERVICE_URL"])
    threading.Thread(target=report_activity, daemon=True).start()
    ThreadingHTTPServer((url.hostname, url.port), Handler).serve_forever()
