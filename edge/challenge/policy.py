"""The Challenge policy: a pure state machine over POS events and what the camera sees.

No I/O here. `observe` takes each frame's zone faces and age estimates, `handle` takes each POS event,
and both return `Outcome`s (alerts, flags and transaction snapshots) for the caller to store and send.
Times are source seconds (video time in a replay), the same clock for frames and events.

Open transactions are bounded: one per till (a new start supersedes the open one), none older than
`transaction_max_s`, at most `max_open_transactions` in all. Each of those ends 'unresolved', flagged
as a completed sale would have been. Per-frame work covers only the transactions still awaiting their
alert (`awaiting`), never the idle ones.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import replace

from edge.challenge.events import IdChecked, ItemScanned, PosEvent, TransactionEnd, TransactionStart, is_restricted
from edge.challenge.late_events import EndedSales, is_stale
from edge.challenge.transaction import (
    EVICTED,
    EXPIRED,
    REPLAY_ENDED,
    SUPERSEDED,
    UNRESOLVED,
    VOIDED,
    Outcome,
    Sighting,
    Transaction,
)
from edge.challenge.zone import Association, ZoneFace, ZoneHistory
from edge.config import PolicyConfig
from edge.vision.customer import AgeEstimate

STAND_IN_SHARE = 0.25  # a stand-in for a customer without an estimate had this part of the zone, at least
Due = Sequence[tuple[PosEvent, float]]  # POS events with their policy times


class ChallengePolicy:
    def __init__(self, settings: PolicyConfig, restricted_categories: list[str]) -> None:
        self.settings = settings
        self.categories = restricted_categories
        # History as long as a transaction may live, so its association window is always covered.
        self.keep_s = settings.transaction_max_s + settings.association_window_s
        self.zone = ZoneHistory(list(settings.zone), self.keep_s)
        self.tracks: dict[int, Sighting] = {}
        self.open: dict[str, Transaction] = {}  # by till; insertion order is start order, oldest first
        self.awaiting: dict[str, Transaction] = {}  # by till: the open ones that frames can still alert
        self.now = 0.0
        self._numbers = itertools.count(1)
        self.closed = EndedSales(self.keep_s)  # their late events are not the open sale's

    # --- inputs -------------------------------------------------------------------------------------
    def observe(
        self, t: float, faces: list[ZoneFace], estimates: dict[int, AgeEstimate | None], events: Due = ()
    ) -> list[Outcome]:
        """One frame: zone faces and the current estimates of tracks, and the POS events (with their times) that
        came since the last frame. Raises alerts that became due."""
        self.now = max(self.now, t)
        self.zone.observe(t, faces)
        for track_id, estimate in estimates.items():
            known = self.tracks.get(track_id)
            self.tracks[track_id] = Sighting(known.first_seen if known else t, t, estimate)
        for track_id in [key for key, seen in self.tracks.items() if seen.last_seen < t - self.keep_s]:
            del self.tracks[track_id]
        # Events first, at their own times: a sale checked or ended while the camera was down (no frame) must
        # not expire, or alert, at the frame that comes back before its check or end is applied.
        outcomes = [outcome for event, at in events for outcome in self.handle(event, at)]
        outcomes += self.expire(t)
        return outcomes + [outcome for txn in list(self.awaiting.values()) for outcome in self._check_alert(txn, t)]

    def handle(self, event: PosEvent, t: float) -> list[Outcome]:
        """One POS event. Each leaves its transaction's row current, so a restart can resume it (carry.py)."""
        self.now = max(self.now, t)
        outcomes = self.expire(t)
        if is_stale(event, self.open.get(event.till_id), self.closed, t):
            return outcomes
        # A POS that skipped transaction_start still gets a transaction, as does an event of another sale than
        # the open one (by the POS's transaction_id): it never passes or ends a sale it does not belong to.
        if isinstance(event, TransactionStart) or self._other_sale(event, self.open.get(event.till_id)):
            new = Transaction(0, event.till_id, event.cashier_id, event.transaction_id, t, opened_by=event.type)
            new.unconfirmed = isinstance(event, ItemScanned) and self.closed.was_voided(event)
            outcomes += self._start(event.till_id, t, new)
            if isinstance(event, TransactionStart):
                return outcomes
        elif not isinstance(event, ItemScanned):  # a re-rung sale's check or end: not a retried scan (which a
            self.open[event.till_id].unconfirmed = False  # second retry of the same scan would be)
        txn = self.open[event.till_id]
        txn.cashier_id = event.cashier_id or txn.cashier_id
        txn.pos_id = txn.pos_id or event.transaction_id
        if isinstance(event, ItemScanned):
            return outcomes + self._scan(txn, event, t)
        if isinstance(event, IdChecked):
            txn.id_checks.append(event.result)
            if txn.passed:
                self.awaiting.pop(txn.till_id, None)
            return [*outcomes, self._snapshot(txn, t)]
        assert isinstance(event, TransactionEnd)
        return outcomes + self._close(txn, event.status, t)

    def expire(self, t: float) -> list[Outcome]:
        """Close the transactions open for longer than transaction_max_s; only the oldest are looked at."""
        outcomes: list[Outcome] = []
        while self.open:
            oldest = next(iter(self.open.values()))
            if oldest.started >= t - self.settings.transaction_max_s:
                break
            outcomes += self._close(oldest, UNRESOLVED, t, EXPIRED)
        self.closed.forget_old(t)
        return outcomes

    def resume(self, txn: Transaction) -> list[Outcome]:
        """Take over a transaction an earlier run left open (`txn.carried`), as restored by carry.py."""
        if txn.association is not None and self._customer(txn) is None:
            txn.association = None  # no usable estimate came with it: find the customer in this run's zone
        return self._start(txn.till_id, txn.started, txn)

    def carry_over(self, t: float) -> list[Outcome]:
        """A live run stops: open transactions stay open, with their state saved, for the next run to resume."""
        return [self._snapshot(txn, t) for txn in self.open.values()]

    def close_all(self, t: float, reason: str = REPLAY_ENDED) -> list[Outcome]:
        """A replay ends: nothing will ever end its open transactions, so each is decided now, unresolved."""
        return [outcome for txn in list(self.open.values()) for outcome in self._close(txn, UNRESOLVED, t, reason)]

    # --- transitions --------------------------------------------------------------------------------
    def _start(self, till_id: str, t: float, txn: Transaction) -> list[Outcome]:
        """Open `txn` on its till (a new one is numbered here), closing the till's open one and, at the cap,
        the oldest of all."""
        outcomes = []
        if till_id in self.open:
            outcomes += self._close(self.open[till_id], UNRESOLVED, t, SUPERSEDED)
        if len(self.open) >= self.settings.max_open_transactions:
            outcomes += self._close(next(iter(self.open.values())), UNRESOLVED, t, EVICTED)
        if txn.carried is None:
            txn.number = next(self._numbers)
        self.open[till_id] = txn
        if txn.awaiting:
            self.awaiting[till_id] = txn
        return [*outcomes, self._snapshot(txn, t)]

    def _scan(self, txn: Transaction, event: ItemScanned, t: float) -> list[Outcome]:
        if not is_restricted(event, self.categories):
            return [self._snapshot(txn, t)]
        txn.restricted += 1
        if txn.first_restricted is None:
            txn.first_restricted = t
            txn.association = txn.association or self._associate(t - self.settings.association_window_s, t)
            if txn.awaiting:
                self.awaiting[txn.till_id] = txn
        return [*self._check_alert(txn, t), self._snapshot(txn, t)]

    def _close(self, txn: Transaction, status: str, t: float, reason: str | None = None) -> list[Outcome]:
        del self.open[txn.till_id]
        if txn.pos_id is not None:
            self.remember_closed(txn.till_id, txn.pos_id, t, status == VOIDED)
        self.awaiting.pop(txn.till_id, None)
        txn.ended, txn.status, txn.resolution = t, status, reason
        retry = txn.unconfirmed and status == UNRESOLVED  # a voided sale's late scan, not a sale of its own
        outcomes = self._final_flags(txn, t) if status != VOIDED and txn.restricted and not retry else []
        return [*outcomes, self._snapshot(txn, t)]

    def remember_closed(self, till_id: str, pos_id: str, t: float, voided: bool = False) -> None:
        """The POS's sale `pos_id` ended on `till_id` at `t` (also one an earlier run ended: carry.py)."""
        self.closed.remember((till_id, pos_id), t, voided)

    @staticmethod
    def _other_sale(event: PosEvent, txn: Transaction | None) -> bool:
        """No sale is open on the event's till, or the open one has another POS transaction id: the event
        starts its own sale (the POS skipped transaction_start), leaving that one 'superseded', flagged as due."""
        if txn is None:
            return True
        return None not in (txn.pos_id, event.transaction_id) and txn.pos_id != event.transaction_id

    # --- decisions ----------------------------------------------------------------------------------
    def _check_alert(self, txn: Transaction, t: float) -> list[Outcome]:
        """id_check_required, once per transaction, as soon as the customer's estimate is under the threshold."""
        if not txn.awaiting:
            self.awaiting.pop(txn.till_id, None)
            return []
        found: list[Outcome] = []
        if txn.association is None:
            txn.association = self._associate(txn.first_restricted - self.settings.association_window_s, t)
            found = [self._snapshot(txn, t)] if txn.association else []  # saved, should the run be cut off
        customer = self._customer(txn)
        if customer is None:  # too little evidence to decide is a reason to ask for ID, too
            customer = self._uncertain(txn)
            if customer is None:
                return found
        elif not self._under(customer.estimate, self.settings.threshold):
            return found
        txn.alerted = txn.check_required = True
        self.awaiting.pop(txn.till_id, None)
        at = max(t, self.now)  # a replayed scan is handled at the first frame after it: count that delay
        return [Outcome("alert", "id_check_required", at, txn, "info", customer, at - txn.first_restricted)]

    def _final_flags(self, txn: Transaction, t: float) -> list[Outcome]:
        """A sale with restricted items ends: flag it unless a check passed, or none failed and the customer
        looks old enough. An unresolved one is flagged just the same, as 'unresolved': the POS never said
        whether it sold."""
        if txn.passed:
            return []
        uncertain = self._uncertain(txn)  # before a stand-in may take the association over
        customer = self._customer(txn)
        if customer is None:  # maybe the associated track never gave an estimate: try a stand-in
            own = txn.association
            txn.association = self._stand_in(txn, t) or own
            customer = self._customer(txn)
            if customer and uncertain and not self._under(customer.estimate, self.settings.threshold):
                # Seen, if too briefly: an older-looking companion must not clear them (uncertain_no_check).
                txn.association, customer = own, None
        if txn.id_checks:  # failed or refused, none passed: the till itself knew, whatever the face showed
            kind, high = "sold_after_failed_id_check", True
        elif customer is None:
            kind, high = ("uncertain_no_check" if uncertain else "no_face"), False
        elif self._under(customer.estimate, self.settings.threshold):
            kind, high = "sold_without_id_check", customer.estimate.age < self.settings.minor_age
        else:
            return []
        txn.check_required = True
        kind = "unresolved" if txn.status == UNRESOLVED else kind
        return [Outcome("flag", kind, t, txn, "high" if high else "medium", customer or uncertain)]

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
        if txn.association.run_id is not None:  # an earlier run's track: as that run last saw them
            sighting = txn.carried.customer if txn.carried else None
        else:
            sighting = self.tracks.get(txn.association.track_id)
        return sighting if self._usable(sighting) else None

    def _usable(self, sighting: Sighting | None) -> bool:
        estimate = sighting.estimate if sighting else None
        return estimate is not None and estimate.samples >= self.settings.min_samples

    def _under(self, estimate: AgeEstimate, age: float) -> bool:
        """Does the customer look under `age` (the threshold) for the policy's mode?"""
        mode = self.settings.decision
        if mode == "risk":
            return estimate.probability_under(age) >= self.settings.risk
        return (estimate.low if mode == "lower_bound" else estimate.age) < age

    def _uncertain(self, txn: Transaction) -> Sighting | None:
        """The associated customer when they were seen but with too few samples to decide (policy.min_samples)."""
        if txn.association is None or txn.association.run_id is not None:
            return None
        sighting = self.tracks.get(txn.association.track_id)
        return sighting if sighting and sighting.estimate and not self._usable(sighting) else None

    def _snapshot(self, txn: Transaction, t: float) -> Outcome:
        frozen = replace(txn, id_checks=list(txn.id_checks))
        return Outcome("transaction", "transaction", t, frozen, customer=self._customer(txn))
