"""Two tills configured with one till id. The MQTT client id comes from the till id, and a broker keeps one
session per client id: each till's connection takes the other's session over, so both are knocked off the
broker every second or so, and their records reach the chain only in between. The publisher says so in one
clear line (at most every REPORT_EVERY_S for each reason, at once for a reason not yet told), not in a bare
'disconnected' line per reconnect.

An MQTT 5 broker may say so itself (DISCONNECT with reason 0x8E, Session taken over); mosquitto 2.0 only
closes the socket. Then the sign is a connection the broker accepted and dropped within QUICK_S, again and
again: one cut cable or broker restart drops it once, a till id shared with another till does it each time.
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)
SESSION_TAKEN_OVER = 0x8E
QUICK_S = 10.0  # a connection dropped this soon after the broker accepted it counts as a quick one
QUICK_IN_A_ROW = 3  # quick drops in a row that make another client with our id the likely cause
REPORT_EVERY_S = 600.0
TOLD = (
    "fleet: another client connected to the broker %s as till %r (client id %r) and took this till's session"
    " over: is till_id set on two tills? Give each till its own fleet.till_id (or fleet.client_id);"
    " records wait in the outbox meanwhile"
)
GUESSED = (
    "fleet: the broker %s dropped this till %d times in a row within %.0f s of accepting it (last: %s):"
    " probably another client connects as till %r (client id %r): is till_id set on two tills? Give each till its own"
    " fleet.till_id (or fleet.client_id); records wait in the outbox meanwhile"
)


class TakeoverWatch:
    """Fed by the publisher's paho callbacks (one thread): tells a session taken over from other drops."""

    def __init__(self, broker_url: str, till_id: str, client_id: str) -> None:
        self.broker_url, self.till_id, self.client_id = broker_url, till_id, client_id
        self._connected_at: float | None = None
        self._quick = 0  # quick drops in a row
        self._reported: dict[tuple[str, str], float] = {}  # (message, the broker's reason) -> when last logged

    def connected(self) -> None:
        self._connected_at = time.monotonic()

    def disconnected(self, reason: int, said: str = "") -> bool:
        """True when another client with our id is the likely cause (then reported, rate-limited). `said`: the
        reason in words, kept in the guess so that a flapping link or a broker refusing us is not misread."""
        now = time.monotonic()
        lasted = None if self._connected_at is None else now - self._connected_at
        self._connected_at = None
        if reason == SESSION_TAKEN_OVER:
            self._report(now, (TOLD, said), self.broker_url, self.till_id, self.client_id)
            return True
        if lasted is None:
            return False
        self._quick = self._quick + 1 if lasted < QUICK_S else 0
        if self._quick < QUICK_IN_A_ROW:
            return False
        self._report(now, (GUESSED, said), self.broker_url, self._quick, QUICK_S, said, self.till_id, self.client_id)
        return True

    def _report(self, now: float, cause: tuple[str, str], *args: object) -> None:
        """Log `cause` (its message and the broker's reason) unless it was logged within REPORT_EVERY_S. Each
        cause has its own quiet period: one shared by all hid a new reason behind the first one told."""
        last = self._reported.get(cause)
        if last is not None and now - last < REPORT_EVERY_S:
            return
        # Causes out of their quiet period are forgotten: the map stays small however many reasons come.
        self._reported = {key: at for key, at in self._reported.items() if now - at < REPORT_EVERY_S}
        self._reported[cause] = now
        log.warning(cause[0], *args)
