"""The fleet outbox: the records the chain needs, queued inside the event log itself.

A record's outbox row is written in the same SQLite transaction as the record (EventLog and PosStore call
the `enqueue_*` functions inside their own transactions), so a crash keeps both or neither. The publisher
thread reads the rows through its own connection (OutboxReader) and marks a row shipped only once the
broker has acknowledged it. Each row's body is the record as the chain sees it: no source URL (it may hold
camera credentials), no config, no evidence path (crops never leave the till).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

RUN_COLUMNS = (
    "id AS run_id, started_at, ended_at, status, mode, model_sha256, provider, agecam_version,"
    " frames, dropped_frames, faces"
)
CUSTOMER_COLUMNS = (
    "run_id, track_id, first_seen, last_seen, age, age_low, age_high, p_under, samples, age_group, counted"
)
TRANSACTION_COLUMNS = (
    "run_id, number, pos_transaction_id, till_id AS pos_till_id, cashier_id, started_at, ended_at, status,"
    " restricted_items, id_check, check_required, track_id, age, age_low, age_high, p_under, samples"
)
ALERT_COLUMNS = (
    "a.run_id, a.id AS alert_id, t.number AS transaction_number, a.kind, a.type, a.severity, a.at, a.t,"
    " a.latency_s, a.till_id AS pos_till_id, a.cashier_id, a.track_id, a.age, a.age_low, a.age_high, a.p_under,"
    " a.samples,"
    " a.association, a.evidence IS NOT NULL AS has_evidence"
)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _enqueue(db: sqlite3.Connection, kind: str, sql: str, params: tuple) -> None:
    """Read the record as just written (inside the caller's transaction) and queue it."""
    cursor = db.execute(sql, params)
    row = cursor.fetchone()
    if row is None:
        return
    body = dict(zip([column[0] for column in cursor.description], row, strict=True))
    db.execute(
        "INSERT INTO outbox (kind, created_at, body) VALUES (?, ?, ?)",
        (kind, _now(), json.dumps(body, separators=(",", ":"))),
    )


def enqueue_run(db: sqlite3.Connection, run_id: int) -> None:
    _enqueue(db, "run", f"SELECT {RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,))


def enqueue_customer(db: sqlite3.Connection, run_id: int, track_id: int) -> None:
    sql = f"SELECT {CUSTOMER_COLUMNS} FROM customers WHERE run_id = ? AND track_id = ?"
    _enqueue(db, "customer", sql, (run_id, track_id))


def enqueue_hourly(db: sqlite3.Connection, run_id: int, hour: str, age_group: str) -> None:
    sql = (
        "SELECT run_id, hour, age_group, customers, age_sum FROM hourly_stats"
        " WHERE run_id = ? AND hour = ? AND age_group = ?"
    )
    _enqueue(db, "hourly", sql, (run_id, hour, age_group))


def enqueue_transaction(db: sqlite3.Connection, run_id: int, number: int) -> None:
    sql = f"SELECT {TRANSACTION_COLUMNS} FROM transactions WHERE run_id = ? AND number = ?"
    _enqueue(db, "transaction", sql, (run_id, number))


def enqueue_alert(db: sqlite3.Connection, alert_id: int) -> None:
    sql = f"SELECT {ALERT_COLUMNS} FROM alerts a JOIN transactions t ON t.id = a.transaction_id WHERE a.id = ?"
    _enqueue(db, "alert", sql, (alert_id,))


@dataclass(frozen=True)
class OutboxRow:
    id: int
    kind: str
    created_at: str
    body: str  # the record as JSON


class OutboxReader:
    """The publisher's own connection to the event log: reads pending rows, marks them shipped, bounds the
    queue. Short transactions only, so the frame loop's writes never wait long on it."""

    def __init__(self, path: Path) -> None:
        self.wal = Path(f"{path}-wal")
        self.db = sqlite3.connect(path, isolation_level=None, timeout=10, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = NORMAL")
        self.key = str(self.db.execute("SELECT key FROM outbox_key").fetchone()[0])

    def pending(self, after: int, limit: int) -> list[OutboxRow]:
        """Unshipped rows with an id above `after`, in id order."""
        rows = self.db.execute(
            "SELECT id, kind, created_at, body FROM outbox WHERE shipped_at IS NULL AND id > ? ORDER BY id LIMIT ?",
            (after, limit),
        )
        return [OutboxRow(*row) for row in rows]

    def sync(self) -> None:
        """Make every commit read so far durable, before it leaves the till. The frame loop commits with
        synchronous=NORMAL: its last commits wait in the WAL, unsynced, until a checkpoint. Shipped before that,
        a power cut would undo them after the chain had them, and their row ids (the chain's message ids) would
        be given again to other records, which the chain would drop as duplicates. One fsync of the WAL covers
        them all (a checkpoint syncs the database file before the WAL is reused)."""
        try:
            fd = os.open(self.wal, os.O_RDONLY)
        except FileNotFoundError:  # no WAL: every commit is in the database file, synced by its checkpoint
            return
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def mark_shipped(self, ids: list[int]) -> None:
        if not ids:
            return
        shipped = _now()
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.executemany("UPDATE outbox SET shipped_at = ? WHERE id = ?", [(shipped, i) for i in ids])
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def depth(self) -> tuple[int, float | None]:
        """Unshipped rows, and the Unix time the oldest of them was queued (None when empty)."""
        count, oldest = self.db.execute(
            "SELECT count(*), min(created_at) FROM outbox WHERE shipped_at IS NULL"
        ).fetchone()
        if oldest is None:
            return int(count), None
        return int(count), datetime.fromisoformat(oldest.replace("Z", "+00:00")).timestamp()

    def trim(self, max_rows: int) -> int:
        """Drop the oldest unshipped rows beyond `max_rows`; returns how many were dropped."""
        cursor = self.db.execute(
            "DELETE FROM outbox WHERE shipped_at IS NULL AND id <= (SELECT id FROM outbox WHERE shipped_at IS NULL"
            " ORDER BY id DESC LIMIT 1 OFFSET ?)",
            (max_rows,),
        )
        return cursor.rowcount

    def prune_shipped(self, keep_s: float) -> int:
        """Forget shipped rows older than `keep_s` seconds (the records themselves stay in their tables)."""
        cutoff = datetime.fromtimestamp(time.time() - keep_s, UTC).isoformat(timespec="milliseconds")
        cursor = self.db.execute(
            "DELETE FROM outbox WHERE shipped_at IS NOT NULL AND shipped_at < ?", (cutoff.replace("+00:00", "Z"),)
        )
        return cursor.rowcount

    def close(self) -> None:
        self.db.close()
