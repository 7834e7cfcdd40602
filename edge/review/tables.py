"""`agecam events` and `agecam stats`: read-only views of the event log, as a table, JSON or CSV."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from edge.config import Config
from edge.errors import ConfigError, StateError
from edge.store.check import check_schema
from edge.store.eventlog import DB_NAME, iso

EVENT_COLUMNS = [
    "kind", "at", "type", "severity", "till_id", "cashier_id", "transaction", "track_id",
    "age", "age_low", "age_high", "samples", "age_group", "run_id",
]  # fmt: skip
CUSTOMERS_SQL = (
    "SELECT 'customer' AS kind, first_seen AS at, 'customer' AS type, NULL AS severity, NULL AS till_id,"
    ' NULL AS cashier_id, NULL AS "transaction", track_id, age, age_low, age_high, samples, age_group, run_id'
    " FROM customers WHERE counted = 1"
)
ALERTS_SQL = (
    'SELECT a.kind, a.at, a.type, a.severity, a.till_id, a.cashier_id, t.pos_transaction_id AS "transaction",'
    " a.track_id, a.age, a.age_low, a.age_high, a.samples, NULL AS age_group, a.run_id"
    " FROM alerts a JOIN transactions t ON t.id = a.transaction_id"
)


def open_log(path: Path) -> sqlite3.Connection:
    """The event log, read-only; refuses a missing file or one older than the POS schema."""
    if not path.is_file():
        raise StateError(f"event log not found: {path}: give --db or set state.dir")
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        version = db.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as error:
        raise StateError(f"{path} is not an agecam event log ({error})") from None
    if version < 2:
        db.close()
        raise StateError(f"{path} has schema {version}: run any agecam replay or run on it once to upgrade it")
    try:  # a file with a user_version that is not agecam's must not end in a traceback
        check_schema(db, path)
    except (StateError, sqlite3.DatabaseError) as error:
        db.close()
        raise StateError(str(error) if isinstance(error, StateError) else f"{path}: {error}") from None
    db.row_factory = sqlite3.Row
    return db


def db_path(args: argparse.Namespace, config: Config) -> Path:
    return Path(args.db) if args.db else config.state_dir() / DB_NAME


def parse_time(text: str | None, option: str) -> str | None:
    """An ISO date or date-time (UTC unless it says otherwise), in the log's own format for comparison."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{option} {text!r}: give an ISO date or date-time, e.g. 2026-11-22T09:00") from None
    return iso((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


def query_events(db: sqlite3.Connection, args: argparse.Namespace) -> list[dict]:
    parts = []
    if args.kind in (None, "customer") and not (args.till or args.cashier or args.type):
        parts.append(CUSTOMERS_SQL)
    if args.kind != "customer":
        parts.append(ALERTS_SQL)
    if not parts:
        return []
    sql = f"SELECT * FROM ({' UNION ALL '.join(parts)}) WHERE 1 = 1"
    params: list[object] = []
    for clause, value in (
        ("at >= ?", parse_time(args.since, "--since")),
        ("at < ?", parse_time(args.until, "--until")),
        ("till_id = ?", args.till),
        ("cashier_id = ?", args.cashier),
        ("kind = ?", args.kind),
    ):
        if value is not None:
            sql += f" AND {clause}"
            params.append(value)
    if args.type:
        sql += f" AND type IN ({', '.join('?' * len(args.type))})"
        params += args.type
    sql += " ORDER BY at, kind LIMIT ?"
    params.append(args.limit)
    return [_rounded(dict(row)) for row in db.execute(sql, params)]


def _rounded(row: dict) -> dict:
    for key in ("age", "age_low", "age_high"):
        if row[key] is not None:
            row[key] = round(row[key], 1)
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


def render(rows: list[dict], columns: list[str], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(rows, indent=2)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue().rstrip("\n")
    return table(rows, columns)


def table(rows: list[dict], columns: list[str]) -> str:
    def cell(value: object) -> str:
        return "" if value is None else f"{value:.1f}" if isinstance(value, float) else str(value)

    cells = [[cell(row.get(column)) for column in columns] for row in rows]
    widths = [max([len(column)] + [len(line[i]) for line in cells]) for i, column in enumerate(columns)]
    lines = ["  ".join(column.ljust(width) for column, width in zip(columns, widths, strict=True))]
    lines += ["  ".join(value.ljust(width) for value, width in zip(line, widths, strict=True)) for line in cells]
    return "\n".join(line.rstrip() for line in lines) + ("" if rows else "\n(no rows)")


def pivot(rows: list[dict]) -> tuple[list[dict], list[str]]:
    """Stats rows as one line per period with a column per age group, plus the total."""
    groups = sorted({row["age_group"] for row in rows}, key=group_order)
    periods: dict[str, dict] = {}
    for row in rows:
        line = periods.setdefault(row["period"], {"period": row["period"], "total": 0})
        line[row["age_group"]] = row["customers"]
        line["total"] += row["customers"]
    return list(periods.values()), ["period", *groups, "total"]


def group_order(label: str) -> int:
    return -1 if label.startswith("<") else int(label.rstrip("+").split("-")[0])


def _events_command(args: argparse.Namespace) -> int:
    from edge.cli.run import load

    config = load(args)
    if args.limit < 1:
        raise ConfigError("--limit must be at least 1")
    db = open_log(db_path(args, config))
    try:
        print(render(query_events(db, args), EVENT_COLUMNS, args.format))
    finally:
        db.close()
    return 0


def _stats_command(args: argparse.Namespace) -> int:
    from edge.cli.run import load

    config = load(args)
    db = open_log(db_path(args, config))
    try:
        rows = query_stats(db, args.by, parse_time(args.since, "--since"), parse_time(args.until, "--until"))
    finally:
        db.close()
    if args.format == "table":
        lines, columns = pivot(rows)
        print(table(lines, columns))
    else:
        print(render(rows, ["period", "age_group", "customers", "mean_age"], args.format))
    return 0


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help="event log (default: STATE_DIR/agecam.db)")
    parser.add_argument("--since", help="from this UTC time, ISO 8601 (inclusive)")
    parser.add_argument("--until", help="up to this UTC time, ISO 8601 (exclusive)")


def register(subparsers: argparse._SubParsersAction) -> None:
    events = subparsers.add_parser("events", help="list customers, alerts and flags from the event log")
    add_common(events)
    events.add_argument("--till", help="only this till")
    events.add_argument("--cashier", help="only this cashier")
    events.add_argument("--kind", choices=["customer", "alert", "flag"], help="only this kind")
    events.add_argument("--type", action="append", help="only this type (repeatable), e.g. sold_without_id_check")
    events.add_argument("--format", choices=["table", "json", "csv"], default="table")
    events.add_argument("--limit", type=int, default=1000, help="at most this many rows (default 1000)")
    events.set_defaults(handler=_events_command)

    stats = subparsers.add_parser("stats", help="age-group counts by hour or by day")
    add_common(stats)
    stats.add_argument("--by", choices=["hour", "day"], default="hour")
    stats.add_argument("--format", choices=["table", "json", "csv"], default="table")
    stats.set_defaults(handler=_stats_command)
