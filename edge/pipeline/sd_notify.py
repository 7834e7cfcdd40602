"""systemd's notify protocol (sd_notify) over its datagram socket, with no extra dependency.

Under `Type=notify` systemd sets NOTIFY_SOCKET (and WATCHDOG_USEC with `WatchdogSec`); elsewhere every
call is a no-op, so the same code runs in a terminal, in tests and as a service.
"""

from __future__ import annotations

import logging
import os
import socket
import time

log = logging.getLogger(__name__)


class SystemdNotifier:
    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self.address = "\0" + address[1:] if address.startswith("@") else address
        watchdog_usec = env.get("WATCHDOG_USEC", "")
        watchdog_pid = env.get("WATCHDOG_PID", "")
        mine = not watchdog_pid or watchdog_pid == str(os.getpid())
        self.watchdog_s = int(watchdog_usec) / 1e6 if watchdog_usec.isdigit() and mine else None

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def ping_interval_s(self) -> float | None:
        """How often to send WATCHDOG=1: half the watchdog timeout, as systemd recommends."""
        return self.watchdog_s / 2 if self.watchdog_s else None

    def send(self, **fields: str | int) -> None:
        if not self.address:
            return
        message = "\n".join(f"{key.upper()}={value}" for key, value in fields.items()).encode()
        try:
            # Non-blocking: a stalled systemd must never stall the till; a dropped ping is harmless.
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK) as sock:
                sock.sendto(message, self.address)
        except OSError as error:  # systemd gone, socket full or unreadable: never stop the till for it
            log.debug("sd_notify failed: %s", error)

    def ready(self, status: str) -> None:
        self.send(ready=1, status=status)

    def status(self, status: str) -> None:
        self.send(status=status)

    def watchdog(self) -> None:
        self.send(watchdog=1)

    def stopping(self) -> None:
        self.send(stopping=1, status="stopping")

    def reloading(self) -> None:
        """A reload (SIGHUP) begins; READY=1 follows when the new run is up. MONOTONIC_USEC: notify-reload wants it."""
        self.send(reloading=1, status="reloading", monotonic_usec=time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000)
