"""Capture: paced replays drop like a camera, fast replays never drop, lost live sources reconnect,
record writes a replayable file, and the schema refuses a database from a newer agecam."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
import threading
import time

import cv2
import pytest

from edge.config import SourceConfig
from edge.errors import SourceError, StateError
from edge.store.eventlog import EventLog
from edge.store.schema import SCHEMA_VERSION
from edge.vision import source
from edge.vision.source import FrameGrabber, SourceSpec, parse_source

from clips import clip


@pytest.mark.parametrize(
    ("uri", "kind", "live"),
    [
        ("0", "camera", True),
        ("/dev/video2", "camera", True),
        ("rtsp://10.0.0.5/stream", "stream", True),
        ("HTTP://cam.local/mjpeg", "stream", True),
        ("clips/till.mp4", "file", False),
    ],
)
def test_source_kinds(uri, kind, live):
    spec = parse_source(uri)
    assert (spec.kind, spec.live) == (kind, live)


def _consume_slowly(assets, fast: bool, seconds_per_frame: float) -> tuple[FrameGrabber, list[int]]:
    """Replay the walking clip through a 2-frame queue to a consumer taking seconds_per_frame per frame."""
    grabber = FrameGrabber(
        SourceSpec("file", str(clip(assets, "face-demographics-walking"))), SourceConfig(queue_size=2), fast=fast
    )
    grabber.start()
    indexes = []
    for frame in grabber:
        time.sleep(seconds_per_frame)
        indexes.append(frame.index)
    return grabber, indexes


def test_fast_replay_delivers_every_frame_to_a_slow_consumer(assets):
    grabber, indexes = _consume_slowly(assets, fast=True, seconds_per_frame=0.005)
    assert indexes == list(range(35)) and grabber.dropped == 0


def test_paced_replay_drops_oldest_frames_when_the_consumer_is_behind(assets):
    grabber, indexes = _consume_slowly(assets, fast=False, seconds_per_frame=0.25)  # slower than 12.5 fps
    assert grabber.dropped > 10
    assert len(indexes) + grabber.dropped == 35
    assert indexes == sorted(indexes) and indexes[-1] == 34, "the newest frames are kept"


def test_lost_live_source_is_reopened_and_frames_keep_coming(assets):
    # A file opened as a stream: its end looks like a lost camera, and reopening it works.
    spec = SourceSpec("stream", str(clip(assets, "face-demographics-walking")))
    grabber = FrameGrabber(spec, SourceConfig(queue_size=64, reconnect_initial_s=0.05))
    grabber.start()
    count = 0
    for _ in grabber:
        count += 1
        if count == 80:
            grabber.stop()
    assert grabber.reconnects >= 2 and count >= 80


def test_source_that_stays_away_is_retried_with_backoff_until_stopped(tmp_path, assets):
    video = tmp_path / "cam.gif"
    video.write_bytes(clip(assets, "face-demographics-walking").read_bytes())
    grabber = FrameGrabber(
        SourceSpec("stream", str(video)), SourceConfig(queue_size=64, reconnect_initial_s=0.05, reconnect_max_s=0.2)
    )
    video.unlink()  # the camera is unplugged after it was opened
    grabber.start()
    time.sleep(1.0)
    assert grabber.state == "reconnecting" and grabber.reconnects >= 3
    threading.Timer(0.1, grabber.stop).start()
    frames = sum(1 for _ in grabber)
    assert frames == 35 and grabber.state == "stopped"


_EXIT_RIGHT_AFTER_CLOSE = """
import sys
from edge.config import SourceConfig
from edge.vision.source import FrameGrabber, SourceSpec
grabber = FrameGrabber(SourceSpec("file", sys.argv[1], loop=True), SourceConfig(queue_size=2), fast=True)
grabber.start()
for _, frame in zip(range(5), grabber):
    pass
grabber.close()
assert not grabber.is_alive() and grabber.state == "stopped" and not grabber.capture.isOpened()
"""


def test_close_joins_the_capture_thread_so_the_process_exits_cleanly(assets):
    # A capture thread still inside OpenCV while Python exits aborts the process (SIGABRT); with
    # stop() alone this script aborted 15 times in 15.
    video = clip(assets, "face-demographics-walking")
    for _ in range(3):
        done = subprocess.run(
            [sys.executable, "-c", _EXIT_RIGHT_AFTER_CLOSE, str(video)], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr


def test_close_before_start_releases_the_capture(assets):
    grabber = FrameGrabber(SourceSpec("file", str(clip(assets, "face-demographics-walking"))), SourceConfig())
    grabber.close()
    assert not grabber.capture.isOpened()


def test_a_stream_that_never_answers_fails_within_the_stream_timeout(monkeypatch):
    # FFmpeg's own default is 30 s, long enough to hold up a reconnect loop and a service stop.
    monkeypatch.setattr(source, "STREAM_TIMEOUT_MS", 500)
    with socket.create_server(("127.0.0.1", 0)) as server:  # accepts connections, never replies
        start = time.monotonic()
        with pytest.raises(SourceError, match="cannot open video source"):
            source.open_capture(SourceSpec("stream", f"http://127.0.0.1:{server.getsockname()[1]}/till.mp4"))
        assert time.monotonic() - start < 10


def test_record_writes_a_replayable_file(agecam, write_config, assets, tmp_path):
    out = tmp_path / "till.mp4"
    result = agecam(
        "--config", write_config(), "record", clip(assets, "face-demographics-walking"), out, "--seconds", "2"
    )
    assert result.code == 0
    capture = cv2.VideoCapture(str(out))
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 25  # 2 s at 12.5 fps
    assert capture.read()[1].shape == (270, 480, 3)


def test_record_refuses_an_unknown_format(agecam, write_config, assets, tmp_path):
    result = agecam(
        "--config",
        write_config(),
        "record",
        clip(assets, "face-demographics-walking"),
        tmp_path / "till.txt",
        "--seconds",
        "1",
    )
    assert result.code == 2 and "till.txt" in result.err


def test_database_from_a_newer_agecam_is_refused(tmp_path):
    path = tmp_path / "agecam.db"
    EventLog(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(StateError, match="newer than this agecam"):
        EventLog(path)


def test_reopening_keeps_the_schema_and_data(tmp_path):
    path = tmp_path / "agecam.db"
    log = EventLog(path)
    run = log.start_run(
        mode="replay",
        source="x",
        model_path="m",
        model_sha256="s",
        provider="CPU",
        version="0",
        config_json="{}",
        started=0.0,
    )
    log.close()
    again = EventLog(path)
    assert again.db.execute("SELECT id FROM runs").fetchall() == [(run,)]
    assert again.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_durable_log_syncs_every_commit(tmp_path):
    assert EventLog(tmp_path / "a.db", durable=True).db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert EventLog(tmp_path / "b.db").db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL


def test_a_run_cut_off_by_kill_9_is_marked_failed_by_the_next(tmp_path):
    path = tmp_path / "agecam.db"
    code = (
        f"from edge.store.eventlog import EventLog; EventLog(__import__('pathlib').Path({str(path)!r})).start_run("
        "mode='live', source='0', model_path='m', model_sha256='s', provider='CPU', version='0', "
        "config_json='{}', started=0.0)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)  # exits without finishing its run
    log = EventLog(path)
    log.start_run(
        mode="live",
        source="0",
        model_path="m",
        model_sha256="s",
        provider="CPU",
        version="0",
        config_json="{}",
        started=1.0,
    )
    assert log.db.execute("SELECT status FROM runs ORDER BY id").fetchall() == [("failed",), ("running",)]
