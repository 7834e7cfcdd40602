"""The review app for loss-prevention staff (`agecam serve`): a Starlette app over the event log, pages
rendered on the server from Jinja2 templates, no script. `GET /health` is open; everything else needs a
login. Bad input gets a 4xx page that says what to change; an internal error is logged, never shown.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.convertors import Convertor, register_url_convertor
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edge.config import Config
from edge.errors import AgecamError
from edge.review import flag_page, pages
from edge.review.auth import LoginThrottle, Sessions, same_token, verify_password
from edge.review.inputs import BadInput
from edge.review.templating import environment
from edge.review.web import COOKIE, Context, action, context, log, read_form
from edge.store.eventlog import EventLog
from edge.store.review_records import ReviewStore
from edge.store.storage import storage_problem

LOGIN_COOKIE = "agecam_login"  # a nonce, so the login form can carry a CSRF token before any session
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self';"
    " frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class FlagId(Convertor[int]):
    """A flag id in a path: at most 18 digits, so it fits SQLite's 64-bit integers (a longer one was a 500:
    an OverflowError in the query, or int()'s limit on digits); longer is no page, a 404."""

    regex = "[0-9]{1,18}"

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        return str(value)


register_url_convertor("flag_id", FlagId())


class SecurityHeaders:
    """Adds HEADERS to every response, error pages included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for key, value in HEADERS.items():
                    headers.setdefault(key, value)
            await send(message)

        await self.app(scope, receive, send_with_headers if scope["type"] == "http" else send)


def health(request: Request) -> Response:
    """Open to all (a load balancer or monitor): ok when the event log opens as agecam's."""
    try:
        with context(request).read():
            pass
    except (AgecamError, sqlite3.Error) as error:
        return JSONResponse({"status": "error", "error": str(error)}, status_code=503)
    return JSONResponse({"status": "ok"})


def _safe_next(target: str | None) -> str:
    """Only a path on this site, never another host (an open redirect): browsers read '//host' and
    '/\\host' as another site."""
    target = target or "/"
    parts = urlsplit(target)
    if (
        parts.scheme
        or parts.netloc
        or not target.startswith("/")
        or target.startswith("//")
        or not target.isprintable()
    ):
        return "/"
    return "/" if "\\" in target or " " in target else target


def _login_token(ctx: Context, nonce: str) -> str:
    return ctx.sessions.sign(f"login:{nonce}")


def login_form(request: Request, message: str | None = None, status: int = 200, name: str = "") -> Response:
    ctx = context(request)
    nonce = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(16)
    response = ctx.render(
        request, "login.html", status, title="Log in", message=message, csrf=_login_token(ctx, nonce),
        next=_safe_next(request.query_params.get("next")), name=name,
    )  # fmt: skip
    response.set_cookie(LOGIN_COOKIE, nonce, httponly=True, samesite="strict", secure=ctx.secure_cookies)
    return response


async def login(request: Request) -> Response:
    ctx = context(request)
    form = await read_form(request)
    name, password = form.get("name", "")[:64], form.get("password", "")
    address = request.client.host if request.client else "?"
    if not same_token(form.get("csrf"), _login_token(ctx, request.cookies.get(LOGIN_COOKIE, ""))):
        raise HTTPException(403, "The login form's security token is missing or stale: reload the page.")
    if wait := ctx.throttle.begin(name, address):
        log.warning("login refused for %r from %s: too many failures", name, address)
        message = f"Too many failed logins: try again in {int(wait // 60) + 1} minutes."
        return login_form(request, message, 429, name)
    account = ctx.config.review.accounts.get(name)
    # scrypt takes tens of milliseconds: off the event loop, so other requests go on meanwhile.
    if not await run_in_threadpool(verify_password, password, account.password_hash if account else None):
        log.warning("failed login for %r from %s", name, address)
        return login_form(request, "Wrong name or password.", 401, name)
    ctx.throttle.succeeded(name, address)
    cookie, _ = ctx.sessions.start(name, account.role)
    log.info("login: %s (%s) from %s", name, account.role, address)
    response = RedirectResponse(_safe_next(form.get("next")), status_code=303)
    response.set_cookie(COOKIE, cookie, httponly=True, samesite="strict", secure=ctx.secure_cookies)
    response.delete_cookie(LOGIN_COOKIE, httponly=True, samesite="strict", secure=ctx.secure_cookies)
    return response


@action("viewer")
def logout(request: Request, ctx: Context, session: object, form: dict[str, str]) -> Response:
    ctx.sessions.end(request.cookies.get(COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, httponly=True, samesite="strict", secure=ctx.secure_cookies)
    return response


async def http_error(request: Request, error: Exception) -> Response:
    status = getattr(error, "status_code", 400)
    detail = str(getattr(error, "detail", None) or error)
    if status == 404 and detail == "Not Found":
        detail = f"There is no page at {request.url.path}."
    response = _error_page(request, status, detail)
    response.headers.update(getattr(error, "headers", None) or {})  # a 405's Allow, which HTTP requires
    return response


async def bad_input(request: Request, error: Exception) -> Response:
    return _error_page(request, 400, str(error))


async def storage_error(request: Request, error: Exception) -> Response:
    """The event log refused the request for now (read-only, a full disk, a lock held past the 10 s wait):
    a 503 that says so and what to fix, not a 500 "on our side" with a traceback. Other errors still are."""
    problem = storage_problem(error, context(request).db_path)
    if problem is None:
        return await internal_error(request, error)
    log.warning("%s %s refused by the event log: %s", request.method, request.url.path, problem)
    done = "nothing was saved" if request.method == "POST" else "this page could not be shown"
    detail = f"The event log cannot be used now, so {done}: {problem}. Try again once that is fixed."
    response = _error_page(request, 503, detail)
    response.headers["Retry-After"] = "30"
    return response


async def internal_error(request: Request, error: Exception) -> Response:
    log.error("internal error on %s %s", request.method, request.url.path, exc_info=error)
    return _error_page(request, 500, "Something went wrong on our side; it has been logged. Try again later.")


def _error_page(request: Request, status: int, detail: str) -> Response:
    ctx = context(request)
    return ctx.render(request, "error.html", status, title=f"Error {status}", detail=detail)


def create_app(config: Config, db_path: Path) -> Starlette:
    """The app over the event log at db_path, upgraded in place to the current schema first."""
    writer = EventLog(db_path, durable=True)  # an outcome is on disk before the reviewer sees it saved
    zone = ZoneInfo(config.review.timezone)
    review = config.review
    ctx = Context(
        config=config,
        db_path=db_path,
        zone=zone,
        store=ReviewStore(writer),
        sessions=Sessions(idle_s=review.session_minutes * 60),
        throttle=LoginThrottle(review.max_failed_logins, review.lockout_minutes * 60),
        env=environment(zone),
    )
    routes = [
        Route("/health", health),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/", pages.overview_page),
        Route("/flags", pages.flags_page),
        Route("/flags/{flag_id:flag_id}", flag_page.flag_page),
        Route("/flags/{flag_id:flag_id}/outcome", flag_page.set_outcome, methods=["POST"]),
        Route("/flags/{flag_id:flag_id}/evidence", flag_page.evidence),
        Route("/compliance", pages.compliance_page),
        Route("/transactions", pages.transactions_page),
        Route("/tills", pages.tills_page),
        Route("/audit", pages.audit_page),
        Mount("/static", StaticFiles(packages=[("edge.review", "static")]), name="static"),
    ]

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        writer.close()

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={
            HTTPException: http_error,
            BadInput: bad_input,
            sqlite3.Error: storage_error,
            Exception: internal_error,
        },
    )
    app.state.context = ctx
    return app
