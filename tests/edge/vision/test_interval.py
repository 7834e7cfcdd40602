"""Detect on an interval, track in between: the real YuNet on the real clips and on frames edited to make
a face vanish, appear or sit at the edge. No timing is asserted; which frames ran a full detection is."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.vision.detector import FaceDetector
from edge.vision.faces import Face
from edge.vision.interval import DetectionScheduler
from edge.vision.motion import MotionGate
from edge.vision.regions import Region, RegionDetector, best_match, square_region
from edge.vision.tracker import FaceTracker, Track

from clips import CLIPS, clip

FPS = 12.5


@pytest.fixture(scope="module")
def detector(detector_path):
    return FaceDetector(detector_path, min_face_px=16)


def read_clip(path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, image = capture.read()
        if not ok:
            return frames
        frames.append(image)


@pytest.fixture(scope="module")
def frame(assets):
    """Frame 20 of the three-person clip: faces at x 58-110, 200-255 and 346-400 (480 x 270)."""
    return read_clip(clip(assets, "face-demographics-walking-and-pause"))[20]


def replay(scheduler: DetectionScheduler, frames: list[np.ndarray]) -> list[list[Track]]:
    """The tracks seen on each frame."""
    seen_per_frame = []
    for index, image in enumerate(frames):
        t = index / FPS
        seen, _ = scheduler.tracker.update(scheduler.faces(image, t), t)
        seen_per_frame.append(seen)
    return seen_per_frame


@pytest.mark.parametrize("interval", [2, 4])
@pytest.mark.parametrize("name", list(CLIPS))
def test_every_person_keeps_one_id_and_is_confirmed_on_every_frame(assets, detector, name, interval):
    frames = read_clip(clip(assets, name))
    scheduler = DetectionScheduler(detector, FaceTracker(), interval)
    seen_per_frame = replay(scheduler, frames)
    assert all(sorted(t.track_id for t in seen) == list(range(1, CLIPS[name] + 1)) for seen in seen_per_frame)
    assert scheduler.full_detections + scheduler.confirmed_frames == len(frames)
    assert len(frames) / interval <= scheduler.full_detections < len(frames)


def test_interval_one_is_the_full_detector_on_every_frame(assets, detector):
    frames = read_clip(clip(assets, "face-demographics-walking"))[:10]
    scheduler = DetectionScheduler(detector, FaceTracker(), 1)
    for index, image in enumerate(frames):
        faces, expected = scheduler.faces(image, index / FPS), detector.detect(image)
        assert [f.box.tolist() for f in faces] == [f.box.tolist() for f in expected]
    assert scheduler.full_detections == 10 and scheduler.regions is None


def test_a_region_finds_the_face_with_its_landmarks(detector, frame):
    regions = RegionDetector(detector)
    for face in detector.detect(frame):
        found = best_match(face, regions.detect(frame, Region.around(face)))
        assert found is not None
        assert np.abs(found.box - face.box).max() < 0.15 * face.size
        assert np.abs(found.landmarks - face.landmarks).max() < 0.15 * face.size


def test_a_region_without_a_face_confirms_nothing(detector, frame):
    face = detector.detect(frame)[0]
    shirt = Face(face.box + np.array([0, 150, 0, 0], np.float32), face.landmarks, face.score)  # under the face
    assert RegionDetector(detector).detect(frame, Region.around(shirt)) == []


def test_a_region_over_the_border_is_padded_black(frame):
    patch = square_region(frame, Region(-10, 250, 40))  # 10 px beyond the left, 20 px below the bottom
    assert patch.shape == (40, 40, 3)
    assert not patch[:, :10].any() and not patch[20:].any()
    np.testing.assert_array_equal(patch[:20, 10:], frame[250:270, 0:30])


def blank(image: np.ndarray, x0: int, x1: int, y0: int = 0, y1: int | None = None) -> np.ndarray:
    """The image with a rectangle painted over in the wall's grey."""
    edited = image.copy()
    edited[y0:y1, x0:x1] = (180, 180, 180)
    return edited


def test_a_lost_track_gets_a_full_detection_on_that_frame_and_no_sample(detector, frame):
    scheduler = DetectionScheduler(detector, FaceTracker(), 4)
    faces = detector.detect(frame)
    x, y, w, h = max(faces, key=lambda f: f.center[0]).box.astype(int)  # the right-hand face
    without = blank(frame, x, x + w, y, y + h)
    seen = replay(scheduler, [frame, frame, without])
    assert [len(s) for s in seen] == [3, 3, 2]
    assert 3 not in {t.track_id for t in seen[2]}, "the hidden face's track is not seen, so not sampled"
    assert scheduler.reasons == {"interval": 1, "lost": 1} and scheduler.confirmed_frames == 1


def test_a_face_walking_in_gets_a_full_detection_at_once(detector, frame):
    scheduler = DetectionScheduler(detector, FaceTracker(), 4)
    empty_right = blank(frame, 330, 480)
    seen = replay(scheduler, [empty_right, empty_right, frame])
    assert [len(s) for s in seen] == [2, 2, 3]
    assert scheduler.reasons == {"interval": 1, "motion": 1}


def test_a_face_at_the_edge_gets_full_detections(detector, frame):
    scheduler = DetectionScheduler(detector, FaceTracker(), 4)
    cut = np.ascontiguousarray(frame[:, 50:])  # the left face now starts 8 px from the border
    replay(scheduler, [cut, cut, cut])
    assert scheduler.reasons == {"interval": 1, "edge": 2}


def test_motion_gate_ignores_noise_and_tracked_people_but_not_a_newcomer(detector, frame):
    gate, faces = MotionGate(), detector.detect(frame)
    rng = np.random.default_rng(0)
    noisy = np.clip(frame + rng.normal(0, 4, frame.shape), 0, 255).astype(np.uint8)
    assert gate.moved(frame, faces), "nothing to compare with on the first frame"
    assert not gate.moved(noisy, faces)
    x, y, w, h = faces[0].box.astype(int)
    assert not gate.moved(blank(noisy, x, x + w, y, y + h), faces), "a tracked person moving is not news"
    assert gate.moved(blank(noisy, 420, 480, 0, 120), faces[:2]), "something in an untracked part is"


def test_a_track_is_predicted_at_constant_velocity():
    def face(x: float) -> Face:
        return Face(np.array([x, 50, 40, 40], np.float32), np.full((5, 2), x, np.float32), 0.9)

    track = Track(1, face(100), 0.0, 0.0)
    track.see(face(110), 0.1)
    track.see(face(120), 0.2)
    assert track.velocity == pytest.approx((100.0, 0.0))
    predicted = track.predict(0.3)
    assert predicted.box.tolist() == pytest.approx([130, 50, 40, 40])
    assert predicted.landmarks[0].tolist() == pytest.approx([130, 120])
