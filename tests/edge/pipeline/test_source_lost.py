"""A run that ends because of an error exits non-zero, so systemd's Restart=on-failure restarts it (issue #14):
a looping file that cannot be reopened used to end `agecam run` with exit 0."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from edge.challenge import link as link_module
from edge.challenge.link import PosLink
from edge.config import load_config
from edge.pipeline import runner
from edge.vision.source import SourceSpec

ROOT = Path(__file__).resolve().parents[3]


def short_video(path: Path, frames: int = 5, fps: float = 5.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (160, 120))
    for index in range(frames):
        writer.write(np.full((120, 160, 3), 40 * index, np.uint8))
    writer.release()
    return path


def run_started(db: Path) -> bool:
    if not db.exists():
        return False
    with contextlib.closing(sqlite3.connect(db)) as connection, contextlib.suppress(sqlite3.Error):
        return connection.execute("SELECT count(*) FROM runs").fetchone()[0] > 0
    return False


def test_a_looping_file_that_cannot_be_reopened_fails_the_run(write_config, tmp_path):
    video = short_video(tmp_path / "loop.mp4")
    config = write_config()
    command = [sys.executable, "-m", "edge.cli", "--config", str(config), "run", "--source", str(video), "--loop"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not run_started(tmp_path / "state" / "agecam.db"):  # the run exists once the source is open
            assert process.poll() is None and time.monotonic() < deadline, "agecam run did not start"
            time.sleep(0.1)
        video.unlink()  # the next loop (within a second) cannot reopen it
        code = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    err = process.stderr.read()
    assert code == 3, err[-2000:]
    assert f"agecam: error: video not found: {video}" in err
    with contextlib.closing(sqlite3.connect(tmp_path / "state" / "agecam.db")) as connection:
        assert connection.execute("SELECT status FROM runs").fetchall() == [("failed",)]


def test_a_run_whose_camera_is_lost_still_purges_expired_evidence(write_config, tmp_path, monkeypatch):
    """While no frame comes (a lost camera reconnecting), the loop calls its hooks' on_idle after each empty
    wait: here the POS link's hourly evidence purge, made due every 0.1 s, deletes a crop that expires
    while the camera is gone."""
    monkeypatch.setattr(link_module, "PURGE_EVERY_S", 0.1)
    monkeypatch.setattr(runner, "STATUS_EVERY_S", 0.1)
    video = short_video(tmp_path / "camera.mp4")
    config = load_config(write_config(evidence={"enabled": True}, source={"reconnect_initial_s": 0.05}))
    evidence = tmp_path / "state" / "evidence"
    evidence.mkdir(parents=True)
    lost, stop = threading.Event(), runner.StopSignal()

    def on_status(status: dict) -> None:
        if status["source"] == "reconnecting":
            lost.set()

    # The file opened as a stream: its 5 frames end like a camera unplugged, and it cannot be reopened.
    spec = SourceSpec("stream", str(video))
    result: list[runner.RunResult] = []
    thread = threading.Thread(
        target=lambda: result.append(
            runner.run_source(config, spec, stop=stop, on_status=on_status, hooks=PosLink(config))
        )
    )
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not run_started(tmp_path / "state" / "agecam.db"):  # the source is open once the run exists
            assert thread.is_alive() and time.monotonic() < deadline, "the run did not start"
            time.sleep(0.05)
        video.unlink()
        assert lost.wait(60), "the source was never reported lost"
        crop = evidence / "run1-txn1-track1.jpg"
        crop.write_bytes(b"\xff\xd8 a crop")
        old = time.time() - 30 * 86400
        os.utime(crop, (old, old))
        deadline = time.monotonic() + 10
        while crop.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not crop.exists(), "an expired crop outlived its retention while the camera was lost"
    finally:
        stop.set()
        thread.join(30)
    assert result and result[0].status == "stopped" and result[0].reconnects >= 1


def test_a_looping_file_replaced_by_one_without_frames_fails_the_run(write_config, tmp_path):
    # The file still opened, gave no frame, and was reopened again at once: the run spun a core, silent, for ever.
    video = tmp_path / "loop.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"MJPG"), 5, (160, 120))
    for index in range(5):
        writer.write(np.full((120, 160, 3), 40 * index, np.uint8))
    writer.release()
    empty = tmp_path / "empty.avi"
    cv2.VideoWriter(str(empty), cv2.VideoWriter.fourcc(*"MJPG"), 5, (160, 120)).release()  # opens, no frame
    command = [sys.executable, "-m", "edge.cli", "--config", str(write_config()), "run", "--source", str(video)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([*command, "--loop"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not run_started(tmp_path / "state" / "agecam.db"):
            assert process.poll() is None and time.monotonic() < deadline, "agecam run did not start"
            time.sleep(0.1)
        empty.replace(video)
        code = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    err = process.stderr.read()
    assert code == 3, err[-2000:]
    assert f"agecam: error: video {video} has no frame to loop" in err
    with contextlib.closing(sqlite3.connect(tmp_path / "state" / "agecam.db")) as connection:
        assert connection.execute("SELECT status FROM runs").fetchall() == [("failed",)]
