"""A variable-frame-rate recording (a camera that lowers its rate on a quiet scene) replayed with a POS script
timed by the recording's clock: frames are timed by their own stamps, not by their index over the average rate.
Real clip, real YuNet, real ONNX Runtime, real SQLite; the file is OpenCV's with its frame durations rewritten."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.config import SourceConfig
from edge.vision.source import FrameGrabber, SourceSpec

from vfr_video import glitch_stamp, write_vfr

EMPTY_FRAMES, EMPTY_STRETCH = 30, 12  # 30 frames of an empty till, 0.96 s apart: 28.8 s before anyone comes


GLITCH_FRAME, GLITCH_S = 5, 600.0  # an empty-till frame (4.8 s) whose pts says 604.8 s


def _record(assets: Path, path: Path) -> Path:
    """28.8 s of an empty till at about 1 fps, then the demo clip's three customers at 12.5 fps (3.3 s)."""
    capture = cv2.VideoCapture(str(assets / "videos" / "face-demographics-walking-and-pause.mp4"))
    frames = []
    while (read := capture.read())[0]:
        frames.append(read[1])
    empty = [np.full_like(frames[0], 90)] * EMPTY_FRAMES
    return write_vfr(path, [(empty, EMPTY_STRETCH), (frames, 1)])


@pytest.fixture(scope="module")
def recording(assets, tmp_path_factory) -> Path:
    return _record(assets, tmp_path_factory.mktemp("vfr") / "till.mp4")


@pytest.fixture(scope="module")
def glitched(assets, tmp_path_factory) -> Path:
    """The same recording with one frame's time stamp corrupt, far in the future."""
    return glitch_stamp(_record(assets, tmp_path_factory.mktemp("vfr") / "glitch.mp4"), GLITCH_FRAME, GLITCH_S)


def _times(path: Path) -> list[float]:
    grabber = FrameGrabber(SourceSpec("file", str(path)), SourceConfig(queue_size=4), fast=True)
    grabber.start()
    try:
        return [frame.t for frame in grabber]
    finally:
        grabber.close()


def replay_one_sale(agecam, config: Path, video: Path, folder: Path, start: float) -> tuple[list, tuple]:
    """Replay `video` with one beer sale from `start` (s): the flags raised, and the customers' first and last
    sighting (ISO times from 2026-01-01T00:00:00Z)."""
    script = folder / "pos.jsonl"
    events = [
        {"t": start, "type": "transaction_start", "transaction_id": "V1"},
        {"t": start + 0.5, "type": "item_scanned", "sku": "7020", "category": "beer", "transaction_id": "V1"},
        {"t": start + 2.0, "type": "transaction_end", "transaction_id": "V1"},
    ]
    script.write_text("".join(json.dumps({**event, "till_id": "till-1"}) + "\n" for event in events))
    db = folder / "run.db"
    args = ("--start", "2026-01-01T00:00:00+00:00", "--pos", script, "--db", db, "--json")
    result = agecam("--config", config, "replay", video, "--fast", *args)
    assert result.code == 0, result.err
    flags = [(alert["kind"], alert["type"]) for alert in result.json()["pos"]["alerts_and_flags"]]
    with closing(sqlite3.connect(db)) as connection:
        seen = connection.execute("SELECT min(first_seen), max(last_seen) FROM customers").fetchone()
    return flags, seen


def test_a_sale_to_the_empty_till_is_flagged_no_face(agecam, write_config, recording, tmp_path):
    # Timed by frame index over the average rate (2.2 fps), the customers seemed to be at the till from 13.6 s:
    # this sale to nobody went to one of them, and no flag was raised.
    flags, first_seen = replay_one_sale(agecam, write_config(), recording, tmp_path, 15.0)
    assert flags == [("flag", "no_face")]
    assert first_seen >= ("2026-01-01T00:00:28", "2026-01-01T00:00:31")  # the recording's own times


def test_a_looping_recording_keeps_time_running_forward(recording):
    grabber = FrameGrabber(SourceSpec("file", str(recording), loop=True), SourceConfig(queue_size=4), fast=True)
    grabber.start()
    try:
        times = [frame.t for _, frame in zip(range(160), grabber, strict=False)]
    finally:
        grabber.close()
    steps = np.diff(times)
    assert steps.min() > 0  # a tracker or the policy never sees time going back at the loop
    assert steps.max() == pytest.approx(EMPTY_STRETCH / 12.5, abs=0.01)  # 0.96 s: the empty till's own rate
    assert times[71] == pytest.approx(times[70] + 1 / grabber.fps)  # the second pass follows the first


def test_one_corrupt_stamp_does_not_shift_the_frames_after_it(recording, glitched):
    """A frame stamped 600 s late used to time every later frame after it (each one period on), so the rest of
    the replay ran 10 minutes late. It is timed between its neighbours; the genuine 0.96 s gaps are kept."""
    clean, times = _times(recording), _times(glitched)
    assert len(times) == len(clean)
    assert clean[GLITCH_FRAME - 1] < times[GLITCH_FRAME] < clean[GLITCH_FRAME + 1]
    del clean[GLITCH_FRAME], times[GLITCH_FRAME]
    assert times == pytest.approx(clean, abs=1e-6)
    assert times[EMPTY_FRAMES - 1] == pytest.approx(28.8, abs=0.01)  # the first customer frame: slow stretch kept


def test_a_sale_after_a_corrupt_stamp_goes_to_the_customer_at_the_till(agecam, write_config, glitched, tmp_path):
    # With every frame after the glitch at 600 s and later, this sale at 30 s was handled at the glitched frame,
    # on an empty till: flagged no_face while the customer stood there.
    flags, seen = replay_one_sale(agecam, write_config(), glitched, tmp_path, 29.5)
    assert ("flag", "no_face") not in flags, flags
    assert seen[0] >= "2026-01-01T00:00:28" and seen[1] < "2026-01-01T00:00:33", seen
