"""A whole run: load and check everything, then process frames until the source ends or a stop signal.

Everything that can fail on the user's input (video, detector, model, state folder) is checked before
the event log is opened, so a bad input never leaves a run behind in the database.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from edge import __version__
from edge.config import Config
from edge.errors import StateError
from edge.pipeline.frame import FrameResult, Pipeline
from edge.pipeline.heartbeat import Heartbeat, with_health
from edge.pipeline.sd_notify import SystemdNotifier
from edge.store.connection import BUSY_S
from edge.store.eventlog import DB_NAME, FRAME_LOOP_BUSY_S, EventLog
from edge.vision.age_model import load_age_model
from edge.vision.detector import load_detector
from edge.vision.source import FrameGrabber, SourceSpec

log = logging.getLogger(__name__)
STATUS_EVERY_S = 10.0  # between statuses (systemd STATUS=, the run row's heartbeat); tests patch it here
WAIT_S = 0.5  # longest wait for a frame before the heartbeat ticks anyway


@dataclass(frozen=True)
class ModelSummary:
    path: str
    sha256: str
    provider: str
    metadata: dict[str, str]


@dataclass(frozen=True)
class RunResult:
    """A snapshot of a finished run: its counters and what it logged, never the live pipeline objects."""

    run_id: int
    db_path: Path
    status: str
    elapsed_s: float
    source: str
    frames: int
    dropped: int
    reconnects: int
    capture_alive: bool
    faces: int
    full_detections: int
    age_inferences: int
    batches: int
    largest_batch: int
    bad_age_samples: int
    stage_seconds: dict[str, float]
    model: ModelSummary
    customers: list[dict]
    hourly_stats: list[dict]


class RunHooks(Protocol):
    """Extra per-run work (the POS policy, edge.challenge.link): started once the run exists, called after each
    frame with that frame's result, finished before the event log closes."""

    def start(self, event_log: EventLog, run_id: int, origin: float) -> None: ...

    def on_frame(self, result: FrameResult) -> None: ...

    def on_idle(self) -> None:
        """No frame came within the loop's wait (a lost camera, a stalled stream): time-based work goes on."""

    def finish(self, status: str) -> None:
        """`status`: how the run ended ('completed', 'stopped' or 'failed')."""


class StopSignal:
    """SIGTERM/SIGINT ask the loop to finish the current frame, flush the log and return. SIGHUP stops the
    run just as cleanly and asks for a reload: `agecam run` then starts a new run with the configuration
    read again (`systemctl reload agecam`); other commands just stop."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reload = False  # the stop came from SIGHUP
        self.final = False  # a plain stop came: it wins over a reload
        self._callbacks: list[Callable[[], None]] = []

    def on_stop(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)

    def set(self, reload: bool = False) -> None:
        self.reload = self.reload or reload
        self.final = self.final or not reload
        self.event.set()
        for callback in self._callbacks:
            callback()

    def rearm(self) -> bool:
        """After a reload's stop, ready the signal for the next run. False if a plain stop came meanwhile."""
        self._callbacks.clear()
        self.reload = False
        self.event.clear()
        if self.final:  # a SIGTERM during the reload still stops the next run at once
            self.event.set()
        return not self.final

    @contextmanager
    def installed(self) -> Iterator[StopSignal]:
        """Route SIGTERM, SIGINT and SIGHUP here for the duration (main thread only), then restore the handlers."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {number: signal.signal(number, lambda *_: self.set()) for number in (signal.SIGTERM, signal.SIGINT)}
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, lambda *_: self.set(reload=True))
        try:
            yield self
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)


def run_source(
    config: Config,
    spec: SourceSpec,
    *,
    fast: bool = False,
    db_path: Path | None = None,
    origin: float | None = None,
    stop: StopSignal | None = None,
    on_status: Callable[[dict], None] | None = None,
    hooks: RunHooks | None = None,
    notifier: SystemdNotifier | None = None,
    mode: str | None = None,
) -> RunResult:
    """Run the pipeline over a source. `origin` is the Unix time of the source's first frame. `mode` is what
    the run is recorded as: `agecam run` is 'live' whatever its source; default 'live' or 'replay' by source."""
    mode = mode or ("live" if spec.live else "replay")
    stop = stop or StopSignal()
    grabber = FrameGrabber(spec, config.source, fast=fast)
    detector = load_detector(config)
    model = load_age_model(config)
    event_log = EventLog(db_path or config.state_dir() / DB_NAME, outbox=config.fleet.enabled)
    started = time.time()
    run_id = event_log.start_run(
        mode=mode,
        source=str(spec),
        model_path=str(model.path),
        model_sha256=model.sha256,
        provider=model.provider,
        version=__version__,
        config_json=config.recorded_json(),
        started=started,
    )
    origin = started if origin is None else origin
    pipeline = Pipeline(config, detector, model, event_log, run_id, origin)
    log.info("run %d: %s %s into %s", run_id, mode, spec, event_log.path)
    status = "failed"
    clock = time.perf_counter()
    notifier = notifier or SystemdNotifier()
    stop.on_stop(grabber.stop)
    try:
        if hooks:
            hooks.start(event_log, run_id, origin)
        # From here a lock held by another program must not stall the frame loop: the writes it refuses are
        # held and retried (see FRAME_LOOP_BUSY_S).
        event_log.wait_for_locks(FRAME_LOOP_BUSY_S)
        grabber.start()
        notifier.ready(f"running: {spec} on {model.provider}")
        heartbeat = Heartbeat(notifier, with_health(event_log, run_id, on_status), STATUS_EVERY_S)
        status = _loop(pipeline, grabber, stop, heartbeat, hooks)
        if grabber.error is not None:  # a non-zero exit, so that systemd's Restart=on-failure restarts the run
            status = "failed"
            raise grabber.error
    finally:
        # The run's last writes wait for a lock as long as any: held now, they could only be lost at close.
        event_log.wait_for_locks(BUSY_S)
        if stop.reload and not stop.final:
            notifier.reloading()
        else:
            notifier.stopping()
        grabber.close()
        pipeline.finish()
        if hooks:
            hooks.finish(status)
        counters = pipeline.counters
        event_log.update_run(
            run_id,
            frames=counters.frames,
            dropped=grabber.dropped,
            faces=counters.faces,
            status=status,
            ended=time.time(),
        )
        customers, hourly = _logged(event_log, run_id)
        event_log.close()
    unwritten = event_log.unwritten()
    if unwritten:  # the run is over, but the log lacks part of it: say so with exit 6, not 0
        raise StateError(unwritten)
    return _snapshot(run_id, event_log.path, status, time.perf_counter() - clock, pipeline, grabber, customers, hourly)


def _logged(event_log: EventLog, run_id: int) -> tuple[list[dict], list[dict]]:
    """The run's customers and statistics as logged; none when the file is no longer the event log
    (it was removed or replaced: reading it could only fail or show another file's rows)."""
    if event_log.health.gone:
        return [], []
    return event_log.customers(run_id), event_log.hourly_stats(run_id)


def _snapshot(
    run_id: int,
    db_path: Path,
    status: str,
    elapsed_s: float,
    pipeline: Pipeline,
    grabber: FrameGrabber,
    customers: list[dict],
    hourly: list[dict],
) -> RunResult:
    counters, model = pipeline.counters, pipeline.model
    return RunResult(
        run_id=run_id,
        db_path=db_path,
        status=status,
        elapsed_s=elapsed_s,
        source=str(grabber.spec),
        frames=counters.frames,
        dropped=grabber.dropped,
        reconnects=grabber.reconnects,
        capture_alive=grabber.is_alive(),
        faces=counters.faces,
        full_detections=pipeline.scheduler.full_detections,
        age_inferences=counters.age_inferences,
        batches=counters.batches,
        largest_batch=counters.largest_batch,
        bad_age_samples=counters.bad_age_samples,
        stage_seconds=dict(pipeline.timer.seconds),
        model=ModelSummary(str(model.path), model.sha256, model.provider, dict(model.info.metadata)),
        customers=customers,
        hourly_stats=hourly,
    )


def _loop(
    pipeline: Pipeline, grabber: FrameGrabber, stop: StopSignal, heartbeat: Heartbeat, hooks: RunHooks | None
) -> str:
    while not stop.event.is_set():
        try:
            frame = grabber.get(timeout=WAIT_S)
        except EOFError:
            break
        if frame is not None:
            result = pipeline.process(frame)
            if hooks:
                hooks.on_frame(result)
        elif hooks:
            hooks.on_idle()
        heartbeat.tick(pipeline, grabber)
        pipeline.log.tick()  # retries held writes; notices a database file removed or replaced
        if pipeline.log.health.gone:
            return "failed"
    return "stopped" if stop.event.is_set() else "completed"
