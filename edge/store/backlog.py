"""Writes held in memory while the storage refuses them (a full disk, a read-only remount, a lock held by
another program), to be retried in order. Bounded: past `limit` the oldest plain writes are dropped
first, and writes holding an alert or a flag last."""

from __future__ import annotations

import itertools
import logging
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

log = logging.getLogger(__name__)
LIMIT = 10_000  # writes: hours of a busy till's customers and POS events, a few MB of memory


@dataclass(frozen=True)
class Held:
    work: Callable[[], object]
    precious: bool


class Backlog:
    """Keyed writes (a customer's latest state) replace the held one with the same key; others queue."""

    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        self.items: OrderedDict[Hashable, Held] = OrderedDict()
        self.dropped = 0
        self.dropped_precious = 0
        self._serial = itertools.count()

    def __len__(self) -> int:
        return len(self.items)

    def hold(self, key: Hashable | None, work: Callable[[], object], precious: bool = False) -> None:
        key = ("queued", next(self._serial)) if key is None else key
        if key in self.items:
            precious = precious or self.items.pop(key).precious
        self.items[key] = Held(work, precious)
        if len(self.items) > self.limit:
            self._drop_one()

    def _drop_one(self) -> None:
        victim = next((key for key, held in self.items.items() if not held.precious), None)
        if victim is None:  # nothing but alerts and flags: still bounded, and said loudly
            victim = next(iter(self.items))
            self.dropped_precious += 1
            log.error("event log backlog full: an alert or flag held in memory was dropped (sent to receivers)")
        elif self.dropped == 0:
            log.error("event log backlog full (%d writes): dropping the oldest customer and POS writes", self.limit)
        self.dropped += 1
        del self.items[victim]

    def drain(self, commit: Callable[[Callable[[], object]], object]) -> int:
        """Write held items in order, each through `commit` (one transaction), until one raises; the item
        that failed and those after it stay held. Returns how many were written."""
        written = 0
        while self.items:
            key, held = next(iter(self.items.items()))
            commit(held.work)
            del self.items[key]
            written += 1
        return written
