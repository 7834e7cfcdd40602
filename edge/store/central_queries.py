"""`agecam events` and `agecam stats` on the chain's PostgreSQL database: the same rows and columns as on
a till's event log (edge.store.queries), across every till, times in the log's own ISO format."""

from __future__ import annotations

import psycopg
from psycopg.rows import dict_row

from edge.errors import StateError
from edge.store.central import redact
from edge.store.queries import EventFilter

ISO = "to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
CUSTOMERS_SQL = (
    f"SELECT 'customer' AS kind, {ISO.format('first_seen')} AS at, 'customer' AS type, NULL AS severity,"
    ' store_id, till_id, NULL AS cashier_id, NULL AS "transaction", track_id, age, age_low, age_high, p_under,'
    " samples, age_group, run_id FROM agecam.customers WHERE counted"
)
ALERTS_SQL = (
    f"SELECT a.kind, {ISO.format('a.at')} AS at, a.type, a.severity, a.store_id, a.till_id, a.cashier_id,"
    ' t.pos_transaction_id AS "transaction", a.track_id, a.age, a.age_low, a.age_high, a.p_under, a.samples,'
    " NULL AS age_group, a.run_id FROM agecam.alerts a LEFT JOIN agecam.transactions t"
    " ON t.store_id = a.store_id AND t.till_id = a.till_id AND t.log_key = a.log_key AND t.run_id = a.run_id"
    " AND t.number = a.transaction_number"
)


def open_central(url: str) -> psycopg.Connection:
    """The chain database, for reading; refuses one without agecam's schema."""
    try:
        db = psycopg.connect(url, autocommit=True, connect_timeout=10, row_factory=dict_row)
    except psycopg.Error as error:
        raise StateError(f"cannot open the chain database {redact(url)}: {str(error).strip()}") from None
    if db.execute("SELECT to_regclass('agecam.schema_version') AS t").fetchone()["t"] is None:
        db.close()
        raise StateError(f"{redact(url)} holds no agecam chain schema: start `agecam collect` on it first")
    return db


def query_events(db: psycopg.Connection, filters: EventFilter, store: str | None = None) -> list[dict]:
    parts = []
    if filters.kind in (None, "customer") and not (filters.cashier or filters.types):
        parts.append(CUSTOMERS_SQL)
    if filters.kind != "customer":
        parts.append(ALERTS_SQL)
    if not parts:
        return []
    sql = f"SELECT * FROM ({' UNION ALL '.join(parts)}) e WHERE true"
    params: list[object] = []
    for clause, value in (
        ("at >= %s", filters.since),
        ("at < %s", filters.until),
        ("store_id = %s", store),
        ("till_id = %s", filters.till),
        ("cashier_id = %s", filters.cashier),
        ("kind = %s", filters.kind),
    ):
        if value is not None:
            sql += f" AND {clause}"
            params.append(value)
    if filters.types:
        sql += " AND type = ANY(%s)"
        params.append(list(filters.types))
    sql += " ORDER BY at, kind LIMIT %s"
    params.append(filters.limit)
    return [_rounded(row) for row in db.execute(sql, params)]


def _rounded(row: dict) -> dict:
    for key in ("age", "age_low", "age_high"):
        if row[key] is not None:
            row[key] = round(float(row[key]), 1)
    if row["p_under"] is not None:  # as on a till (edge.store.queries); real is float4: 0.31 reads 0.3100000023
        row["p_under"] = round(float(row["p_under"]), 3)
    return row


def query_stats(
    db: psycopg.Connection, by: str, since: str | None, until: str | None, store: str | None = None
) -> list[dict]:
    """Counted customers per hour or day and age group, across the chain (or one store)."""
    shape = 'YYYY-MM-DD"T"HH24:00"Z"' if by == "hour" else "YYYY-MM-DD"
    sql = (
        f"SELECT to_char(hour AT TIME ZONE 'UTC', '{shape}') AS period, age_group,"
        " sum(customers)::integer AS customers,"
        " round((sum(age_sum) / sum(customers))::numeric, 1)::float AS mean_age FROM agecam.hourly_stats"
        " WHERE customers > 0"
    )
    params: list[object] = []
    for clause, value in (
        ("hour >= date_trunc('hour', %s::timestamptz)", since),
        ("hour < %s", until),
        ("store_id = %s", store),
    ):
        if value is not None:
            sql += f" AND {clause}"
            params.append(value)
    return list(db.execute(sql + " GROUP BY period, age_group ORDER BY period, age_group", params))
