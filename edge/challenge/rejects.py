"""Refused POS requests, tallied so that a flood costs neither a database row nor a log line per request.

Per key (an HTTP status, or a name such as "evicted"), the first refusal of a window (WINDOW_S) is written
at once: the caller logs it and records a `pos_rejects` row. The rest of that window are only counted. When
the window ends, the caller sets the row's count and logs one summary line. So each key costs at most one
row and two log lines a minute, whatever the request rate.
"""

from __future__ import annotations

from dataclasses import dataclass

WINDOW_S = 60.0
REASON_CHARS = 200


def shorten(text: str, limit: int = REASON_CHARS) -> str:
    """At most `limit` printable characters: a reason may quote what a client sent (a 60 KB path, control bytes)."""
    clean = "".join(char if char.isprintable() else "?" for char in text[: limit + 1])
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


@dataclass
class Window:
    key: int | str
    started: float
    reason: str
    count: int = 1
    row_id: int | None = None
    written: bool = False  # the first refusal's row is in (or failed); until then the window is not flushed


class RejectTally:
    """Bookkeeping only, for one thread (the endpoint's event loop); the caller writes rows and logs."""

    def __init__(self, window_s: float = WINDOW_S) -> None:
        self.window_s = window_s
        self.total = 0  # refused requests (not evictions): /health's "rejected"
        self._open: dict[int | str, Window] = {}

    def count(self, key: int | str, reason: str, now: float, refusal: bool = True) -> Window | None:
        """Count one; returns the new window when this is the first of its window (write and log it)."""
        self.total += refusal
        window = self._open.get(key)
        if window is not None:
            window.count += 1
            return None
        self._open[key] = window = Window(key, now, reason)
        return window

    def due(self, now: float, final: bool = False) -> list[Window]:
        """Windows that have ended (all of them when `final`), removed from the tally; the caller flushes them."""
        ended = [
            window
            for window in self._open.values()
            if final or (window.written and now - window.started >= self.window_s)
        ]
        for window in ended:
            del self._open[window.key]
        return ended
