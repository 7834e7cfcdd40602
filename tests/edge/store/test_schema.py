"""Schema migrations on real SQLite files: version 6 rebuilds `transactions` (a CHECK cannot be altered)
and keeps every row, id and reference to it; version 10's columns give earlier rows the old defaults."""

from __future__ import annotations

import contextlib
import sqlite3

import pytest

from edge.store.eventlog import EventLog
from edge.store.pos_history import leftovers
from edge.store.schema import MIGRATIONS, SCHEMA_VERSION

RUN = (
    "INSERT INTO runs (started_at, status, mode, source, model_path, model_sha256, provider, agecam_version,"
    " config_json) VALUES ('2026-01-01T00:00:00.000Z', 'failed', 'live', 's', 'm', 'h', 'p', 'v', '{}')"
)


REBUILD = next(index for index, migration in enumerate(MIGRATIONS) if "DROP TABLE transactions" in migration)


def version_3_log(path) -> None:
    """The log just before the rebuild, with a transaction that an alert refers to."""
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("PRAGMA foreign_keys = ON")
        for migration in MIGRATIONS[:REBUILD]:
            for statement in migration:
                db.execute(statement)
        db.execute(f"PRAGMA user_version = {REBUILD}")
        db.execute(RUN)
        for number, status in ((1, "completed"), (2, "open")):
            db.execute(
                "INSERT INTO transactions (id, run_id, number, till_id, started_at, status, restricted_items,"
                " check_required) VALUES (?, 1, ?, 'till-1', '2026-01-01T00:00:01.000Z', ?, 1, 1)",
                (10 * number, number, status),
            )
        db.execute(
            "INSERT INTO alerts (run_id, transaction_id, kind, type, severity, at, t, till_id)"
            " VALUES (1, 20, 'alert', 'id_check_required', 'info', '2026-01-01T00:00:02.000Z', 2, 'till-1')"
        )


def test_the_rebuild_keeps_transactions_their_ids_and_the_alerts_pointing_at_them(tmp_path):
    path = tmp_path / "v3.db"
    version_3_log(path)
    log = EventLog(path)
    db = log.db
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 4
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    assert db.execute("SELECT id, number, status, resolution FROM transactions").fetchall() == [
        (10, 1, "completed", None),
        (20, 2, "open", None),
    ]
    assert db.execute("SELECT t.number FROM alerts a JOIN transactions t ON t.id = a.transaction_id").fetchall() == [
        (2,)
    ]
    db.execute("UPDATE transactions SET status = 'unresolved', resolution = 'expired' WHERE id = 20")
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("UPDATE transactions SET status = 'lost' WHERE id = 20")
    with pytest.raises(sqlite3.IntegrityError):  # the rebuilt table is still the alerts' parent
        db.execute("DELETE FROM transactions WHERE id = 20")
    columns = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
    assert {"pos", "pos_applied"} <= columns
    log.close()


def test_a_migration_that_would_orphan_an_alert_is_refused(tmp_path):
    """The foreign keys are checked at commit: had the copy lost a row, nothing would have changed."""
    path = tmp_path / "v3.db"
    version_3_log(path)
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("BEGIN IMMEDIATE")
        for statement in MIGRATIONS[REBUILD]:
            db.execute(statement.replace("FROM transactions_v3", "FROM transactions_v3 WHERE id != 20"))
        with pytest.raises(sqlite3.IntegrityError):
            db.execute("COMMIT")
        db.execute("ROLLBACK")
        assert db.execute("SELECT count(*) FROM transactions").fetchone()[0] == 2


def test_open_sales_of_a_log_before_opened_by_resume_as_opened_by_their_start_and_confirmed(tmp_path):
    """What earlier logs kept: the defaults are what a restart took before the columns were kept (README)."""
    opened_by = [index for index, migration in enumerate(MIGRATIONS) if any("opened_by" in s for s in migration)]
    assert opened_by, "no migration keeps which event opened a sale"
    path = tmp_path / "v9.db"
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        for migration in MIGRATIONS[: opened_by[0]]:
            for statement in migration:
                db.execute(statement)
        db.execute(f"PRAGMA user_version = {opened_by[0]}")
        db.execute(RUN)
        db.execute("UPDATE runs SET pos = 'live'")
        db.execute(
            "INSERT INTO transactions (run_id, number, pos_transaction_id, till_id, started_at, status,"
            " restricted_items, check_required) VALUES (1, 1, 'T1', 'till-1', '2026-01-01T00:00:01.000Z', 'open', 1, 0)"
        )
    log = EventLog(path)
    assert log.db.execute("SELECT opened_by, unconfirmed FROM transactions").fetchall() == [("transaction_start", 0)]
    with pytest.raises(sqlite3.IntegrityError):
        log.db.execute("UPDATE transactions SET unconfirmed = 2")
    (row,) = leftovers(log, 2, 0.0).open_rows
    assert (row.opened_by, row.unconfirmed) == ("transaction_start", False)
    log.close()


def _log_before_the_last_migration(path) -> sqlite3.Connection:
    """A log one version old, with an open sale, and another process's upgrade of it under way (not committed):
    the connection that holds it. Its COMMIT lands whenever the test says."""
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("PRAGMA journal_mode = WAL")
        for migration in MIGRATIONS[:-1]:
            for statement in migration:
                db.execute(statement)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION - 1}")
        db.execute(RUN)
        db.execute("UPDATE runs SET pos = 'live'")
        db.execute(
            "INSERT INTO transactions (run_id, number, pos_transaction_id, till_id, started_at, status,"
            " restricted_items, check_required) VALUES (1, 1, 'T1', 'till-1', '2026-01-01T00:00:01.000Z', 'open', 1, 0)"
        )
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    for statement in MIGRATIONS[-1]:
        other.execute(statement)
    other.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    return other


def test_a_log_another_process_upgrades_between_the_checks_reads_is_still_agecams(tmp_path):
    """The version and the tables are read in one snapshot: the other process (the review app, starting with the
    till's run after an update) committing between them made a log of version 9 with version 10's columns,
    refused as 'not an agecam event log: move the file away'."""
    from edge.store.check import check_schema

    path = tmp_path / "agecam.db"
    other = _log_before_the_last_migration(path)
    reader = sqlite3.connect(path, isolation_level=None)

    def commit_before_the_tables_are_read(sql: str) -> None:
        if "sqlite_master" in sql and other.in_transaction:
            other.execute("COMMIT")

    reader.set_trace_callback(commit_before_the_tables_are_read)
    assert check_schema(reader, path) == SCHEMA_VERSION - 1
    assert not other.in_transaction, "the upgrade committed during the check"
    reader.set_trace_callback(None)
    assert check_schema(reader, path) == SCHEMA_VERSION
    reader.close()
    other.close()


def test_a_log_another_process_upgrades_while_this_one_opens_it_is_opened(tmp_path, monkeypatch):
    """This process read the old version, then waited for the other's migration to commit, and ran it again:
    'duplicate column name: opened_by', refused as not a usable agecam database (exit 6, move the file away)."""
    path = tmp_path / "agecam.db"
    other = _log_before_the_last_migration(path)
    connect = sqlite3.connect

    def commit_as_this_one_begins_to_migrate(sql: str) -> None:  # after this one read the version
        if sql == "BEGIN IMMEDIATE" and other.in_transaction:
            other.execute("COMMIT")

    def traced(*args, **kwargs) -> sqlite3.Connection:
        db = connect(*args, **kwargs)
        db.set_trace_callback(commit_as_this_one_begins_to_migrate)
        return db

    monkeypatch.setattr(sqlite3, "connect", traced)
    log = EventLog(path)
    monkeypatch.undo()
    assert not other.in_transaction, "the other process's upgrade committed while this one opened the log"
    assert log.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    (row,) = leftovers(log, 2, 0.0).open_rows
    assert (row.pos_id, row.opened_by, row.unconfirmed) == ("T1", "transaction_start", False)
    log.close()
    other.close()
