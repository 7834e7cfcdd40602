"""Reads for the review app and the report: a period's totals, traffic and age mix, ID-check compliance,
transactions and till health. Every function takes a read-only connection (edge.store.queries.open_log)
and plain values, so another store (a chain-wide PostgreSQL) can implement the same functions later.

Times are the log's UTC ISO strings; a Span is [since, until).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# A completed sale with at least one age-restricted item.
RESTRICTED_SALE = "restricted_items > 0 AND status = 'completed'"
# A transaction that needed an ID check (an alert, a flag or no face) and was not left open.
CHECK_REQUIRED = "restricted_items > 0 AND check_required = 1 AND status != 'open'"
# The Challenge age that a row's p_under is about: its run's policy.threshold as the run recorded it (NULL
# where the run's config does not say; the reader falls back to the configured one).
RUN_THRESHOLD_SQL = (
    "(SELECT CASE WHEN json_valid(r.config_json) THEN json_extract(r.config_json, '$.policy.threshold') END"
    " FROM runs r WHERE r.id = {alias}.run_id) AS threshold"
)


@dataclass(frozen=True)
class Span:
    since: str
    until: str

    def hours(self) -> tuple[str, str]:
        """The span in hourly_stats' hour format: the hours that overlap it (customers are counted per hour)."""
        return _hour(self.since, up=False), _hour(self.until, up=True)


def _hour(text: str, up: bool) -> str:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    floor = moment.replace(minute=0, second=0, microsecond=0)
    return (floor + timedelta(hours=1) if up and floor != moment else floor).strftime("%Y-%m-%dT%H:00Z")


@dataclass(frozen=True)
class TransactionFilter:
    span: Span
    cashier: str | None = None
    till: str | None = None
    required_only: bool = False
    limit: int | None = 100
    offset: int = 0


def p_under_sql(db: sqlite3.Connection, alias: str | None = None) -> str:
    """The p_under column, or NULL in a log from before schema 7 (read-only commands read it as it is)."""
    if not any(row[1] == "p_under" for row in db.execute("PRAGMA table_info(alerts)")):
        return "NULL"
    return "p_under" if alias is None else f"{alias}.p_under"


def customers_by_hour(db: sqlite3.Connection, span: Span) -> list[tuple[str, int]]:
    """Counted customers per UTC hour with any; hours without customers are absent."""
    rows = db.execute(
        "SELECT hour, sum(customers) FROM hourly_stats WHERE hour >= ? AND hour < ? GROUP BY hour ORDER BY hour",
        span.hours(),
    )
    return rows.fetchall()


def age_mix(db: sqlite3.Connection, span: Span) -> list[dict]:
    rows = db.execute(
        "SELECT age_group, sum(customers) AS customers, sum(age_sum) / sum(customers) AS mean_age FROM hourly_stats"
        " WHERE hour >= ? AND hour < ? GROUP BY age_group",
        span.hours(),
    )
    return [dict(row) for row in rows]


def sales_summary(db: sqlite3.Connection, span: Span) -> dict[str, int]:
    """Restricted sales, transactions that needed an ID check, and how many of those had one."""
    row = db.execute(
        f"SELECT coalesce(sum({RESTRICTED_SALE}), 0), coalesce(sum({CHECK_REQUIRED}), 0),"
        f" coalesce(sum({CHECK_REQUIRED} AND id_check IS NOT NULL), 0)"
        " FROM transactions WHERE restricted_items > 0 AND started_at >= ? AND started_at < ?",
        (span.since, span.until),
    ).fetchone()
    return {"restricted_sales": row[0], "checks_required": row[1], "checks_done": row[2]}


def compliance(db: sqlite3.Connection, span: Span) -> list[dict]:
    """Per cashier: transactions that needed an ID check, and how many had one (any result)."""
    rows = db.execute(
        "SELECT coalesce(cashier_id, '(unknown)') AS cashier, count(*) AS required,"
        " sum(id_check IS NOT NULL) AS checked FROM transactions"
        f" WHERE {CHECK_REQUIRED} AND started_at >= ? AND started_at < ? GROUP BY cashier ORDER BY cashier",
        (span.since, span.until),
    )
    return [dict(row) for row in rows]


def _transaction_where(filters: TransactionFilter) -> tuple[str, list[object]]:
    where, params = "started_at >= ? AND started_at < ?", [filters.span.since, filters.span.until]
    if filters.required_only:
        where += f" AND {CHECK_REQUIRED}"
    if filters.cashier is not None:
        # The compliance table shows a missing cashier as '(unknown)'; its drill-down means NULL.
        where += " AND cashier_id IS NULL" if filters.cashier == "(unknown)" else " AND cashier_id = ?"
        params += [] if filters.cashier == "(unknown)" else [filters.cashier]
    if filters.till is not None:
        where += " AND till_id = ?"
        params.append(filters.till)
    return where, params


def transactions(db: sqlite3.Connection, filters: TransactionFilter) -> list[dict]:
    """Transactions in time order with their flag (if any): the compliance drill-down."""
    where, params = _transaction_where(filters)
    sql = (
        "SELECT t.id, t.started_at, t.ended_at, t.till_id, t.cashier_id, t.pos_transaction_id, t.status,"
        " t.restricted_items, t.check_required, t.id_check, t.age, t.age_low, t.age_high,"
        f" {p_under_sql(db, 't')} AS p_under, t.samples, {RUN_THRESHOLD_SQL.format(alias='t')},"
        " (SELECT a.id FROM alerts a WHERE a.transaction_id = t.id AND a.kind = 'flag' LIMIT 1) AS flag_id,"
        " (SELECT a.type FROM alerts a WHERE a.transaction_id = t.id AND a.kind = 'flag' LIMIT 1) AS flag_type"
        f" FROM transactions t WHERE {where} ORDER BY t.started_at, t.id"
    )
    if filters.limit is not None:
        sql += " LIMIT ? OFFSET ?"
        params += [filters.limit, filters.offset]
    return [dict(row) for row in db.execute(sql, params)]


def count_transactions(db: sqlite3.Connection, filters: TransactionFilter) -> int:
    where, params = _transaction_where(filters)
    return int(db.execute(f"SELECT count(*) FROM transactions WHERE {where}", params).fetchone()[0])


def restricted_sales(db: sqlite3.Connection, span: Span, limit: int) -> tuple[list[dict], int]:
    """The period's restricted sales (at most `limit`, in time order) and how many there are."""
    filters = TransactionFilter(span, limit=None)
    where, params = _transaction_where(filters)
    where += f" AND {RESTRICTED_SALE}"
    total = int(db.execute(f"SELECT count(*) FROM transactions WHERE {where}", params).fetchone()[0])
    sql = (
        "SELECT t.started_at, t.till_id, t.cashier_id, t.pos_transaction_id, t.restricted_items, t.check_required,"
        f" t.id_check, t.age, t.age_low, t.age_high, {p_under_sql(db, 't')} AS p_under,"
        f" {RUN_THRESHOLD_SQL.format(alias='t')},"
        " (SELECT a.type FROM alerts a WHERE a.transaction_id = t.id AND a.kind = 'flag' LIMIT 1) AS flag_type"
        f" FROM transactions t WHERE {where} ORDER BY t.started_at LIMIT ?"
    )
    return [dict(row) for row in db.execute(sql, [*params, limit])], total


def tills_in(db: sqlite3.Connection, span: Span) -> list[str]:
    """The tills with transactions in the span."""
    rows = db.execute(
        "SELECT DISTINCT till_id FROM transactions WHERE started_at >= ? AND started_at < ? ORDER BY till_id",
        (span.since, span.until),
    )
    return [row[0] for row in rows]


def extent(db: sqlite3.Connection) -> tuple[str | None, str | None]:
    """The log's first and latest record (None, None: nothing logged yet). A replay stamps records at video
    time (`--start`), so they can lie before its run started or after it ended: every table's own times
    count, and a table without rows (no POS, say) is skipped rather than voiding the whole answer."""
    # One indexed min() or max() per subquery; SQLite's multi-argument min()/max() would be NULL if any were.
    firsts = db.execute(
        "SELECT (SELECT min(started_at) FROM runs), (SELECT min(started_at) FROM transactions),"
        " (SELECT min(at) FROM alerts), (SELECT min(first_seen) FROM customers)"
    ).fetchone()
    lasts = db.execute(
        "SELECT (SELECT max(coalesce(ended_at, started_at)) FROM runs),"
        " (SELECT max(started_at) FROM transactions), (SELECT max(ended_at) FROM transactions),"
        " (SELECT max(at) FROM alerts), (SELECT max(first_seen) FROM customers)"
    ).fetchone()
    first = min((value for value in firsts if value is not None), default=None)
    return first, max((value for value in lasts if value is not None), default=None)


RUN_COLUMNS = (
    "r.id, r.started_at, r.ended_at, r.status, r.mode, r.source, r.frames, r.dropped_frames, r.fps,"
    " r.source_state, coalesce(r.ended_at, r.last_seen, r.started_at) AS last_seen,"
    " (SELECT t.till_id FROM transactions t WHERE t.run_id = r.id ORDER BY t.number LIMIT 1) AS till_id"
)


def runs(db: sqlite3.Connection, limit: int | None, offset: int = 0) -> list[dict]:
    """Runs, newest first, with the till of their first transaction (a run does not know its till)."""
    sql = f"SELECT {RUN_COLUMNS} FROM runs r ORDER BY r.id DESC"
    params: list[object] = []
    if limit is not None:
        sql += " LIMIT ? OFFSET ?"
        params = [limit, offset]
    return [dict(row) for row in db.execute(sql, params)]


def count_runs(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT count(*) FROM runs").fetchone()[0])
