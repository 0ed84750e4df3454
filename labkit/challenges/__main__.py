"""Run the challenge service, or print its public key for graders.

    python -m labkit.challenges serve --socket DIR/service.sock [--state-dir DIR] [--parent-pid PID]
    python -m labkit.challenges serve --hub [--db postgresql://...] [--notebooks DIR] [--lecturers a,b]
    python -m labkit.challenges public-key [--state-dir DIR]

``--state-dir`` holds the service's signing key (mode 0600), its public key (``service_key.pub``)
and, unless ``--db`` or ``$LABKIT_CHALLENGES_DB`` names another database, the SQLite file
``challenges.db``. A PostgreSQL URL carries a password: give it in the environment, which only this
process's owner can read, not on the command line, which every local user sees (``ps``). In hub
mode the address and prefix come from JupyterHub's environment (``JUPYTERHUB_SERVICE_URL``,
``JUPYTERHUB_SERVICE_PREFIX``); ``--ip`` binds another address than the URL's host (in a
Kubernetes pod the URL names the pod's Service, and the service listens on the pod's interfaces),
and ``--hub-api-url`` reaches the hub's API by another address than ``JUPYTERHUB_API_URL`` (in the
hub's own pod: ``http://127.0.0.1:8081/hub/api`` rather than back through the hub's Service).
"""
from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path
from urllib.parse import urlparse

from labkit import ed25519
from labkit.challenges import client

DB_ENV = "LABKIT_CHALLENGES_DB"


def _serve(args) -> int:
    from tornado.httpserver import HTTPServer
    from tornado.ioloop import IOLoop, PeriodicCallback
    from tornado.netutil import bind_unix_socket

    from labkit.challenges.answers import default_notebooks
    from labkit.challenges.core import ChallengeService, load_service_key
    from labkit.challenges.db import Database
    from labkit.challenges.server import MAX_BODY, make_app

    os.umask(0o077)  # the database and its journal: this user's only
    # worker threads each evaluate one batch: one torch thread apiece keeps them from fighting over cores
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    state = Path(args.state_dir)
    key = load_service_key(state)
    db = Database(args.db or os.environ.get(DB_ENV) or f"sqlite:///{state / 'challenges.db'}")
    service = ChallengeService(db, key, name=args.name, notebooks=args.notebooks or default_notebooks(),
                               memo_size=args.memo)
    if args.hub:
        url = urlparse(os.environ.get("JUPYTERHUB_SERVICE_URL", f"http://127.0.0.1:{args.port}"))
        prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/")
        lecturers = tuple(n for n in (args.lecturers or "").split(",") if n)
        if args.hub_api_url:  # the one HubOAuth every handler shares, made before any request
            from jupyterhub.services.auth import HubOAuth

            HubOAuth.instance(api_url=args.hub_api_url)
        app = make_app(service, prefix=prefix, hub=True, lecturers=lecturers, threads=args.threads)
        server = HTTPServer(app, max_body_size=MAX_BODY)
        server.listen(url.port or 80, args.ip or url.hostname or "127.0.0.1")
    else:
        student = args.student or os.environ.get("LABKIT_STUDENT") or getpass.getuser()
        app = make_app(service, student=student, threads=args.threads)
        server = HTTPServer(app, max_body_size=MAX_BODY)
        if not args.socket:  # a loopback port would let every local user in as this student
            print("self-study mode listens on a private Unix socket: give --socket (or --hub)", file=sys.stderr)
            return 2
        folder = Path(args.socket).parent
        if folder.stat().st_mode & 0o077:
            print(f"refusing to serve: {folder} is reachable by other users (needs mode 0700)", file=sys.stderr)
            return 2
        server.add_socket(bind_unix_socket(args.socket, mode=0o600))
    loop = IOLoop.current()
    if args.parent_pid:
        def watch():
            try:
                os.kill(args.parent_pid, 0)
            except OSError:  # the kernel that started us is gone: so are we
                loop.stop()
        PeriodicCallback(watch, 1000).start()
    try:
        loop.start()
    finally:
        server.stop()
        if args.socket:
            Path(args.socket).unlink(missing_ok=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m labkit.challenges", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the challenge service")
    serve.add_argument("--state-dir", default=str(client.state_dir()))
    serve.add_argument("--db", help=f"database URL (default: ${DB_ENV}, else SQLite in the state dir)")
    serve.add_argument("--notebooks", help="instructor notebooks folder (the quiz answer key)")
    serve.add_argument("--socket", help="self-study: the Unix socket to listen on")
    serve.add_argument("--port", type=int, default=10101, help="hub mode: TCP port on 127.0.0.1 without JUPYTERHUB_SERVICE_URL")
    serve.add_argument("--ip", help="hub mode: the address to listen on (default: the service URL's host)")
    serve.add_argument("--hub-api-url", help="hub mode: the hub's API (default: $JUPYTERHUB_API_URL)")
    serve.add_argument("--hub", action="store_true", help="run as a JupyterHub service (hub OAuth)")
    serve.add_argument("--student", help="self-study: the student's name (default: $LABKIT_STUDENT, else this user)")
    serve.add_argument("--lecturers", help="hub mode: comma-separated users who see every result")
    serve.add_argument("--parent-pid", type=int, help="stop when this process is gone")
    serve.add_argument("--name", default="labkit-challenges", help="the service name written into receipts")
    serve.add_argument("--threads", type=int, default=2, help="worker threads evaluating oracles")
    serve.add_argument("--memo", type=int, default=64, help="built networks kept in memory (LRU)")
    pub = sub.add_parser("public-key", help="print the raw Ed25519 public key (hex) graders pin")
    pub.add_argument("--state-dir", default=str(client.state_dir()))
    args = parser.parse_args(argv)
    if args.command == "public-key":
        from labkit.challenges.core import load_service_key

        print(ed25519.public_key_bytes(load_service_key(args.state_dir)).hex())
        return 0
    return _serve(args)


if __name__ == "__main__":
    sys.exit(main())
