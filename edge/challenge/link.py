"""Connects a run to the Challenge policy: each frame's tracks and estimates in, POS events in (from a
replay script or the live HTTP endpoint), alerts and flags out to the event log, the notifier and,
when enabled, the evidence folder. Replay and live feed the very same policy.

When a live run stops, its open transactions stay open; a replay decides them at its end.
"""

from __future__ import annotations

import logging
import queue
from collections import Counter

from edge.challenge.alerts import Notifier
from edge.challenge.events import PosEvent
from edge.challenge.evidence import CropCache, purge, save_crop
from edge.challenge.policy import ChallengePolicy
from edge.challenge.records import alert_message, rows
from edge.challenge.server import PosServer, wall_clock
from edge.challenge.transaction import EVICTED, UNRESOLVED, Outcome
from edge.challenge.zone import ZoneFace
from edge.config import Config
from edge.pipeline.frame import FrameResult
from edge.store.eventlog import EventLog
from edge.store.pos_records import PosStore
from edge.vision.faces import CropSpec, crop_face

log = logging.getLogger(__name__)
EVIDENCE_CROP = CropSpec(size=160, margin=0.3)
PURGE_EVERY_S = 3600.0
EVICTION_WARNING_EVERY_S = 60.0  # a POS inventing till ids would otherwise flood the log


class PosLink:
    """Run hooks (see edge.pipeline.runner.RunHooks). `script`: replay events sorted by `t`; `serve`: live HTTP."""

    def __init__(self, config: Config, script: list[PosEvent] | None = None, serve: bool = False) -> None:
        self.config = config
        self.script = list(script or [])
        self.policy = ChallengePolicy(config.policy, config.pos.restricted_categories)
        self.notifier = Notifier(config.alerts)
        self.crops = CropCache() if config.evidence.enabled else None
        self.counts: Counter[str] = Counter()
        self.server = PosServer(config.pos) if serve else None
        self.store: PosStore | None = None
        self._next_purge = 0.0
        self._evicted, self._next_eviction_warning = 0, 0.0

    def start(self, event_log: EventLog, run_id: int, origin: float) -> None:
        self.origin = origin
        self.store = PosStore(event_log, run_id, origin)
        self.notifier.start()
        if self.server:  # the HTTP thread commits through its own connection to the same file
            self.server.start(PosStore(EventLog(event_log.path, durable=True), run_id, origin), wall_clock(origin))

    def on_frame(self, frame: FrameResult) -> None:
        estimates = {seen.track_id: seen.estimate for seen in frame.faces}
        if self.crops is not None:
            for seen in frame.faces:
                self.crops.put(seen.track_id, crop_face(frame.image, seen.face, EVIDENCE_CROP))
        outcomes = self.policy.observe(frame.t, zone_faces(frame), estimates)
        for event, t in self._due_events(frame.t):
            outcomes += self.policy.handle(event, t)
        self._emit(outcomes)
        self._purge_evidence(frame.t)

    def finish(self) -> None:
        """A live run leaves its open transactions open, saved: a stop or a reload is not the end of a sale.
        A replay's script is over, so its open ones are decided now."""
        if self.server:
            self.server.stop()
        for event, t in self._due_events(float("inf")):  # events that came after the last frame
            self._emit(self.policy.handle(event, t))
        now = self.policy.now
        self._emit(self.policy.carry_over(now) if self.server else self.policy.close_all(now))
        self.notifier.close()
        if self.server and self.server.store:
            self.server.store.log.close()

    def summary(self) -> dict:
        return {
            "events": self.counts["events"],
            "rejected": self.server.rejected if self.server else 0,
            "alerts": self.counts["alert"],
            "flags": self.counts["flag"],
            "notifications_sent": self.notifier.sent,
            "notifications_failed": self.notifier.failed,
        }

    def _due_events(self, now: float) -> list[tuple[PosEvent, float]]:
        """Replay events whose time has come (committed here), and live events the server committed."""
        due = []
        while self.script and self.script[0].t <= now:
            event = self.script.pop(0)
            self.store.record_event(event, event.t)
            due.append((event, event.t))
        while self.server is not None:
            try:
                due.append(self.server.events.get_nowait())
            except queue.Empty:
                break
        self.counts["events"] += len(due)
        return due

    def _emit(self, outcomes: list[Outcome]) -> None:
        if not outcomes:
            return
        evidence = {index: path for index, outcome in enumerate(outcomes) if (path := self._evidence(outcome))}
        ids = self.store.save(rows(outcomes, evidence))
        self._log_unresolved(outcomes)
        for outcome, row_id in zip([o for o in outcomes if o.kind != "transaction"], ids, strict=True):
            self.counts[outcome.kind] += 1
            message = alert_message(outcome, row_id, self.origin)
            log.warning(
                "%s %s: till %s, cashier %s, age %s",
                outcome.kind,
                outcome.type,
                message["till_id"],
                message["cashier_id"],
                message["age"],
            )
            self.notifier.send(message)

    def _log_unresolved(self, outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            txn = outcome.transaction
            if outcome.kind != "transaction" or txn.status != UNRESOLVED:
                continue
            if txn.resolution != EVICTED:
                log.info("transaction %d on till %s closed unresolved (%s)", txn.number, txn.till_id, txn.resolution)
                continue
            self._evicted += 1
            if outcome.t >= self._next_eviction_warning:
                self._next_eviction_warning = outcome.t + EVICTION_WARNING_EVERY_S
                log.warning(
                    "%d open transaction(s) evicted so far: over policy.max_open_transactions (%d) are open;"
                    " is the POS sending transaction_end, and only for real tills?",
                    self._evicted,
                    self.config.policy.max_open_transactions,
                )

    def _evidence(self, outcome: Outcome) -> str | None:
        """The flagged customer's crop, only for flags with a customer, only when evidence is enabled."""
        if self.crops is None or outcome.kind != "flag" or outcome.customer is None:
            return None
        track_id = outcome.transaction.association.track_id
        crop = self.crops.get(track_id)
        if crop is None:
            return None
        name = f"run{self.store.run_id}-txn{outcome.transaction.number}-track{track_id}"
        return save_crop(self.config.state_dir(), name, crop)

    def _purge_evidence(self, t: float) -> None:
        if t >= self._next_purge:
            self._next_purge = t + PURGE_EVERY_S
            purge(self.config.state_dir(), self.config.evidence.retention_days, self.store.log.path)


def zone_faces(frame: FrameResult) -> list[ZoneFace]:
    """The frame's faces in fractions of the frame, as the zone wants them."""
    height, width = frame.image.shape[:2]
    return [
        ZoneFace(
            seen.track_id,
            seen.face.center[0] / width,
            seen.face.center[1] / height,
            float(seen.face.box[2] * seen.face.box[3]) / (width * height),
        )
        for seen in frame.faces
    ]
