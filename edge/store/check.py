"""Checks of an event log file, made before agecam changes anything in it: is it agecam's, which schema
version, and is it intact. A file that fails them is refused (exit 6) and left exactly as it was."""

from __future__ import annotations

import contextlib
import sqlite3
from functools import cache
from pathlib import Path

from edge.errors import StateError
from edge.store.schema import MIGRATIONS, SCHEMA_VERSION

Tables = dict[str, tuple[str, ...]]
MOVE_AWAY = "give another --db, or move the file away and let agecam start a new one"


@cache
def schema_tables(version: int) -> Tables:
    """agecam's tables and their columns at `version`, made by running the migrations in memory, so the
    check can never drift from the schema itself."""
    db = sqlite3.connect(":memory:")
    try:
        for statements in MIGRATIONS[:version]:
            for statement in statements:
                db.execute(statement)
        return file_tables(db)
    finally:
        db.close()


def file_tables(db: sqlite3.Connection) -> Tables:
    names = db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
    return {
        name: tuple(row[1] for row in db.execute(f'PRAGMA table_info("{name}")'))
        for (name,) in sorted(names.fetchall())
    }


def check_schema(db: sqlite3.Connection, path: Path) -> int:
    """The file's schema version (0: a new, empty database). Raises StateError for a file that is not
    agecam's (other tables, or tables that differ from agecam's at its version) or is from a newer agecam."""
    # One read transaction: another process upgrading the log (a till's run and its review app starting
    # together after an update) could commit between two reads, and a version with the next one's columns
    # read as "not an agecam event log: move the file away".
    db.execute("BEGIN")
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = file_tables(db)
    finally:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
    if version == 0:
        if tables:
            listed = ", ".join(list(tables)[:5])
            raise StateError(f"{path} is not an agecam event log (it holds the tables {listed}): {MOVE_AWAY}")
        return 0
    if version > SCHEMA_VERSION:
        raise StateError(
            f"event log {path} has schema {version}, newer than this agecam's {SCHEMA_VERSION}: upgrade agecam"
        )
    if version < 0 or tables != schema_tables(version):
        raise StateError(f"{path} is not an agecam event log ({_difference(tables, version)}): {MOVE_AWAY}")
    return version


def _difference(tables: Tables, version: int) -> str:
    if version < 0:
        return f"user_version {version}"
    expected = schema_tables(version)
    extra = sorted(set(tables) - set(expected))
    missing = sorted(set(expected) - set(tables))
    changed = sorted(name for name in set(tables) & set(expected) if tables[name] != expected[name])
    parts = [f"{label} {', '.join(names[:5])}" for label, names in (("extra tables", extra), ("missing", missing),
             ("other columns in", changed)) if names]  # fmt: skip
    return f"schema {version} expected; " + "; ".join(parts)


def check_intact(db: sqlite3.Connection, path: Path) -> None:
    """PRAGMA quick_check: damage anywhere in the file is found now, not at the first write that meets it."""
    try:
        rows = db.execute("PRAGMA quick_check(3)").fetchall()
    except sqlite3.DatabaseError as error:  # some damage stops the check itself
        if getattr(error, "sqlite_errorcode", 0) & 0xFF not in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
            raise
        rows = [(str(error),)]
    if rows != [("ok",)]:
        found = "; ".join(str(row[0]) for row in rows)[:160]
        raise StateError(
            f"event log {path} is damaged (quick_check: {found}): move it away (keep it for recovery) "
            "and restore a backup, or let agecam start a new one"
        )
