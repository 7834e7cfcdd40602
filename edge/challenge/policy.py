"""The Challenge policy: a pure state machine over POS events and what the camera sees.

No I/O here. `observe` takes each frame's zone faces and age estimates, `handle` takes each POS event,
and both return `Outcome`s (alerts, flags and transaction snapshots) for the caller to store and send.
Times are source seconds (video time in a replay), the same clock for frames and events.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace

from edge.challenge.events import IdChecked, ItemScanned, PosEvent, TransactionEnd, TransactionStart, is_restricted
from edge.challenge.zone import Association, ZoneFace, ZoneHistory
from edge.config import PolicyConfig
from edge.vision.customer import AgeEstimate

KEEP_ZONE_S = 900.0  # zone history long enough for the longest transaction
STAND_IN_SHARE = 0.25  # a stand-in for a customer without an estimate had this part of the zone, at least


@dataclass(frozen=True)
class Sighting:
    """What the camera knows of one track: when it appeared and its latest age estimate."""

    first_seen: float
    last_seen: float
    estimate: AgeEstimate | None


@dataclass
class Transaction:
    number: int
    till_id: str
    cashier_id: str | None
    pos_id: str | None
    started: float
    ended: float | None = None
    status: str = "open"  # open, completed, voided
    restricted: int = 0
    first_restricted: float | None = None
    id_checks: list[str] = field(default_factory=list)
    association: Association | None = None
    alerted: bool = False
    check_required: bool = False

    @property
    def passed(self) -> bool:
        return "passed" in self.id_checks


@dataclass(frozen=True)
class Outcome:
    """kind: 'alert' (id_check_required), 'flag' (sold_without_id_check, sold_after_failed_id_check,
    no_face) or 'transaction' (a snapshot to store)."""

    kind: str
    type: str
    t: float
    transaction: Transaction
    severity: str | None = None
    customer: Sighting | None = None
    latency_s: float | None = None


class ChallengePolicy:
    def __init__(self, settings: PolicyConfig, restricted_categories: list[str]) -> None:
        self.settings = settings
        self.categories = restricted_categories
        self.zone = ZoneHistory(list(settings.zone), KEEP_ZONE_S)
        self.tracks: dict[int, Sighting] = {}
        self.open: dict[str, Transaction] = {}
        self.now = 0.0
        self._numbers = itertools.count(1)

    # --- inputs -------------------------------------------------------------------------------------
    def observe(self, t: float, faces: list[ZoneFace], estimates: dict[int, AgeEstimate | None]) -> list[Outcome]:
        """One frame: zone faces and the current estimates of tracks. Raises alerts that became due."""
        self.now = max(self.now, t)
        self.zone.observe(t, faces)
        for track_id, estimate in estimates.items():
            known = self.tracks.get(track_id)
            self.tracks[track_id] = Sighting(known.first_seen if known else t, t, estimate)
        for track_id in [key for key, seen in self.tracks.items() if seen.last_seen < t - KEEP_ZONE_S]:
            del self.tracks[track_id]
        return [outcome for txn in list(self.open.values()) for outcome in self._check_alert(txn, t)]

    def handle(self, event: PosEvent, t: float) -> list[Outcome]:
        self.now = max(self.now, t)
        if isinstance(event, TransactionStart):
            return self._start(event, t)
        txn_outcomes: list[Outcome] = []
        if event.till_id not in self.open:  # a POS that skipped transaction_start still gets a transaction
            txn_outcomes = self._start(event, t)
        txn = self.open[event.till_id]
        txn.cashier_id = event.cashier_id or txn.cashier_id
        if isinstance(event, ItemScanned):
            return txn_outcomes + self._scan(txn, event, t)
        if isinstance(event, IdChecked):
            txn.id_checks.append(event.result)
            return [*txn_outcomes, self._snapshot(txn, t)]
        assert isinstance(event, TransactionEnd)
        return txn_outcomes + self._end(txn, event.status, t)

    def close_all(self, t: float) -> list[Outcome]:
        """End of a run: open transactions stay open (unknown outcome), but their state is saved."""
        return [self._snapshot(txn, t) for txn in self.open.values()]

    # --- transitions --------------------------------------------------------------------------------
    def _start(self, event: PosEvent, t: float) -> list[Outcome]:
        outcomes = self._end(self.open[event.till_id], "completed", t) if event.till_id in self.open else []
        txn = Transaction(next(self._numbers), event.till_id, event.cashier_id, event.transaction_id, t)
        self.open[event.till_id] = txn
        return [*outcomes, self._snapshot(txn, t)]

    def _scan(self, txn: Transaction, event: ItemScanned, t: float) -> list[Outcome]:
        txn.pos_id = txn.pos_id or event.transaction_id
        if not is_restricted(event, self.categories):
            return []
        txn.restricted += 1
        if txn.first_restricted is None:
            txn.first_restricted = t
            txn.association = self._associate(t - self.settings.association_window_s, t)
        return [*self._check_alert(txn, t), self._snapshot(txn, t)]

    def _end(self, txn: Transaction, status: str, t: float) -> list[Outcome]:
        del self.open[txn.till_id]
        txn.ended, txn.status = t, status
        outcomes = self._final_flags(txn, t) if status == "completed" and txn.restricted else []
        return [*outcomes, self._snapshot(txn, t)]

    # --- decisions ----------------------------------------------------------------------------------
    def _check_alert(self, txn: Transaction, t: float) -> list[Outcome]:
        """id_check_required, once per transaction, as soon as the customer's estimate is under the threshold."""
        if txn.first_restricted is None or txn.alerted or txn.passed:
            return []
        if txn.association is None:
            txn.association = self._associate(txn.first_restricted - self.settings.association_window_s, t)
        customer = self._customer(txn)
        if customer is None or not self._under(customer.estimate, self.settings.threshold):
            return []
        txn.alerted = txn.check_required = True
        at = max(t, self.now)  # a replayed scan is handled at the first frame after it: count that delay
        return [Outcome("alert", "id_check_required", at, txn, "info", customer, at - txn.first_restricted)]

    def _final_flags(self, txn: Transaction, t: float) -> list[Outcome]:
        if txn.passed:
            return []
        customer = self._customer(txn)
        if customer is None:  # maybe the associated track never gave an estimate: try a stand-in
            txn.association = self._stand_in(txn, t) or txn.association
            customer = self._customer(txn)
        if customer is None:
            txn.check_required = True
            return [Outcome("flag", "no_face", t, txn, "medium")]
        if not self._under(customer.estimate, self.settings.threshold):
            return []
        txn.check_required = True
        high = customer.estimate.age < self.settings.minor_age
        kind = "sold_after_failed_id_check" if txn.id_checks else "sold_without_id_check"
        return [Outcome("flag", kind, t, txn, "high" if high or txn.id_checks else "medium", customer)]

    def _stand_in(self, txn: Transaction, t: float) -> Association | None:
        """A usable track for a customer without an estimate (their track split, say), if it had a real part
        of the zone: never a passer-by or the previous customer walking away, whose age would then decide
        for a face the model could not read (a bad model output must not lose a flag: it is no_face)."""
        start = txn.first_restricted - self.settings.association_window_s
        usable, everyone = self._associate(start, t, True), self._associate(start, t)
        if usable is None or everyone is None:
            return None
        share = everyone.presence.get(usable.track_id, 0.0) / sum(everyone.presence.values())
        return usable if share >= STAND_IN_SHARE else None

    def _associate(self, start: float, end: float, usable_only: bool = False) -> Association | None:
        eligible = (lambda track_id: self._usable(self.tracks.get(track_id))) if usable_only else None
        return self.zone.dominant(start, end, eligible)

    def _customer(self, txn: Transaction) -> Sighting | None:
        """The transaction's customer, if their estimate is usable."""
        if txn.association is None:
            return None
        sighting = self.tracks.get(txn.association.track_id)
        return sighting if self._usable(sighting) else None

    def _usable(self, sighting: Sighting | None) -> bool:
        estimate = sighting.estimate if sighting else None
        return estimate is not None and estimate.samples >= self.settings.min_samples

    def _under(self, estimate: AgeEstimate, age: float) -> bool:
        return (estimate.low if self.settings.use_lower_bound else estimate.age) < age

    def _snapshot(self, txn: Transaction, t: float) -> Outcome:
        frozen = replace(txn, id_checks=list(txn.id_checks))
        return Outcome("transaction", "transaction", t, frozen, customer=self._customer(txn))
