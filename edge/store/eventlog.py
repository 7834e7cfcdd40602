"""The event log: one SQLite file (WAL) with a versioned schema. No face image is ever written here.

Every write is one transaction, and migrations run in one transaction each, so a crash leaves either
the old or the new state, never a half-made database. A file that is not agecam's, is newer or is
damaged is refused before anything in it changes (edge.store.connection). While a run writes, a full
or read-only disk does not stop it: the main loop's writes are held in memory and retried, and the
POS endpoint's connection refuses (503) what it cannot commit (edge.store.storage).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from edge.errors import StateError
from edge.store import outbox as fleet_outbox
from edge.store.backlog import Backlog
from edge.store.connection import open_database
from edge.store.guarded import GuardedWrites
from edge.store.process import run_process_alive, start_marker
from edge.store.storage import FileIdentity, StorageError, StorageHealth
from edge.vision.customer import AgeEstimate

log = logging.getLogger(__name__)
DB_NAME = "agecam.db"
# How long the frame loop's connection waits for a lock held by another connection before it holds its
# writes in memory: longer than a POS commit's fsync, far shorter than SQLite's default 10 s, which let a
# program holding the lock (a backup, the sqlite3 shell) stop the frame loop at one frame per 10-20 s.
FRAME_LOOP_BUSY_S = 0.25


def iso(timestamp: float) -> str:
    """A Unix time as UTC ISO 8601 with milliseconds, the one time format in the log."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def unix(text: str) -> float:
    """A time of the log (iso) as a Unix time."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


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


class EventLog(GuardedWrites):
    """durable: fsync every commit (synchronous=FULL), for writes acknowledged to others (POS events); such a
    connection never holds a write back: it raises, and checks after each commit that the file is still
    the event log at `path`. Otherwise WAL with synchronous=NORMAL (never corrupt, safe from a process
    crash), and writes the storage refuses are held in memory and retried (`write`, `tick`).

    verify: run PRAGMA quick_check before use (a run's start); `health` is shared with `sibling` connections.
    outbox: also queue every record the chain needs (fleet) in the record's own transaction."""

    def __init__(
        self,
        path: Path,
        durable: bool = False,
        *,
        verify: bool = True,
        health: StorageHealth | None = None,
        outbox: bool = False,
    ) -> None:
        self.path, self.durable, self.outbox = path, durable, outbox
        self.health = health or StorageHealth()
        self.backlog = Backlog()
        self.run_id: int | None = None
        self._retry_at = self._check_at = self._said_at = 0.0
        self.db = open_database(path, durable, verify)
        self.identity = FileIdentity.of(path)

    def wait_for_locks(self, seconds: float) -> None:
        """Wait at most `seconds` for another connection's lock from now on (SQLite's default here: 10 s)."""
        self.db.execute(f"PRAGMA busy_timeout = {round(seconds * 1000)}")

    def sibling(self, durable: bool) -> EventLog:
        """Another connection to the same file for another thread, sharing this one's storage health."""
        other = EventLog(self.path, durable, verify=False, health=self.health)
        if other.identity != self.identity:
            other.close()
            raise StorageError(f"event log {self.path} was replaced while starting: restart agecam")
        return other

    def clear_evidence(self, paths: list[str]) -> None:
        """Forget evidence crops that were deleted (retention) in the flags that referred to them.
        Raises StorageError when the storage refuses the write."""

        def clear() -> None:
            self.db.executemany("UPDATE alerts SET evidence = NULL WHERE evidence = ?", [(path,) for path in paths])

        self.commit(clear)

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

        def insert() -> int:
            self._close_orphaned_runs()
            cursor = self.db.execute(
                "INSERT INTO runs (started_at, status, mode, source, model_path, model_sha256, provider,"
                " agecam_version, config_json, pid, pid_start) VALUES (?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*values, os.getpid(), start_marker(os.getpid())),
            )
            if self.outbox:
                fleet_outbox.enqueue_run(self.db, int(cursor.lastrowid))
            return int(cursor.lastrowid)

        try:
            self.run_id = self.commit(insert)
        except StorageError as error:  # a full disk or read-only file at start: refuse now, exit 6
            raise StateError(f"cannot start a run: {error}") from None
        return self.run_id

    def _close_orphaned_runs(self) -> None:
        """Runs still 'running' whose process is gone ended without a clean stop (power loss, kill -9); so
        did those whose pid now belongs to another process (compared by start time)."""
        running = self.db.execute("SELECT id, pid, pid_start FROM runs WHERE status = 'running'").fetchall()
        for run_id, pid, pid_start in running:
            if not run_process_alive(pid, pid_start):
                self.db.execute("UPDATE runs SET status = 'failed' WHERE id = ?", (run_id,))
                if self.outbox:
                    fleet_outbox.enqueue_run(self.db, run_id)
                log.warning("run %d ended without a clean stop (power loss or kill?): marked failed", run_id)

    def save_customers(self, run_id: int, records: list[CustomerRecord]) -> None:
        """Upsert customers; a counted customer that ends is added to its hour's statistics, once. While the
        storage refuses writes, each customer's latest state is held (see `write`)."""
        if records:
            self.write([(("customer", run_id, r.track_id), partial(self._save_customer, run_id, r)) for r in records])

    def _save_customer(self, run_id: int, record: CustomerRecord) -> None:
        estimate = record.estimate
        was_ended = self.db.execute(
            "SELECT ended FROM customers WHERE run_id = ? AND track_id = ?", (run_id, record.track_id)
        ).fetchone()
        if was_ended and was_ended[0]:
            return
        self.db.execute(
            "INSERT INTO customers (run_id, track_id, first_seen, last_seen, age, age_low, age_high, samples,"
            " p_under, age_group, counted, ended) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (run_id, track_id) DO UPDATE SET last_seen = excluded.last_seen, age = excluded.age,"
            " age_low = excluded.age_low, age_high = excluded.age_high, samples = excluded.samples,"
            " p_under = excluded.p_under,"
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
                estimate.p_under,
                record.age_group,
                int(record.counted),
                int(record.ended),
            ),
        )
        if self.outbox and record.ended:
            fleet_outbox.enqueue_customer(self.db, run_id, record.track_id)
        if record.ended and record.counted:
            self.db.execute(
                "INSERT INTO hourly_stats (run_id, hour, age_group, customers, age_sum) VALUES (?, ?, ?, 1, ?)"
                " ON CONFLICT (run_id, hour, age_group) DO UPDATE SET customers = customers + 1,"
                " age_sum = age_sum + excluded.age_sum",
                (run_id, hour_of(record.first_seen), record.age_group, estimate.age),
            )
            if self.outbox:
                fleet_outbox.enqueue_hourly(self.db, run_id, hour_of(record.first_seen), record.age_group)

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
        values = (frames, dropped, faces, status, iso(ended) if ended is not None else None, run_id)
        sql = (
            "UPDATE runs SET frames = ?, dropped_frames = ?, faces = ?, status = COALESCE(?, status),"
            " ended_at = COALESCE(?, ended_at) WHERE id = ?"
        )

        def update() -> None:
            self.db.execute(sql, values)
            if self.outbox:
                fleet_outbox.enqueue_run(self.db, run_id)

        self.write([(("run", run_id), update)])

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
        """Close, after one last try to store what is held (see `unwritten` for what could not be)."""
        if self.backlog and not self.health.gone:
            self._retry()
        self.db.close()
