"""The challenge service on the web: tornado handlers, the two ways to run it, and a lecturer's page.

- **Self-study** (``--socket PATH``): the lab starts it on first use (:mod:`labkit.challenges.client`)
  as a separate process listening on a Unix socket of mode 0600 in a directory of mode 0700, so
  only this user's processes reach it; the student is this user. It stops when the process that
  started it (the kernel) is gone.
- **A class** (``--hub``): a JupyterHub service. The hub's OAuth (``HubOAuthenticated``) says who
  the student is, from the browser's cookie or from the kernel's ``JUPYTERHUB_API_TOKEN``; secrets
  are drawn per student and per attempt; lecturers (hub admins or ``--lecturers``) see who solved
  what, with answers and times, and download it as CSV.

API (JSON in the wire format of :mod:`labkit.challenges.wire`), under the service's prefix:
``POST api/attempts`` {exercise, fresh}; ``GET api/attempts/<id>``; ``POST api/attempts/<id>/query``
{oracle, request}; ``POST api/answer`` {exercise, answer, attempt}; ``GET api/public-key``;
``GET`` the page; ``GET results.csv``.
"""
from __future__ import annotations

import csv
import html
import io
import os
import time
from concurrent.futures import ThreadPoolExecutor

from tornado import web
from tornado.ioloop import IOLoop

from labkit.challenges import wire
from labkit.challenges.core import BudgetExceeded, ChallengeService, RequestRefused
from labkit.challenges.definitions import ChallengeError

__all__ = ["make_app", "MAX_BODY"]

MAX_BODY = 64 * 1024 * 1024


class _LocalUser:
    """Self-study: the one student is the user who owns the socket."""

    def get_current_user(self):
        return {"name": self.settings["labkit_student"], "admin": True}


class _Handler(web.RequestHandler):
    @property
    def service(self) -> ChallengeService:
        return self.settings["labkit_service"]

    @property
    def student(self) -> str:
        return self.current_user["name"]

    def is_lecturer(self) -> bool:
        user = self.current_user or {}
        return bool(self.settings.get("labkit_student")) or bool(user.get("admin")) or \
            user.get("name") in self.settings["labkit_lecturers"]

    def body(self):
        try:
            value = wire.loads(self.request.body)
        except wire.WireError as err:
            raise web.HTTPError(400, str(err)) from None
        if not isinstance(value, dict):
            raise web.HTTPError(400, "the request body is a JSON object")
        return value

    def reply(self, value, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(wire.dumps(value))

    async def run(self, fn, *args):
        """Run service work off the event loop (networks evaluate in threads; torch releases the GIL)."""
        try:
            return await IOLoop.current().run_in_executor(self.settings["labkit_pool"], fn, *args)
        except BudgetExceeded as err:
            self.reply({"error": str(err), "kind": "budget"}, 429)
        except (RequestRefused, ChallengeError, wire.WireError) as err:
            self.reply({"error": str(err), "kind": "refused"}, 400)
        return None

    def write_error(self, status_code, **kwargs):
        reason = self._reason
        exc = kwargs.get("exc_info", (None, None))[1]
        if isinstance(exc, web.HTTPError) and exc.log_message:
            reason = exc.log_message
        self.set_header("Content-Type", "application/json")
        self.finish(wire.dumps({"error": reason, "kind": "http"}))


class AttemptsHandler(_Handler):
    @web.authenticated
    async def post(self):
        body = self.body()
        result = await self.run(self.service.start, self.student, body.get("exercise"), bool(body.get("fresh")))
        if result is not None:
            self.reply(result)


class AttemptHandler(_Handler):
    @web.authenticated
    async def get(self, attempt):
        result = await self.run(self.service.status, self.student, attempt)
        if result is not None:
            self.reply(result)


class QueryHandler(_Handler):
    @web.authenticated
    async def post(self, attempt):
        body = self.body()
        result = await self.run(self.service.query, self.student, attempt, body.get("oracle"), body.get("request"))
        if result is not None:
            self.reply(result)


class AnswerHandler(_Handler):
    @web.authenticated
    async def post(self):
        body = self.body()
        result = await self.run(self.service.answer, self.student, body.get("exercise"), body.get("answer"),
                                body.get("attempt"))
        if result is not None:
            self.reply(result)


class PublicKeyHandler(_Handler):
    def get(self):
        self.reply({"public_key": self.service.public_key.hex(), "service": self.service.name})


def _when(stamp) -> str:
    return "" if stamp is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(stamp))


class PageHandler(_Handler):
    """Who solved what (lecturers: every student; a student: their own rows)."""

    @web.authenticated
    def get(self):
        rows = self.service.results(None if self.is_lecturer() else self.student)
        cells = "".join(
            f"<tr><td>{html.escape(r['student'])}</td><td>{html.escape(r['exercise'])}</td>"
            f"<td>{r['answers']}</td><td>{_when(r['first_answer'])}</td><td>{_when(r['solved'])}</td></tr>"
            for r in rows)
        solved = sum(r["solved"] is not None for r in rows)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(
            "<!doctype html><meta charset=utf-8><title>Challenge results</title>"
            f"<h1>Challenge results</h1><p>{solved} solved of {len(rows)} exercises tried "
            f"(times UTC). <a href='results.csv'>Download CSV</a>. Service public key (for graders): "
            f"<code>{self.service.public_key.hex()}</code></p>"
            "<table border=1 cellpadding=4><tr><th>student</th><th>exercise</th><th>answers</th>"
            f"<th>first answer</th><th>solved</th></tr>{cells}</table>")


class CsvHandler(_Handler):
    @web.authenticated
    def get(self):
        rows = self.service.results(None if self.is_lecturer() else self.student)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["student", "exercise", "answers", "first_answer_utc", "solved_utc"])
        for r in rows:
            writer.writerow([r["student"], r["exercise"], r["answers"], _when(r["first_answer"]), _when(r["solved"])])
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.set_header("Content-Disposition", "attachment; filename=challenge-results.csv")
        self.finish(out.getvalue())


def make_app(service: ChallengeService, *, prefix: str = "/", student: str | None = None, hub: bool = False,
             lecturers: tuple[str, ...] = (), threads: int = 2) -> web.Application:
    """The tornado application: ``student`` for self-study, or ``hub=True`` behind JupyterHub."""
    if hub == (student is not None):
        raise ValueError("give either student (self-study) or hub=True (a class), not both")
    if not prefix.endswith("/"):
        prefix += "/"
    handlers = [("api/attempts", AttemptsHandler), (r"api/attempts/([A-Za-z0-9_-]+)", AttemptHandler),
                (r"api/attempts/([A-Za-z0-9_-]+)/query", QueryHandler), ("api/answer", AnswerHandler),
                ("api/public-key", PublicKeyHandler), ("", PageHandler), ("results.csv", CsvHandler)]
    routes = []
    for path, handler in handlers:
        if hub:
            from jupyterhub.services.auth import HubOAuthenticated

            handler = type(handler.__name__, (HubOAuthenticated, handler), {})
        else:
            handler = type(handler.__name__, (_LocalUser, handler), {})
        routes.append((prefix + path, handler))
    settings = {"labkit_service": service, "labkit_student": student, "labkit_lecturers": set(lecturers),
                "labkit_pool": ThreadPoolExecutor(max_workers=threads, thread_name_prefix="labkit-challenge"),
                "cookie_secret": os.urandom(32), "xsrf_cookies": False}
    if hub:
        from jupyterhub.services.auth import HubOAuthCallbackHandler

        routes.append((prefix + "oauth_callback", HubOAuthCallbackHandler))
    return web.Application(routes, **settings)
