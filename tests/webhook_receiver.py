"""A webhook receiver on a real loopback socket that answers as each test likes, and an alert sender that
delivers to a URL, for the webhook's tests."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator

from edge.challenge.alerts import AlertSender
from edge.config import AlertsConfig

Answer = Callable[[socket.socket, bytes], None]


@contextlib.contextmanager
def raw_receiver(answer: Answer) -> Iterator[tuple[int, list[bytes]]]:
    """A loopback server that hands each connection's first request bytes to `answer`; yields its port and
    the requests it got."""
    server = socket.create_server(("127.0.0.1", 0))
    requests = _serve(server, answer)
    try:
        yield server.getsockname()[1], requests
    finally:
        server.close()


@contextlib.contextmanager
def backlogged_receiver(answer: Answer, accept_after_s: float) -> Iterator[tuple[int, list[bytes]]]:
    """raw_receiver, with its listen queue full (a connection it has not accepted) for `accept_after_s`: a
    connection to it is made only at the client's SYN retransmit after that (1 s on Linux)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    with socket.create_connection(server.getsockname()):  # fills the queue
        requests = _serve(server, answer, accept_after_s)
        try:
            yield server.getsockname()[1], requests
        finally:
            server.close()


def _serve(server: socket.socket, answer: Answer, accept_after_s: float = 0.0) -> list[bytes]:
    """Accept on `server` in a thread, each connection in a thread of its own; with `accept_after_s`, the
    first (the filler of a backlogged_receiver) is taken and closed at that time."""
    requests: list[bytes] = []

    def handle(connection: socket.socket) -> None:
        with connection, contextlib.suppress(OSError):
            connection.settimeout(5)
            request = connection.recv(65536)
            requests.append(request)
            answer(connection, request)

    def accept() -> None:
        with contextlib.suppress(OSError):
            if accept_after_s:
                time.sleep(accept_after_s)
                server.accept()[0].close()
            while True:
                threading.Thread(target=handle, args=(server.accept()[0],), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return requests


def deliver(url: str, count: int = 3, timeout_s: float = 1.0) -> AlertSender:
    notifier = AlertSender(AlertsConfig(webhook=url, timeout_s=timeout_s))
    notifier.start()
    for number in range(count):
        notifier.send({"id": number})
    notifier.close(timeout=30)
    assert not notifier.is_alive()
    return notifier
