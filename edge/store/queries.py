"""Every read of the event log for people and tools: events, statistics, the report's tables and a
scenario run's transactions. Read-only connections; filters are typed values, never argparse namespaces."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from edge.errors import PosError, StateError
from edge.store.check import check_schema
from edge.store.eventlog import unix
from edge.store.flag_queries import outcome_sql
from edge.store.review_queries import p_under_sql
from edge.store.storage import unfit_for_a_log

# {p_under}: edge.store.review_queries.p_under_sql (NULL in a log from before schema 7).
CUSTOMERS_SQL = (
    "SELECT 'customer' AS kind, first_seen AS at, 'customer' AS type, NULL AS severity, NULL AS till_id,"
    ' NULL AS cashier_id, NULL AS "transaction", track_id, age, age_low, age_high, {p_under} AS p_under,'
    " samples, age_group, run_id, NULL AS outcome FROM customers WHERE counted = 1"
)
# {outcome}: edge.store.flag_queries.outcome_sql, the flag's current review outcome.
ALERTS_SQL = (
    'SELECT a.kind, a.at, a.type, a.severity, a.till_id, a.cashier_id, t.pos_transaction_id AS "transaction",'
    " a.track_id, a.age, a.age_low, a.age_high, {p_under} AS p_under, a.samples, NULL AS age_group, a.run_id,"
    " CASE WHEN a.kind = 'flag' THEN {outcome} END AS outcome"
    " FROM alerts a JOIN transactions t ON t.id = a.transaction_id"
)


@dataclass(frozen=True)
class EventFilter:
    """Which events to list. Times are the log's own ISO format (edge.store.eventlog.iso)."""

    since: str | None = None
    until: str | None = None
    till: str | None = None
    cashier: str | None = None
    kind: str | None = None  # customer, alert or flag
    types: tuple[str, ...] = ()
    limit: int = 1000


def read_only_uri(path: Path, immutable: bool = False) -> str:
    """The path as a read-only SQLite URI, percent-encoded: a '#', '?' or '%' in a folder's name (`store #12`)
    ended the path there, so another file was opened, and created empty (`store `), instead of the log."""
    return f"{path.absolute().as_uri()}?mode=ro" + ("&immutable=1" if immutable else "")


def _connect(path: Path) -> sqlite3.Connection:
    """A read-only connection that has read the schema version. SQLite reads a WAL log only where it can make
    the log's -shm file: on a read-only mount (a backup) that failed, 'not an agecam event log'. There, without
    a -wal file, every commit is in the file and nothing can write it: read it as immutable. Never on a folder
    that is only closed to this user (a live till's): its till may write the log meanwhile, and an immutable
    reader would see stale or torn pages."""
    db = sqlite3.connect(read_only_uri(path), uri=True)
    try:
        db.execute("PRAGMA user_version")
        return db
    except sqlite3.OperationalError:
        db.close()
        if not _read_only_mount(path) or Path(f"{path}-wal").exists():
            raise
    return sqlite3.connect(read_only_uri(path, immutable=True), uri=True)


def _read_only_mount(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _unreadable(path: Path, error: sqlite3.DatabaseError) -> StateError:
    if isinstance(error, sqlite3.OperationalError) and not os.access(path.parent, os.W_OK):
        if _read_only_mount(path):  # a -wal file beside it, which immutable reading would miss
            return StateError(
                f"cannot read {path}: it is on a read-only mount, and SQLite must make {path.name}-shm beside its"
                f" -wal file to read it ({error}): copy {path.name} and {path.name}-wal to a writable folder"
            )
        return StateError(
            f"cannot read {path}: SQLite must make {path.name}-shm in its folder, which this user cannot write"
            f" ({error}): run as the till's user (agecam), or copy {path.name} and any {path.name}-wal elsewhere"
        )
    return StateError(f"{path} is not an agecam event log ({error})")


def open_log(path: Path) -> sqlite3.Connection:
    """The event log, read-only; refuses a missing file or one older than the POS schema."""
    if not path.is_file():
        raise StateError(unfit_for_a_log(path) or f"event log not found: {path}: give --db or set state.dir")
    try:
        db = _connect(path)
        version = db.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as error:
        raise _unreadable(path, error) from None
    if version < 2:
        db.close()
        # An empty read: /proc/version reads as a new, empty database, which no replay can upgrade.
        fix = "run any agecam replay or run on it once to upgrade it"
        raise StateError(unfit_for_a_log(path) or f"{path} has schema {version}: {fix}")
    try:  # a file with a user_version that is not agecam's must not end in a traceback
        check_schema(db, path)
    except (StateError, sqlite3.DatabaseError) as error:
        db.close()
        raise StateError(str(error) if isinstance(error, StateError) else f"{path}: {error}") from None
    db.row_factory = sqlite3.Row
    return db


def query_events(db: sqlite3.Connection, filters: EventFilter) -> list[dict]:
    parts = []
    if filters.kind in (None, "customer") and not (filters.till or filters.cashier or filters.types):
        parts.append(CUSTOMERS_SQL.format(p_under=p_under_sql(db)))
    if filters.kind != "customer":
        parts.append(ALERTS_SQL.format(outcome=outcome_sql(db), p_under=p_under_sql(db, "a")))
    if not parts:
        return []
    sql = f"SELECT * FROM ({' UNION ALL '.join(parts)}) WHERE 1 = 1"
    params: list[object] = []
    for clause, value in (
        ("at >= ?", filters.since),
        ("at < ?", filters.until),
        ("till_id = ?", filters.till),
        ("cashier_id = ?", filters.cashier),
        ("kind = ?", filters.kind),
    ):
        if value is not None:
            sql += f" AND {clause}"
            params.append(value)
    if filters.types:
        sql += f" AND type IN ({', '.join('?' * len(filters.types))})"
        params += filters.types
    sql += " ORDER BY at, kind LIMIT ?"
    params.append(filters.limit)
    return [_rounded(dict(row)) for row in db.execute(sql, params)]


def _rounded(row: dict) -> dict:
    for key in ("age", "age_low", "age_high"):
        if row[key] is not None:
            row[key] = round(row[key], 1)
    if row.get("p_under") is not None:
        row["p_under"] = round(row["p_under"], 3)
    return row


def query_stats(db: sqlite3.Connection, by: str, since: str | None, until: str | None) -> list[dict]:
    """Counted customers per hour or day and age group, across runs, with their mean age."""
    period = "hour" if by == "hour" else "substr(hour, 1, 10)"
    sql = (
        f"SELECT {period} AS period, age_group, sum(customers) AS customers,"
        " round(sum(age_sum) / sum(customers), 1) AS mean_age FROM hourly_stats WHERE 1 = 1"
    )
    params = []
    if since:
        sql += " AND hour >= ?"
        params.append(since[:13])
    if until:
        sql += " AND hour < ?"
        params.append(until)
    return [dict(row) for row in db.execute(sql + " GROUP BY period, age_group ORDER BY period, age_group", params)]


def compliance(db: sqlite3.Connection, since: str | None, until: str | None) -> list[dict]:
    """Per cashier: transactions that needed an ID check, and how many had one (any result)."""
    rows = db.execute(
        "SELECT coalesce(cashier_id, '(unknown)') AS cashier, count(*) AS required,"
        " sum(id_check IS NOT NULL) AS checked FROM transactions"
        " WHERE check_required = 1 AND status != 'open' AND started_at >= ? AND started_at < ?"
        " GROUP BY cashier ORDER BY cashier",
        (since or "", until or "9999"),
    )
    return [dict(row) for row in rows]


def alerts(db: sqlite3.Connection, since: str | None, until: str | None) -> list[dict]:
    """Alerts and flags in the period, in time order, with their transaction's POS id and current outcome."""
    rows = db.execute(
        "SELECT a.at, a.kind, a.type, a.severity, a.till_id, a.cashier_id, t.pos_transaction_id, a.age,"
        f" a.age_low, a.age_high, a.p_under, a.samples, {outcome_sql(db)} AS outcome"
        " FROM alerts a JOIN transactions t ON t.id = a.transaction_id"
        " WHERE a.at >= ? AND a.at < ? ORDER BY a.at",
        (since or "", until or "9999"),
    )
    return [dict(row) for row in rows]


def run_alerts(db_path: Path, run_id: int) -> list[dict]:
    """A run's alerts and flags in video order, for its end-of-run summary."""
    db = open_log(db_path)
    try:
        rows = db.execute(
            "SELECT a.kind, a.type, a.severity, round(a.t, 2) AS t, a.till_id, a.cashier_id,"
            ' t.pos_transaction_id AS "transaction", a.track_id, a.age, a.age_low, a.age_high, a.p_under, a.samples'
            " FROM alerts a JOIN transactions t ON t.id = a.transaction_id WHERE a.run_id = ? ORDER BY a.t, a.id",
            (run_id,),
        )
        return [_rounded(dict(row)) for row in rows]
    finally:
        db.close()


def scenario_run(db_path: Path, run_id: int | None) -> dict[str, dict]:
    """Per POS transaction id of a run (default the latest): the transaction row, its alerts, and its
    customer's track span in video seconds."""
    if not db_path.is_file():
        raise StateError(unfit_for_a_log(db_path) or f"event log not found: {db_path}")
    db = sqlite3.connect(read_only_uri(db_path), uri=True)
    db.row_factory = sqlite3.Row
    try:
        run_id = run_id or db.execute("SELECT max(id) FROM runs").fetchone()[0]
        first = db.execute("SELECT at, t FROM pos_events WHERE run_id = ? ORDER BY id LIMIT 1", (run_id,)).fetchone()
        if first is None:
            raise StateError(f"{db_path}: run {run_id} has no POS events: replay with --pos")
        # A replay stopped midway (Ctrl-C) covered part of the video only (its later sales are not applied), and
        # it was scored as if whole: the sales after the stop counted as minors not alerted.
        status = db.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()[0]
        if status != "completed":
            raise PosError(
                f"{db_path}: run {run_id} is {status}, not completed: replay the whole video and score that run"
            )
        origin = unix(first["at"]) - first["t"]
        tracks = {
            row["track_id"]: (unix(row["first_seen"]) - origin, unix(row["last_seen"]) - origin)
            for row in db.execute("SELECT track_id, first_seen, last_seen FROM customers WHERE run_id = ?", (run_id,))
        }
        result = {}
        for txn in db.execute("SELECT * FROM transactions WHERE run_id = ?", (run_id,)):
            alerts = [dict(row) for row in db.execute("SELECT * FROM alerts WHERE transaction_id = ?", (txn["id"],))]
            result[txn["pos_transaction_id"]] = {
                "txn": dict(txn),
                "alerts": alerts,
                "track": tracks.get(txn["track_id"]),
            }
        return result
    except sqlite3.DatabaseError as error:
        unfit = unfit_for_a_log(db_path)
        raise StateError(unfit or f"{db_path}: not an agecam event log with POS tables ({error})") from None
    except (TypeError, ValueError, AttributeError):  # an edited or damaged row: a traceback before
        fix = "replay the scenario again"
        raise StateError(f"{db_path}: run {run_id} has a time or second agecam never writes: {fix}") from None
    finally:
        db.close()
