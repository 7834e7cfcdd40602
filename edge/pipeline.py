"""One frame through the till pipeline: detect, track, crop, estimate age, update customers, log."""

from __future__ import annotations

from dataclasses import dataclass, field

from edge.age_groups import AgeGroups
from edge.age_model import AgeModel
from edge.config import Config
from edge.customer import CustomerAge
from edge.detector import FaceDetector
from edge.eventlog import CustomerRecord, EventLog
from edge.face_crop import crop_face
from edge.quality import face_quality
from edge.source import Frame
from edge.stage_timer import StageTimer
from edge.tracker import FaceTracker, Track


@dataclass
class Counters:
    frames: int = 0
    faces: int = 0
    age_inferences: int = 0
    batches: int = 0
    largest_batch: int = 0
    customers: set[int] = field(default_factory=set)


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
        self.groups = AgeGroups(config.stats.age_groups)
        self.ages: dict[int, CustomerAge] = {}
        self.timer = StageTimer()
        self.counters = Counters()

    def process(self, frame: Frame) -> None:
        self.counters.frames += 1
        self.timer.add_ms("decode", frame.decode_ms)
        with self.timer.measure("detect"):
            faces = self.detector.detect(frame.image)
        self.counters.faces += len(faces)
        with self.timer.measure("track"):
            seen, ended = self.tracker.update(faces, frame.t)
        updated = self._sample_ages(frame, seen)
        with self.timer.measure("log"):
            self._save(updated, ended)

    def finish(self) -> None:
        """End all open tracks: their customers are final and counted."""
        with self.timer.measure("log"):
            self._save([], self.tracker.end_all())

    def _sample_ages(self, frame: Frame, seen: list[Track]) -> list[Track]:
        """Crop every track that still wants samples, and run the age model once on the whole batch."""
        wanting = [track for track in seen if self._customer(track).wants_sample(frame.t)]
        if not wanting:
            return []
        with self.timer.measure("crop"):
            crops = [crop_face(frame.image, track.face, self.model.info.crop) for track in wanting]
            qualities = [face_quality(track.face, crop) for track, crop in zip(wanting, crops, strict=True)]
        with self.timer.measure("age"):
            ages, stds = self.model.predict(crops)
        self.counters.age_inferences += len(crops)
        self.counters.batches += 1
        self.counters.largest_batch = max(self.counters.largest_batch, len(crops))
        return [
            track
            for track, age, std, quality in zip(wanting, ages, stds, qualities, strict=True)
            if self._customer(track).add(float(age), float(std), quality, frame.t)
        ]

    def _customer(self, track: Track) -> CustomerAge:
        if track.track_id not in self.ages:
            self.ages[track.track_id] = CustomerAge(self.config.customer)
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
        records = [self._record(track, False) for track in updated]
        records += [self._record(track, True) for track in ended]
        self.log.save_customers(self.run_id, [record for record in records if record is not None])
