"""Writes for the review app and till health: reviewers' outcomes of flags, views of evidence crops (both
append-only audit tables, schema version 4), and a running till's heartbeat in its `runs` row.

Each write is one transaction. The review app's threads share one connection, so writes hold a lock.
"""

from __future__ import annotations

import threading
import time

from edge.store.eventlog import EventLog, iso

OPEN = "open"  # a flag nobody has reviewed yet: no audit row
OUTCOMES = ("confirmed_underage", "id_checked_pos_missed", "false_alarm", "wrong_customer", "not_a_sale")
MAX_NOTE = 2000


class UnknownFlag(LookupError):
    """No flag (an alert row of kind 'flag') has this id."""


class OutcomeChanged(Exception):
    """Someone else set the flag's outcome since the reviewer loaded the page."""

    def __init__(self, current: str) -> None:
        super().__init__(f"the outcome is now {current}")
        self.current = current


class ReviewStore:
    def __init__(self, log: EventLog) -> None:
        self.log = log
        self.lock = threading.Lock()

    def set_outcome(
        self,
        alert_id: int,
        reviewer: str,
        outcome: str,
        note: str,
        expected: str | None = None,
        at: float | None = None,
        seen: int | None = None,
    ) -> str:
        """Append one audit row moving the flag to `outcome`; returns the outcome it had. Refuses
        (OutcomeChanged) when the flag is no longer what the reviewer saw: with `expected`, its outcome; with
        `seen`, the id of its latest review row (0: none), which also catches a change and back."""
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        with self.lock, self.log.transaction() as db:
            if db.execute("SELECT 1 FROM alerts WHERE id = ? AND kind = 'flag'", (alert_id,)).fetchone() is None:
                raise UnknownFlag(alert_id)
            row = db.execute(
                "SELECT id, to_outcome FROM flag_reviews WHERE alert_id = ? ORDER BY id DESC LIMIT 1", (alert_id,)
            ).fetchone()
            latest, current = row if row else (0, OPEN)
            if (expected is not None and expected != current) or (seen is not None and seen != latest):
                raise OutcomeChanged(current)
            db.execute(
                "INSERT INTO flag_reviews (alert_id, at, reviewer, from_outcome, to_outcome, note)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (alert_id, iso(time.time() if at is None else at), reviewer, current, outcome, note[:MAX_NOTE]),
            )
        return current

    def log_evidence_view(self, alert_id: int, viewer: str, at: float | None = None) -> None:
        with self.lock, self.log.transaction() as db:
            db.execute(
                "INSERT INTO evidence_views (alert_id, at, viewer) VALUES (?, ?, ?)",
                (alert_id, iso(time.time() if at is None else at), viewer),
            )


def record_heartbeat(log: EventLog, run_id: int, status: dict, at: float | None = None) -> None:
    """A running till's latest counters, fps and source state (the runner's status dict), with the time."""
    with log.transaction() as db:
        db.execute(
            "UPDATE runs SET frames = ?, dropped_frames = ?, fps = ?, source_state = ?, last_seen = ? WHERE id = ?",
            (status["frames"], status["dropped"], status["fps"], status["source"], iso(at or time.time()), run_id),
        )
