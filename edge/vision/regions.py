"""YuNet on a small region around a predicted face: confirms a track between full-frame detections.

A 160 px square costs a fraction of a 640 px frame, and it still gives YuNet's landmarks, which the
aligned crop and the face quality need (a tracker's predicted box alone has none).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from edge.vision.detector import FaceDetector, faces_from_rows, open_yunet
from edge.vision.faces import Face
from edge.vision.tracker import box_iou

REGION_PX = 160  # YuNet's input side for one region: the face fills about half of it
REGION_FACES = 2.0  # region side in face sizes: room for the prediction to be off by half a face
CONFIRM_IOU = 0.3  # a face found in the region confirms the prediction when their boxes overlap this much


@dataclass(frozen=True)
class Region:
    """A square of the frame, in pixels."""

    left: int
    top: int
    side: int

    @classmethod
    def around(cls, face: Face) -> Region:
        """The square of REGION_FACES face sizes centred on `face`."""
        side = max(8, math.ceil(REGION_FACES * face.size))
        centre_x, centre_y = face.center
        return cls(math.floor(centre_x - side / 2), math.floor(centre_y - side / 2), side)

    def holds(self, face: Face) -> bool:
        """Whether the face's box lies wholly inside (a face cut by the border is a neighbour's part)."""
        x, y, w, h = face.box
        right, bottom = self.left + self.side, self.top + self.side
        return bool(x >= self.left and y >= self.top and x + w <= right and y + h <= bottom)


class RegionDetector:
    """A second YuNet, fixed at REGION_PX square (changing a network's input size costs a re-allocation,
    so the full-frame detector keeps its own), with the full detector's thresholds."""

    def __init__(self, detector: FaceDetector, side_px: int = REGION_PX) -> None:
        thresholds = detector.score_threshold, detector.nms_threshold
        self._yunet = open_yunet(detector.model_path, (side_px, side_px), *thresholds)
        self.side_px = side_px
        self.min_face_px = detector.min_face_px

    def detect(self, image: np.ndarray, region: Region) -> list[Face]:
        """The faces YuNet finds in `region`, in frame pixels."""
        scale = self.side_px / region.side
        patch = cv2.resize(
            square_region(image, region),
            (self.side_px, self.side_px),
            interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
        )
        _, rows = self._yunet.detect(patch)
        faces = faces_from_rows(rows, scale, (region.left, region.top))
        return [face for face in faces if face.size >= self.min_face_px]


def square_region(image: np.ndarray, region: Region) -> np.ndarray:
    """The region's pixels; parts outside the frame are black, as YuNet sees beyond a full frame's border."""
    left, top, side = region.left, region.top, region.side
    height, width = image.shape[:2]
    x0, y0, x1, y1 = max(0, left), max(0, top), min(width, left + side), min(height, top + side)
    if x1 <= x0 or y1 <= y0:
        return np.zeros((side, side, 3), image.dtype)
    inside = image[y0:y1, x0:x1]
    if inside.shape[:2] == (side, side):
        return inside
    return cv2.copyMakeBorder(inside, y0 - top, top + side - y1, x0 - left, left + side - x1, cv2.BORDER_CONSTANT)


def best_match(predicted: Face, faces: list[Face]) -> Face | None:
    """The face overlapping the prediction most, if it overlaps by at least CONFIRM_IOU."""
    scored = [(box_iou(predicted.box, face.box), index) for index, face in enumerate(faces)]
    overlap, index = max(scored, default=(0.0, -1))
    return faces[index] if overlap >= CONFIRM_IOU else None
