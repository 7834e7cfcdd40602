"""Writes POS events, rejects, transactions, alerts and flags into the event log (schema version 2).

Each call is one transaction. The HTTP thread uses its own EventLog connection, so its commits never
interleave with the main loop's. The store knows rows, not the policy: edge.challenge.records turns the
policy's outcomes into the rows below.

On the HTTP thread's durable connection a write the storage refuses raises (the POS gets 503 and
retries). On the main loop's connection it is held in memory and retried (EventLog.write), and the
row ids it would have returned are None: a flag is still sent to the receivers, with "id": null.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Protocol

from edge.store import outbox as fleet_outbox
from edge.store.eventlog import EventLog, iso
from edge.vision.customer import AgeEstimate


class PosEventFields(Protocol):
    """What the store keeps of an accepted POS event (edge.challenge.events.PosEvent has these)."""

    type: str
    till_id: str
    cashier_id: str | None
    transaction_id: str | None

    def model_dump_json(self, *, exclude_none: bool) -> str: ...


@dataclass(frozen=True)
class TransactionRow:
    """One POS transaction's state, keyed by (run, number). Times are source seconds (origin-relative).
    `run_id` is the run it started in: an earlier one's, for a transaction carried over a restart."""

    run_id: int
    number: int
    till_id: str
    started: float
    pos_id: str | None
    cashier_id: str | None
    ended: float | None
    status: str
    restricted: int
    id_check: str | None
    check_required: bool
    track_id: int | None
    estimate: AgeEstimate | None
    association: dict | None
    resolution: str | None = None
    first_restricted: float | None = None
    id_checks: tuple[str, ...] = ()
    opened_by: str = "transaction_start"  # the POS event type that opened it (v10)
    unconfirmed: bool = False  # a voided sale's re-ring that no check or end confirmed yet (v10)


@dataclass(frozen=True)
class AlertRow:
    """An alert or a flag of a transaction."""

    kind: str
    type: str
    severity: str
    t: float
    latency_s: float | None
    till_id: str
    cashier_id: str | None
    track_id: int | None
    estimate: AgeEstimate | None
    association: dict | None
    evidence: str | None = None


class PosStore:
    def __init__(self, log: EventLog, run_id: int, origin: float) -> None:
        self.log, self.run_id, self.origin = log, run_id, origin
        self.db = log.db

    def record_event(self, event: PosEventFields, t: float, received: float | None = None) -> int | None:
        """Store one accepted event; returns its row id. On a durable connection (the HTTP reply waits for
        it) a refused write raises StorageError; on the main loop's it is held and None is returned."""
        received = time.time() if received is None else received

        def insert() -> int:
            cursor = self.db.execute(
                "INSERT INTO pos_events (run_id, received_at, at, t, type, till_id, cashier_id, transaction_id, body)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    self.run_id,
                    iso(received),
                    iso(self.origin + t),
                    t,
                    event.type,
                    event.till_id,
                    event.cashier_id,
                    event.transaction_id,
                    event.model_dump_json(exclude_none=True),
                ),
            )
            return int(cursor.lastrowid)

        if self.log.durable:
            return self.log.commit(insert)
        written = self.log.write([(None, insert)])
        return written[0] if written else None

    def record_reject(self, status: int, reason: str) -> int:
        """The first refusal of its status in a window; returns its row id, for count_rejects."""
        with self.log.transaction():
            cursor = self.db.execute(
                "INSERT INTO pos_rejects (run_id, received_at, http_status, reason) VALUES (?, ?, ?, ?)",
                (self.run_id, iso(time.time()), status, reason[:500]),
            )
        return int(cursor.lastrowid)

    def count_rejects(self, row_id: int, count: int) -> None:
        """Set how many refusals a pos_rejects row stands for (edge.challenge.rejects aggregates them)."""
        with self.log.transaction():
            self.db.execute("UPDATE pos_rejects SET count = ? WHERE id = ?", (count, row_id))

    def save(
        self, rows: list[tuple[TransactionRow, AlertRow | None]], applied: dict[int, int] | None = None
    ) -> list[int | None]:
        """Store each transaction's state and its alert or flag, if any, in order, in one transaction;
        returns the row ids of the alerts and flags (None each while the write is held in memory).
        `applied`: run id -> how many of that run's POS events the policy has now applied, committed with
        the rows they led to, so a restart replays the rest."""

        def insert() -> list[int]:
            ids = []
            for txn, alert in rows:
                txn_id = self._upsert_transaction(txn)
                if alert is not None:
                    ids.append(self._insert_alert(alert, txn_id))
                if self.log.outbox:  # the chain's copy, in this same transaction
                    fleet_outbox.enqueue_transaction(self.db, txn.run_id, txn.number)
                    if alert is not None:
                        fleet_outbox.enqueue_alert(self.db, ids[-1])
            for run_id, count in (applied or {}).items():
                self.db.execute("UPDATE runs SET pos_applied = ? WHERE id = ?", (count, run_id))
            return ids

        alerts = sum(alert is not None for _, alert in rows)
        written = self.log.write([(None, insert)], precious=alerts > 0)
        return written[0] if written else [None] * alerts

    def set_evidence(self, txn_run_id: int, number: int, t: float, path: str) -> None:
        """Name a crop saved after its flag (the disk refused it then) in that flag: the one of transaction
        (`txn_run_id`, `number`) at `t`. Held and retried like any write, after the flag's own row."""

        def update() -> None:
            self.db.execute(
                "UPDATE alerts SET evidence = ? WHERE kind = 'flag' AND t = ? AND evidence IS NULL AND transaction_id"
                " = (SELECT id FROM transactions WHERE run_id = ? AND number = ?)",
                (path, t, txn_run_id, number),
            )

        self.log.write([(None, update)], precious=True)

    def mark_run(self, pos: str) -> None:
        """Say where this run's POS events come from: 'live' (the endpoint; resumed after a restart) or 'script'."""
        with self.log.transaction():
            self.db.execute("UPDATE runs SET pos = ?, pos_applied = 0 WHERE id = ?", (pos, self.run_id))

    def _upsert_transaction(self, txn: TransactionRow) -> int:
        values = (
            txn.pos_id,
            txn.cashier_id,
            iso(self.origin + txn.ended) if txn.ended is not None else None,
            txn.status,
            txn.restricted,
            txn.id_check,
            int(txn.check_required),
            txn.track_id,
            *_estimate_values(txn.estimate),
            json.dumps(txn.association) if txn.association else None,
            txn.resolution,
            iso(self.origin + txn.first_restricted) if txn.first_restricted is not None else None,
            json.dumps(list(txn.id_checks)) if txn.id_checks else None,
            txn.opened_by,
            int(txn.unconfirmed),
        )
        self.db.execute(
            "INSERT INTO transactions (run_id, number, till_id, started_at, pos_transaction_id, cashier_id, ended_at,"
            " status, restricted_items, id_check, check_required, track_id, age, age_low, age_high, samples,"
            " p_under, association, resolution, first_restricted_at, id_checks, opened_by, unconfirmed)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (run_id, number) DO UPDATE SET pos_transaction_id = excluded.pos_transaction_id,"
            " cashier_id = excluded.cashier_id, ended_at = excluded.ended_at, status = excluded.status,"
            " restricted_items = excluded.restricted_items, id_check = excluded.id_check,"
            " check_required = excluded.check_required, track_id = excluded.track_id,"
            " age = COALESCE(excluded.age, age), age_low = COALESCE(excluded.age_low, age_low),"
            " age_high = COALESCE(excluded.age_high, age_high), samples = COALESCE(excluded.samples, samples),"
            " p_under = COALESCE(excluded.p_under, p_under),"
            " association = excluded.association, resolution = excluded.resolution,"
            " first_restricted_at = COALESCE(first_restricted_at, excluded.first_restricted_at),"
            " id_checks = excluded.id_checks, opened_by = excluded.opened_by, unconfirmed = excluded.unconfirmed",
            (txn.run_id, txn.number, txn.till_id, iso(self.origin + txn.started), *values),
        )
        row = self.db.execute(
            "SELECT id FROM transactions WHERE run_id = ? AND number = ?", (txn.run_id, txn.number)
        ).fetchone()
        return int(row[0])

    def _insert_alert(self, alert: AlertRow, txn_id: int) -> int:
        cursor = self.db.execute(
            "INSERT INTO alerts (run_id, transaction_id, kind, type, severity, at, t, latency_s, till_id, cashier_id,"
            " track_id, age, age_low, age_high, samples, p_under, association, evidence)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                self.run_id,
                txn_id,
                alert.kind,
                alert.type,
                alert.severity,
                iso(self.origin + alert.t),
                alert.t,
                alert.latency_s,
                alert.till_id,
                alert.cashier_id,
                alert.track_id,
                *_estimate_values(alert.estimate),
                json.dumps(alert.association) if alert.association else None,
                alert.evidence,
            ),
        )
        return int(cursor.lastrowid)


def _estimate_values(estimate: AgeEstimate | None) -> tuple:
    if estimate is None:
        return (None, None, None, None, None)
    return (estimate.age, estimate.low, estimate.high, estimate.samples, estimate.p_under)
