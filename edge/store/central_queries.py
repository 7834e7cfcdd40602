"""`agecam events` and `agecam stats` on the chain's PostgreSQL database: the same rows and columns as on
a till's event log (edge.store.queries), across every till, times in the log's own ISO format."""

from __future__ import annotations

import psycopg
from psycopg.rows import dict_row

from edge.errors import StateError
from edge.store.central_schema import SCHEMA_VERSION
from edge.store.central_url import check_url, one_line, redact
from edge.store.queries import EventFilter

ISO = "to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
# Each branch filters, sorts and limits on its own timestamptz (`ts`), so the time indexes serve it; the
# text `at` is made for the rows kept only. Filtering or sorting on that text read every row of both tables.
# {p_under}: NULL in a chain database of schema 1, which has no such column.
CUSTOMERS_SQL = (
    "SELECT 'customer' AS kind, first_seen AS ts, 'customer' AS type,"
    ' NULL AS severity, store_id, till_id, NULL AS cashier_id, NULL AS "transaction", track_id, age, age_low,'
    " age_high, {p_under} AS p_under, samples, age_group, run_id, NULL AS outcome FROM agecam.customers"
    " WHERE counted"
)
# A flag's outcome is the chain's own review (agecam.flag_reviews, as in the chain_flags view), else 'pending':
# outcomes set in a till's review app stay in its event log.
ALERTS_SQL = (
    "SELECT a.kind, a.at AS ts, a.type, a.severity, a.store_id, a.till_id,"
    ' a.cashier_id, t.pos_transaction_id AS "transaction", a.track_id, a.age, a.age_low, a.age_high,'
    " {p_under} AS p_under, a.samples, NULL AS age_group, a.run_id,"
    " CASE WHEN a.kind = 'flag' THEN coalesce(r.outcome, 'pending') END AS outcome FROM agecam.alerts a"
    " LEFT JOIN agecam.transactions t ON t.store_id = a.store_id AND t.till_id = a.till_id"
    " AND t.log_key = a.log_key AND t.run_id = a.run_id AND t.number = a.transaction_number"
    " LEFT JOIN agecam.flag_reviews r ON r.store_id = a.store_id AND r.till_id = a.till_id"
    " AND r.log_key = a.log_key AND r.alert_id = a.alert_id WHERE true"
)
COLUMNS = (
    f'kind, {ISO.format("ts")} AS at, type, severity, store_id, till_id, cashier_id, "transaction", track_id, age,'
    " age_low, age_high, p_under, samples, age_group, run_id, outcome"
)
GRANTS = "grant this role USAGE on schema agecam and SELECT on its tables"


def open_central(url: str) -> psycopg.Connection:
    """The chain database, for reading; refuses one without agecam's schema, or with a newer one."""
    check_url(url)
    try:
        db = psycopg.connect(url, autocommit=True, connect_timeout=10, row_factory=dict_row)
    except psycopg.Error as error:
        raise StateError(f"cannot open the chain database {redact(url)}: {one_line(error)}") from None
    try:
        version = schema_version(db)
    except psycopg.Error as error:  # a role without USAGE on the schema
        db.close()
        raise StateError(f"cannot read the chain database {redact(url)}: {one_line(error)}: {GRANTS}") from None
    if version is None:
        db.close()
        raise StateError(f"{redact(url)} holds no agecam chain schema: start `agecam collect` on it first")
    if version > SCHEMA_VERSION:  # a later schema may have changed what these queries read
        db.close()
        raise StateError(f"{redact(url)} has chain schema {version}, newer than {SCHEMA_VERSION}: upgrade agecam")
    return db


def schema_version(db: psycopg.Connection) -> int | None:
    if db.execute("SELECT to_regclass('agecam.schema_version') AS t").fetchone()["t"] is None:
        return None
    row = db.execute("SELECT max(version) AS v FROM agecam.schema_version").fetchone()
    return row["v"] or 0


def _read(db: psycopg.Connection, sql: str, params: list[object]) -> list[dict]:
    try:
        return list(db.execute(sql, params))
    except psycopg.errors.InsufficientPrivilege as error:  # a role that may connect but not read the tables
        raise StateError(f"cannot read the chain database: {one_line(error)}: {GRANTS}") from None


def query_events(db: psycopg.Connection, filters: EventFilter, store: str | None = None) -> list[dict]:
    p_under = "p_under" if (schema_version(db) or 0) >= 2 else "NULL::real"
    parts: list[str] = []
    params: list[object] = []
    if filters.kind in (None, "customer") and not (filters.cashier or filters.types):
        parts.append(CUSTOMERS_SQL.format(p_under=p_under) + _where("first_seen", "", filters, store, params))
        params.append(filters.limit)
    if filters.kind != "customer":
        sql = ALERTS_SQL.format(p_under=f"a.{p_under}" if p_under == "p_under" else p_under)
        parts.append(sql + _where("a.at", "a.", filters, store, params))
        params.append(filters.limit)
    if not parts:
        return []
    # The first `limit` of the whole are among the first `limit` of each branch.
    union = " UNION ALL ".join(f"({part} ORDER BY ts, kind LIMIT %s)" for part in parts)
    sql = f"SELECT {COLUMNS} FROM ({union}) e ORDER BY ts, kind LIMIT %s"
    return [_rounded(row) for row in _read(db, sql, [*params, filters.limit])]


def _where(time: str, alias: str, filters: EventFilter, store: str | None, params: list[object]) -> str:
    """One branch's conditions, on its own columns (a customer branch is only built without cashier, types
    or another kind)."""
    sql = ""
    for clause, value in (
        (f"{time} >= %s::timestamptz", filters.since),
        (f"{time} < %s::timestamptz", filters.until),
        (f"{alias}store_id = %s", store),
        (f"{alias}till_id = %s", filters.till),
        (f"{alias}cashier_id = %s", filters.cashier if alias else None),
        (f"{alias}kind = %s", filters.kind if alias else None),
    ):
        if value is not None:
            sql += f" AND {clause}"
            params.append(value)
    if filters.types and alias:
        sql += f" AND {alias}type = ANY(%s)"
        params.append(list(filters.types))
    return sql


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
        ("hour < %s::timestamptz", until),
        ("store_id = %s", store),
    ):
        if value is not None:
            sql += f" AND {clause}"
            params.append(value)
    return _read(db, sql + " GROUP BY period, age_group ORDER BY period, age_group", params)
