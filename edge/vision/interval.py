"""Detect on an interval, track in between (`detector.interval`).

Full-frame YuNet is most of a frame's cost on a small CPU. With an interval N it runs on every Nth
frame, and at once when it is needed:
- a track is lost: a tracked face was not confirmed in its region (then on this very frame);
- a new face could have come in: motion outside the tracked people (edge.vision.motion);
- a track is near the left or right edge, where people walk in and out of view (and where its person's
  column would hide an entrance from the motion check).
On the other frames each track seen on the previous frame is predicted at constant velocity and
confirmed by YuNet on a small region around the prediction (edge.vision.regions), which finds the
face with its landmarks. A track not confirmed is not seen on that frame, so it gets no age sample.
With N = 1 every frame is a full detection, exactly as without the scheduler.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from edge.vision.detector import FaceDetector
from edge.vision.faces import Face
from edge.vision.motion import MotionGate
from edge.vision.regions import Region, RegionDetector, best_match
from edge.vision.tracker import FaceTracker, box_iou

EDGE_MARGIN = 0.5  # face sizes between a face and the left or right border under which it is near the edge
DUPLICATE_IOU = 0.5  # two confirmations this alike found the same face


class DetectionScheduler:
    """The faces of each frame, from a full detection or from the tracks' regions (see the module doc).
    Call `faces` once per frame, before the tracker's update with the same `t`."""

    def __init__(
        self,
        detector: FaceDetector,
        tracker: FaceTracker,
        interval: int = 1,
        regions: RegionDetector | None = None,
        motion: MotionGate | None = None,
    ) -> None:
        self.detector, self.tracker, self.interval = detector, tracker, interval
        self.regions = regions or (RegionDetector(detector) if interval > 1 else None)
        self.motion = motion or MotionGate()
        self.full_detections = 0
        self.confirmed_frames = 0
        self.reasons: Counter[str] = Counter()
        self._since_full = interval - 1  # the first frame is due for a full detection
        self._last_t: float | None = None
        self._shape: tuple[int, ...] | None = None  # the last frame's height and width

    def faces(self, image: np.ndarray, t: float) -> list[Face]:
        """This frame's faces, highest score first for a full detection, one per confirmed track otherwise."""
        self._follow_size(image.shape)
        if self.interval == 1:
            return self._full(image, "interval")
        active = [track for track in self.tracker.tracks.values() if track.last_seen == self._last_t]
        self._last_t = t
        predictions = [track.predict(t) for track in active]
        moved = self.motion.moved(image, predictions)  # every frame, so the previous frame stays the last one
        reason = self._full_reason(image.shape, predictions, moved)
        if reason is None:
            confirmed = self._confirm(image, predictions)
            if confirmed is not None:
                self._since_full += 1
                self.confirmed_frames += 1
                return confirmed
            reason = "lost"
        return self._full(image, reason)

    def _follow_size(self, shape: tuple[int, ...]) -> None:
        """A source reopened at another resolution: rescale the tracks, or each person became a new track
        (a second customer) while the old one waited to be forgotten at coordinates of the old size."""
        previous, self._shape = self._shape, shape[:2]
        if previous is not None and previous != self._shape:
            self.tracker.rescale(shape[1] / previous[1], shape[0] / previous[0])

    def _full_reason(self, shape: tuple[int, ...], predictions: list[Face], moved: bool) -> str | None:
        if self._since_full + 1 >= self.interval:
            return "interval"
        if moved:
            return "motion"
        if self._crowded(shape, predictions):
            return "crowd"
        if any(near_edge(face, shape) for face in predictions):
            return "edge"
        return None

    def _crowded(self, shape: tuple[int, ...], predictions: list[Face]) -> bool:
        """More region pixels than the full detection's: with 27 faces the regions took twice as long."""
        assert self.regions is not None
        width = self.detector.detection_width
        full_px = width * width * shape[0] / max(shape[1], 1)
        return len(predictions) * self.regions.side_px**2 >= full_px

    def _full(self, image: np.ndarray, reason: str) -> list[Face]:
        self.full_detections += 1
        self.reasons[reason] += 1
        self._since_full = 0
        return self.detector.detect(image)

    def _confirm(self, image: np.ndarray, predictions: list[Face]) -> list[Face] | None:
        """One face per prediction from its region, or None when a track is lost or a stranger's face
        shows up in a region (a full detection sorts both out)."""
        assert self.regions is not None
        confirmed: list[Face] = []
        for predicted in predictions:
            region = Region.around(predicted)
            found = self.regions.detect(image, region)
            match = best_match(predicted, found)
            if match is None or any(box_iou(match.box, face.box) > DUPLICATE_IOU for face in confirmed):
                return None
            if any(is_stranger(face, predictions) for face in found if face is not match and region.holds(face)):
                return None
            confirmed.append(match)
        return confirmed


def is_stranger(face: Face, predictions: list[Face]) -> bool:
    """A whole face in a region that no track predicts: someone new, or a track gone astray."""
    return all(best_match(predicted, [face]) is None for predicted in predictions)


def near_edge(face: Face, shape: tuple[int, ...]) -> bool:
    """Within EDGE_MARGIN face sizes of the left or right border, where people walk in and out of view:
    a face there may be cut off, and its person's column hides that entrance from the motion check."""
    width = shape[1]
    x, _, w, _ = face.box
    margin = EDGE_MARGIN * face.size
    return bool(x < margin or x + w > width - margin)
