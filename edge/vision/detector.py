"""Face detection with OpenCV's YuNet (cv2.FaceDetectorYN)."""

from __future__ import annotations

from pathlib import Path

import cv2
import cv2.utils.logging
import numpy as np

from edge.assets import DETECTOR_ASSET, verified_path
from edge.config import Config
from edge.errors import AssetError, DetectorError
from edge.vision.faces import Face
from edge.vision.files import not_a_file

# OpenCV's DNN engine warns about unsupported targets on every load; keep the journal clean.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


MAX_ASPECT = 4  # the detection input is at most this many detection widths high


def open_yunet(
    model_path: Path,
    input_size: tuple[int, int],
    score_threshold: float,
    nms_threshold: float,
    remedy: str = "run 'agecam assets fetch' to replace it",
) -> cv2.FaceDetectorYN:
    """A YuNet instance for one input size, or a DetectorError naming the file and `remedy`."""
    if problem := not_a_file(model_path):
        raise DetectorError(f"face detector {model_path} {problem}: {remedy}")
    try:
        return cv2.FaceDetectorYN.create(str(model_path), "", input_size, score_threshold, nms_threshold, 5000)
    except cv2.error:
        raise DetectorError(f"face detector {model_path} is not a readable YuNet ONNX model: {remedy}") from None


def faces_from_rows(rows: np.ndarray | None, scale: float, offset: tuple[float, float] = (0.0, 0.0)) -> list[Face]:
    """YuNet's result rows as Faces in frame pixels: divided by the input's scale, then shifted by offset."""
    if rows is None:
        return []
    # YuNet gives infinite boxes for NaN pixels; one would crash the region arithmetic (math.ceil) later.
    rows = rows[np.isfinite(rows).all(axis=1)]
    shift = np.array(offset, dtype=np.float32)
    return [
        Face(
            box=np.concatenate([row[:2] / scale + shift, row[2:4] / scale]),
            landmarks=row[4:14].reshape(5, 2) / scale + shift,
            score=float(row[14]),
        )
        for row in rows
    ]


class FaceDetector:
    """YuNet at a fixed detection width: frames are resized to it, results scaled back."""

    def __init__(
        self,
        model_path: Path,
        detection_width: int = 640,
        score_threshold: float = 0.7,
        nms_threshold: float = 0.3,
        min_face_px: int = 40,
        remedy: str = "run 'agecam assets fetch' to replace it",
    ) -> None:
        """`remedy` ends the error for a missing or unusable file: what the user should do about it."""
        self._yunet = open_yunet(model_path, (detection_width, detection_width), score_threshold, nms_threshold, remedy)
        self.model_path, self.score_threshold, self.nms_threshold = model_path, score_threshold, nms_threshold
        self.detection_width = detection_width
        self.min_face_px = min_face_px
        self._input_size: tuple[int, int] | None = None
        try:
            self.detect(np.zeros((120, 160, 3), np.uint8), 160)  # another ONNX file loads, then fails here
        except cv2.error:
            raise DetectorError(f"face detector {model_path} is not a readable YuNet ONNX model: {remedy}") from None

    def detect(self, frame: np.ndarray, detection_width: int | None = None) -> list[Face]:
        """All faces in a BGR frame at least min_face_px large, highest score first.
        detection_width overrides the configured width for this call."""
        height, width = frame.shape[:2]
        target = detection_width or self.detection_width
        # A tall, thin frame (a glitching stream) scaled to the width asked YuNet for gigabytes, hence the cap.
        scale = min(target / width, MAX_ASPECT * target / height)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = frame if size == (width, height) else cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        if size != self._input_size:
            self._yunet.setInputSize(size)
            self._input_size = size
        _, rows = self._yunet.detect(small)
        faces = [face for face in faces_from_rows(rows, scale) if face.size >= self.min_face_px]
        return sorted(faces, key=lambda face: face.score, reverse=True)


PORTRAIT_DETECTION_WIDTH = 448  # found 300 of 300 faces in APPA-REAL and UTKFace valid photos


def detect_main_face(
    photo: np.ndarray,
    detector: FaceDetector,
    pad_fraction: float = 0.25,
    detection_width: int = PORTRAIT_DETECTION_WIDTH,
) -> Face | None:
    """The main face of a portrait photo, or None: the largest face, found after padding the photo.

    Dataset photos are often tight face crops, which YuNet misses without context around them, and
    upscaled too far it misses them again, hence the padding and a portrait-sized detection width.
    The padding is removed from the returned coordinates.
    """
    height, width = photo.shape[:2]
    pad_y, pad_x = round(height * pad_fraction), round(width * pad_fraction)
    padded = cv2.copyMakeBorder(photo, pad_y, pad_y, pad_x, pad_x, cv2.BORDER_REPLICATE)
    faces = detector.detect(padded, detection_width)
    if not faces:
        return None
    main = max(faces, key=lambda face: face.size)
    offset = np.array([pad_x, pad_y], dtype=np.float32)
    box = main.box.copy()
    box[:2] -= offset
    return Face(box=box, landmarks=main.landmarks - offset, score=main.score)


def detector_file(config: Config) -> Path:
    """YuNet from detector.model, else from the assets folder (checked against its pinned hash)."""
    if config.detector.model:
        return config.resolve(config.detector.model)
    try:
        return verified_path(DETECTOR_ASSET)
    except AssetError as error:
        raise DetectorError(str(error)) from None


def load_detector(config: Config) -> FaceDetector:
    settings = config.detector
    # The user's own detector.model is theirs to fix; the downloaded asset is replaced by fetching it again.
    remedy = f"fix detector.model in {config.origin}" if settings.model else "run 'agecam assets fetch' to replace it"
    return FaceDetector(
        detector_file(config),
        settings.detection_width,
        settings.score_threshold,
        settings.nms_threshold,
        settings.min_face_px,
        remedy,
    )
