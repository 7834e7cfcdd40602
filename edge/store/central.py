"""The chain's PostgreSQL database (psycopg 3): migrations, and the collector's idempotent writes.

A batch of messages is one transaction. Each record's statement first claims its message id in `inbox`
and writes the record only when that claim is new, so a message delivered twice is written once. The
collector acknowledges a batch to the broker only after this commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from itertools import groupby

import psycopg

from edge.errors import StateError
from edge.store.central_schema import MIGRATION_LOCK, MIGRATIONS, SCHEMA_VERSION
from edge.store.central_url import check_url, one_line, redact

log = logging.getLogger(__name__)
TILL_KEY = ("store_id", "till_id", "log_key")
# What a record's own values can cause (class 22: a bad value, 23: a constraint). Any other error is the
# database's (read-only after a failover or by a setting, a revoked grant, a lost connection): a refused
# record is acknowledged and never sent again, so those must be retried, never taken as a refusal.
RECORD_ERRORS = (psycopg.DataError, psycopg.IntegrityError)


@dataclass(frozen=True)
class Table:
    """How one kind of record is stored: its table, key columns after the till's, and other columns."""

    name: str
    key: tuple[tuple[str, str], ...]
    columns: tuple[tuple[str, str], ...]
    snapshot: bool  # a newer seq replaces the row; otherwise the first write is final


_ESTIMATE = (("age", "real"), ("age_low", "real"), ("age_high", "real"), ("p_under", "real"), ("samples", "integer"))
TABLES: dict[str, Table] = {
    "run": Table(
        "runs",
        (("run_id", "integer"),),
        (
            *(("started_at", "timestamptz"), ("ended_at", "timestamptz"), ("status", "text"), ("mode", "text")),
            *(("model_sha256", "text"), ("provider", "text"), ("agecam_version", "text"), ("frames", "bigint")),
            *(("dropped_frames", "bigint"), ("faces", "bigint")),
        ),
        snapshot=True,
    ),
    "customer": Table(
        "customers",
        (("run_id", "integer"), ("track_id", "integer")),
        (
            *(("first_seen", "timestamptz"), ("last_seen", "timestamptz"), *_ESTIMATE),
            *(("age_group", "text"), ("counted", "boolean")),
        ),
        snapshot=False,
    ),
    "hourly": Table(
        "hourly_stats",
        (("run_id", "integer"), ("hour", "timestamptz"), ("age_group", "text")),
        (("customers", "integer"), ("age_sum", "double precision")),
        snapshot=True,
    ),
    "transaction": Table(
        "transactions",
        (("run_id", "integer"), ("number", "integer")),
        (
            *(("pos_transaction_id", "text"), ("pos_till_id", "text"), ("cashier_id", "text")),
            *(("started_at", "timestamptz"), ("ended_at", "timestamptz"), ("status", "text")),
            *(("restricted_items", "integer"), ("id_check", "text"), ("check_required", "boolean")),
            ("track_id", "integer"),
            *_ESTIMATE,
        ),
        snapshot=True,
    ),
    "alert": Table(
        "alerts",
        (("alert_id", "integer"),),
        (
            *(("run_id", "integer"), ("transaction_number", "integer"), ("kind", "text"), ("type", "text")),
            *(("severity", "text"), ("at", "timestamptz"), ("latency_s", "real"), ("pos_till_id", "text")),
            *(("cashier_id", "text"), ("track_id", "integer"), *_ESTIMATE, ("association", "jsonb")),
            ("has_evidence", "boolean"),
        ),
        snapshot=False,
    ),
}


def _record_sql(table: Table) -> str:
    """One statement per record: claim the message id, then write the record only if the claim is new.
    It returns 1 for a new message and 0 for a duplicate."""
    columns = [(name, "text") for name in TILL_KEY] + list(table.key) + list(table.columns)
    values = ", ".join(f"%({name})s::{kind}" for name, kind in columns)
    conflict = ", ".join([*TILL_KEY, *(name for name, _ in table.key)])
    if table.snapshot:
        updates = ", ".join(f"{name} = EXCLUDED.{name}" for name, _ in [*table.columns, ("seq", "")])
        action = f"DO UPDATE SET {updates} WHERE agecam.{table.name}.seq < EXCLUDED.seq"
        names, values = [*(n for n, _ in columns), "seq"], f"{values}, %(seq)s::bigint"
    else:
        action, names = "DO NOTHING", [name for name, _ in columns]
    return (
        "WITH claim AS (INSERT INTO agecam.inbox (store_id, till_id, msg_id, kind, created_at)"
        " VALUES (%(store_id)s, %(till_id)s, %(msg_id)s, %(msg_kind)s, %(created_at)s)"
        " ON CONFLICT DO NOTHING RETURNING 1),"
        f" record AS (INSERT INTO agecam.{table.name} ({', '.join(names)}) SELECT {values}"
        f" WHERE EXISTS (SELECT 1 FROM claim) ON CONFLICT ({conflict}) {action})"
        " SELECT count(*) FROM claim"
    )


RECORD_SQL = {kind: _record_sql(table) for kind, table in TABLES.items()}
TILL_SQL = (
    "INSERT INTO agecam.tills (store_id, till_id, first_seen, last_seen, availability, availability_at, status)"
    " VALUES (%(store_id)s, %(till_id)s, clock_timestamp(), clock_timestamp(), %(availability)s::text,"
    " CASE WHEN %(availability)s::text IS NULL THEN NULL ELSE clock_timestamp() END, %(status)s::jsonb)"
    " ON CONFLICT (store_id, till_id) DO UPDATE SET"
    " last_seen = CASE WHEN EXCLUDED.availability = 'offline' THEN agecam.tills.last_seen ELSE EXCLUDED.last_seen END,"
    " availability = coalesce(EXCLUDED.availability, agecam.tills.availability),"
    " availability_at = coalesce(EXCLUDED.availability_at, agecam.tills.availability_at),"
    " status = coalesce(EXCLUDED.status, agecam.tills.status)"
)


@dataclass(frozen=True)
class ChainRecord:
    """A validated record from a till (edge.fleet.messages builds these)."""

    store_id: str
    till_id: str
    msg_id: str
    log_key: str
    seq: int
    kind: str
    created_at: datetime
    data: dict


@dataclass(frozen=True)
class TillSeen:
    """A sign of life: any message of a till, its heartbeat (status) or its availability."""

    store_id: str
    till_id: str
    availability: str | None = None
    status: str | None = None  # JSON


@dataclass
class WriteResult:
    written: int = 0
    duplicates: int = 0
    refused: list[tuple[int, str]] = field(default_factory=list)  # (index in the batch, why)


class CentralStore:
    def __init__(self, url: str, **options: str) -> None:
        """`options`: libpq connection parameters beside those of the URL, which they override."""
        check_url(url)
        try:
            self.db = psycopg.connect(url, autocommit=False, connect_timeout=10, **options)
        except psycopg.Error as error:
            raise StateError(f"cannot open the chain database {redact(url)}: {one_line(error)}") from None
        self._migrate(url)

    def _migrate(self, url: str) -> None:
        try:
            if self._version() == SCHEMA_VERSION:  # no DDL: a role with only row grants, or a read-only
                return  # database (its writes are retried later), must not fail on CREATE SCHEMA
            self._upgrade(url)
        except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ReadOnlySqlTransaction) as error:
            self.db.close()
            raise StateError(
                f"cannot set up the chain schema in {redact(url)}: {one_line(error)}: run the first"
                " `agecam collect` (and each upgrade) as a role that may create schema agecam, on the primary"
            ) from None

    def _version(self) -> int | None:
        with self.db.transaction():
            if self.db.execute("SELECT to_regclass('agecam.schema_version')").fetchone()[0] is None:
                return None
            return self.db.execute("SELECT max(version) FROM agecam.schema_version").fetchone()[0]

    def _upgrade(self, url: str) -> None:
        with self.db.transaction():
            self.db.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            self.db.execute("CREATE SCHEMA IF NOT EXISTS agecam")
            self.db.execute("CREATE TABLE IF NOT EXISTS agecam.schema_version (version integer NOT NULL)")
            row = self.db.execute("SELECT version FROM agecam.schema_version").fetchone()
            if row is None:
                self.db.execute("INSERT INTO agecam.schema_version VALUES (0)")
            version = row[0] if row else 0
            if version > SCHEMA_VERSION:
                raise StateError(
                    f"{redact(url)} has chain schema {version}, newer than {SCHEMA_VERSION}: upgrade agecam"
                )
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[target - 1]:
                    self.db.execute(statement)
                self.db.execute("UPDATE agecam.schema_version SET version = %s", (target,))
                log.info("chain database migrated to schema %d", target)

    def write(self, records: list[ChainRecord], seen: list[TillSeen]) -> WriteResult:
        """Write a batch in one transaction. A record the database refuses (a bad value) is skipped and
        reported; any other error (a lost connection, a read-only database) raises psycopg.Error and nothing
        is committed."""
        try:
            with self.db.transaction():
                return self._write_all(records, seen)
        except RECORD_ERRORS:
            return self._write_one_by_one(records, seen)

    def _write_all(self, records: list[ChainRecord], seen: list[TillSeen]) -> WriteResult:
        result = WriteResult()
        with self.db.cursor() as cursor:
            # One order for every collector (kind, till, seq), so two collectors updating the same rows
            # take their locks in the same order and never deadlock; seq keeps each till's order too.
            ordered = sorted(records, key=lambda record: (record.kind, record.store_id, record.till_id, record.seq))
            for kind, group in groupby(ordered, key=lambda record: record.kind):
                cursor.executemany(RECORD_SQL[kind], [_params(record) for record in group], returning=True)
                while True:
                    new = cursor.fetchone()[0]
                    result.written += new
                    result.duplicates += 1 - new
                    if not cursor.nextset():
                        break
            if seen:
                cursor.executemany(TILL_SQL, [_till_params(till) for till in _latest(seen)])
        return result

    def _write_one_by_one(self, records: list[ChainRecord], seen: list[TillSeen]) -> WriteResult:
        result = WriteResult()
        with self.db.transaction():
            for index, record in enumerate(records):
                try:
                    with self.db.transaction():  # a savepoint: one bad record does not undo the others
                        new = self.db.execute(RECORD_SQL[record.kind], _params(record)).fetchone()[0]
                except RECORD_ERRORS as error:
                    result.refused.append((index, str(error).splitlines()[0]))
                    continue
                result.written += new
                result.duplicates += 1 - new
            for till in _latest(seen):
                try:
                    with self.db.transaction():  # a till's news the database refuses must not undo the records
                        self.db.execute(TILL_SQL, _till_params(till))
                except RECORD_ERRORS as error:
                    log.warning("till %s/%s not updated: %s", till.store_id, till.till_id, str(error).splitlines()[0])
        return result

    def close(self) -> None:
        self.db.close()


def _params(record: ChainRecord) -> dict:
    return {
        **record.data,
        "store_id": record.store_id,
        "till_id": record.till_id,
        "log_key": record.log_key,
        "msg_id": record.msg_id,
        "msg_kind": record.kind,
        "created_at": record.created_at,
        "seq": record.seq,
    }


def _latest(seen: list[TillSeen]) -> list[TillSeen]:
    """One update per till and batch (the last news of it), in a fixed order so that two collectors
    updating the same tills never deadlock."""
    latest: dict[tuple[str, str], TillSeen] = {}
    for till in seen:
        key = (till.store_id, till.till_id)
        previous = latest.get(key)
        latest[key] = TillSeen(
            till.store_id,
            till.till_id,
            till.availability or (previous.availability if previous else None),
            till.status or (previous.status if previous else None),
        )
    return [latest[key] for key in sorted(latest)]


def _till_params(till: TillSeen) -> dict:
    return {
        "store_id": till.store_id,
        "till_id": till.till_id,
        "availability": till.availability,
        "status": till.status,
    }
