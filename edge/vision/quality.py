"""Face quality: how much one age sample from this face should count, in [0, 1]."""

from __future__ import annotations

import cv2
import numpy as np

from edge.vision.faces import Face

GOOD_FACE_PX = 80.0  # faces this large or larger carry full detail
SHARP_LAPLACIAN_VAR = 60.0  # Laplacian variance of a 64 px face crop at which blur stops mattering
MAX_YAW = 0.6  # nose offset from the eye midpoint, in inter-eye distances, where a face counts as profile


def size_score(face: Face) -> float:
    return float(min(1.0, face.size / GOOD_FACE_PX))


def sharpness_score(crop: np.ndarray) -> float:
    """Blur measured at a fixed scale, so it reflects the face's own detail, not the crop size."""
    gray = cv2.cvtColor(cv2.resize(crop, (64, 64), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)
    variance = float(cv2.Laplacian(gray, cv2.CV_32F).var())
    return min(1.0, variance / SHARP_LAPLACIAN_VAR)


def frontal_score(face: Face) -> float:
    """1 for a face looking at the camera, falling to 0 as the head turns to profile (from landmarks)."""
    right_eye, left_eye, nose = face.landmarks[0], face.landmarks[1], face.landmarks[2]
    eye_distance = float(np.linalg.norm(left_eye - right_eye))
    if eye_distance < 1e-3:
        return 0.0
    yaw = abs(float(nose[0] - (right_eye[0] + left_eye[0]) / 2)) / eye_distance
    return float(max(0.0, 1.0 - yaw / MAX_YAW))


def face_quality(face: Face, crop: np.ndarray) -> float:
    """The product of size, sharpness and frontalness scores: any one poor aspect makes a poor sample."""
    return size_score(face) * sharpness_score(crop) * frontal_score(face)
