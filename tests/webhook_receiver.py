"""A webhook receiver on a real loopback socket that answers as each test likes, and an alert sender that
delivers to a URL, for the webhook's tests."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator

from edge.challenge.alerts import AlertSender
from edge.config import AlertsConfig

Answer = Callable[[socket.socket, bytes], None]


@contextlib.contextmanager
def raw_receiver(answer: Answer) -> Iterator[tuple[int, list[bytes]]]:
    """A loopback server that hands each connection's first request bytes to `answer`; yields its port and
    the requests it got."""
    requests: list[bytes] = []
    server = socket.create_server(("127.0.0.1", 0))

    def handle(connection: socket.socket) -> None:
        with connection, contextlib.suppress(OSError):
            connection.settimeout(5)
            request = connection.recv(65536)
            requests.append(request)
            answer(connection, request)

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                threading.Thread(target=handle, args=(server.accept()[0],), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield server.getsockname()[1], requests
    finally:
        server.close()


def deliver(url: str, count: int = 3, timeout_s: float = 1.0) -> AlertSender:
    notifier = AlertSender(AlertsConfig(webhook=url, timeout_s=timeout_s))
    notifier.start()
    for number in range(count):
        notifier.send({"id": number})
    notifier.close(timeout=30)
    assert not notifier.is_alive()
    return notifier
