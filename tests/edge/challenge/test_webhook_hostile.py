"""A webhook receiver that misbehaves, on a real loopback socket: each alert it gets is a counted failure
within `alerts.timeout_s` (or a delivery, when it did answer 2xx), never a stuck or swollen alert thread,
a false delivery, or a password or control character in the log."""

from __future__ import annotations

import logging
import socket
import sys
import time
import tracemalloc

from edge.challenge.alerts import AlertSender
from edge.config import AlertsConfig

from webhook_receiver import backlogged_receiver, deliver, raw_receiver


def test_a_receiver_that_dribbles_its_headers_fails_each_alert_at_the_timeout():
    """Each header line came within the socket timeout, so urllib waited for ever (the thread was still
    stuck after 30 s, the queue filling behind it)."""

    def dribble(connection: socket.socket, _: bytes) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\n")
        for _ in range(60):
            connection.sendall(b"X-Slow: 1\r\n")
            time.sleep(0.3)

    with raw_receiver(dribble) as (port, requests):
        started = time.monotonic()
        notifier = deliver(f"http://127.0.0.1:{port}/hook")
    assert (notifier.failed, notifier.sent) == (3, 0) and len(requests) == 3
    assert time.monotonic() - started < 6


def test_a_slow_connect_and_a_silent_tls_handshake_together_fail_the_alert_at_the_timeout():
    """The deadline started after connect(), TLS handshake included, each bounded by the timeout of its own:
    a receiver slow to take the connection (a full listen queue) and then silent after the ClientHello held
    the alert thread for both (3 s of a 2 s timeout here)."""

    def silent(connection: socket.socket, _: bytes) -> None:
        time.sleep(6)

    with backlogged_receiver(silent, accept_after_s=0.3) as (port, requests):
        started = time.monotonic()
        notifier = deliver(f"https://127.0.0.1:{port}/hook", count=1, timeout_s=2)
        took = time.monotonic() - started
    assert (notifier.failed, notifier.sent) == (1, 0) and requests[0].startswith(b"\x16\x03")  # a ClientHello
    assert took < 2.6


def test_a_huge_answer_is_not_read_into_memory():
    """urllib read a reply whole: a receiver announcing 1 GB made the till allocate 1 GB."""
    size = 200 * 1024 * 1024

    def huge(connection: socket.socket, _: bytes) -> None:
        connection.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode())
        chunk = b"x" * (1024 * 1024)
        for _ in range(size // len(chunk)):
            connection.sendall(chunk)

    with raw_receiver(huge) as (port, _):
        tracemalloc.start()
        try:
            notifier = deliver(f"http://127.0.0.1:{port}/hook", count=1, timeout_s=10)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert notifier.sent == 1 and peak < 16 * 1024 * 1024


def test_a_redirect_is_a_failure_not_a_delivery():
    """urllib followed a 302 with a body-less GET to wherever it pointed, and counted the alert as sent."""

    def ok(connection: socket.socket, _: bytes) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

    with raw_receiver(ok) as (elsewhere, redirected):

        def redirect(connection: socket.socket, _: bytes) -> None:
            location = f"http://127.0.0.1:{elsewhere}/other"
            connection.sendall(f"HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n".encode())

        with raw_receiver(redirect) as (port, _):
            notifier = deliver(f"http://127.0.0.1:{port}/hook")
    assert (notifier.failed, notifier.sent) == (3, 0) and redirected == []


def test_credentials_in_the_url_are_sent_as_basic_auth_and_never_logged(caplog):
    """urllib took `user:password@host` for the host (no delivery), and with no port in the URL logged
    "nonnumeric port: 'password@host'"."""

    def ok(connection: socket.socket, _: bytes) -> None:
        connection.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")

    with raw_receiver(ok) as (port, requests):
        notifier = deliver(f"http://alice:s3cret%21@127.0.0.1:{port}/hook", count=1)
    assert notifier.sent == 1 and b"Authorization: Basic YWxpY2U6czNjcmV0IQ==\r\n" in requests[0]  # alice:s3cret!
    with caplog.at_level(logging.WARNING):
        notifier = deliver("http://alice:s3cret@127.0.0.1/hook", count=1)  # nothing listens on port 80
    assert notifier.failed == 1 and "alert 0: webhook failed" in caplog.text and "s3cret" not in caplog.text


def test_the_receivers_words_reach_the_log_printable_and_short(caplog):
    """A reply's reason phrase is the receiver's choice: terminal escapes went into the log as they were."""

    def hostile(connection: socket.socket, _: bytes) -> None:
        reason = "\x1b[2J\x1b[31mpwned" + "A" * 5000
        connection.sendall(f"HTTP/1.1 500 {reason}\r\nContent-Length: 0\r\n\r\n".encode())

    with raw_receiver(hostile) as (port, _), caplog.at_level(logging.WARNING):
        notifier = deliver(f"http://127.0.0.1:{port}/hook", count=1)
    assert notifier.failed == 1
    assert "\x1b" not in caplog.text and "HTTP 500 \\x1b[2J" in caplog.text and len(caplog.text) < 600


def test_a_receiver_that_closes_or_answers_500_or_429_for_ever_is_a_failure_each_time():
    def close(connection: socket.socket, _: bytes) -> None:
        connection.shutdown(socket.SHUT_RDWR)

    def busy(connection: socket.socket, _: bytes) -> None:
        connection.sendall(b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3600\r\nContent-Length: 0\r\n\r\n")

    for answer in (close, busy):
        with raw_receiver(answer) as (port, requests):
            notifier = deliver(f"http://127.0.0.1:{port}/hook")
        assert (notifier.failed, notifier.sent, len(requests)) == (3, 0, 3)


def test_a_commands_output_is_not_kept_in_memory():
    """The command's stdout and stderr were read whole: a `curl` that prints a big reply cost the till as much."""
    spew = "import sys; sys.stdin.read(); [sys.stdout.buffer.write(b'x' * 2**20) for _ in range(200)]"
    tracemalloc.start()
    try:
        notifier = AlertSender(AlertsConfig(command=[sys.executable, "-c", spew], timeout_s=30))
        notifier.start()
        notifier.send({"id": 1})
        notifier.close(timeout=60)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert notifier.sent == 1 and peak < 16 * 1024 * 1024


def test_a_command_that_hangs_is_killed_at_the_timeout_and_its_arguments_stay_out_of_the_log(caplog):
    """The timeout's message quoted the command line, so a password passed to the command went to the log."""
    hang = [sys.executable, "-c", "import time; time.sleep(60)", "--password=s3cret"]
    with caplog.at_level(logging.WARNING):
        started = time.monotonic()
        notifier = AlertSender(AlertsConfig(command=hang, timeout_s=1))
        notifier.start()
        notifier.send({"id": 1})
        notifier.close(timeout=20)
    assert notifier.failed == 1 and time.monotonic() - started < 5
    assert "command failed: TimeoutError: the command did not finish in time" in caplog.text
    assert "s3cret" not in caplog.text


def test_a_failing_commands_errors_reach_the_log_printable(caplog):
    fail = [sys.executable, "-c", "import sys; sys.stderr.write('x' * 5000 + '\\x1b[2Jgone'); sys.exit(3)"]
    with caplog.at_level(logging.WARNING):
        notifier = AlertSender(AlertsConfig(command=fail, timeout_s=10))
        notifier.start()
        notifier.send({"id": 1})
        notifier.close(timeout=20)
    assert notifier.failed == 1 and "exit code 3: xxx" in caplog.text and "\\x1b[2Jgone" in caplog.text
    assert "\x1b" not in caplog.text and len(caplog.text) < 600
