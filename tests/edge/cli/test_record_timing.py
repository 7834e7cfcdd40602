"""`agecam record` of a real MJPEG stream over HTTP whose frame rate is not the one OpenCV reports: the file plays
at the speed the camera saw, so a POS script timed by the recording's clock meets its customers in a replay."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mjpeg_stream import mjpeg_stream

STREAM_FPS, SECONDS = 5.0, 4.0


def frames_of(path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    images = []
    while (read := capture.read())[0]:
        images.append(read[1].astype(np.float32))
    return images


def test_a_slow_stream_records_at_its_real_speed(agecam, write_config, assets, tmp_path):
    clip = assets / "videos" / "face-demographics-walking-and-pause.mp4"
    out = tmp_path / "till.mp4"
    with mjpeg_stream(clip, STREAM_FPS) as url:
        result = agecam("--config", write_config(), "record", url, out, "--seconds", str(SECONDS))
    assert result.code == 0, result.err
    fps = cv2.VideoCapture(str(out)).get(cv2.CAP_PROP_FPS)
    recorded, sent = frames_of(out), frames_of(clip)
    # Written one frame a frame at the 25 fps OpenCV reports, 4 s of a 5 fps camera made a 0.8 s file.
    assert len(recorded) / fps == pytest.approx(SECONDS, abs=0.5)
    for seconds in (1.0, 2.0, 3.0):  # the camera frame shown at that time of the file is the one sent then
        image = recorded[int(seconds * fps)]
        nearest = min(range(len(sent)), key=lambda index: float(np.abs(sent[index] - image).mean()))
        assert nearest == pytest.approx(seconds * STREAM_FPS, abs=2)
