"""Sends alerts and flags to the configured webhook (HTTP POST, JSON) and/or command (JSON on stdin).

Delivery runs in its own thread behind a bounded queue, so a slow or failing receiver never holds up
the frame loop: failures are logged and counted, and the alert stays in the event log regardless.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import select
import subprocess
import threading
import time

from edge.challenge import webhook
from edge.config import AlertsConfig

log = logging.getLogger(__name__)
QUEUE_SIZE = 256
STDERR_TAIL = 120  # bytes of a failed command's errors that go to the log


class AlertSender(threading.Thread):
    def __init__(self, settings: AlertsConfig) -> None:
        super().__init__(name="alerts", daemon=True)
        self.settings = settings
        self.queue: queue.Queue[dict | None] = queue.Queue(maxsize=QUEUE_SIZE)
        self.sent = 0
        self.failed = 0

    @property
    def active(self) -> bool:
        return bool(self.settings.webhook or self.settings.command)

    def send(self, message: dict) -> None:
        if not self.active:
            return
        try:
            self.queue.put_nowait(message)
        except queue.Full:
            self.failed += 1
            log.warning("alert queue full: alert %s not delivered (it is in the event log)", message.get("id"))

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (up to `timeout`), then stop. What is left then is counted as failed and
        logged: the thread is a daemon, so it would go unsent and unsaid when the process exits."""
        if not self.is_alive():
            return
        deadline = time.monotonic() + timeout
        with contextlib.suppress(queue.Full):
            self.queue.put(None, timeout=timeout)
        self.join(max(0.0, deadline - time.monotonic()))
        if self.is_alive() and (left := self._drain()):
            self.failed += left
            log.warning("%d alert(s) not delivered by the stop: they are in the event log", left)

    def _drain(self) -> int:
        """Take what is queued, leaving the thread the word to end after its current delivery."""
        left = 0
        with contextlib.suppress(queue.Empty):
            while True:
                left += self.queue.get_nowait() is not None
        self.queue.put_nowait(None)
        return left

    def run(self) -> None:
        while (message := self.queue.get()) is not None:
            body = json.dumps(message).encode()
            for target, deliver in (("webhook", self._post), ("command", self._command)):
                if getattr(self.settings, target) is None:
                    continue
                try:
                    deliver(body)
                    self.sent += 1
                # Whatever a receiver does wrong is its failure, never the thread's end: a reply that is not
                # HTTP (a wrong port) raises http.client.BadStatusLine, which is no OSError, and a dead
                # thread would drop every later alert unsent and uncounted.
                except Exception as error:
                    self.failed += 1
                    log.warning("alert %s: %s failed: %s", message.get("id"), target, webhook.describe(error))

    def _post(self, body: bytes) -> None:
        webhook.post(self.settings.webhook, body, self.settings.timeout_s)

    def _command(self, body: bytes) -> None:
        run_command(self.settings.command, body, self.settings.timeout_s)


def run_command(argv: list[str], body: bytes, timeout_s: float) -> None:
    """Run `argv` with `body` on stdin; raises unless it exits 0 within `timeout_s` (it is killed then).
    Its output is not kept: a command such as curl prints the receiver's reply, as big as the receiver
    likes, and only the last STDERR_TAIL bytes of its errors are kept for the log."""
    deadline = time.monotonic() + timeout_s
    with subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as process:
        try:
            with contextlib.suppress(BrokenPipeError):  # it need not read its input
                process.stdin.write(body)
                process.stdin.close()
            tail = _stderr_tail(process.stderr.fileno(), deadline)
            code = process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:  # its message would quote the command line, a password and all
            process.kill()
            raise TimeoutError("the command did not finish in time") from None
        except BaseException:
            process.kill()
            raise
    if code != 0:
        raise subprocess.SubprocessError(f"exit code {code}: {tail.decode(errors='replace').strip()}")


def _stderr_tail(fd: int, deadline: float) -> bytes:
    """Read `fd` to its end, keeping the last STDERR_TAIL bytes; TimeoutError at the deadline."""
    tail = b""
    while True:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise TimeoutError("the command did not finish in time")
        if not (chunk := os.read(fd, 65536)):
            return tail
        tail = (tail + chunk)[-STDERR_TAIL:]
