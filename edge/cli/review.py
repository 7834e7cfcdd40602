"""`agecam events`, `agecam stats` and `agecam report`: read-only views of the event log."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from edge.cli.common import add_period, db_path, load, period
from edge.cli.fleet import require_psycopg
from edge.errors import ConfigError, StateError
from edge.review.inputs import exact_period
from edge.review.report import build_report
from edge.review.tables import EVENT_COLUMNS, pivot, render, table
from edge.review.templating import environment
from edge.store.eventlog import iso
from edge.store.queries import EventFilter, open_log, query_events, query_stats
from edge.store.review_queries import extent

CHAIN_EVENT_COLUMNS = [*EVENT_COLUMNS[:4], "store_id", *EVENT_COLUMNS[4:]]
# Far more rows than any log holds, and (with the one row more asked for) within SQLite's and PostgreSQL's
# 64-bit integers: a larger --limit was an OverflowError, exit 1 with a traceback.
MAX_LIMIT = 1_000_000_000


def _chain(args: argparse.Namespace) -> bool:
    """--db postgresql://... reads the chain's database (edge.store.central_queries); --store needs it."""
    chain = bool(args.db) and args.db.startswith(("postgresql://", "postgres://"))
    if args.db and not chain and "password=" in args.db.lower() and not Path(args.db).exists():
        # A key=value connection string: not read, and never echoed as an event log's path (its password).
        raise ConfigError("--db: a key=value connection string is not read: give postgresql://USER@HOST/DB")
    if args.store and not chain:
        raise ConfigError("--store reads the chain's database: give --db postgresql://...")
    if chain:
        require_psycopg("--db postgresql://...")
    return chain


def _period(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """--since and --until, refused when they leave no time between them (they would list nothing)."""
    since, until = period(args)
    if since and until and since >= until:
        raise ConfigError(f"--since {args.since} is not before --until {args.until}: swap them")
    return since, until


def _events(args: argparse.Namespace) -> int:
    config = load(args)
    if not 1 <= args.limit <= MAX_LIMIT:
        raise ConfigError(f"--limit {args.limit}: give a number of rows from 1 to {MAX_LIMIT:,}")
    since, until = _period(args)
    # One row more than asked shows whether the limit cut the list.
    filters = EventFilter(since, until, args.till, args.cashier, args.kind, tuple(args.type or ()), args.limit + 1)
    if _chain(args):
        from edge.store import central_queries

        with central_queries.open_central(args.db) as chain:
            rows, columns = central_queries.query_events(chain, filters, args.store), CHAIN_EVENT_COLUMNS
    else:
        db = open_log(db_path(args, config))
        try:
            rows, columns = query_events(db, filters), EVENT_COLUMNS
        finally:
            db.close()
    if len(rows) > args.limit:
        rows = rows[: args.limit]
        print(
            f"agecam: showing the first {args.limit} rows, oldest first; more match: "
            "raise --limit or narrow with --since, --until, --kind",
            file=sys.stderr,
        )
    print(render(rows, columns, args.format))
    return 0


def _stats(args: argparse.Namespace) -> int:
    config = load(args)
    since, until = _period(args)
    if _chain(args):
        from edge.store import central_queries

        with central_queries.open_central(args.db) as chain:
            rows = central_queries.query_stats(chain, args.by, since, until, args.store)
    else:
        db = open_log(db_path(args, config))
        try:
            rows = query_stats(db, args.by, since, until)
        finally:
            db.close()
    if args.format == "table":
        lines, columns = pivot(rows)
        print(table(lines, columns))
    else:
        print(render(rows, ["period", "age_group", "customers", "mean_age"], args.format))
    return 0


def _report(args: argparse.Namespace) -> int:
    config = load(args)
    if args.db and args.db.startswith(("postgresql://", "postgres://")):  # not a path: never echo it (a password)
        raise ConfigError(
            "report --db postgresql://...: the report reads one till's event log, not the chain's database:"
            " give a till's agecam.db, or read the chain with `agecam events` or `agecam stats` --db postgresql://..."
        )
    since, until = _period(args)
    zone = ZoneInfo(config.review.timezone)
    db = open_log(db_path(args, config))
    try:
        # Without --since/--until: from the first run up to now, or the latest record if later.
        now, (first, last) = iso(time.time()), extent(db)
        since, until = since or first or now, until or max(now, _after(last or now))
        if since >= until:  # one option given, on the far side of the log's records and now
            raise ConfigError(_empty_report(args, first, since, until))
        span = exact_period(since, until, zone)
        page = build_report(db, environment(zone), span, config.review.compliance_threshold, config.policy.threshold)
    finally:
        db.close()
    out = Path(args.out)
    _write_atomically(out, page.encode("utf-8"))
    print(f"wrote {out} ({len(page) // 1024} KiB)")
    return 0


def _empty_report(args: argparse.Namespace, first: str | None, since: str, until: str) -> str:
    if args.since:
        return f"--since {args.since} is not before now or the log's latest record ({until}): give an earlier --since"
    if first is None:  # the --since it fell back to is now
        return f"--until {args.until} is not after now ({since}) and the log has no records yet: give a --since too"
    return f"--until {args.until} is not after the log's first record ({since}): give a later --until or a --since"


def _write_atomically(out: Path, data: bytes) -> None:
    """Write beside `out`, then rename over it: a full disk midway leaves the previous file whole, never a
    truncated one where it was. A symlink is followed (its target is replaced, keeping its mode), and what is
    not a regular file (/dev/stdout, a pipe) is written directly, as it cannot be half-replaced."""
    target = out.resolve()
    try:
        if target.exists() and not target.is_file():
            target.write_bytes(data)
            return
        mode = target.stat().st_mode & 0o7777 if target.exists() else 0o666 & ~_umask()
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    except OSError as error:
        raise StateError(f"cannot write {out} ({error.strerror}): check the folder") from None
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)  # mkstemp makes 0600; a report stays as readable as it was
        os.replace(temporary, target)
    except OSError as error:
        raise StateError(f"cannot write {out} ({error.strerror}): check the folder and the free space") from None
    finally:
        Path(temporary).unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _after(text: str) -> str:
    """One millisecond later: an exclusive end that keeps the record at `text`."""
    return iso(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() + 0.001)


def register(subparsers: argparse._SubParsersAction) -> None:
    events = subparsers.add_parser("events", help="list customers, alerts and flags from the event log")
    add_period(events)
    events.add_argument("--till", help="only this till")
    events.add_argument("--store", help="only this store (with --db postgresql://...)")
    events.add_argument("--cashier", help="only this cashier")
    events.add_argument("--kind", choices=["customer", "alert", "flag"], help="only this kind")
    events.add_argument("--type", action="append", help="only this type (repeatable), e.g. sold_without_id_check")
    events.add_argument("--format", choices=["table", "json", "csv"], default="table")
    events.add_argument(
        "--limit",
        type=int,
        default=1000,
        help="at most this many rows, oldest first (default 1000; stderr says when more matched)",
    )
    events.set_defaults(handler=_events)

    stats = subparsers.add_parser("stats", help="age-group counts by hour or by day")
    add_period(stats)
    stats.add_argument("--by", choices=["hour", "day"], default="hour")
    stats.add_argument("--store", help="only this store (with --db postgresql://...)")
    stats.add_argument("--format", choices=["table", "json", "csv"], default="table")
    stats.set_defaults(handler=_stats)

    report = subparsers.add_parser("report", help="write a self-contained HTML report with plots")
    add_period(report)
    report.add_argument("--out", required=True, help="the HTML file to write")
    report.set_defaults(handler=_report)
