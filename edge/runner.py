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
from edge.age_model import AgeModel
from edge.assets import DETECTOR_ASSET, verified_path
from edge.config import Config
from edge.detector import FaceDetector
from edge.errors import AssetError, DetectorError
from edge.eventlog import DB_NAME, EventLog
from edge.pipeline import Pipeline
from edge.source import Frame, FrameGrabber, SourceSpec

log = logging.getLogger(__name__)
STATUS_EVERY_S = 60.0


def load_detector(config: Config) -> FaceDetector:
    """YuNet from detector.model, else from the assets folder (checked against its pinned hash)."""
    settings = config.detector
    if settings.model:
        path = config.resolve(settings.model)
    else:
        try:
            path = verified_path(DETECTOR_ASSET)
        except AssetError as error:
            raise DetectorError(str(error)) from None
    return FaceDetector(
        path, settings.detection_width, settings.score_threshold, settings.nms_threshold, settings.min_face_px
    )


def load_age_model(config: Config) -> AgeModel:
    settings = config.age_model
    return AgeModel(
        config.resolve(settings.path),
        settings.providers,
        settings.threads,
        settings.max_batch,
        cache_dir=config.state_dir() / "trt-cache",
    )


@dataclass
class RunResult:
    run_id: int
    db_path: Path
    status: str
    elapsed_s: float
    pipeline: Pipeline
    grabber: FrameGrabber
    customers: list[dict]
    hourly_stats: list[dict]


class RunHooks(Protocol):
    """Extra per-run work (the POS policy, edge.pos_link): started once the run exists, called after each
    frame with the pipeline's state, finished before the event log closes."""

    def start(self, event_log: EventLog, run_id: int, origin: float) -> None: ...

    def on_frame(self, frame: Frame, pipeline: Pipeline) -> None: ...

    def finish(self) -> None: ...


class StopSignal:
    """SIGTERM/SIGINT ask the loop to finish the current frame, flush the log and return."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._callbacks: list[Callable[[], None]] = []

    def on_stop(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)

    def set(self) -> None:
        self.event.set()
        for callback in self._callbacks:
            callback()

    @contextmanager
    def installed(self) -> Iterator[StopSignal]:
        """Route SIGTERM and SIGINT here for the duration (main thread only), then restore the handlers."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {number: signal.signal(number, lambda *_: self.set()) for number in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield self
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)


def execute(
    config: Config,
    spec: SourceSpec,
    *,
    fast: bool = False,
    db_path: Path | None = None,
    origin: float | None = None,
    stop: StopSignal | None = None,
    on_status: Callable[[dict], None] | None = None,
    hooks: RunHooks | None = None,
) -> RunResult:
    """Run the pipeline over a source. `origin` is the Unix time of the source's first frame."""
    stop = stop or StopSignal()
    grabber = FrameGrabber(spec, config.source, fast=fast)
    detector = load_detector(config)
    model = load_age_model(config)
    event_log = EventLog(db_path or config.state_dir() / DB_NAME)
    started = time.time()
    run_id = event_log.start_run(
        mode="live" if spec.live else "replay",
        source=str(spec),
        model_path=str(model.path),
        model_sha256=model.sha256,
        provider=model.provider,
        version=__version__,
        config_json=config.model_dump_json(),
        started=started,
    )
    origin = started if origin is None else origin
    pipeline = Pipeline(config, detector, model, event_log, run_id, origin)
    log.info("run %d: %s %s into %s", run_id, "live" if spec.live else "replay", spec, event_log.path)
    status = "failed"
    clock = time.perf_counter()
    stop.on_stop(grabber.stop)
    try:
        if hooks:
            hooks.start(event_log, run_id, origin)
        grabber.start()
        status = _loop(pipeline, grabber, stop, on_status, hooks)
    finally:
        grabber.stop()
        pipeline.finish()
        if hooks:
            hooks.finish()
        counters = pipeline.counters
        event_log.update_run(
            run_id,
            frames=counters.frames,
            dropped=grabber.dropped,
            faces=counters.faces,
            status=status,
            ended=time.time(),
        )
        customers, hourly = event_log.customers(run_id), event_log.hourly_stats(run_id)
        event_log.close()
    return RunResult(run_id, event_log.path, status, time.perf_counter() - clock, pipeline, grabber, customers, hourly)


def _loop(
    pipeline: Pipeline,
    grabber: FrameGrabber,
    stop: StopSignal,
    on_status: Callable[[dict], None] | None,
    hooks: RunHooks | None,
) -> str:
    next_status = time.monotonic() + STATUS_EVERY_S
    for frame in grabber:
        pipeline.process(frame)
        if hooks:
            hooks.on_frame(frame, pipeline)
        if stop.event.is_set():
            return "stopped"
        if on_status and time.monotonic() >= next_status:
            next_status = time.monotonic() + STATUS_EVERY_S
            on_status(
                {
                    "frames": pipeline.counters.frames,
                    "customers": len(pipeline.counters.customers),
                    "dropped": grabber.dropped,
                    "source": grabber.state,
                }
            )
    return "stopped" if stop.event.is_set() else "completed"
