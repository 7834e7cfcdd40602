"""POS events that no sale should take, and the Challenge policy's memory of ended sales that tells them.

A late or retried event of a sale that ended must not be taken for the open sale's (a retried
`id_checked passed` would pass the next customer's sale) nor start a sale that nobody ends (a false flag).
The memory is bounded: sales ended more than `keep_s` ago are forgotten, and at most MAX_CLOSED are kept,
the oldest forgotten first, whatever the number of tills.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterator

from edge.challenge.events import IdChecked, ItemScanned, PosEvent, TransactionEnd, TransactionStart
from edge.challenge.transaction import Transaction

log = logging.getLogger(__name__)
MAX_CLOSED = 10_000
Sale = tuple[str, str]  # (till id, POS transaction id)


class EndedSales:
    def __init__(self, keep_s: float) -> None:
        self.keep_s = keep_s
        self.when: OrderedDict[Sale, float] = OrderedDict()  # oldest end first
        self.voided: set[Sale] = set()  # those of them voided: the POS may ring the sale up again

    def __iter__(self) -> Iterator[Sale]:
        return iter(self.when)

    def remember(self, sale: Sale, t: float, voided: bool) -> None:
        self.when[sale] = t
        self.when.move_to_end(sale)
        (self.voided.add if voided else self.voided.discard)(sale)

    def forget_old(self, t: float) -> None:
        while self.when and (len(self.when) > MAX_CLOSED or next(iter(self.when.values())) < t - self.keep_s):
            self.voided.discard(self.when.popitem(last=False)[0])

    def was_voided(self, event: PosEvent) -> bool:
        return (event.till_id, event.transaction_id) in self.voided

    def ended_lately(self, sale: Sale, t: float) -> bool:
        ended = self.when.get(sale)
        return ended is not None and ended >= t - self.keep_s


def is_stale(event: PosEvent, txn: Transaction | None, ended: EndedSales, t: float) -> bool:
    """An event no sale should take (`txn` is the sale open on its till): ignored, with a warning. A late or
    repeated event of a sale that ended on its till lately, and, while another sale is open there, an
    `id_checked` or `transaction_end` of a sale the policy does not know: no sale begins with one, and taking
    it for a new sale would supersede the open one (a false flag) and then ignore that sale's own events.
    A start is stale only as a repeat of the open sale's own start before it has a restricted item (superseding
    it would leave a sale the POS ended 'unresolved'); a scan of another sale starts it."""
    if isinstance(event, TransactionStart):
        return _repeated_start(event, txn)
    # An open sale whose POS id is not known yet is another sale too: else a late check would pass it.
    if event.transaction_id in (None, txn and txn.pos_id):
        return False
    sale = (event.till_id, event.transaction_id)
    # With no sale open, a scan of a voided sale is that sale rung up again under its id (void and re-ring),
    # not a late event: nothing of it was sold, and ignoring it would let a minor's re-rung sale go unflagged.
    # A late retry of the voided sale's scan looks the same: the sale it opens is flagged only if the POS sends
    # its check or end (policy: Transaction.unconfirmed).
    again = txn is None and isinstance(event, ItemScanned) and ended.was_voided(event)
    late = ended.ended_lately(sale, t) and not again
    unknown = txn is not None and txn.pos_id is not None and isinstance(event, IdChecked | TransactionEnd)
    if late or unknown:
        log.warning(
            "POS %s of sale %r on till %r ignored: that sale is %s, %s",
            event.type, event.transaction_id, event.till_id, "ended" if late else "not known",
            f"sale {txn.pos_id!r} is open there" if txn else "no sale is open there",
        )  # fmt: skip
    return late or unknown


def _repeated_start(event: TransactionStart, txn: Transaction | None) -> bool:
    """A start of the sale open on its till before any restricted item or check: a retry whose reply was
    lost; or a start that came after the check that opened its sale (delivered out of order)."""
    if txn is None or event.transaction_id is None or txn.pos_id != event.transaction_id:
        return False
    if txn.first_restricted is not None or (txn.id_checks and txn.opened_by != "id_checked"):
        return False  # an id reused for the next sale, maybe: supersede, so each customer is decided on their own
    # Opened by its check, the check came first: superseding the sale would drop it, and flag a checked customer.
    log.info("POS transaction_start of sale %r on till %r repeated: already open", txn.pos_id, txn.till_id)
    return True
