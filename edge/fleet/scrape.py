"""Prometheus metrics over HTTP, with bounds (the till's `metrics.port`, the collector's `--metrics-port`).

Why not prometheus_client's start_http_server: it starts a thread per connection and never times one out.
Measured on a real `agecam run` (descriptor limit 1,024): 1,050 clients that opened a connection to the
metrics port and sent half a request line held 1,018 descriptors and 1,019 threads until the looping
camera could not be reopened and the till stopped (exit 3), its POS endpoint with it. Here at most
MAX_SCRAPERS connections are served at once (more are closed unanswered: Prometheus scrapes one at a
time), and each must be done within SCRAPE_TIMEOUT_S, so a slow client holds a slot for seconds, not forever.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from http.server import ThreadingHTTPServer

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import MetricsHandler

log = logging.getLogger(__name__)
MAX_SCRAPERS = 8
SCRAPE_TIMEOUT_S = 5.0
LISTEN_QUEUE = 64


class _Handler(MetricsHandler):
    timeout = SCRAPE_TIMEOUT_S  # each read and write

    def handle(self) -> None:
        # A deadline for the whole exchange: a client sending a byte every second never meets the read timeout.
        timer = threading.Timer(SCRAPE_TIMEOUT_S, self._cut)
        timer.daemon = True
        timer.start()
        try:
            super().handle()
        finally:
            timer.cancel()

    def do_GET(self) -> None:
        try:
            super().do_GET()
        except OSError:
            raise  # the client cut at its deadline or gone: handle_error keeps quiet
        except Exception:  # a collector's error: a 500 and its traceback, not a silent close (handle_error)
            log.exception("metrics: collecting the metrics failed")
            self.send_error(500, "error collecting the metrics")

    def _cut(self) -> None:
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


class MetricsServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = LISTEN_QUEUE

    def __init__(self, address: tuple[str, int], registry: CollectorRegistry, limit: int = MAX_SCRAPERS) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.slots = threading.BoundedSemaphore(limit)
        super().__init__(address, _Handler.factory(registry))

    def process_request(self, request: socket.socket, client_address: object) -> None:
        if not self.slots.acquire(blocking=False):  # all slots taken: close at once, before it costs a thread
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:  # no thread started (none left?): give the slot back
            self.slots.release()
            raise

    def process_request_thread(self, request: socket.socket, client_address: object) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def handle_error(self, request: object, client_address: object) -> None:
        """A client cut at its deadline or gone mid-reply is no error worth a traceback on stderr."""


def serve(host: str, port: int, registry: CollectorRegistry) -> MetricsServer:
    """Bind (OSError if the port is taken) and serve on a daemon thread until `shutdown()`."""
    server = MetricsServer((host, port), registry)
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
    return server
