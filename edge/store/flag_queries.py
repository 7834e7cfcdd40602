"""Reads of flags for the review app, `agecam events` and the report: the queue with each flag's current
outcome, one flag's transaction, POS events, customer and audit trail, and the audit log.

A flag's outcome is its latest flag_reviews row's, or 'open' without one. A log older than schema 4 has
no review tables yet: its flags read as open.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from edge.store.review_queries import RUN_THRESHOLD_SQL, Span, p_under_sql

# {p_under}: edge.store.review_queries.p_under_sql; threshold: the Challenge age the run recorded.
FLAG_COLUMNS = (
    "a.id, a.at, a.type, a.severity, a.till_id, a.cashier_id, a.track_id, a.age, a.age_low, a.age_high,"
    " {p_under} AS p_under, a.samples, a.run_id, a.transaction_id, t.pos_transaction_id,"
    f" {RUN_THRESHOLD_SQL.format(alias='a')}"
)


@dataclass(frozen=True)
class FlagFilter:
    span: Span
    till: str | None = None
    cashier: str | None = None
    type: str | None = None
    status: str | None = None  # open, reviewed, or one outcome
    limit: int | None = 100
    offset: int = 0


def has_reviews(db: sqlite3.Connection) -> bool:
    return (
        db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'flag_reviews'").fetchone() is not None
    )


def outcome_sql(db: sqlite3.Connection, alias: str = "a") -> str:
    """An SQL expression for the current outcome of the alert row `alias`."""
    if not has_reviews(db):
        return "'open'"
    return (
        f"coalesce((SELECT r.to_outcome FROM flag_reviews r WHERE r.alert_id = {alias}.id"
        " ORDER BY r.id DESC LIMIT 1), 'open')"
    )


def _flag_columns(db: sqlite3.Connection) -> str:
    return FLAG_COLUMNS.format(p_under=p_under_sql(db, "a"))


def _where(db: sqlite3.Connection, filters: FlagFilter) -> tuple[str, list[object]]:
    where, params = "a.kind = 'flag' AND a.at >= ? AND a.at < ?", [filters.span.since, filters.span.until]
    for column, value in (("a.till_id", filters.till), ("a.cashier_id", filters.cashier), ("a.type", filters.type)):
        if value is not None:
            where += f" AND {column} = ?"
            params.append(value)
    if filters.status == "reviewed":
        where += f" AND {outcome_sql(db)} != 'open'"
    elif filters.status is not None:
        where += f" AND {outcome_sql(db)} = ?"
        params.append(filters.status)
    return where, params


def flags(db: sqlite3.Connection, filters: FlagFilter) -> list[dict]:
    """Flags in time order, newest first, with their current outcome."""
    where, params = _where(db, filters)
    sql = (
        f"SELECT {_flag_columns(db)}, {outcome_sql(db)} AS outcome FROM alerts a"
        f" JOIN transactions t ON t.id = a.transaction_id WHERE {where} ORDER BY a.at DESC, a.id DESC"
    )
    if filters.limit is not None:
        sql += " LIMIT ? OFFSET ?"
        params += [filters.limit, filters.offset]
    return [dict(row) for row in db.execute(sql, params)]


def count_flags(db: sqlite3.Connection, filters: FlagFilter) -> int:
    where, params = _where(db, filters)
    return int(db.execute(f"SELECT count(*) FROM alerts a WHERE {where}", params).fetchone()[0])


def flag_choices(db: sqlite3.Connection, span: Span) -> dict[str, list[str]]:
    """The tills, cashiers and types that flags in the span have, for the queue's filters."""
    choices = {}
    for name, column in (("tills", "till_id"), ("cashiers", "cashier_id"), ("types", "type")):
        rows = db.execute(
            f"SELECT DISTINCT {column} FROM alerts WHERE kind = 'flag' AND at >= ? AND at < ?"
            f" AND {column} IS NOT NULL ORDER BY {column}",
            (span.since, span.until),
        )
        choices[name] = [row[0] for row in rows]
    return choices


def alert_counts(db: sqlite3.Connection, span: Span) -> list[dict]:
    """Alerts and flags in the span per kind, severity and current outcome."""
    rows = db.execute(
        f"SELECT a.kind, a.severity, {outcome_sql(db)} AS outcome, count(*) AS n FROM alerts a"
        " WHERE a.at >= ? AND a.at < ? GROUP BY a.kind, a.severity, outcome",
        (span.since, span.until),
    )
    return [dict(row) for row in rows]


def flag(db: sqlite3.Connection, alert_id: int) -> dict | None:
    """One flag with its transaction's row (as `transaction`) and current outcome; None if no such flag."""
    row = db.execute(
        f"SELECT {_flag_columns(db)}, a.t, a.association, a.evidence, {outcome_sql(db)} AS outcome FROM alerts a"
        " JOIN transactions t ON t.id = a.transaction_id WHERE a.id = ? AND a.kind = 'flag'",
        (alert_id,),
    ).fetchone()
    if row is None:
        return None
    result = dict(row)
    result["transaction"] = dict(
        db.execute("SELECT * FROM transactions WHERE id = ?", (row["transaction_id"],)).fetchone()
    )
    return result


def transaction_events(db: sqlite3.Connection, txn: dict) -> list[dict]:
    """The POS events of a transaction (its till, from its start to its end, in its run or, for a live sale
    carried over a restart, the live runs after it) and its alerts and flags, in time order."""
    end = txn["ended_at"] or "9999"
    # A live sale cut by a restart goes on in the next run (edge.challenge.carry) and keeps its row: the events
    # that ended it were stored under that run, and the timeline used to stop at the restart.
    events = db.execute(
        "SELECT id, at, t, type, cashier_id, transaction_id, body FROM pos_events"
        " WHERE till_id = ? AND at >= ? AND at <= ? AND (run_id = ? OR run_id IN"
        " (SELECT later.id FROM runs later JOIN runs own ON own.id = ? AND own.pos = 'live'"
        "  WHERE later.pos = 'live' AND later.id > own.id)) ORDER BY at, id",
        (txn["till_id"], txn["started_at"], end, txn["run_id"], txn["run_id"]),
    )
    found = [{"source": "pos", **dict(row)} for row in events]
    alerts = db.execute(
        "SELECT id, at, t, kind, type, severity, latency_s FROM alerts WHERE transaction_id = ? ORDER BY at, id",
        (txn["id"],),
    )
    found += [{"source": "agecam", **dict(row)} for row in alerts]
    return sorted(found, key=lambda row: (row["at"], row["source"] == "agecam"))


def customer(db: sqlite3.Connection, run_id: int, track_id: int | None) -> dict | None:
    if track_id is None:
        return None
    row = db.execute("SELECT * FROM customers WHERE run_id = ? AND track_id = ?", (run_id, track_id)).fetchone()
    return None if row is None else dict(row)


def reviews(db: sqlite3.Connection, alert_id: int) -> list[dict]:
    rows = db.execute(
        "SELECT id, at, reviewer, from_outcome, to_outcome, note FROM flag_reviews WHERE alert_id = ? ORDER BY id",
        (alert_id,),
    )
    return [dict(row) for row in rows]


def evidence_views(db: sqlite3.Connection, alert_id: int) -> list[dict]:
    rows = db.execute("SELECT id, at, viewer FROM evidence_views WHERE alert_id = ? ORDER BY id", (alert_id,))
    return [dict(row) for row in rows]


def audit(db: sqlite3.Connection, span: Span, limit: int | None = None) -> list[dict]:
    """Every outcome change and evidence view in the span, newest first."""
    sql = (
        "SELECT at, 'outcome' AS action, alert_id, reviewer AS who, from_outcome, to_outcome, note"
        " FROM flag_reviews WHERE at >= ? AND at < ?"
        " UNION ALL SELECT at, 'evidence viewed', alert_id, viewer, NULL, NULL, NULL"
        " FROM evidence_views WHERE at >= ? AND at < ? ORDER BY at DESC"
    )
    params: list[object] = [span.since, span.until] * 2
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [dict(row) for row in db.execute(sql, params)]
