"""What earlier runs left to the Challenge policy, read when a live run starts (edge.challenge.carry uses it).

Live runs (`runs.pos = 'live'`) leave two things: transactions still open (a stop, a crash or kill -9 mid-
sale), and POS events stored but never applied (acknowledged, then the process died before the next frame,
or no frame came because the camera was down). `runs.pos_applied` counts the events the policy applied,
committed with the rows they led to, so the rest are exactly the ones after it. Runs still running (another
process) are left alone. The store knows rows, not the policy: these are plain records.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field

from edge.store.eventlog import EventLog, iso, unix
from edge.vision.customer import AgeEstimate

EARLIER_LIVE_RUNS = "SELECT id FROM runs WHERE pos = 'live' AND id < ? AND status != 'running'"


@dataclass(frozen=True)
class OpenRow:
    """An open transaction of an earlier run, with all its row keeps. Times are Unix times."""

    run_id: int
    number: int
    till_id: str
    cashier_id: str | None
    pos_id: str | None
    started: float
    restricted: int
    first_restricted: float | None
    id_checks: list[str]
    check_required: bool
    alerted: bool
    association: dict | None
    estimate: AgeEstimate | None  # the associated track's latest estimate in its run, else the row's
    opened_by: str = "transaction_start"  # the POS event type that opened it (a row before v10: a start)
    unconfirmed: bool = False  # a voided sale's re-ring, not yet confirmed by a check or end


@dataclass(frozen=True)
class StoredEvent:
    run_id: int
    at: float  # Unix time the policy gave it
    body: str  # the event as JSON


@dataclass(frozen=True)
class EndedSale:
    """A sale of an earlier run that ended lately: a late or retried event of it is not the open sale's."""

    till_id: str
    pos_id: str
    ended: float  # Unix time
    voided: bool = False  # the POS may ring it up again under its id


@dataclass(frozen=True)
class Leftovers:
    open_rows: list[OpenRow]  # oldest first
    events: list[StoredEvent]  # never applied, in the order they were stored
    applied: dict[int, int]  # run id -> all its events: what pos_applied becomes once these are applied
    ended: list[EndedSale] = field(default_factory=list)  # oldest first; nothing to emit, so not in bool()

    def __bool__(self) -> bool:
        return bool(self.open_rows or self.events)


def leftovers(log: EventLog, run_id: int, ended_since: float) -> Leftovers:
    """What the live runs before `run_id` left open or unapplied, and the sales they ended since
    `ended_since` (Unix time) under a POS transaction id."""
    unapplied, applied = _unapplied_events(log.db, run_id)
    return Leftovers(_open_rows(log.db, run_id), unapplied, applied, _ended_sales(log.db, run_id, ended_since))


def _ended_sales(db: sqlite3.Connection, run_id: int, since: float) -> list[EndedSale]:
    # started_at bounds the scan through its index: a sale ends at most transaction_max_s after it started,
    # and a day covers any setting. The newest 10,000 are the ones a late event can still belong to.
    rows = db.execute(
        "SELECT till_id, pos_transaction_id, ended_at, status = 'voided' FROM transactions"
        " WHERE started_at >= ? AND status != 'open'"
        f" AND pos_transaction_id IS NOT NULL AND ended_at >= ? AND run_id IN ({EARLIER_LIVE_RUNS})"
        " ORDER BY ended_at DESC LIMIT 10000",
        (iso(since - 86400), iso(since), run_id),
    ).fetchall()
    return [EndedSale(till, pos_id, unix(ended), bool(voided)) for till, pos_id, ended, voided in reversed(rows)]


def close_cut_off_replays(log: EventLog, run_id: int) -> int:
    """A replay that died before its end left transactions open that nothing will ever resume: close them."""
    with log.transaction():
        cursor = log.db.execute(
            "UPDATE transactions SET status = 'unresolved', resolution = 'replay_ended' WHERE status = 'open'"
            " AND run_id IN (SELECT id FROM runs WHERE pos = 'script' AND id < ? AND status != 'running')",
            (run_id,),
        )
    return cursor.rowcount


def _open_rows(db: sqlite3.Connection, run_id: int) -> list[OpenRow]:
    rows = db.execute(
        "SELECT t.id, t.run_id, t.number, t.till_id, t.cashier_id, t.pos_transaction_id, t.started_at,"
        " t.restricted_items, t.first_restricted_at, t.id_checks, t.id_check, t.check_required, t.association,"
        " t.age, t.age_low, t.age_high, t.samples, t.p_under, t.opened_by, t.unconfirmed FROM transactions t"
        f" WHERE t.status = 'open' AND t.run_id IN ({EARLIER_LIVE_RUNS}) ORDER BY t.started_at, t.id",
        (run_id,),
    ).fetchall()
    return [_open_row(db, row) for row in rows]


def _open_row(db: sqlite3.Connection, row: tuple) -> OpenRow:
    txn_id, run_id, number, till_id, cashier_id, pos_id, started, restricted, first, checks, last_check = row[:11]
    check_required, association = bool(row[11]), json.loads(row[12]) if row[12] else None
    alerted = db.execute(
        "SELECT 1 FROM alerts WHERE transaction_id = ? AND kind = 'alert' LIMIT 1", (txn_id,)
    ).fetchone()
    return OpenRow(
        run_id=run_id,
        number=number,
        till_id=till_id,
        cashier_id=cashier_id,
        pos_id=pos_id,
        started=unix(started),
        restricted=restricted,
        first_restricted=unix(first) if first else None,
        id_checks=json.loads(checks) if checks else [last_check] if last_check else [],
        check_required=check_required,
        alerted=alerted is not None,
        association=association,
        estimate=_track_estimate(db, association, run_id) or _estimate(row[13:18]),
        opened_by=row[18],
        unconfirmed=bool(row[19]),
    )


def _track_estimate(db: sqlite3.Connection, association: dict | None, run_id: int) -> AgeEstimate | None:
    """The associated customer's latest estimate: the customers table is updated as samples come in."""
    if not association:
        return None
    row = db.execute(
        "SELECT age, age_low, age_high, samples, p_under FROM customers WHERE run_id = ? AND track_id = ?",
        (association.get("run_id", run_id), association["track_id"]),
    ).fetchone()
    return _estimate(row) if row else None


def _estimate(values: tuple) -> AgeEstimate | None:
    return None if values[0] is None else AgeEstimate(*values)


def _unapplied_events(db: sqlite3.Connection, run_id: int) -> tuple[list[StoredEvent], dict[int, int]]:
    counts = db.execute(
        "SELECT r.id, coalesce(r.pos_applied, 0), (SELECT count(*) FROM pos_events e WHERE e.run_id = r.id)"
        f" FROM runs r WHERE r.id IN ({EARLIER_LIVE_RUNS}) ORDER BY r.id",
        (run_id,),
    ).fetchall()
    events, applied = [], {}
    for earlier, done, total in counts:
        if total > done:  # applied in the order stored, so the unapplied ones are the last
            rows = db.execute(
                "SELECT at, body FROM pos_events WHERE run_id = ? ORDER BY id LIMIT -1 OFFSET ?", (earlier, done)
            ).fetchall()
            events += [StoredEvent(earlier, unix(at), body) for at, body in rows]
            applied[earlier] = total
    return events, applied
