"""The one face type of the till (`Face`, a detected face), and the face crop shared by the till and the
trainer, so the model trains on what it will see.

This is a stable API: `train/` imports `crop_face` and `DEFAULT_CROP`, and every age model records
the crop parameters it was trained with in its metadata (docs/model-contract.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Face:
    """One detected face, in the pixel coordinates of the frame it was found in.

    box: x, y, width, height. landmarks: 5 (x, y) points in YuNet's order: right eye,
    left eye (the subject's), nose tip, right mouth corner, left mouth corner.
    """

    box: np.ndarray
    landmarks: np.ndarray
    score: float

    @property
    def center(self) -> tuple[float, float]:
        x, y, w, h = self.box
        return float(x + w / 2), float(y + h / 2)

    @property
    def size(self) -> float:
        """The face's side in pixels (the larger of box width and height)."""
        return float(max(self.box[2], self.box[3]))


@dataclass(frozen=True)
class CropSpec:
    """size: output side in pixels. margin: context added on each side, as a fraction of the face side."""

    size: int = 224
    margin: float = 0.3


DEFAULT_CROP = CropSpec()


def eye_angle_degrees(landmarks: np.ndarray) -> float:
    """The in-plane tilt of the face: the angle of the line from the right eye to the left eye."""
    (rx, ry), (lx, ly) = landmarks[0], landmarks[1]
    return math.degrees(math.atan2(ly - ry, lx - rx))


def alignment_matrix(face: Face, spec: CropSpec = DEFAULT_CROP) -> np.ndarray:
    """The 2x3 affine map from frame pixels to crop pixels: level eyes, face centred and scaled."""
    cx, cy = face.center
    side = face.size * (1 + 2 * spec.margin)
    matrix = cv2.getRotationMatrix2D((cx, cy), eye_angle_degrees(face.landmarks), spec.size / side)
    matrix[0, 2] += spec.size / 2 - cx
    matrix[1, 2] += spec.size / 2 - cy
    return matrix


def crop_face(image: np.ndarray, face: Face, spec: CropSpec = DEFAULT_CROP) -> np.ndarray:
    """An aligned square uint8 BGR crop of `face` from the BGR `image`, spec.size pixels a side.

    The eyes are levelled using YuNet's landmarks; the square covers the face box plus spec.margin
    of its side on every side. Parts outside the image repeat the border pixels.
    """
    matrix = alignment_matrix(face, spec)
    return cv2.warpAffine(
        image, matrix, (spec.size, spec.size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
