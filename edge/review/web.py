"""What every page of the review app shares: its state (config, store, sessions), rendering, logins and
roles, reading a form (size-limited, CSRF-checked), and CSV downloads."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, quote
from zoneinfo import ZoneInfo

from jinja2 import Environment
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from edge.config import Config
from edge.review.auth import LoginThrottle, Session, Sessions, same_token
from edge.review.tables import csv_text
from edge.store.queries import open_log
from edge.store.review_records import ReviewStore

log = logging.getLogger("agecam.review")
COOKIE = "agecam_session"
# A note is at most 2000 characters: percent-encoded, 18,000 bytes in a 3-byte script (CJK). Far bigger is
# not our form.
MAX_FORM_BYTES = 24 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"


@dataclass
class Context:
    config: Config
    db_path: Path
    zone: ZoneInfo
    store: ReviewStore
    sessions: Sessions
    throttle: LoginThrottle
    env: Environment

    @property
    def secure_cookies(self) -> bool:
        return self.config.review.tls is not None  # behind a TLS proxy the browser speaks HTTPS

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read-only connection for one request."""
        db = open_log(self.db_path)
        try:
            yield db
        finally:
            db.close()

    def render(self, request: Request, template: str, status: int = 200, **values: object) -> HTMLResponse:
        session: Session | None = values.pop("session", None) or getattr(request.state, "session", None)
        page = self.env.get_template(template).render(
            request=request, session=session, zone=self.config.review.timezone, **values
        )
        return HTMLResponse(page, status_code=status, headers={"Cache-Control": "no-store"})


def context(request: Request) -> Context:
    return request.app.state.context


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


def _session(request: Request, role: str) -> Session | None:
    session = context(request).sessions.get(request.cookies.get(COOKIE))
    if session is not None and role == "reviewer" and not session.can_review:
        raise HTTPException(403, "Only reviewers can do this: ask a reviewer, or log in as one.")
    request.state.session = session
    return session


Page = Callable[[Request, Context, Session], Response]
Action = Callable[[Request, Context, Session, dict[str, str]], Response]


def page(role: str = "viewer") -> Callable[[Page], Callable[[Request], Response]]:
    """A GET page for logged-in users with `role` (reviewer includes viewer). Runs in a worker thread."""

    def wrap(handler: Page) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            session = _session(request, role)
            if session is None:
                return login_redirect(request)
            return handler(request, context(request), session)

        return endpoint

    return wrap


def action(role: str) -> Callable[[Action], Callable[[Request], Awaitable[Response]]]:
    """A POST form for logged-in users with `role`: the body is size-limited and must carry the session's
    CSRF token."""

    def wrap(handler: Action) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            session = _session(request, role)
            if session is None:
                return login_redirect(request)
            form = await read_form(request)
            if not same_token(form.get("csrf"), session.csrf):
                raise HTTPException(
                    403, "This form's security token is missing or stale: reload the page and try again."
                )
            return await run_in_threadpool(handler, request, context(request), session, form)

        return endpoint

    return wrap


async def read_form(request: Request) -> dict[str, str]:
    """An URL-encoded form of at most MAX_FORM_BYTES, read without trusting Content-Length."""
    if request.headers.get("content-type", "").split(";")[0].strip() != FORM_TYPE:
        raise HTTPException(415, "Send the form as the page does (application/x-www-form-urlencoded).")
    declared = request.headers.get("content-length", "0")
    if not declared.isdigit() or int(declared) > MAX_FORM_BYTES:
        raise HTTPException(413, f"The form is larger than {MAX_FORM_BYTES // 1024} KiB: shorten the note.")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise HTTPException(413, f"The form is larger than {MAX_FORM_BYTES // 1024} KiB: shorten the note.")
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=20))
    except (UnicodeDecodeError, ValueError):
        raise HTTPException(400, "The form could not be read: reload the page and try again.") from None


def csv_download(filename: str, header: list[str], rows: list[list[object]]) -> Response:
    """A CSV file; cells that a spreadsheet would run as a formula are escaped (tables.spreadsheet_safe)."""
    return Response(
        csv_text(header, rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )
