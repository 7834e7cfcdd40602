"""A cheap motion check between frames: has anything moved outside the people already tracked?

Between full detections a new face can only come in by moving into view (walking in from a side,
stepping out from behind someone). A frame difference on a small grey copy of the frame finds such
movement for a fraction of a millisecond, so the scheduler (edge.vision.interval) can run the full
detector at once instead of waiting for the interval.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge.vision.faces import Face

MOTION_WIDTH = 80  # px: averaging down to this width smooths sensor noise and video compression artefacts
PIXEL_CHANGE = 15  # grey levels: a pixel of the small frame changed when it moved by more than this
CHANGED_SHARE = 0.005  # share of the unmasked small frame that must change to count as motion
PERSON_HALF_WIDTH = 1.5  # face widths either side of a tracked face's centre that belong to its person
PERSON_ABOVE = 0.5  # face heights above the face (hair, a raised head); the body below reaches the bottom


class MotionGate:
    """Compares each frame with the previous one, ignoring the columns of people already tracked
    (their own head and body movement is not a new face)."""

    def __init__(self, changed_share: float = CHANGED_SHARE) -> None:
        self.changed_share = changed_share
        self._previous: np.ndarray | None = None

    def moved(self, image: np.ndarray, people: list[Face]) -> bool:
        """True when more than `changed_share` of the frame outside `people` changed since the last call
        (and on the first call, when there is nothing to compare with)."""
        grey = self._small_grey(image)
        previous, self._previous = self._previous, grey
        if previous is None or previous.shape != grey.shape:
            return True
        changed = cv2.absdiff(grey, previous) > PIXEL_CHANGE
        outside = person_mask(grey.shape, MOTION_WIDTH / image.shape[1], people)
        watched = int(outside.sum())
        return watched > 0 and int((changed & outside).sum()) > self.changed_share * watched

    @staticmethod
    def _small_grey(image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        size = (MOTION_WIDTH, max(1, round(height * MOTION_WIDTH / width)))
        return cv2.cvtColor(cv2.resize(image, size, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)


def person_mask(shape: tuple[int, ...], scale: float, people: list[Face]) -> np.ndarray:
    """True where no tracked person is: each face's column, from just above it to the frame's bottom,
    is masked out (`scale` maps frame pixels to the small frame's)."""
    outside = np.ones(shape[:2], dtype=bool)
    for face in people:
        centre_x = face.center[0]
        left = max(0, int((centre_x - PERSON_HALF_WIDTH * face.size) * scale))
        right = max(0, int(np.ceil((centre_x + PERSON_HALF_WIDTH * face.size) * scale)))
        top = max(0, int((face.box[1] - PERSON_ABOVE * face.size) * scale))
        outside[top:, left:right] = False
    return outside
