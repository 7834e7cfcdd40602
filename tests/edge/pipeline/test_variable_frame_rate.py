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

from vfr_video import write_vfr

EMPTY_FRAMES, EMPTY_STRETCH = 30, 12  # 30 frames of an empty till, 0.96 s apart: 28.8 s before anyone comes


@pytest.fixture(scope="module")
def recording(assets, tmp_path_factory) -> Path:
    """28.8 s of an empty till at about 1 fps, then the demo clip's three customers at 12.5 fps (3.3 s)."""
    capture = cv2.VideoCapture(str(assets / "videos" / "face-demographics-walking-and-pause.mp4"))
    frames = []
    while (read := capture.read())[0]:
        frames.append(read[1])
    empty = [np.full_like(frames[0], 90)] * EMPTY_FRAMES
    return write_vfr(tmp_path_factory.mktemp("vfr") / "till.mp4", [(empty, EMPTY_STRETCH), (frames, 1)])


def test_a_sale_to_the_empty_till_is_flagged_no_face(agecam, write_config, recording, tmp_path):
    # Timed by frame index over the average rate (2.2 fps), the customers seemed to be at the till from 13.6 s:
    # this sale to nobody went to one of them, and no flag was raised.
    script = tmp_path / "pos.jsonl"
    events = [
        {"t": 15.0, "type": "transaction_start", "transaction_id": "V1"},
        {"t": 15.5, "type": "item_scanned", "sku": "7020", "category": "beer", "transaction_id": "V1"},
        {"t": 17.0, "type": "transaction_end", "transaction_id": "V1"},
    ]
    script.write_text("".join(json.dumps({**event, "till_id": "till-1"}) + "\n" for event in events))
    db = tmp_path / "run.db"
    args = ("--start", "2026-01-01T00:00:00+00:00", "--pos", script, "--db", db, "--json")
    result = agecam("--config", write_config(), "replay", recording, "--fast", *args)
    assert result.code == 0, result.err
    flags = [(alert["kind"], alert["type"]) for alert in result.json()["pos"]["alerts_and_flags"]]
    assert flags == [("flag", "no_face")]
    with closing(sqlite3.connect(db)) as connection:
        first_seen = connection.execute("SELECT min(first_seen), max(last_seen) FROM customers").fetchone()
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
