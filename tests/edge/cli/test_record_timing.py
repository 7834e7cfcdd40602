"""`agecam record` of a real MJPEG stream over HTTP whose frame rate is not the one OpenCV reports: the file plays
at the speed the camera saw, so a POS script timed by the recording's clock meets its customers in a replay."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.cli.run import _write_until
from edge.scenario.output import VideoFile

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


def test_a_frame_that_comes_a_little_early_takes_the_next_slot_and_is_not_dropped(tmp_path):
    """Arrival jitter at the file's own rate put a frame on a slot already written, and it was dropped (about one
    frame in a hundred of a real 25 fps stream): it takes the next slot now. Only a camera faster than the file
    (more than a frame ahead of the clock) loses frames, and the newest is held for the next slot."""
    levels = [10 * n for n in range(1, 9)]  # frame n is flat grey at 10n: told apart after mp4 compression
    slots = [0, 1, 1, 3, 3, 3, 7, 8]  # frames 3 and 5 early; frame 6 (the third on slot 3) finds the file ahead
    out = tmp_path / "jitter.mp4"
    with VideoFile(out, 25.0, (64, 48)) as video:
        held = np.full((48, 64, 3), levels[0], np.uint8)
        for level, slot in zip(levels, slots, strict=True):
            held = _write_until(video, held, np.full((48, 64, 3), level, np.uint8), slot)
        video.commit()
    written = [round(float(image.mean()) / 10) for image in frames_of(out)]
    assert written == [1, 2, 3, 4, 5, 6, 6, 7, 8]  # 6 held over slot 6, which frame 7 (slot 7) follows
