"""Sends alerts and flags to the configured webhook (HTTP POST, JSON) and/or command (JSON on stdin).

Delivery runs in its own thread behind a bounded queue, so a slow or failing receiver never holds up
the frame loop: failures are logged and counted, and the alert stays in the event log regardless.
"""

from __future__ import annotations

import json
import logging
import queue
import subprocess
import threading
import urllib.request

from edge.config import AlertsConfig

log = logging.getLogger(__name__)
QUEUE_SIZE = 256


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
        """Deliver what is queued (up to `timeout`), then stop."""
        if self.is_alive():
            self.queue.put(None)
            self.join(timeout)

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
                    log.warning("alert %s: %s failed: %s", message.get("id"), target, error)

    def _post(self, body: bytes) -> None:
        request = urllib.request.Request(
            self.settings.webhook, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=self.settings.timeout_s) as response:
            response.read()

    def _command(self, body: bytes) -> None:
        result = subprocess.run(
            self.settings.command, input=body, capture_output=True, timeout=self.settings.timeout_s, check=False
        )
        if result.returncode != 0:
            raise subprocess.SubprocessError(f"exit code {result.returncode}: {result.stderr.decode()[-200:].strip()}")
