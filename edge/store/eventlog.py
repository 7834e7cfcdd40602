"""The event log: one SQLite file (WAL) with a versioned schema. No face image is ever written here.

Every write is one transaction, and migrations run in one transaction each, so a crash leaves either
the old or the new state, never a half-made database. A file that is not agecam's, is newer or is
damaged is refused before anything in it changes (edge.store.connection).
"""

from __future__ import annotations

import logging
import os
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from edge.errors import StateError
from edge.store.connection import Transaction, open_database
from edge.store.process import run_process_alive, start_marker
from edge.store.storage import storage_problem
from edge.vision.customer import AgeEstimate

log = logging.getLogger(__name__)
DB_NAME = "agecam.db"


def iso(timestamp: float) -> str:
    """A Unix time as UTC ISO 8601 with milliseconds, the one time format in the log."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def hour_of(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:00Z")


@dataclass(frozen=True)
class CustomerRecord:
    track_id: int
    first_seen: float
    last_seen: float
    estimate: AgeEstimate
    age_group: str
    counted: bool
    ended: bool


class EventLog:
    """durable: fsync every commit (synchronous=FULL), for writes acknowledged to others (POS events).
    Otherwise WAL with synchronous=NORMAL: never corrupt, and safe from a process crash."""

    def __init__(self, path: Path, durable: bool = False, *, verify: bool = True) -> None:
        """verify: run PRAGMA quick_check before use (a run's start)."""
        self.path, self.durable = path, durable
        self.db = open_database(path, durable, verify)

    def transaction(self) -> Transaction:
        return Transaction(self.db)

    def start_run(
        self,
        *,
        mode: str,
        source: str,
        model_path: str,
        model_sha256: str,
        provider: str,
        version: str,
        config_json: str,
        started: float,
    ) -> int:
        values = (iso(started), mode, source, model_path, model_sha256, provider, version, config_json)
        try:
            with self.transaction():
                self._close_orphaned_runs()
                cursor = self.db.execute(
                    "INSERT INTO runs (started_at, status, mode, source, model_path, model_sha256, provider,"
                    " agecam_version, config_json, pid, pid_start) VALUES (?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (*values, os.getpid(), start_marker(os.getpid())),
                )
        except sqlite3.Error as error:  # a full disk or a read-only file at start: refuse now, exit 6
            problem = storage_problem(error, self.path)
            if problem is None:
                raise
            raise StateError(f"cannot start a run: event log {self.path}: {problem}") from None
        return int(cursor.lastrowid)

    def _close_orphaned_runs(self) -> None:
        """Runs still 'running' whose process is gone ended without a clean stop (power loss, kill -9); so
        did those whose pid now belongs to another process (compared by start time)."""
        running = self.db.execute("SELECT id, pid, pid_start FROM runs WHERE status = 'running'").fetchall()
        for run_id, pid, pid_start in running:
            if not run_process_alive(pid, pid_start):
                self.db.execute("UPDATE runs SET status = 'failed' WHERE id = ?", (run_id,))
                log.warning("run %d ended without a clean stop (power loss or kill?): marked failed", run_id)

    def save_customers(self, run_id: int, records: list[CustomerRecord]) -> None:
        """Upsert customers; a counted customer that ends is added to its hour's statistics, once."""
        if not records:
            return
        with self.transaction():
            for record in records:
                self._save_customer(run_id, record)

    def _save_customer(self, run_id: int, record: CustomerRecord) -> None:
        estimate = record.estimate
        was_ended = self.db.execute(
            "SELECT ended FROM customers WHERE run_id = ? AND track_id = ?", (run_id, record.track_id)
        ).fetchone()
        if was_ended and was_ended[0]:
            return
        self.db.execute(
            "INSERT INTO customers (run_id, track_id, first_seen, last_seen, age, age_low, age_high, samples,"
            " age_group, counted, ended) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (run_id, track_id) DO UPDATE SET last_seen = excluded.last_seen, age = excluded.age,"
            " age_low = excluded.age_low, age_high = excluded.age_high, samples = excluded.samples,"
            " age_group = excluded.age_group, counted = excluded.counted, ended = excluded.ended",
            (
                run_id,
                record.track_id,
                iso(record.first_seen),
                iso(record.last_seen),
                estimate.age,
                estimate.low,
                estimate.high,
                estimate.samples,
                record.age_group,
                int(record.counted),
                int(record.ended),
            ),
        )
        if record.ended and record.counted:
            self.db.execute(
                "INSERT INTO hourly_stats (run_id, hour, age_group, customers, age_sum) VALUES (?, ?, ?, 1, ?)"
                " ON CONFLICT (run_id, hour, age_group) DO UPDATE SET customers = customers + 1,"
                " age_sum = age_sum + excluded.age_sum",
                (run_id, hour_of(record.first_seen), record.age_group, estimate.age),
            )

    def update_run(
        self,
        run_id: int,
        *,
        frames: int,
        dropped: int,
        faces: int,
        status: str | None = None,
        ended: float | None = None,
    ) -> None:
        with self.transaction():
            self.db.execute(
                "UPDATE runs SET frames = ?, dropped_frames = ?, faces = ?, status = COALESCE(?, status),"
                " ended_at = COALESCE(?, ended_at) WHERE id = ?",
                (frames, dropped, faces, status, iso(ended) if ended is not None else None, run_id),
            )

    def customers(self, run_id: int) -> list[dict[str, object]]:
        return self._rows("SELECT * FROM customers WHERE run_id = ? ORDER BY first_seen, track_id", run_id)

    def hourly_stats(self, run_id: int) -> list[dict[str, object]]:
        return self._rows(
            "SELECT hour, age_group, customers, age_sum / customers AS mean_age FROM hourly_stats"
            " WHERE run_id = ? ORDER BY hour, age_group",
            run_id,
        )

    def _rows(self, sql: str, *params: object) -> list[dict[str, object]]:
        cursor = self.db.execute(sql, params)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def close(self) -> None:
        self.db.close()
