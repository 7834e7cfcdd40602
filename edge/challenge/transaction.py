"""What the Challenge policy (edge.challenge.policy) keeps of each POS transaction, and what it returns."""

from __future__ import annotations

from dataclasses import dataclass, field

from edge.challenge.zone import Association
from edge.vision.customer import AgeEstimate

OPEN, COMPLETED, VOIDED, UNRESOLVED = "open", "completed", "voided", "unresolved"
# Why a transaction ended 'unresolved': the POS never said whether it sold (transactions.resolution).
SUPERSEDED = "superseded"  # a new transaction_start on its till came first
EXPIRED = "expired"  # open for longer than policy.transaction_max_s
EVICTED = "evicted"  # the oldest, when policy.max_open_transactions were open
REPLAY_ENDED = "replay_ended"  # a replay's script ran out before its transaction_end


@dataclass(frozen=True)
class Sighting:
    """What the camera knows of one track: when it appeared and its latest age estimate."""

    first_seen: float
    last_seen: float
    estimate: AgeEstimate | None


@dataclass(frozen=True)
class Carried:
    """A transaction an earlier run left open (edge.challenge.carry): the run whose row this run goes on
    updating, and the customer as that run last saw them. That run's track ids mean nothing to this run's
    tracker, so the customer travels here (the restored association's run_id names that run)."""

    run_id: int
    customer: Sighting | None


@dataclass
class Transaction:
    number: int
    till_id: str
    cashier_id: str | None
    pos_id: str | None
    started: float
    ended: float | None = None
    status: str = OPEN  # open, completed, voided, unresolved
    restricted: int = 0
    first_restricted: float | None = None
    id_checks: list[str] = field(default_factory=list)
    association: Association | None = None
    alerted: bool = False
    check_required: bool = False
    resolution: str | None = None  # why it is unresolved
    carried: Carried | None = None  # it continues an earlier run's row
    opened_by: str = "transaction_start"  # the POS event type that opened it (the POS may skip the start)
    # Opened by a scan of a sale that was voided, and no check or end of it since: a re-ring, or a late retry of
    # the voided sale's scan. Ended by the POS, it was a re-ring; left 'unresolved', a retry, and not flagged.
    unconfirmed: bool = False

    @property
    def passed(self) -> bool:
        return "passed" in self.id_checks

    @property
    def awaiting(self) -> bool:
        """Whether frames can still raise its alert: a restricted scan, no alert yet, no passed check."""
        return self.first_restricted is not None and not self.alerted and not self.passed


@dataclass(frozen=True)
class Outcome:
    """kind: 'alert' (id_check_required), 'flag' (sold_without_id_check, sold_after_failed_id_check,
    no_face, unresolved) or 'transaction' (a snapshot to store)."""

    kind: str
    type: str
    t: float
    transaction: Transaction
    severity: str | None = None
    customer: Sighting | None = None
    latency_s: float | None = None
