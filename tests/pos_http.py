"""A real POS endpoint on loopback with a real SQLite event log, and plain clients for it, for the POS tests."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from edge.challenge.server import PosServer, monotonic_clock
from edge.config import PosConfig
from edge.store.eventlog import EventLog
from edge.store.pos_records import PosStore

TOKEN = "s3cret"
GOOD = {"type": "item_scanned", "till_id": "till-1", "cashier_id": "c7", "category": "wine"}


def live_run_row(event_log: EventLog, started: float) -> int:
    """A live run's row in the event log, as `agecam run` starts one: its id."""
    return event_log.start_run(
        mode="live", source="0", model_path="m", model_sha256="0", provider="cpu", version="t", config_json="{}",
        started=started,
    )  # fmt: skip


@contextlib.contextmanager
def serving(folder: Path, **settings: object) -> Iterator[tuple[PosServer, Path]]:
    """A started PosServer on a free port (token TOKEN unless given) committing to folder/agecam.db."""
    db = folder / "agecam.db"
    event_log = EventLog(db)
    run_id = live_run_row(event_log, time.time())
    pos = PosServer(PosConfig(**{"port": 0, "token": TOKEN, "max_body_bytes": 4096, **settings}))
    pos.start(PosStore(EventLog(db, durable=True), run_id, time.time()), monotonic_clock(time.time()))
    try:
        yield pos, db
    finally:
        pos.stop()
        pos.store.log.close()
        event_log.close()


def request(port: int, body: bytes | None, *, token: str | None = TOKEN, path: str = "/events", headers=None):
    """One request on a fresh connection: (status, JSON reply)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        status, reply = send(connection, body, token=token, path=path, headers=headers)
        return status, reply
    finally:
        connection.close()


def send(connection: http.client.HTTPConnection, body: bytes | None, *, token=TOKEN, path="/events", headers=None):
    """One request on a given (possibly kept-alive) connection."""
    sent = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    method = "GET" if body is None else "POST"
    connection.request(method, path, body=body, headers={**sent, **(headers or {})})
    response = connection.getresponse()
    return response.status, json.loads(response.read())


def raw(port: int, data: bytes, timeout: float = 10) -> bytes:
    """Send bytes as they are, then read until the server closes the connection (or `timeout`)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while chunk := sock.recv(65536):
                received += chunk
        return received


def post_body(body: bytes, token: str = TOKEN, extra: bytes = b"") -> bytes:
    """A raw POST /events with the right Content-Length."""
    head = f"POST /events HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + extra + b"\r\n" + body


def stored(db: Path) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(db)) as connection:
        return connection.execute("SELECT id, type, till_id, cashier_id, body FROM pos_events").fetchall()


def rejects(db: Path) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(db)) as connection:
        return connection.execute("SELECT http_status, count FROM pos_rejects ORDER BY id").fetchall()
