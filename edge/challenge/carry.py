"""Policy state across restarts. When a live run starts, it takes over what earlier live runs left
(edge.store.pos_history): each transaction they left open is restored from its row, which the policy keeps
current at every event, and goes on in this run (its row stays where it is); then the POS events they
stored but never applied are applied, in order. A `transaction_end` that arrives after a restart therefore
completes the transaction that a kill -9, a SIGTERM or a reload cut in two, and raises its flag.

Earlier runs' times become this run's source seconds (negative: before it started). Their track ids mean
nothing to this run's tracker, so a restored customer keeps the estimate that run last had for them; with
none, the policy looks for the customer in this run's zone, as for any transaction not yet associated.
What has grown too old on the way (policy.transaction_max_s) is closed 'unresolved' at once.
"""

from __future__ import annotations

import logging

from edge.challenge.events import BadEvent, parse_json
from edge.challenge.policy import ChallengePolicy
from edge.challenge.transaction import Carried, Outcome, Sighting, Transaction
from edge.challenge.zone import Association
from edge.store.pos_history import Leftovers, OpenRow

log = logging.getLogger(__name__)


def remember_ended(policy: ChallengePolicy, left: Leftovers, origin: float) -> None:
    """The sales earlier runs ended lately, so that a late or retried event of one (its reply lost to the
    restart, say) is ignored as it would have been before the restart, not taken for a new sale that would
    supersede the one open on its till."""
    for sale in left.ended:
        policy.remember_closed(sale.till_id, sale.pos_id, _before(sale.ended, origin), sale.voided)


def resume(policy: ChallengePolicy, left: Leftovers, origin: float) -> list[Outcome]:
    """Restore the open transactions, apply the unapplied events, expire the stale: the outcomes to store."""
    outcomes: list[Outcome] = []
    for row in left.open_rows:
        outcomes += policy.resume(restore(row, origin))
    for stored in left.events:
        try:
            event = parse_json(stored.body.encode())
        except BadEvent as error:  # stored by another version, say: it cannot be applied, so say so
            log.warning("POS event of run %d not applied after the restart (%s): %s", stored.run_id, error, stored.body)
            continue
        outcomes += policy.handle(event, _before(stored.at, origin))
    return outcomes + policy.expire(policy.now)


def restore(row: OpenRow, origin: float) -> Transaction:
    """The policy's transaction from an earlier run's open row, on this run's clock."""
    started = _before(row.started, origin)
    first = started if row.first_restricted is None else _before(row.first_restricted, origin)
    customer = Sighting(started, started, row.estimate) if row.estimate else None
    association = Association.from_dict(row.association, row.run_id) if row.association else None
    return Transaction(
        number=row.number,
        till_id=row.till_id,
        cashier_id=row.cashier_id,
        pos_id=row.pos_id,
        started=started,
        restricted=row.restricted,
        first_restricted=first if row.restricted else None,
        id_checks=list(row.id_checks),
        association=association,
        alerted=row.alerted,
        check_required=row.check_required,
        carried=Carried(row.run_id, customer),
        opened_by=row.opened_by,  # a start delivered after the check that opened the sale is not a new sale
        unconfirmed=row.unconfirmed,  # left unresolved, a late retry of a voided sale's scan: not flagged
    )


def _before(unix: float, origin: float) -> float:
    """An earlier run's Unix time as this run's source seconds: never after this run's start. A wall clock
    stepped back between the runs (NTP correcting a clock that ran ahead) would date them later, and the
    policy's `now` would jump there: every alert of this run timed, and its latency counted, from then."""
    return min(unix - origin, 0.0)
