"""The policy's outcomes as the event log's rows (edge.store.pos_records) and as alert messages (webhooks)."""

from __future__ import annotations

from edge.challenge.transaction import Outcome
from edge.store.eventlog import iso
from edge.store.pos_records import AlertRow, TransactionRow


def transaction_row(outcome: Outcome, run_id: int) -> TransactionRow:
    """`run_id`: this run's; a transaction carried over from an earlier run stays in that run's row."""
    txn = outcome.transaction
    association = txn.association
    return TransactionRow(
        run_id=txn.carried.run_id if txn.carried else run_id,
        number=txn.number,
        till_id=txn.till_id,
        started=txn.started,
        pos_id=txn.pos_id,
        cashier_id=txn.cashier_id,
        ended=txn.ended,
        status=txn.status,
        restricted=txn.restricted,
        id_check=txn.id_checks[-1] if txn.id_checks else None,
        check_required=txn.check_required,
        track_id=association.track_id if association else None,
        estimate=outcome.customer.estimate if outcome.customer else None,
        association=association.as_dict(run_id) if association else None,
        resolution=txn.resolution,
        first_restricted=txn.first_restricted,
        id_checks=tuple(txn.id_checks),
        opened_by=txn.opened_by,
        unconfirmed=txn.unconfirmed,
    )


def alert_row(outcome: Outcome, evidence: str | None, run_id: int) -> AlertRow:
    txn = outcome.transaction
    association = txn.association
    return AlertRow(
        kind=outcome.kind,
        type=outcome.type,
        severity=outcome.severity or "info",
        t=outcome.t,
        latency_s=outcome.latency_s,
        till_id=txn.till_id,
        cashier_id=txn.cashier_id,
        track_id=association.track_id if association and outcome.customer else None,
        estimate=outcome.customer.estimate if outcome.customer else None,
        association=association.as_dict(run_id) if association else None,
        evidence=evidence,
    )


def rows(
    outcomes: list[Outcome], evidence: dict[int, str], run_id: int
) -> list[tuple[TransactionRow, AlertRow | None]]:
    """Each outcome's transaction row and, for alerts and flags, its alert row (evidence: outcome index -> file)."""
    return [
        (
            transaction_row(outcome, run_id),
            None if outcome.kind == "transaction" else alert_row(outcome, evidence.get(index), run_id),
        )
        for index, outcome in enumerate(outcomes)
    ]


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
        "p_under": None if estimate is None or estimate.p_under is None else round(estimate.p_under, 3),
        "latency_s": None if outcome.latency_s is None else round(outcome.latency_s, 3),
        "status": txn.status,
        "reason": txn.resolution,
    }
