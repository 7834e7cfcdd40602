"""The live POS endpoint: POST /events (one JSON event a request), GET /health. Standard library only.

An event is acknowledged (202 with its row id) only after it is committed to the event log. Bad requests
get a 4xx with a JSON error, are counted and recorded in `pos_rejects`, and never stop the service.
"""

from __future__ import annotations

import hmac
import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from edge.challenge.events import BadEvent, PosEvent, parse_json
from edge.config import PosConfig
from edge.errors import ConfigError
from edge.store.pos_records import PosStore

log = logging.getLogger(__name__)


class PosServer:
    """Runs the HTTP server in a thread. Accepted events go to `events` as (event, t) for the main loop."""

    def __init__(self, settings: PosConfig) -> None:
        """Binds the port at once, so a port in use fails before any run is started."""
        self.settings = settings
        self.store: PosStore | None = None
        self.clock: Callable[[], float] = time.time
        self.events: queue.Queue[tuple[PosEvent, float]] = queue.Queue()
        self.accepted = 0
        self.rejected = 0
        self._lock = threading.Lock()  # one commit at a time on the server's connection
        try:
            self.httpd = ThreadingHTTPServer((settings.host, settings.port), _handler_for(self))
        except OSError as error:
            raise ConfigError(
                f"pos: cannot listen on {settings.host}:{settings.port} ({error.strerror}): change pos.port or pos.host"
            ) from None
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.1,), name="pos-http", daemon=True)

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self, store: PosStore, clock: Callable[[], float]) -> None:
        self.store, self.clock = store, clock
        self.thread.start()
        log.info("POS endpoint on http://%s:%d/events", self.settings.host, self.port)

    def stop(self) -> None:
        if self.thread.is_alive():  # shutdown() would wait forever for a loop that never started
            self.httpd.shutdown()
        self.httpd.server_close()

    def accept(self, body: bytes) -> tuple[int, dict]:
        """Validate, commit, then queue one event. Returns the HTTP status and the JSON reply."""
        try:
            event = parse_json(body)
        except BadEvent as error:
            return self.reject(error.status, str(error))
        t = self.clock()
        with self._lock:
            row_id = self.store.record_event(event, t)
        self.events.put((event, t))
        self.accepted += 1
        return 202, {"id": row_id, "status": "accepted"}

    def reject(self, status: int, reason: str) -> tuple[int, dict]:
        self.rejected += 1
        log.warning("POS event rejected (%d): %s", status, reason)
        try:
            with self._lock:
                self.store.record_reject(status, reason)
        except Exception as error:  # a full disk must not take the endpoint down; the count stays in memory
            log.error("could not record the rejected POS event: %s", error)
        return status, {"error": reason}

    def health(self) -> dict:
        return {"status": "ok", "accepted": self.accepted, "rejected": self.rejected}


def _handler_for(server: PosServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 10  # seconds: a client that stalls mid-request loses its connection, not a thread forever

        def do_POST(self) -> None:
            if self.path.split("?")[0] != "/events":
                return self._reply(*server.reject(404, f"no such endpoint {self.path}: POST to /events"))
            if not self._authorised():
                return self._reply(*server.reject(401, "missing or wrong bearer token"))
            length = self._length()
            if length is None:
                return self._reply(*server.reject(411, "send a Content-Length header"), close=True)
            if length > server.settings.max_body_bytes:
                limit = server.settings.max_body_bytes
                return self._reply(*server.reject(413, f"body of {length} bytes exceeds {limit}"), close=True)
            try:
                status, reply = server.accept(self.rfile.read(length))
            except Exception as error:  # e.g. the database is locked for too long: tell the POS to retry
                log.error("POS event not stored: %s", error)
                status, reply = 503, {"error": f"event not stored ({error}): retry"}
            self._reply(status, reply)

        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/health":
                return self._reply(*server.reject(404, f"no such endpoint {self.path}: GET /health"))
            if not self._authorised():
                return self._reply(*server.reject(401, "missing or wrong bearer token"))
            self._reply(200, server.health())

        def _authorised(self) -> bool:
            token = server.settings.token
            given = self.headers.get("Authorization", "")
            return token is None or hmac.compare_digest(given.encode(), f"Bearer {token}".encode())

        def _length(self) -> int | None:
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                return None
            return length if length >= 0 else None

        def _reply(self, status: int, body: dict, close: bool = False) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if close:  # the unread body would otherwise be taken for the next request
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("%s %s", self.address_string(), format % args)

    return Handler


def monotonic_clock(origin: float) -> Callable[[], float]:
    """Policy seconds of a live run on the monotonic clock, which frames are timed by too: a step of the wall
    clock (NTP, a manual change) cannot move POS events against faces. The wall clock is read once, here, to
    place the run's origin (Unix time); recorded times (`received_at`) still come from the wall clock."""
    start = time.monotonic() - (time.time() - origin)
    return lambda: time.monotonic() - start
