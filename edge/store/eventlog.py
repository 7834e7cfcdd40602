"""The event log: one SQLite file (WAL) with a versioned schema. No face image is ever written here.

Every write is one transaction, and migrations run in one transaction each, so a crash leaves either
the old or the new state, never a half-made database.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from edge.errors import StateError
from edge.store import outbox as fleet_outbox
from edge.store.schema import MIGRATIONS, SCHEMA_VERSION
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
    Otherwise WAL with synchronous=NORMAL: never corrupt, and safe from a process crash.
    outbox: also queue every record the chain needs (fleet) in the record's own transaction."""

    def __init__(self, path: Path, durable: bool = False, outbox: bool = False) -> None:
        self.path, self.outbox = path, outbox
        _ensure_writable_folder(path.parent)
        try:
            self.db = sqlite3.connect(path, isolation_level=None, timeout=10, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
            self.db.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except sqlite3.DatabaseError as error:
            raise StateError(f"event log {path} is not a usable agecam database ({error}): move it away") from None

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StateError(
                f"event log {self.path} has schema {version}, newer than this agecam's {SCHEMA_VERSION}: upgrade agecam"
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            with self.transaction():
                for statement in MIGRATIONS[target - 1]:
                    self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version = {target}")

    def clear_evidence(self, paths: list[str]) -> None:
        """Forget evidence crops that were deleted (retention), in the flags that referred to them."""
        with self.transaction():
            self.db.executemany("UPDATE alerts SET evidence = NULL WHERE evidence = ?", [(path,) for path in paths])

    def transaction(self) -> _Transaction:
        return _Transaction(self.db)

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
        with self.transaction():
            self._close_orphaned_runs()
            cursor = self.db.execute(
                "INSERT INTO runs (started_at, status, mode, source, model_path, model_sha256, provider,"
                " agecam_version, config_json, pid) VALUES (?, 'running', ?, ?, ?, ?, ?, ?, ?, ?)",
                (iso(started), mode, source, model_path, model_sha256, provider, version, config_json, os.getpid()),
            )
            if self.outbox:
                fleet_outbox.enqueue_run(self.db, int(cursor.lastrowid))
        return int(cursor.lastrowid)

    def _close_orphaned_runs(self) -> None:
        """Runs still 'running' whose process is gone ended without a clean stop (power loss, kill -9)."""
        for run_id, pid in self.db.execute("SELECT id, pid FROM runs WHERE status = 'running'").fetchall():
            if pid is None or not _process_alive(pid):
                self.db.execute("UPDATE runs SET status = 'failed' WHERE id = ?", (run_id,))
                if self.outbox:
                    fleet_outbox.enqueue_run(self.db, run_id)
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
        with self.transaction():
            self.db.execute(
                "UPDATE runs SET frames = ?, dropped_frames = ?, faces = ?, status = COALESCE(?, status),"
                " ended_at = COALESCE(?, ended_at) WHERE id = ?",
                (frames, dropped, faces, status, iso(ended) if ended is not None else None, run_id),
            )
            if self.outbox:
                fleet_outbox.enqueue_run(self.db, run_id)

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


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any error (the connection is in autocommit mode)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, kind: type | None, *_: object) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def _ensure_writable_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StateError(
            f"cannot create the state directory {folder} ({error.strerror}): set state.dir to a writable folder"
        ) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StateError(
            f"state directory {folder} is not writable: set state.dir to a writable folder or fix its permissions"
        )
