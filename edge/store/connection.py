"""Opening the event log's SQLite file: check it before changing anything, then WAL, migrations (one
transaction each) and the connection settings. A refused or failed open leaves no file behind that it
created, and never touches a file that is not agecam's."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from edge.errors import StateError
from edge.store.check import MOVE_AWAY, check_intact, check_schema
from edge.store.schema import MIGRATIONS, SCHEMA_VERSION
from edge.store.storage import StorageError, storage_problem, unfit_for_a_log

BUSY_S = 10.0  # how long a connection waits for another's lock, unless told otherwise (EventLog.wait_for_locks)


def open_database(path: Path, durable: bool, verify: bool) -> sqlite3.Connection:
    """An autocommit connection to an up-to-date agecam event log, or a one-line StateError (exit 6)."""
    try:
        ensure_writable_folder(path.parent)
    except StateError:
        _refuse_unfit(path)  # /proc/x.db: the folder is not writable, but the path is what is wrong
        raise
    created = not path.exists()
    db = None
    try:
        db = sqlite3.connect(path, isolation_level=None, timeout=BUSY_S, check_same_thread=False)
        _prepare(db, path, durable, verify)
        return db
    except (StateError, sqlite3.DatabaseError, OSError) as error:
        _abandon(db, path, created)
        if isinstance(error, StateError):
            raise
        _refuse_unfit(path)  # before storage_problem: SQLite says only "unable to open database file"
        problem = storage_problem(error, path)
        if problem:
            raise StorageError(f"cannot write the event log {path}: {problem}") from None
        raise StateError(f"event log {path} is not a usable agecam database ({error}): {MOVE_AWAY}") from None


def _refuse_unfit(path: Path) -> None:
    """A StateError, not a StorageError that a retry or purge would wait out, for a path that can never be a log."""
    if unfit := unfit_for_a_log(path):
        raise StateError(unfit) from None


def _prepare(db: sqlite3.Connection, path: Path, durable: bool, verify: bool) -> None:
    """Check the file before anything in it changes (not even WAL mode), then set up and migrate."""
    check_schema(db, path)
    if verify:
        check_intact(db, path)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
    db.execute("PRAGMA foreign_keys = ON")
    version = db.execute("PRAGMA user_version").fetchone()[0]
    for target in range(version + 1, SCHEMA_VERSION + 1):
        with Transaction(db):
            if db.execute("PRAGMA user_version").fetchone()[0] >= target:
                continue  # another process (the review app starting with the till's run) migrated it meanwhile
            for statement in MIGRATIONS[target - 1]:
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {target}")


def _abandon(db: sqlite3.Connection | None, path: Path, created: bool) -> None:
    """A refused or failed open: close, and remove the files only if this open created them."""
    if db is not None:
        db.close()
    if created:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


class Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any error (the connection is in autocommit mode)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, kind: type | None, *_: object) -> None:
        if kind is None:
            try:
                self.db.execute("COMMIT")
                return
            except sqlite3.Error:
                self._rollback()
                raise
        self._rollback()

    def _rollback(self) -> None:
        # After SQLITE_FULL, SQLite may have rolled back already; the original error is the one to raise.
        if self.db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self.db.execute("ROLLBACK")


def ensure_writable_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StateError(
            f"cannot create the state directory {folder} ({error.strerror}): set state.dir to a writable folder"
        ) from None
    # A StorageError (a StateError all the same): a read-only mount may be writable later, and purge retries.
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StorageError(
            f"state directory {folder} is not writable: set state.dir to a writable folder or fix its permissions"
        )
