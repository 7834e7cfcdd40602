"""One frame through the till pipeline: detect, track, crop, estimate age, update customers, log.

The age model runs on a worker thread: a frame's batch is inferred while the next frame is detected,
and its results are applied at the start of that next frame, before any new sample is chosen.
`Pipeline.process` returns a `FrameResult` value: what later stages (the Challenge policy) may know of
the frame, so they never reach into the pipeline's internals.

Samples the age model gets wrong (NaN, out of range, a failed batch) are dropped and counted, never
added to a customer: a customer with no good sample has no estimate, so a restricted sale to them is
flagged `no_face` rather than lost.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np

from edge.config import Config
from edge.pipeline.stage_timer import StageTimer
from edge.store.eventlog import CustomerRecord, EventLog
from edge.vision.age_groups import AgeGroups
from edge.vision.age_model import AgeModel
from edge.vision.customer import AgeEstimate, CustomerAge
from edge.vision.detector import FaceDetector
from edge.vision.faces import Face, crop_face
from edge.vision.interval import DetectionScheduler
from edge.vision.model_contract import probability_below
from edge.vision.model_outputs import AgeSamples
from edge.vision.quality import face_quality
from edge.vision.source import Frame, as_bgr
from edge.vision.tracker import FaceTracker, Track

log = logging.getLogger(__name__)
SAY_BAD_EVERY_S = 60.0


@dataclass
class Counters:
    frames: int = 0
    faces: int = 0
    age_inferences: int = 0
    batches: int = 0
    largest_batch: int = 0
    bad_age_samples: int = 0
    customers: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class SeenFace:
    """A track seen on this frame: its face and its customer's current estimate (None before a sample)."""

    track_id: int
    face: Face
    estimate: AgeEstimate | None


@dataclass(frozen=True)
class FrameResult:
    """One processed frame: its source time, the image (for evidence crops), the faces seen, the tracks ended."""

    t: float
    image: np.ndarray
    faces: list[SeenFace]
    ended: list[int]
    inference_s: float | None = None  # the age-model batch applied on this frame (metrics)


@dataclass
class PendingBatch:
    """Age samples in flight: the tracks and face qualities they belong to, and when they were taken."""

    tracks: list[Track]
    qualities: list[float]
    t: float
    result: Future[tuple[AgeSamples, float]]


class BadSampleLog:
    """A model that goes bad goes bad on every frame: one warning line a minute, with the count since."""

    def __init__(self) -> None:
        self.next_at, self.unsaid = 0.0, 0

    def note(self, count: int, problem: str | None) -> None:
        self.unsaid += count
        now = time.monotonic()
        if now >= self.next_at:
            log.warning("age model gave %d unusable sample(s), dropped (first: %s)", self.unsaid, problem)
            self.next_at, self.unsaid = now + SAY_BAD_EVERY_S, 0


class Pipeline:
    """Holds the per-run state. `origin` maps source seconds (Frame.t) to Unix time for the log."""

    def __init__(
        self, config: Config, detector: FaceDetector, model: AgeModel, log: EventLog, run_id: int, origin: float
    ) -> None:
        self.config, self.detector, self.model, self.log = config, detector, model, log
        self.run_id, self.origin = run_id, origin
        self.tracker = FaceTracker(
            config.tracking.iou_threshold, config.tracking.max_center_shift, config.tracking.forget_after_s
        )
        self.scheduler = DetectionScheduler(detector, self.tracker, config.detector.interval)
        self.groups = AgeGroups(config.stats.age_groups)
        self.ages: dict[int, CustomerAge] = {}
        self.timer = StageTimer()
        self.counters = Counters()
        self.age_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="age-model")
        self.age_worker.submit(model.warm_up)  # on the batches' own thread; a failure recurs on the first batch
        self.pending: PendingBatch | None = None
        self.bad_samples = BadSampleLog()
        self.last_inference_s: float | None = None

    def process(self, frame: Frame) -> FrameResult:
        self.counters.frames += 1
        self.timer.add_ms("decode", frame.decode_ms)
        if (image := as_bgr(frame.image)) is not frame.image:  # a grey or BGRA camera format
            frame = replace(frame, image=image)
        with self.timer.measure("detect"):
            faces = self.scheduler.faces(frame.image, frame.t)
        self.counters.faces += len(faces)
        with self.timer.measure("track"):
            seen, ended = self.tracker.update(faces, frame.t)
        self.last_inference_s = None
        updated = self._apply_pending()
        self._submit_samples(frame, seen)
        with self.timer.measure("log"):
            self._save(updated, ended)
        return FrameResult(
            frame.t,
            frame.image,
            [SeenFace(track.track_id, track.face, self._estimate(track.track_id)) for track in seen],
            [track.track_id for track in ended],
            self.last_inference_s,
        )

    def _estimate(self, track_id: int) -> AgeEstimate | None:
        customer = self.ages.get(track_id)
        return customer.estimate if customer else None

    def finish(self) -> None:
        """Apply the samples in flight, then end all open tracks: their customers are final and counted."""
        try:
            updated = self._apply_pending()
            with self.timer.measure("log"):
                self._save(updated, self.tracker.end_all())
        finally:
            self.age_worker.shutdown(wait=True)

    def _submit_samples(self, frame: Frame, seen: list[Track]) -> None:
        """Crop every track that still wants samples and start one age-model batch for all of them."""
        wanting = [track for track in seen if self._customer(track).wants_sample(frame.t)]
        if not wanting:
            return
        with self.timer.measure("crop"):
            crops = [crop_face(frame.image, track.face, self.model.info.crop) for track in wanting]
            qualities = [face_quality(track.face, crop) for track, crop in zip(wanting, crops, strict=True)]
        self.pending = PendingBatch(wanting, qualities, frame.t, self.age_worker.submit(self._predict, crops))
        self.counters.age_inferences += len(crops)
        self.counters.batches += 1
        self.counters.largest_batch = max(self.counters.largest_batch, len(crops))

    def _predict(self, crops: list[np.ndarray]) -> tuple[AgeSamples, float]:
        start = time.perf_counter()
        samples = self.model.samples(crops)
        return samples, time.perf_counter() - start

    def _apply_pending(self) -> list[Track]:
        """Wait for the batch in flight and add its good samples to the customers; drop and count the bad."""
        if self.pending is None:
            return []
        batch, self.pending = self.pending, None
        with self.timer.measure("age_wait"):
            samples, seconds = batch.result.result()
        self.timer.add_ms("age", 1000 * seconds)
        bad = int((~samples.valid).sum())
        if bad:
            self.counters.bad_age_samples += bad
            self.bad_samples.note(bad, samples.problem)
        p_unders = self._p_unders(samples)
        rows = zip(batch.tracks, samples.ages, samples.stds, samples.valid, batch.qualities, p_unders, strict=True)
        self.last_inference_s = seconds
        return [
            track
            for track, age, std, good, quality, p_under in rows
            if good and self._customer(track).add(float(age), float(std), quality, batch.t, p_under)
        ]

    def _p_unders(self, samples: AgeSamples) -> list[float | None]:
        """Each sample's P(age < the policy threshold) from its calibrated age_probs (None without them)."""
        if samples.probs is None:
            return [None] * len(samples.ages)
        below = probability_below(samples.probs, self.model.info.age_min, self.config.policy.threshold)
        return [float(p) if good else None for p, good in zip(below, samples.valid, strict=True)]

    def _customer(self, track: Track) -> CustomerAge:
        if track.track_id not in self.ages:
            self.ages[track.track_id] = CustomerAge(self.config.customer, self.config.policy.threshold)
        return self.ages[track.track_id]

    def _record(self, track: Track, ended: bool) -> CustomerRecord | None:
        customer = self.ages.pop(track.track_id, None) if ended else self.ages.get(track.track_id)
        if customer is None or customer.estimate is None:
            return None
        counted = customer.estimate.samples >= self.config.stats.min_samples
        if counted:
            self.counters.customers.add(track.track_id)
        return CustomerRecord(
            track.track_id,
            self.origin + track.first_seen,
            self.origin + track.last_seen,
            customer.estimate,
            self.groups.label(customer.estimate.age),
            counted,
            ended,
        )

    def _save(self, updated: list[Track], ended: list[Track]) -> None:
        ending = {track.track_id for track in ended}
        records = [self._record(track, False) for track in updated if track.track_id not in ending]
        records += [self._record(track, True) for track in ended]
        self.log.save_customers(self.run_id, [record for record in records if record is not None])
