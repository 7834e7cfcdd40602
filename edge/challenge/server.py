"""The live POS endpoint: POST /events (one JSON event a request), GET /health.

An event is acknowledged (202 with its row id) only after it is committed to the event log. Bad requests
get a 4xx with a JSON error, are counted and tallied into `pos_rejects` (edge.challenge.rejects), and never
stop the service; only a failed commit gets 503 (retry). The HTTP side (edge.challenge.endpoint) runs as an
asyncio loop on one thread and commits on one more, so neither the number of clients nor a slow one can
take threads, descriptors or the GIL from the frame loop.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from edge.challenge.endpoint import MAX_HEADER_BYTES, Endpoint, Reply, Request
from edge.challenge.events import BadEvent, PosEvent, parse_json
from edge.challenge.rejects import RejectTally, Window, shorten
from edge.config import PosConfig
from edge.errors import ConfigError
from edge.store.pos_records import PosStore

log = logging.getLogger(__name__)
ROUTES = {"/events": "POST", "/health": "GET"}
STOP_TIMEOUT_S = 5.0
FLUSH_EVERY_S = 1.0
LISTEN_QUEUE = 4096  # connections the kernel holds until accepted: a burst of reconnects waits, no SYN is dropped
# Acknowledged events waiting in memory for the frame loop, which takes them all at each frame. No frame comes
# while the camera reconnects, so without a bound a POS (or a flood) grew the till's memory by ~1.7 KB an
# event for as long as that lasted; past it an event gets 503 before it is stored, so none acknowledged is lost.
MAX_WAITING = 10_000
TALLIED = {
    "turned_away": "new connections closed unanswered at the connection limit",
    "evicted": "waiting connections closed for a complete request at the connection limit",
    "accept_failed": "failures to accept a connection (no descriptor left?)",
    "unstored": "events not stored (503)",
}


class PosServer:
    """Serves on its own thread once started. Accepted events go to `events` as (event, t) for the main loop."""

    def __init__(self, settings: PosConfig) -> None:
        """Binds the port at once, so a port in use fails before any run is started."""
        self.settings = settings
        self.store: PosStore | None = None
        self.clock: Callable[[], float] = time.monotonic
        self.events: queue.Queue[tuple[PosEvent, float]] = queue.Queue()
        self.accepted = 0
        self.tally = RejectTally()
        self.sock = _listen(settings.host, settings.port)
        self.endpoint = Endpoint(
            self.sock,
            self,
            settings.max_connections,
            settings.request_timeout_s,
            MAX_HEADER_BYTES + settings.max_body_bytes,
        )
        # One commit at a time on the server's connection, off the event loop (an fsync takes milliseconds).
        self._commits = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pos-commit")
        self._thread = threading.Thread(target=self._run, name="pos-http", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    @property
    def rejected(self) -> int:
        return self.tally.total

    def start(self, store: PosStore, clock: Callable[[], float]) -> None:
        """`clock` gives policy seconds (see monotonic_clock)."""
        self.store, self.clock = store, clock
        self._thread.start()
        self._ready.wait(STOP_TIMEOUT_S)
        limits = f"at most {self.settings.max_connections} connections, {self.settings.request_timeout_s:g} s a request"
        log.info("POS endpoint on http://%s:%d/events (%s)", self.settings.host, self.port, limits)

    def stop(self) -> None:
        """Closes every connection and returns at once; a commit already under way is let finish."""
        if self._loop is not None and self._stopping is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(STOP_TIMEOUT_S)
        self._commits.shutdown(wait=True)
        self.sock.close()

    def health(self) -> dict:
        counts = {"accepted": self.accepted, "rejected": self.rejected}
        storage = self.store.log.health if self.store else None
        if storage is None or storage.state == "ok":
            return {"status": "ok", **counts}
        # A full disk or a removed event log: events may get 503 until it is over; say why here.
        return {"status": storage.state, "storage": storage.describe(), **counts}

    # The endpoint's handler (edge.challenge.endpoint.Handler), called on the event loop.

    async def head(self, request: Request) -> Reply | None:
        if ROUTES.get(request.path) != request.method:
            target = shorten(request.target, 100)
            return await self.refuse(404, f"no such endpoint {request.method} {target}: POST /events or GET /health")
        if not self._authorised(request.headers.get(b"authorization")):
            return await self.refuse(401, "missing or wrong bearer token")
        if request.path == "/health":
            return Reply(200, self.health())
        if b"transfer-encoding" in request.headers or b"content-length" not in request.headers:
            return await self.refuse(411, "send a Content-Length header (no chunked bodies)", close=True)
        length, limit = int(request.headers[b"content-length"]), self.settings.max_body_bytes
        if length > limit:
            return await self.refuse(413, f"body of {length} bytes exceeds {limit}", close=True)
        return None

    async def body(self, request: Request, data: bytes) -> Reply:
        """Validate, commit, then queue one event."""
        try:
            event = parse_json(data)
        except BadEvent as error:
            return await self.refuse(error.status, str(error))
        except Exception as error:  # whatever else a body breaks in parsing is the body's fault: 400, never 503
            return await self.refuse(400, f"unreadable event ({type(error).__name__})")
        if self.events.qsize() >= MAX_WAITING:
            return self._unstored(f"{MAX_WAITING} events wait for the frame loop (camera down?)")
        t, received = self.clock(), time.time()
        try:
            row_id = await self._in_commit_thread(self.store.record_event, event, t, received)
        except Exception as error:  # e.g. the database is locked for too long: tell the POS to retry
            return self._unstored(str(error))
        self.events.put((event, t))
        self.accepted += 1
        return Reply(202, {"id": row_id, "status": "accepted"})

    def _unstored(self, reason: str) -> Reply:
        """503: the event was not stored, the POS should retry (counted; one log line a minute)."""
        if (window := self.tally.count("unstored", reason, time.monotonic(), refusal=False)) is not None:
            log.error("POS event not stored: %s", shorten(reason))
            window.written = True
        return Reply(503, {"error": f"event not stored ({shorten(reason)}): retry"})

    async def refuse(self, status: int, reason: str, close: bool = False) -> Reply:
        reason = shorten(reason)
        window = self.tally.count(status, reason, time.monotonic())
        if window is not None:  # the first of its status this minute: one row, one log line
            log.warning("POS request refused (%d): %s", status, reason)
            window.row_id = await self._record(self.store.record_reject, status, reason)
            window.written = True
        return Reply(status, {"error": reason}, close)

    def shed(self, kind: str) -> None:
        window = self.tally.count(kind, "", time.monotonic(), refusal=False)
        if window is not None:
            log.warning("POS: %s (at most %d connections)", TALLIED[kind], self.settings.max_connections)
            window.written = True

    def _authorised(self, header: bytes | None) -> bool:
        """`Bearer TOKEN`, compared as bytes in constant time (a UTF-8 token matches as sent); empty never matches."""
        token = self.settings.token
        if token is None:
            return True
        scheme, _, credential = (header or b"").partition(b" ")
        credential = credential.strip()
        return scheme.lower() == b"bearer" and bool(credential) and hmac.compare_digest(credential, token.encode())

    # The loop thread.

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
        self._ready.set()
        tasks = [asyncio.create_task(self.endpoint.serve()), asyncio.create_task(self._flush_every(FLUSH_EVERY_S))]
        for task in tasks:
            task.add_done_callback(_report_failure)
        await self._stopping.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._flush(final=True)

    async def _flush_every(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            await self._flush()

    async def _flush(self, final: bool = False) -> None:
        """Close the tally's ended windows: one summary line each, and the row's count."""
        for window in self.tally.due(time.monotonic(), final):
            if window.count > 1:
                first = f"; the first: {window.reason}" if window.reason else ""
                log.warning("POS: %d %s in %.0f s%s", window.count, _what(window), _age(window), first)
            if window.row_id is not None and window.count > 1:
                await self._record(self.store.count_rejects, window.row_id, window.count)

    async def _in_commit_thread(self, function: Callable[..., Any], *args: object) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._commits, function, *args)

    async def _record(self, function: Callable[..., Any], *args: object) -> Any:
        """A reject row or count: a full disk must not take the endpoint down; the count stays in memory."""
        try:
            return await self._in_commit_thread(function, *args)
        except Exception as error:
            log.error("could not record rejected POS requests: %s", shorten(str(error)))
            return None


def _report_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:  # a bug: say so rather than go quiet
        log.error("POS endpoint stopped serving: %r", task.exception())


def _what(window: Window) -> str:
    return TALLIED.get(str(window.key), f"requests refused ({window.key})")


def _age(window: Window) -> float:
    return time.monotonic() - window.started


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=LISTEN_QUEUE)
    except OSError as error:
        raise ConfigError(
            f"pos: cannot listen on {host}:{port} ({error.strerror or error}): change pos.port or pos.host"
        ) from None


def monotonic_clock(origin: float) -> Callable[[], float]:
    """Policy seconds of a live run on the monotonic clock, which frames are timed by too: a step of the wall
    clock (NTP, a manual change) cannot move POS events against faces. The wall clock is read once, here, to
    place the run's origin (Unix time); recorded times (`received_at`) still come from the wall clock."""
    start = time.monotonic() - (time.time() - origin)
    return lambda: time.monotonic() - start
