"""Writes POS events, rejects, transactions, alerts and flags into the event log (schema version 2).

Each call is one transaction. The HTTP thread uses its own EventLog connection, so its commits never
interleave with the main loop's.
"""

from __future__ import annotations

import json
import time

from edge.challenge.events import PosEvent
from edge.challenge.policy import Outcome, Sighting, Transaction
from edge.store.eventlog import EventLog, iso


class PosStore:
    def __init__(self, log: EventLog, run_id: int, origin: float) -> None:
        self.log, self.run_id, self.origin = log, run_id, origin
        self.db = log.db

    def record_event(self, event: PosEvent, t: float, received: float | None = None) -> int:
        """Commit one accepted event; returns its row id (the HTTP reply waits for this commit)."""
        received = time.time() if received is None else received
        with self.log.transaction():
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

    def save(self, outcomes: list[Outcome], evidence: dict[int, str] | None = None) -> list[int]:
        """Store outcomes in order; returns the row ids of the alerts and flags (evidence: outcome index -> file)."""
        ids = []
        with self.log.transaction():
            for index, outcome in enumerate(outcomes):
                txn_id = self._upsert_transaction(outcome.transaction, outcome.customer)
                if outcome.kind != "transaction":
                    ids.append(self._insert_alert(outcome, txn_id, (evidence or {}).get(index)))
        return ids

    def _upsert_transaction(self, txn: Transaction, customer: Sighting | None) -> int:
        estimate = customer.estimate if customer else None
        association = json.dumps(txn.association.as_dict()) if txn.association else None
        values = (
            txn.pos_id,
            txn.cashier_id,
            iso(self.origin + txn.ended) if txn.ended is not None else None,
            txn.status,
            txn.restricted,
            txn.id_checks[-1] if txn.id_checks else None,
            int(txn.check_required),
            txn.association.track_id if txn.association else None,
            *_estimate_values(estimate),
            association,
        )
        self.db.execute(
            "INSERT INTO transactions (run_id, number, till_id, started_at, pos_transaction_id, cashier_id, ended_at,"
            " status, restricted_items, id_check, check_required, track_id, age, age_low, age_high, samples,"
            " association) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (run_id, number) DO UPDATE SET pos_transaction_id = excluded.pos_transaction_id,"
            " cashier_id = excluded.cashier_id, ended_at = excluded.ended_at, status = excluded.status,"
            " restricted_items = excluded.restricted_items, id_check = excluded.id_check,"
            " check_required = excluded.check_required, track_id = excluded.track_id,"
            " age = COALESCE(excluded.age, age), age_low = COALESCE(excluded.age_low, age_low),"
            " age_high = COALESCE(excluded.age_high, age_high), samples = COALESCE(excluded.samples, samples),"
            " association = excluded.association",
            (self.run_id, txn.number, txn.till_id, iso(self.origin + txn.started), *values),
        )
        row = self.db.execute(
            "SELECT id FROM transactions WHERE run_id = ? AND number = ?", (self.run_id, txn.number)
        ).fetchone()
        return int(row[0])

    def _insert_alert(self, outcome: Outcome, txn_id: int, evidence: str | None) -> int:
        txn = outcome.transaction
        estimate = outcome.customer.estimate if outcome.customer else None
        cursor = self.db.execute(
            "INSERT INTO alerts (run_id, transaction_id, kind, type, severity, at, t, latency_s, till_id, cashier_id,"
            " track_id, age, age_low, age_high, samples, association, evidence)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                self.run_id,
                txn_id,
                outcome.kind,
                outcome.type,
                outcome.severity or "info",
                iso(self.origin + outcome.t),
                outcome.t,
                outcome.latency_s,
                txn.till_id,
                txn.cashier_id,
                txn.association.track_id if txn.association and outcome.customer else None,
                *_estimate_values(estimate),
                json.dumps(txn.association.as_dict()) if txn.association else None,
                evidence,
            ),
        )
        return int(cursor.lastrowid)


def _estimate_values(estimate: object) -> tuple:
    if estimate is None:
        return (None, None, None, None)
    return (estimate.age, estimate.low, estimate.high, estimate.samples)


def alert_message(outcome: Outcome, row_id: int, origin: float) -> dict:
    """The JSON sent to the webhook or command for one alert or flag."""
    txn = outcome.transaction
    estimate = outcome.customer.estimate if outcome.customer else None
    return {
        "id": row_id,
        "kind": outcome.kind,
        "type": outcome.type,
        "severity": outcome.severity,
        "at": iso(origin + outcome.t),
        "till_id": txn.till_id,
        "cashier_id": txn.cashier_id,
        "transaction_id": txn.pos_id,
        "age": None if estimate is None else round(estimate.age, 1),
        "age_low": None if estimate is None else round(estimate.low, 1),
        "age_high": None if estimate is None else round(estimate.high, 1),
        "samples": None if estimate is None else estimate.samples,
        "latency_s": None if outcome.latency_s is None else round(outcome.latency_s, 3),
    }
