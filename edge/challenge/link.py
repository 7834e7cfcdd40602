"""Connects a run to the Challenge policy: each frame's tracks and estimates in, POS events in (from a
replay script or the live HTTP endpoint), alerts and flags out to the event log, the notifier and,
when enabled, the evidence folder. Replay and live feed the very same policy.

A live run carries its policy state over a restart: it resumes what earlier live runs left (carry.py)
and, when it stops, leaves its open transactions open for the next. A replay decides them at its end.
"""

from __future__ import annotations

import logging
import queue
import time
from collections import Counter, deque

from edge.challenge.alerts import AlertSender
from edge.challenge.carry import remember_ended, resume
from edge.challenge.events import PosEvent
from edge.challenge.evidence import RecentCrops, purge
from edge.challenge.late_crops import FlagKey, LateCrops
from edge.challenge.policy import ChallengePolicy
from edge.challenge.records import alert_message, rows
from edge.challenge.server import PosServer, monotonic_clock
from edge.challenge.transaction import EVICTED, UNRESOLVED, Outcome
from edge.challenge.zone import ZoneFace
from edge.config import Config
from edge.pipeline.frame import FrameResult
from edge.store.eventlog import FRAME_LOOP_BUSY_S, EventLog
from edge.store.pos_history import close_cut_off_replays, leftovers
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
        self.script = deque(script or [])  # taken from the front: a list's pop(0) grew quadratic (200k events)
        self.policy = ChallengePolicy(config.policy, config.pos.restricted_categories)
        self.notifier = AlertSender(config.alerts)
        self.crops = RecentCrops() if config.evidence.enabled else None
        self.late = LateCrops(config.state_dir(), config.evidence.retention_days) if self.crops else None
        self.counts: Counter[str] = Counter()
        self.server = PosServer(config.pos) if serve else None
        self.store: PosStore | None = None
        self.applied = 0  # this run's POS events the policy has applied (runs.pos_applied)
        self._applied_saved = 0  # ... as last saved
        self._next_purge = 0.0
        self._evicted, self._next_eviction_warning = 0, 0.0

    def start(self, event_log: EventLog, run_id: int, origin: float) -> None:
        self.origin = origin
        self.store = PosStore(event_log, run_id, origin)
        self.store.mark_run("live" if self.server else "script")
        if closed := close_cut_off_replays(event_log, run_id):
            log.warning("%d transaction(s) of replays that died before their end closed as unresolved", closed)
        self.notifier.start()
        if self.server:  # resume before serving, so no new event overtakes an older one
            self._resume(event_log, run_id, origin)
            # The HTTP thread commits through its own connection to the same file.
            self.server.start(PosStore(event_log.sibling(durable=True), run_id, origin), monotonic_clock(origin))

    def _resume(self, event_log: EventLog, run_id: int, origin: float) -> None:
        try:
            left = leftovers(event_log, run_id, origin - self.policy.keep_s)
            remember_ended(self.policy, left, origin)
            if left:
                log.info(
                    "resuming %d open transaction(s) and %d unapplied POS event(s) of earlier runs",
                    len(left.open_rows),
                    len(left.events),
                )
                self._emit(resume(self.policy, left, origin), left.applied)
        except Exception:  # the till must serve even so; what was left stays for the next start to try
            log.exception("could not resume the POS transactions of earlier runs: please report this")

    def on_frame(self, frame: FrameResult) -> None:
        estimates = {seen.track_id: seen.estimate for seen in frame.faces}
        if self.crops is not None:
            for seen in frame.faces:
                self.crops.put(seen.track_id, crop_face(frame.image, seen.face, EVIDENCE_CROP))
        due = self._due_events(frame.t)
        outcomes = self.policy.observe(frame.t, zone_faces(frame), estimates, due)
        self.applied += len(due)  # saved with the rows they led to
        self._emit(outcomes)
        self._purge_evidence()
        self._name_crops(self.late.retry() if self.late else [])

    def on_idle(self) -> None:
        """The camera is lost: expired evidence is deleted on time all the same (evidence.retention_days), and
        crops the disk refused are tried again."""
        self._purge_evidence()
        self._name_crops(self.late.retry() if self.late else [])

    def finish(self, status: str = "completed") -> None:
        """A live run leaves its open transactions open, saved, for the next run to resume: a stop or a
        reload is not the end of a sale. A replay's script is over, so its open ones are decided now. A replay
        that did not reach the video's end (`status` stopped or failed) drops the rest of its script: applied
        without frames, its sales were decided on video never processed (no_face flags for faces never looked
        for)."""
        if self.server:
            self.server.stop()
        elif status != "completed" and self.script:
            log.warning("replay %s: %d POS events after its last frame not applied", status, len(self.script))
            self.script.clear()
        self._emit(self._apply(self._due_events(float("inf"))))  # events that came after the last frame
        now = self.policy.now
        self._emit(self.policy.carry_over(now) if self.server else self.policy.close_all(now))
        self._name_crops(self.late.close() if self.late else [])
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

    def _apply(self, due: list[tuple[PosEvent, float]]) -> list[Outcome]:
        outcomes = [outcome for event, t in due for outcome in self.policy.handle(event, t)]
        self.applied += len(due)
        return outcomes

    def _due_events(self, now: float) -> list[tuple[PosEvent, float]]:
        """Replay events whose time has come (committed here), and live events the server committed."""
        due = []
        while self.script and self.script[0].t <= now:
            event = self.script.popleft()
            self.store.record_event(event, event.t)
            due.append((event, event.t))
        while self.server is not None:
            try:
                due.append(self.server.events.get_nowait())
            except queue.Empty:
                break
        self.counts["events"] += len(due)
        return due

    def _emit(self, outcomes: list[Outcome], applied: dict[int, int] | None = None) -> None:
        """Store the outcomes, with how many POS events led to them, then log and send the alerts and flags."""
        # Events that changed nothing (a late one, ignored) are saved as applied too, or a restart would
        # apply them again.
        if not outcomes and not applied and self.applied == self._applied_saved:
            return
        evidence = {index: path for index, outcome in enumerate(outcomes) if (path := self._evidence(outcome))}
        ids = self.store.save(
            rows(outcomes, evidence, self.store.run_id), {self.store.run_id: self.applied, **(applied or {})}
        )
        self._applied_saved = self.applied
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
        """The flagged customer's crop, only for flags with a customer of this run, only when evidence is enabled."""
        association = outcome.transaction.association
        if self.crops is None or outcome.kind != "flag" or outcome.customer is None or association.run_id is not None:
            return None  # an earlier run's track id names someone else in this run's crop cache
        crop = self.crops.get(association.track_id)
        if crop is None or self.late is None:
            return None
        txn = outcome.transaction
        run_id = txn.carried.run_id if txn.carried else self.store.run_id
        name = f"run{run_id}-txn{txn.number}-track{association.track_id}"
        return self.late.save(name, crop, FlagKey(run_id, txn.number, outcome.t))

    def _name_crops(self, saved: list[tuple[FlagKey, str]]) -> None:
        """Crops saved late: their flags name them now (after the flags' own rows, if those are held too)."""
        for flag, path in saved:
            self.store.set_evidence(flag.run_id, flag.number, flag.t, path)

    def _purge_evidence(self) -> None:
        now = time.monotonic()  # wall time, frames or none: retention is counted in days of it
        if now >= self._next_purge:
            self._next_purge = now + PURGE_EVERY_S
            days = self.config.evidence.retention_days
            purge(self.config.state_dir(), days, self.store.log.path, lock_wait_s=FRAME_LOOP_BUSY_S, boot_clock=True)


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
