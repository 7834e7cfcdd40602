"""Liveness of a run's main loop: systemd's watchdog and STATUS=, and the periodic status that the run's
row (the review app's till health) and the status log line take."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable

from edge.pipeline.frame import Pipeline
from edge.pipeline.sd_notify import SystemdNotifier
from edge.store.eventlog import EventLog
from edge.store.review_records import record_heartbeat
from edge.vision.source import FrameGrabber

log = logging.getLogger(__name__)
WARN_EVERY_S = 60.0  # between warnings that the heartbeat was not saved


class Heartbeat:
    """Ticks after every frame and every empty wait, so a lost camera does not look like a hung loop.
    `every_s`: between statuses (systemd's STATUS= and `on_status`)."""

    def __init__(self, notifier: SystemdNotifier, on_status: Callable[[dict], None] | None, every_s: float) -> None:
        self.notifier, self.on_status, self.every_s = notifier, on_status, every_s
        self.ping_every = notifier.ping_interval_s()
        now = time.monotonic()
        self.next_ping, self.next_status, self.last_status, self.last_frames = now, now + every_s, now, 0

    def tick(self, pipeline: Pipeline, grabber: FrameGrabber) -> None:
        now = time.monotonic()
        if self.ping_every and now >= self.next_ping:
            self.notifier.watchdog()
            self.next_ping = now + self.ping_every
        if now < self.next_status:
            return
        frames = pipeline.counters.frames
        status = {
            "frames": frames,
            "fps": round((frames - self.last_frames) / (now - self.last_status), 1),
            "customers": len(pipeline.counters.customers),
            "dropped": grabber.dropped,
            "source": grabber.state,
            "storage": pipeline.log.health.describe(),
        }
        line = "{fps} fps, {customers} customers, {dropped} dropped, source {source}, storage {storage}"
        self.notifier.status(line.format(**status))
        if self.on_status:
            self.on_status(status)
        self.next_status, self.last_status, self.last_frames = now + self.every_s, now, frames


def with_health(
    event_log: EventLog,
    run_id: int,
    on_status: Callable[[dict], None] | None,
    clock: Callable[[], float] = time.monotonic,
) -> Callable[[dict], None]:
    """Each status also goes into the run's row, so the review app's till health sees a live till. A failure
    is logged at most once a minute (a full disk for a day was 8,640 lines), with the count since."""
    failed, next_warning = 0, 0.0

    def report(status: dict) -> None:
        nonlocal failed, next_warning
        try:
            record_heartbeat(event_log, run_id, status)
        except sqlite3.Error as error:  # a busy or full disk must not stop the till
            failed += 1
            if clock() >= next_warning:
                log.warning("run %d: %d heartbeat(s) not saved since the last warning: %s", run_id, failed, error)
                failed, next_warning = 0, clock() + WARN_EVERY_S
        if on_status:
            on_status(status)

    return report
